"""What the start-a-run form would cost and take, before anything starts: the dry run of ``driftloop run
--dry-run`` (calls, price, time), asked with the form's settings.

The estimate is :func:`driftloop.engines.start.prepare` with ``dry_run=True`` (no key, nothing sent,
nothing written to the store) and :func:`driftloop.engines.start.estimate`. Before an image is chosen it
is asked for a square placeholder of the requested size, and says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from driftloop import fmt
from driftloop.config import parse_seeds
from driftloop.engines.start import estimate, prepare
from driftloop.errors import DriftloopError
from driftloop.replicators import registry
from driftloop.replicators.params import form_spec

PLACEHOLDER = "estimate-placeholder.png"
PARAM_PREFIX = "p."  # a model parameter's form field: p.quality, p.steps, ...


@dataclass(frozen=True)
class FormEstimate:
    """The dry run of the form's run, in the page's words."""

    chains: int
    calls: int
    cost: str  # "$0.42", "no per-image fee", "unknown price"
    cost_detail: str
    time: str  # "3.2 min", "not timed"
    time_detail: str
    placeholder: bool  # asked for a square image: no image chosen yet
    error: str | None = None


def form_values(items: Iterable[tuple[str, object]], model: str) -> tuple[dict[str, str], str]:
    """The model parameters a form sent (``p.NAME`` fields) and its more-parameters text, when they are the
    fields of ``model`` (``params_for``); the fields of a model chosen before are dropped (defaults then)."""
    pairs = [(k, str(v)) for k, v in items]
    if dict(pairs).get("params_for") != model:
        return {}, ""
    values = {k.removeprefix(PARAM_PREFIX): v for k, v in pairs if k.startswith(PARAM_PREFIX)}
    return values, dict(pairs).get("params_extra", "")


def model_spec(model: str, values: dict[str, str], extra: str) -> str:
    """The spec string of the form's model and parameters, checked by the model's own spec parser (its
    config module only: nothing is built or loaded); a bad value is a :class:`DriftloopError` naming it."""
    # a whole spec given by hand (an older form, a script) is left to the parser
    spec = model if ":" in model else form_spec(model, values, extra)
    registry.parse(spec)
    return spec


def _placeholder(folder: Path) -> Path:
    """A small grey square standing in for the image not chosen yet (the size is the form's)."""
    path = folder / PLACEHOLDER
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(path)
    return path


def form_estimate(
    workspace: Path,
    image: Path | None,
    model: str,
    steps: int,
    seeds: str,
    size: int,
    stabilize: str,
    max_pixels: int,
) -> FormEstimate:
    """The dry run of a run the form describes; a bad setting comes back as ``error``, not raised."""
    placeholder = image is None
    try:
        picked = image if image is not None else _placeholder(workspace / ".gallery")
        prepared = prepare(picked, model, steps, parse_seeds(seeds), size, workspace, metrics=False,
                           max_pixels=max_pixels, stabilize=stabilize, dry_run=True)  # fmt: skip
        dry = estimate(prepared)
    except DriftloopError as exc:
        return FormEstimate(0, 0, "–", "", "–", "", placeholder, str(exc))
    if dry.usd is None:
        cost = "unknown price"
    elif dry.usd == 0:
        cost = "no per-image fee"
    else:
        cost = fmt.usd(dry.usd)
    time = fmt.duration(dry.seconds) if dry.seconds is not None else "not timed"
    return FormEstimate(dry.chains, dry.calls, cost, dry.price_detail, time, dry.seconds_detail, placeholder)
