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
