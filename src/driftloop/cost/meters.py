"""Energy meters and the per-frame measurement around a model call.

A meter has ``start() -> token`` and ``stop(token) -> EnergyReading``; :func:`measure` runs every chosen meter
around one model call and also takes wall time and process CPU time. What is measured and what is estimated
is decided once, by :func:`pick_meters`, and every reading carries that label:

- ``rapl``: CPU package energy from Linux powercap (``/sys/class/powercap/*-rapl:N/energy_uj``). It counts the
  whole package (other processes and idle power too), top-level packages only (their core/uncore/dram
  subzones are parts of them: adding those would count twice). Often root-only since Linux 5.10.
- ``nvml``: GPU energy from NVML's total-energy counter (millijoules since driver load; Volta or newer).
- ``estimate:cpu-seconds×W``: process CPU seconds (all threads) × a watts-per-core factor, when RAPL is not
  readable. Never called measured.
- ``estimate:per-image``: hosted models, a published per-image figure (see :mod:`driftloop.cost.factors`).

Reading a sysfs counter or NVML costs microseconds; nothing here starts threads or polls.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from driftloop.cost.factors import Factor, Factors, Price, default_factors

POWERCAP_ROOT = Path("/sys/class/powercap")

SOURCE_RAPL = "rapl"
SOURCE_NVML = "nvml"
SOURCE_CPU_ESTIMATE = "estimate:cpu-seconds×W"
SOURCE_PER_IMAGE = "estimate:per-image"

LOCAL_NO_FEE = "local model: no per-image fee (electricity is not priced)"

# Top-level powercap zones of a RAPL control type: intel-rapl:0, intel-rapl:1, amd-rapl:0 ... but not
# subzones (intel-rapl:0:0) and not the MMIO mirror (intel-rapl-mmio:0, the same package counted again).
_PACKAGE_ZONE = re.compile(r"^[a-z]+-rapl:\d+$")
_HOSTED_DEVICES = {"api", "hosted", "remote", "none"}


@dataclass(frozen=True)
class EnergyReading:
    """Energy used between a meter's start and stop. ``joules is None``: the meter could not tell."""

    joules: float | None
    source: str
    measured: bool
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "joules": self.joules,
            "source": self.source,
            "measured": self.measured,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnergyReading:
        return cls(data["joules"], data["source"], bool(data["measured"]), data.get("detail", ""))


@runtime_checkable
class EnergyMeter(Protocol):
    """Something that can tell the energy used between ``start`` and ``stop``.

    ``component`` says what it covers (``cpu``, ``gpu``); ``source`` is the label its readings carry.
    """

    source: str
    component: str

    def start(self) -> Any: ...

    def stop(self, token: Any) -> EnergyReading: ...

    def describe(self) -> str: ...


# --------------------------------------------------------------------------------------------------- RAPL


@dataclass(frozen=True)
class RaplDomain:
    """One top-level RAPL package zone: its name, its counter file and the counter's range (wrap point)."""

    name: str
    energy_path: Path
    max_range_uj: int | None


def find_rapl_packages(root: Path = POWERCAP_ROOT) -> list[RaplDomain]:
    """The top-level package zones under a powercap root (``psys`` and subzones are left out)."""
    root = Path(root)
    try:
        zones = sorted(p for p in root.iterdir() if _PACKAGE_ZONE.match(p.name))
    except OSError:
        return []
    seen: set[str] = set()
    out = []
    for zone in zones:
        label = _read_text(zone / "name")
        # psys (platform) already includes the packages; a top-level dram zone is not a package either.
        if label is not None and not label.startswith("package"):
            continue
        name = label or zone.name
        if name in seen:
            continue
        seen.add(name)
        raw_max = _read_text(zone / "max_energy_range_uj")
        max_range = int(raw_max) if raw_max and raw_max.isdigit() else None
        out.append(RaplDomain(name, zone / "energy_uj", max_range))
    return out


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def counter_delta(start: int, end: int, max_range: int | None) -> int | None:
    """Increase of a counter that wraps to 0 after ``max_range``; ``None`` if it wrapped and the range is
    unknown. At most one wrap per interval can be seen: RAPL's wraps after minutes, a frame takes seconds."""
    if end >= start:
        return end - start
    if max_range is None or max_range <= 0 or start > max_range:
        return None
    return end + (max_range - start)


class RaplMeter:
    """CPU package energy from the RAPL counters in Linux powercap sysfs.

    ``unavailable`` is ``None`` when every package counter could be read at construction, otherwise the
    reason (no powercap tree, no package zones, a counter not readable: often root-only since Linux 5.10).
    """

    source = SOURCE_RAPL
    component = "cpu"

    def __init__(self, root: Path | str = POWERCAP_ROOT) -> None:
        self.root = Path(root)
        self.domains = find_rapl_packages(self.root)
        self.unavailable = self._probe()

    def _probe(self) -> str | None:
        if not self.root.is_dir():
            return f"no {self.root} (not Linux, or no powercap driver)"
        if not self.domains:
            return f"no RAPL package zones under {self.root}"
        for domain in self.domains:
            try:
                int(domain.energy_path.read_bytes())
            except PermissionError:
                return (
                    f"{domain.energy_path} is not readable by this user (RAPL counters are root-only since "
                    "Linux 5.10); run as root or grant read access to measure CPU energy"
                )
            except (OSError, ValueError) as exc:
                return f"{domain.energy_path} cannot be read ({exc})"
        return None

    @property
    def available(self) -> bool:
        return self.unavailable is None

    def read_uj(self) -> tuple[int, ...] | None:
        """Every package counter in microjoules, or ``None`` if any cannot be read."""
        try:
            return tuple(int(d.energy_path.read_bytes()) for d in self.domains)
        except (OSError, ValueError):
            return None

    def start(self) -> tuple[int, ...] | None:
        return self.read_uj()

    def stop(self, token: tuple[int, ...] | None) -> EnergyReading:
        end = self.read_uj()
        if token is None or end is None or not self.domains:
            return EnergyReading(None, self.source, False, "RAPL counters could not be read")
        total = 0
        for domain, a, b in zip(self.domains, token, end, strict=True):
            delta = counter_delta(a, b, domain.max_range_uj)
            if delta is None:
                return EnergyReading(None, self.source, False, f"{domain.name} counter went backwards")
            total += delta
        return EnergyReading(total / 1e6, self.source, True, self.describe())

    def describe(self) -> str:
        names = "+".join(d.name for d in self.domains) or "no packages"
        return f"RAPL CPU package energy ({names}; whole package, other processes included)"


# --------------------------------------------------------------------------------------------------- NVML


def _import_pynvml() -> Any:
    import pynvml  # nvidia-ml-py: the optional extra `gpu`

    return pynvml


class NvmlMeter:
    """GPU energy from NVML's total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``, millijoules).

    Everything that talks to the device goes through pynvml's ``nvmlInit``,
    ``nvmlDeviceGetHandleByIndex`` and ``nvmlDeviceGetTotalEnergyConsumption``; ``unavailable`` holds the
    reason when any of them fails (no pynvml, no driver, a GPU without the counter: it needs Volta or newer).
    """

    source = SOURCE_NVML
    component = "gpu"

    def __init__(self, device_index: int = 0, uuid: str | None = None) -> None:
        self.device_index = device_index
        self.uuid = uuid
        self.unavailable: str | None = None
        self._handle: Any = None
        self._initialised = False
        try:
            self._nvml = _import_pynvml()
        except ImportError:
            self._nvml = None
            self.unavailable = "nvidia-ml-py is not installed (pip install 'driftloop[gpu]')"
            return
        nvml = self._nvml
        try:
            nvml.nvmlInit()
            self._initialised = True
        except nvml.NVMLError as exc:
            self.unavailable = f"NVML could not start ({exc}); is the NVIDIA driver installed?"
            return
        try:
            if uuid is not None:  # NVML's numbering is not CUDA's: match the device torch means
                self._handle = nvml.nvmlDeviceGetHandleByUUID(uuid)
            else:
                self._handle = nvml.nvmlDeviceGetHandleByIndex(device_index)
            nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        except nvml.NVMLError_NotSupported:
            self.unavailable = (
                f"{self._name()} has no NVML total-energy counter (supported from Volta GPUs on)"
            )
        except nvml.NVMLError as exc:
            self.unavailable = f"NVML cannot read {self._name()} ({exc})"

    def _name(self) -> str:
        return f"GPU {self.device_index}" + (f" ({self.uuid})" if self.uuid else "")

    @property
    def available(self) -> bool:
        return self.unavailable is None

    def read_mj(self) -> int | None:
        if self.unavailable is not None:
            return None
        try:
            return int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except self._nvml.NVMLError:
            return None

    def start(self) -> int | None:
        return self.read_mj()

    def stop(self, token: int | None) -> EnergyReading:
        end = self.read_mj()
        if token is None or end is None:
            reason = self.unavailable or f"NVML energy counter of {self._name()} could not be read"
            return EnergyReading(None, self.source, False, reason)
        if end < token:  # a 64-bit counter only goes back when the driver reloads
            return EnergyReading(None, self.source, False, "NVML energy counter went backwards")
        return EnergyReading((end - token) / 1000.0, self.source, True, self.describe())

    def describe(self) -> str:
        return f"NVML total-energy counter of {self._name()}"

    def close(self) -> None:
        if self._initialised and self._nvml is not None:
            with suppress(self._nvml.NVMLError):
                self._nvml.nvmlShutdown()
            self._initialised = False


# ---------------------------------------------------------------------------------------------- estimates


class CpuTimeEstimateMeter:
    """Estimated CPU energy: process CPU seconds (every thread of this process) × watts per busy core."""

    source = SOURCE_CPU_ESTIMATE
    component = "cpu"

    def __init__(self, watts_per_core: float) -> None:
        self.watts_per_core = float(watts_per_core)

    def start(self) -> float:
        return time.process_time()

    def stop(self, token: float) -> EnergyReading:
        cpu_s = max(0.0, time.process_time() - token)
        return self.reading(cpu_s)

    def reading(self, cpu_s: float) -> EnergyReading:
        return EnergyReading(cpu_s * self.watts_per_core, self.source, False, self.describe())

    def describe(self) -> str:
        return f"CPU time × {self.watts_per_core:g} W per core"


class UnavailableMeter:
    """Stands for a component that should be metered but cannot be: its readings say why, with no joules,
    so a report shows "GPU energy not counted" instead of silently leaving it out."""

    def __init__(self, source: str, component: str, reason: str) -> None:
        self.source = source
        self.component = component
        self.reason = reason

    def start(self) -> None:
        return None

    def stop(self, token: None) -> EnergyReading:
        return EnergyReading(None, self.source, False, self.reason)

    def describe(self) -> str:
        return f"{self.component.upper()} energy not counted: {self.reason}"


@dataclass(frozen=True)
class Meters:
    """The meters chosen for a run, the notes on why others were not, and the CPU estimate's watts."""

    meters: tuple[EnergyMeter, ...]
    notes: tuple[str, ...] = ()
    watts_per_core: float | None = None

    def describe(self) -> str:
        """One line per component, e.g. "cpu: RAPL ... | gpu: NVML ..." plus the reasons for fallbacks."""
        parts = [f"{m.component}: {m.describe()}" for m in self.meters] or ["no local meters (hosted model)"]
        text = "; ".join(parts)
        if self.notes:
            text += " (" + "; ".join(self.notes) + ")"
        return text


def cuda_uuid(index: int) -> str | None:
    """NVML's name (``GPU-<uuid>``) of torch's ``cuda:index``, or None when torch cannot tell."""
    try:
        import torch  # heavy, and only where a GPU might be: to find its UUID

        if not torch.cuda.is_available():
            return None
        uuid = str(torch.cuda.get_device_properties(index).uuid)
    except Exception:  # an old torch, a broken driver: fall back to NVML's own numbering
        return None
    return uuid if uuid.startswith("GPU-") else f"GPU-{uuid}"


def pick_meters(
    device: str = "cpu",
    factors: Factors | None = None,
    *,
    powercap_root: Path | str = POWERCAP_ROOT,
) -> Meters:
    """What can be measured here for a model on ``device``.

    ``cuda`` / ``cuda:N``: NVML for the GPU (or an explicit "not counted" with the reason), plus the CPU.
    The CPU: RAPL when readable, else CPU time × ``factors.watts_per_core`` (estimated).
    ``api`` / ``hosted`` / ``remote`` / ``none``: no local meters; the per-image estimate is added per frame.
    """
    factors = factors or default_factors()
    watts = factors.watts_per_core.value
    kind, _, index = device.strip().lower().partition(":")
    if kind in _HOSTED_DEVICES:
        return Meters((), ("hosted model: energy estimated per image",), watts)
    meters: list[EnergyMeter] = []
    notes: list[str] = []
    if kind == "cuda":
        number = int(index) if index.isdigit() else 0
        nvml = NvmlMeter(number, cuda_uuid(number))
        if nvml.available:
            meters.append(nvml)
        else:
            meters.append(UnavailableMeter(SOURCE_NVML, "gpu", nvml.unavailable or "NVML unavailable"))
    rapl = RaplMeter(powercap_root)
    if rapl.available:
        meters.append(rapl)
    else:
        meters.append(CpuTimeEstimateMeter(watts))
        notes.append(f"RAPL not used: {rapl.unavailable}")
    return Meters(tuple(meters), tuple(notes), watts)


# ------------------------------------------------------------------------------------------ per frame


@dataclass(frozen=True)
class HostedEstimate:
    """A hosted model's per-image energy figure and price, from the factor table."""

    model: str
    wh_per_image: Factor
    price: Price | None

    def reading(self) -> EnergyReading:
        detail = f"{self.wh_per_image.value:g} Wh per image ({self.wh_per_image.source})"
        return EnergyReading(self.wh_per_image.value * 3600.0, SOURCE_PER_IMAGE, False, detail)


def hosted_estimate(
    factors: Factors, model: str, quality: str | None = None, size: str | None = None
) -> HostedEstimate:
    """The estimate for one image of hosted ``model`` (``openai:gpt-image-1``; quality and size optional)."""
    return HostedEstimate(model, factors.hosted_wh_per_image, factors.price(model, quality, size))


@dataclass(frozen=True)
class FrameCost:
    """The cost record of one frame: its share of the model call's time, energy and money.

    ``parts`` are its energy readings (one per metered component); ``energy_j`` sums those that have joules;
    ``measured`` is true only when every part was measured. ``usd`` is ``None`` when no price is known.
    """

    wall_s: float
    cpu_s: float
    parts: tuple[EnergyReading, ...] = ()
    usd: float | None = 0.0
    usd_source: str = LOCAL_NO_FEE

    @property
    def energy_j(self) -> float | None:
        known = [p.joules for p in self.parts if p.joules is not None]
        return sum(known) if known else None

    @property
    def energy_source(self) -> str:
        return "+".join(p.source for p in self.parts) or "none"

    @property
    def measured(self) -> bool:
        return bool(self.parts) and all(p.measured and p.joules is not None for p in self.parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able; derived fields are there for readers of the store; :meth:`from_dict` ignores them."""
        return {
            "wall_s": self.wall_s,
            "cpu_s": self.cpu_s,
            "energy_j": self.energy_j,
            "energy_source": self.energy_source,
            "measured": self.measured,
            "usd": self.usd,
            "usd_source": self.usd_source,
            "parts": [p.to_dict() for p in self.parts],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FrameCost:
        return cls(
            wall_s=float(data["wall_s"]),
            cpu_s=float(data["cpu_s"]),
            parts=tuple(EnergyReading.from_dict(p) for p in data.get("parts", ())),
            usd=data.get("usd"),
            usd_source=data.get("usd_source", ""),
        )


@dataclass
class Measurement:
    """Filled in when the ``with measure(...)`` block ends: wall and CPU seconds and one reading per meter."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    readings: tuple[EnergyReading, ...] = field(default=())
    done: bool = False

    def frame_costs(self, n: int, hosted: HostedEstimate | None = None) -> list[FrameCost]:
        """Split the call among the ``n`` frames it made (equal shares); a hosted model's frames also get the
        per-image energy estimate and price."""
        if not self.done:
            raise RuntimeError("frame_costs() called before the measure() block ended")
        if n <= 0:
            return []
        parts = tuple(replace(r, joules=None if r.joules is None else r.joules / n) for r in self.readings)
        usd: float | None = 0.0
        usd_source = LOCAL_NO_FEE
        if hosted is not None:
            parts = (*parts, hosted.reading())
            if hosted.price is None:
                usd, usd_source = None, f"no price for {hosted.model} in the cost factor table"
            else:
                usd, usd_source = hosted.price.usd, f"{hosted.model}: {hosted.price.describe()}"
        cost = FrameCost(self.wall_s / n, self.cpu_s / n, parts, usd, usd_source)
        return [cost] * n


@contextmanager
def measure(meters: Meters | Sequence[EnergyMeter]) -> Iterator[Measurement]:
    """Measure the block: ``with measure(meters) as m: out = model(...)``, then ``m.frame_costs(len(out))``.

    Also fills the measurement when the block raises (a failed call still used energy). A CPU meter that
    fails mid-run (its reading has no joules) is replaced by the CPU-time estimate for that call.
    """
    if not isinstance(meters, Meters):
        meters = Meters(tuple(meters))
    m = Measurement()
    tokens = [meter.start() for meter in meters.meters]
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    try:
        yield m
    finally:
        m.wall_s = time.perf_counter() - wall0
        m.cpu_s = max(0.0, time.process_time() - cpu0)
        readings = []
        for meter, token in zip(meters.meters, tokens, strict=True):
            reading = meter.stop(token)
            if reading.joules is None and meter.component == "cpu" and meters.watts_per_core is not None:
                estimate = CpuTimeEstimateMeter(meters.watts_per_core).reading(m.cpu_s)
                reading = replace(estimate, detail=f"{estimate.detail} ({meter.source}: {reading.detail})")
            readings.append(reading)
        m.readings = tuple(readings)
        m.done = True
