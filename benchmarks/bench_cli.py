"""How fast the command line answers: wall time and peak memory of commands users run all day.

Each command runs in a fresh subprocess (a cold interpreter, as a user's shell starts it) ``--repeat`` times;
the median wall time, CPU time (user + system) and peak RSS (``ru_maxrss``), all from ``wait4``, are
reported, each time with its ratio to a bare typer+rich command measured in the same run: a one-verb typer
app with one option that prints a rich table, the floor any typer+rich command line pays on this machine.
Commands alternate round by round, so a burst of load on a shared machine falls on all of them alike; on a
busy machine wall times stretch with the load, CPU times much less.

    python benchmarks/bench_cli.py                     # registry import, --help, models, runs (50 runs)
    python benchmarks/bench_cli.py --repeat 9 --json out.json

The import of :mod:`driftloop.replicators.registry` is the floor every command pays: it must not import
PyTorch (or diffusers, transformers, openai, google-genai); a backend's heavy dependencies are imported only
when that backend is built. The goal for ``--help``, ``runs`` and ``models`` is at most 2.5× the bare
typer+rich start. ``-X importtime`` splits the registry's import into its own part and what the
``driftloop`` package imports first.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("torch", "diffusers", "transformers", "openai", "google.genai")
#: The goal: each ``driftloop`` verb measured answers within this many times the bare typer+rich start.
GOAL_RATIO = 2.5

#: The baseline: the least a typer+rich command line does (parse an option, print a table).
BARE_TYPER_RICH = """
from pathlib import Path
import typer
from rich.console import Console
from rich.table import Table
app = typer.Typer()
@app.command()
def ls(workspace: Path = typer.Option(Path("."), "--workspace", "-w")) -> None:
    table = Table("name", "where")
    table.add_row("bare", str(workspace))
    Console().print(table)
@app.command()
def other() -> None:
    pass
app()
"""
BASELINE = "bare typer+rich"


def commands(workspace: Path) -> dict[str, list[str]]:
    """The commands measured, by label."""
    py = sys.executable
    cli = [py, "-m", "driftloop"]
    return {
        BASELINE: [py, "-c", BARE_TYPER_RICH, "ls", "-w", str(workspace)],
        "import registry": [py, "-c", "import driftloop.replicators.registry"],
        "registry.listing()": [py, "-c", "import driftloop.replicators.registry as r; r.listing()"],
        "driftloop --help": [*cli, "--help"],
        "driftloop models": [*cli, "models"],
        "driftloop runs": [*cli, "runs", "-w", str(workspace)],
    }


def make_workspace(root: Path, n_runs: int = 50) -> Path:
    """A workspace holding ``n_runs`` runs of two chains (rows only: listing reads no frame), made in a
    child process: a forked child's peak RSS starts at its parent's, so the parent stays small."""
    code = (
        "import sys\n"
        "from driftloop.store import Store\n"
        "store = Store(sys.argv[1])\n"
        "for i in range(int(sys.argv[2])):\n"
        "    chains = [('a.png', '0' * 64, seed) for seed in (0, 1)]\n"
        "    run_id = f'20260101-{i:06d}-jpeg'\n"
        "    store.create_run(run_id, 'jpeg:quality=50', 101, {'model': 'jpeg'}, {}, {}, {}, chains)\n"
        "store.close()\n"
    )
    subprocess.run([sys.executable, "-c", code, str(root), str(n_runs)], check=True)
    return root


def measure(argv: list[str]) -> tuple[float, float, int, float]:
    """Wall seconds, peak RSS in MB, exit status and CPU seconds (user + system) of one run of ``argv``."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen from waiting again
    return seconds, usage.ru_maxrss / 1024, proc.returncode, usage.ru_utime + usage.ru_stime


def heavy_modules(code: str) -> list[str]:
    """Which heavy libraries ``code`` leaves imported in a fresh interpreter."""
    probe = f"{code}\nimport sys\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return [m for m in out.strip().split(",") if m]


def import_seconds(code: str, modules: tuple[str, ...]) -> dict[str, float]:
    """Cumulative import seconds of each of ``modules`` (``-X importtime``: the module and what it imports
    first) when a fresh interpreter runs ``code``; 0 for a module not imported."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True)
    out = dict.fromkeys(modules, 0.0)
    for line in done.stderr.splitlines():
        parts = line.split("|")
        name = parts[2].strip() if len(parts) == 3 else ""
        if name in out and not out[name]:  # the first line is the real import; later ones are re-entries
            out[name] = int(parts[1]) / 1e6
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=5, help="runs per command (the median is reported)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cmds = commands(make_workspace(Path(tmp) / "ws"))
        runs: dict[str, list[tuple[float, float, int, float]]] = {label: [] for label in cmds}
        for _ in range(args.repeat):  # round by round: load on a shared machine hits every command alike
            for label, cmd in cmds.items():
                runs[label].append(measure(cmd))
        base = statistics.median(r[0] for r in runs[BASELINE])
        base_cpu = statistics.median(r[3] for r in runs[BASELINE])
        print(f"{'':22s} {'wall':>8s}  ratio  {'CPU':>7s}  ratio  {'peak RSS':>10s}")
        for label, measured in runs.items():
            seconds = statistics.median(r[0] for r in measured)
            cpu = statistics.median(r[3] for r in measured)
            rss = statistics.median(r[1] for r in measured)
            ratio, cpu_ratio = seconds / base, cpu / base_cpu
            goal = ""
            if label.startswith("driftloop "):
                goal = "  ok" if ratio <= GOAL_RATIO else f"  over the {GOAL_RATIO}× goal"
            rows.append(
                {
                    "command": label,
                    "seconds": seconds,
                    "ratio": ratio,
                    "cpu_seconds": cpu,
                    "cpu_ratio": cpu_ratio,
                    "peak_rss_mb": rss,
                    "exit": measured[-1][2],
                }
            )
            print(
                f"{label:22s} {seconds:6.3f} s  {ratio:4.1f}×  {cpu:5.3f} s  {cpu_ratio:4.1f}×  {rss:7.1f} MB"
                f"  exit {measured[-1][2]}{goal}",
                flush=True,
            )
    parts = ("driftloop.replicators.registry", "driftloop.api", "driftloop")
    runs = [import_seconds("import driftloop.replicators.registry", parts) for _ in range(args.repeat)]
    breakdown = {m: statistics.median(r[m] for r in runs) for m in parts}
    for module, seconds in breakdown.items():
        print(f"  import of {module} (cumulative, -X importtime): {seconds:.3f} s")
    heavy = heavy_modules("import driftloop.replicators.registry as r; r.listing()")
    print(f"heavy modules after registry.listing(): {', '.join(heavy) or 'none'}")
    if args.json:
        report = {"repeat": args.repeat, "rows": rows, "imports": breakdown, "heavy": heavy}
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
