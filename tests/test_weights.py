"""A missing model's error names every place driftloop looked, and why each did not serve."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftloop.errors import WeightsError
from driftloop.weights import WeightFile, resolve

FILES = [
    WeightFile("enc.pth", "http://127.0.0.1:9/enc.pth"),
    WeightFile("dec.pth", "http://127.0.0.1:9/dec.pth"),
]


def _error(model: str = "tiny") -> str:
    with pytest.raises(WeightsError) as exc:
        resolve(model, FILES)
    return str(exc.value)


def test_an_unset_model_dir_is_named_and_the_cache_is_listed(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("DRIFTLOOP_MODEL_DIR")
    message = _error()
    assert "offline" in message and "enc.pth, dec.pth" in message
    cache = tmp_path / "xdg-cache" / "driftloop" / "models" / "tiny"
    assert "looked in: $DRIFTLOOP_MODEL_DIR (not set); " in message
    assert f"the download cache {cache} (no such folder)" in message


def test_each_folder_says_what_it_lacks(tmp_path: Path, monkeypatch) -> None:
    models = tmp_path / "models"
    (models / "tiny").mkdir(parents=True)
    (models / "tiny" / "enc.pth").write_bytes(b"x")
    monkeypatch.setenv("DRIFTLOOP_MODEL_DIR", str(models))
    cache = tmp_path / "xdg-cache" / "driftloop" / "models" / "tiny"
    cache.mkdir(parents=True)
    (cache / "dec.pth").write_bytes(b"x")
    message = _error()
    assert f"$DRIFTLOOP_MODEL_DIR/tiny = {models / 'tiny'} (lacks dec.pth)" in message
    assert f"the download cache {cache} (lacks enc.pth)" in message
