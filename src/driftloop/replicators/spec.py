"""Spec strings → typed configs.

Grammar: ``name[:item[,item...]]`` where an item is ``key=value`` or, first only, a bare positional value
(``openai:gpt-image-1``, ``vae:stabilityai/sd-vae-ft-mse``). Values are coerced to the config field's type,
so a typo or a bad value fails here, once, with a message that lists what is allowed.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, get_args, get_origin

from driftloop.config import arm_label, split_arm
from driftloop.errors import SpecError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def split_spec(spec: str) -> tuple[str, str | None, dict[str, str]]:
    """Split a spec string into (name, positional value or None, raw parameters)."""
    text = spec.strip()
    if not text:
        raise SpecError("empty model spec: give a name such as 'taef2' or 'jpeg:quality=75'")
    name, _, rest = text.partition(":")
    name = name.strip().lower()
    positional: str | None = None
    params: dict[str, str] = {}
    if rest:
        for i, item in enumerate(rest.split(",")):
            item = item.strip()
            if not item:
                continue
            key, eq, value = item.partition("=")
            if not eq:
                if i != 0 or positional is not None:
                    raise SpecError(f"model spec {spec!r}: {item!r} is not of the form key=value")
                positional = item
                continue
            key = key.strip().replace("-", "_")
            if key in params:
                raise SpecError(f"model spec {spec!r}: parameter {key!r} given twice")
            params[key] = value.strip()
    return name, positional, params


def _coerce(spec: str, key: str, raw: str, annotation: Any) -> Any:
    """Turn one raw string into the field's declared type."""
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        if raw.lower() in {"none", ""}:
            return None
        return _coerce(spec, key, raw, options[0])
    if origin is Literal:
        choices = get_args(annotation)
        if raw not in choices:
            raise SpecError(
                f"model spec {spec!r}: {key}={raw!r} is not one of {', '.join(map(str, choices))}"
            )
        return raw
    try:
        if annotation is bool:
            low = raw.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError(raw)
        if annotation is int:
            return int(raw)
        if annotation is float:
            return float(raw)
    except ValueError:
        raise SpecError(f"model spec {spec!r}: {key}={raw!r} is not a valid {annotation.__name__}") from None
    return raw


def parse_config(spec: str, config_type: type, positional: str | None = None, **overrides: Any) -> Any:
    """Build ``config_type`` from a spec string; ``overrides`` (already typed) win over the string."""
    _, pos_value, raw = split_spec(spec)
    fields = {f.name: f for f in dataclasses.fields(config_type)}
    hints = typing.get_type_hints(config_type)
    values: dict[str, Any] = {}
    if pos_value is not None:
        if positional is None:
            raise SpecError(f"model spec {spec!r}: this model takes no bare argument ({pos_value!r})")
        values[positional] = _coerce(spec, positional, pos_value, hints[positional])
    for key, value in raw.items():
        if key not in fields:
            allowed = ", ".join(sorted(fields)) or "none"
            raise SpecError(f"model spec {spec!r}: unknown parameter {key!r} (allowed: {allowed})")
        values[key] = _coerce(spec, key, value, hints[key])
    for key, value in overrides.items():
        if value is not None and key in fields:
            values[key] = _coerce(spec, key, value, hints[key]) if isinstance(value, str) else value
    config = config_type(**values)
    validate = getattr(config, "validate", None)
    if validate is not None:
        validate(spec)
    return config


def format_spec(name: str, config: Any, positional: str | None = None) -> str:
    """The canonical spec of a config: only parameters that differ from their defaults, in field order."""
    parts: list[str] = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        default = f.default if f.default is not dataclasses.MISSING else None
        if value == default:
            continue
        if f.name == positional:
            parts.insert(0, str(value))
        else:
            text = str(value).lower() if isinstance(value, bool) else str(value)
            parts.append(f"{f.name}={text}")
    return f"{name}:{','.join(parts)}" if parts else name


#: Parameters a model's label always shows, at their defaults too: a canonical spec leaves defaults out (it
#: is the run's identity, so it never changes), but ``webp`` alone does not say the quality it copied at.
#: The codecs' configs hold the same defaults (a test keeps them equal).
ALWAYS_SHOWN: dict[str, dict[str, str]] = {"jpeg": {"quality": "75"}, "webp": {"quality": "80"}}


def full_spec(spec: str) -> str:
    """A stored spec as people read it: the parameters that name the model filled in at their defaults
    (``webp`` → ``webp:quality=80``, ``jpeg:subsampling=0`` → ``jpeg:quality=75,subsampling=0``); any other
    spec as it is. Nothing is imported: ``driftloop runs`` and the gallery's list show it."""
    name, _, rest = spec.partition(":")
    shown = ALWAYS_SHOWN.get(name)
    if not shown:
        return spec
    given = dict(item.split("=", 1) for item in rest.split(",") if "=" in item)
    params = {**shown, **given}
    return f"{name}:{','.join(f'{k}={v}' for k, v in params.items())}"


def spec_label(label: str) -> str:
    """:func:`full_spec` of a run's model or arm label (``webp + stabilize=colour:lab`` →
    ``webp:quality=80 + stabilize=colour:lab``); an imported run's label is left as it is."""
    model, stabilize = split_arm(label)
    return arm_label(full_spec(model), stabilize)
