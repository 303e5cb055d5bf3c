"""Copy sequences made by other tools, read into frames: a folder of images, an animation, a video.

Most chains in the wild were made by hand in a chat app and posted as a folder of numbered images, a GIF
or a video. To measure them like driftloop's own runs, each copy must become one RGB ``uint8`` frame, in
order, with its pixels exactly as saved (no resize here: frames of a different size are brought to frame
0's size by the importer, the way a hosted model's answer is). What this module decides:

* **Order.** Folders and lists of files are sorted naturally (``2.png`` before ``10.png``), because a
  shell glob sorts ``10.png`` before ``2.png``; an order file (one path per line) overrides it.
* **Which video frames are copies.** A video shows each copy for a while. With ``every=SECONDS`` the k-th
  copy is the frame in the middle of the k-th window. Otherwise copies are found by a cut detector: the
  mean absolute difference between consecutive frames (0..255 per channel) at or below ``threshold``
  joins a frame to the still stretch before it; a still stretch lasting at least ``min_duration`` seconds
  (and two frames) is one copy, represented by its middle frame; shorter stretches (cross-fades, motion)
  are dropped. Codec noise inside a still stretch of an H.264 video is far below the default threshold.
* **Overlays.** ``crop=(x, y, w, h)`` keeps only that box of every frame (a step counter, a watermark).

Every member passes the checks of :mod:`driftloop.images` (file checks, decompression-bomb guard,
``max_pixels``), and every problem is an ``InputError`` naming the file and, where it applies, the position.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import numpy as np

from driftloop._fs import file_sha256
from driftloop.errors import InputError
from driftloop.images import DEFAULT_MAX_PIXELS, decode_frames

__all__ = [
    "DEFAULT_MIN_DURATION",
    "DEFAULT_THRESHOLD",
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "CopySequence",
    "Member",
    "find_copies",
    "natural_key",
    "read_sequence",
]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".webm", ".mov", ".m4v", ".mkv", ".avi"})

#: Mean |Δ| (0..255) between consecutive video frames at or below which they show the same copy. H.264 at
#: ordinary quality stays below ~0.5 inside a still stretch; consecutive copies of a chain differ by more.
DEFAULT_THRESHOLD = 1.0
#: Seconds a still stretch must last to count as a copy (shorter ones are fades or motion).
DEFAULT_MIN_DURATION = 0.2

_KEEP_PER_STRETCH = 64  # frames buffered per still stretch to pick its middle (thinned beyond that)

Crop = tuple[int, int, int, int]
Picked = tuple[int, int, int, np.ndarray]  # (chosen video frame, first and last frame shown, the frame)


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
    (kind, crop, every or threshold/min_duration, fps), for the run's configuration.
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
    threshold: float = DEFAULT_THRESHOLD,
    min_duration: float = DEFAULT_MIN_DURATION,
    crop: Crop | None = None,
    order_file: str | Path | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> CopySequence:
    """Read the copies in ``sources``: one folder, several image files, one animation, or one video.

    Everything is decoded before this returns, so a caller that writes only afterwards writes nothing
    for a bad input. Raises ``InputError`` for fewer than two copies, an unreadable or corrupt member
    (named with its position), a video without detectable cuts, or a crop outside the frame.
    """
    _check_settings(every, threshold, min_duration, crop)
    paths = [Path(p) for p in sources]
    if order_file is not None:
        return _from_images(_ordered(Path(order_file), paths), crop, max_pixels, f"order file {order_file}")
    if not paths:
        raise InputError("no sources given: pass a folder, image files, an animated GIF/WebP or a video")
    if len(paths) == 1 and paths[0].is_dir():
        return _from_images(_folder_members(paths[0]), crop, max_pixels, str(paths[0]))
    if len(paths) == 1 and paths[0].suffix.lower() in VIDEO_SUFFIXES:
        return _from_video(paths[0], every, threshold, min_duration, crop, max_pixels)
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
    return sorted(images, key=lambda p: natural_key(p.name))


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
    """Every frame of an animated GIF/WebP/PNG is a copy, with its display time recorded."""
    decoded = decode_frames(path, max_pixels=max_pixels)
    n = len(decoded.frames)
    if n < 2:
        raise InputError(
            f"{path}: is a single image; a chain needs at least two (pass a folder, several images, "
            "an animated GIF/WebP or a video)"
        )
    members = []
    for i, (frame, duration) in enumerate(zip(decoded.frames, decoded.durations_ms, strict=True)):
        label = f"{path} (frame {i + 1} of {n})"
        info = {"file": str(path), "position": i, "duration_ms": duration}
        members.append(Member(_crop(frame, crop, label), label, info))
    notes = tuple(f"{path}: {note}" for note in decoded.notes)
    settings = {"kind": "animation", "crop": list(crop) if crop else None}
    return CopySequence("animation", tuple(members), ((str(path), decoded.source_sha256),), notes, settings)


# ----------------------------------------------------------------------------------------------- video


def _from_video(
    path: Path, every: float | None, threshold: float, min_duration: float, crop: Crop | None, max_pixels: int
) -> CopySequence:
    """The copies shown in a video: one per ``every`` seconds, or one per still stretch between cuts."""
    sha = _file_sha256(path)
    fps, frames = _video_frames(path, max_pixels)
    cropped = ((i, _crop(f, crop, f"{path} (video frame {i})")) for i, f in frames)
    if every is not None and every * fps < 1:
        raise InputError(f"{path}: --every {every:g} s is shorter than one frame at {fps:g} fps")
    if every is not None:
        picked = _every(cropped, fps, every)
        rule = f"one copy every {every:g} s"
    else:
        picked = find_copies(cropped, fps, threshold, min_duration)
        rule = f"cuts between still stretches (threshold {threshold:g}, min duration {min_duration:g} s)"
    if len(picked) < 2:
        hint = (
            "is --every longer than the video?"
            if every is not None
            else "try --every SECONDS if each copy is shown for a fixed time, or a lower --threshold / "
            "--min-duration"
        )
        raise InputError(f"{path}: no detectable cuts: found {len(picked)} copy with {rule}; {hint}")
    members = []
    for k, (index, start, end, frame) in enumerate(picked):
        info = {
            "file": str(path),
            "position": k,
            "video_frame": index,
            "time_s": round(index / fps, 4),
            "shown_frames": [start, end],
        }
        members.append(Member(frame, f"{path} (copy {k + 1}, video frame {index})", info))
    settings = {
        "kind": "video",
        "fps": fps,
        "crop": list(crop) if crop else None,
        "every": every,
        "threshold": None if every is not None else threshold,
        "min_duration": None if every is not None else min_duration,
    }
    notes = (f"{path}: {len(members)} copies found ({rule}) at {fps:g} fps",)
    return CopySequence("video", tuple(members), ((str(path), sha),), notes, settings)


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


def _every(frames: Iterator[tuple[int, np.ndarray]], fps: float, every: float) -> list[Picked]:
    """The frame in the middle of each ``every``-second window; a window the video cuts short is dropped."""
    picked: list[Picked] = []
    last = -1
    for index, frame in frames:
        last = index
        k = len(picked)
        if index == int(((k + 0.5) * every) * fps):
            start = round(k * every * fps)
            picked.append((index, start, round((k + 1) * every * fps) - 1, frame.copy()))
    n_full = int((last + 1) / fps / every + 1e-6)
    return [(i, s, min(e, last), f) for i, s, e, f in picked[:n_full]]


def find_copies(
    frames: Iterator[tuple[int, np.ndarray]] | Sequence[tuple[int, np.ndarray]],
    fps: float,
    threshold: float = DEFAULT_THRESHOLD,
    min_duration: float = DEFAULT_MIN_DURATION,
) -> list[Picked]:
    """The cut detector: one copy per still stretch lasting ``min_duration`` seconds and two frames or more.

    Consecutive frames whose mean absolute difference (0..255, every channel) is at most ``threshold``
    belong to the same still stretch; a larger difference is a cut. A stretch's copy is its middle frame
    (to bound memory, a long stretch keeps only every k-th frame, k doubling as it grows, so the pick may
    be up to 1/64 of the stretch's length from its exact middle).
    """
    picked: list[Picked] = []
    stretch: list[tuple[int, np.ndarray]] = []
    start, stride, prev = 0, 1, None
    need = max(2, int(np.ceil(min_duration * fps - 1e-9)))

    def close(end: int) -> None:
        if stretch and end - start + 1 >= need:
            middle = (start + end) / 2
            index, frame = min(stretch, key=lambda item: (abs(item[0] - middle), item[0]))
            picked.append((index, start, end, frame))

    last = -1
    for index, frame in frames:
        if prev is not None and _mean_abs_diff(prev, frame) <= threshold:
            if (index - start) % stride == 0:
                stretch.append((index, frame.copy()))
            if len(stretch) > _KEEP_PER_STRETCH:  # keep every (2 * stride)-th frame from the start
                stride *= 2
                stretch = [item for item in stretch if (item[0] - start) % stride == 0]
        else:
            close(last)
            start, stride, stretch = index, 1, [(index, frame.copy())]
        prev, last = frame, index
    close(last)
    return picked


def _mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))))


# -------------------------------------------------------------------------------------------- settings


def _check_settings(every: float | None, threshold: float, min_duration: float, crop: Crop | None) -> None:
    if every is not None and not every > 0:
        raise InputError(f"--every must be a positive number of seconds (got {every})")
    if not threshold >= 0:
        raise InputError(f"--threshold must be 0 or more (a mean difference 0..255, got {threshold})")
    if not min_duration >= 0:
        raise InputError(f"--min-duration must be 0 or more seconds (got {min_duration})")
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
