"""Animated GIF, animated WebP and H.264 MP4 of a chain of frames, each frame labelled with its step.

The GIF is the shareable, plays-anywhere-inline artefact (so it is downscaled to keep it small); the MP4
keeps full resolution and near-lossless quality for close inspection of the drift; the animated WebP is
the published site's compact animation (an ``<img>`` that plays offline in every current browser, full
colour where a GIF has 256 per frame, a few kB a frame at thumbnail sizes).
"""

from __future__ import annotations

import io
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from PIL import Image

from driftloop._fs import atomic_write
from driftloop.errors import RenderError
from driftloop.render._frames import as_rgb, check_frames, check_timing, fit_size, resized
from driftloop.render.labels import draw_step_label

__all__ = ["hold_frame_count", "webp_animation", "write_gif", "write_mp4"]

# GIF delays are stored in centiseconds, and browsers replace delays below 2 cs with 10 cs, so the
# fastest reliable GIF is 50 fps.
_MIN_GIF_DELAY_CS = 2
# How much of ffmpeg's error output to quote in a RenderError.
_STDERR_TAIL_CHARS = 2000


def _gif_frame(frame: np.ndarray) -> Image.Image:
    """Quantise one frame to its own 256-colour palette (fast octree).

    A per-frame palette follows the colour drift along the chain (a global palette built from frame 0
    would band badly by frame 100). Fast octree rather than median cut: on 512 px frames it is ~20x
    faster (10 ms vs 0.2-0.5 s a frame, i.e. 1 s vs 30 s for 101 frames) for about the same error. No
    dithering: dither noise differs from frame to frame and makes the animation shimmer, which would
    read as drift that is not there.
    """
    return Image.fromarray(frame).quantize(
        colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
    )


def _check_side(max_side: int | None) -> None:
    if max_side is not None and max_side < 1:
        raise RenderError(f"max_side must be at least 1 pixel, got {max_side}")


def _labelled(
    frames: Sequence[tuple[int, np.ndarray]], max_side: int | None, label: bool, total: int | None
) -> Iterator[np.ndarray]:
    """The frames of a GIF or WebP: scaled down to the first frame's fitted size, then labelled (after
    scaling, so the label is sized for the animation rather than shrunk with the frame)."""
    first = as_rgb(frames[0][1])
    size = fit_size(first.shape[1], first.shape[0], max_side)
    for step, frame in frames:
        arr = resized(as_rgb(frame), size)
        yield draw_step_label(arr, step, total) if label else arr


def write_gif(
    frames: Sequence[tuple[int, np.ndarray]],
    path: Path,
    fps: float = 10.0,
    hold_last: float = 1.5,
    label: bool = True,
    total: int | None = None,
    max_side: int | None = 512,
) -> Path:
    """Write ``(step, frame)`` pairs, in order, as a GIF that loops forever, and return ``path``.

    Frames are scaled down (never up) so the longer side is at most ``max_side`` (``None``: keep the
    size), because a 101-frame GIF at 1024 px is tens of megabytes. The label is drawn *after*
    scaling so it is sized for the GIF, not shrunk with the frame. The last frame stays ``hold_last``
    seconds longer so a viewer sees where the chain ended before it loops. Delays are whole
    centiseconds (a GIF limit), at least 2 cs, so fps above 50 plays at 50.

    Pillow merges consecutive identical frames (adding their delays); with ``label=False`` a chain that
    stops changing can therefore have fewer GIF frames than inputs, with the same total duration.
    """
    check_timing(fps, hold_last)
    check_frames(frames)
    _check_side(max_side)
    images = [_gif_frame(arr) for arr in _labelled(frames, max_side, label, total)]
    delay_cs = max(_MIN_GIF_DELAY_CS, round(100 / fps))
    durations = [delay_cs * 10] * len(images)
    durations[-1] = (delay_cs + round(hold_last * 100)) * 10

    path = Path(path)
    with atomic_write(path) as tmp:
        images[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=durations,
            loop=0,
            optimize=False,
        )
    return path


def webp_animation(
    frames: Sequence[tuple[int, np.ndarray]],
    fps: float = 8.0,
    hold_last: float = 1.5,
    label: bool = True,
    total: int | None = None,
    max_side: int | None = 192,
    quality: int = 70,
) -> bytes:
    """``(step, frame)`` pairs as an animated WebP that loops forever (the bytes: a published site is built
    in memory), scaled down so the longer side is at most ``max_side``, labelled with each step, the last
    frame held ``hold_last`` seconds longer. Lossy at ``quality`` (0–100): at 192 px a frame costs a few
    kB where a lossless one costs tens."""
    check_timing(fps, hold_last)
    check_frames(frames)
    _check_side(max_side)
    images = [Image.fromarray(arr) for arr in _labelled(frames, max_side, label, total)]
    delay_ms = max(1, round(1000 / fps))
    durations = [delay_ms] * len(images)
    durations[-1] = delay_ms + round(hold_last * 1000)
    out = io.BytesIO()
    images[0].save(out, format="WEBP", save_all=True, append_images=images[1:], duration=durations, loop=0,
                   quality=quality, method=4)  # fmt: skip
    return out.getvalue()


def hold_frame_count(fps: float, hold_last: float) -> int:
    """How many extra copies of the last frame an MP4 needs to hold it ``hold_last`` seconds.

    A video has no per-frame delays, so the hold is made of repeated frames (H.264 codes them in a few
    bytes each).
    """
    check_timing(fps, hold_last)
    return round(hold_last * fps)


def _ffmpeg_exe() -> str:
    """The ffmpeg binary imageio-ffmpeg ships (or ``IMAGEIO_FFMPEG_EXE``); RenderError if there is none."""
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:
        raise RenderError(
            "cannot write MP4: no ffmpeg binary found. Reinstall imageio-ffmpeg for your platform "
            "(pip install --force-reinstall imageio-ffmpeg, which bundles ffmpeg) or point the "
            f"IMAGEIO_FFMPEG_EXE environment variable at an ffmpeg built with libx264. ({exc})"
        ) from exc


def _even_frames(
    frames: Sequence[tuple[int, np.ndarray]],
    size: tuple[int, int],
    label: bool,
    total: int | None,
    hold: int,
) -> Iterator[np.ndarray]:
    """Yield the video's frames: resized to ``size``, padded to even dimensions, labelled, then held.

    yuv420p stores colour at half resolution, so libx264 refuses odd sizes. Padding one row/column by
    edge replication keeps every source pixel (cropping would drop a line of the image and resizing
    would blur all of it).
    """
    last: np.ndarray | None = None
    for step, frame in frames:
        arr = resized(as_rgb(frame), size)
        pad_h, pad_w = arr.shape[0] % 2, arr.shape[1] % 2
        if pad_h or pad_w:
            arr = np.pad(arr, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        if label:
            arr = draw_step_label(arr, step, total)
        last = arr
        yield arr
    for _ in range(hold):
        assert last is not None
        yield last


def _encode(
    exe: str, out: Path, frames: Iterator[np.ndarray], size: tuple[int, int], fps: float, crf: int
) -> None:
    """Pipe raw RGB frames into ffmpeg/libx264 and raise RenderError, with ffmpeg's message, if it fails.

    ffmpeg is driven directly rather than through ``imageio_ffmpeg.write_frames`` because that helper
    neither checks ffmpeg's exit status nor captures its error output: a missing libx264 would leave a
    silently broken file. stderr goes to a temp file, not a pipe, so a chatty ffmpeg cannot deadlock us.
    """
    width, height = size
    rate = str(Fraction(fps).limit_denominator(1001))
    cmd = [
        exe,
        "-hide_banner",
        "-nostats",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{width}x{height}",
        "-framerate",
        rate,
        "-i",
        "pipe:0",
        "-an",
        "-c:v",
        "libx264",
        "-preset",
        "medium",
        "-crf",
        str(crf),
        # Convert RGB with the BT.709 matrix and tag the stream so: untagged streams are decoded as
        # BT.601 by some players and BT.709 by others, which shifts colours between them. (setparams,
        # not -color_primaries/-color_trc: with a filter graph ffmpeg 9 drops those output options.)
        "-vf",
        "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p,"
        "setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=tv",
        "-pix_fmt",
        "yuv420p",
        # moov atom at the front so browsers can start playing before the whole file has arrived.
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
        str(out),
    ]
    with tempfile.TemporaryFile() as errlog:
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errlog)
        except OSError as exc:
            raise RenderError(f"cannot write MP4: the ffmpeg binary {exe!r} cannot be run ({exc})") from exc
        assert proc.stdin is not None
        broken_pipe = False
        try:
            for arr in frames:
                proc.stdin.write(arr.tobytes())
            proc.stdin.close()
        except BrokenPipeError:
            broken_pipe = True  # ffmpeg died early; its exit status and stderr say why
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            if not proc.stdin.closed:
                try:
                    proc.stdin.close()
                except BrokenPipeError:
                    broken_pipe = True
        returncode = proc.wait()
        if returncode != 0 or broken_pipe:
            errlog.seek(0)
            detail = errlog.read().decode(errors="replace").strip()[-_STDERR_TAIL_CHARS:]
            hint = ""
            if "Unknown encoder" in detail and "libx264" in detail:
                hint = " This ffmpeg lacks libx264; set IMAGEIO_FFMPEG_EXE to an ffmpeg built with it."
            raise RenderError(f"ffmpeg failed to encode the MP4 (exit status {returncode}).{hint}\n{detail}")


def write_mp4(
    frames: Sequence[tuple[int, np.ndarray]],
    path: Path,
    fps: float = 10.0,
    hold_last: float = 1.5,
    label: bool = True,
    total: int | None = None,
    crf: int = 18,
    max_side: int | None = None,
) -> Path:
    """Write ``(step, frame)`` pairs as an H.264/yuv420p MP4 that plays everywhere, and return ``path``.

    Full resolution unless ``max_side`` (scaled down, never up, so the longer side fits), odd sizes
    padded by one replicated row/column, ``crf`` 18 (visually lossless; 0 is lossless, 51 worst), the
    last frame repeated for ``hold_last`` seconds (see ``hold_frame_count``), ``+faststart`` for
    streaming. Encoded by the ffmpeg that imageio-ffmpeg bundles; a RenderError explains what to do if
    there is none or it cannot encode H.264.
    """
    check_timing(fps, hold_last)
    check_frames(frames)
    if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 51:
        raise RenderError(f"crf must be an integer from 0 (lossless) to 51 (worst), got {crf!r}")
    _check_side(max_side)
    exe = _ffmpeg_exe()
    first = as_rgb(frames[0][1])
    size = fit_size(first.shape[1], first.shape[0], max_side)
    even_size = (size[0] + size[0] % 2, size[1] + size[1] % 2)
    hold = hold_frame_count(fps, hold_last)

    path = Path(path)
    with atomic_write(path) as tmp:
        _encode(exe, tmp, _even_frames(frames, size, label, total, hold), even_size, fps, crf)
    return path
