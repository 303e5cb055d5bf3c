"""Validation of the bias card and attractor statistics.

Two kinds of evidence: real tiny chains run through ``driftloop.run`` with test replicators whose effect is
known (a planted b* shift, the identity, a pull towards a target image), and synthetic tables where the
truth is known exactly, to check calibration (interval coverage, the size of the permutation test) rather
than single outcomes.
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats
from skimage import color

import driftloop
from driftloop.analysis.attractors import find_attractors
from driftloop.analysis.bias import bias_card, chain_statistics
from driftloop.analysis.chains import summarize_run
from driftloop.analysis.intervals import image_differences, mean_ci, paired_diff_ci, sign_flip_test
from driftloop.analysis.stats import stratified_permutation_test
from driftloop.fmt import MINUS
from driftloop.metrics import FrameFeatures, frame_metrics
from driftloop.report.bias_card import bias_card_html, write_bias_card

SIZE = 32
STEPS = 12
PLANTED_DB = -0.5  # b* units per step


def _strict_loads(text: str) -> object:
    def bad(token: str) -> object:
        raise ValueError(f"non-strict JSON constant {token}")

    return json.loads(text, parse_constant=bad)


def _make_images(folder: Path, n: int) -> list[Path]:
    """Mid-tone, low-chroma pictures with some texture, so a few b* units of shift stay in gamut."""
    rng = np.random.default_rng(123)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    paths = []
    for i in range(n):
        lightness = 50 + 10 * np.sin(2 * np.pi * (xx * (i % 4 + 1) + yy)) + rng.normal(0, 2, (SIZE, SIZE))
        a = rng.uniform(-12, 12) + 5 * np.cos(2 * np.pi * yy * (i + 1))
        b = rng.uniform(-12, 12) + 5 * np.sin(2 * np.pi * xx)
        rgb = color.lab2rgb(np.stack([lightness, a, b], axis=-1))
        path = folder / f"img{i}.png"
        Image.fromarray((rgb * 255).round().astype(np.uint8)).save(path)
        paths.append(path)
    return paths


class ShiftB:
    """Adds ``delta`` (+ ``jitter``·N(0,1) per step) to every pixel's b*, then dithered 8-bit rounding.

    The randomness comes from the step seed; with ``content_seeded`` it also depends on the frame, so chains
    on different images do not share noise even when they share a seed.
    """

    def __init__(self, delta: float = PLANTED_DB, jitter: float = 0.1, noise: float = 1.0,
                 content_seeded: bool = False) -> None:  # fmt: skip
        self.delta, self.jitter, self.noise, self.content_seeded = delta, jitter, noise, content_seeded

    def one(self, frame: np.ndarray, seed: int) -> np.ndarray:
        words = [seed, zlib.crc32(frame.tobytes())] if self.content_seeded else [seed]
        rng = np.random.default_rng(words)
        lab = color.rgb2lab(frame / 255.0)
        lab[..., 2] += self.delta + self.jitter * rng.normal()
        rgb = color.lab2rgb(lab) * 255.0 + rng.normal(0.0, self.noise, frame.shape)
        return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)

    def __call__(self, frames: list[np.ndarray], seeds: list[int]) -> list[np.ndarray]:
        return [self.one(f, s) for f, s in zip(frames, seeds, strict=True)]


def identity(frames: list[np.ndarray], seeds: list[int]) -> list[np.ndarray]:
    return [f.copy() for f in frames]


def pull_towards(target: np.ndarray):
    t = target.astype(float)

    def pull(frames: list[np.ndarray], seeds: list[int]) -> list[np.ndarray]:
        return [np.clip(np.rint(f + 0.3 * (t - f)), 0, 255).astype(np.uint8) for f in frames]

    return pull


def last_frames(run: driftloop.RunHandle, prefix: str | None = None) -> dict[str, np.ndarray]:
    """Each chain's last stored frame, keyed ``"<run id>/<chain>"`` (or ``"<prefix>/<chain>"``)."""
    head = run.id if prefix is None else prefix
    return {f"{head}/{c.chain}": run.frame(c.chain, c.last_step) for c in run.chains() if c.last_step >= 0}


def chain_sources(run: driftloop.RunHandle, prefix: str | None = None) -> dict[str, str]:
    """Each chain's source image (the input's sha256, else its path), keyed like :func:`last_frames`."""
    head = run.id if prefix is None else prefix
    return {f"{head}/{c.chain}": c.input_sha256 or c.input_path for c in run.chains()}


def _table(run: driftloop.RunHandle, model: str) -> pd.DataFrame:
    df = run.dataframe()
    df["model"] = model
    df["image"] = df["input"].map(lambda p: Path(p).name)
    return df


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """8 source images; the planted shift and the identity on seeds 0-2 (seeds shared across images, as a
    sweep runs them), and a content-seeded copy of the shift on seeds 0-3 for the null comparison."""
    folder = tmp_path_factory.mktemp("bias")
    images = _make_images(folder, 8)
    ws = folder / "ws"
    kw = {"n": STEPS, "size": SIZE, "workspace": ws, "render": False}
    shift = driftloop.run(images, model=ShiftB(), seeds=[0, 1, 2], **kw)
    ident = driftloop.run(images, model=identity, seeds=[0, 1, 2], **kw)
    twin = driftloop.run(images, model=ShiftB(content_seeded=True), seeds=[0, 1, 2, 3], **kw)
    return {
        "images": images,
        "workspace": ws,
        "shift_run": shift,
        "shift": _table(shift, "shift-b"),
        "ident": _table(ident, "identity"),
        "twin": _table(twin, "twin"),
    }


def _realised_one_step(run: driftloop.RunHandle, draws: int = 40) -> float:
    """The shift one jitter-free step of ShiftB makes in the metrics' b*, averaged over the source images
    and ``draws`` dither seeds per image (different seeds per image, so the draws are independent): what
    the replicator actually plants once 8-bit rounding is done."""
    rep = ShiftB(jitter=0.0)
    out = []
    for c in run.chains():
        if c.seed != 0:
            continue
        f0 = run.frame(c.chain, 0)
        origin = FrameFeatures.of(f0)
        b0 = frame_metrics(origin, origin, None)["lab_b_mean"]
        for s in range(draws):
            frame = rep.one(f0, 10_000 * (c.chain + 1) + s)
            out.append(frame_metrics(FrameFeatures.of(frame), origin, None)["lab_b_mean"] - b0)
    return float(np.mean(out))


# ------------------------------------------------------------------------------------- (a) planted shift


def test_planted_b_shift_is_found_with_the_right_sign_and_covered(sweep: dict) -> None:
    df = sweep["shift"]
    card = bias_card(df, control=None, n_perm=500, seed=1)
    r = card.model("shift-b").measures["lab_b_mean"]
    assert r.reliable and r.direction == -1
    assert r.verdict.startswith("shift-b drifts cooler (bluer): Δb* " + MINUS)
    assert r.rate is not None and r.rate.n_values == 24 and r.rate.n_images == 8
    # Seeds are shared across images and the jitter comes from the step seed: the interval counts them too.
    assert r.rate.method == "t over images and seeds"
    # Dithered rounding through a nonlinear colour space realises a hair less than the nominal shift; both
    # the nominal and the realised value (measured on one step with the project's own b*) must be covered.
    realised = _realised_one_step(sweep["shift_run"])
    assert abs(realised - PLANTED_DB) < 0.01
    assert r.rate.ci_low <= PLANTED_DB <= r.rate.ci_high
    assert r.rate.ci_low <= realised <= r.rate.ci_high
    # The change by step 10 is ~10 × the rate.
    change10 = r.change["10"]
    assert change10.ci_low <= 10 * realised <= change10.ci_high


# ------------------------------------------------------------------------------------------ (b) identity


def test_identity_shows_no_reliable_change_anywhere(sweep: dict) -> None:
    card = bias_card(sweep["ident"], control=None, n_perm=200)
    (model,) = card.models
    assert model.measures, "some measures expected"
    assert card.control is None and any("no comparisons" in n for n in card.notes)
    for m, r in model.measures.items():
        assert not r.reliable, m
        # Zero-width [0, 0] over two or more images; a measure read on one image only (white cast: the
        # others have no near-white pixels) has no interval: its chains say nothing about other images.
        zero = (0.0, None, None) if r.rate is not None and r.rate.n_images == 1 else (0.0, 0.0, 0.0)
        assert r.rate is not None and (r.rate.mean, r.rate.ci_low, r.rate.ci_high) == zero, m
        for est in r.change.values():
            assert (est.mean, est.ci_low, est.ci_high) == zero
    assert card.verdicts and all(": no reliable " in v or "no verdict" in v for v in card.verdicts)
    assert sum("no verdict" in v for v in card.verdicts) <= 1  # only the one-image white cast
    _strict_loads(card.to_json())


# ---------------------------------------------------------------------------------------- (c) attractors


def test_one_target_gives_one_attractor_two_targets_two(sweep: dict, tmp_path: Path) -> None:
    images = sweep["images"][:4]
    rng = np.random.default_rng(5)
    target_a = np.full((SIZE, SIZE, 3), (200, 120, 60), np.uint8)
    target_a[8:24, 8:24] = (40, 90, 160)
    target_b = (rng.random((SIZE, SIZE, 3)) * 255).astype(np.uint8)
    frames, sources, fixed = {}, {}, {}
    for name, target in (("A", target_a), ("B", target_b)):
        run = driftloop.run(images, model=pull_towards(target), n=20, seeds=[0, 1], size=SIZE,
                            workspace=tmp_path / name, render=False)  # fmt: skip
        frames.update(last_frames(run, name))
        sources.update(chain_sources(run, name))
        fixed.update({f"{name}/{s.chain}": s.fixed_point_step for s in summarize_run(run.dataframe())})

    one = find_attractors({k: v for k, v in frames.items() if k.startswith("A/")}, fixed, sources=sources)
    assert one.k == 1 and one.structure == "converged"
    (cluster,) = one.clusters
    assert sorted(cluster.members) == sorted(k for k in frames if k.startswith("A/"))
    assert cluster.attractor is True and cluster.n_sources == 4
    assert np.abs(cluster.exemplar_frame.astype(int) - target_a).max() <= 3

    two = find_attractors(frames, fixed, sources=sources, seed=3)
    assert two.k == 2 and two.structure == "clusters"
    groups = sorted(sorted(c.members) for c in two.clusters)
    assert groups == [sorted(k for k in frames if k.startswith(p)) for p in ("A/", "B/")]
    assert all(c.attractor for c in two.clusters)
    # Rounding stalls the pull a level or two from the target: those chains sit at a fixed point.
    assert two.fixed_points and all(two.cluster_of(ch).members for ch in two.fixed_points)
    _strict_loads(json.dumps(two.to_dict(), allow_nan=False))
    # Deterministic, whatever the mapping order.
    again = find_attractors(dict(reversed(list(frames.items()))), fixed, sources=sources, seed=3)
    assert again.to_dict() == two.to_dict()


def test_surviving_pictures_are_not_called_attractors(sweep: dict, tmp_path: Path) -> None:
    run = driftloop.run(sweep["images"][:4], model=identity, n=2, seeds=[0, 1], size=SIZE,
                        workspace=tmp_path / "id", render=False)  # fmt: skip
    report = find_attractors(last_frames(run), sources=chain_sources(run))
    assert report.k == 4
    assert all(c.n_sources == 1 and c.attractor is False for c in report.clusters)
    assert "0 of them gather chains from different source images" in report.summary()


# ------------------------------------------------------------------------------------- (d) vs control


def test_shift_against_identity_control(sweep: dict) -> None:
    df = pd.concat([sweep["shift"], sweep["ident"]], ignore_index=True)
    card = bias_card(df, control="identity", n_perm=2000, seed=2)
    assert card.control == "identity" and card.models[0].is_control
    r = card.model("shift-b").measures["lab_b_mean"]
    cmp = r.vs_control["rate"]
    assert cmp.test == "paired image-level permutation" and cmp.exact and cmp.n_relabelings == 2**8
    assert cmp.p_value is not None and cmp.p_value < 0.01  # 2/256: the most extreme of 256 sign patterns
    assert cmp.difference < 0 and cmp.ci_high < 0 and cmp.hedges_g is not None and cmp.hedges_g < 0
    assert cmp.reliable and r.reliable_vs_control
    assert r.verdict.endswith(f"{cmp.p_text} vs identity")
    assert any("seeds" in n for n in cmp.notes)  # shared seeds that matter: the caveat is recorded


def test_identical_models_are_not_called_different(sweep: dict) -> None:
    twin = sweep["twin"]
    df = twin.assign(model=np.where(twin["chain_seed"] < 2, "twin-a", "twin-b"))
    card = bias_card(df, control="twin-a", n_perm=2000, seed=4)
    cmp = card.model("twin-b").measures["lab_b_mean"].vs_control["rate"]
    assert cmp.p_value is not None and cmp.p_value > 0.05
    assert not cmp.reliable
    assert cmp.ci_low is not None and cmp.ci_low <= 0 <= cmp.ci_high


def test_missing_control_is_said_and_none_picks_jpeg() -> None:
    df = _synthetic(models=("taef2", "jpeg:quality=75"), effects={"taef2": -0.3, "jpeg:quality=75": 0.0})
    card = bias_card(df, n_perm=200)  # default control jpeg:quality=90 is not there
    assert card.control is None and any("not in the data" in n for n in card.notes)
    assert all(not r.vs_control for m in card.models for r in m.measures.values())
    picked = bias_card(df, control=None, n_perm=200)
    assert picked.control == "jpeg:quality=75"
    assert picked.model("taef2").measures["lab_b_mean"].vs_control["rate"].p_value is not None


# ------------------------------------------------------------------------------------------ (e) JSON/HTML


def test_json_is_strict_and_the_page_is_self_contained(sweep: dict, tmp_path: Path) -> None:
    df = pd.concat([sweep["shift"], sweep["ident"]], ignore_index=True)
    # A model with a single chain (no interval: None, not NaN) and a face column with no face.
    lone = sweep["shift"].loc[sweep["shift"]["chain"] == 0].assign(model="lone<b>")
    df = pd.concat([df, lone], ignore_index=True)
    df["face_eyebrow_thickness"] = np.nan
    card = bias_card(df, control="identity", n_perm=300)
    data = _strict_loads(card.to_json())
    assert data["settings"]["control"] == "identity"
    assert data["models"][0]["measures"]["lab_b_mean"]["rate"]["ci_low"] == 0.0
    lone_b = card.model("lone<b>").measures["lab_b_mean"]
    assert lone_b.rate is not None and lone_b.rate.ci_low is None and "no verdict" in lone_b.verdict
    assert any("eyebrow thickness" in n for n in card.notes)

    frames = last_frames(sweep["shift_run"], "s")
    report = find_attractors(frames, sources=chain_sources(sweep["shift_run"], "s"))
    html_path, json_path = write_bias_card(tmp_path / "card.html", tmp_path / "card.json", card, report,
                                           title="Bias <test>")  # fmt: skip
    _strict_loads(json_path.read_text(encoding="utf-8"))
    page = html_path.read_text(encoding="utf-8")
    assert "Content-Security-Policy" in page and "data:image/png;base64," in page
    assert "lone&lt;b&gt;" in page and "lone<b>" not in page and "Bias &lt;test&gt;" in page
    assert "http://" not in page and "https://" not in page
    assert card.verdicts[0].split(":")[0] in page
    assert 'id="attractors"' in bias_card_html(card, report)


# ------------------------------------------------------------------------------- synthetic calibration


def _synthetic(
    models: tuple[str, ...] = ("m",),
    effects: dict[str, float] | None = None,
    n_images: int = 6,
    seeds: tuple[int, ...] = (0, 1, 2),
    steps: int = 5,
    image_sd: float = 0.05,
    chain_sd: float = 0.05,
    rng_seed: int = 0,
) -> pd.DataFrame:
    """A metrics table whose lab_b_mean moves by ``effect`` per step (+ image and chain variation)."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    image_effect = rng.normal(0, image_sd, n_images)
    for model in models:
        effect = (effects or {}).get(model, 0.0)
        for i in range(n_images):
            for s in seeds:
                slope = effect + image_effect[i] + rng.normal(0, chain_sd)
                for k in range(steps + 1):
                    rows.append({"model": model, "image": f"img{i}", "chain_seed": s, "run_id": model,
                                 "chain": f"{i}-{s}", "step": k, "lab_b_mean": 10 + slope * k})  # fmt: skip
    return pd.DataFrame(rows)


def test_same_data_same_card_whatever_the_row_order() -> None:
    df = _synthetic(models=("a", "b"), effects={"b": 0.2})
    # 2^6 sign patterns > n_perm = 30: random relabellings, so the seed matters (the intervals have no
    # randomness).
    one = bias_card(df, control="a", n_perm=30, seed=7).to_dict()
    two = bias_card(df.sample(frac=1.0, random_state=1), control="a", n_perm=30, seed=7)
    assert one == two.to_dict()
    assert one != bias_card(df, control="a", n_perm=30, seed=8).to_dict()


def test_wording_sign_and_numbers() -> None:
    df = _synthetic(effects={"m": 0.24}, chain_sd=0.01, image_sd=0.01)
    (verdict,) = [v for v in bias_card(df, n_perm=100).verdicts if "b*" in v]
    assert verdict.startswith("m drifts warmer (yellower): Δb* +0.24 per step [+0.2")
    cold = _synthetic(effects={"m": -0.24}, chain_sd=0.01, image_sd=0.01)
    (verdict,) = [v for v in bias_card(cold, n_perm=100).verdicts if "b*" in v]
    assert f"Δb* {MINUS}0.24 per step [{MINUS}0.2" in verdict and "-" not in verdict.split("Δb*")[1]


def test_one_image_gives_no_interval_with_a_warning() -> None:
    df = _synthetic(n_images=1, seeds=(0, 1, 2, 3), effects={"m": 0.1})
    card = bias_card(df, control=None, n_perm=100)
    rate = card.model("m").measures["lab_b_mean"].rate
    assert rate.method == "none" and not rate.has_ci and rate.n_values == 4
    assert any("1 source image" in w for w in card.model("m").warnings)


def test_rates_and_changes_per_chain() -> None:
    df = _synthetic(effects={"m": 0.5}, image_sd=0.0, chain_sd=0.0, steps=12)
    table = chain_statistics(df, steps=(1, 10, 25))
    assert table.attrs["step_keys"] == ["1", "10", "last"]
    assert np.allclose(table["lab_b_mean:rate"], 0.5) and np.allclose(table["lab_b_mean:10"], 5.0)
    assert np.allclose(table["lab_b_mean:last"], 6.0)


def test_the_interval_treats_the_image_as_the_unit() -> None:
    """Chains of one image that are copies of each other carry no extra information: the interval must be
    as wide as with one chain per image, not sqrt(3) times narrower."""
    rng = np.random.default_rng(0)
    per_image = rng.normal(0, 1, 10)
    values = np.repeat(per_image, 3)
    images = np.repeat(np.arange(10), 3)
    clustered = mean_ci(values, images)
    naive = mean_ci(values, np.arange(30))
    one_each = mean_ci(per_image, np.arange(10))
    width = clustered.ci_high - clustered.ci_low
    assert width > 1.4 * (naive.ci_high - naive.ci_low)
    assert width == pytest.approx(one_each.ci_high - one_each.ci_low, rel=0.15)


def _coverage(crossed: bool, use_seeds: bool, reps: int = 150) -> float:
    rng = np.random.default_rng(11)
    hits = 0
    n_img, n_seed = 10, 5
    for _ in range(reps):
        img = rng.normal(0, 0.5, n_img)
        seed = rng.normal(0, 1.0 if crossed else 0.0, n_seed)
        values = (img[:, None] + seed[None, :] + rng.normal(0, 0.3, (n_img, n_seed))).ravel()
        images = np.repeat(np.arange(n_img), n_seed)
        seeds = np.tile(np.arange(n_seed), n_img)
        est = mean_ci(values, images, seeds if use_seeds else None)
        hits += est.ci_low <= 0.0 <= est.ci_high
    return hits / reps


def test_interval_coverage_with_and_without_shared_seed_effects() -> None:
    # Independent chains within images: ~95%.
    assert 0.85 <= _coverage(crossed=False, use_seeds=True) <= 1.0
    # A seed effect shared across images: the spread between images alone misses it badly; image×seed
    # (two-way) does not.
    assert _coverage(crossed=True, use_seeds=False) < 0.75
    assert _coverage(crossed=True, use_seeds=True) >= 0.85


def test_paired_permutation_test_has_the_right_size_and_power() -> None:
    rng = np.random.default_rng(3)
    p_null, p_alt = [], []
    images = [f"i{k}" for k in range(8)] * 2
    labels = [True] * 8 + [False] * 8
    for _ in range(300):
        base = rng.normal(0, 1, 8)
        null = np.concatenate([base + rng.normal(0, 0.5, 8), base + rng.normal(0, 0.5, 8)])
        alt = np.concatenate([base + 1.0 + rng.normal(0, 0.5, 8), base + rng.normal(0, 0.5, 8)])
        p_null.append(stratified_permutation_test(null, labels, images, n_perm=1000).p_value)
        p_alt.append(stratified_permutation_test(alt, labels, images, n_perm=1000).p_value)
    assert 0.01 <= np.mean(np.array(p_null) < 0.05) <= 0.08
    assert np.mean(np.array(p_alt) < 0.05) > 0.8
    exact = stratified_permutation_test(alt, labels, images, n_perm=1000)
    assert exact.exact and exact.n_relabelings == 256 and math.isclose(exact.min_p, 2 / 256)


def test_unshared_and_single_shared_images_use_the_matching_test() -> None:
    a = _synthetic(models=("a",), n_images=6, rng_seed=1)
    b = _synthetic(models=("b",), effects={"b": 0.5}, n_images=6, rng_seed=2)
    b["image"] = b["image"] + "-other"  # no image in common: image means permuted across images
    card = bias_card(pd.concat([a, b]), control="a", n_perm=2000)
    cmp = card.model("b").measures["lab_b_mean"].vs_control["rate"]
    assert cmp.test == "image-level permutation (no shared image)" and cmp.exact
    assert cmp.p_value == pytest.approx(2 / math.comb(12, 6)) and cmp.reliable
    one = _synthetic(models=("a", "b"), effects={"b": 0.5}, n_images=1, seeds=(0, 1, 2, 3))
    cmp = bias_card(one, control="a", n_perm=2000).model("b").measures["lab_b_mean"].vs_control
    assert cmp["rate"].test == "within-image permutation (1 shared image)"
    assert cmp["rate"].p_value == pytest.approx(2 / math.comb(8, 4)) and any(
        "that image only" in n for n in cmp["rate"].notes
    )
    few = _synthetic(models=("a", "b"), effects={"b": 0.5}, n_images=4)
    cmp = bias_card(few, control="a", n_perm=2000).model("b").measures["lab_b_mean"]
    assert cmp.vs_control["rate"].min_p == pytest.approx(2 / 16) and any(
        "no outcome can reach" in n for n in cmp.vs_control["rate"].notes
    )
    assert (
        cmp.reliable and cmp.reliable_vs_control is False and "not reliably different from a" in cmp.verdict
    )


def test_missing_readings_are_left_out() -> None:
    df = _synthetic(steps=3)
    df["white_cast"] = 20.0 + df["step"]
    df["white_cast_pixels"] = np.where(df["step"] == 3, 0.0, 0.1)  # no near-white pixels at step 3
    df["face_found"] = np.where(df["step"] == 2, 0.0, 1.0)
    df["face_mouth_width"] = np.where(df["step"] == 2, 99.0, 1.0 + 0.01 * df["step"])
    table = chain_statistics(df, steps=(1, 2, 3))
    assert table["white_cast:3"].isna().all() and np.allclose(table["white_cast:rate"], 1.0)
    assert table["face_mouth_width:2"].isna().all() and np.allclose(table["face_mouth_width:rate"], 0.01)


def test_unrelated_last_frames_are_diffuse_not_an_attractor() -> None:
    rng = np.random.default_rng(0)
    frames = {f"c{i}": (rng.random((SIZE, SIZE, 3)) * 255).astype(np.uint8) for i in range(10)}
    report = find_attractors(frames, sources={k: k for k in frames})
    assert report.structure == "diffuse" and report.k == 1 and report.clusters[0].attractor is False
    assert "no clear clusters" in report.summary()


def test_face_lost_step_on_the_card() -> None:
    df = _synthetic(n_images=3, seeds=(0, 1), steps=6)
    image = df["image"].str[-1].astype(int)
    # img0: no face at all; img1: the face goes at step 4; img2: the face stays
    df["face_found"] = np.where(image == 0, 0.0, np.where((image == 1) & (df["step"] >= 4), 0.0, 1.0))
    card = bias_card(df, control=None, n_perm=100)
    face = card.model("m").face
    assert face is not None and (face.chains_with_face, face.lost, face.first_lost_steps) == (4, 2, [4, 4])
    assert "m: the face is lost in 2 of 4 chains that start with one, at step 4" in card.verdicts
    js = card.to_dict()["models"][0]["face"]
    assert js == {"chains_with_face": 4, "lost": 2, "first_lost_steps": [4, 4], "median_step": 4.0}
    assert bias_card(_synthetic(), control=None, n_perm=100).model("m").face is None


def test_no_face_line_when_faces_were_not_measured_for_a_model() -> None:
    df = pd.concat([_synthetic(models=("a",)), _synthetic(models=("b",), rng_seed=1)], ignore_index=True)
    df["face_found"] = np.where(df["model"] == "a", 1.0, np.nan)  # only model a was measured
    card = bias_card(df, control=None, n_perm=100)
    assert card.model("a").face is not None and card.model("b").face is None
    assert not any(v.startswith("b:") and "face" in v for v in card.verdicts)


# ------------------------------------------------------------------- the card's numbers are mean_ci's


def _slope_table(rows: list[tuple[str, str, int, float]], steps: int = 4) -> pd.DataFrame:
    """A metrics table from (model, image, seed, slope) chains: lab_b_mean = 10 + slope · step, exactly."""
    out = []
    for model, image, seed, slope in rows:
        for k in range(steps + 1):
            out.append({"model": model, "image": image, "chain_seed": seed, "run_id": model,
                        "chain": f"{image}-{seed}", "step": k, "lab_b_mean": 10 + slope * k})  # fmt: skip
    return pd.DataFrame(out)


def test_card_intervals_are_mean_ci_and_differences_are_paired_by_image() -> None:
    # Unequal chains per image, and a control with other seeds and an image the model does not have: the
    # estimate is the mean of image means, the difference is paired per image (seeds do not line up).
    # Every chain its own seed: no seed is shared across images, so the interval is the one-way t.
    model = [("m", "i0", 0, 0.9), ("m", "i0", 1, 1.1), ("m", "i0", 2, 1.0), ("m", "i1", 3, 0.2),
             ("m", "i2", 4, 0.5), ("m", "i2", 5, 0.7), ("m", "i3", 6, -0.1), ("m", "i3", 7, 0.1)]  # fmt: skip
    control = [("c", "i0", 5, 0.1), ("c", "i1", 5, 0.0), ("c", "i1", 6, 0.2), ("c", "i2", 5, -0.1),
               ("c", "i3", 5, 0.05), ("c", "i4", 5, 3.0)]  # fmt: skip
    df = _slope_table(model + control)
    card = bias_card(df, control="c", n_perm=5000)
    table = chain_statistics(df)
    m_rows, c_rows = table.loc[table["model"] == "m"], table.loc[table["model"] == "c"]
    m_rates, c_rates = m_rows["lab_b_mean:rate"].to_numpy(), c_rows["lab_b_mean:rate"].to_numpy()

    est = card.model("m").measures["lab_b_mean"].rate
    want = mean_ci(m_rates, m_rows["image"], m_rows["chain_seed"])
    assert (est.mean, est.ci_low, est.ci_high, est.method) == (
        want.mean,
        want.ci_low,
        want.ci_high,
        want.method,
    )
    assert est.method == "t over images" and est.n_images == 4 and est.n_values == 8
    # The mean of image means (1.0, 0.2, 0.6, 0.0), not the mean of the 8 chains (0.55).
    assert est.mean == pytest.approx(0.45) and m_rates.mean() == pytest.approx(0.55)
    half = stats.t.ppf(0.975, 3) * np.std([1.0, 0.2, 0.6, 0.0], ddof=1) / 2
    assert (est.ci_low, est.ci_high) == (pytest.approx(0.45 - half), pytest.approx(0.45 + half))

    cmp = card.model("m").measures["lab_b_mean"].vs_control["rate"]
    diff = paired_diff_ci(m_rates, c_rates, m_rows["image"], c_rows["image"])
    assert (cmp.difference, cmp.ci_low, cmp.ci_high) == (diff.mean, diff.ci_low, diff.ci_high)
    assert cmp.ci_method == "t over images" == diff.method
    # Per shared image: model mean − control mean = 0.9, 0.1, 0.7, −0.05; i4 (control only) is left out.
    per_image = np.array([1.0 - 0.1, 0.2 - 0.1, 0.6 + 0.1, 0.0 - 0.05])
    assert cmp.difference == pytest.approx(per_image.mean()) and diff.n_left_out == 1
    assert any("1 chain(s) on images only one model has" in n for n in cmp.notes)
    test = sign_flip_test(image_differences(m_rates, c_rates, m_rows["image"], c_rows["image"])[0])
    assert cmp.p_value == test.p_value and cmp.exact and cmp.n_relabelings == 16

    # The control's own estimate is mean_ci too (i1 has two chains: 0.1; i4 counts once, not per chain).
    ctrl = card.model("c").measures["lab_b_mean"].rate
    assert ctrl.mean == pytest.approx(np.mean([0.1, 0.1, -0.1, 0.05, 3.0]))


def test_card_differences_pair_image_and_seed_cells_when_the_seeds_match() -> None:
    # The same seeds on every image, both models, with a seed effect shared across images (+0.3 for seed 1
    # in the model): the difference is paired per (image, seed) cell and its interval counts the seeds.
    rng = np.random.default_rng(4)
    rows = []
    for i in range(6):
        base = rng.normal(0, 0.2)
        for s in range(3):
            rows.append(("m", f"i{i}", s, 0.5 + base + 0.3 * (s == 1) + rng.normal(0, 0.01)))
            rows.append(("c", f"i{i}", s, base + rng.normal(0, 0.01)))
    df = _slope_table(rows)
    card = bias_card(df, control="c")
    table = chain_statistics(df)
    m_rows, c_rows = table.loc[table["model"] == "m"], table.loc[table["model"] == "c"]
    cmp = card.model("m").measures["lab_b_mean"].vs_control["rate"]
    diff = paired_diff_ci(m_rows["lab_b_mean:rate"], c_rows["lab_b_mean:rate"], m_rows["image"],
                          c_rows["image"], m_rows["chain_seed"], c_rows["chain_seed"])  # fmt: skip
    assert diff.method == "t over images and seeds" and diff.n_seeds == 3
    assert (cmp.difference, cmp.ci_low, cmp.ci_high, cmp.ci_method) == (
        diff.mean, diff.ci_low, diff.ci_high, diff.method
    )  # fmt: skip
    # Wider than pairing by image alone, which cannot see the seed effect every image shares.
    by_image = paired_diff_ci(m_rows["lab_b_mean:rate"], c_rows["lab_b_mean:rate"], m_rows["image"],
                              c_rows["image"])  # fmt: skip
    assert cmp.ci_high - cmp.ci_low > 2 * (by_image.ci_high - by_image.ci_low)
    assert any("seeds" in n for n in cmp.notes)
