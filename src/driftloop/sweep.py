"""Sweeps: every (image, model, parameters, seed) of a TOML spec is a chain.

The workspace remembers each sweep (its models, control, inputs and seeds) and which runs hold its chains.
Running a spec again only runs what is missing: every (model, image, seed) chain already stored with the
same steps and size, by this sweep or any earlier run, is reused (an unfinished one resumed); the missing
chains of a model go into new runs (one per set of seeds, e.g. all images × an added seed). The bias card
reads exactly the sweep's chains, each once. The control model is run too when it is not among the models.

    name = "controls"          # tags the runs; `driftloop bias controls` reads them back
    images = ["photos/", "extra/*.png", "portrait.jpg"]   # files, folders, globs; relative to the spec
    seeds = [1, 2, 3]
    steps = 50
    size = 256
    control = "jpeg:quality=90"   # what the bias card compares with
    faces = true                  # measure face landmarks (portraits)

    [[models]]
    spec = "taef2"

    [[models]]
    spec = "jpeg"
    grid = { quality = [75, 90] }   # one run per combination

    [[models]]
    spec = "taef2"
    grid = { stabilize = ["none", "colour:lab"] }   # a stabilizer is an axis too: one arm per value

    [[imported]]                  # copies made elsewhere, on the bias card as imported:<label>
    run = "20260101-120000-imported-gpt-ab12"      # a run made by `driftloop import`
    [[imported]]
    path = "copies/gpt-image/"    # or a folder/GIF/video, imported when the sweep runs (once)
    label = "gpt-image"

A model with a stabilizer is the arm ``MODEL + stabilize=SPEC`` (:func:`driftloop.config.arm_label`): its
chains are stored in runs of MODEL whose configuration has ``stabilize = SPEC``.
"""

from __future__ import annotations

import glob
import itertools
import statistics
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from driftloop.config import IMPORTED_PREFIX, RunConfig, arm_label, split_arm
from driftloop.cost import Factors, load_factors
from driftloop.engines.start import LOCAL, RETRYABLE, Engine, continue_run, prepare, rebuild, start
from driftloop.errors import DriftloopError, InputError
from driftloop.images import load_image
from driftloop.render.run import render_run
from driftloop.replicators import registry
from driftloop.replicators.base import Backend
from driftloop.replicators.hosted.replicator import CallEstimate, HostedReplicator, canonical_spec, offline
from driftloop.replicators.spec import format_spec, split_spec
from driftloop.report.run import write_run_report
from driftloop.stabilizers import parse_stabilizer
from driftloop.store import RunView, Store
from driftloop.weights import file_sha256

DEFAULT_CONTROL = "jpeg:quality=90"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}


class SweepSpecError(DriftloopError):
    """A sweep spec file is missing, not TOML, or has a bad key or value."""

    exit_code = 2


@dataclass(frozen=True)
class ImportedArm:
    """A chain made elsewhere that a sweep's bias card reads beside its models: a stored run (``run``), or
    a source (folder, image files, GIF/WebP, video) imported once under ``label``."""

    label: str | None = None
    run: str | None = None
    sources: tuple[Path, ...] = ()
    model: str | None = None  # who made the copies, as a note
    every: float | None = None  # video: seconds per copy

    @property
    def arm(self) -> str | None:
        return IMPORTED_PREFIX + self.label if self.label else None


Importer = Callable[[ImportedArm], str]  # imports a source as a run and returns its id (api.import_chain)


@dataclass(frozen=True)
class Sweep:
    """A parsed sweep spec: what runs it stands for."""

    name: str
    path: Path
    images: list[Path]
    seeds: list[int]
    steps: int
    size: int
    models: list[str]
    control: str | None
    options: dict[str, Any] = field(default_factory=dict)
    imported: list[ImportedArm] = field(default_factory=list)

    @property
    def chains(self) -> int:
        return len(self.images) * len(self.seeds) * len(self.models)


def _fail(path: Path, message: str) -> SweepSpecError:
    return SweepSpecError(f"{path}: {message}")


def _expand_images(path: Path, entries: list[Any]) -> list[Path]:
    base = path.parent
    found: list[Path] = []
    for entry in entries:
        if not isinstance(entry, str):
            raise _fail(path, f"images: {entry!r} is not a path or glob")
        target = Path(entry).expanduser()
        target = target if target.is_absolute() else base / target
        if target.is_dir():
            matches = sorted(p for p in target.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif any(ch in entry for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(str(target), recursive=True))
        else:
            matches = [target]
        if not matches:
            raise _fail(path, f"images: {entry!r} matches no image")
        found += matches
    return list(dict.fromkeys(found))


def _model_specs(path: Path, models: list[Any]) -> list[str]:
    specs: list[str] = []
    for i, model in enumerate(models):
        if isinstance(model, str):
            model = {"spec": model}
        if not isinstance(model, dict) or "spec" not in model:
            raise _fail(path, f"models[{i}] needs a 'spec' (e.g. spec = \"taef2\")")
        unknown = set(model) - {"spec", "grid"}
        if unknown:
            raise _fail(
                path, f"models[{i}]: unknown key(s) {', '.join(sorted(unknown))} (allowed: spec, grid)"
            )
        grid = model.get("grid", {})
        if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
            raise _fail(path, f"models[{i}].grid must map parameter names to non-empty lists")
        base = model["spec"]
        stabilizers = [_stabilizer(path, i, v) for v in grid.get("stabilize", ["none"])]
        keys = [k for k in grid if k != "stabilize"]
        for values in itertools.product(*(grid[k] for k in keys)):
            extra = ",".join(
                f"{k}={str(v).lower() if isinstance(v, bool) else v}"
                for k, v in zip(keys, values, strict=True)
            )
            spec = base if not extra else f"{base}{',' if ':' in base else ':'}{extra}"
            try:
                backend, config = registry.parse(spec)
            except DriftloopError as exc:
                raise _fail(path, f"models[{i}]: {exc}") from None
            canonical = _canonical(backend, config)
            specs += [arm_label(canonical, stabilizer) for stabilizer in stabilizers]
    return list(dict.fromkeys(specs))


def _stabilizer(path: Path, i: int, value: Any) -> str:
    """A ``stabilize`` grid value, in its canonical spelling."""
    if not isinstance(value, str):
        raise _fail(path, f"models[{i}].grid.stabilize: {value!r} is not a stabilizer spec, e.g. colour:lab")
    try:
        return parse_stabilizer(value).spec
    except DriftloopError as exc:
        raise _fail(path, f"models[{i}].grid.stabilize: {exc}") from None


def _imported(path: Path, entries: Any) -> list[ImportedArm]:
    """``[[imported]]`` entries: ``run = "ID"``, or ``path`` (a string or list, relative to the spec) with
    a ``label``; optional ``model`` (who made the copies) and ``every`` (video: seconds per copy)."""
    if not isinstance(entries, list):
        raise _fail(path, "imported must be a list of tables ([[imported]])")
    out: list[ImportedArm] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise _fail(path, f'imported[{i}] must be a table with run = "ID" or path = "..." and label')
        unknown = set(entry) - {"run", "path", "label", "model", "every"}
        if unknown:
            raise _fail(path, f"imported[{i}]: unknown key(s) {', '.join(sorted(unknown))} "
                              "(allowed: run, path, label, model, every)")  # fmt: skip
        if ("run" in entry) == ("path" in entry):
            raise _fail(path, f'imported[{i}]: give either run = "RUN_ID" or path = "copies/", not both')
        label = entry.get("label")
        if label is not None and (not isinstance(label, str) or not label.strip()):
            raise _fail(path, f"imported[{i}].label must be a non-empty string")
        if "run" in entry:
            if not isinstance(entry["run"], str) or not entry["run"]:
                raise _fail(path, f"imported[{i}].run must be a run id")
            out.append(ImportedArm(label=label, run=entry["run"]))
            continue
        if label is None:
            raise _fail(path, f"imported[{i}]: a path needs a label (the arm is imported:<label>)")
        given = entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
        if not given or not all(isinstance(p, str) and p for p in given):
            raise _fail(path, f"imported[{i}].path must be a path or a list of paths")
        sources = tuple((Path(p) if Path(p).is_absolute() else path.parent / p) for p in given)
        every = entry.get("every")
        if every is not None and (not isinstance(every, int | float) or every <= 0):
            raise _fail(path, f"imported[{i}].every must be a positive number of seconds")
        out.append(ImportedArm(label=" ".join(label.split()), sources=sources, model=entry.get("model"),
                               every=every))  # fmt: skip
    return out


def _hosted(backend: Backend) -> bool:
    return isinstance(backend.build, type) and issubclass(backend.build, HostedReplicator)


def _canonical(backend: Backend, config: Any) -> str:
    """A model's canonical spec, as its runs store it: a hosted model always names its model (a default
    model changes as providers retire theirs), the others only parameters that differ from defaults."""
    if _hosted(backend):
        return canonical_spec(backend.name, config, backend.positional or "model")
    return format_spec(backend.name, config, backend.positional)


def load_sweep(path: str | Path) -> Sweep:
    """Parse and check a sweep spec; every problem names the file and the key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SweepSpecError(f"{path}: no such sweep spec") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise _fail(path, f"not valid TOML ({exc})") from None
    allowed = {
        "name",
        "images",
        "seeds",
        "steps",
        "size",
        "models",
        "control",
        "batch_size",
        "stop_on_fixed_point",
        "faces",
        "imported",
    }
    unknown = set(data) - allowed
    if unknown:
        raise _fail(
            path, f"unknown key(s) {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(allowed))})"
        )
    imported = _imported(path, data.get("imported", []))
    for key in ("images",) if imported else ("images", "models"):
        if not data.get(key):
            raise _fail(path, f"'{key}' is missing or empty")
    seeds = data.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise _fail(path, "seeds must be a non-empty list of whole numbers")
    steps, size = data.get("steps", 101), data.get("size", 512)
    if not isinstance(steps, int) or steps < 1:
        raise _fail(path, "steps must be a whole number ≥ 1")
    if not isinstance(size, int) or size < 8:
        raise _fail(path, "size must be a whole number ≥ 8")
    models = _model_specs(path, data.get("models", []))
    control = _control(path, data.get("control"), models)
    if control is not None and control not in models:
        models.append(control)
    options = {k: data[k] for k in ("batch_size", "stop_on_fixed_point", "faces") if k in data}
    return Sweep(
        name=str(data.get("name") or path.stem),
        path=path,
        images=_expand_images(path, data["images"]),
        seeds=list(dict.fromkeys(seeds)),
        steps=steps,
        size=size,
        models=models,
        control=control,
        options=options,
        imported=imported,
    )


def _control(path: Path, given: Any, models: list[str]) -> str | None:
    """The control's canonical spec: as given, else the first JPEG model, else ``jpeg:quality=90``;
    ``control = false`` means none."""
    if given is False:
        return None
    if given is None:
        return next((m for m in models if split_spec(m)[0] == "jpeg"), DEFAULT_CONTROL)
    if not isinstance(given, str) or not given:
        raise _fail(path, 'control must be a model spec (e.g. "jpeg:quality=90") or false')
    try:
        backend, config = registry.parse(given)
    except DriftloopError as exc:
        raise _fail(path, f"control: {exc}") from None
    return _canonical(backend, config)


def input_hashes(sweep: Sweep) -> dict[Path, str]:
    """sha256 of each input file: what identifies an image across runs (as stored with each chain)."""
    return {path: file_sha256(path) for path in sweep.images if path.is_file()}


def sweep_record(sweep: Sweep, hashes: dict[Path, str], imported: list[str] | None = None) -> dict[str, Any]:
    """What the workspace remembers of a sweep, so ``driftloop bias NAME`` reads exactly its chains."""
    return {
        "models": sweep.models,
        "control": sweep.control,
        "inputs": [{"path": str(p), "sha256": hashes[p]} for p in sweep.images if p in hashes],
        "seeds": sweep.seeds,
        "steps": sweep.steps,
        "size": sweep.size,
        "options": sweep.options,
        "spec_file": str(sweep.path),
        **({"imported": imported} if imported else {}),
    }


@dataclass
class Coverage:
    """Which of a model's sweep chains are already stored, and in which runs."""

    runs: list[str] = field(default_factory=list)  # runs holding at least one wanted chain
    unfinished: list[str] = field(default_factory=list)  # of those, runs to resume
    failed: list[str] = field(default_factory=list)  # of those, runs with wanted chains ended error/refused
    chains: set[tuple[str, int]] = field(default_factory=set)  # (input sha256, seed) already present
    frames: int = 0  # frames of wanted chains already stored (step 0 excluded)
    seconds: list[float] = field(default_factory=list)  # per-frame model seconds seen at this size


def _matches(config: RunConfig, model: str, steps: int, size: int, options: dict[str, Any]) -> bool:
    """A stored run made the same kind of chains: same arm (model and stabilizer), steps, size, stop rule,
    and faces if wanted."""
    return (
        arm_label(config.model, config.stabilize) == model
        and config.n_steps == steps
        and config.requested_size == size
        and config.stop_on_fixed_point == bool(options.get("stop_on_fixed_point", False))
        and (not options.get("faces") or config.metrics.faces)
    )


def coverage(store: Store, sweep: Sweep, model: str, hashes: dict[Path, str]) -> Coverage:
    """The stored chains a sweep can reuse for ``model``: any run's, not only its own.

    An unfinished run is resumed only when every chain it would continue is one the sweep wants (so a
    sweep never pays for someone else's chains); otherwise only its finished wanted chains count.
    """
    wanted = {(sha, seed) for sha in hashes.values() for seed in sweep.seeds}
    out = Coverage()
    for run in store.runs():
        cfg = RunConfig.from_dict(run.config)
        if cfg.model == split_arm(model)[0] and cfg.requested_size == sweep.size:  # the model's time
            out.seconds += [f.model_seconds for f in store.frames(run.id) if f.model_seconds is not None]
        if not _matches(cfg, model, sweep.steps, sweep.size, sweep.options):
            continue
        chains = store.chains(run.id)
        running = [c for c in chains if c.status == "running"]
        resumable = run.status != "done" and all((c.input_sha256, c.seed) in wanted for c in running)
        mine = [
            c for c in chains
            if (c.input_sha256, c.seed) in wanted and (c.input_sha256, c.seed) not in out.chains
            and (resumable or c.status != "running")
        ]  # fmt: skip
        if not mine:
            continue
        out.runs.append(run.id)
        if resumable:
            out.unfinished.append(run.id)
        if any(c.status in RETRYABLE for c in mine):
            out.failed.append(run.id)
        out.chains |= {(c.input_sha256, c.seed) for c in mine}
        out.frames += sum(max(c.last_step, 0) for c in mine)
    return out


def missing_runs(
    sweep: Sweep, hashes: dict[Path, str], have: set[tuple[str, int]]
) -> list[tuple[list[Path], list[int]]]:
    """The new runs a model needs: (images, seeds) groups covering exactly its missing chains (two paths
    to the same picture count once)."""
    by_seeds: dict[tuple[int, ...], list[Path]] = {}
    seen: set[str] = set()
    for path in sweep.images:
        if hashes[path] in seen:
            continue
        seen.add(hashes[path])
        seeds = tuple(s for s in sweep.seeds if (hashes[path], s) not in have)
        if seeds:
            by_seeds.setdefault(seeds, []).append(path)
    return [(images, list(seeds)) for seeds, images in by_seeds.items()]


@dataclass(frozen=True)
class PlanRow:
    """One run of a sweep: its model, how many chains, and what is already done."""

    model: str
    chains: int
    steps: int
    done_frames: int
    seconds_per_frame: float | None
    usd_per_frame: float

    @property
    def remaining_frames(self) -> int:
        return self.chains * self.steps - self.done_frames


def hosted_call(spec: str, factors: Factors, size: int) -> CallEstimate | None:
    """A hosted model's price and time for one copy of a size×size frame (input tokens included where the
    provider's rules are known), with no key and nothing sent; None for a local model."""
    backend, config = registry.parse(split_arm(spec)[0])
    if not _hosted(backend):
        return None
    with offline():
        return backend.build(config).call_estimate(size, size, factors)


def price_per_copy(spec: str, factors: Factors, size: int | None = None) -> float:
    """The price of one copy (0 for local models): a hosted model's own estimate at ``size``, else the
    listed price in the cost factor table."""
    call = hosted_call(spec, factors, size) if size else None
    if call is not None:
        return call.usd
    name, positional, params = split_spec(split_arm(spec)[0])
    price = factors.price(
        f"{name}:{positional}" if positional else name, params.get("quality"), params.get("size")
    )
    return price.usd if price else 0.0


def plan(sweep: Sweep, workspace: str | Path) -> list[PlanRow]:
    """What running the sweep would do, with a time estimate from earlier runs of each model at this size."""
    store = Store(workspace) if Store.exists(workspace) else None
    factors = load_factors(workspace=workspace if Path(workspace).is_dir() else None)
    hashes = input_hashes(sweep)
    rows = []
    for model in sweep.models:
        cov = coverage(store, sweep, model, hashes) if store is not None else Coverage()
        chains = len(sweep.images) * len(sweep.seeds)
        rows.append(
            PlanRow(model, chains, sweep.steps, min(cov.frames, chains * sweep.steps),
                    statistics.median(cov.seconds) if cov.seconds else None,
                    price_per_copy(model, factors, sweep.size))
        )  # fmt: skip
    return rows


@dataclass(frozen=True)
class EstimateRow:
    """A plan row with its time and price: what ``sweep --dry-run`` prints for one model."""

    model: str
    chains: int
    steps: int
    remaining_frames: int
    seconds_per_frame: float | None  # None: unknown (a hosted model is never called to time it)
    usd: float


@dataclass(frozen=True)
class Estimate:
    """What running a sweep would take: per model, and in total."""

    sweep: Sweep
    rows: list[EstimateRow]
    seconds: float  # of the models whose time is known
    usd: float
    time_known: bool


def estimate(sweep: Sweep, workspace: str | Path) -> Estimate:
    """Chains, time and cost of what is still to do; calls no hosted model and stores nothing.

    Time per copy comes from earlier runs of the model at this size, else from timing one copy of a local
    model whose weights are here."""
    rows = []
    factors = load_factors(workspace=workspace if Path(workspace).is_dir() else None)
    for row in plan(sweep, workspace):
        seconds = row.seconds_per_frame
        call = hosted_call(row.model, factors, sweep.size) if seconds is None else None
        duration = call.duration(row.chains, row.steps) if call is not None else None
        if duration is not None:  # the catalogue's typical latency under concurrency and rpm: per copy
            seconds = duration / max(1, row.chains * row.steps)
        elif seconds is None and row.remaining_frames:
            seconds = probe_seconds(row.model, sweep.images[0], sweep.size)
        rows.append(EstimateRow(row.model, row.chains, row.steps, row.remaining_frames, seconds,
                                row.usd_per_frame * row.remaining_frames))  # fmt: skip
    known = [r.seconds_per_frame * r.remaining_frames for r in rows if r.seconds_per_frame is not None]
    return Estimate(sweep, rows, sum(known), sum(r.usd for r in rows), len(known) == len(rows))


def run_sweep(
    sweep: Sweep,
    workspace: str | Path,
    progress_for: Callable[[str], Any] | None = None,
    log: Callable[[str], None] | None = None,
    render: bool = True,
    models: list[str] | None = None,
    retry_failed: bool = False,
    importer: Importer | None = None,
    engine: Engine = LOCAL,
) -> list[str]:
    """Run (or finish) the sweep's chains for ``models`` (default: all); return the ids of the runs that
    hold them, in spec order. ``retry_failed``: also ask again for chains that ended error/refused.

    Imported arms are found (a ``run`` id, or an earlier import of the same ``path`` and ``label``) or, for
    a source not yet imported, imported with ``importer`` (the API's ``import_chain``); their run ids come
    first (only when ``models`` is not given: a caller running models one by one gets them once, from
    its first call's record). ``engine``: where chains advance (this process, or Ray); a sweep started on
    one continues on either."""
    say = log or (lambda _msg: None)
    hashes = input_hashes(sweep)
    missing = [p for p in sweep.images if p not in hashes]
    if missing:
        raise InputError(f"{missing[0]}: no such file (listed by the sweep {sweep.path})")
    store = Store(workspace)
    imported = imported_runs(store, sweep, importer, say)  # cheap once imported: found, not imported again
    store.save_sweep(sweep.name, sweep_record(sweep, hashes, imported))
    ids: list[str] = []
    for run_id in imported:
        store.add_sweep_run(sweep.name, run_id)
        if models is None:
            ids.append(run_id)
    for model in models or sweep.models:
        progress = progress_for(model) if progress_for else None
        cov = coverage(store, sweep, model, hashes)
        for run_id in cov.runs:
            store.add_sweep_run(sweep.name, run_id)
            retry = retry_failed and run_id in cov.failed
            if run_id in cov.unfinished or retry:
                say(f"{model}: resuming run {run_id}")
                replicator = rebuild(store, run_id, None, None, say)
                continue_run(store, run_id, replicator, progress, say, retry_failed=retry, engine=engine)
                finish(RunView(store, run_id), render)
            ids.append(run_id)
        if cov.runs and not cov.unfinished:
            say(f"{model}: {len(cov.chains)} chain(s) already done in {', '.join(cov.runs)}")
        for images, seeds in missing_runs(sweep, hashes, cov.chains):
            base, stabilize = split_arm(model)
            prepared = prepare(
                images, base, sweep.steps, seeds, sweep.size, workspace, sweep=sweep.name, log=log,
                stabilize=stabilize, **sweep.options,
            )  # fmt: skip
            run_id = start(prepared, store, progress, log, engine=engine)
            finish(RunView(store, run_id), render)
            store.add_sweep_run(sweep.name, run_id)
            ids.append(run_id)
    return ids


def imported_runs(
    store: Store, sweep: Sweep, importer: Importer | None, say: Callable[[str], None]
) -> list[str]:
    """The run ids of a sweep's imported arms: as given, found from an earlier import, or imported now."""
    ids: list[str] = []
    for entry in sweep.imported:
        if entry.run is not None:
            row = store.get_run(entry.run)  # a clear RunNotFoundError for a wrong id
            if not str(row.model).startswith(IMPORTED_PREFIX):
                raise _fail(sweep.path, f"imported: run {row.id} is a {row.model} run, not an imported one")
            ids.append(row.id)
            continue
        found = _earlier_import(store, entry)
        if found is None:
            if importer is None:
                hint = f"driftloop import {entry.sources[0]} --label {entry.label!r}"
                raise _fail(sweep.path, f"imported: {entry.sources[0]} is not imported yet; run {hint}")
            say(f"{entry.arm}: importing {', '.join(str(p) for p in entry.sources)}")
            found = importer(entry)
        else:
            say(f"{entry.arm}: already imported as run {found}")
        ids.append(found)
    return list(dict.fromkeys(ids))


def _earlier_import(store: Store, entry: ImportedArm) -> str | None:
    """The newest finished run importing the same sources under the same label."""
    roots = [p.resolve() for p in entry.sources]
    for row in reversed(store.runs()):
        files = (row.config.get("import") or {}).get("files") or []
        if row.model != entry.arm or row.status != "done" or not files:
            continue
        paths = [Path(f["path"]).resolve() for f in files]
        if all(any(p == r or r in p.parents for r in roots) for p in paths):
            return row.id
    return None


def finish(run: RunView, render: bool) -> None:
    """A sweep run's outputs, as after ``driftloop run``: the report and ``summary.json`` always; with
    ``render`` the animations and contact sheet first (the report embeds them)."""
    if render:
        render_run(run)
    write_run_report(run)


def sweep_runs(workspace: str | Path, name: str) -> list[str]:
    """Ids of the runs holding a sweep's chains, oldest first (runs tagged by older versions included)."""
    store = Store(workspace)
    ids = store.sweep_run_ids(name)
    tagged = [r.id for r in store.runs() if r.config.get("sweep") == name and r.id not in ids]
    return ids + tagged


def sweep_chains(workspace: str | Path, name: str) -> tuple[dict[str, set[int]], str | None]:
    """The chains that make up sweep ``name`` (run id → chain numbers) and its control.

    Exactly the (model, image, seed) chains its spec asks for, each once (the one with most steps when
    several runs hold the same chain); for a sweep the workspace has no record of, every chain of its runs.
    """
    if not Store.exists(workspace):
        return {}, None
    store = Store(workspace)
    record = store.get_sweep(name)
    ids = sweep_runs(workspace, name)
    if record is None:
        return {i: {c.chain for c in store.chains(i)} for i in ids}, None
    models = set(record["models"])
    wanted = {(i["sha256"], seed) for i in record["inputs"] for seed in record["seeds"]}
    best: dict[tuple[str, str, int], tuple[int, str, int]] = {}
    chosen: dict[str, set[int]] = {}
    for run_id in record.get("imported", []):  # an imported arm: its whole chain
        if run_id in ids:
            chosen[run_id] = {c.chain for c in store.chains(run_id)}
    for run_id in ids:
        run = store.get_run(run_id)
        config = RunConfig.from_dict(run.config)
        model = arm_label(config.model, config.stabilize)
        if model not in models or not _matches(
            config, model, record["steps"], record["size"], record.get("options", {})
        ):
            continue  # made for an earlier version of the spec (other steps or size)
        for c in store.chains(run_id):
            key = (model, c.input_sha256, c.seed)
            if (c.input_sha256, c.seed) in wanted and c.last_step > best.get(key, (-1, "", 0))[0]:
                best[key] = (c.last_step, run_id, c.chain)
    for _, run_id, chain in best.values():
        chosen.setdefault(run_id, set()).add(chain)
    return chosen, record.get("control")


def probe_seconds(model: str, image: Path, size: int) -> float | None:
    """Seconds one copy takes here, timed on the sweep's first image (warm, after one call).

    Hosted models are not probed: a probe would be a paid request.
    """
    backend, config = registry.parse(split_arm(model)[0])
    if not backend.weights_status(config).present:
        return None  # timing it would mean downloading it
    replicator = backend.build(config)
    if replicator.requirements.device == "api":
        return None
    frame = load_image(image, size, replicator.requirements.size_multiple).frame
    replicator.replicate([frame], [0])
    started = time.perf_counter()
    replicator.replicate([frame], [1])
    return time.perf_counter() - started
