"""The ``driftloop`` command line: a thin shell over :mod:`driftloop.api`.

Errors a user can cause print one line (no traceback) and exit non-zero, with the codes of
:data:`driftloop.errors.EXIT_CODES` (listed at the end of ``driftloop --help`` and in the README).
"""

from __future__ import annotations

import re
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from driftloop.config import DEFAULT_MAX_PIXELS, DEFAULT_STEPS, DEFAULT_WORKSPACE
from driftloop.errors import EXIT_CODES, AnimatedImageWarning, DriftloopError, SpecError

if TYPE_CHECKING:
    from driftloop.api import Run
    from driftloop.chain import ProgressEvent

MAX_CHAIN_LINES = 12  # per-chain cost lines after a run with at most this many chains

app = typer.Typer(
    name="driftloop",
    help="Recursive image replication: copy an image with a model, feed the copy back, measure the drift.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    epilog="Exit codes:\n\n" + "\n\n".join(f"{code}  {meaning}" for code, meaning in EXIT_CODES),
)
console = Console(stderr=True, soft_wrap=True)

Workspace = Annotated[
    Path,
    typer.Option(
        "--workspace", "-w", help="Workspace folder (database + run folders).", envvar="DRIFTLOOP_WORKSPACE"
    ),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or messages.")]
EngineName = Annotated[
    str, typer.Option("--engine", help="Where chains run: local (this process) or ray (driftloop\\[ray]).")
]
Address = Annotated[
    str | None,
    typer.Option("--address", help="With --engine ray: auto or ray://HOST:PORT (default: a local Ray)."),
]
Workers = Annotated[
    int | None,
    typer.Option("--workers", help="With --engine ray: model replicas (default: from the cluster)."),
]


class CopyRate(ProgressColumn):
    """Copies per second so far, chains finished, and money spent (hosted models)."""

    def render(self, task: Task) -> Text:
        event = task.fields.get("event")
        rate = (
            f"{task.completed / task.elapsed:.2f} copies/s"
            if task.completed and task.elapsed
            else "-- copies/s"
        )
        if event is None:
            return Text(rate, style="progress.data.speed")
        chains = f" · {event.chains_done}/{event.chains_total} chains" if event.chains_total > 1 else ""
        spend = f" · ${event.usd:.2f}" if event.usd else ""
        return Text(rate + chains + spend, style="progress.data.speed")


class ProgressDisplay:
    """A rich progress bar fed by engine events (copies made of all still to make, over every chain);
    silent under --quiet or when stderr is not a terminal."""

    def __init__(self, quiet: bool, label: str) -> None:
        self.enabled = not quiet and console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("copies"),
            CopyRate(),
            TimeRemainingColumn(),
            console=console,
            disable=not self.enabled,
            transient=False,
        )
        self.label = label
        self.task: int | None = None

    def __enter__(self) -> ProgressDisplay:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, event: ProgressEvent) -> None:
        if self.task is None:
            self.task = self.progress.add_task(self.label, total=event.frames_total)
        self.progress.update(self.task, completed=event.frames_done, total=event.frames_total, event=event)

    def for_label(self, label: str) -> ProgressDisplay:
        """Another bar on the same display (a sweep shows one per model)."""
        other = ProgressDisplay.__new__(ProgressDisplay)
        other.enabled, other.progress, other.label, other.task = self.enabled, self.progress, label, None
        return other


def say_for(quiet: bool):
    def say(message: str) -> None:
        if not quiet:
            console.print(escape(message), highlight=False)

    return say


def parse_seeds(text: str, option: str = "--seeds") -> list[int]:
    """``1,2,3`` or ``0-4`` (inclusive) or a mix of both."""
    numbers: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = re.fullmatch(r"(-?\d+)(?:-(-?\d+))?", part)
        if not match:
            raise SpecError(f"{option} {text!r}: expected whole numbers like 1,2,3 or a range like 0-4")
        lo = int(match[1])
        hi = int(match[2]) if match[2] is not None else lo
        numbers += range(lo, hi + 1)
    if not numbers:
        raise SpecError(f"{option}: give at least one number")
    return numbers


def stdout_console() -> Console:
    """Standard output: the terminal's width, or wide when piped (a script wants whole lines, not wraps)."""
    return Console() if Console().is_terminal else Console(width=200)


def print_outputs(run: Run, quiet: bool) -> None:
    if quiet:
        return
    from driftloop.cost import chain_cost_line, summary_lines  # the library: loaded when a verb runs
    from driftloop.render.run import chain_label  # the library: loaded when a verb runs

    chains = run.chains()
    statuses = ", ".join(sorted({c.status for c in chains}))
    console.print(f"[green]run {run.id}[/] · {len(chains)} chain(s) · {statuses}")
    per_chain, total = run.cost_totals()
    for line in summary_lines(total):
        console.print(f"  {line}", highlight=False)
    if 1 < len(per_chain) <= MAX_CHAIN_LINES:
        for chain in chains:
            t = per_chain[chain.chain]
            console.print(f"    chain {chain.chain} ({chain_label(chain.input_path, chain.seed)}): "
                          f"{chain_cost_line(t)}", highlight=False)  # fmt: skip
    console.print(f"  frames and outputs: {run.path}")


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
        per = f"${d.usd_per_call:.4f} per call: " if d.usd_per_call else ""
        usd = "unknown" if d.usd is None else f"≈ ${d.usd:.2f}"
        out.print(f"price: {usd} ({per}{escape(d.price_detail)})")
        when = "unknown" if d.seconds is None else f"≈ {_duration(d.seconds)}"
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
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix), see `driftloop runs`.")],
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
            workers=workers,
        )  # fmt: skip
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
        typer.Option(
            "--every", help="Video: each copy is shown this many seconds (instead of cut detection)."
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold", help="Video cut detector: mean frame difference (0–255) of a still frame."
        ),
    ] = None,
    min_duration: Annotated[
        float | None,
        typer.Option("--min-duration", help="Video cut detector: seconds a copy must stay still."),
    ] = None,
    crop: Annotated[
        str | None, typer.Option("--crop", help="X,Y,W,H: keep only this box of every frame (drop overlays).")
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
    """Import copies made elsewhere (ChatGPT, Gemini, ...) as a run, measured like driftloop's own."""
    from driftloop import api  # the library: loaded when a verb runs

    handle = api.import_chain(
        sources or [], workspace, label=label, model=model, every=every, threshold=threshold,
        min_duration=min_duration, crop=parse_crop(crop), order_file=order, size=size, render=render,
        max_pixels=max_pixels, log=say_for(quiet),
    )  # fmt: skip
    print_outputs(handle, quiet)


# ------------------------------------------------------------------------------------------------------


@app.command("runs")
def list_runs(workspace: Workspace = Path(DEFAULT_WORKSPACE)) -> None:
    """List the runs in the workspace."""
    from driftloop.store import list_runs  # the read model only: `runs` answers without the library

    table = Table(box=None)
    table.add_column("id", no_wrap=True)  # what `resume` needs: never shortened
    table.add_column("model", overflow="fold")
    for name in ("chains", "steps", "status", "created"):
        table.add_column(name, no_wrap=True)
    found = list_runs(workspace)
    for r in found:
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at))
        steps = str(r.steps_done) if r.steps_most == r.steps_done else f"{r.steps_done}–{r.steps_most}"
        table.add_row(r.id, r.model, str(r.chains), f"{steps}/{r.n_steps}", r.status, created)
    out = stdout_console()
    if found:
        out.print(table)
    else:
        out.print(f"no runs in {workspace}")


@app.command()
def render(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    fps: Annotated[float, typer.Option("--fps", help="Frames per second of the animations.")] = 10.0,
    sheet_steps: Annotated[
        str, typer.Option("--steps", help="Steps on the contact sheet (the last is always added).")
    ] = "0,1,2,5,10,25,50,75,100",
    workspace: Workspace = Path(DEFAULT_WORKSPACE),
    quiet: Quiet = False,
) -> None:
    """Write GIF and MP4 (with a step counter) per chain, and a contact sheet."""
    if fps <= 0:
        raise SpecError(f"--fps must be positive (got {fps})")
    from driftloop import api  # the library: loaded when a verb runs

    handle = api.open_run(run_id, workspace)
    written = handle.render(fps=fps, steps=parse_seeds(sheet_steps, "--steps"))
    if not quiet:
        for path in written.values():
            Console().print(str(path))


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
        estimate = api.sweep_estimate(spec, workspace)
        plan = estimate.sweep
        table = Table("model", "chains", "steps", "to do", "s/copy", "time", "cost", box=None)
        for row in estimate.rows:
            seconds = row.seconds_per_frame
            when = "unknown (hosted)" if seconds is None else _duration(seconds * row.remaining_frames)
            table.add_row(row.model, str(row.chains), str(row.steps), str(row.remaining_frames),
                          "-" if seconds is None else f"{seconds:.2f}", when, f"${row.usd:.2f}")  # fmt: skip
        out = stdout_console()
        shape = f"{len(plan.images)} image(s) × {len(plan.models)} model(s) × {len(plan.seeds)} seed(s)"
        out.print(f"sweep {plan.name}: {plan.chains} chain(s) = {shape}, {plan.steps} steps at {plan.size}px")
        out.print(table)
        hosted = "" if estimate.time_known else " + hosted time"
        out.print(f"total: {_duration(estimate.seconds)}{hosted}, ${estimate.usd:.2f}")
        return
    with ProgressDisplay(quiet, "sweep") as bar:
        plan, ids = api.sweep(spec, workspace, progress_for=bar.for_label, log=say_for(quiet), render=render,
                              retry_failed=retry_failed, engine=engine, address=address,
                              workers=workers)  # fmt: skip
    if not quiet:
        console.print(f"[green]sweep {plan.name}[/]: {len(ids)} run(s): {', '.join(ids)}")
        console.print(f"  bias card: driftloop bias {plan.name}" + _ws_flag(workspace))


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _ws_flag(workspace: Path) -> str:
    return "" if Path(workspace).resolve() == Path(DEFAULT_WORKSPACE).resolve() else f" -w {workspace}"


@app.command()
def bias(
    target: Annotated[str, typer.Argument(help="A sweep name, or a run id (or unique prefix).")],
    control: Annotated[
        str | None,
        typer.Option("--control", help="Model to compare with (default: the sweep's, else a JPEG run)."),
    ] = None,
    workspace: Workspace = Path(DEFAULT_WORKSPACE),
) -> None:
    """The bias card: what a model does to pictures, with 95% CIs, tests against a control and attractors."""
    from driftloop import api  # the library: loaded when a verb runs

    html, js = api.bias(target, workspace, control)
    out = stdout_console()
    out.print(str(html))
    out.print(str(js))


@app.command()
def plots(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Folder to write into (default: RUN/plots/).")
    ] = None,
    workspace: Workspace = Path(DEFAULT_WORKSPACE),
    quiet: Quiet = False,
) -> None:
    """Write the run's plots as static PNG and SVG figures (for papers; the report draws them in the browser).

    Example: driftloop plots 20260101-taef2 -o figures/
    """
    from driftloop import api  # the library: loaded when a verb runs

    written = api.open_run(run_id, workspace).plots(output)
    if not quiet:
        out = Console(soft_wrap=True)  # one whole path per line, whatever the terminal's width
        for path in written:
            out.print(str(path))


@app.command()
def report(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="HTML file to write (default: RUN/report.html).")
    ] = None,
    workspace: Workspace = Path(DEFAULT_WORKSPACE),
) -> None:
    """Write the self-contained HTML report (images embedded, no network needed to view it)."""
    from driftloop import api  # the library: loaded when a verb runs

    Console().print(str(api.open_run(run_id, workspace).report(output)))


@app.command("metrics")
def metrics_command(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    recompute: Annotated[bool, typer.Option("--recompute", help="Measure every stored frame again.")] = False,
    perceptual: Annotated[
        bool | None,
        typer.Option("--perceptual/--no-perceptual", help="With --recompute: perceptual scores too."),
    ] = None,
    workspace: Workspace = Path(DEFAULT_WORKSPACE),
    quiet: Quiet = False,
) -> None:
    """Show how many frames are measured, or measure them all again with --recompute."""
    from driftloop import api  # the library: loaded when a verb runs

    handle = api.open_run(run_id, workspace)
    if recompute:
        with ProgressDisplay(quiet, "measuring") as bar:
            task = bar.progress.add_task("measuring", total=None)
            n = handle.recompute_metrics(
                progress=lambda i, total: bar.progress.update(task, completed=i, total=total),
                perceptual=perceptual,
            )
        if not quiet:
            console.print(f"measured {n} frame(s) of run {handle.id}")
    measured = handle.metric_rows()
    columns = sorted({name for values in measured.values() for name in values})
    Console().print(
        f"{len(measured)} of {len(handle.frame_rows())} frames measured; columns: {', '.join(columns)}"
    )


@app.command()
def export(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv, parquet or json.")] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: in the run folder).")
    ] = None,
    workspace: Workspace = Path(DEFAULT_WORKSPACE),
) -> None:
    """Write one row per (chain, step) with the frame record, its cost and its metrics."""
    from driftloop import api  # the library: loaded when a verb runs

    path = api.open_run(run_id, workspace).export(fmt, output)
    Console().print(str(path))


@app.command()
def models() -> None:
    """List the models driftloop can run and whether their weights are here."""
    from driftloop.replicators import registry  # the library: loaded when a verb runs

    out = stdout_console()
    table = Table("model", "what", "weights", "notes", box=None)
    for row in registry.listing():
        mark = "[green]present[/]" if row.weights.present else "[yellow]missing[/]"
        table.add_row(
            escape(row.name), escape(row.summary), f"{mark} {escape(row.weights.where)}", escape(row.notes)
        )
    out.print(table)
    hosted = Table("hosted model", "status", "per copy (512²)", "price read", box=None)
    for h in registry.hosted_listing():
        usd = "no price" if h.usd_per_copy is None else f"${h.usd_per_copy:.3f}"
        hosted.add_row(escape(h.spec), escape(h.status), usd, h.price_read or "-")
    out.print(hosted)
    for problem in registry.plugin_problems():
        console.print(f"[yellow]plug-in failed to load:[/] {problem}")


@app.command()
def serve(
    workspace: Workspace = Path(DEFAULT_WORKSPACE),
    host: Annotated[
        str, typer.Option("--host", help="Address to bind; any but 127.0.0.1/localhost needs a token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="Port.")] = 8765,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="DRIFTLOOP_TOKEN",
            help="Token for a non-local bind (default: a new one).",
        ),
    ] = None,
    open_browser: Annotated[bool, typer.Option("--open/--no-open", help="Open it in a browser.")] = False,
) -> None:
    """A web gallery over the workspace: watch chains drift, scrub, compare, start and stop runs.

    Example: driftloop serve -w driftloop-runs   (then open http://127.0.0.1:8765/)
    """
    from driftloop.web import serve as serve_gallery  # optional extra: driftloop[web]

    serve_gallery(workspace, host=host, port=port, token=token, open_browser=open_browser,
                  say=lambda m: console.print(escape(m), highlight=False))  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning user errors into one line and an exit code."""
    warnings.filterwarnings("ignore", category=AnimatedImageWarning)  # said through the run log instead
    try:
        app(args=argv)
    except DriftloopError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
