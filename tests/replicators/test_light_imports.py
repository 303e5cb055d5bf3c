"""The registry knows every backend without importing its heavy libraries: listing models and a JPEG/WebP
run never import PyTorch (nor diffusers, transformers, openai, google-genai); building a TAE does."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "diffusers", "transformers", "openai", "google.genai")


def imported_after(code: str) -> list[str]:
    """The heavy libraries a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport sys\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return [m for m in done.stdout.strip().split(",") if m]


def test_registry_listing_and_a_jpeg_copy_import_no_heavy_library() -> None:
    code = (
        "import numpy as np\n"
        "from driftloop.replicators import registry\n"
        "names = {row.name for row in registry.listing()}\n"
        "assert {'taef2', 'jpeg', 'webp', 'sd-turbo', 'openai', 'gemini'} <= names, names\n"
        "rep = registry.build('jpeg:quality=75')\n"
        "frame = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)\n"
        "(copy,) = rep.replicate([frame], [0])\n"
        "assert copy.shape == frame.shape and not np.array_equal(copy, frame)\n"
        "rep.describe()\n"
    )
    assert imported_after(code) == []


def test_building_a_tae_imports_torch(models_dir: object) -> None:
    """The check above can fail: a TAE replicator brings PyTorch in when it is built, not before."""
    code = (
        "from driftloop.replicators import registry\n"
        "backend, config = registry.parse('taef2')\n"
        "import sys; assert 'torch' not in sys.modules\n"
        "backend.build(config)\n"
    )
    assert "torch" in imported_after(code)
