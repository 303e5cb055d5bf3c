"""The verb that plans a study before anything runs: ``plan``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from driftloop.cli.shell import Workspace, app, stdout_console
from driftloop.config import DEFAULT_WORKSPACE
from driftloop.errors import SpecError


def parse_steps(text: str | None) -> int | tuple[int, int] | None:
    """``--steps 20`` (fixed) or ``--steps 10-50`` (the planner picks within the range)."""
    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", text)
    if not match:
        raise SpecError(f"--steps {text!r}: expected a number like 20 or a range like 10-50")
    lo = int(match[1])
    return lo if match[2] is None else (lo, int(match[2]))


@app.command()
def plan(
    pilot: Annotated[
        list[str] | None,
        typer.Argument(help="Pilot runs (ids or prefixes) or a sweep name to take the spread from."),
    ] = None,
    measure: Annotated[
        str, typer.Option("--measure", help="The measure (metric column), e.g. lab_b_mean.")
    ] = "lab_b_mean",
    effect: Annotated[
        float,
        typer.Option("--effect", "-e", help="The drift to detect, per step (or by --by-step), in its units."),
    ] = 0.1,
    by_step: Annotated[
        int | None, typer.Option("--by-step", help="--effect is the total change by this step.")
    ] = None,
    images: Annotated[int | None, typer.Option("--images", help="Fix the number of images.")] = None,
    seeds: Annotated[int | None, typer.Option("--seeds", help="Fix the number of seeds per image.")] = None,
    steps: Annotated[
        str | None,
        typer.Option(
            "--steps", help="Steps per chain: 20, or a range 10-50 to choose from (default: pilot's)."
        ),
    ] = None,
    sd_image: Annotated[
        float | None, typer.Option("--sd-image", help="SD of the rate between images (per step).")
    ] = None,
    sd_seed: Annotated[
        float | None, typer.Option("--sd-seed", help="SD of the rate between seeds of an image (per step).")
    ] = None,
    sd_step: Annotated[
        float | None, typer.Option("--sd-step", help="SD of one step's change around the chain's drift.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="The pilot's model to plan for, or without a pilot the model to cost (taef2).",
        ),
    ] = None,
    size: Annotated[int | None, typer.Option("--size", help="Frame side to cost (default: pilot's).")] = None,
    power: Annotated[float, typer.Option("--power", help="Power wanted.")] = 0.8,
    alpha: Annotated[float, typer.Option("--alpha", help="Two-sided significance level.")] = 0.05,
    workspace: Workspace = Path(DEFAULT_WORKSPACE),
) -> None:
    """How many images, seeds and steps detect a drift with 80% power, and what the study costs.

    Example: driftloop plan my-pilot-run --measure lab_b_mean --effect 2 --by-step 20
    """
    from driftloop import api  # the library: loaded when a verb runs

    answer = api.plan(
        measure, effect, pilot or (), workspace, by_step=by_step, images=images, seeds=seeds,
        steps=parse_steps(steps), sd_image=sd_image, sd_seed=sd_seed, sd_step=sd_step, model=model,
        size=size, power=power, alpha=alpha,
    )  # fmt: skip
    out = stdout_console()
    for line in answer.lines():
        out.print(escape(line), highlight=False)
