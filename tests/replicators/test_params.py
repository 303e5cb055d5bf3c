"""The form parameters of each built-in backend (:mod:`driftloop.replicators.params`) held to the backend's
config type: every parameter is a field the spec parser accepts, with the same default and choices, and the
spec a form's values make parses to the values given."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import typing

import pytest

from driftloop.errors import SpecError
from driftloop.replicators import known, registry
from driftloop.replicators.params import Param, all_params, form_spec, params_of


def _spelled(value: object) -> str:
    if value is None:
        return ""
    return str(value).lower() if isinstance(value, bool) else str(value)


def test_every_built_in_backend_is_described() -> None:
    assert set(all_params()) == {k.name for k in known.entries()}


@pytest.mark.parametrize("name", sorted(all_params()))
def test_each_parameter_is_a_field_with_its_default_and_choices(name: str) -> None:
    backend = registry.lookup(name)
    fields = {f.name: f for f in dataclasses.fields(backend.config_type)}
    hints = typing.get_type_hints(backend.config_type)
    for p in params_of(name):
        assert p.name in fields, f"{name}: {p.name} is not a field of {backend.config_type.__name__}"
        default = fields[p.name].default
        if p.positional:
            assert backend.positional == p.name
        assert p.default == _spelled(default) or (p.default and float(p.default) == default), (name, p.name)
        literal = [a for a in typing.get_args(hints[p.name]) if isinstance(a, str)]
        if p.kind == "choice" and literal:
            assert set(p.choices) - {""} <= set(literal), (name, p.name)


@pytest.mark.parametrize("name", sorted(all_params()))
def test_the_defaults_make_the_plain_spec(name: str) -> None:
    given = {p.name: "x" for p in params_of(name) if p.required}  # a generic backend's hub id or models
    spec = form_spec(name, given)
    assert spec.split(":", 1)[0] == name
    if not given:
        assert spec == name  # nothing set: the backend's own defaults


def test_a_forms_values_become_the_spec_and_parse_to_them() -> None:
    spec = form_spec("openai", {"model": "gpt-image-2", "quality": "low", "concurrency": "1"})
    assert spec == "openai:quality=low,concurrency=1"
    _, config = registry.parse(spec)
    assert (config.model, config.quality, config.concurrency) == ("gpt-image-2", "low", 1)
    turbo = form_spec("sd-turbo", {"strength": "0.3", "steps": "4"}, "seed_policy=fixed")
    _, config = registry.parse(turbo)
    assert (config.strength, config.steps, config.seed_policy, config.guidance) == (0.3, 4, "fixed", 0.0)
    assert form_spec("jpeg", {"quality": "40"}) == "jpeg:quality=40"
    assert form_spec("img2img", {"model": "stabilityai/sd-turbo"}) == "img2img:stabilityai/sd-turbo"


@pytest.mark.parametrize(
    ("name", "values", "extra", "words"),
    [
        ("jpeg", {"quality": "101"}, "", "jpeg: quality=101 is outside 1 to 100"),
        ("jpeg", {"quality": "high"}, "", "quality='high' is not a whole number"),
        ("openai", {"quality": "ultra"}, "", "quality='ultra' is not one of auto, low"),
        ("sd-turbo", {"strength": "0"}, "", "strength=0 is outside 0 < x ≤ 1"),
        ("img2img", {}, "", "img2img: model is needed"),
        ("bfl", {"seed": "maybe"}, "", "true or false"),
        ("sd-turbo", {"prompt": "a, b"}, "", "comma"),
        ("jpeg", {}, "quality=20", "quality is set above"),
        ("jpeg", {}, "oops", "key=value"),
    ],
)
def test_bad_values_are_errors_naming_the_parameter(
    name: str, values: dict[str, str], extra: str, words: str
) -> None:
    with pytest.raises(SpecError, match=words.replace("(", r"\(")):
        form_spec(name, values, extra)


def test_describing_the_parameters_imports_no_backend() -> None:
    code = (
        "import sys; from driftloop.replicators.params import all_params; all_params(); "
        "print(sorted(m for m in ('torch', 'diffusers', 'openai', 'google.genai', 'httpx', "
        "'driftloop.replicators.hosted.openai_images', 'driftloop.replicators.codec') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_bounds_in_words() -> None:
    assert Param("q", "int", "1", "", low=1, high=100).bounds == "1 to 100"
    assert Param("s", "float", "1", "", low=0, high=1, above=True).bounds == "0 < x ≤ 1"
    assert Param("c", "int", "1", "", low=1).bounds == "at least 1"
