"""Runs with a stabilizer: the stabilized copy is what is stored and fed back, the raw copy is kept on
request, resume stays bit-identical, and bad settings write nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import driftloop
import driftloop.store.writer
from conftest import run_cli
from driftloop.config import InputRef, RunConfig, arm_label, config_arm, split_arm
from driftloop.errors import RunInterrupted, SpecError
from driftloop.frames import frame_sha256, read_frame
from driftloop.importer import import_chain
from driftloop.replicators import registry
from driftloop.replicators.base import Copy, Refusal, Requirements
from driftloop.stabilizers import parse_stabilizer
from driftloop.store import Store
from sequence_fixtures import generation_loss, write_pngs

LAB = parse_stabilizer("colour:lab")


def _jpeg(fail_at: int | None = None):
    """The real ``jpeg:quality=40`` replicator; its ``fail_at``-th call raises KeyboardInterrupt (Ctrl-C)."""
    rep = registry.build("jpeg:quality=40")
    real, calls = rep.replicate, {"n": 0}

    def replicate(frames, seeds):
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise KeyboardInterrupt
        return real(frames, seeds)

    rep.replicate = replicate  # type: ignore[method-assign]
    return rep


def _run(image: Path, ws: Path, model, **kw) -> driftloop.Run:
    kw = {"n": 6, "seeds": [1, 2], "size": 48, "render": False, **kw}
    return driftloop.run(image, model=model, workspace=ws, **kw)


def test_the_stabilized_copy_is_stored_and_fed_back(sample_images, tmp_path: Path) -> None:
    run = _run(sample_images["chelsea.jpg"], tmp_path / "ws", "jpeg:quality=40", stabilize="colour:lab")
    assert run.config["stabilize"] == "colour:lab" and "keep_raw" not in run.config
    codec = registry.build("jpeg:quality=40")
    origin = run.frame(0, 0)
    for r in run.frame_rows():
        if r.step == 0:
            assert r.info is None
            continue
        previous = run.frame(r.chain, r.step - 1)
        expected = LAB.apply(codec.replicate([previous], [r.seed])[0], origin)
        assert np.array_equal(run.frame(r.chain, r.step), expected)  # what feeds the next copy
        assert r.sha256 == frame_sha256(expected)
        assert r.info == {"stabilizer": "colour:lab"}
    # the metrics are of the stored (stabilized) frames: colour stays at frame 0's, unlike a plain run
    plain = _run(sample_images["chelsea.jpg"], tmp_path / "ws", "jpeg:quality=40")
    assert plain.config.get("stabilize") is None and all(r.info is None for r in plain.frame_rows())
    drift = [abs(r.metric_rows()[(0, 6)]["lab_delta_e"]) for r in (run, plain)]
    assert drift[0] < drift[1]


def test_keep_raw_stores_the_models_copy_beside_it(sample_images, tmp_path: Path, monkeypatch) -> None:
    written: list[str] = []
    real_write = driftloop.store.writer.write_png_atomic

    def record(path, frame, *args, **kwargs):
        written.append(Path(path).name)
        return real_write(path, frame, *args, **kwargs)

    monkeypatch.setattr(driftloop.store.writer, "write_png_atomic", record)
    run = _run(sample_images["chelsea.jpg"], tmp_path / "ws", "jpeg:quality=40", stabilize="colour-stats",
               keep_raw=True)  # fmt: skip
    assert run.config["keep_raw"] is True
    assert written[2:6] == ["0001.raw.png", "0001.png", "0001.raw.png", "0001.png"]  # raw first, each frame
    codec = registry.build("jpeg:quality=40")
    for r in run.frame_rows():
        if r.step == 0:
            continue
        raw = read_frame(run.path / r.info["raw_path"])
        assert r.info["raw_path"] == f"frames/c{r.chain:03d}/{r.step:04d}.raw.png"
        assert r.info["raw_sha256"] == frame_sha256(raw) != r.sha256
        assert np.array_equal(raw, codec.replicate([run.frame(r.chain, r.step - 1)], [r.seed])[0])
    store = Store(tmp_path / "ws")
    stray = run.path / "frames" / "c000" / "0099.raw.png"
    stray.write_bytes(b"left by a crash")
    assert store.clean_orphans(run.id) == [stray]  # a row's raw file is kept, an orphan is not
    assert len(list(run.path.glob("frames/*/*.raw.png"))) == 2 * 6


def test_interrupted_stabilized_run_resumes_bit_identically(sample_images, tmp_path: Path) -> None:
    image = sample_images["astronaut.png"]
    full = _run(image, tmp_path / "full", _jpeg(), stabilize="colour:lab", keep_raw=True)
    with pytest.raises(RunInterrupted):
        _run(image, tmp_path / "cut", _jpeg(fail_at=4), stabilize="colour:lab", keep_raw=True)
    (summary,) = driftloop.runs(tmp_path / "cut")
    assert summary.status == "interrupted" and summary.steps_done == 3
    resumed = driftloop.resume(summary.id, workspace=tmp_path / "cut", render=False)  # rebuilt from its spec
    assert resumed.status == "done"
    assert [r["sha256"] for r in resumed.records()] == [r["sha256"] for r in full.records()]
    raws = [(r.info or {}).get("raw_sha256") for r in resumed.frame_rows()]
    assert raws == [(r.info or {}).get("raw_sha256") for r in full.frame_rows()]


def test_resume_of_a_stabilized_run_reads_frame_0_back(sample_images, tmp_path: Path, monkeypatch) -> None:
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    real = LAB.apply

    def spy(self, frame, origin):
        seen.append((frame, origin))
        return real(frame, origin)

    image = sample_images["astronaut.png"]
    with pytest.raises(RunInterrupted):
        _run(image, tmp_path / "ws", _jpeg(fail_at=3), stabilize="colour:lab", seeds=[1])
    monkeypatch.setattr(type(LAB), "apply", spy)
    (summary,) = driftloop.runs(tmp_path / "ws")
    run = driftloop.resume(summary.id, workspace=tmp_path / "ws", render=False)
    assert seen and all(np.array_equal(origin, run.frame(0, 0)) for _, origin in seen)


def test_run_resume_flag_tells_stabilized_and_plain_runs_apart(sample_images, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    plain = _run(sample_images["chelsea.jpg"], ws, "jpeg:quality=40")
    lab = _run(sample_images["chelsea.jpg"], ws, "jpeg:quality=40", stabilize="colour:lab", resume=True)
    assert lab.id != plain.id
    again = _run(sample_images["chelsea.jpg"], ws, "jpeg:quality=40", stabilize="color:lab", resume=True,
                 reuse_done=True)  # fmt: skip
    assert again.id == lab.id  # the same stabilizer, spelt another way


class Refuser:
    """A pretend hosted model: refuses every copy of chain seed 2, copies the others at half brightness."""

    requirements = Requirements(device="api", deterministic=False)
    spec = "refuser"

    def replicate(self, frames, seeds):
        return [Refusal("content policy (test)") if s % 1000 == 2 else Copy((f // 2).astype(np.uint8))
                for f, s in zip(frames, seeds, strict=True)]  # fmt: skip

    def describe(self):
        return {}


def test_a_refusing_hosted_model_with_a_stabilizer_ends_that_chain_refused(
    sample_images, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr("driftloop.chain.step_seed", lambda chain_seed, step: step * 1000 + chain_seed)
    run = _run(sample_images["chelsea.jpg"], tmp_path / "ws", Refuser(), n=3, stabilize="colour-stats",
               refusal_retries=1, metrics=False)  # fmt: skip
    chains = run.chains()
    assert [c.status for c in chains] == ["done", "refused"]
    assert chains[1].last_step == 0 and "refused at step 1: content policy (test)" in chains[1].stop_reason
    rows = [r for r in run.frame_rows() if r.chain == 0 and r.step > 0]
    assert len(rows) == 3 and all(r.info["stabilizer"] == "colour-stats" for r in rows)


def _nothing_written(ws: Path) -> bool:
    return not ws.exists() or not any((ws / "runs").glob("*")) if (ws / "runs").exists() else True


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"stabilize": "colour:xyz"}, "unknown stabilizer 'colour:xyz'; choose one of: none, colour:lab"),
        ({"keep_raw": True}, "--keep-raw keeps the model's copy before a stabilizer: give --stabilize too"),
    ],
)
def test_bad_stabilizer_settings_write_nothing(sample_images, tmp_path: Path, kw, match) -> None:
    ws = tmp_path / "ws"
    with pytest.raises(SpecError, match=match):
        _run(sample_images["chelsea.jpg"], ws, "jpeg:quality=40", **kw)
    assert not ws.exists()


def test_cli_stabilize_and_its_errors(sample_images, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    image = str(sample_images["chelsea.jpg"])
    bad = run_cli("run", image, "-m", "jpeg", "--stabilize", "sepia", "-w", str(ws))
    assert bad.returncode == 2 and "unknown stabilizer 'sepia'" in bad.stderr and not ws.exists()
    ok = run_cli("run", str(sample_images["chelsea.jpg"]), "-m", "jpeg", "-n", "2", "--size", "32",
                 "--stabilize", "colour:rgb", "--keep-raw", "--no-render", "-q", "-w", str(ws))  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    (summary,) = driftloop.runs(ws)
    run = driftloop.open_run(summary.id, ws)
    assert run.config["stabilize"] == "colour:rgb" and run.config["keep_raw"] is True
    assert len(list(run.path.glob("frames/c000/*.raw.png"))) == 2


def test_imported_runs_cannot_be_resumed(tmp_path: Path) -> None:
    write_pngs(tmp_path / "copies", generation_loss(n=3, size=32))
    run_id = import_chain(tmp_path / "copies", tmp_path / "ws", label="gpt", render=False)
    with pytest.raises(SpecError, match=r"imported:gpt\): imported runs cannot be resumed"):
        driftloop.resume(run_id, workspace=tmp_path / "ws")
    out = run_cli("resume", run_id, "-w", str(tmp_path / "ws"))
    assert out.returncode == 2 and "imported runs cannot be resumed" in out.stderr


def test_config_keeps_plain_records_and_keys_unchanged() -> None:
    inputs = (InputRef("a.png", "0" * 64),)
    plain = RunConfig("jpeg", inputs, (1,))
    lab = RunConfig("jpeg", inputs, (1,), stabilize="colour:lab", keep_raw=True)
    assert list(plain.to_dict()) == [
        "model", "inputs", "seeds", "n_steps", "size", "requested_size", "batch_size",
        "stop_on_fixed_point", "patience", "refusal_retries", "max_cost_usd", "cost", "metrics", "sweep",
    ]  # fmt: skip
    assert json.dumps(RunConfig.from_dict(plain.to_dict()).to_dict()) == json.dumps(plain.to_dict())
    assert lab.to_dict()["stabilize"] == "colour:lab" and lab.to_dict()["keep_raw"] is True
    assert RunConfig.from_dict(lab.to_dict()) == lab
    assert not plain.same_run_as(lab) and plain.key() == RunConfig("jpeg", inputs, (1,)).key()
    assert lab.arm == "jpeg + stabilize=colour:lab" == config_arm(lab.to_dict())
    assert arm_label("taef2") == "taef2" and arm_label("taef2", "none") == "taef2"
    assert split_arm("taef2 + stabilize=colour-stats") == ("taef2", "colour-stats")
    assert split_arm("imported:gpt") == ("imported:gpt", "none")
