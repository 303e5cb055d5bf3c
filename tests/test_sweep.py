"""Sweep specs: parsing, errors that name the file and key, dry runs, idempotent reruns."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import driftloop
from conftest import run_cli
from driftloop.errors import RunInterrupted
from driftloop.sweep import SweepSpecError, load_sweep, plan, run_sweep, sweep_chains, sweep_runs


@pytest.fixture
def spec_dir(sample_images, tmp_path: Path) -> Path:
    folder = tmp_path / "study"
    (folder / "pics").mkdir(parents=True)
    for p in sample_images.values():
        shutil.copy(p, folder / "pics" / p.name)
    return folder


def _write(folder: Path, text: str) -> Path:
    path = folder / "sweep.toml"
    path.write_text(text)
    return path


def test_spec_expands_images_models_and_grids(spec_dir: Path) -> None:
    spec = _write(
        spec_dir,
        """
name = "s1"
images = ["pics/", "pics/*.png"]
seeds = [1, 2]
steps = 3
size = 32
[[models]]
spec = "jpeg"
grid = { quality = [50, 90], subsampling = [0, 2] }
[[models]]
spec = "webp:quality=60"
""",
    )
    sweep = load_sweep(spec)
    assert [p.name for p in sweep.images] == ["astronaut.png", "chelsea.jpg"]  # no duplicates
    assert sweep.models == [
        "jpeg:quality=50,subsampling=0",
        "jpeg:quality=50",
        "jpeg:quality=90,subsampling=0",
        "jpeg:quality=90",
        "webp:quality=60",
    ]
    assert sweep.chains == 2 * 2 * 5
    assert sweep.control == "jpeg:quality=50,subsampling=0"  # the first JPEG model when none is named


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("images = [", "not valid TOML"),
        ('images = ["pics/"]', "'models' is missing"),
        ('images = ["nothing/*.png"]\nmodels = ["jpeg"]', "matches no image"),
        ('images = ["pics/"]\nmodels = ["jpeg:quality=500"]', "models[0]: model spec"),
        ('images = ["pics/"]\nmodels = ["jpeg"]\nsteps = 0', "steps must be"),
        ('images = ["pics/"]\nmodels = ["jpeg"]\ncolour = 1', "unknown key(s) colour"),
        ('images = ["pics/"]\nmodels = [{spec = "jpeg", grid = {quality = []}}]', "non-empty lists"),
    ],
)
def test_bad_specs_name_file_and_key(spec_dir: Path, text: str, message: str) -> None:
    spec = _write(spec_dir, text)
    with pytest.raises(SweepSpecError) as info:
        load_sweep(spec)
    assert str(spec) in str(info.value) and message in str(info.value)


def test_rerun_only_runs_what_is_missing(spec_dir: Path, tmp_path: Path) -> None:
    spec = _write(spec_dir, 'name = "s2"\nimages = ["pics/"]\nseeds = [1, 2]\nsteps = 3\nsize = 32\n'
                  'models = ["jpeg", "webp"]\n')  # fmt: skip
    sweep = load_sweep(spec)
    ws = tmp_path / "ws"
    assert [r.remaining_frames for r in plan(sweep, ws)] == [12, 12]
    first = run_sweep(sweep, ws, render=False)
    assert len(first) == 2 and sweep_runs(ws, "s2") == first
    assert [r.remaining_frames for r in plan(sweep, ws)] == [0, 0]
    assert all(r.seconds_per_frame is not None for r in plan(sweep, ws))
    again = run_sweep(sweep, ws, render=False)
    assert again == first and len(driftloop.runs(ws)) == 2  # nothing new


def test_cli_sweep_dry_run_and_run(spec_dir: Path, tmp_path: Path) -> None:
    text = 'name = "s3"\nimages = ["pics/astronaut.png"]\nseeds = [1]\nsteps = 2\nsize = 32\n'
    text += 'models = ["jpeg", "taef2"]\n'
    spec = _write(spec_dir, text)
    ws = tmp_path / "ws"
    dry = run_cli("sweep", str(spec), "--dry-run", "-w", str(ws))
    assert dry.returncode == 0, dry.stderr
    assert "2 chain(s)" in dry.stdout and "taef2" in dry.stdout and "total:" in dry.stdout
    assert not (ws / "runs").exists() or not any((ws / "runs").iterdir())
    done = run_cli("sweep", str(spec), "--no-render", "-w", str(ws))
    assert done.returncode == 0, done.stderr
    assert len(driftloop.runs(ws)) == 2
    bad = run_cli("sweep", str(tmp_path / "missing.toml"), "-w", str(ws))
    assert bad.returncode == 2 and "missing.toml: no such sweep spec" in bad.stderr


def test_dry_run_says_why_a_local_models_time_is_unknown(spec_dir: Path, tmp_path: Path) -> None:
    """Without its weights a local model cannot be timed: the dry run says so, not "hosted"."""
    text = 'name = "s5"\nimages = ["pics/astronaut.png"]\nseeds = [1]\nsteps = 2\nsize = 32\n'
    spec = _write(spec_dir, text + 'models = ["jpeg", "taef2"]\n')
    empty = tmp_path / "no-weights"
    empty.mkdir()
    env = {"DRIFTLOOP_MODEL_DIR": str(empty), "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    dry = run_cli("sweep", str(spec), "--dry-run", "-w", str(tmp_path / "ws"), env=env)
    assert dry.returncode == 0, dry.stderr
    assert "unknown (weights not here)" in dry.stdout and "hosted" not in dry.stdout
    assert "the time of what is unknown (weights not here)" in dry.stdout


def test_cli_bias_card_of_a_sweep(spec_dir: Path, tmp_path: Path) -> None:
    text = 'name = "s4"\nimages = ["pics/"]\nseeds = [1, 2]\nsteps = 4\nsize = 32\ncontrol = "jpeg"\n'
    text += 'models = ["jpeg", "webp:quality=30"]\n'
    spec = _write(spec_dir, text)
    ws = tmp_path / "ws"
    assert run_cli("sweep", str(spec), "--no-render", "-q", "-w", str(ws)).returncode == 0
    res = run_cli("bias", "s4", "-w", str(ws))
    assert res.returncode == 0, res.stderr
    card = json.loads((ws / "sweeps" / "s4" / "bias_card.json").read_text())
    assert {m["model"] for m in card["models"]} == {"jpeg:quality=75", "webp:quality=30"}  # full specs
    assert any(v.startswith("webp:quality=30") and "vs jpeg:quality=75" in v for v in card["verdicts"])
    html = (ws / "sweeps" / "s4" / "bias_card.html").read_text()
    assert "Cost" in html and "Cost per model" in html and "https://" not in html
    cost = card["cost"]
    assert set(cost["by_model"]) == {"jpeg:quality=75", "webp:quality=30"}
    assert [c["frames"] for c in cost["by_model"].values()] == [16, 16] and cost["total"]["frames"] == 32
    missing = run_cli("bias", "nothing-like-this", "-w", str(ws))
    assert missing.returncode == 2 and "no sweep or run 'nothing-like-this'" in missing.stderr


def test_spec_options_pass_through(spec_dir: Path) -> None:
    text = 'images = ["pics/"]\nmodels = ["jpeg"]\nfaces = true\nstop_on_fixed_point = true\nbatch_size = 2\n'
    sweep = load_sweep(_write(spec_dir, text))
    assert sweep.options == {"faces": True, "stop_on_fixed_point": True, "batch_size": 2}
    assert sweep.name == "sweep" and sweep.steps == 101 and sweep.size == 512  # defaults


def _card(ws: Path, name: str) -> dict:
    res = run_cli("bias", name, "-w", str(ws))
    assert res.returncode == 0, res.stderr
    return json.loads((ws / "sweeps" / name / "bias_card.json").read_text())


def test_named_control_is_run_and_compared_with(spec_dir: Path, tmp_path: Path) -> None:
    text = 'name = "s5"\nimages = ["pics/"]\nseeds = [1]\nsteps = 3\nsize = 32\ncontrol = "webp:quality=50"\n'
    text += 'models = ["jpeg:quality=90"]\n'
    sweep = load_sweep(_write(spec_dir, text))
    assert sweep.models == ["jpeg:quality=90", "webp:quality=50"] and sweep.control == "webp:quality=50"
    ws = tmp_path / "ws"
    run_sweep(sweep, ws, render=False)
    card = _card(ws, "s5")
    assert card["settings"]["control"] == "webp:quality=50"
    assert any("vs webp:quality=50" in v for v in card["verdicts"] if v.startswith("jpeg:quality=90"))


def test_default_and_no_control(spec_dir: Path) -> None:
    base = 'images = ["pics/"]\nmodels = ["webp"]\n'
    sweep = load_sweep(_write(spec_dir, base))
    assert sweep.control == "jpeg:quality=90" and sweep.models == ["webp", "jpeg:quality=90"]
    sweep = load_sweep(_write(spec_dir, base + "control = false\n"))
    assert sweep.control is None and sweep.models == ["webp"]
    with pytest.raises(SweepSpecError, match="control: "):
        load_sweep(_write(spec_dir, base + 'control = "jpeg:quality=0"\n'))


def test_added_seeds_and_images_run_only_the_missing_chains(spec_dir: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    head = 'name = "grow"\nsteps = 3\nsize = 32\nmodels = ["webp"]\ncontrol = false\n'
    small = load_sweep(_write(spec_dir, head + 'images = ["pics/astronaut.png"]\nseeds = [1, 2]\n'))
    first = run_sweep(small, ws, render=False)
    assert len(first) == 1
    grown = load_sweep(_write(spec_dir, head + 'images = ["pics/"]\nseeds = [1, 2, 3]\n'))
    (row,) = plan(grown, ws)
    assert row.chains == 6 and row.remaining_frames == (6 - 2) * 3
    ids = run_sweep(grown, ws, render=False)
    assert ids[0] == first[0] and len(ids) == 3  # astronaut × seed 3, chelsea × seeds 1-3
    made = sorted(len(driftloop.open_run(i, ws).chains()) for i in ids)
    assert made == [1, 2, 3]  # each missing chain made once, nothing made twice
    assert run_sweep(grown, ws, render=False) == ids and len(driftloop.runs(ws)) == 3
    (model,) = _card(ws, "grow")["models"]
    assert model["n_chains"] == 6 and model["n_images"] == 2 and model["n_seeds"] == 3


def test_a_matching_earlier_run_is_reused_and_counted_once(spec_dir: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    pics = spec_dir / "pics"
    earlier = driftloop.run(
        [pics / "astronaut.png", pics / "chelsea.jpg"],
        model="webp",
        n=3,
        seeds=[1, 7],
        size=32,
        workspace=ws,
        render=False,
    )  # fmt: skip  (seed 7 is not in the sweep)
    text = 'name = "reuse"\nimages = ["pics/"]\nseeds = [1]\nsteps = 3\nsize = 32\nmodels = ["webp"]\n'
    text += "control = false\n"
    sweep = load_sweep(_write(spec_dir, text))
    assert [r.remaining_frames for r in plan(sweep, ws)] == [0]
    assert run_sweep(sweep, ws, render=False) == [earlier.id] and len(driftloop.runs(ws)) == 1
    (model,) = _card(ws, "reuse")["models"]
    assert (
        model["n_chains"] == 2 and model["n_seeds"] == 1
    )  # the earlier run's seed-7 chains are not the sweep's


def test_attractors_and_fixed_points_of_a_sweep(spec_dir: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    text = 'name = "fp"\nimages = ["pics/"]\nseeds = [1, 2]\nsteps = 8\nsize = 32\n'
    text += 'models = ["jpeg:quality=90"]\n'
    run_sweep(load_sweep(_write(spec_dir, text)), ws, render=False)
    attractors = _card(ws, "fp")["attractors"]
    assert attractors["fixed_points"]  # JPEG at a fixed quality settles within a few steps
    assert attractors["n_chains"] == 4
    for cluster in attractors["clusters"]:  # two pictures: at most two source images per cluster
        assert cluster["n_sources"] <= 2


def test_card_reads_only_chains_of_the_specs_current_size(spec_dir: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    head = 'name = "resize"\nimages = ["pics/astronaut.png"]\nseeds = [1]\nsteps = 3\nmodels = ["webp"]\n'
    run_sweep(load_sweep(_write(spec_dir, head + "size = 32\ncontrol = false\n")), ws, render=False)
    run_sweep(load_sweep(_write(spec_dir, head + "size = 48\ncontrol = false\n")), ws, render=False)
    assert len(driftloop.runs(ws)) == 2
    chains, _ = sweep_chains(ws, "resize")
    (run_id,) = chains
    assert driftloop.open_run(run_id, ws).config["requested_size"] == 48


def test_an_unfinished_run_with_other_chains_is_not_resumed_by_a_sweep(
    spec_dir: Path, tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    pics = spec_dir / "pics"

    def stop_after_step_1(event) -> None:
        if event.step == 1:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        driftloop.run([pics / "astronaut.png", pics / "chelsea.jpg"], model="webp", n=3, seeds=[1], size=32,
                      workspace=ws, render=False, progress=stop_after_step_1)  # fmt: skip
    (mine,) = driftloop.runs(ws)
    text = 'name = "part"\nimages = ["pics/astronaut.png"]\nseeds = [1]\nsteps = 3\nsize = 32\n'
    ids = run_sweep(
        load_sweep(_write(spec_dir, text + 'models = ["webp"]\ncontrol = false\n')), ws, render=False
    )
    assert mine.id not in ids and len(ids) == 1  # a new run for astronaut; chelsea's chain is not the sweep's
    assert [c.last_step for c in driftloop.open_run(mine.id, ws).chains()] == [1, 1]  # left as it was
