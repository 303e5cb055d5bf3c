"""What every hosted model's spec shares: the fields (prompt, canvas mapping, retries, pacing), their checks,
the canonical spec string, and the key status ``driftloop models`` shows.

Each provider's config dataclass inherits :class:`HostedConfig` and adds its own fields. A spec string keeps
the order it always had (model, prompt, the provider's own fields, then the shared ones): a stored run's spec
is what ``resume`` and sweeps match on, so :func:`canonical_spec` must give the same text for the same
settings whatever the class layout. A provider whose own fields sat among the shared ones says where, in
``SPEC_ORDER``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

from driftloop.errors import SpecError
from driftloop.replicators.hosted.canvas import PadMode, Resample

PROMPT = "Create the exact replica of this image, don't change a thing."
"""The prompt of the viral trend (ChatGPT, spring 2025)."""

SHARED = ("pad", "resample", "retries", "timeout", "backoff", "max_wait", "concurrency", "rpm")
"""The shared fields after the provider's own, in spec-string order (``prompt`` comes second, after the
model)."""


@dataclass(frozen=True)
class HostedConfig:
    """Fields every hosted spec takes: ``prompt``; ``pad``/``resample`` (how a frame is put on the API's
    canvas and read back); ``retries``/``timeout``/``backoff``/``max_wait`` in counts and seconds;
    ``concurrency`` (requests in flight) and ``rpm`` (requests per minute, 0 = no limit)."""

    SPEC_ORDER: ClassVar[tuple[str, ...] | None] = None

    model: str = ""
    prompt: str = PROMPT
    pad: PadMode = "edge"
    resample: Resample = "lanczos"
    retries: int = 5
    timeout: float = 120.0
    backoff: float = 1.0
    max_wait: float = 60.0
    concurrency: int = 4
    rpm: float = 0.0

    def validate(self, spec: str) -> None:
        validate_common(spec, self)


def validate_common(spec: str, config: Any) -> None:
    """Checks shared by every hosted config (fields: model, retries, timeout, backoff, max_wait, ...)."""
    if not str(config.model).strip() or any(c.isspace() for c in config.model):
        raise SpecError(f"model spec {spec!r}: model must be a model name such as gpt-image-2")
    if config.retries < 0:
        raise SpecError(f"model spec {spec!r}: retries must be 0 or more")
    if not config.timeout > 0:
        raise SpecError(f"model spec {spec!r}: timeout must be more than 0 seconds")
    if config.backoff < 0 or config.max_wait < 0:
        raise SpecError(f"model spec {spec!r}: backoff and max_wait must be 0 or more seconds")
    if config.concurrency < 1:
        raise SpecError(f"model spec {spec!r}: concurrency must be at least 1")
    if config.rpm < 0:
        raise SpecError(f"model spec {spec!r}: rpm must be 0 (no limit) or more requests per minute")
    if not config.prompt.strip():
        raise SpecError(f"model spec {spec!r}: prompt must not be empty")


def spec_order(config: Any, positional: str = "model") -> list[str]:
    """Field names in spec-string order: ``SPEC_ORDER`` when the class gives one, else the positional
    field, ``prompt``, the provider's own fields as declared, then :data:`SHARED`."""
    names = [f.name for f in fields(config)]
    given = getattr(type(config), "SPEC_ORDER", None)
    if given:
        return [n for n in given if n in names] + [n for n in names if n not in given]
    head = [n for n in (positional, "prompt") if n in names]
    own = [n for n in names if n not in head and n not in SHARED]
    return head + own + [n for n in SHARED if n in names]


def canonical_spec(name: str, config: Any, positional: str = "model") -> str:
    """``name:model[,key=value...]``: the model always, other parameters only where not default."""
    by_name = {f.name: f for f in fields(config)}
    parts = [str(getattr(config, positional))]
    for key in spec_order(config, positional):
        if key == positional:
            continue
        value = getattr(config, key)
        if value == by_name[key].default:
            continue
        parts.append(f"{key}={str(value).lower() if isinstance(value, bool) else value}")
    return f"{name}:{','.join(parts)}"
