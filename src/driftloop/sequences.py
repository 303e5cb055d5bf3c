"""Copy sequences made by other tools, read into frames: a folder of images, an animation, a video.

Most chains in the wild were made by hand in a chat app and posted as a folder of numbered images, a GIF
or a video. To measure them like driftloop's own runs, each copy must become one RGB ``uint8`` frame, in
order, with its pixels exactly as saved (no resize here: frames of a different size are brought to frame
0's size by the importer, the way a hosted model's answer is). What this module decides:

* **Order.** Folders and lists of files are sorted naturally (``2.png`` before ``10.png``), because a
  shell glob sorts ``10.png`` before ``2.png``; in a folder, the one file without a number among numbered
  ones (``original.png`` beside ``copy_1.png`` …) comes first; an order file (one path per line)
  overrides it.
* **Which video frames are copies.** A video shows each copy for a while. With ``every=SECONDS`` the k-th
  copy is the frame in the middle of the k-th window from the start. Otherwise cuts and the cadence at
  which copies are shown find them (:mod:`driftloop.cadence`); ``FindCopies`` overrides the threshold,
  the hold or the number of copies.
* **Overlays.** A border of a video that stays still while the picture changes (letterbox bars, a caption
  strip, a frame) is found and cropped, and the crop recorded; ``crop=(x, y, w, h)`` overrides it and
  keeps only that box of every frame (a step counter, a watermark).

Every member passes the checks of :mod:`driftloop.images` (file checks, decompression-bomb guard,
``max_pixels``), and every problem is an ``InputError`` naming the file and, where it applies, the position.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import numpy as np

from driftloop._fs import file_sha256
from driftloop.cadence import Copies, describe, find_copies, static_border
from driftloop.errors import InputError
from driftloop.images import DEFAULT_MAX_PIXELS, decode_frames

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "CopySequence",
    "FindCopies",
    "Member",
    "natural_key",
    "read_sequence",
]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".webm", ".mov", ".m4v", ".mkv", ".avi"})

Crop = tuple[int, int, int, int]


@dataclass(frozen=True)
class Member:
    """One copy: its frame (RGB uint8, after the crop), where it came from, and what to record about it."""

    frame: np.ndarray
    source: str
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CopySequence:
    """A sequence of copies, frame 0 first, with the files it was read from and how.

    ``files`` holds (path, sha256) of every file read, for provenance; ``settings`` how copies were found
    (kind, crop and whether it was found, every or hold/threshold/split copies, fps), for the run's
    configuration.
    """

    kind: str  # "images", "animation" or "video"
    members: tuple[Member, ...]
    files: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]
    settings: dict[str, Any]

    @property
    def frames(self) -> list[np.ndarray]:
        return [m.frame for m in self.members]


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key putting ``2.png`` before ``10.png``: digit runs compare as numbers, the rest caselessly."""
    parts = re.split(r"(\d+)", name.casefold())
    return (tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), name)


def read_sequence(
    sources: Sequence[str | Path],
    *,
    every: float | None = None,
    found: FindCopies | None = None,
    crop: Crop | None = None,
    order_file: str | Path | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> CopySequence:
    """Read the copies in ``sources``: one folder, several image files, one animation, or one video.

    Everything is decoded before this returns, so a caller that writes only afterwards writes nothing
    for a bad input. Raises ``InputError`` for fewer than two copies, an unreadable or corrupt member
    (named with its position), a video without detectable cuts, or a crop outside the frame.
    """
    found = found or FindCopies()
    _check_settings(every, found, crop)
    paths = [Path(p) for p in sources]
    if order_file is not None:
        return _from_images(_ordered(Path(order_file), paths), crop, max_pixels, f"order file {order_file}")
    if not paths:
        raise InputError("no sources given: pass a folder, image files, an animated GIF/WebP or a video")
    if len(paths) == 1 and paths[0].is_dir():
        return _from_images(_folder_members(paths[0]), crop, max_pixels, str(paths[0]))
    if len(paths) == 1 and paths[0].suffix.lower() in VIDEO_SUFFIXES:
        return _from_video(paths[0], every, found, crop, max_pixels)
    if len(paths) == 1:
        return _from_animation(paths[0], crop, max_pixels)
    folders = [p for p in paths if p.is_dir()]
    if folders:
        raise InputError(f"{folders[0]}: is a folder; pass one folder on its own, or image files")
    videos = [p for p in paths if p.suffix.lower() in VIDEO_SUFFIXES]
    if videos:
        raise InputError(f"{videos[0]}: is a video; pass a video on its own")
    return _from_images(sorted(paths, key=lambda p: natural_key(p.name)), crop, max_pixels, "the files given")


# ---------------------------------------------------------------------------------------------- images


def _folder_members(folder: Path) -> list[Path]:
    """The image files of a folder in natural order (hidden files and other suffixes left out)."""
    try:
        entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    except OSError as exc:
        raise InputError(f"{folder}: cannot list the folder ({exc.strerror or exc})") from exc
    images = [p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir()]
    if not images:
        raise InputError(
            f"{folder}: holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))}); "
            "pass the folder that holds the copies"
        )
    ordered = sorted(images, key=lambda p: natural_key(p.name))
    unnumbered = [p for p in ordered if not re.search(r"\d", p.stem)]
    if len(unnumbered) == 1 and len(ordered) > 2:  # original.png beside copy_1.png, copy_2.png, ...
        ordered.remove(unnumbered[0])
        ordered.insert(0, unnumbered[0])
    return ordered


def _ordered(order_file: Path, sources: list[Path]) -> list[Path]:
    """The files an order file lists, one per line (``#`` comments and blank lines skipped).

    Relative paths are relative to the one folder given as source, else to the order file's folder.
    """
    if len(sources) > 1 or (sources and not sources[0].is_dir()):
        raise InputError(f"{order_file}: with an order file, pass at most one folder (its files' base)")
    base = sources[0] if sources else order_file.parent
    try:
        lines = order_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{order_file}: cannot read the order file ({exc})") from exc
    entries = [line.strip() for line in lines]
    files = [base / e for e in entries if e and not e.startswith("#")]
    if not files:
        raise InputError(f"{order_file}: lists no files; write one image path per line")
    return files


def _from_images(paths: list[Path], crop: Crop | None, max_pixels: int, where: str) -> CopySequence:
    """Decode every listed image (each must be a still image); report every bad one, not just the first."""
    if len(paths) < 2:
        only = paths[0] if paths else where
        raise InputError(f"{only}: a chain needs at least two images (the original and one copy); found 1")
    members: list[Member] = []
    files: list[tuple[str, str]] = []
    notes: list[str] = []
    errors: list[str] = []
    for position, path in enumerate(paths):
        label = f"{path} (image {position + 1} of {len(paths)})"
        try:
            decoded = decode_frames(path, max_pixels=max_pixels)
        except InputError as exc:
            errors.append(f"{label}: {_without_path(str(exc), path)}")
            continue
        if len(decoded.frames) > 1:
            errors.append(
                f"{label}: is animated ({len(decoded.frames)} frames); import an animation on its own"
            )
            continue
        try:
            frame = _crop(decoded.frames[0], crop, label)
        except InputError as exc:
            errors.append(str(exc))
            continue
        notes.extend(f"{path}: {n}" for n in decoded.notes)
        files.append((str(path), decoded.source_sha256))
        members.append(Member(frame, str(path), {"file": str(path), "position": position}))
    if errors:
        message = errors[0]
        if len(errors) > 1:
            message += f"\n{len(errors) - 1} more bad member(s):\n" + "\n".join(f"  {e}" for e in errors[1:])
        raise InputError(message)
    settings = {"kind": "images", "crop": list(crop) if crop else None, "order": where}
    return CopySequence("images", tuple(members), tuple(files), tuple(notes), settings)


def _without_path(message: str, path: Path) -> str:
    prefix = f"{path}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def _from_animation(path: Path, crop: Crop | None, max_pixels: int) -> CopySequence:
    """The copies of an animated GIF/WebP/PNG, with their display times recorded.

    Usually every frame is a copy. An animation made from a video holds each copy over several frames,
    and an encoder merges identical successive copies into one longer frame; so the frames are laid on a
    timeline of the typical frame time (a frame shown twice as long counts twice) and the copies found
    by cuts and cadence as in a video (:mod:`driftloop.cadence`).
    """
    decoded = decode_frames(path, max_pixels=max_pixels)
    n = len(decoded.frames)
    if n < 2:
        raise InputError(
            f"{path}: is a single image; a chain needs at least two (pass a folder, several images, "
            "an animated GIF/WebP or a video)"
        )
    frames = [_crop(f, crop, f"{path} (frame {i + 1} of {n})") for i, f in enumerate(decoded.frames)]
    order, rule = _animation_copies(frames, decoded.durations_ms)
    members = []
    for k, i in enumerate(order):
        label = f"{path} (frame {i + 1} of {n})"
        info = {"file": str(path), "position": k, "frame": i, "duration_ms": decoded.durations_ms[i]}
        members.append(Member(frames[i], label, info))
    notes = tuple(f"{path}: {note}" for note in decoded.notes)
    if rule:
        notes += (f"{path}: {len(members)} copies in {n} frames ({rule})",)
    settings = {"kind": "animation", "crop": list(crop) if crop else None, "frames": n}
    return CopySequence("animation", tuple(members), ((str(path), decoded.source_sha256),), notes, settings)


def _animation_copies(frames: list[np.ndarray], durations_ms: Sequence[int]) -> tuple[list[int], str]:
    """Which frame shows each copy (frame indices, in order) and, when that is not simply every frame,
    what was found."""
    shown = [d for d in durations_ms if d > 0]
    base = float(np.median(shown)) if shown else 0.0
    repeats = [max(1, round(d / base)) if base > 0 else 1 for d in durations_ms]
    timeline = [i for i, r in enumerate(repeats) for _ in range(r)]
    diffs = [
        0.0 if a == b else float(np.mean(np.abs(frames[a].astype(np.int16) - frames[b].astype(np.int16))))
        for a, b in itertools.pairwise(timeline)
    ]
    found = find_copies(diffs)
    order = [timeline[p] for p in found.picks]
    if len(order) < 2 or order == list(range(len(frames))):
        return list(range(len(frames))), ""
    return order, describe(found, 1000.0 / base if base > 0 else 1.0)


# ----------------------------------------------------------------------------------------------- video


def _from_video(
    path: Path,
    every: float | None,
    found: FindCopies,
    crop: Crop | None,
    max_pixels: int,
) -> CopySequence:
    """The copies shown in a video: one per ``every`` seconds, or those the cuts and cadence find.

    Two passes over the video keep memory to two frames plus the copies: the first measures the
    difference signal (and which border stays still), the second keeps the picked frames.
    """
    sha = _file_sha256(path)
    fps, frames = _video_frames(path, max_pixels)
    if every is not None and every * fps < 1:
        raise InputError(f"{path}: --every {every:g} s is shorter than one frame at {fps:g} fps")
    diffs, border = _measure(path, frames, crop)
    n = len(diffs) + 1
    if crop is None and border is not None:
        crop = border
    if every is not None:
        spans = _windows(n, fps, every)
        copies = Copies(spans, tuple((s + e + 1) // 2 for s, e in spans), every * fps, 0, 0, 0.0)
        rule = f"one copy every {every:g} s"
    else:
        hold = None if found.hold is None else found.hold * fps
        if hold is not None and hold < 1:
            raise InputError(f"{path}: --hold {found.hold:g} s is shorter than one frame at {fps:g} fps")
        copies = find_copies(diffs, found.threshold, hold, found.copies)
        rule = describe(copies, fps, given_hold=found.hold is not None)
    if len(copies.spans) < 2:
        hint = (
            "is --every longer than the video?"
            if every is not None
            else "give the hold with --hold SECONDS or the number of copies with --copies N, or a lower "
            "--threshold"
        )
        raise InputError(f"{path}: no detectable cuts: found {len(copies.spans)} copy ({rule}); {hint}")
    picked = _pick(_video_frames(path, max_pixels)[1], copies.picks, crop, path)
    members = []
    for k, ((start, end), index) in enumerate(zip(copies.spans, copies.picks, strict=True)):
        info = {
            "file": str(path),
            "position": k,
            "video_frame": index,
            "time_s": round(index / fps, 4),
            "shown_frames": [start, end],
        }
        members.append(Member(picked[index], f"{path} (copy {k + 1}, video frame {index})", info))
    settings = {
        "kind": "video",
        "fps": fps,
        "crop": list(crop) if crop else None,
        "crop_found": crop is not None and crop == border,
        "every": every,
        "hold_s": None if copies.hold is None else round(copies.hold / fps, 4),
        "threshold": None if every is not None else round(copies.threshold, 4),
        "split_by_cadence": copies.split,
        "ignored_changes": copies.ignored,
        "copies_asked": found.copies,
    }
    notes = [f"{path}: {len(members)} copies found ({rule}) at {fps:g} fps"]
    if crop is not None and crop == border:
        notes.append(f"{path}: {_border_note(border, _frame_size(path))}")
    return CopySequence("video", tuple(members), ((str(path), sha),), tuple(notes), settings)


@dataclass(frozen=True)
class FindCopies:
    """How to find a video's copies: a fixed ``threshold`` (None: adaptive), the ``hold`` in seconds
    (None: from the cadence), or the number of ``copies`` (None: as found)."""

    threshold: float | None = None
    hold: float | None = None
    copies: int | None = None


def _windows(n: int, fps: float, every: float) -> tuple[tuple[int, int], ...]:
    """Fixed ``every``-second windows from the start; a window the video cuts short is dropped."""
    n_full = int(n / fps / every + 1e-6)
    return tuple((round(k * every * fps), round((k + 1) * every * fps) - 1) for k in range(n_full))


def _measure(
    path: Path, frames: Iterator[tuple[int, np.ndarray]], crop: Crop | None
) -> tuple[list[float], Crop | None]:
    """The difference signal between consecutive (cropped) frames, and the still border (None with a crop
    given, or when nothing is still)."""
    diffs: list[float] = []
    prev: np.ndarray | None = None
    activity: np.ndarray | None = None
    first: np.ndarray | None = None
    for index, raw in frames:
        frame = _crop(raw, crop, f"{path} (video frame {index})").astype(np.int16)
        first = frame if first is None else first
        if prev is not None:
            delta = np.abs(frame - prev).sum(axis=2, dtype=np.int32)
            diffs.append(float(delta.mean()) / 3)
            if crop is None:
                activity = delta.astype(np.float64) if activity is None else activity + delta
        prev = frame
    return diffs, (None if activity is None else static_border(activity, first))


def _pick(
    frames: Iterator[tuple[int, np.ndarray]], picks: Sequence[int], crop: Crop | None, path: Path
) -> dict[int, np.ndarray]:
    wanted = set(picks)
    kept = {}
    for index, frame in frames:
        if index in wanted:
            kept[index] = _crop(frame, crop, f"{path} (video frame {index})").copy()
    missing = wanted - kept.keys()
    if missing:
        raise InputError(f"{path}: video frame {min(missing)} could not be read again; re-export the video")
    return kept


def _frame_size(path: Path) -> tuple[int, int]:
    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    try:
        width, height = next(reader)["size"]
    finally:
        reader.close()
    return width, height


def _border_note(box: Crop, size: tuple[int, int]) -> str:
    x, y, w, h = box
    width, height = size
    sides = [f"{name} {px} px" for name, px in (("top", y), ("bottom", height - y - h), ("left", x),
             ("right", width - x - w)) if px]  # fmt: skip
    return (
        f"a still border ({', '.join(sides)}: letterbox, caption or frame) was cropped: --crop "
        f"{x},{y},{w},{h} (give --crop {0},{0},{width},{height} to keep it)"
    )


def _file_sha256(path: Path) -> str:
    if not path.is_file():
        raise InputError(f"{path}: file does not exist or is not a file; check the path")
    try:
        return file_sha256(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from exc


def _video_frames(path: Path, max_pixels: int) -> tuple[float, Iterator[tuple[int, np.ndarray]]]:
    """The video's frame rate and a stream of (index, RGB frame), decoded by imageio-ffmpeg's reader."""
    try:
        reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
        meta = next(reader)
    except (OSError, RuntimeError, StopIteration) as exc:
        raise InputError(
            f"{path}: cannot be read as a video ({_first_line(exc)}); re-export it as MP4"
        ) from exc
    width, height = meta.get("size") or (0, 0)
    fps = float(meta.get("fps") or 0)
    if width < 1 or height < 1 or fps <= 0:
        reader.close()
        raise InputError(f"{path}: the video reports no frame size or frame rate; re-export it as MP4")
    if width * height > max_pixels:
        reader.close()
        raise InputError(
            f"{path}: video frames are too large ({width}x{height} = {width * height} pixels, limit "
            f"{max_pixels}); scale the video down first, or raise the limit with --max-pixels"
        )

    def stream() -> Iterator[tuple[int, np.ndarray]]:
        index = -1
        try:
            for index, raw in enumerate(reader):
                yield index, np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)
        except (OSError, RuntimeError, ValueError) as exc:
            raise InputError(
                f"{path}: video is damaged at frame {index + 1} ({_first_line(exc)}); re-export it"
            ) from exc
        finally:
            reader.close()

    return fps, stream()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


# -------------------------------------------------------------------------------------------- settings


def _check_settings(every: float | None, found: FindCopies, crop: Crop | None) -> None:
    if every is not None and not every > 0:
        raise InputError(f"--every must be a positive number of seconds (got {every})")
    if found.threshold is not None and not found.threshold >= 0:
        raise InputError(f"--threshold must be 0 or more (a mean difference 0..255, got {found.threshold})")
    if found.hold is not None and not found.hold > 0:
        raise InputError(f"--hold must be a positive number of seconds (got {found.hold})")
    if found.copies is not None and found.copies < 2:
        raise InputError(f"--copies must be 2 or more (the original and one copy; got {found.copies})")
    if every is not None and (found.hold is not None or found.copies is not None):
        raise InputError("--every fixes the windows itself; give it without --hold or --copies")
    if crop is not None:
        if len(crop) != 4 or any(isinstance(v, bool) or not isinstance(v, int) for v in crop):
            raise InputError(f"--crop must be four whole numbers X,Y,W,H (got {crop})")
        x, y, w, h = crop
        if x < 0 or y < 0 or w < 1 or h < 1:
            raise InputError(f"--crop X,Y,W,H needs X, Y >= 0 and W, H >= 1 (got {x},{y},{w},{h})")


def _crop(frame: np.ndarray, crop: Crop | None, label: str) -> np.ndarray:
    """Keep the crop box of a frame; a box reaching outside the frame is an error naming the frame size."""
    if crop is None:
        return frame
    x, y, w, h = crop
    height, width = frame.shape[:2]
    if x + w > width or y + h > height:
        raise InputError(
            f"{label}: --crop {x},{y},{w},{h} reaches outside the {width}x{height} frame; "
            f"keep X+W <= {width} and Y+H <= {height}"
        )
    return np.ascontiguousarray(frame[y : y + h, x : x + w])
