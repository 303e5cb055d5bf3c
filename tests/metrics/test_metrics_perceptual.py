"""Perceptual metrics through their real loading paths, on tiny randomly initialised models saved to disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from driftloop.metrics import PERCEPTUAL_COLUMNS
from driftloop.metrics.lpips_net import CHANNELS
from driftloop.metrics.perceptual import FAMILIES, PerceptualScorer

transformers = pytest.importorskip("transformers")

# torchvision's alexnet().features: (index, in, out, kernel, stride, padding) of each conv
ALEX_CONVS = [(0, 3, 64, 11, 4, 2), (3, 64, 192, 5, 1, 2), (6, 192, 384, 3, 1, 1), (8, 384, 256, 3, 1, 1)]
ALEX_CONVS.append((10, 256, 256, 3, 1, 1))
ABSENT = "driftloop-tests/absent-model"


def save_lpips(folder: Path, seed: int = 0, backbone_name: str = "alexnet.pth") -> None:
    """Random weights in the real files' formats: a torchvision AlexNet state dict and lpips' alex.pth."""
    g = torch.Generator().manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    net = {}
    for idx, cin, cout, k, _, _ in ALEX_CONVS:
        net[f"features.{idx}.weight"] = (
            torch.randn(cout, cin, k, k, generator=g) * (2.0 / (cin * k * k)) ** 0.5
        )
        net[f"features.{idx}.bias"] = torch.randn(cout, generator=g) * 0.01
    net["classifier.1.weight"] = torch.zeros(4, 9216)  # the real file has a classifier; it is ignored
    torch.save(net, folder / backbone_name)
    lins = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) for i, c in enumerate(CHANNELS)}
    torch.save(lins, folder / "alex.pth")


def save_clip(folder: Path) -> None:
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    torch.manual_seed(0)
    config = transformers.CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
        projection_dim=16,
    )
    transformers.CLIPVisionModelWithProjection(config).save_pretrained(folder)
    CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        folder
    )


def save_dino(folder: Path) -> None:
    from transformers.models.bit.image_processing_pil_bit import BitImageProcessorPil

    torch.manual_seed(1)
    config = transformers.Dinov2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2, image_size=32, patch_size=8
    )
    transformers.Dinov2Model(config).save_pretrained(folder)
    BitImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        folder
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("perceptual-models")
    save_lpips(root / "lpips")
    save_clip(root / "clip")
    save_dino(root / "dinov2")
    return root


@pytest.fixture
def scorer(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> PerceptualScorer:
    monkeypatch.setenv("DRIFTLOOP_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return PerceptualScorer()


def frames() -> tuple[np.ndarray, np.ndarray]:
    from skimage import data

    a = np.ascontiguousarray(data.astronaut()[::8, ::8])  # 64×64
    b = np.ascontiguousarray(data.chelsea()[:256:4, :256:4])
    return a, b


def test_all_families_load_from_the_model_dir(scorer):
    assert scorer.available() == list(FAMILIES)
    assert scorer.skipped() == {}
    assert scorer.columns() == PERCEPTUAL_COLUMNS


def test_scores_identity_difference_symmetry(scorer):
    a, b = frames()
    ea, eb = scorer.embed(a), scorer.embed(b)
    self_row = scorer.scores(ea, ea)
    assert set(self_row) == {k for k in PERCEPTUAL_COLUMNS if k.endswith("_to_origin")}
    assert self_row["lpips_to_origin"] == 0.0
    assert self_row["clip_cosine_to_origin"] == 1.0
    assert self_row["dino_cosine_to_origin"] == 1.0

    again = scorer.embed(a.copy())  # same pixels, separately embedded
    same = scorer.scores(again, ea)
    assert same["lpips_to_origin"] == pytest.approx(0.0, abs=1e-6)
    assert same["clip_cosine_to_origin"] == pytest.approx(1.0, abs=1e-5)
    assert same["dino_cosine_to_origin"] == pytest.approx(1.0, abs=1e-5)

    ab = scorer.scores(ea, eb, prev=eb)
    ba = scorer.scores(eb, ea, prev=ea)
    assert set(ab) == set(PERCEPTUAL_COLUMNS)
    assert ab["lpips_to_origin"] > 0
    assert ab["clip_cosine_to_origin"] < 1.0
    assert ab["dino_cosine_to_origin"] < 1.0
    for key, value in ab.items():
        assert ba[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
        assert np.isfinite(value)


def reference_lpips(folder: Path, x: np.ndarray, y: np.ndarray) -> float:
    """LPIPS written out from the paper / reference code with plain functional ops and the saved files."""
    net = torch.load(folder / "alexnet.pth", weights_only=True)
    lins = torch.load(folder / "alex.pth", weights_only=True)
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)

    def taps(img: np.ndarray) -> list[torch.Tensor]:
        h = torch.from_numpy(img).permute(2, 0, 1)[None].double() / 255 * 2 - 1
        h = ((h - shift) / scale).float()
        out = []
        for n, (idx, _, _, _, stride, pad) in enumerate(ALEX_CONVS):
            if n in (1, 2):
                h = F.max_pool2d(h, 3, 2)
            h = F.relu(F.conv2d(h, net[f"features.{idx}.weight"], net[f"features.{idx}.bias"], stride, pad))
            out.append(h / (h.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return out

    total = 0.0
    for i, (fa, fb) in enumerate(zip(taps(x), taps(y), strict=True)):
        total += float(F.conv2d((fa - fb) ** 2, lins[f"lin{i}.model.1.weight"]).mean())
    return total


def test_lpips_matches_a_direct_implementation(scorer, model_dir):
    a, b = frames()
    a, b = np.kron(a, np.ones((2, 2, 1), np.uint8)), np.kron(b, np.ones((2, 2, 1), np.uint8))  # 128²
    got = scorer.scores(scorer.embed(a), scorer.embed(b))["lpips_to_origin"]
    assert got == pytest.approx(reference_lpips(model_dir / "lpips", a, b), rel=1e-4)


def test_small_frames_are_scored(scorer):
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(2))
    row = scorer.scores(scorer.embed(a), scorer.embed(b))
    assert set(row) == {k for k in PERCEPTUAL_COLUMNS if k.endswith("_to_origin")}
    assert row["lpips_to_origin"] > 0


def test_missing_models_are_skipped_with_reasons(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIFTLOOP_MODEL_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    scorer = PerceptualScorer(clip_repo=ABSENT, dino_repo=ABSENT)
    assert scorer.available() == []
    reasons = scorer.skipped()
    assert set(reasons) == set(FAMILIES)
    assert "alex.pth" in reasons["lpips"] and "alexnet.pth" in reasons["lpips"]
    assert str(tmp_path / "empty" / "lpips") in reasons["lpips"]
    assert ABSENT in reasons["clip"] and "clip" in reasons["clip"]
    assert str(tmp_path / "empty" / "dinov2") in reasons["dino"]
    a, _ = frames()
    emb = scorer.embed(a)
    assert scorer.scores(emb, emb, emb) == {}
    assert scorer.columns() == {}


def test_broken_or_partial_files_are_skipped(tmp_path, monkeypatch):
    root = tmp_path / "models"
    (root / "lpips").mkdir(parents=True)
    (root / "lpips" / "alex.pth").write_bytes(b"not a checkpoint")
    (root / "lpips" / "alexnet.pth").write_bytes(b"nor this")
    (root / "clip").mkdir()
    (root / "clip" / "config.json").write_text("{}")  # a config without weights
    monkeypatch.setenv("DRIFTLOOP_MODEL_DIR", str(root))
    scorer = PerceptualScorer(["lpips", "clip"])
    assert scorer.available() == []
    assert "could not be loaded" in scorer.skipped()["lpips"]
    assert str(root / "clip") in scorer.skipped()["clip"]
    assert "dino" not in scorer.skipped()  # not asked for


def test_explicit_folders_and_zoo_file_name(tmp_path, model_dir, monkeypatch):
    monkeypatch.setenv("DRIFTLOOP_MODEL_DIR", str(tmp_path / "nothing-here"))
    save_lpips(tmp_path / "mine", backbone_name="alexnet-owt-7be5be79.pth")
    scorer = PerceptualScorer(lpips=tmp_path / "mine", clip=model_dir / "clip", dino=tmp_path / "missing")
    assert scorer.available() == ["lpips", "clip"]
    assert "does not" in scorer.skipped()["dino"] or "no config.json" in scorer.skipped()["dino"]
    assert "missing" in scorer.skipped()["dino"]


def test_unknown_family_is_an_error():
    with pytest.raises(ValueError, match="unknown perceptual"):
        PerceptualScorer(["lpips", "sift"])
