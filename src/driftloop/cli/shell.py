"""The command line's shell: the app, its console, the options verbs share, and the entry point.

Errors a user can cause print one line (no traceback) and exit non-zero, with the codes of
:data:`driftloop.errors.EXIT_CODES` (listed at the end of ``driftloop --help`` and in the README).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from driftloop import __version__
from driftloop._signals import as_worker
from driftloop.config import DEFAULT_WORKSPACE
from driftloop.errors import EXIT_CODES, AnimatedImageWarning, DriftloopError

app = typer.Typer(
    name="driftloop",
    help="Recursive image replication: copy an image with a model, feed the copy back, measure the drift.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    epilog="Exit codes:\n\n" + "\n\n".join(f"{code}  {meaning}" for code, meaning in EXIT_CODES),
)
console = Console(stderr=True, soft_wrap=True)


def _print_version(value: bool) -> None:
    if value:
        print(f"driftloop {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Options before the verb (``driftloop --version``)."""


Workspace = Annotated[
    Path,
    typer.Option(
        "--workspace", "-w", help="Workspace folder (database + run folders).", envvar="DRIFTLOOP_WORKSPACE"
    ),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or messages.")]
RunId = Annotated[str, typer.Argument(help="Run id (or a unique prefix), see `driftloop runs`.")]
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


def say_for(quiet: bool):
    def say(message: str) -> None:
        if not quiet:
            console.print(escape(message), highlight=False)

    return say


def stdout_console() -> Console:
    """Standard output: the terminal's width, or wide when piped (a script wants whole lines, not wraps)."""
    return Console() if Console().is_terminal else Console(width=200)


def print_path(path: str | Path) -> None:
    """One written file's path on standard output, whole on one line whatever the width (rich would wrap a
    long path mid-name when not in a terminal), with no markup or highlighting read into it."""
    Console(soft_wrap=True).print(escape(str(path)), highlight=False)


def ws_flag(workspace: Path) -> str:
    return "" if Path(workspace).resolve() == Path(DEFAULT_WORKSPACE).resolve() else f" -w {workspace}"


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning user errors into one line and an exit code."""
    warnings.filterwarnings("ignore", category=AnimatedImageWarning)  # said through the run log instead
    as_worker()  # started by the gallery: stop signals work even when the server's were ignored (nohup)
    try:
        app(args=argv)
    except DriftloopError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(exc.exit_code)
