"""The verbs that read what is stored: ``runs``, ``render``, ``bias``, ``plots``, ``report``, ``metrics``,
``export``, ``models`` and ``serve``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
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
    print_path,
    stdout_console,
)
from driftloop.config import DEFAULT_WORKSPACE, parse_seeds
from driftloop.errors import SpecError


@app.command("runs")
def list_runs(
    workspace: Workspace = Path(DEFAULT_WORKSPACE),
    workers: Annotated[
        str | None, typer.Option("--workers", help="Show one run's Ray workers (node, device, copies/s).")
    ] = None,
) -> None:
    """List the runs in the workspace, newest first (with --workers RUN: that run's Ray workers)."""
    if workers is not None:
        from driftloop import api  # the library: loaded when a verb runs
        from driftloop.cli.workers import workers_table

        stdout_console().print(workers_table(workers, api.workers(workers, workspace)))
        return
    from driftloop.replicators.spec import spec_label  # the read model only: `runs` answers without
    from driftloop.store import list_runs  # the library (no NumPy, Pillow or analysis)

    table = Table(box=None)
    table.add_column("id", no_wrap=True)  # what `resume` needs: never shortened
    table.add_column("model", overflow="fold")
    for name in ("chains", "steps", "status", "created"):
        table.add_column(name, no_wrap=True)
    found = list_runs(workspace)
    for r in found:
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at))
        table.add_row(r.id, escape(spec_label(r.arm)), str(r.chains), r.steps, r.status, created)
    out = stdout_console()
    if found:
        out.print(table)
    else:
        out.print(f"no runs in {workspace}")


@app.command()
def render(
    run_id: RunId,
    fps: Annotated[float, typer.Option("--fps", help="Frames per second of the animations.")] = 10.0,
    sheet_steps: Annotated[
        str, typer.Option("--steps", help="Steps on the contact sheet (the last is always added).")
    ] = "0,1,2,5,10,25,50,75,100",
    animations: Annotated[
        str | None,
        typer.Option(
            "--animations",
            help="Chains to animate (GIF and MP4): all, none, N (the first N) or list:0,5,7 (those chains); "
            "default: the first 8.",
        ),
    ] = None,
    workspace: Workspace = Path(DEFAULT_WORKSPACE),
    quiet: Quiet = False,
) -> None:
    """Write a contact sheet, GIF and MP4 (with a step counter) of the first chains or those asked for, and
    the report."""
    if fps <= 0:
        raise SpecError(f"--fps must be positive (got {fps})")
    from driftloop import api  # the library: loaded when a verb runs

    handle = api.open_run(run_id, workspace)
    chosen = {} if animations is None else {"animations": animations}
    written = handle.render(fps=fps, steps=parse_seeds(sheet_steps, "--steps"), **chosen)
    if not quiet:
        for path in written.values():
            print_path(path)


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
    print_path(html)
    print_path(js)


@app.command()
def plots(
    run_id: RunId,
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
        for path in written:
            print_path(path)


@app.command()
def report(
    run_id: RunId,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="HTML file to write (default: RUN/report.html).")
    ] = None,
    workspace: Workspace = Path(DEFAULT_WORKSPACE),
) -> None:
    """Write the self-contained HTML report (images embedded, no network needed to view it)."""
    from driftloop import api  # the library: loaded when a verb runs

    print_path(api.open_run(run_id, workspace).report(output))


@app.command("metrics")
def metrics_command(
    run_id: RunId,
    recompute: Annotated[bool, typer.Option("--recompute", help="Measure every stored frame again.")] = False,
    perceptual: Annotated[
        bool | None,
        typer.Option("--perceptual/--no-perceptual", help="With --recompute: perceptual scores too."),
    ] = None,
    faces: Annotated[
        bool | None,
        typer.Option("--faces/--no-faces", help="With --recompute: face measures too (driftloop[faces])."),
    ] = None,
    workspace: Workspace = Path(DEFAULT_WORKSPACE),
    quiet: Quiet = False,
    engine: EngineName = "local",
    address: Address = None,
    workers: Workers = None,
) -> None:
    """Show how many frames are measured, or measure them all again with --recompute (--engine ray: on Ray
    workers)."""
    from driftloop import api  # the library: loaded when a verb runs

    handle = api.open_run(run_id, workspace)
    if recompute:
        with ProgressDisplay(quiet, "measuring") as bar:
            task = bar.progress.add_task("measuring", total=None)
            n = handle.recompute_metrics(
                progress=lambda i, total: bar.progress.update(task, completed=i, total=total),
                perceptual=perceptual, faces=faces, engine=engine, address=address, workers=workers,
            )  # fmt: skip
        if not quiet:
            console.print(f"measured {n} frame(s) of run {handle.id}")
    measured = handle.metric_rows()
    columns = sorted({name for values in measured.values() for name in values})
    Console(soft_wrap=True).print(
        f"{len(measured)} of {len(handle.frame_rows())} frames measured; columns: {', '.join(columns)}"
    )


@app.command()
def export(
    run_id: RunId,
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv, parquet or json.")] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: in the run folder).")
    ] = None,
    workspace: Workspace = Path(DEFAULT_WORKSPACE),
) -> None:
    """Write one row per (chain, step) with the frame record, its cost and its metrics."""
    from driftloop import api  # the library: loaded when a verb runs

    print_path(api.open_run(run_id, workspace).export(fmt, output))


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
    hosted = Table("hosted model", "status", "list price / image", "price read", box=None)
    for h in registry.hosted_listing():
        usd = "no price" if h.usd_per_image is None else fmt.usd(h.usd_per_image)
        hosted.add_row(escape(h.spec), escape(h.status), usd, h.price_read or "-")
    out.print(hosted)
    out.print("The price of a copy at your size and settings: driftloop run IMAGE -m SPEC --dry-run")
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
