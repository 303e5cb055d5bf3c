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
from skimage import color

import driftloop
from driftloop.analysis.attractors import find_attractors
from driftloop.analysis.bias import bias_card, chain_statistics
from driftloop.analysis.chains import summarize_run
from driftloop.analysis.stats import cluster_bootstrap, stratified_permutation_test
from driftloop.analysis.text import MINUS, format_p
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
    card = bias_card(df, control=None, n_boot=800, n_perm=500, seed=1)
    r = card.model("shift-b").measures["lab_b_mean"]
    assert r.reliable and r.direction == -1
    assert r.verdict.startswith("shift-b drifts cooler (bluer): Δb* " + MINUS)
    assert r.rate is not None and r.rate.n_chains == 24 and r.rate.n_images == 8
    # Seeds are shared across images and the jitter comes from the step seed: seeds are resampled too.
    assert r.rate.method == "image×seed bootstrap"
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
    card = bias_card(sweep["ident"], control=None, n_boot=300, n_perm=200)
    (model,) = card.models
    assert model.measures, "some measures expected"
    assert card.control is None and any("no comparisons" in n for n in card.notes)
    for m, r in model.measures.items():
        assert not r.reliable, m
        assert r.rate is not None and (r.rate.mean, r.rate.ci_low, r.rate.ci_high) == (0.0, 0.0, 0.0), m
        for est in r.change.values():
            assert (est.mean, est.ci_low, est.ci_high) == (0.0, 0.0, 0.0)
    assert card.verdicts and all(": no reliable " in v for v in card.verdicts)
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
    card = bias_card(df, control="identity", n_boot=500, n_perm=2000, seed=2)
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
    card = bias_card(df, control="twin-a", n_boot=500, n_perm=2000, seed=4)
    cmp = card.model("twin-b").measures["lab_b_mean"].vs_control["rate"]
    assert cmp.p_value is not None and cmp.p_value > 0.05
    assert not cmp.reliable
    assert cmp.ci_low is not None and cmp.ci_low <= 0 <= cmp.ci_high


def test_missing_control_is_said_and_none_picks_jpeg() -> None:
    df = _synthetic(models=("taef2", "jpeg:quality=75"), effects={"taef2": -0.3, "jpeg:quality=75": 0.0})
    card = bias_card(df, n_boot=200, n_perm=200)  # default control jpeg:quality=90 is not there
    assert card.control is None and any("not in the data" in n for n in card.notes)
    assert all(not r.vs_control for m in card.models for r in m.measures.values())
    picked = bias_card(df, control=None, n_boot=200, n_perm=200)
    assert picked.control == "jpeg:quality=75"
    assert picked.model("taef2").measures["lab_b_mean"].vs_control["rate"].p_value is not None


# ------------------------------------------------------------------------------------------ (e) JSON/HTML


def test_json_is_strict_and_the_page_is_self_contained(sweep: dict, tmp_path: Path) -> None:
    df = pd.concat([sweep["shift"], sweep["ident"]], ignore_index=True)
    # A model with a single chain (no interval: None, not NaN) and a face column with no face.
    lone = sweep["shift"].loc[sweep["shift"]["chain"] == 0].assign(model="lone<b>")
    df = pd.concat([df, lone], ignore_index=True)
    df["face_eyebrow_thickness"] = np.nan
    card = bias_card(df, control="identity", n_boot=200, n_perm=300)
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
    one = bias_card(df, control="a", n_boot=300, n_perm=300, seed=7).to_dict()
    two = bias_card(df.sample(frac=1.0, random_state=1), control="a", n_boot=300, n_perm=300, seed=7)
    assert one == two.to_dict()
    assert one != bias_card(df, control="a", n_boot=300, n_perm=300, seed=8).to_dict()


def test_wording_sign_and_numbers() -> None:
    df = _synthetic(effects={"m": 0.24}, chain_sd=0.01, image_sd=0.01)
    (verdict,) = [v for v in bias_card(df, n_boot=300, n_perm=100).verdicts if "b*" in v]
    assert verdict.startswith("m drifts warmer (yellower): Δb* +0.24 per step [+0.2")
    cold = _synthetic(effects={"m": -0.24}, chain_sd=0.01, image_sd=0.01)
    (verdict,) = [v for v in bias_card(cold, n_boot=300, n_perm=100).verdicts if "b*" in v]
    assert f"Δb* {MINUS}0.24 per step [{MINUS}0.2" in verdict and "-" not in verdict.split("Δb*")[1]
    assert (
        format_p(0.0004) == "p<0.001" and format_p(0.0123) == "p=0.012" and format_p(0.005, True) == "p≤0.005"
    )


def test_one_image_falls_back_to_chain_bootstrap_with_a_warning() -> None:
    df = _synthetic(n_images=1, seeds=(0, 1, 2, 3), effects={"m": 0.1})
    card = bias_card(df, control=None, n_boot=300, n_perm=100)
    assert card.model("m").measures["lab_b_mean"].rate.method == "chain bootstrap"
    assert any("1 source image" in w for w in card.model("m").warnings)


def test_rates_and_changes_per_chain() -> None:
    df = _synthetic(effects={"m": 0.5}, image_sd=0.0, chain_sd=0.0, steps=12)
    table = chain_statistics(df, steps=(1, 10, 25))
    assert table.attrs["step_keys"] == ["1", "10", "last"]
    assert np.allclose(table["lab_b_mean:rate"], 0.5) and np.allclose(table["lab_b_mean:10"], 5.0)
    assert np.allclose(table["lab_b_mean:last"], 6.0)


def test_cluster_bootstrap_treats_the_image_as_the_unit() -> None:
    """Chains of one image that are copies of each other carry no extra information: the interval must be
    as wide as with one chain per image, not sqrt(3) times narrower."""
    rng = np.random.default_rng(0)
    per_image = rng.normal(0, 1, 10)
    values = np.repeat(per_image, 3)
    images = np.repeat(np.arange(10), 3)
    clustered = cluster_bootstrap(values, images, n_boot=2000, rng=np.random.default_rng(1))
    naive = cluster_bootstrap(values, np.arange(30), n_boot=2000, rng=np.random.default_rng(1))
    one_each = cluster_bootstrap(per_image, np.arange(10), n_boot=2000, rng=np.random.default_rng(1))
    width = clustered.ci_high - clustered.ci_low
    assert width > 1.4 * (naive.ci_high - naive.ci_low)
    assert width == pytest.approx(one_each.ci_high - one_each.ci_low, rel=0.15)


def _coverage(crossed: bool, use_seeds: bool, reps: int = 150) -> float:
    rng = np.random.default_rng(11)
    hits = 0
    n_img, n_seed = 10, 5
    for r in range(reps):
        img = rng.normal(0, 0.5, n_img)
        seed = rng.normal(0, 1.0 if crossed else 0.0, n_seed)
        values = (img[:, None] + seed[None, :] + rng.normal(0, 0.3, (n_img, n_seed))).ravel()
        images = np.repeat(np.arange(n_img), n_seed)
        seeds = np.tile(np.arange(n_seed), n_img)
        est = cluster_bootstrap(values, images, seeds if use_seeds else None, n_boot=400,
                                rng=np.random.default_rng(r))  # fmt: skip
        hits += est.ci_low <= 0.0 <= est.ci_high
    return hits / reps


def test_bootstrap_coverage_with_and_without_shared_seed_effects() -> None:
    # Independent chains within images: ~95% (percentile intervals over 10 images run a little short).
    assert 0.85 <= _coverage(crossed=False, use_seeds=True) <= 1.0
    # A seed effect shared across images: resampling images alone misses it badly; image×seed does not.
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
    card = bias_card(pd.concat([a, b]), control="a", n_boot=200, n_perm=2000)
    cmp = card.model("b").measures["lab_b_mean"].vs_control["rate"]
    assert cmp.test == "image-level permutation (no shared image)" and cmp.exact
    assert cmp.p_value == pytest.approx(2 / math.comb(12, 6)) and cmp.reliable
    one = _synthetic(models=("a", "b"), effects={"b": 0.5}, n_images=1, seeds=(0, 1, 2, 3))
    cmp = bias_card(one, control="a", n_boot=200, n_perm=2000).model("b").measures["lab_b_mean"].vs_control
    assert cmp["rate"].test == "within-image permutation (1 shared image)"
    assert cmp["rate"].p_value == pytest.approx(2 / math.comb(8, 4)) and any(
        "that image only" in n for n in cmp["rate"].notes
    )
    few = _synthetic(models=("a", "b"), effects={"b": 0.5}, n_images=4)
    cmp = bias_card(few, control="a", n_boot=200, n_perm=2000).model("b").measures["lab_b_mean"]
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
    card = bias_card(df, control=None, n_boot=200, n_perm=100)
    face = card.model("m").face
    assert face is not None and (face.chains_with_face, face.lost, face.first_lost_steps) == (4, 2, [4, 4])
    assert "m: the face is lost in 2 of 4 chains that start with one, at step 4" in card.verdicts
    js = card.to_dict()["models"][0]["face"]
    assert js == {"chains_with_face": 4, "lost": 2, "first_lost_steps": [4, 4], "median_step": 4.0}
    assert bias_card(_synthetic(), control=None, n_boot=100, n_perm=100).model("m").face is None


def test_no_face_line_when_faces_were_not_measured_for_a_model() -> None:
    df = pd.concat([_synthetic(models=("a",)), _synthetic(models=("b",), rng_seed=1)], ignore_index=True)
    df["face_found"] = np.where(df["model"] == "a", 1.0, np.nan)  # only model a was measured
    card = bias_card(df, control=None, n_boot=100, n_perm=100)
    assert card.model("a").face is not None and card.model("b").face is None
    assert not any(v.startswith("b:") and "face" in v for v in card.verdicts)
