"""Sweeps with experiment arms: a ``stabilize`` grid axis, and imported chains beside driftloop's models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import driftloop
from conftest import run_cli
from driftloop import api
from driftloop.errors import RunNotFoundError
from driftloop.importer import import_chain
from driftloop.sweep import SweepSpecError, load_sweep, plan, run_sweep, sweep_chains
from sequence_fixtures import generation_loss, write_gif, write_pngs


@pytest.fixture
def spec_dir(sample_images, tmp_path: Path) -> Path:
    folder = tmp_path / "study"
    (folder / "pics").mkdir(parents=True)
    for p in sample_images.values():
        shutil.copy(p, folder / "pics" / p.name)
    write_pngs(folder / "copies", generation_loss(n=4, size=32))
    return folder


def _write(folder: Path, text: str) -> Path:
    path = folder / "sweep.toml"
    path.write_text('images = ["pics/"]\nseeds = [1]\nsteps = 3\nsize = 32\n' + text)
    return path


ARMS = """name = "arms"
control = "webp"
[[models]]
spec = "jpeg"
grid = { quality = [40], stabilize = ["none", "color:lab"] }
"""


def test_stabilize_is_a_grid_axis(spec_dir: Path, tmp_path: Path) -> None:
    sweep = load_sweep(_write(spec_dir, ARMS))
    assert sweep.models == ["jpeg:quality=40", "jpeg:quality=40 + stabilize=colour:lab", "webp"]
    ws = tmp_path / "ws"
    assert [r.remaining_frames for r in plan(sweep, ws)] == [6, 6, 6]
    ids = run_sweep(sweep, ws, render=False)
    runs = [driftloop.open_run(i, ws) for i in ids]
    assert [(r.config["model"], r.config.get("stabilize")) for r in runs] == [
        ("jpeg:quality=40", None), ("jpeg:quality=40", "colour:lab"), ("webp", None),
    ]  # fmt: skip
    assert run_sweep(sweep, ws, render=False) == ids and len(driftloop.runs(ws)) == 3  # nothing new
    assert [r.remaining_frames for r in plan(sweep, ws)] == [0, 0, 0]
    chains, control = sweep_chains(ws, "arms")
    assert set(chains) == set(ids) and control == "webp"


def test_bias_card_has_the_stabilizer_arm(spec_dir: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert run_cli("sweep", str(_write(spec_dir, ARMS)), "--no-render", "-q", "-w", str(ws)).returncode == 0
    res = run_cli("bias", "arms", "-w", str(ws))
    assert res.returncode == 0, res.stderr
    card = json.loads((ws / "sweeps" / "arms" / "bias_card.json").read_text())
    labels = {m["model"] for m in card["models"]}
    assert labels == {"jpeg:quality=40", "jpeg:quality=40 + stabilize=colour:lab", "webp:quality=80"}
    assert set(card["cost"]["by_model"]) == labels
    (arm,) = card["arms"]
    assert (arm["model"], arm["stabilizer"], arm["n_images"]) == ("jpeg:quality=40", "colour:lab", 2)
    measures = {m["measure"]: m for m in arm["measures"]}
    assert {"lab_delta_e", "ssim_to_origin", "entropy_bits", "histogram_gaps"} <= set(measures)
    assert measures["lab_delta_e"]["difference"]["method"] == "t over images"
    assert any("2 shared source image(s)" in n for n in arm["notes"])
    html = (ws / "sweeps" / "arms" / "bias_card.html").read_text()
    assert "Stabilizer arms" in html
    assert "jpeg:quality=40 + stabilize=colour:lab against jpeg:quality=40" in html


def test_a_plain_sweep_card_has_no_arms_key(spec_dir: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    run_sweep(load_sweep(_write(spec_dir, 'name = "plain"\nmodels = ["jpeg"]\n')), ws, render=False)
    html, js = api.bias("plain", ws)
    assert "arms" not in json.loads(js.read_text()) and "Stabilizer arms" not in html.read_text()


def test_imported_runs_sit_beside_the_models(spec_dir: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    chain = generation_loss(n=4, size=32)
    write_pngs(spec_dir / "by-hand", chain[:1] + [f[::-1].copy() for f in chain[1:]])  # another chain
    given = import_chain(spec_dir / "by-hand", ws, label="by hand", render=False)
    text = f'name = "mixed"\nmodels = ["jpeg"]\n[[imported]]\nrun = "{given}"\n'
    text += '[[imported]]\npath = "copies/"\nlabel = "gpt image"\n'
    spec = _write(spec_dir, text)
    sweep = load_sweep(spec)
    with pytest.raises(SweepSpecError, match=r"copies is not imported yet; run driftloop import"):
        run_sweep(sweep, ws, render=False)  # without an importer a source is not imported behind one's back
    done = run_cli("sweep", str(spec), "--no-render", "-q", "-w", str(ws))
    assert done.returncode == 0, done.stderr
    models = sorted(r.model for r in driftloop.runs(ws))
    assert models == ["imported:by hand", "imported:gpt image", "jpeg"]
    again = run_cli("sweep", str(spec), "--no-render", "-w", str(ws))
    assert again.returncode == 0 and "imported:gpt image: already imported as run" in again.stderr
    assert len(driftloop.runs(ws)) == 3
    chains, _ = sweep_chains(ws, "mixed")
    assert len(chains) == 3
    _, js = api.bias("mixed", ws)
    card = json.loads(js.read_text())
    assert {m["model"] for m in card["models"]} == {
        "jpeg:quality=75",
        "imported:by hand",
        "imported:gpt image",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('models = [{spec = "jpeg", grid = {stabilize = ["sepia"]}}]',
         "models[0].grid.stabilize: unknown stabilizer 'sepia'"),
        ('models = [{spec = "jpeg", grid = {stabilize = [1]}}]', "is not a stabilizer spec"),
        ('[[imported]]\nrun = "x"\npath = "copies/"\nlabel = "a"', "imported[0]: give either run"),
        ('[[imported]]\npath = "copies/"', "imported[0]: a path needs a label"),
        ('[[imported]]\nrun = "x"\ncolour = 2', "imported[0]: unknown key(s) colour"),
        ('[[imported]]\npath = "copies/"\nlabel = "a"\nevery = 0', "imported[0].every must be a positive"),
        ("imported = 3", "imported must be a list of tables"),
    ],
)  # fmt: skip
def test_bad_arm_specs_name_file_and_key(spec_dir: Path, text: str, message: str) -> None:
    spec = _write(spec_dir, text)
    with pytest.raises(SweepSpecError) as info:
        load_sweep(spec)
    assert str(spec) in str(info.value) and message in str(info.value)


def test_an_imported_entry_must_be_an_imported_run(spec_dir: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    plain = driftloop.run(spec_dir / "pics" / "chelsea.jpg", model="jpeg", n=1, size=32, workspace=ws,
                          render=False)  # fmt: skip
    sweep = load_sweep(_write(spec_dir, f'models = ["jpeg"]\n[[imported]]\nrun = "{plain.id}"\n'))
    with pytest.raises(SweepSpecError, match=f"run {plain.id} is a jpeg run, not an imported one"):
        run_sweep(sweep, ws, render=False)
    sweep = load_sweep(_write(spec_dir, 'models = ["jpeg"]\n[[imported]]\nrun = "no-such-run"\n'))
    with pytest.raises(RunNotFoundError):
        run_sweep(sweep, ws, render=False)


def test_a_sweep_of_imported_chains_alone(tmp_path: Path) -> None:
    """No images, no models: imported arms only; a run given by id takes the sweep's label; control =
    false means no comparisons; sources are stored absolute and resolved, with their sha256."""
    study = tmp_path / "study"
    chain = generation_loss(n=4, size=32)
    write_pngs(study / "gpt", chain)
    write_pngs(study / "gem", chain[:1] + [f[::-1].copy() for f in chain[1:]])
    write_gif(study / "third.gif", chain[:1] + [f[:, ::-1].copy() for f in chain[1:]])
    ws = tmp_path / "ws"
    given = import_chain(study / "gem", ws, label="old name", render=False)
    spec = study / "alone.toml"
    spec.write_text(
        f'name = "alone"\ncontrol = false\n[[imported]]\nrun = "{given}"\nlabel = "gemini app"\n'
        '[[imported]]\npath = "gpt/"\nlabel = "chatgpt app"\n[[imported]]\npath = "third.gif"\nlabel = "x"\n'
    )
    done = run_cli("sweep", str(spec), "--no-render", "-q", "-w", str(ws))
    assert done.returncode == 0, done.stderr
    _, js = api.bias("alone", ws)
    card = json.loads(js.read_text())
    assert {m["model"] for m in card["models"]} == {
        "imported:gemini app",
        "imported:chatgpt app",
        "imported:x",
    }
    assert card["settings"]["control"] is None and not any(m["is_control"] for m in card["models"])
    assert any("control = false" in n for n in card["notes"])
    for run in driftloop.runs(ws):
        files = driftloop.open_run(run.id, ws).config["import"]["files"]
        assert all(Path(f["path"]).is_absolute() and ".." not in Path(f["path"]).parts for f in files)
        assert all(len(f["sha256"]) == 64 for f in files)
    gif_run = next(r for r in driftloop.runs(ws) if r.model == "imported:x")
    (chain0,) = driftloop.open_run(gif_run.id, ws).chains()
    assert chain0.input_path == str((study / "third.gif").resolve())


def test_control_false_means_no_comparison_on_a_model_sweep(spec_dir: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    spec = _write(spec_dir, 'name = "nocontrol"\ncontrol = false\nmodels = ["jpeg", "webp"]\n')
    assert run_cli("sweep", str(spec), "--no-render", "-q", "-w", str(ws)).returncode == 0
    card = json.loads(api.bias("nocontrol", ws)[1].read_text())
    assert card["settings"]["control"] is None and not any(m["is_control"] for m in card["models"])
    assert {m["model"] for m in card["models"]} == {"jpeg:quality=75", "webp:quality=80"}  # full specs


def test_faces_true_holds_for_imported_arms(tmp_path: Path) -> None:
    from skimage import data

    from driftloop.metrics.face import available

    ok, why = available()
    if not ok:
        pytest.skip(f"MediaPipe's face mesh is not installed here: {why}")
    study = tmp_path / "study"
    person = np.asarray(Image.fromarray(data.astronaut()).resize((128, 128)))
    write_pngs(study / "new", [person, np.ascontiguousarray(person[:, ::-1])])
    write_pngs(study / "old", [person, np.clip(person.astype(int) + 8, 0, 255).astype(np.uint8)])
    ws = tmp_path / "ws"
    given = import_chain(study / "old", ws, label="old", render=False)  # imported without faces
    spec = study / "faces.toml"
    spec.write_text(f'name = "faces"\nfaces = true\n[[imported]]\nrun = "{given}"\n'
                    '[[imported]]\npath = "new/"\nlabel = "new"\n')  # fmt: skip
    done = run_cli("sweep", str(spec), "--no-render", "-w", str(ws))
    assert done.returncode == 0, done.stderr
    assert "measuring faces on run" in done.stderr
    for run in driftloop.runs(ws):
        rows = driftloop.open_run(run.id, ws).metric_rows()
        assert rows[(0, 0)]["face_found"] == 1.0, run.model
    assert not any(w in done.stderr for w in ("W0000", "absl::InitializeLog", "XNNPACK"))
