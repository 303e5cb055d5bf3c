"""An explicit ``weights=PATH`` is the only place a TAE's weights come from: its files are loaded (and their
sha256 recorded), or the run is refused with an error naming the file and what belongs there (exit 3)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_cli
from driftloop.errors import WeightsError
from driftloop.replicators import build, listing
from driftloop.replicators.tae_model import TinyAutoEncoder

ENC, DEC = "taef2_encoder.pth", "taef2_decoder.pth"
FRAME = np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def random_weights(folder: Path, latent: int = 32, pool: bool = True) -> Path:
    """A folder of taef2-named files holding random weights (of the taef2 shapes unless told otherwise)."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(1)
    model = TinyAutoEncoder(latent, pool)
    torch.save(model.encoder.state_dict(), folder / ENC)
    torch.save(model.decoder.state_dict(), folder / DEC)
    return folder


def test_explicit_copy_is_loaded_and_hashed_not_the_model_dir(
    models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DRIFTLOOP_MODEL_DIR holds other (random) taef2 weights: the run must use and record the named ones."""
    decoy = random_weights(tmp_path / "decoy" / "taef2")
    monkeypatch.setenv("DRIFTLOOP_MODEL_DIR", str(decoy.parent))
    own = tmp_path / "own"
    own.mkdir()
    for name in (ENC, DEC):
        shutil.copy(models_dir / "taef2" / name, own / name)
    rep = build(f"taef2:weights={own}")
    info = rep.describe()
    for name in (ENC, DEC):
        assert info["weight_files"][name] == {"path": str(own / name), "sha256": sha256(own / name)}
        assert sha256(own / name) != sha256(decoy / name)
    (mine,) = rep.replicate([FRAME], [0])
    (decoy_copy,) = build("taef2").replicate([FRAME], [0])
    monkeypatch.setenv("DRIFTLOOP_MODEL_DIR", str(models_dir))
    (real,) = build("taef2").replicate([FRAME], [0])
    assert np.array_equal(mine, real) and not np.array_equal(mine, decoy_copy)


def test_a_file_given_as_weights_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    text = tmp_path / "text.jpg"
    text.write_text("not weights\n")
    with pytest.raises(WeightsError) as err:
        build(f"taef2:weights={text}")
    message = str(err.value)
    assert str(text) in message and "is a file" in message and ENC in message and DEC in message
    assert err.value.exit_code == 3
    status = next(r for r in listing() if r.name == "taef2").weights
    assert status.present  # the default config still finds the model dir


def test_a_folder_without_the_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match=rf"does not hold taef2's weight files: expected {ENC} and {DEC}"):
        build(f"taef2:weights={tmp_path / 'empty'}")


def test_a_text_file_named_like_the_weights_is_named(models_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / ENC).write_text("hello\n")
    shutil.copy(models_dir / "taef2" / DEC, folder / DEC)
    rep = build(f"taef2:weights={folder}")
    with pytest.raises(WeightsError) as err:
        rep.describe()  # what the API records before the run exists: loads (and checks) the files
    message = str(err.value)
    assert message.startswith(f"{folder / ENC}: not a valid taef2 weight file")
    assert "expected a PyTorch state dict of the taef2 encoder" in message and "cannot be read" in message


def test_a_state_dict_of_the_wrong_shapes_is_named(models_dir: Path, tmp_path: Path) -> None:
    folder = random_weights(tmp_path / "w", latent=16, pool=False)  # a taef1 saved under taef2's names
    with pytest.raises(WeightsError) as err:
        build(f"taef2:weights={folder}").replicate([FRAME], [0])
    message = str(err.value)
    assert message.startswith(f"{folder / ENC}: not a valid taef2 weight file")
    assert "do not fit" in message and "0.weight of shape (64, 3, 3, 3)" in message


def test_cli_refuses_a_text_file_as_weights_and_stores_no_run(tmp_path: Path) -> None:
    image = tmp_path / "full.jpg"
    Image.fromarray(FRAME).save(image)
    text = tmp_path / "text.jpg"
    text.write_text("not weights\n")
    ws = tmp_path / "ws"
    done = run_cli(
        "run", str(image), "--model", f"taef2:weights={text}", "-n", "2", "--size", "32", "-w", str(ws)
    )
    assert done.returncode == 3, done.stderr
    assert str(text) in done.stderr and "is a file" in done.stderr and "Traceback" not in done.stderr
    listed = run_cli("runs", "-w", str(ws))
    assert "taef2" not in listed.stdout
