"""The Python API; the CLI is a thin shell over it.

import driftloop
run = driftloop.run("photo.jpg", model="taef2", n=101)
run.frame(chain=0, step=101)      # an RGB uint8 array
run.records()                     # one dict per stored frame

Each function builds one object and hands it to the stage that does the work (the engines start and
continue runs, render/ and report/ write files, analysis/ summarises); :class:`Run` is the read model
of a stored run with those stages' verbs attached, so ``driftloop.run(...)`` returns something that can
render, report, export and measure itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop import sweep as sweeps
from driftloop.analysis.columns import chain_columns
from driftloop.archive import ArchiveImport, is_archive
from driftloop.archive import import_archive as importing_archive
from driftloop.config import DEFAULT_MAX_PIXELS, DEFAULT_STEPS, DEFAULT_WORKSPACE
from driftloop.cost import Factors, Totals, run_factors, run_totals
from driftloop.engines.ray_measure import recompute_on_ray
from driftloop.engines.start import (
    DryRun,
    Engine,
    already_complete,
    continue_run,
    prepare,
    rebuild,
    start,
    storage_guard,
)
from driftloop.engines.start import estimate as estimate_prepared
from driftloop.engines.workers import read_workers
from driftloop.errors import DriftloopError, ReadOnlyWorkspaceError, RenderError, RunNotFoundError
from driftloop.importer import import_chain as importing
from driftloop.measures import TABLE_ORDER
from driftloop.metrics.recorder import recompute
from driftloop.publish import build_site, parse_every, write_site
from driftloop.render.plots import plot_run
from driftloop.render.run import render_chain, render_run
from driftloop.replicators.base import Replicator
from driftloop.report import export as exporting
from driftloop.report.bias_card import write_bias_card_for
from driftloop.report.run import summarize, write_outputs, write_run_report
from driftloop.store import RunSummary, RunView, Store, Workspace, list_runs
from driftloop.sweep import sweep_chains
from driftloop.sweep.study import StudyPlan
from driftloop.sweep.study import plan_study as plan

if TYPE_CHECKING:
    from driftloop.analysis.chains import ChainSummary
    from driftloop.chain import ProgressEvent

__all__ = [
    "DEFAULT_STEPS",
    "DEFAULT_WORKSPACE",
    "Run",
    "RunHandle",
    "RunSummary",
    "StudyPlan",
    "bias",
    "bias_card",
    "estimate",
    "import_archive",
    "import_chain",
    "is_archive",
    "open_run",
    "plan",
    "publish",
    "resume",
    "run",
    "runs",
]

ProgressCallback = Callable[["ProgressEvent"], None]
Logger = Callable[[str], None]


class Run(RunView):
    """A stored run (its configuration, chains, frames, records) and what can be made of it."""

    nothing_to_do: bool = False  # set by :func:`resume` on a run that was already complete

    @property
    def factors(self) -> Factors:
        """The cost factors the run was made with (a snapshot, so later edits do not rewrite history)."""
        return run_factors(self)

    def cost_totals(self) -> tuple[dict[int, Totals], Totals]:
        """Time, energy, CO2, water and money per chain and for the whole run."""
        return run_totals(self)

    def export(self, fmt: str = "csv", path: str | Path | None = None) -> Path:
        """Write :meth:`dataframe` as csv, parquet or json (default: into the run folder)."""
        return exporting.export(self, fmt, Path(path) if path else None)  # type: ignore[arg-type]

    def recompute_metrics(
        self,
        progress: Callable[[int, int], None] | None = None,
        perceptual: bool | None = None,
        faces: bool | None = None,
        engine: str = "local",
        address: str | None = None,
        workers: int | None = None,
    ) -> int:
        """Measure every stored frame again (after a metrics upgrade, or with perceptual metrics or face
        measures added); ``engine="ray"``: on Ray workers (``address``, ``workers`` as for :func:`run`), the
        driver writing."""
        if Engine(engine, address, workers).name == "ray":
            measured = recompute_on_ray(self, progress, perceptual, address, workers)
        else:
            measured = recompute(self, progress, perceptual, faces)
        df = self.dataframe()
        self.store.set_chain_summaries(self.id, chain_columns(df, summarize(self, df)))  # the table's numbers
        return measured

    def summary(self, df: Any = None) -> list[ChainSummary]:
        """One summary per chain: half-life, first fixed point (over the run's ``patience``), colour drift
        at steps 1, 10, 25, 50, 100 and the last, drift rates with 95% CIs, face loss. ``df``: this run's
        :meth:`dataframe`, if already at hand."""
        return summarize(self, df)

    def report(self, path: str | Path | None = None) -> Path:
        """Write ``report.html`` and ``summary.json`` (the report can go elsewhere with ``path``)."""
        return write_run_report(self, Path(path) if path else None)

    def plots(self, folder: str | Path | None = None) -> list[Path]:
        """Static figures for papers (PNG and SVG, matplotlib) into ``folder`` (default: RUN/plots/): the
        same plots the report draws in the browser. Returns the files written."""
        df = self.dataframe()
        if not any(c in df.columns and df[c].notna().any() for c in TABLE_ORDER):
            raise RenderError(
                f"run {self.id} has no metric rows to plot; measure its frames with "
                f"`driftloop metrics {self.id} --recompute`"
            )
        return [p for pair in plot_run(df, Path(folder) if folder else self.path / "plots") for p in pair]

    def render(self, report: bool = True, **kwargs: Any) -> dict[str, Path]:
        """A contact sheet (a sample of the chains when there are many), GIF + MP4 of the first chains
        (``animations``: ``"all"``, ``"none"``, a number, or chain numbers) in the run folder; and the
        report. :meth:`animate` makes one more chain's animations."""
        written = render_run(self, **kwargs)
        if report:
            written["report"] = self.report()
        return written

    def animate(
        self, chain: int, kinds: Sequence[str] = ("gif", "mp4"), fps: float = 10.0
    ) -> dict[str, Path]:
        """One chain's GIF and MP4 (``kinds``) in the run folder, for a chain the render left out."""
        return render_chain(self, chain, kinds, fps)


RunHandle = Run  # the name of earlier releases


def run(
    images: str | Path | Sequence[str | Path],
    model: str | Replicator | Callable[..., Any] = "taef2",
    n: int = DEFAULT_STEPS,
    seeds: Sequence[int] = (0,),
    size: int = 512,
    workspace: str | Path = DEFAULT_WORKSPACE,
    batch_size: int | None = None,
    stop_on_fixed_point: bool = False,
    patience: int = 3,
    refusal_retries: int = 2,
    max_cost: float | None = None,
    device: str | None = None,
    dtype: str | None = None,
    resume: bool = False,
    render: bool = True,
    cost_factors: str | Path | None = None,
    country: str | None = None,
    metrics: bool = True,
    perceptual: bool = False,
    faces: bool = False,
    reuse_done: bool = False,
    sweep: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    stabilize: str = "none",
    keep_raw: bool = False,
    progress: ProgressCallback | None = None,
    log: Logger | None = None,
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
) -> Run:
    """Run one chain per (image, seed): ``n`` copies each, every frame stored as it is made.

    ``model`` is a spec string (``taef2``, ``jpeg:quality=75``), a Replicator, or a plain callable
    ``(frames, seeds) -> frames``. With ``resume=True`` an unfinished run of the same inputs and settings
    is continued instead of starting a new one. Bad inputs raise before anything is written.
    ``cost_factors`` is a TOML file overriding the energy/CO2/water/price factors; ``country`` picks the
    grid intensity (default: the factors' own, a world average). ``metrics`` measures every frame as it
    is made; ``perceptual`` adds LPIPS/CLIP/DINOv2 scores where their weights are present; ``faces``
    measures face landmarks (eyebrows, eyes, mouth) where MediaPipe is installed. ``render`` writes the
    GIF, MP4 and contact sheet at the end; the report and ``summary.json`` are written either way.
    ``stabilize`` (``colour:lab``, ``colour:rgb``, ``colour:hsv``, ``colour-stats``, ``none``) changes each
    copy towards frame 0's colours before it is stored and fed back; ``keep_raw`` also stores the model's
    own copy (``frames/cCCC/SSSS.raw.png``).
    ``engine="ray"`` advances the chains on Ray actors (``address``: a cluster, default a local Ray;
    ``workers``: how many model replicas); frames are the same as the local engine's.
    """
    where = Engine(engine, address, workers)
    prepared = prepare(
        images, model, n, seeds, size, workspace, batch_size=batch_size,
        stop_on_fixed_point=stop_on_fixed_point, patience=patience, refusal_retries=refusal_retries,
        max_cost=max_cost, device=device, dtype=dtype, cost_factors=cost_factors, country=country,
        metrics=metrics, perceptual=perceptual, faces=faces, sweep=sweep, max_pixels=max_pixels,
        stabilize=stabilize, keep_raw=keep_raw, log=log, engine=where,
    )  # fmt: skip
    store = Store(workspace)
    run_id = start(prepared, store, progress, log, resume=resume, reuse_done=reuse_done, engine=where)
    return _finish(Run(store, run_id), render, log)


def publish(
    targets: Sequence[str],
    out: str | Path,
    workspace: str | Path = DEFAULT_WORKSPACE,
    frames: str = "every:1",
    dry_run: bool = False,
    log: Logger | None = None,
    posters: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> Path | None:
    """Write runs and sweeps (``targets``: run ids or prefixes, sweep names) as a static site into ``out``;
    ``frames`` ``every:N`` keeps every N-th step (in the frames and the animations); ``posters``: two
    posters per chain; ``progress(chains done, chains)`` while it is built. The site's size is said
    (``log``) before it is written; ``dry_run``: say it and write nothing. Returns the folder written (None
    on a dry run)."""
    say = log or (lambda _msg: None)
    site = build_site(workspace, list(targets), parse_every(frames), posters=posters, progress=progress)
    parts = ", ".join(f"{name} {size / 1e6:.1f}" for name, size in sorted(site.sizes().items()))
    say(f"site: {site.chains} chain(s), {site.frames} frame(s), {len(site.files)} files, "
        f"{site.size / 1e6:.1f} MB ({parts}){'' if dry_run else f' → {out}'}")  # fmt: skip
    if dry_run:
        return None
    written = write_site(site, out)
    say(f"open {Path(written).resolve() / 'index.html'}")
    return written


def estimate(
    images: str | Path | Sequence[str | Path],
    model: str | Replicator | Callable[..., Any] = "taef2",
    n: int = DEFAULT_STEPS,
    seeds: Sequence[int] = (0,),
    size: int = 512,
    workspace: str | Path = DEFAULT_WORKSPACE,
    batch_size: int | None = None,
    device: str | None = None,
    dtype: str | None = None,
    cost_factors: str | Path | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    log: Logger | None = None,
) -> DryRun:
    """What :func:`run` would do with these arguments (calls, price, time), calling no hosted model and
    writing nothing; a hosted model needs no API key for it."""
    prepared = prepare(
        images, model, n, seeds, size, workspace, batch_size=batch_size, device=device, dtype=dtype,
        cost_factors=cost_factors, metrics=False, max_pixels=max_pixels, log=log, dry_run=True,
    )  # fmt: skip
    return estimate_prepared(prepared, workspace)


def _finish(handle: Run, render: bool, log: Logger | None = None) -> Run:
    """The end of every run: the report and ``summary.json``; with ``render`` GIF, MP4 and sheet first."""
    with storage_guard(handle.store, handle.id):
        write_outputs(handle, render, log)
    return handle


def resume(
    run_id: str,
    workspace: str | Path = DEFAULT_WORKSPACE,
    model: Replicator | Callable[..., Any] | None = None,
    device: str | None = None,
    render: bool = True,
    max_cost: float | None = None,
    retry_failed: bool = False,
    progress: ProgressCallback | None = None,
    log: Logger | None = None,
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
    restart_thread: bool = False,
) -> Run:
    """Continue every unfinished chain of a run from its last stored frame (on either engine).

    The model is rebuilt from the run's stored spec; a run made with a Python callable needs the same
    callable passed again as ``model``. ``max_cost`` replaces the run's budget (after it stopped on it).
    ``retry_failed`` also continues chains that ended ``error`` or ``refused`` (after an outage, say).
    A finished run with nothing to continue is left as it is: the log says so, and the handle's
    ``nothing_to_do`` is True.
    ``restart_thread``: a conversation model (``openai-thread:``, ``gemini-thread:``) whose provider no
    longer has a chain's thread begins a new one from the chain's last stored frame (an event per chain).
    """
    say = log or (lambda _msg: None)
    where = Engine(engine, address, workers)
    store = Workspace(workspace).store
    row = store.get_run(run_id)
    complete = already_complete(store, row.id, retry_failed)
    if complete is not None:  # nothing to continue: said plainly, nothing built, rendered or written
        say(complete)
        handle = Run(store, row.id)
        handle.nothing_to_do = True
        return handle
    if store.readonly:
        raise ReadOnlyWorkspaceError(store.root, len(store.frames(row.id)), row.id)
    replicator = rebuild(store, row.id, model, device, say, where)
    continue_run(store, row.id, replicator, progress, say, max_cost, retry_failed, engine=where,
                 restart_thread=restart_thread)  # fmt: skip
    return _finish(Run(store, row.id), render, say)


def import_chain(
    sources: str | Path | Sequence[str | Path],
    workspace: str | Path = DEFAULT_WORKSPACE,
    label: str | None = None,
    model: str | None = None,
    every: float | None = None,
    threshold: float | None = None,
    hold: float | None = None,
    copies: int | None = None,
    steps: Sequence[int] | None = None,
    allow_duplicate: bool = False,
    faces: bool = False,
    crop: tuple[int, int, int, int] | None = None,
    order_file: str | Path | None = None,
    size: int | None = None,
    render: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    log: Logger | None = None,
) -> Run:
    """Import copies made elsewhere (a folder or list of images, an animated GIF/WebP, a video) as a run
    with one chain and model ``imported:<label>``; see :func:`driftloop.importer.import_chain`.
    ``threshold``, ``hold`` (seconds per copy) and ``copies`` override how a video's copies are found;
    ``steps`` numbers the copies (default: from a folder's file names); a chain already stored is refused
    unless ``allow_duplicate``."""
    run_id = importing(
        sources, workspace, label=label, model=model, every=every, threshold=threshold, hold=hold,
        copies=copies, steps=steps, allow_duplicate=allow_duplicate, faces=faces, crop=crop,
        order_file=order_file, size=size, render=render, max_pixels=max_pixels, log=log,
    )  # fmt: skip
    return Run(Store(workspace), run_id)


def import_archive(
    folder: str | Path,
    workspace: str | Path = DEFAULT_WORKSPACE,
    name: str | None = None,
    model: str | None = None,
    faces: bool = False,
    render: bool = True,
    log: Logger | None = None,
) -> ArchiveImport:
    """Import a folder of posted chains (one GIF, video or folder each) as one sweep with its bias card;
    bad members are reported by name, the rest imported. See :mod:`driftloop.archive`."""
    return importing_archive(folder, workspace, name=name, model=model, faces=faces, render=render, log=log)


def open_run(run_id: str, workspace: str | Path = DEFAULT_WORKSPACE) -> Run:
    """A handle to a stored run (id or unique prefix)."""
    return Run(Workspace(workspace).store, run_id)


def workers(run_id: str, workspace: str | Path = DEFAULT_WORKSPACE) -> list[dict[str, Any]]:
    """Per-worker status of a run made on Ray (``[]`` for a local run): per model replica its node,
    device, state, copies made, copies per second, failures and restarts, as its driver last wrote them."""
    return read_workers(open_run(run_id, workspace).path)


def runs(workspace: str | Path = DEFAULT_WORKSPACE) -> list[RunSummary]:
    """Every run in a workspace, newest first; a 'running' run whose process died shows as 'interrupted'.

    A folder that holds no workspace has no runs (and is not made into one); a file is an error.
    """
    return list_runs(workspace)


def sweep_estimate(spec: str | Path, workspace: str | Path = DEFAULT_WORKSPACE) -> sweeps.Estimate:
    """What running a sweep spec would do: chains, time and cost per model; nothing runs or is stored."""
    return sweeps.estimate(sweeps.load_sweep(spec), workspace)


def sweep(
    spec: str | Path,
    workspace: str | Path = DEFAULT_WORKSPACE,
    progress_for: Callable[[str], ProgressCallback | None] | None = None,
    log: Logger | None = None,
    render: bool = True,
    retry_failed: bool = False,
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
) -> tuple[sweeps.Sweep, list[str]]:
    """Run (or finish) every chain of a sweep spec; return the sweep and the ids of the runs holding its
    chains. Running it again only runs what is missing. ``progress_for(model)`` gives each model's progress
    callback; ``engine``/``address``/``workers`` as for :func:`run`."""
    plan = sweeps.load_sweep(spec)

    def import_arm(entry: sweeps.ImportedArm) -> str:  # an [[imported]] source not seen yet: imported once
        return importing(list(entry.sources), workspace, label=entry.label, model=entry.model,
                         every=entry.every, faces=bool(plan.options.get("faces")), log=log)  # fmt: skip

    ids = sweeps.run_sweep(plan, workspace, progress_for, log, render, retry_failed=retry_failed,
                           importer=import_arm, engine=Engine(engine, address, workers))  # fmt: skip
    return plan, ids


def bias(
    target: str, workspace: str | Path = DEFAULT_WORKSPACE, control: str | None = None
) -> tuple[Path, Path]:
    """The bias card of a sweep (by name: exactly its chains, into ``WORKSPACE/sweeps/NAME/``) or of one
    run (by id or prefix: into its folder); ``control`` overrides the sweep's own. Returns (HTML, JSON)."""
    ws = Workspace(workspace)
    chains, sweep_control = sweep_chains(workspace, target)
    if chains:
        runs = [Run(ws.store, i) for i in chains]
        return bias_card(runs, ws.root / "sweeps" / target, f"bias card · {target}", control or sweep_control,
                         chains, sweeps.sweep_labels(workspace, target))  # fmt: skip
    try:
        one = Run(ws.store, target)
    except RunNotFoundError:
        raise RunNotFoundError(f"no sweep or run {target!r} in {workspace}") from None
    return bias_card([one], one.path, f"bias card · {target}", control)


def bias_card(
    runs: Sequence[RunView],
    folder: str | Path,
    title: str,
    control: str | bool | None = None,
    chains: Mapping[str, set[int]] | None = None,
    labels: Mapping[str, str] | None = None,
) -> tuple[Path, Path]:
    """The bias card (HTML and JSON) of a set of runs; ``chains`` limits it to some chains of each;
    ``control`` False: no comparisons; ``labels`` renames imported runs' arms (run id → label)."""
    if not runs:
        raise DriftloopError(f"{title}: no runs to make a bias card from")
    return write_bias_card_for(list(runs), Path(folder), title, control, chains, labels)
