"""The cost layer: meters (RAPL on a fake powercap tree, NVML with only its device queries replaced, the
CPU-time estimate), the factor table and its overrides, every conversion by hand, and the report wording."""

from __future__ import annotations

import ctypes
import json
import os
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

from driftloop.cost import (
    SOURCE_CPU_ESTIMATE,
    SOURCE_NVML,
    SOURCE_PER_IMAGE,
    SOURCE_RAPL,
    CostConfigError,
    CpuTimeEstimateMeter,
    EnergyReading,
    FrameCost,
    Measurement,
    Meters,
    NvmlMeter,
    RaplMeter,
    apply_overrides,
    co2_g,
    combine,
    cost_rows_for_report,
    default_factors,
    glasses,
    hosted_estimate,
    joules_to_wh,
    load_factors,
    measure,
    phone_charges,
    pick_meters,
    summary_lines,
    totals,
    water_ml,
)
from driftloop.cost.accounting import fmt_count
from driftloop.cost.meters import counter_delta, find_rapl_packages

MAX_UJ = 262_143_328_850  # a real max_energy_range_uj (2^32 units of 61 µJ)


# ------------------------------------------------------------------------------------ fake powercap tree


def write_zone(root: Path, zone: str, name: str, energy_uj: int | str, max_uj: int | None = MAX_UJ) -> Path:
    folder = root / zone
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "name").write_text(name + "\n")
    (folder / "energy_uj").write_text(f"{energy_uj}\n")
    if max_uj is not None:
        (folder / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return folder


def set_energy(root: Path, zone: str, energy_uj: int) -> None:
    (root / zone / "energy_uj").write_text(f"{energy_uj}\n")


@pytest.fixture
def powercap(tmp_path: Path) -> Path:
    """Two packages, their subzones, the MMIO mirror and a psys zone, laid out as Linux does."""
    root = tmp_path / "powercap"
    (root / "intel-rapl").mkdir(parents=True)  # the control type itself
    (root / "intel-rapl" / "enabled").write_text("1\n")
    write_zone(root, "intel-rapl:0", "package-0", 1_000_000)
    write_zone(root, "intel-rapl:0:0", "core", 500_000)
    write_zone(root, "intel-rapl:0:1", "uncore", 100_000)
    write_zone(root, "intel-rapl:1", "package-1", 2_000_000)
    write_zone(root, "intel-rapl:1:0", "core", 700_000)
    write_zone(root, "intel-rapl-mmio:0", "package-0", 9_000_000)
    write_zone(root, "intel-rapl:2", "psys", 50_000_000)
    return root


def test_rapl_finds_top_level_packages_only(powercap: Path) -> None:
    domains = find_rapl_packages(powercap)
    assert [d.name for d in domains] == ["package-0", "package-1"]
    assert [d.energy_path.parent.name for d in domains] == ["intel-rapl:0", "intel-rapl:1"]
    assert all(d.max_range_uj == MAX_UJ for d in domains)


def test_rapl_sums_packages_and_ignores_subzones(powercap: Path) -> None:
    meter = RaplMeter(powercap)
    assert meter.available, meter.unavailable
    token = meter.start()
    set_energy(powercap, "intel-rapl:0", 1_000_000 + 1_500_000)  # +1.5 J
    set_energy(powercap, "intel-rapl:1", 2_000_000 + 250_000)  # +0.25 J
    set_energy(powercap, "intel-rapl:0:0", 99_000_000)  # subzone: part of package-0, never added
    set_energy(powercap, "intel-rapl-mmio:0", 99_000_000)  # mirror of package-0
    set_energy(powercap, "intel-rapl:2", 99_000_000)  # psys
    reading = meter.stop(token)
    assert reading == EnergyReading(1.75, SOURCE_RAPL, True, meter.describe())


def test_rapl_counter_wraps_around(powercap: Path) -> None:
    set_energy(powercap, "intel-rapl:0", MAX_UJ - 1_000)
    meter = RaplMeter(powercap)
    token = meter.start()
    set_energy(powercap, "intel-rapl:0", 500)  # wrapped: 1,000 µJ to the top, then 500 more
    set_energy(powercap, "intel-rapl:1", 2_000_000 + 3_000)
    reading = meter.stop(token)
    assert reading.measured
    assert reading.joules == pytest.approx((1_000 + 500 + 3_000) / 1e6)


def test_counter_delta_arithmetic() -> None:
    assert counter_delta(10, 25, 100) == 15
    assert counter_delta(90, 5, 100) == 15  # 10 to the top, 5 after the wrap
    assert counter_delta(90, 5, None) is None  # a wrap without a known range cannot be undone
    assert counter_delta(7, 7, None) == 0


def test_rapl_through_measure(powercap: Path) -> None:
    meters = Meters((RaplMeter(powercap),), watts_per_core=10.0)
    with measure(meters) as m:
        set_energy(powercap, "intel-rapl:0", 1_000_000 + 3_000_000)
        set_energy(powercap, "intel-rapl:1", 2_000_000 + 3_000_000)
    assert m.done and m.wall_s >= 0 and m.cpu_s >= 0
    costs = m.frame_costs(3)  # one batched call made three frames: equal shares
    assert len(costs) == 3
    assert costs[0].energy_j == pytest.approx(2.0)
    assert costs[0].energy_source == SOURCE_RAPL and costs[0].measured
    assert costs[0].wall_s == pytest.approx(m.wall_s / 3)


def test_amd_style_zone_names(tmp_path: Path) -> None:
    write_zone(tmp_path, "amd-rapl:0", "package-0", 10)
    assert [d.name for d in find_rapl_packages(tmp_path)] == ["package-0"]


def test_rapl_unreadable_counter_is_unavailable(powercap: Path) -> None:
    counter = powercap / "intel-rapl:1" / "energy_uj"
    counter.unlink()
    counter.mkdir()  # reading it fails with an OSError, as a root-only file does for a user
    meter = RaplMeter(powercap)
    assert not meter.available
    assert "intel-rapl:1" in (meter.unavailable or "")
    assert meter.stop(meter.start()).joules is None

    chosen = pick_meters("cpu", default_factors(), powercap_root=powercap)
    assert [m.source for m in chosen.meters] == [SOURCE_CPU_ESTIMATE]
    assert "RAPL not used" in chosen.describe()


def test_rapl_permission_denied_is_unavailable(powercap: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counter = powercap / "intel-rapl:0" / "energy_uj"
    counter.chmod(0o400)  # root-only, as Linux ≥ 5.10 ships it
    if os.geteuid() == 0:  # root reads it anyway: make the read fail as it does for a user
        real_read = Path.read_bytes

        def read_bytes(self: Path) -> bytes:
            if self == counter:
                raise PermissionError(13, "Permission denied", str(self))
            return real_read(self)

        monkeypatch.setattr(Path, "read_bytes", read_bytes)
    else:
        counter.chmod(0o000)
    meter = RaplMeter(powercap)
    assert not meter.available
    assert "not readable by this user" in (meter.unavailable or "")
    chosen = pick_meters("cpu", default_factors(), powercap_root=powercap)
    assert [m.source for m in chosen.meters] == [SOURCE_CPU_ESTIMATE]


def test_rapl_missing_tree_or_garbage(tmp_path: Path) -> None:
    assert "no " in (RaplMeter(tmp_path / "nowhere").unavailable or "")
    assert "no RAPL package zones" in (RaplMeter(tmp_path).unavailable or "")
    write_zone(tmp_path, "intel-rapl:0", "package-0", "not a number")
    assert not RaplMeter(tmp_path).available


def test_rapl_failing_mid_run_falls_back_to_estimate(powercap: Path) -> None:
    for zone in ("intel-rapl:0", "intel-rapl:1"):
        (powercap / zone / "max_energy_range_uj").unlink()
    meter = RaplMeter(powercap)
    assert meter.available
    meters = Meters((meter,), watts_per_core=10.0)
    with measure(meters) as m:
        set_energy(powercap, "intel-rapl:0", 5)  # went backwards, range unknown: cannot be trusted
    (reading,) = m.readings
    assert reading.source == SOURCE_CPU_ESTIMATE and not reading.measured
    assert reading.joules == pytest.approx(m.cpu_s * 10.0)
    assert "rapl" in reading.detail


def test_pick_meters_prefers_readable_rapl(powercap: Path) -> None:
    chosen = pick_meters("cpu", default_factors(), powercap_root=powercap)
    assert [m.source for m in chosen.meters] == [SOURCE_RAPL]
    assert "package-0+package-1" in chosen.describe()
    assert pick_meters("api").meters == ()


def test_measure_is_cheap(powercap: Path) -> None:
    meters = Meters((RaplMeter(powercap), CpuTimeEstimateMeter(10.0)), watts_per_core=10.0)
    n = 500
    started = time.perf_counter()
    for _ in range(n):
        with measure(meters):
            pass
    per_call = (time.perf_counter() - started) / n
    assert per_call < 2e-3  # a handful of small file reads: tens of microseconds in practice


def test_measure_fills_in_when_the_call_raises() -> None:
    meters = Meters((CpuTimeEstimateMeter(10.0),), watts_per_core=10.0)
    with pytest.raises(ZeroDivisionError), measure(meters) as m:
        _ = 1 / 0
    assert m.done and len(m.readings) == 1


# ---------------------------------------------------------------------------------------------------- NVML


class FakeGpu:
    """Stands in for the NVIDIA driver library itself (``pynvml.nvmlLib``, the C functions pynvml calls
    through ctypes): all of pynvml's own code runs, down to its return-code checks and ``byref`` outputs."""

    UUIDS: ClassVar[dict[str, int]] = {
        "GPU-00000000-0000-0000-0000-00000000000a": 0,
        "GPU-00000000-0000-0000-0000-00000000000b": 1,
    }

    def __init__(self, pynvml, energy_mj: int = 1_000_000, error: int | None = None) -> None:
        self.pynvml = pynvml
        self.energy_mj = energy_mj
        self.error = error
        self.handles: list[int] = []  # device index of each handle asked for
        self.queried: list[int] = []  # device index of each energy query
        self.shutdowns = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(self.pynvml, "nvmlLib", self)
        monkeypatch.setattr(self.pynvml, "_nvmlGetFunctionPointer_cache", {})

    @staticmethod
    def _set_handle(ref: Any, index: int) -> None:
        ctypes.cast(ctypes.pointer(ref._obj), ctypes.POINTER(ctypes.c_void_p)).contents.value = 0x1000 + index

    # the C functions, as pynvml looks them up by name
    def nvmlInitWithFlags(self, flags: int) -> int:
        return 0

    def nvmlShutdown(self) -> int:
        self.shutdowns += 1
        return 0

    def nvmlDeviceGetHandleByIndex_v2(self, c_index: Any, ref: Any) -> int:
        self.handles.append(c_index.value)
        self._set_handle(ref, c_index.value)
        return 0

    def nvmlDeviceGetHandleByUUID(self, c_uuid: Any, ref: Any) -> int:
        index = self.UUIDS.get(c_uuid.value.decode())
        if index is None:
            return self.pynvml.NVML_ERROR_NOT_FOUND
        self.handles.append(index)
        self._set_handle(ref, index)
        return 0

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Any, ref: Any) -> int:
        self.queried.append(ctypes.cast(handle, ctypes.c_void_p).value - 0x1000)
        if self.error is not None:
            return self.error
        ref._obj.value = self.energy_mj
        return 0


@pytest.fixture
def pynvml():
    return pytest.importorskip("pynvml", reason="nvidia-ml-py is needed to test the NVML meter")


def test_nvml_reads_millijoules(pynvml, monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = FakeGpu(pynvml)
    gpu.install(monkeypatch)
    meter = NvmlMeter(1)
    assert meter.available, meter.unavailable
    assert gpu.handles == [1]
    token = meter.start()
    gpu.energy_mj += 2_500  # 2.5 J
    reading = meter.stop(token)
    assert reading == EnergyReading(2.5, SOURCE_NVML, True, "NVML total-energy counter of GPU 1")
    meter.close()
    assert gpu.shutdowns == 1


def test_nvml_with_rapl_for_cuda(pynvml, monkeypatch: pytest.MonkeyPatch, powercap: Path) -> None:
    gpu = FakeGpu(pynvml)
    gpu.install(monkeypatch)
    meters = pick_meters("cuda:0", default_factors(), powercap_root=powercap)
    assert [m.source for m in meters.meters] == [SOURCE_NVML, SOURCE_RAPL]
    with measure(meters) as m:
        gpu.energy_mj += 30_000  # 30 J on the GPU
        set_energy(powercap, "intel-rapl:0", 1_000_000 + 6_000_000)  # 6 J on the CPU
    (cost,) = m.frame_costs(1)
    assert cost.energy_j == pytest.approx(36.0)
    assert cost.energy_source == "nvml+rapl" and cost.measured
    t = totals([cost] * 100, default_factors())
    assert t.measured and t.energy_wh == pytest.approx(1.0)
    assert "measured by NVML" in summary_lines(t)[0] and "measured by RAPL" in summary_lines(t)[0]


def test_nvml_not_supported_falls_back(pynvml, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    gpu = FakeGpu(pynvml, error=pynvml.NVML_ERROR_NOT_SUPPORTED)
    gpu.install(monkeypatch)
    meter = NvmlMeter(0)
    assert not meter.available
    assert "Volta" in (meter.unavailable or "")

    meters = pick_meters("cuda", default_factors(), powercap_root=tmp_path / "no-powercap")
    assert [(m.component, m.source) for m in meters.meters] == [
        ("gpu", SOURCE_NVML),
        ("cpu", SOURCE_CPU_ESTIMATE),
    ]
    with measure(meters) as m:
        pass
    (cost,) = m.frame_costs(1)
    assert not cost.measured
    assert cost.parts[0].joules is None and cost.parts[1].joules is not None
    t = totals([cost] * 5, default_factors())
    assert not t.measured
    assert any(line.startswith("Not counted: GPU energy for 5 of 5 frames") for line in summary_lines(t))
    assert ("Not counted", "GPU energy, 5 frames") in [row[:2] for row in cost_rows_for_report(t)]


def test_nvml_by_uuid_meters_the_gpu_torch_means(pynvml, monkeypatch: pytest.MonkeyPatch) -> None:
    """NVML numbers GPUs in PCI order and ignores CUDA_VISIBLE_DEVICES; torch's cuda:N may be another GPU,
    so the meter finds the device by its UUID."""
    gpu = FakeGpu(pynvml)
    gpu.install(monkeypatch)
    meter = NvmlMeter(0, uuid="GPU-00000000-0000-0000-0000-00000000000b")  # cuda:0 is NVML's GPU 1 here
    assert meter.available and gpu.handles == [1] and gpu.queried == [1]
    assert "GPU-00000000-0000-0000-0000-00000000000b" in meter.describe()
    missing = NvmlMeter(0, uuid="GPU-ffffffff-0000-0000-0000-000000000000")
    assert not missing.available and "GPU-ffffffff" in (missing.unavailable or "")


def test_nvml_driver_missing(pynvml, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_library(*args: Any, **kwargs: Any) -> None:
        raise OSError("libnvidia-ml.so.1: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(pynvml, "nvmlLib", None)  # pynvml then loads the driver library itself ...
    monkeypatch.setattr(pynvml, "CDLL", no_library)  # ... which is not there
    monkeypatch.setattr(pynvml, "_nvmlGetFunctionPointer_cache", {})
    meter = NvmlMeter(0)
    assert "NVML could not start" in (meter.unavailable or "")
    assert meter.stop(meter.start()).joules is None


# ------------------------------------------------------------------------------------------- factors


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_default_factors_have_sources() -> None:
    f = default_factors()
    assert f.country == "world"
    assert f.grid_intensity["world"].value == 481
    assert f.watts_per_core.value == 10.0 and f.pue.value == 1.58
    for code in ("US", "DE", "FR", "GB", "CN", "IN", "SE", "NO", "PL", "AU", "JP", "CA"):
        assert code in f.grid_intensity
    for factor in [*(getattr(f, n) for n in ("watts_per_core", "pue", "wue_onsite", "grid_water"))]:
        assert factor.source and factor.unit
    assert "Ember" in f.grid_intensity["DE"].source
    assert "approximately" in f.grid_intensity["US"].source
    for table in f.prices.values():
        assert all(price.source and price.as_of for price in table.values())


def test_override_merges_key_by_key(tmp_path: Path) -> None:
    path = write(
        tmp_path / "mine.toml",
        'country = "de"\npue = 1.1\n\n[grid_intensity]\nDE = 300\nXX = { value = 12, source = "my meter" }\n',
    )
    f = load_factors(path)
    assert f.country == "DE"
    assert (
        f.pue.value == 1.1 and f.pue.source == f"set in {path}" and f.pue.unit == default_factors().pue.unit
    )
    assert f.grid_intensity["DE"].value == 300 and f.grid_intensity["DE"].source == f"set in {path}"
    assert f.grid_intensity["XX"].source == "my meter"
    assert f.grid_intensity["FR"] == default_factors().grid_intensity["FR"]  # the rest stays default
    assert f.wue_onsite == default_factors().wue_onsite
    assert f.origins[-1] == str(path)
    assert f.grid() == ("DE", f.grid_intensity["DE"])


def test_workspace_then_run_overrides(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    write(workspace / "driftloop.toml", "[cost]\npue = 1.2\nwue_onsite = 0.0\n[other]\nignored = 1\n")
    run_file = write(
        tmp_path / "run.toml", "[cost]\npue = 1.0\n[cost.watts_per_core]\nvalue = 6.8\nsource = 'TDP'\n"
    )
    f = load_factors(run_file, workspace)
    assert f.pue.value == 1.0  # the run's file wins over the workspace
    assert f.wue_onsite.value == 0.0  # the workspace's still applies
    assert f.watts_per_core.value == 6.8 and f.watts_per_core.source == "TDP"
    assert load_factors(workspace=tmp_path / "empty-ws") == default_factors()


def test_price_overrides_and_lookup(tmp_path: Path) -> None:
    f = default_factors()
    assert f.price("openai:gpt-image-1", "low", "1024x1024").usd == 0.011
    assert f.price("openai:gpt-image-1", "high", "1536x1024").usd == 0.25
    assert f.price("openai:gpt-image-1").usd == 0.042  # default
    assert f.price("gpt-image-1", "medium", "1024x1024").usd == 0.042  # bare model name
    assert f.price("gemini:gemini-2.5-flash-image").usd == 0.039
    assert f.price("acme:painter") is None
    path = write(tmp_path / "p.toml", '[prices."openai:gpt-image-1"]\n"low:1024x1024" = 0.02\n')
    g = load_factors(path)
    assert g.price("openai:gpt-image-1", "low", "1024x1024").source == f"set in {path}"
    assert g.price("openai:gpt-image-1", "high", "1024x1024") == f.price(
        "openai:gpt-image-1", "high", "1024x1024"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("peu = 1.1\n", "unknown cost factor key(s) ['peu']"),
        ("pue = 0.9\n", "pue must be at least 1"),
        ("wue_onsite = -1\n", "wue_onsite must be at least 0"),
        ("glass_ml = 0\n", "glass_ml must be more than 0"),
        ('pue = "high"\n', "pue must be a finite number"),
        ('country = "ZZ"\n', "no grid carbon intensity for country 'ZZ'"),
        ("pue = \n", "is not valid TOML"),
    ],
)
def test_bad_overrides_name_the_fault(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "bad.toml", text)
    with pytest.raises(CostConfigError) as err:
        load_factors(path)
    assert message in str(err.value)
    assert err.value.exit_code == 2


def test_missing_override_file(tmp_path: Path) -> None:
    with pytest.raises(CostConfigError, match="does not exist"):
        load_factors(tmp_path / "nope.toml")


def test_factors_snapshot_round_trips(tmp_path: Path) -> None:
    f = load_factors(write(tmp_path / "o.toml", "pue = 1.3\n"))
    snapshot = json.loads(json.dumps(f.to_dict()))
    assert type(f).from_dict(snapshot) == f


# --------------------------------------------------------------------------------------- conversions


@pytest.fixture
def round_factors():
    """Round numbers, so every expected value below can be checked by hand."""
    return apply_overrides(
        default_factors(),
        {
            "country": "XX",
            "pue": 1.5,
            "wue_onsite": 0.5,
            "grid_water": 3.0,
            "phone_charge_wh": 10,
            "glass_ml": 250,
            "watts_per_core": 10,
            "grid_intensity": {"XX": 400},
        },
        "test",
    )


def test_conversions_by_hand(round_factors) -> None:
    f = round_factors
    assert joules_to_wh(36_000) == 10.0
    assert co2_g(10.0, f) == pytest.approx(6.0)  # 0.01 kWh × 1.5 × 400 g/kWh
    assert co2_g(10.0, f, "FR") == pytest.approx(0.01 * 1.5 * 56)
    assert water_ml(10.0, f) == pytest.approx(50.0)  # 0.01 kWh × (0.5 + 1.5 × 3.0) L/kWh × 1000 ml/L
    assert phone_charges(10.0, f) == pytest.approx(1.0)
    assert glasses(50.0, f) == pytest.approx(0.2)
    assert CpuTimeEstimateMeter(10.0).reading(2.0).joules == 20.0  # 2 CPU-seconds × 10 W


def test_conversions_with_defaults() -> None:
    f = default_factors()
    assert co2_g(1000.0, f) == pytest.approx(1.58 * 481)  # 1 kWh × PUE × world average
    assert water_ml(1000.0, f) == pytest.approx((0.55 + 1.58 * 3.14) * 1000)
    assert phone_charges(12.0) == pytest.approx(1.0)
    assert glasses(250.0) == pytest.approx(1.0)


def test_frame_costs_split_a_batch_and_price_hosted_copies() -> None:
    m = Measurement(3.0, 1.5, (EnergyReading(30.0, SOURCE_RAPL, True, "RAPL"),), done=True)
    costs = m.frame_costs(3)
    assert [c.energy_j for c in costs] == [10.0] * 3
    assert costs[0].wall_s == 1.0 and costs[0].cpu_s == 0.5 and costs[0].usd == 0.0

    hosted = hosted_estimate(default_factors(), "openai:gpt-image-1", "low", "1024x1024")
    empty = Measurement(20.0, 0.1, (), done=True)
    (cost,) = empty.frame_costs(1, hosted=hosted)
    assert cost.energy_j == pytest.approx(2.907 * 3600)
    assert cost.energy_source == SOURCE_PER_IMAGE and not cost.measured
    assert cost.usd == 0.011
    t = totals([cost] * 101, default_factors())
    assert t.energy_wh == pytest.approx(101 * 2.907)
    assert t.usd == pytest.approx(1.111)

    unknown = hosted_estimate(default_factors(), "acme:painter")
    (cost,) = empty.frame_costs(1, hosted=unknown)
    assert cost.usd is None and "no price" in cost.usd_source
    with pytest.raises(RuntimeError):
        Measurement().frame_costs(1)


def test_frame_cost_round_trips_as_json() -> None:
    cost = FrameCost(
        0.5, 0.25, (EnergyReading(1.0, SOURCE_RAPL, True, "x"), EnergyReading(None, "nvml", False, "y"))
    )
    data = json.loads(json.dumps(cost.to_dict()))
    assert data["energy_j"] == 1.0 and data["measured"] is False and data["energy_source"] == "rapl+nvml"
    assert FrameCost.from_dict(data) == cost


def test_comparison_counts() -> None:
    assert fmt_count(24.4, "a phone charge", "phone charges") == "24 phone charges"
    assert fmt_count(0.5, "a glass", "glasses") == "0.50 of a glass"
    assert fmt_count(0.02, "a glass", "glasses") == "1/50 of a glass"


# --------------------------------------------------------------------------------- totals and wording


def estimate(joules: float) -> FrameCost:
    return FrameCost(
        0.2, 0.1, (EnergyReading(joules, SOURCE_CPU_ESTIMATE, False, "CPU time × 10 W per core"),)
    )


def rapl(joules: float) -> FrameCost:
    return FrameCost(0.2, 0.1, (EnergyReading(joules, SOURCE_RAPL, True, "RAPL CPU package energy"),))


def test_summary_of_an_estimated_run() -> None:
    t = totals([estimate(36.0)] * 101, default_factors())  # 101 × 36 J = 3636 J = 1.01 Wh
    assert t.energy_wh == pytest.approx(1.01)
    assert not t.measured
    lines = summary_lines(t)
    assert lines[0] == (
        "101 copies used 1.0 Wh (estimated from CPU time × 10 W per core) "
        "≈ 1/12 of a phone charge (12 Wh each)."
    )
    # 1.01 Wh → 0.00101 kWh × 1.58 × 481 = 0.768 g; × (0.55 + 1.58 × 3.14) L/kWh = 5.57 ml = 1/45 glass
    assert lines[1].startswith("≈ 0.77 g CO2e (estimated: energy × PUE 1.58 × world-average grid, 481 g/kWh)")
    assert lines[2].startswith("≈ 5.6 ml of water ≈ 1/45 of a glass (250 ml each) (estimated:")
    assert lines[3] == "Money: $0.00 (local model: no per-image fee; electricity not priced)."
    assert lines[4] == "Model time: 20 s wall clock, 10 s CPU (measured)."


def test_summary_of_a_mixed_run_and_chains_combined() -> None:
    chain_a = totals([rapl(36.0)] * 90, default_factors())
    chain_b = totals([estimate(36.0)] * 11, default_factors())
    assert chain_a.measured and not chain_b.measured
    run = combine([chain_a, chain_b])
    assert run.frames == 101 and run.energy_j == pytest.approx(3636.0) and not run.measured
    assert run == chain_a + chain_b
    first = summary_lines(run)[0]
    assert "measured by RAPL (CPU package) for 90 of 101 frames (0.90 Wh)" in first
    assert "estimated from CPU time × 10 W per core for 11 of 101 frames (0.11 Wh)" in first


def test_summary_in_another_country_and_hosted() -> None:
    f = default_factors()
    hosted = hosted_estimate(f, "openai:gpt-image-1", "medium", "1024x1024")
    (cost,) = Measurement(10.0, 0.0, (), done=True).frame_costs(1, hosted=hosted)
    t = totals([cost] * 100, f, "FR")
    lines = summary_lines(t)
    assert lines[0].startswith("100 copies used 291 Wh (estimated at 2.907 Wh per image) ≈ 24 phone charges")
    assert "FR grid, 56 g/kWh" in lines[1]
    assert lines[2].startswith("≈ 1.6 L of water ≈ 6.4 glasses")
    assert lines[3].startswith(
        "Money: $4.20, estimated at listed prices (openai:gpt-image-1: $0.042 per image"
    )


def test_report_rows_carry_provenance() -> None:
    t = totals([estimate(36.0)] * 101, default_factors())
    rows = cost_rows_for_report(t)
    labels = [label for label, _, _ in rows]
    assert labels == [
        "Copies",
        "Model time",
        "CPU time",
        "Energy",
        "CO2e",
        "Water",
        "Phone charges",
        "Glasses of water",
        "Money",
    ]
    values = dict((label, value) for label, value, _ in rows)
    assert values["Energy"] == "1.0 Wh" and values["CO2e"] == "0.77 g" and values["Water"] == "5.6 ml"
    for _, _, provenance in rows:
        assert provenance.split(":", 1)[0].split(" ", 1)[0] in {
            "measured",
            "estimated",
            "exact",
            "unavailable",
        }
    provenance = dict((label, prov) for label, _, prov in rows)
    assert "Green Algorithms" in provenance["Energy"]
    assert "Ember" in provenance["CO2e"] and "Uptime Institute" in provenance["CO2e"]
    assert "Li et al." in provenance["Water"] or "Li, Yang" in provenance["Water"]
    assert json.dumps(t.to_dict())  # JSON-able for exports


def test_no_frames() -> None:
    t = totals([], default_factors())
    assert summary_lines(t) == ["No copies were made, so there is no cost to report."]
    assert not t.measured
