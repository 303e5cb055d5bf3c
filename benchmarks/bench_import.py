"""Copies found against true copies, and seconds per video, for the posted-chain test sequences.

    python benchmarks/bench_import.py

Each sequence is a 12-copy generation-loss chain (96 px: JPEG/WebP re-saves, as re-uploading does)
written outside driftloop (Pillow + the ffmpeg binary imageio-ffmpeg ships) at several holds and CRFs,
with a still letterbox and caption bar, with two identical successive copies, and the last copy held 1 s
longer; plus driftloop's own MP4 and GIF at the renderer's defaults (0.1 s per copy, a counter on every
frame, the last frame held 1.5 s) and at 4 fps. A copy counts as *placed* when the frame picked for it
lies inside that copy's true hold.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from driftloop.render import write_gif, write_mp4
from driftloop.sequences import read_sequence
from sequence_fixtures import POSTED_VIDEOS, generation_loss, posted_video


def main() -> None:
    chain = generation_loss(n=12, size=96)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, case in enumerate(POSTED_VIDEOS):
            path = posted_video(Path(tmp) / f"posted{i}.mp4", chain, case)
            hold = case[1]
            t0 = time.perf_counter()
            seq = read_sequence([path])
            seconds = time.perf_counter() - t0
            placed = sum(
                round(k * hold) <= m.info["video_frame"] < round((k + 1) * hold)
                for k, m in enumerate(seq.members)
            )
            rows.append(
                (case[0], len(chain), len(seq.members), placed, seq.notes[0].split("(", 1)[1], seconds)
            )
        for fps in (10.0, 4.0):
            frames = list(enumerate(chain))
            for kind, writer in (("MP4", write_mp4), ("GIF", write_gif)):
                path = writer(frames, Path(tmp) / f"own{fps:g}.{kind.lower()}", fps=fps, total=11)
                t0 = time.perf_counter()
                seq = read_sequence([path])
                seconds = time.perf_counter() - t0
                placed = (
                    sum(m.info.get("video_frame") == k for k, m in enumerate(seq.members))
                    if kind == "MP4"
                    else sum(m.info["position"] == k for k, m in enumerate(seq.members))
                )
                how = seq.notes[0].split("(", 1)[1] if kind == "MP4" else "every GIF frame a copy)"
                rows.append((f"driftloop's own {kind}, {1 / fps:g} s per copy", 12, len(seq.members), placed,
                             how, seconds))  # fmt: skip
    print(f"{'sequence':<66} {'true':>4} {'found':>5} {'placed':>6} {'s':>5}  what was said")
    for name, true, found, placed, how, seconds in rows:
        print(f"{name:<66} {true:>4} {found:>5} {placed:>6} {seconds:>5.2f}  ({how}")


if __name__ == "__main__":
    main()
