"""The Python API end to end: runs, records, resume, --resume, renders, and bad input writing nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import driftloop
from driftloop.errors import InputError, RunInterrupted, SpecError, WeightsError


def test_run_taef2_stores_every_frame(sample_images: dict[str, Path], workspace: Path) -> None:
    run = driftloop.run(
        [sample_images["astronaut.png"], sample_images["chelsea.jpg"]],
        model="taef2", n=3, seeds=[1, 2], size=64, workspace=workspace,
    )  # fmt: skip
    chains = run.chains()
    assert len(chains) == 4 and {c.status for c in chains} == {"done"}
    assert [(c.input_path.endswith("astronaut.png"), c.seed) for c in chains] == [
        (True, 1), (True, 2), (False, 1), (False, 2),
    ]  # fmt: skip
    records = run.records()
    assert len(records) == 4 * 4
    assert run.frame(0, 0).shape == (64, 64, 3)
    assert not np.array_equal(run.frame(0, 0), run.frame(0, 3))
    # a model without seeds gives the same chain for every seed of one image
    assert np.array_equal(run.frame(0, 3), run.frame(1, 3))
    assert run.status == "done"
    info = run.row.model_info
    assert info["variant"] == "taef2" and len(info["weights_sha256"]) == 64
    assert {"python", "torch", "numpy", "pillow", "driftloop"} <= set(run.row.versions)
    assert run.row.host["hostname"]
    assert run.config["n_steps"] == 3 and run.config["size"] == 64
    for name in ("chain000.gif", "chain000.mp4", "chain003.gif", "contact_sheet.png"):
        assert (run.path / name).is_file()
    # the listing sees it
    (summary,) = driftloop.runs(workspace)
    assert (summary.id, summary.chains, summary.steps_done, summary.status) == (run.id, 4, 3, "done")


def test_same_settings_give_bit_identical_frames(sample_images: dict[str, Path], tmp_path: Path) -> None:
    shas = []
    for ws in ("a", "b"):
        image = sample_images["astronaut.png"]
        run = driftloop.run(image, model="taef2", n=2, size=64, workspace=tmp_path / ws, render=False)
        shas.append([r["sha256"] for r in run.records()])
    assert shas[0] == shas[1]


class Flaky:
    """Darkens by one level per step; its ``fail_at``-th call raises KeyboardInterrupt (a user's Ctrl-C)."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.calls = 0
        self.fail_at = fail_at

    def __call__(self, frames, seeds):
        self.calls += 1
        if self.calls == self.fail_at:
            raise KeyboardInterrupt
        return [
            np.where(f > 0, f - 1, 0).astype(np.uint8) ^ np.uint8(s & 1)
            for f, s in zip(frames, seeds, strict=True)
        ]


def test_interrupt_then_resume_matches_uninterrupted(sample_images: dict[str, Path], tmp_path: Path) -> None:
    img = sample_images["chelsea.jpg"]
    full = driftloop.run(
        img, model=Flaky(), n=8, seeds=[3, 4], size=32, workspace=tmp_path / "full", render=False
    )
    flaky = Flaky(fail_at=5)
    with pytest.raises(RunInterrupted, match="driftloop resume"):
        driftloop.run(img, model=flaky, n=8, seeds=[3, 4], size=32, workspace=tmp_path / "cut", render=False)
    (summary,) = driftloop.runs(tmp_path / "cut")
    assert summary.status == "interrupted" and summary.steps_done == 4
    with pytest.raises(SpecError, match="pass it again as model="):
        driftloop.resume(summary.id, workspace=tmp_path / "cut")
    said: list[str] = []
    resumed = driftloop.resume(
        summary.id, workspace=tmp_path / "cut", model=Flaky(), render=False, log=said.append
    )
    assert [r["sha256"] for r in resumed.records()] == [r["sha256"] for r in full.records()]
    assert resumed.status == "done" and not any("not the one" in m for m in said)


def test_resume_with_another_callable_warns(sample_images: dict[str, Path], tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    with pytest.raises(RunInterrupted):
        driftloop.run(sample_images["chelsea.jpg"], model=Flaky(fail_at=3), n=5, size=32, workspace=ws,
                      render=False)  # fmt: skip
    (summary,) = driftloop.runs(ws)
    said: list[str] = []
    other = lambda frames, seeds: frames  # noqa: E731
    driftloop.resume(summary.id, workspace=ws, model=other, render=False, log=said.append)
    assert any("not the one the run was made with" in m for m in said)
    assert any(e["kind"] == "warning" for e in driftloop.open_run(summary.id, ws).events())


def test_resume_flag_continues_matching_run(sample_images: dict[str, Path], tmp_path: Path) -> None:
    img = sample_images["chelsea.jpg"]
    ws = tmp_path / "ws"
    with pytest.raises(RunInterrupted):
        driftloop.run(img, model=Flaky(fail_at=3), n=6, size=32, workspace=ws, render=False)
    messages: list[str] = []
    again = driftloop.run(
        img, model=Flaky(), n=6, size=32, workspace=ws, resume=True, render=False, log=messages.append
    )
    assert len(driftloop.runs(ws)) == 1
    assert any("resuming run" in m for m in messages)
    assert again.chains()[0].last_step == 6
    # different settings: a new run, not a resume
    driftloop.run(img, model=Flaky(), n=7, size=32, workspace=ws, resume=True, render=False)
    assert len(driftloop.runs(ws)) == 2


def test_bad_input_writes_nothing(sample_images: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    ws = tmp_path / "ws"
    with pytest.raises(InputError, match=r"broken\.png"):
        driftloop.run([sample_images["astronaut.png"], bad], model="jpeg", n=2, workspace=ws)
    assert not ws.exists() or driftloop.runs(ws) == []
    assert not (ws / "runs").exists() or list((ws / "runs").iterdir()) == []


def test_missing_weights_write_nothing(sample_images: dict[str, Path], tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DRIFTLOOP_MODEL_DIR", str(tmp_path / "nothing"))
    ws = tmp_path / "ws"
    with pytest.raises(WeightsError):
        driftloop.run(sample_images["astronaut.png"], model="taef2", n=2, workspace=ws)
    assert not ws.exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"n": 0}, "at least 1"), ({"size": 4}, "at least 8"), ({"seeds": []}, "at least one seed"),
     ({"batch_size": 0}, "batch size")],
)  # fmt: skip
def test_bad_settings(sample_images: dict[str, Path], tmp_path: Path, kwargs, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        driftloop.run(sample_images["astronaut.png"], model="jpeg", workspace=tmp_path / "ws", **kwargs)


def test_fixed_point_stop_and_size_multiple(sample_images: dict[str, Path], tmp_path: Path) -> None:
    run = driftloop.run(
        sample_images["astronaut.png"], model=lambda fs, ss: [f // 2 for f in fs], n=50, size=30,
        stop_on_fixed_point=True, patience=2, workspace=tmp_path / "ws", render=False,
    )  # fmt: skip
    (chain,) = run.chains()
    assert chain.status == "fixed_point" and chain.last_step == 10
    assert run.frame(0, 0).shape == (30, 30, 3)
    image = sample_images["astronaut.png"]
    taef2 = driftloop.run(image, model="taef2", n=1, size=30, workspace=tmp_path / "t", render=False)
    assert taef2.frame(0, 1).shape == (32, 32, 3)  # rounded to the model's multiple of 8


def test_cost_is_recorded_per_frame_and_totalled(sample_images, tmp_path: Path, monkeypatch) -> None:
    from driftloop.cost import pick_meters

    # a machine without readable RAPL counters, whatever this one has
    no_rapl = lambda device, factors: pick_meters(device, factors, powercap_root=tmp_path / "none")  # noqa: E731
    monkeypatch.setattr("driftloop.engines.start.pick_meters", no_rapl)
    factors = tmp_path / "factors.toml"
    factors.write_text("[cost]\nwatts_per_core = 20\npue = 1.0\n")
    image = sample_images["astronaut.png"]
    run = driftloop.run(image, model="jpeg", n=4, seeds=[1, 2], size=32, workspace=tmp_path / "ws",
                        render=False, cost_factors=factors, country="FR")  # fmt: skip
    rows = [r for r in run.frame_rows() if r.step > 0]
    assert all(r.cost is not None and r.cost["wall_s"] >= 0 for r in rows)
    assert all(r.cost is None for r in run.frame_rows() if r.step == 0)  # the original cost nothing
    per_chain, total = run.cost_totals()
    assert set(per_chain) == {0, 1} and total.frames == 8
    assert total.country == "FR" and run.factors.watts_per_core.value == 20
    assert total.energy_wh == pytest.approx(sum(r.cost["energy_j"] for r in rows) / 3600, rel=1e-9)
    for r in rows:  # no RAPL here: CPU seconds × the configured 20 W per core, labelled an estimate
        assert not r.cost["measured"] and "estimate" in r.cost["energy_source"]
        assert r.cost["energy_j"] == pytest.approx(r.cost["cpu_s"] * 20, abs=0.02)


def test_unknown_country_is_refused_before_anything_is_written(sample_images, tmp_path: Path) -> None:
    from driftloop.cost import CostConfigError

    with pytest.raises(CostConfigError, match="XX"):
        driftloop.run(
            sample_images["astronaut.png"], model="jpeg", n=2, workspace=tmp_path / "ws", country="XX"
        )
    assert not (tmp_path / "ws").exists()
