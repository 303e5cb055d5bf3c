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

from driftloop.cost import Factors, load_factors
from driftloop.engines.start import LOCAL, RETRYABLE, Engine, continue_run, prepare, rebuild, start
from driftloop.errors import DriftloopError, InputError
from driftloop.images import load_image
from driftloop.render.run import render_run
from driftloop.replicators import registry
from driftloop.replicators.spec import format_spec, split_spec
from driftloop.report.run import write_run_report
from driftloop.store import RunView, Store
from driftloop.weights import file_sha256

DEFAULT_CONTROL = "jpeg:quality=90"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}


class SweepSpecError(DriftloopError):
    """A sweep spec file is missing, not TOML, or has a bad key or value."""

    exit_code = 2


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
        keys = list(grid)
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
            specs.append(format_spec(backend.name, config, backend.positional))
    return list(dict.fromkeys(specs))


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
    }
    unknown = set(data) - allowed
    if unknown:
        raise _fail(
            path, f"unknown key(s) {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(allowed))})"
        )
    for key in ("images", "models"):
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
    models = _model_specs(path, data["models"])
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
    return format_spec(backend.name, config, backend.positional)


def input_hashes(sweep: Sweep) -> dict[Path, str]:
    """sha256 of each input file: what identifies an image across runs (as stored with each chain)."""
    return {path: file_sha256(path) for path in sweep.images if path.is_file()}


def sweep_record(sweep: Sweep, hashes: dict[Path, str]) -> dict[str, Any]:
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


def _matches(cfg: dict[str, Any], model: str, steps: int, size: int, options: dict[str, Any]) -> bool:
    """A stored run made the same kind of chains: same model, steps, size, stop rule, and faces if wanted."""
    return (
        cfg.get("model") == model
        and cfg.get("n_steps") == steps
        and cfg.get("requested_size", cfg.get("size")) == size
        and bool(cfg.get("stop_on_fixed_point")) == bool(options.get("stop_on_fixed_point", False))
        and (not options.get("faces") or bool(cfg.get("metrics", {}).get("faces")))
    )


def coverage(store: Store, sweep: Sweep, model: str, hashes: dict[Path, str]) -> Coverage:
    """The stored chains a sweep can reuse for ``model``: any run's, not only its own.

    An unfinished run is resumed only when every chain it would continue is one the sweep wants (so a
    sweep never pays for someone else's chains); otherwise only its finished wanted chains count.
    """
    wanted = {(sha, seed) for sha in hashes.values() for seed in sweep.seeds}
    out = Coverage()
    for run in store.runs():
        cfg = run.config
        if cfg.get("model") == model and cfg.get("requested_size", cfg.get("size")) == sweep.size:
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


def price_per_copy(spec: str, factors: Factors) -> float:
    """The listed price of one copy by a hosted model (0 for local models), from the cost factor table."""
    name, positional, params = split_spec(spec)
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
                    statistics.median(cov.seconds) if cov.seconds else None, price_per_copy(model, factors))
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

    rows: list[EstimateRow]
    seconds: float  # of the models whose time is known
    usd: float
    time_known: bool


def estimate(sweep: Sweep, workspace: str | Path) -> Estimate:
    """Chains, time and cost of what is still to do; calls no hosted model and stores nothing.

    Time per copy comes from earlier runs of the model at this size, else from timing one copy of a local
    model whose weights are here."""
    rows = []
    for row in plan(sweep, workspace):
        seconds = row.seconds_per_frame
        if seconds is None and row.remaining_frames:
            seconds = probe_seconds(row.model, sweep.images[0], sweep.size)
        rows.append(EstimateRow(row.model, row.chains, row.steps, row.remaining_frames, seconds,
                                row.usd_per_frame * row.remaining_frames))  # fmt: skip
    known = [r.seconds_per_frame * r.remaining_frames for r in rows if r.seconds_per_frame is not None]
    return Estimate(rows, sum(known), sum(r.usd for r in rows), len(known) == len(rows))


def run_sweep(
    sweep: Sweep,
    workspace: str | Path,
    progress_for: Callable[[str], Any] | None = None,
    log: Callable[[str], None] | None = None,
    render: bool = True,
    models: list[str] | None = None,
    retry_failed: bool = False,
    engine: Engine = LOCAL,
) -> list[str]:
    """Run (or finish) the sweep's chains for ``models`` (default: all); return the ids of the runs that
    hold them, in spec order. ``retry_failed``: also ask again for chains that ended error/refused.
    ``engine``: where chains advance (this process, or Ray); a sweep started on one continues on either."""
    say = log or (lambda _msg: None)
    hashes = input_hashes(sweep)
    missing = [p for p in sweep.images if p not in hashes]
    if missing:
        raise InputError(f"{missing[0]}: no such file (listed by the sweep {sweep.path})")
    store = Store(workspace)
    store.save_sweep(sweep.name, sweep_record(sweep, hashes))
    ids: list[str] = []
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
            prepared = prepare(
                images, model, sweep.steps, seeds, sweep.size, workspace, sweep=sweep.name, log=log,
                **sweep.options,
            )  # fmt: skip
            run_id = start(prepared, store, progress, log, engine=engine)
            finish(RunView(store, run_id), render)
            store.add_sweep_run(sweep.name, run_id)
            ids.append(run_id)
    return ids


def finish(run: RunView, render: bool) -> None:
    """A sweep run's outputs, as after ``driftloop run``: animations, contact sheet and report."""
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
    for run_id in ids:
        run = store.get_run(run_id)
        model = run.config.get("model")
        if model not in models or not _matches(
            run.config, model, record["steps"], record["size"], record.get("options", {})
        ):
            continue  # made for an earlier version of the spec (other steps or size)
        for c in store.chains(run_id):
            key = (model, c.input_sha256, c.seed)
            if (c.input_sha256, c.seed) in wanted and c.last_step > best.get(key, (-1, "", 0))[0]:
                best[key] = (c.last_step, run_id, c.chain)
    chosen: dict[str, set[int]] = {}
    for _, run_id, chain in best.values():
        chosen.setdefault(run_id, set()).add(chain)
    return chosen, record.get("control")


def probe_seconds(model: str, image: Path, size: int) -> float | None:
    """Seconds one copy takes here, timed on the sweep's first image (warm, after one call).

    Hosted models are not probed: a probe would be a paid request.
    """
    backend, config = registry.parse(model)
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
