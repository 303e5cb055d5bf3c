"""A sweep spec (TOML) read and checked: images, models with their grids and stabilizers, imported arms,
seeds, steps, size, control; and what the workspace records of it."""

from __future__ import annotations

import glob
import itertools
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from driftloop._fs import file_sha256
from driftloop.config import IMPORTED_PREFIX, arm_label
from driftloop.errors import DriftloopError
from driftloop.replicators import registry
from driftloop.replicators.base import Backend
from driftloop.replicators.hosted.config import canonical_spec
from driftloop.replicators.hosted.replicator import HostedReplicator
from driftloop.replicators.spec import format_spec, split_spec
from driftloop.stabilizers import parse_stabilizer

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


def spec_error(path: Path, message: str) -> SweepSpecError:
    return SweepSpecError(f"{path}: {message}")


def _expand_images(path: Path, entries: list[Any]) -> list[Path]:
    base = path.parent
    found: list[Path] = []
    for entry in entries:
        if not isinstance(entry, str):
            raise spec_error(path, f"images: {entry!r} is not a path or glob")
        target = Path(entry).expanduser()
        target = target if target.is_absolute() else base / target
        if target.is_dir():
            matches = sorted(p for p in target.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif any(ch in entry for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(str(target), recursive=True))
        else:
            matches = [target]
        if not matches:
            raise spec_error(path, f"images: {entry!r} matches no image")
        found += matches
    return list(dict.fromkeys(found))


def _model_specs(path: Path, models: list[Any]) -> list[str]:
    specs: list[str] = []
    for i, model in enumerate(models):
        if isinstance(model, str):
            model = {"spec": model}
        if not isinstance(model, dict) or "spec" not in model:
            raise spec_error(path, f"models[{i}] needs a 'spec' (e.g. spec = \"taef2\")")
        unknown = set(model) - {"spec", "grid"}
        if unknown:
            raise spec_error(
                path, f"models[{i}]: unknown key(s) {', '.join(sorted(unknown))} (allowed: spec, grid)"
            )
        grid = model.get("grid", {})
        if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
            raise spec_error(path, f"models[{i}].grid must map parameter names to non-empty lists")
        base = model["spec"]
        stabilizers = [_stabilizer(path, i, v) for v in grid.get("stabilize", ["none"])]
        windows = [_context(path, i, v) for v in grid.get("context", ["thread"])]
        keys = [k for k in grid if k not in ("stabilize", "context")]
        for window, values in itertools.product(windows, itertools.product(*(grid[k] for k in keys))):
            items = [*zip(keys, values, strict=True), *([("window", window)] if window is not None else [])]
            extra = ",".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in items)
            spec = base if not extra else f"{base}{',' if ':' in base else ':'}{extra}"
            try:
                backend, config = registry.parse(spec)
            except DriftloopError as exc:
                raise spec_error(path, f"models[{i}]: {exc}") from None
            canonical = _canonical(backend, config)
            specs += [arm_label(canonical, stabilizer) for stabilizer in stabilizers]
    return list(dict.fromkeys(specs))


def _context(path: Path, i: int, value: Any) -> int | None:
    """A ``context`` grid value as the conversation models' ``window``: ``thread`` (none: the whole
    thread), ``window=K`` (K) or ``fresh`` (0: every copy alone, the control)."""
    text = str(value).strip().lower().replace(" ", "")
    if text == "thread":
        return None
    if text == "fresh":
        return 0
    if text.startswith("window=") and text[7:].isdigit():
        return int(text[7:])
    raise spec_error(path, f"models[{i}].grid.context: {value!r} is not thread, fresh or window=K")


def _stabilizer(path: Path, i: int, value: Any) -> str:
    """A ``stabilize`` grid value, in its canonical spelling."""
    if not isinstance(value, str):
        raise spec_error(
            path, f"models[{i}].grid.stabilize: {value!r} is not a stabilizer spec, e.g. colour:lab"
        )
    try:
        return parse_stabilizer(value).spec
    except DriftloopError as exc:
        raise spec_error(path, f"models[{i}].grid.stabilize: {exc}") from None


def _imported(path: Path, entries: Any) -> list[ImportedArm]:
    """``[[imported]]`` entries: ``run = "ID"``, or ``path`` (a string or list, relative to the spec) with
    a ``label``; optional ``model`` (who made the copies) and ``every`` (video: seconds per copy)."""
    if not isinstance(entries, list):
        raise spec_error(path, "imported must be a list of tables ([[imported]])")
    out: list[ImportedArm] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise spec_error(path, f'imported[{i}] must be a table with run = "ID" or path = "..." and label')
        unknown = set(entry) - {"run", "path", "label", "model", "every"}
        if unknown:
            raise spec_error(path, f"imported[{i}]: unknown key(s) {', '.join(sorted(unknown))} "
                              "(allowed: run, path, label, model, every)")  # fmt: skip
        if ("run" in entry) == ("path" in entry):
            raise spec_error(path, f'imported[{i}]: give either run = "RUN_ID" or path = "copies/", not both')
        label = entry.get("label")
        if label is not None and (not isinstance(label, str) or not label.strip()):
            raise spec_error(path, f"imported[{i}].label must be a non-empty string")
        if "run" in entry:
            if not isinstance(entry["run"], str) or not entry["run"]:
                raise spec_error(path, f"imported[{i}].run must be a run id")
            out.append(ImportedArm(label=label, run=entry["run"]))
            continue
        if label is None:
            raise spec_error(path, f"imported[{i}]: a path needs a label (the arm is imported:<label>)")
        given = entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
        if not given or not all(isinstance(p, str) and p for p in given):
            raise spec_error(path, f"imported[{i}].path must be a path or a list of paths")
        sources = tuple((Path(p) if Path(p).is_absolute() else path.parent / p) for p in given)
        every = entry.get("every")
        if every is not None and (not isinstance(every, int | float) or every <= 0):
            raise spec_error(path, f"imported[{i}].every must be a positive number of seconds")
        out.append(ImportedArm(label=" ".join(label.split()), sources=sources, model=entry.get("model"),
                               every=every))  # fmt: skip
    return out


def is_hosted(backend: Backend) -> bool:
    return isinstance(backend.build, type) and issubclass(backend.build, HostedReplicator)


def _canonical(backend: Backend, config: Any) -> str:
    """A model's canonical spec, as its runs store it: a hosted model always names its model (a default
    model changes as providers retire theirs), the others only parameters that differ from defaults."""
    if is_hosted(backend):
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
        raise spec_error(path, f"not valid TOML ({exc})") from None
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
        raise spec_error(
            path, f"unknown key(s) {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(allowed))})"
        )
    imported = _imported(path, data.get("imported", []))
    only_imported = bool(imported) and not data.get("models")  # a sweep of imported chains alone
    for key in () if only_imported else ("images",) if imported else ("images", "models"):
        if not data.get(key):
            raise spec_error(path, f"'{key}' is missing or empty")
    if only_imported and data.get("control"):
        raise spec_error(path, "control: a sweep of imported chains alone runs no model; drop control or "
                         "add images and models")  # fmt: skip
    seeds = data.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise spec_error(path, "seeds must be a non-empty list of whole numbers")
    steps, size = data.get("steps", 101), data.get("size", 512)
    if not isinstance(steps, int) or steps < 1:
        raise spec_error(path, "steps must be a whole number ≥ 1")
    if not isinstance(size, int) or size < 8:
        raise spec_error(path, "size must be a whole number ≥ 8")
    models = _model_specs(path, data.get("models", [])) if data.get("models") else []
    control = None if only_imported else _control(path, data.get("control"), models)
    if control is not None and control not in models:
        models.append(control)
    options = {k: data[k] for k in ("batch_size", "stop_on_fixed_point", "faces") if k in data}
    return Sweep(
        name=str(data.get("name") or path.stem),
        path=path,
        images=_expand_images(path, data["images"]) if data.get("images") else [],
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
        raise spec_error(path, 'control must be a model spec (e.g. "jpeg:quality=90") or false')
    try:
        backend, config = registry.parse(given)
    except DriftloopError as exc:
        raise spec_error(path, f"control: {exc}") from None
    return _canonical(backend, config)


def input_hashes(sweep: Sweep) -> dict[Path, str]:
    """sha256 of each input file: what identifies an image across runs (as stored with each chain)."""
    return {path: file_sha256(path) for path in sweep.images if path.is_file()}


def sweep_record(
    sweep: Sweep,
    hashes: dict[Path, str],
    imported: list[str] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """What the workspace remembers of a sweep, so ``driftloop bias NAME`` reads exactly its chains:
    ``control`` is false when the spec says ``control = false`` (no comparisons); ``labels`` names imported
    runs given by id (``[[imported]] run = … label = …``) on the card."""
    return {
        "models": sweep.models,
        "control": sweep.control if sweep.control is not None else False,
        **({"labels": labels} if labels else {}),
        "inputs": [{"path": str(p), "sha256": hashes[p]} for p in sweep.images if p in hashes],
        "seeds": sweep.seeds,
        "steps": sweep.steps,
        "size": sweep.size,
        "options": sweep.options,
        "spec_file": str(sweep.path),
        **({"imported": imported} if imported else {}),
    }
