"""A fake run for the report tests: frames, a GIF, a contact sheet and a plausible metrics table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

# ------------------------------------------------------------------------------------------- fake run


def metrics_df(n_chains: int = 3, n_steps: int = 12) -> pd.DataFrame:
    """A plausible metrics table: fidelity decays, b* drifts down, PSNR ∞ at step 0, one NaN."""
    rows = []
    for c in range(n_chains):
        for s in range(n_steps + 1):
            wiggle = 0.05 * np.sin(1.3 * s + c)
            rows.append(
                {
                    "chain": c,
                    "step": s,
                    "ssim_to_origin": 1 / (1 + s / (4 + c)),
                    "psnr_to_origin": np.inf if s == 0 else 38 - 6 * np.log1p(s) + wiggle,
                    "psnr_to_prev": np.inf if s == 0 else 33.0 + wiggle,
                    "mae_to_prev": 0.0 if s == 0 else 1.2,
                    "lab_l_mean": 55 + 0.3 * s + c,
                    "lab_a_mean": 4 + 0.05 * s * (c - 1) + wiggle,
                    "lab_b_mean": 20 - 0.24 * s + wiggle + c,
                    "white_cast": 8 + 0.5 * s,
                    "cct_kelvin": 6000 + 15 * s,
                }
            )
    df = pd.DataFrame(rows)
    df.loc[5, "lab_a_mean"] = np.nan
    return df


def frame(step: int, size: int = 48) -> np.ndarray:
    """A gradient that drifts bluer and brighter with the step."""
    y, x = np.mgrid[0:size, 0:size]
    r = np.clip(x * 5 + step * 4, 0, 255)
    g = np.clip(y * 5 + step * 3, 0, 255)
    b = np.clip(120 + step * 8, 0, 255) + 0 * x
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 3-chain, 12-step run: frames, GIF, contact sheet and metrics table (made once)."""
    folder = tmp_path_factory.mktemp("fake") / "run"
    (folder / "frames").mkdir(parents=True)
    n_steps = 12
    paths = []
    for s in range(n_steps + 1):
        p = folder / "frames" / f"c0_{s:04d}.png"
        Image.fromarray(frame(s)).save(p, "PNG")
        paths.append(p)
    images = [Image.fromarray(frame(s)) for s in range(n_steps + 1)]
    gif = folder / "chain0.gif"
    images[0].save(gif, "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    sheet = Image.new("RGB", (5 * 50, 3 * 50), "white")
    for row in range(3):
        for col, s in enumerate((0, 1, 2, 5, 12)):
            sheet.paste(Image.fromarray(frame(s + row)), (col * 50 + 1, row * 50 + 1))
    sheet_path = folder / "contact_sheet.png"
    sheet.save(sheet_path, "PNG")
    df = metrics_df(3, n_steps)
    return {"folder": folder, "frames": paths, "gif": gif, "sheet": sheet_path, "df": df}
