"""The verb that shares a study: ``driftloop publish`` (a static site of runs and sweeps)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from driftloop.cli.shell import Quiet, Workspace, app, console, say_for
from driftloop.config import DEFAULT_WORKSPACE


@app.command()
def publish(
    targets: Annotated[list[str], typer.Argument(help="Run ids (or unique prefixes) and sweep names.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the site into (new or empty).")],
    frames: Annotated[
        str, typer.Option("--frames", help="Which steps the site keeps: every:N (first and last always).")
    ] = "every:1",
    posters: Annotated[
        bool, typer.Option("--posters/--no-posters", help="Two posters per chain (1200×630, 1080×1080 JPEG).")
    ] = True,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say the site's size; write nothing.")] = False,
    workspace: Workspace = Path(DEFAULT_WORKSPACE),
    quiet: Quiet = False,
) -> None:
    """Write runs and sweeps as a static site that opens offline from a folder: pages, frames, an animation
    per chain, bundles of curves, posters.

    Example: driftloop publish my-sweep --out site/ --frames every:5
    """
    from driftloop import api  # the library: loaded when a verb runs

    columns = (TextColumn("[bold]publishing"), BarColumn(), MofNCompleteColumn(), TextColumn("chains"),
               TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=console, disable=quiet or not console.is_terminal, transient=True) as bar:
        task = bar.add_task("publishing", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        api.publish(targets, out, workspace=workspace, frames=frames, dry_run=dry_run, log=say_for(quiet),
                    posters=posters, progress=advance)  # fmt: skip
