"""Write the study's source pictures: scikit-image's colour samples and matplotlib's sample portrait.

    python examples/study/make_images.py          # → examples/study/images/*.png (not committed)
    driftloop sweep examples/study/study.toml     # then: driftloop bias study

All of them ship inside the two packages (no download). The portrait (Grace Hopper, public domain) and the
astronaut (Eileen Collins, NASA, public domain) give the face measures something to measure.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.cbook
import numpy as np
from PIL import Image
from skimage import data

OUT = Path(__file__).resolve().parent / "images"

SAMPLES = {
    "astronaut": data.astronaut,
    "chelsea": data.chelsea,
    "coffee": data.coffee,
    "rocket": data.rocket,
    "immunohistochemistry": data.immunohistochemistry,
    "hubble_deep_field": data.hubble_deep_field,
    "colorwheel": data.colorwheel,
    "retina": data.retina,
    "motorcycle": lambda: data.stereo_motorcycle()[0],
}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, load in SAMPLES.items():
        Image.fromarray(np.asarray(load())[..., :3]).save(OUT / f"{name}.png")
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
        Image.open(fh).convert("RGB").save(OUT / "grace_hopper.png")
    print(f"wrote {len(SAMPLES) + 1} images to {OUT}")


if __name__ == "__main__":
    main()
