"""Sweeps: every (image, model, parameters, seed) of a TOML spec is a chain.

One run per model configuration holds all of its chains (images × seeds), so a sweep is a list of runs
tagged with the sweep's name. Running the same spec again only runs what is missing: a finished run with
the same inputs and settings is reused, an unfinished one resumed.

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
from driftloop.errors import DriftloopError
from driftloop.replicators import registry
from driftloop.replicators.spec import format_spec, split_spec
from driftloop.store import Store

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
    control = data.get("control", next((m for m in models if split_spec(m)[0] == "jpeg"), None))
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
    store = Store(workspace) if Path(workspace).exists() else None
    factors = load_factors(workspace=workspace if Path(workspace).is_dir() else None)
    rows = []
    for model in sweep.models:
        done, timings = 0, []
        if store is not None:
            for run in store.runs():
                cfg = run.config
                if cfg["model"] != model or cfg["size"] != sweep.size:
                    continue
                frames = [f for f in store.frames(run.id) if f.model_seconds is not None]
                timings += [f.model_seconds for f in frames]
                if cfg.get("sweep") == sweep.name and cfg["n_steps"] == sweep.steps:
                    done += len(frames)
        chains = len(sweep.images) * len(sweep.seeds)
        rows.append(
            PlanRow(model, chains, sweep.steps, min(done, chains * sweep.steps),
                    statistics.median(timings) if timings else None, price_per_copy(model, factors))
        )  # fmt: skip
    return rows


def run_sweep(
    sweep: Sweep,
    workspace: str | Path,
    progress_for: Callable[[str], Any] | None = None,
    log: Callable[[str], None] | None = None,
    render: bool = True,
) -> list[str]:
    """Run (or finish) every run of the sweep; return their ids in spec order."""
    from driftloop import api

    ids = []
    for model in sweep.models:
        handle = api.run(
            sweep.images, model=model, n=sweep.steps, seeds=sweep.seeds, size=sweep.size, workspace=workspace,
            resume=True, reuse_done=True, sweep=sweep.name, render=render,
            progress=progress_for(model) if progress_for else None, log=log, **sweep.options,
        )  # fmt: skip
        ids.append(handle.id)
    return ids


def sweep_runs(workspace: str | Path, name: str) -> list[str]:
    """Ids of the runs tagged with sweep ``name``, oldest first."""
    return [r.id for r in Store(workspace).runs() if r.config.get("sweep") == name]


def probe_seconds(model: str, image: Path, size: int) -> float | None:
    """Seconds one copy takes here, timed on the sweep's first image (warm, after one call).

    Hosted models are not probed: a probe would be a paid request.
    """
    from driftloop.images import load_image

    replicator = registry.build(model)
    if replicator.requirements.device == "api":
        return None
    frame = load_image(image, size, replicator.requirements.size_multiple).frame
    replicator.replicate([frame], [0])
    started = time.perf_counter()
    replicator.replicate([frame], [1])
    return time.perf_counter() - started
