"""The verbs that make frames: ``run``, ``resume``, ``import`` and ``sweep``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from driftloop import fmt
from driftloop.cli.progress import ProgressDisplay
from driftloop.cli.shell import (
    Address,
    EngineName,
    Quiet,
    RunId,
    Workers,
    Workspace,
    app,
    console,
    say_for,
    stdout_console,
    ws_flag,
)
from driftloop.config import DEFAULT_MAX_PIXELS, DEFAULT_STEPS, DEFAULT_WORKSPACE, parse_seeds
from driftloop.errors import SpecError

if TYPE_CHECKING:
    from driftloop.api import Run


def print_outputs(run: Run, quiet: bool) -> None:
    """The end of a run, result first: what drifted (one or two lines), where the report is, then the
    cost on one line (the report has every number with its sources)."""
    if quiet:
        return
    from driftloop.analysis.text import headline  # the library: loaded when a verb runs
    from driftloop.cost import chain_cost_line  # the library: loaded when a verb runs

    chains = run.chains()
    statuses = ", ".join(sorted({c.status for c in chains}))
    console.print(f"[green]run {run.id}[/] · {len(chains)} chain(s) · {statuses}")
    for line in headline(run.summary()):
        console.print(f"  {escape(line)}", highlight=False)
    report = run.path / "report.html"
    if report.is_file():
        console.print(f"  report: {escape(str(report))}", highlight=False, soft_wrap=True)
    _, total = run.cost_totals()
    console.print(f"  cost: {escape(chain_cost_line(total))}", highlight=False)
    console.print(f"  frames and outputs: {escape(str(run.path))}", highlight=False, soft_wrap=True)


@app.command()
def run(
    images: Annotated[list[Path], typer.Argument(help="Input image(s); each with each seed is one chain.")],
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model spec, e.g. taef2, taef2:dtype=bf16, jpeg:quality=75.")
    ] = "taef2",
    steps: Annotated[int, typer.Option("-n", "--steps", help="Number of copies per chain.")] = DEFAULT_STEPS,
    seeds: Annotated[str, typer.Option("--seeds", help="Chain seeds: 1,2,3 or 0-4.")] = "0",
    size: Annotated[
        int, typer.Option("--size", help="Square frame side in pixels (rounded to the model's multiple).")
    ] = 512,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Most chains per model call (default: all).")
    ] = None,
    stop_on_fixed_point: Annotated[
        bool, typer.Option("--stop-on-fixed-point", help="Stop a chain once its frames stop changing.")
    ] = False,
    patience: Annotated[int, typer.Option("--patience", help="Unchanged steps that make a fixed point.")] = 3,
    refusal_retries: Annotated[
        int, typer.Option("--refusal-retries", help="Ask a hosted model again this often after a refusal.")
    ] = 2,
    max_cost: Annotated[
        float | None,
        typer.Option("--max-cost", help="Budget in USD: refuse a run estimated above it, stop at it."),
    ] = None,
    device: Annotated[
        str | None, typer.Option("--device", help="cpu, cuda, cuda:1, mps (default: the best available).")
    ] = None,
    dtype: Annotated[
        str | None,
        typer.Option("--dtype", help="Number format where the model has one: fp32, bf16, fp16 (GPU), auto."),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Continue (or, if finished, reuse) a run with the same inputs and settings."
        ),
    ] = False,
    render: Annotated[
        bool,
        typer.Option(
            "--render/--no-render",
            help="Write GIF, MP4 and contact sheet at the end (report.html and summary.json: always).",
        ),
    ] = True,
    cost_factors: Annotated[
        Path | None,
        typer.Option("--cost-factors", help="TOML file overriding energy/CO2/water/price factors."),
    ] = None,
    country: Annotated[
        str | None,
        typer.Option("--country", help="Grid for CO2: a country code (US, DE, FR, ...) or 'world'."),
    ] = None,
    metrics: Annotated[
        bool, typer.Option("--metrics/--no-metrics", help="Measure every frame as it is made.")
    ] = True,
    perceptual: Annotated[
        bool,
        typer.Option(
            "--perceptual", help="Add LPIPS / CLIP / DINOv2 scores where their weights are present."
        ),
    ] = False,
    faces: Annotated[
        bool,
        typer.Option("--faces", help="Measure face landmarks: eyebrows, eyes, mouth (driftloop[faces])."),
    ] = False,
    max_pixels: Annotated[
        int,
        typer.Option("--max-pixels", help="Largest input accepted, in pixels (a guard against image bombs)."),
    ] = DEFAULT_MAX_PIXELS,
    stabilize: Annotated[
        str,
        typer.Option(
            "--stabilize",
            help="Change each copy towards frame 0's colours before the next: colour:lab, colour:rgb, "
            "colour:hsv, colour-stats or none.",
        ),
    ] = "none",
    keep_raw: Annotated[
        bool, typer.Option("--keep-raw", help="With --stabilize: also store the model's own copy.")
    ] = False,
    engine: EngineName = "local",
    address: Address = None,
    workers: Workers = None,
    workspace: Workspace = Path(DEFAULT_WORKSPACE),
    quiet: Quiet = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print calls, price and time; call nothing, write nothing.")
    ] = False,
) -> None:
    """Copy each image STEPS times with MODEL, storing every frame.

    Example: driftloop run photo.jpg -m taef2 --seeds 0-7 --engine ray
    """
    from driftloop import api  # the library: loaded when a verb runs, so --help answers at once

    say = say_for(quiet)
    if dry_run:
        d = api.estimate(images, model=model, n=steps, seeds=parse_seeds(seeds), size=size,
                         workspace=workspace, batch_size=batch_size, device=device, dtype=dtype,
                         cost_factors=cost_factors, max_pixels=max_pixels, log=say)  # fmt: skip
        out = stdout_console()
        out.print(f"dry run: {escape(d.model)}: {d.chains} chain(s) × {d.steps} steps = {d.calls} calls")
        per = f"{fmt.usd(d.usd_per_call)} per call: " if d.usd_per_call else ""
        usd = "unknown" if d.usd is None else f"≈ {fmt.usd(d.usd)}"
        out.print(f"price: {usd} ({per}{escape(d.price_detail)})")
        if d.turns:
            curve = ", ".join(f"turn {t} ${u:.4f}" for t, u in d.turns)
            out.print(f"per copy as the thread grows: {curve}")
        when = "unknown" if d.seconds is None else f"≈ {fmt.duration(d.seconds)}"
        out.print(f"time: {when} ({escape(d.seconds_detail)})")
        out.print("nothing was called or written")
        return
    with ProgressDisplay(quiet, "replicating") as bar:
        handle = api.run(
            images, model=model, n=steps, seeds=parse_seeds(seeds), size=size, workspace=workspace,
            batch_size=batch_size, stop_on_fixed_point=stop_on_fixed_point, patience=patience,
            refusal_retries=refusal_retries, max_cost=max_cost, device=device, dtype=dtype,
            resume=resume, reuse_done=resume, render=render, cost_factors=cost_factors, country=country,
            metrics=metrics, perceptual=perceptual, faces=faces, max_pixels=max_pixels, stabilize=stabilize,
            keep_raw=keep_raw, progress=bar, log=say, engine=engine, address=address, workers=workers,
        )  # fmt: skip
    print_outputs(handle, quiet)


@app.command()
def resume(
    run_id: RunId,
    device: Annotated[str | None, typer.Option("--device", help="Device to continue on.")] = None,
    max_cost: Annotated[
        float | None,
        typer.Option("--max-cost", help="A new budget in USD (after a run stopped at its budget)."),
    ] = None,
    retry_failed: Annotated[
        bool,
        typer.Option(
            "--retry-failed", help="Also continue chains that ended 'error' or 'refused' (after an outage)."
        ),
    ] = False,
    restart_thread: Annotated[
        bool,
        typer.Option(
            "--restart-thread",
            help="Conversation models: begin a new thread from each chain's last frame (when the "
            "provider no longer has it).",
        ),
    ] = False,
    render: Annotated[
        bool,
        typer.Option(
            "--render/--no-render",
            help="Write GIF, MP4 and contact sheet at the end (report.html and summary.json: always).",
        ),
    ] = True,
    engine: EngineName = "local",
    address: Address = None,
    workers: Workers = None,
    workspace: Workspace = Path(DEFAULT_WORKSPACE),
    quiet: Quiet = False,
) -> None:
    """Continue every unfinished chain of a run from its last stored frame."""
    from driftloop import api  # the library: loaded when a verb runs

    with ProgressDisplay(quiet, "replicating") as bar:
        handle = api.resume(
            run_id, workspace=workspace, device=device, render=render, max_cost=max_cost,
            retry_failed=retry_failed, progress=bar, log=say_for(quiet), engine=engine, address=address,
            workers=workers, restart_thread=restart_thread,
        )  # fmt: skip
    if not handle.nothing_to_do:  # else the log said "already complete; nothing to do"
        print_outputs(handle, quiet)


# ---- import: copies made elsewhere ------------------------------------------------------------------


def parse_crop(text: str | None) -> tuple[int, int, int, int] | None:
    """``X,Y,W,H`` in pixels (the box of each frame to keep), or None."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 4 or not all(re.fullmatch(r"\d+", p) for p in parts):
        raise SpecError(f"--crop {text!r}: expected X,Y,W,H in whole pixels, e.g. 0,0,512,480")
    x, y, w, h = (int(p) for p in parts)
    return x, y, w, h


def parse_steps(text: str | None) -> list[int] | None:
    """``0,1,2,3,10``: the step of each copy, or None."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if not all(re.fullmatch(r"\d+", p) for p in parts):
        raise SpecError(f"--steps {text!r}: expected whole numbers separated by commas, e.g. 0,1,2,3,10")
    return [int(p) for p in parts]


@app.command("import")
def import_command(
    sources: Annotated[
        list[Path] | None,
        typer.Argument(
            help="A folder of copies, image files in order, an animated GIF/WebP, or a video "
            "(with --order: the folder its paths are relative to, or nothing)."
        ),
    ] = None,
    label: Annotated[
        str | None,
        typer.Option("--label", help="Name of the chain: model imported:LABEL (default: --model)."),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="The model that made the copies, as a note.")
    ] = None,
    every: Annotated[
        float | None,
        typer.Option("--every", help="Video: one copy per this many seconds from the start (fixed windows)."),
    ] = None,
    hold: Annotated[
        float | None,
        typer.Option("--hold", help="Video: each copy is shown this many seconds (default: found)."),
    ] = None,
    copies: Annotated[
        int | None,
        typer.Option("--copies", help="Video: the video shows this many copies, the original included."),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold", help="Video: mean frame difference (0–255) that is a cut (default: adaptive)."
        ),
    ] = None,
    steps: Annotated[
        str | None,
        typer.Option(
            "--steps", help="Step of each copy, e.g. 0,1,2,3,10 (default: from the file names, else 0,1,2,…)."
        ),
    ] = None,
    faces: Annotated[
        bool,
        typer.Option("--faces", help="Measure face landmarks: eyebrows, eyes, mouth (the faces extra)."),
    ] = False,
    allow_duplicate: Annotated[
        bool,
        typer.Option("--allow-duplicate", help="Import copies even if the same chain is already stored."),
    ] = False,
    crop: Annotated[
        str | None,
        typer.Option(
            "--crop", help="X,Y,W,H: keep only this box of every frame (default: a video's still border cut)."
        ),
    ] = None,
    order: Annotated[
        Path | None, typer.Option("--order", help="A text file listing the images in order, one a line.")
    ] = None,
    size: Annotated[
        int | None, typer.Option("--size", help="Make every frame SIZE×SIZE (default: frame 0's size).")
    ] = None,
    render: Annotated[
        bool, typer.Option("--render/--no-render", help="Write GIF, MP4, contact sheet and report.")
    ] = True,
    max_pixels: Annotated[
        int,
        typer.Option("--max-pixels", help="Largest frame accepted, in pixels (a guard against image bombs)."),
    ] = DEFAULT_MAX_PIXELS,
    workspace: Workspace = Path(DEFAULT_WORKSPACE),
    quiet: Quiet = False,
) -> None:
    """Import copies made elsewhere (ChatGPT, Gemini, ...) as a run, measured like driftloop's own.

    A folder of chains (one GIF, video or folder each) is an archive: one run per chain, one sweep (named by --label, default the folder's name) and its bias card.
    """  # noqa: E501 (one line: the help text is wrapped by the terminal)
    from driftloop import api  # the library: loaded when a verb runs

    if sources and len(sources) == 1 and order is None and api.is_archive(sources[0]):
        done = api.import_archive(sources[0], workspace, name=label, model=model, faces=faces,
                                  render=render, log=say_for(quiet))  # fmt: skip
        for member, why in done.failed.items():
            console.print(f"[yellow]not imported[/] {escape(member)}: {escape(why)}", highlight=False)
        if not quiet:
            console.print(f"[green]sweep {escape(done.sweep)}[/]: {len(done.runs)} chain(s) imported, "
                          f"{len(done.failed)} not")  # fmt: skip
            console.print(
                f"  bias card: {done.card}   (again: driftloop bias {done.sweep}{ws_flag(workspace)})"
            )
        return

    handle = api.import_chain(
        sources or [], workspace, label=label, model=model, every=every, threshold=threshold,
        hold=hold, copies=copies, steps=parse_steps(steps),
        allow_duplicate=allow_duplicate, faces=faces, crop=parse_crop(crop), order_file=order,
        size=size, render=render, max_pixels=max_pixels, log=say_for(quiet),
    )  # fmt: skip
    print_outputs(handle, quiet)


# ------------------------------------------------------------------------------------------------------


@app.command()
def sweep(
    spec: Annotated[
        Path, typer.Argument(help="Sweep spec (TOML): images, models (with grids), seeds, steps.")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print chains, time and cost; run nothing.")
    ] = False,
    render: Annotated[
        bool,
        typer.Option(
            "--render/--no-render",
            help="Write each run's GIF, MP4 and contact sheet (report.html and summary.json: always).",
        ),
    ] = True,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Also ask again for chains that ended error or refused.")
    ] = False,
    engine: EngineName = "local",
    address: Address = None,
    workers: Workers = None,
    workspace: Workspace = Path(DEFAULT_WORKSPACE),
    quiet: Quiet = False,
) -> None:
    """Run every (image, model, parameters, seed) of a spec; running it again only runs what is missing.

    Example: driftloop sweep study.toml --engine ray --address auto   (either engine continues it)
    """
    from driftloop import api  # the library: loaded when a verb runs

    if dry_run:
        from driftloop.replicators.spec import spec_label  # the library: loaded when a verb runs

        estimate = api.sweep_estimate(spec, workspace)
        plan = estimate.sweep
        table = Table("model", "chains", "steps", "to do", "s/copy", "time", "cost", box=None)
        for row in estimate.rows:
            seconds = row.seconds_per_frame
            when = (
                f"unknown ({row.unknown})"
                if seconds is None
                else fmt.duration(seconds * row.remaining_frames)
            )
            per_copy = "-" if seconds is None else fmt.significant(seconds)
            table.add_row(escape(spec_label(row.model)), str(row.chains), str(row.steps),
                          str(row.remaining_frames), per_copy, when, fmt.usd(row.usd))  # fmt: skip
        out = stdout_console()
        shape = f"{len(plan.images)} image(s) × {len(plan.models)} model(s) × {len(plan.seeds)} seed(s)"
        out.print(f"sweep {plan.name}: {plan.chains} chain(s) = {shape}, {plan.steps} steps at {plan.size}px")
        out.print(table)
        reasons = sorted({r.unknown for r in estimate.rows if r.seconds_per_frame is None})
        unknown = "" if estimate.time_known else f" + the time of what is unknown ({', '.join(reasons)})"
        out.print(f"total: {fmt.duration(estimate.seconds)}{unknown}, {fmt.usd(estimate.usd)}")
        return
    with ProgressDisplay(quiet, "sweep") as bar:
        plan, ids = api.sweep(spec, workspace, progress_for=bar.for_label, log=say_for(quiet), render=render,
                              retry_failed=retry_failed, engine=engine, address=address,
                              workers=workers)  # fmt: skip
    if not quiet:
        console.print(f"[green]sweep {plan.name}[/]: {len(ids)} run(s): {', '.join(ids)}")
        console.print(f"  bias card: driftloop bias {plan.name}" + ws_flag(workspace))
