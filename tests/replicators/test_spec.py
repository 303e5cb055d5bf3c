"""Spec strings, typed configs and the registry (built-ins and entry-point plug-ins)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from driftloop.errors import SpecError
from driftloop.replicators import build, listing, lookup, parse
from driftloop.replicators.codec import JPEGConfig, WebPConfig
from driftloop.replicators.spec import ALWAYS_SHOWN, format_spec, full_spec, spec_label, split_spec
from driftloop.replicators.tae import TAEConfig


def test_split_spec_forms() -> None:
    assert split_spec("taef2") == ("taef2", None, {})
    assert split_spec("JPEG:quality=75") == ("jpeg", None, {"quality": "75"})
    assert split_spec("openai:gpt-image-1,quality=high") == ("openai", "gpt-image-1", {"quality": "high"})
    assert split_spec("sd-turbo:strength=0.3, steps=2") == (
        "sd-turbo",
        None,
        {"strength": "0.3", "steps": "2"},
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty model spec"),
        ("jpeg:quality=75,quality=80", "given twice"),
        ("jpeg:75", "takes no bare argument"),
        ("jpeg:qualty=75", "unknown parameter 'qualty' (allowed: quality, subsampling)"),
        ("jpeg:quality=high", "is not a valid int"),
        ("jpeg:quality=0", "between 1 and 100"),
        ("taef2:dtype=fp16", "is not one of fp32, bf16"),
        ("taef2:device=tpu", "device='tpu'"),
        ("nosuchmodel", "unknown model 'nosuchmodel'"),
    ],
)
def test_bad_specs_name_the_problem(spec: str, message: str) -> None:
    with pytest.raises(SpecError, match=None) as info:
        parse(spec)
    assert message in str(info.value)
    assert info.value.exit_code == 2


def test_typed_config_and_canonical_spec() -> None:
    backend, config = parse("taef2:dtype=bf16,threads=1")
    assert backend.name == "taef2"
    assert config == TAEConfig(dtype="bf16", threads=1)
    assert format_spec("taef2", config) == "taef2:dtype=bf16,threads=1"
    assert format_spec("taef2", TAEConfig()) == "taef2"
    _, jpeg = parse("jpeg:quality=90")
    assert jpeg == JPEGConfig(quality=90)


def test_overrides_win_over_spec() -> None:
    _, config = parse("taef2:device=cpu", device="cuda")
    assert config.device == "cuda"


def test_unknown_model_lists_known_ones() -> None:
    with pytest.raises(SpecError, match=r"known models: .*jpeg.*taef2"):
        lookup("nope")


def test_plain_callable_is_a_model() -> None:
    def invert(frames, seeds):
        return [255 - f for f in frames]

    replicator = build(invert)
    out = replicator.replicate([np.zeros((4, 4, 3), np.uint8)], [0])
    assert out[0].min() == 255
    assert "invert" in replicator.spec


def test_models_listing_reports_weights(models_dir: Path) -> None:
    rows = {r.name: r for r in listing()}
    assert {"taef2", "taef1", "taesd", "taesdxl", "taesd3", "jpeg", "webp"} <= set(rows)
    assert rows["taef2"].weights.present
    assert str(models_dir) in rows["taef2"].weights.where
    assert not rows["taesd"].weights.present


def test_entry_point_plugin_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A third-party package registers a backend through the entry-point group."""
    (tmp_path / "dl_plugin.py").write_text(
        textwrap.dedent(
            """
            from dataclasses import dataclass
            from driftloop.replicators.base import Backend, Requirements

            @dataclass(frozen=True)
            class Config:
                amount: int = 1

            class Brighten:
                requirements = Requirements()
                def __init__(self, config):
                    self.config = config
                    self.spec = f"brighten:amount={config.amount}"
                def replicate(self, frames, seeds):
                    return [(f.astype(int) + self.config.amount).clip(0, 255).astype("uint8") for f in frames]
                def describe(self):
                    return {"kind": "plugin"}

            BACKEND = Backend("brighten", "adds a constant", Config, Brighten)
            """
        )
    )
    dist = tmp_path / "dl_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: dl-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[driftloop.replicators]\nbrighten = dl_plugin:BACKEND\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    replicator = build("brighten:amount=5")
    out = replicator.replicate([np.full((2, 2, 3), 10, np.uint8)], [0])
    assert int(out[0][0, 0, 0]) == 15
    assert "brighten" in {r.name for r in listing()}


def test_full_spec_shows_the_parameters_that_name_a_model() -> None:
    assert full_spec("webp") == "webp:quality=80"
    assert full_spec("jpeg:subsampling=0") == "jpeg:quality=75,subsampling=0"
    assert full_spec("jpeg:quality=90") == "jpeg:quality=90"
    assert full_spec("taef2") == "taef2" and full_spec("openai:gpt-image-2") == "openai:gpt-image-2"
    assert spec_label("webp + stabilize=colour:lab") == "webp:quality=80 + stabilize=colour:lab"
    assert spec_label("imported:by hand") == "imported:by hand"
    assert spec_label(spec_label("webp")) == "webp:quality=80"  # idempotent: labels of old cards read alike


def test_always_shown_defaults_are_the_codecs_own() -> None:
    for name, config in (("jpeg", JPEGConfig()), ("webp", WebPConfig())):
        assert ALWAYS_SHOWN[name] == {k: str(getattr(config, k)) for k in ALWAYS_SHOWN[name]}
