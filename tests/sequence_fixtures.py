"""Copy sequences made the way other tools make them, written without driftloop.

A generation-loss chain: each copy is the previous one shrunk by 10 %, saved as JPEG or WebP (alternating,
quality 50) by Pillow, read back and enlarged again, as re-uploading to social sites does. Copies keep
changing (mean |Δ| of about 3 per channel between neighbours), like a chat model's copies do. The chain
is then written as a folder of numbered PNGs, a GIF, an animated lossless WebP, and an H.264 MP4 encoded
by the ffmpeg binary that imageio-ffmpeg ships, each copy held for a fixed time.
"""

from __future__ import annotations

import io
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from PIL import Image, ImageDraw
from skimage import data

SIZE = 256
N_COPIES = 12  # frame 0 and 11 copies


def generation_loss(n: int = N_COPIES, size: int = SIZE) -> list[np.ndarray]:
    """Frame 0 (the astronaut at ``size``) and ``n - 1`` lossy re-saves, each from the one before."""
    frames = [np.asarray(Image.fromarray(data.astronaut()).resize((size, size), Image.Resampling.LANCZOS))]
    small = round(size * 0.9)
    for k in range(1, n):
        shrunk = Image.fromarray(frames[-1]).resize((small, small), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        shrunk.save(buf, "JPEG" if k % 2 else "WEBP", quality=50)
        buf.seek(0)
        copy = Image.open(buf).convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
        frames.append(np.asarray(copy).copy())
    return frames


def write_pngs(folder: Path, frames: Sequence[np.ndarray], name: Callable[[int], str] = "{}.png".format):
    """Frames as ``1.png`` … ``N.png`` (numbered from 1, as people number them)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, frame in enumerate(frames):
        path = folder / name(i + 1)
        Image.fromarray(frame).save(path)
        paths.append(path)
    return paths


def palette_frames(frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each frame reduced to its own 256-colour palette: exactly the pixels a GIF can hold."""
    return [np.asarray(Image.fromarray(f).quantize(256).convert("RGB")).copy() for f in frames]


def write_gif(path: Path, frames: Sequence[np.ndarray], duration_ms: int = 500) -> Path:
    images = [Image.fromarray(f).quantize(256) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return path


def write_webp(path: Path, frames: Sequence[np.ndarray], duration_ms: int = 400) -> Path:
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration_ms, lossless=True)
    return path


def held(frames: Sequence[np.ndarray], hold: int) -> list[np.ndarray]:
    """Each copy repeated ``hold`` times: the video frames of a video showing each copy for a while."""
    return [f for f in frames for _ in range(hold)]


def with_timer(frames: Sequence[np.ndarray], band: int = 16) -> list[np.ndarray]:
    """A ``band``-pixel strip above every frame with a running frame counter (changes every video frame)."""
    out = []
    for i, frame in enumerate(frames):
        canvas = Image.new("RGB", (frame.shape[1], frame.shape[0] + band), (0, 0, 0) if i % 2 else (255,) * 3)
        canvas.paste(Image.fromarray(frame), (0, band))
        ImageDraw.Draw(canvas).text((4, 2), f"{i:05d}", fill=(255, 0, 0))
        out.append(np.asarray(canvas).copy())
    return out


def write_mp4(path: Path, video_frames: Sequence[np.ndarray], fps: int = 10, crf: int = 18) -> Path:
    """An H.264 (yuv420p) MP4 of ``video_frames`` at ``fps``, encoded by the ffmpeg binary itself."""
    with tempfile.TemporaryDirectory() as tmp:
        for i, frame in enumerate(video_frames):
            Image.fromarray(frame).save(Path(tmp) / f"{i:05d}.png")
        subprocess.run(
            [
                imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-framerate", str(fps),
                "-i", str(Path(tmp) / "%05d.png"), "-c:v", "libx264", "-crf", str(crf),
                "-pix_fmt", "yuv420p", str(path),
            ],
            check=True,
        )  # fmt: skip
    return path


def letterboxed(frames: Sequence[np.ndarray], bar: int = 12, caption: int = 16) -> list[np.ndarray]:
    """Each frame between black letterbox bars (``bar`` px above and below, 6 px left and right) with a
    ``caption``-pixel strip of fixed white text under it: the still border of a re-posted video."""
    out = []
    for frame in frames:
        h, w = frame.shape[:2]
        canvas = Image.new("RGB", (w + 12, h + 2 * bar + caption), (0, 0, 0))
        canvas.paste(Image.fromarray(frame), (6, bar))
        draw = ImageDraw.Draw(canvas)
        draw.rectangle((0, bar + h, w + 11, bar + h + caption - 1), fill=(250, 250, 250))
        draw.text((4, bar + h + 2), "copy of a copy", fill=(0, 0, 0))
        out.append(np.asarray(canvas).copy())
    return out


def similar_pair(frames: Sequence[np.ndarray], at: int) -> list[np.ndarray]:
    """The chain with copy ``at`` replaced by copy ``at - 1``: two identical successive copies (a model that
    returned the same picture), which show no cut at all; only the cadence can tell them apart."""
    out = list(frames)
    out[at] = frames[at - 1]
    return out


#: Posted-video cases: (name, hold in frames, fps, crf, letterbox + caption, two identical copies).
POSTED_VIDEOS = [
    ("0.6 s at 30 fps, crf 18", 18, 30, 18, False, False),
    ("0.6 s at 30 fps, crf 28, letterbox + caption", 18, 30, 28, True, False),
    ("0.5 s at 25 fps, crf 35", 12, 25, 35, False, False),
    ("0.25 s at 30 fps (7.5 frames), crf 23", 7.5, 30, 23, False, False),
    ("1 s at 10 fps, crf 23, two identical copies", 10, 10, 23, False, True),
    ("0.6 s at 30 fps, crf 23, letterbox + caption, two identical copies", 18, 30, 23, True, True),
]


def held_fractional(frames: Sequence[np.ndarray], hold: float) -> list[np.ndarray]:
    """Copy k shown from video frame round(k * hold): holds of 7 and 8 frames for 7.5, as an editor does."""
    ends = [round((k + 1) * hold) for k in range(len(frames))]
    starts = [0, *ends[:-1]]
    return [f for f, s, e in zip(frames, starts, ends, strict=True) for _ in range(e - s)]


def posted_video(path: Path, chain: Sequence[np.ndarray], case: tuple) -> Path:
    """One of ``POSTED_VIDEOS`` written with the ffmpeg binary, the last copy held 1 s longer."""
    _name, hold, fps, crf, boxed, pair = case
    frames = similar_pair(chain, len(chain) // 2) if pair else list(chain)
    if boxed:
        frames = letterboxed(frames)
    video = held_fractional(frames, hold) + [frames[-1]] * fps
    return write_mp4(path, video, fps=fps, crf=crf)
