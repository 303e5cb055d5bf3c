"""Import a chain made elsewhere (a folder of copies, a GIF, a video) as an ordinary driftloop run.

The run has one chain, frame 0 the first image, and ``imported:<label>`` as its model; its frames go
through the same writer as the engine's (PNG made durable, then its row) and its metrics through the same
recorder, so the summaries, report, animations, contact sheet and gallery treat it like any other run.

All or nothing: the whole sequence is read, decoded and brought to one size before the run is created,
and any failure while writing (Ctrl-C included) deletes the run's rows and folder before it propagates.

Sizes: frame 0 keeps its own size (or becomes ``size``×``size``); a copy of a different size is brought to
it the way a hosted model's answer is (:func:`driftloop.replicators.hosted.canvas.unplace`: the centred box of
frame 0's shape fitted in the copy, one scale factor, no stretch), and that is recorded in its frame info.
"""

from __future__ import annotations

import itertools
import re
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from driftloop.analysis.sources import matching_chain
from driftloop.config import DEFAULT_MAX_PIXELS, DEFAULT_WORKSPACE, IMPORTED_PREFIX, MetricsConfig
from driftloop.cost import load_factors
from driftloop.engines.start import new_run_id
from driftloop.errors import InputError, SpecError
from driftloop.frames import NewFrame, frame_sha256
from driftloop.metrics.recorder import MetricsRecorder, MetricsSettings, metrics_settings
from driftloop.provenance import host, versions
from driftloop.replicators.hosted.canvas import place, unplace
from driftloop.report.run import write_outputs
from driftloop.sequences import CopySequence, FindCopies, read_sequence
from driftloop.store import FrameWriter, RunView, Store, run_lock

__all__ = ["conform", "copy_steps", "import_chain"]

MODEL_PREFIX = IMPORTED_PREFIX
_BATCH = 8  # frames per writer transaction


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
    log: Callable[[str], None] | None = None,
) -> str:
    """Import a copy sequence as a new run and return its id.

    ``sources``: one folder, image files, one animated GIF/WebP, or one video (see
    :func:`driftloop.sequences.read_sequence` for ``every``, ``crop`` and ``order_file``; ``threshold``,
    ``hold`` (seconds) and ``copies`` tune how a video's copies are found). ``label`` names the chain
    (model ``imported:<label>``; default: ``model``, else the source's name);
    ``model`` records which model made the copies. ``steps`` numbers the copies (default: from the
    file names of a folder, else 0, 1, 2, ...; see :func:`copy_steps`). Copies that show the same
    pictures as a stored chain (the same chain as a GIF, PNGs or a re-encoded video) are refused with
    that run's id (``InputError``) unless ``allow_duplicate``; then the run records ``duplicate_of`` and
    the bias card counts the chain once. ``faces`` adds the face measures (``driftloop[faces]``).
    ``size`` makes every frame ``size``×``size`` (default: frame 0's own size). The report and
    ``summary.json`` are written afterwards, and with ``render`` the animations and contact sheet first
    (a render failure leaves the complete run in place).
    """
    say = log or (lambda _msg: None)
    given = [sources] if isinstance(sources, str | Path) else list(sources)
    paths = [Path(p).expanduser().resolve() for p in given]  # stored one way: absolute, resolved
    order_file = Path(order_file).expanduser().resolve() if order_file is not None else None
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 8):
        raise SpecError(f"--size must be a whole number of pixels, at least 8 (got {size})")
    name = _label(label, model, paths, order_file)
    seq = read_sequence(
        paths,
        every=every,
        found=FindCopies(threshold, hold, copies),
        crop=crop,
        order_file=order_file,
        max_pixels=max_pixels,
    )
    for note in seq.notes:
        say(note)
    numbers, numbering = copy_steps(seq, steps)
    say(numbering)
    frames, infos = conform(seq, size)
    resized = sum(1 for info in infos if "resized" in info)
    if resized:
        say(f"{resized} frame(s) brought to frame 0's size {frames[0].shape[1]}x{frames[0].shape[0]}")
    spec = MODEL_PREFIX + name
    config = _config(seq, spec, name, model, frames, size, numbers, numbering)
    config["metrics"]["faces"] = faces
    store = Store(workspace)
    stored = matching_chain((RunView(store, row.id) for row in store.runs()), numbers, frames)
    if stored is not None and not allow_duplicate:
        where = ", ".join(str(p) for p in paths) or str(order_file)
        raise InputError(
            f"{where}: these copies are already stored as run {stored[0]} (chain {stored[1]}); one chain "
            "imported twice would count twice. Use that run, or pass --allow-duplicate to import it again"
        )
    if stored is not None:
        config["import"]["duplicate_of"] = stored[0]
        say(f"the same chain as run {stored[0]} (chain {stored[1]}): imported again (--allow-duplicate)")
    run_id = new_run_id(spec)
    first_path, first_sha = _origin(seq)
    model_info = {"kind": "imported", "label": name, "made_by": model, "sequence": seq.kind}
    try:
        store.create_run(
            run_id, spec, numbers[-1], config, model_info, versions(), host(),
            [(first_path, first_sha, 0)],
        )  # fmt: skip
        for note in (*seq.notes, numbering):  # what was found, shown among the report's notes
            store.add_event(run_id, "import", note)
        with run_lock(store.run_dir(run_id), run_id):
            settings = metrics_settings(store, run_id, MetricsConfig(faces=faces), say) or MetricsSettings()
            _write(store, run_id, frames, infos, numbers, settings)
    except BaseException:
        _discard(store, run_id)
        raise
    say(f"imported {len(frames)} frames ({seq.kind}) as run {run_id}")
    write_outputs(RunView(store, run_id), render, say)
    return run_id


def copy_steps(seq: CopySequence, steps: Sequence[int] | None = None) -> tuple[list[int], str]:
    """The step number of each copy, and a sentence saying where they came from and what is missing.

    ``steps`` (``--steps 0,1,2,3,10``) wins. Otherwise the files of a folder number their copies by the
    last number in each name, the first file being step 0: ``copy_000`` … ``copy_010`` are steps 0 … 10,
    ``original.png, copy_1.png, copy_2.png, copy_10.png`` are 0, 1, 2, 10, and ``1.png 2.png 3.png
    10.png`` are 0, 1, 2, 9. Names that do not number the copies in order (and animations and videos)
    give 0, 1, 2, ... Rates, plots and the card use these steps, so a chain with gaps is measured per
    real step.
    """
    n = len(seq.members)
    if steps is not None:
        numbers = [int(s) for s in steps]
        if len(numbers) != n:
            raise SpecError(f"--steps gives {len(numbers)} step(s) for {n} copies; give one step per copy")
        if numbers[0] != 0 or any(b <= a for a, b in itertools.pairwise(numbers)):
            raise SpecError(f"--steps must start at 0 and rise (got {','.join(map(str, numbers))})")
        return numbers, _said(numbers, "from --steps")
    named = _named_steps(seq) if seq.kind == "images" else None
    if named is None:
        return list(range(n)), f"steps 0 to {n - 1}, one per copy in order"
    return named, _said(named, "from the file names")


def _named_steps(seq: CopySequence) -> list[int] | None:
    """Steps from the last number in each file's name (the first file may have none: the original)."""
    found = [re.findall(r"\d+", Path(m.source).stem) for m in seq.members]
    numbers = [int(f[-1]) if f else None for f in found]
    if any(v is None for v in numbers[1:]):
        return None
    base = 0 if numbers[0] is None else numbers[0]
    steps = [0] + [v - base for v in numbers[1:] if v is not None]
    if any(b <= a for a, b in itertools.pairwise(steps)):
        return None
    return steps


def _missing(steps: list[int]) -> list[list[int]]:
    """The gaps of a step list, as inclusive [first, last] ranges."""
    return [[a + 1, b - 1] for a, b in itertools.pairwise(steps) if b > a + 1]


def _said(steps: list[int], where: str) -> str:
    gaps = _missing(steps)
    shown = ", ".join(map(str, steps)) if len(steps) <= 12 else f"{steps[0]}, {steps[1]}, …, {steps[-1]}"
    if not gaps:
        return f"steps {shown} {where}"
    holes = ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in gaps)
    count = sum(b - a + 1 for a, b in gaps)
    return (
        f"steps {shown} {where}: a chain with gaps ({count} step(s) missing: {holes}); "
        "rates and plots use the real steps"
    )


def conform(seq: CopySequence, size: int | None = None) -> tuple[list[np.ndarray], list[dict[str, Any]]]:
    """Every member at one size, with its frame info (what :class:`~driftloop.sequences.Member` recorded,
    plus ``resized`` for a frame brought to size like a hosted model's answer)."""
    first = seq.members[0].frame
    target = (size, size) if size is not None else (first.shape[0], first.shape[1])
    geometry = np.zeros((*target, 3), dtype=np.uint8)  # only its shape matters to place()
    frames, infos = [], []
    for member in seq.members:
        frame, info = member.frame, {"source": member.source, **member.info}
        height, width = frame.shape[:2]
        if (height, width) != target:
            placement = place(geometry, (width, height))[1]
            frame = unplace(frame, placement)
            info["resized"] = {
                "from": [width, height],
                "to": [target[1], target[0]],
                "box": list(placement.box),
                "as": "hosted copy: the centred box of frame 0's shape, one scale factor, no stretch",
            }
        frames.append(np.ascontiguousarray(frame))
        infos.append(info)
    return frames, infos


def _label(label: str | None, model: str | None, paths: list[Path], order_file: str | Path | None) -> str:
    text = label if label is not None else model
    if text is None and not paths and order_file is None:
        raise InputError("no sources given: pass a folder, image files, an animated GIF/WebP or a video")
    if text is None:
        source = paths[0] if len(paths) == 1 else Path(order_file) if order_file else paths[0].parent
        text = source.resolve().name if source.is_dir() else source.stem
    text = " ".join(str(text).split())
    if not text or len(text) > 80:
        raise SpecError(f"--label must be 1 to 80 characters (got {label!r})")
    return text


def _origin(seq: CopySequence) -> tuple[str, str]:
    """The chain's input: frame 0's file (a folder's first image), or the animation or video itself."""
    return seq.files[0]


def _config(
    seq: CopySequence,
    spec: str,
    label: str,
    model: str | None,
    frames: list[np.ndarray],
    size: int | None,
    steps: list[int],
    numbering: str,
) -> dict[str, Any]:
    """A run configuration with the keys every run has, plus what the import read and how."""
    path, sha = _origin(seq)
    height, width = frames[0].shape[:2]
    return {
        "model": spec,
        "inputs": [{"path": path, "sha256": sha}],
        "seeds": [0],
        "n_steps": steps[-1],
        "size": max(height, width),
        "requested_size": size,
        "batch_size": None,
        "stop_on_fixed_point": False,
        "patience": 3,
        "refusal_retries": 0,
        "max_cost_usd": None,
        "cost": {
            "factors": load_factors(None, None).to_dict(),
            "meters": "none (imported copies, made elsewhere: not measured)",
        },
        "metrics": {"enabled": True, "perceptual": False, "faces": False},
        "sweep": None,
        "import": {
            "label": label,
            "model": model,
            "frame_size": [width, height],
            "steps": steps,
            "missing_steps": _missing(steps),
            "numbering": numbering,
            "files": [{"path": p, "sha256": h} for p, h in seq.files],
            **seq.settings,
        },
    }


def _write(
    store: Store,
    run_id: str,
    frames: list[np.ndarray],
    infos: list[dict[str, Any]],
    steps: list[int],
    settings: MetricsSettings,
) -> None:
    """Frames through the engine's writer (file, then row), metrics through its recorder; run marked done."""
    store.set_run_status(run_id, "running")
    writer = FrameWriter(store, run_id)
    recorder = MetricsRecorder(
        store, run_id, settings, on_error=lambda m: store.add_event(run_id, "metrics", m)
    )
    try:
        for start in range(0, len(frames), _BATCH):
            batch = [
                NewFrame(0, steps[i], None, frames[i], frame_sha256(frames[i]), info=infos[i])
                for i in range(start, min(start + _BATCH, len(frames)))
            ]
            writer.write_frames(batch)
            recorder.submit_many((f.chain, f.step, f.frame) for f in batch)
        writer.set_status(0, "done")
    finally:
        try:
            writer.close()
        finally:
            recorder.close()
    store.set_run_status(run_id, "done")


def _discard(store: Store, run_id: str) -> None:
    """Remove a half-imported run: its rows first, then its folder."""
    store.delete_run(run_id)
    shutil.rmtree(store.run_dir(run_id), ignore_errors=True)
