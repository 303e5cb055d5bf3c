"""Non-neural metrics: known answers, agreement with scikit-image, robustness on degenerate frames."""

from __future__ import annotations

import itertools
import math
import threading
import warnings

import numpy as np
import pytest
from skimage import color, data, filters
from skimage.metrics import structural_similarity

from driftloop.metrics import COLUMNS, FrameFeatures, colour, frame_metrics, pixel, structure


def features(frame: np.ndarray) -> FrameFeatures:
    return FrameFeatures.of(frame)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return np.ascontiguousarray(data.astronaut()[::2, ::2])  # 256×256


@pytest.fixture(scope="module")
def chelsea() -> np.ndarray:
    return np.ascontiguousarray(data.chelsea()[:256, :256])


def noisy(frame: np.ndarray, sd: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(frame + rng.normal(0, sd, frame.shape), 0, 255).round().astype(np.uint8)


def gaussian_blur(frame: np.ndarray, sigma: float) -> np.ndarray:
    if sigma == 0:
        return frame
    out = filters.gaussian(frame.astype(np.float64), sigma=sigma, channel_axis=-1, preserve_range=True)
    return np.clip(out.round(), 0, 255).astype(np.uint8)


# --- the row as a whole -------------------------------------------------------------------------------


def test_keys_are_exactly_the_documented_columns(astronaut, chelsea):
    row = frame_metrics(features(chelsea), features(astronaut), features(noisy(chelsea, 5)))
    assert set(row) == set(COLUMNS)
    assert all(isinstance(v, float) for v in row.values())
    assert all(isinstance(text, str) and text for text in COLUMNS.values())


def test_frame_zero_has_no_prev_columns_and_is_identical_to_itself(astronaut):
    origin = features(astronaut)
    row = frame_metrics(origin, origin, None)
    assert not [k for k in row if k.endswith("_to_prev")]
    assert set(row) == {k for k in COLUMNS if not k.endswith("_to_prev")}
    assert row["psnr_to_origin"] == math.inf
    assert row["ssim_to_origin"] == 1.0
    assert row["mae_to_origin"] == 0.0
    assert row["phash_to_origin"] == 0.0
    assert row["lab_b_delta"] == 0.0 and row["lab_delta_e"] == 0.0


def test_identical_frames_separately_computed(astronaut):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PSNR inf must come without a divide-by-zero warning
        a, b = features(astronaut), features(astronaut.copy())
        row = frame_metrics(a, b, b)
    for target in ("origin", "prev"):
        assert row[f"psnr_to_{target}"] == math.inf
        assert row[f"ssim_to_{target}"] == pytest.approx(1.0, abs=1e-6)
        assert row[f"mae_to_{target}"] == 0.0
        assert row[f"phash_to_{target}"] == 0.0


def test_known_psnr_and_mae():
    frame = np.full((32, 32, 3), 100, np.uint8)
    plus_one = frame + np.uint8(1)
    assert pixel.mae(frame, plus_one) == pytest.approx(1.0)
    assert pixel.psnr(frame, plus_one) == pytest.approx(10 * math.log10(255**2), abs=1e-9)
    half = frame.copy()
    half[:16] += 4  # half the pixels off by 4: MSE 8, MAE 2
    row = frame_metrics(features(half), features(frame), None)
    assert row["mae_to_origin"] == pytest.approx(2.0)
    assert row["psnr_to_origin"] == pytest.approx(10 * math.log10(255**2 / 8))


def test_similarity_falls_with_damage(astronaut, chelsea):
    origin = features(astronaut)
    mild = frame_metrics(features(noisy(astronaut, 4)), origin, None)
    heavy = frame_metrics(features(noisy(astronaut, 40)), origin, None)
    other = frame_metrics(features(chelsea), origin, None)
    assert mild["ssim_to_origin"] > heavy["ssim_to_origin"] > other["ssim_to_origin"]
    assert mild["psnr_to_origin"] > heavy["psnr_to_origin"]
    assert mild["mae_to_origin"] < heavy["mae_to_origin"]
    assert mild["phash_to_origin"] <= 6
    assert other["phash_to_origin"] >= 16


def test_sizes_must_match(astronaut):
    with pytest.raises(ValueError, match="one size"):
        frame_metrics(features(astronaut[:128]), features(astronaut), None)


@pytest.mark.parametrize(
    "bad",
    [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 3), np.float32)],
)
def test_rejects_non_frames(bad):
    with pytest.raises(ValueError, match="uint8"):
        FrameFeatures.of(bad)


# --- SSIM agrees with scikit-image --------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["blur", "noise", "other"])
def test_ssim_equals_scikit_image(astronaut, chelsea, damage):
    other = {
        "blur": gaussian_blur(astronaut, 1.2),
        "noise": noisy(astronaut, 30),
        "other": chelsea,
    }[damage]
    y1 = pixel.luma(astronaut).astype(np.float64)
    y2 = pixel.luma(other).astype(np.float64)
    expected = structural_similarity(
        y1, y2, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    row = frame_metrics(features(other), features(astronaut), None)
    assert row["ssim_to_origin"] == pytest.approx(expected, abs=1e-4)
    # the luma is the BT.601 one, as Pillow's "L" mode computes it (up to its rounding to integers)
    from PIL import Image

    pil_l = np.asarray(Image.fromarray(astronaut).convert("L"), dtype=np.float64)
    assert np.abs(pil_l - y1).max() <= 1.0


def test_ssim_on_odd_and_tiny_sizes(astronaut):
    a, b = astronaut[:101, :77], noisy(astronaut, 20)[:101, :77]
    y1, y2 = pixel.luma(a).astype(np.float64), pixel.luma(b).astype(np.float64)
    expected = structural_similarity(
        y1, y2, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert pixel.ssim(y1, y2) == pytest.approx(expected, abs=1e-4)
    tiny_a, tiny_b = astronaut[:8, :8], noisy(astronaut, 20)[:8, :8]  # below scikit-image's 11×11 minimum
    value = frame_metrics(features(tiny_b), features(tiny_a), None)["ssim_to_origin"]
    assert -1.0 <= value < 1.0


# --- colour -------------------------------------------------------------------------------------------


def test_lab_equals_scikit_image(astronaut):
    rng = np.random.default_rng(3)
    for frame in (astronaut, rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)):
        ours = colour.lab_from_rgb(frame)
        theirs = color.rgb2lab(frame)
        assert np.abs(ours - theirs).max() < 1e-3
        single = colour.colour_metrics(frame)
        assert single["lab_l_mean"] == pytest.approx(theirs[..., 0].mean(), abs=1e-3)
        assert single["lab_a_mean"] == pytest.approx(theirs[..., 1].mean(), abs=1e-3)
        assert single["lab_b_mean"] == pytest.approx(theirs[..., 2].mean(), abs=1e-3)
        chroma = np.hypot(theirs[..., 1], theirs[..., 2]).mean()
        assert single["lab_chroma_mean"] == pytest.approx(chroma, abs=1e-3)


@pytest.mark.parametrize("shift", [8.0, -6.0, 3.0])
def test_planted_b_shift_is_recovered(astronaut, shift):
    # mid-tones so that the shifted colours stay inside the sRGB gamut
    base = (astronaut * 0.5 + 64).astype(np.uint8)
    lab = color.rgb2lab(base)
    lab[..., 2] += shift
    shifted = np.clip(color.lab2rgb(lab) * 255 + 0.5, 0, 255).astype(np.uint8)
    row = frame_metrics(features(shifted), features(base), None)
    assert row["lab_b_delta"] == pytest.approx(shift, abs=0.1 * abs(shift))
    assert abs(row["lab_a_delta"]) < 0.3 and abs(row["lab_l_delta"]) < 0.3
    assert row["lab_delta_e"] == pytest.approx(abs(shift), abs=0.1 * abs(shift) + 0.3)
    # a yellower (b* up) frame is warmer and has a stronger white cast
    warmer = row["cct_kelvin"] < features(base).single["cct_kelvin"]
    assert warmer == (shift > 0)


def test_hue_angle_of_mean():
    assert colour.colour_metrics(np.full((4, 4, 3), (200, 180, 40), np.uint8))["lab_hue_deg"] == (
        pytest.approx(90, abs=15)
    )  # yellow
    assert 0 <= colour.colour_metrics(np.full((4, 4, 3), (40, 60, 220), np.uint8))["lab_hue_deg"] < 360
    assert colour.colour_metrics(np.full((4, 4, 3), (60, 60, 220), np.uint8))["lab_hue_deg"] > 270
    grey = colour.colour_metrics(np.full((4, 4, 3), 128, np.uint8))
    assert 0.0 <= grey["lab_hue_deg"] < 360.0


def test_hue_chroma_is_the_strength_of_the_mean_colour():
    grey = colour.colour_metrics(np.full((4, 4, 3), 128, np.uint8))
    assert grey["lab_hue_chroma"] == pytest.approx(0, abs=0.01)
    yellow = colour.colour_metrics(np.full((4, 4, 3), (200, 180, 40), np.uint8))
    assert yellow["lab_hue_chroma"] == pytest.approx(math.hypot(yellow["lab_a_mean"], yellow["lab_b_mean"]))
    assert yellow["lab_hue_chroma"] == pytest.approx(yellow["lab_chroma_mean"], rel=1e-4)  # one colour
    # red beside its opposite: every pixel is saturated, but the mean colour is much weaker
    red, cyan = np.full((4, 2, 3), (200, 60, 90), np.uint8), np.full((4, 2, 3), (60, 150, 120), np.uint8)
    split = colour.colour_metrics(np.concatenate([red, cyan], axis=1))
    assert split["lab_chroma_mean"] > 40 and split["lab_hue_chroma"] < 0.4 * split["lab_chroma_mean"]


def grey_ramp(size: int = 64) -> np.ndarray:
    ramp = np.linspace(0, 255, size).round().astype(np.uint8)
    return np.repeat(np.tile(ramp, (size, 1))[..., None], 3, axis=2)


def test_white_cast_is_zero_on_grey_and_rises_with_yellow():
    ramp = grey_ramp()
    neutral = colour.colour_metrics(ramp)
    assert neutral["white_cast"] == 0.0
    assert neutral["white_cast_pixels"] == pytest.approx((ramp[..., 0] >= 179).mean())
    yellowed = ramp.astype(np.float64)
    yellowed[..., 2] *= 0.9  # blue down: a yellow tint
    mild = colour.colour_metrics(yellowed.round().astype(np.uint8))
    yellowed[..., 2] = ramp[..., 2] * 0.8
    strong = colour.colour_metrics(yellowed.round().astype(np.uint8))
    assert 0.0 < mild["white_cast"] < strong["white_cast"]
    assert strong["white_cast"] > 25  # "reads yellow"
    blued = ramp.astype(np.float64)
    blued[..., 0] *= 0.9
    blued[..., 1] *= 0.9
    assert colour.colour_metrics(blued.round().astype(np.uint8))["white_cast"] < 0


def test_white_cast_without_bright_neutral_pixels_is_zero_not_nan():
    dark = np.full((16, 16, 3), 40, np.uint8)
    red = np.full((16, 16, 3), (250, 20, 20), np.uint8)
    for frame in (dark, red):
        single = colour.colour_metrics(frame)
        assert single["white_cast"] == 0.0
        assert single["white_cast_pixels"] == 0.0


def test_correlated_colour_temperature():
    def cct(rgb):
        return colour.colour_metrics(np.full((8, 8, 3), rgb, np.uint8))["cct_kelvin"]

    assert cct((255, 255, 255)) == pytest.approx(6500, abs=150)  # sRGB white is D65
    assert cct((128, 128, 128)) == pytest.approx(6500, abs=150)
    assert cct((255, 230, 190)) < 5500  # warm white
    assert cct((255, 200, 140)) < cct((255, 230, 190))
    assert cct((200, 220, 255)) > 8000  # bluish white
    assert cct((180, 200, 255)) > cct((200, 220, 255))
    assert colour.mccamy_cct(0.44757, 0.40745) == pytest.approx(2856, abs=20)  # illuminant A
    for rgb in ((0, 0, 0), (255, 0, 0), (0, 0, 255), (255, 0, 255), (0, 255, 0)):
        assert colour.CCT_MIN <= cct(rgb) <= colour.CCT_MAX


def test_colourfulness_and_saturation():
    grey = grey_ramp()
    single = colour.colour_metrics(grey)
    assert single["colourfulness"] == 0.0
    assert single["hsv_saturation_mean"] == 0.0
    assert single["lab_chroma_mean"] < 0.05
    vivid = colour.colour_metrics(data.astronaut())
    assert vivid["colourfulness"] > 30
    assert 0.0 < vivid["hsv_saturation_mean"] < 1.0
    pure = colour.colour_metrics(np.full((4, 4, 3), (255, 0, 0), np.uint8))
    assert pure["hsv_saturation_mean"] == 1.0


# --- structure ----------------------------------------------------------------------------------------


def test_blur_lowers_sharpness_and_high_frequencies(astronaut):
    rows = [structure.structure_metrics(pixel.luma(gaussian_blur(astronaut, s))) for s in (0, 0.5, 1, 2, 4)]
    for key in ("sharpness", "hf_energy_share", "edge_density"):
        values = [r[key] for r in rows]
        assert all(a > b for a, b in itertools.pairwise(values)), (key, values)


def test_entropy():
    assert structure.entropy_bits(np.full((32, 32), 77, np.float32)) == 0.0
    noise = np.random.default_rng(0).integers(0, 256, (512, 512)).astype(np.float32)
    assert structure.entropy_bits(noise) == pytest.approx(8.0, abs=0.01)
    two_levels = np.zeros((8, 8), np.float32)
    two_levels[:4] = 200
    assert structure.entropy_bits(two_levels) == pytest.approx(1.0)


def test_histogram_gaps_measures_posterisation(astronaut):
    planes = np.ascontiguousarray(np.moveaxis(astronaut, -1, 0))
    assert structure.histogram_gaps(planes) < 0.02  # a photo fills its level range
    assert structure.histogram_gaps(planes & 0xFE) == pytest.approx(0.5, abs=0.02)  # odd levels all empty
    assert structure.histogram_gaps(planes & 0xF0) == pytest.approx(15 / 16, abs=0.02)  # 16 levels: bands
    assert structure.histogram_gaps(np.full((3, 8, 8), 40, np.uint8)) == 0.0
    one_outlier = np.zeros((1, 100, 100), np.uint8)
    one_outlier[0, 0, 0] = 255  # outside the 1-99 % range: not a gap of the frame
    assert structure.histogram_gaps(one_outlier) == 0.0
    assert features(astronaut).single["histogram_gaps"] == structure.histogram_gaps(planes)


def test_high_frequency_share_of_noise_and_constant():
    noise = np.random.default_rng(1).normal(128, 30, (256, 256)).astype(np.float32)
    # white noise spreads evenly: the share is the area beyond radius 0.125 in the [0, 0.5]² quarter plane
    expected = 1 - (math.pi * 0.125**2 / 4) / 0.25
    assert structure.hf_energy_share(noise) == pytest.approx(expected, abs=0.01)
    assert structure.hf_energy_share(np.full((64, 64), 9, np.float32)) == 0.0


def test_edges_of_a_step():
    y = np.zeros((64, 64), np.float32)
    y[:, 32:] = 200  # a vertical step: the two columns beside it are strong-gradient pixels
    assert structure.edge_density(y) == pytest.approx(2 / 62)
    assert structure.edge_density(np.zeros((64, 64), np.float32)) == 0.0


# --- robustness ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((64, 64, 3), np.uint8),
        np.full((64, 64, 3), 255, np.uint8),
        np.random.default_rng(5).integers(0, 256, (8, 8, 3), dtype=np.uint8),
        np.full((8, 8, 3), 255, np.uint8),
        np.zeros((1, 1, 3), np.uint8),
        np.random.default_rng(6).integers(0, 256, (2, 5, 3), dtype=np.uint8),
        np.random.default_rng(7).integers(0, 256, (13, 300, 3), dtype=np.uint8),
    ],
    ids=["black", "white", "noise8", "white8", "1x1", "2x5", "13x300"],
)
def test_never_nan(frame):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        origin = features(np.ascontiguousarray(255 - frame))
        row = frame_metrics(features(frame), origin, features(frame.copy()))
    assert set(row) == set(COLUMNS)
    for key, value in row.items():
        assert not math.isnan(value), key
        if not key.startswith("psnr_"):
            assert math.isfinite(value), key
    assert row["psnr_to_prev"] == math.inf


def test_features_are_immutable_and_thread_safe(astronaut, chelsea):
    frames = [astronaut, chelsea, noisy(astronaut, 10), gaussian_blur(chelsea, 2)]
    origin = features(astronaut)
    serial = [frame_metrics(features(f), origin, None) for f in frames]
    results: dict[int, list[dict[str, float]]] = {}

    def work(i: int) -> None:
        results[i] = [frame_metrics(features(f), origin, None) for f in frames for _ in range(2)][::2]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(3):
        assert results[i] == serial
    with pytest.raises(ValueError):
        origin.planes[0, 0, 0] = 1
    with pytest.raises(TypeError):
        origin.single["sharpness"] = 0.0  # type: ignore[index]


def test_features_do_not_alias_the_frame(astronaut):
    frame = astronaut.copy()
    feats = features(frame)
    before = frame_metrics(feats, feats, None)
    frame[:] = 0  # the caller reuses its buffer
    assert frame_metrics(feats, feats, None) == before
    assert feats.planes.max() > 0


def test_contrast_rms_is_the_luma_spread() -> None:
    from driftloop.metrics import FrameFeatures, frame_metrics

    flat = np.full((32, 32, 3), 90, np.uint8)
    half = flat.copy()
    half[:, 16:] = 170  # luma 90 and 170 on halves: std 40
    flat_row = frame_metrics(FrameFeatures.of(flat), FrameFeatures.of(flat), None)
    half_row = frame_metrics(FrameFeatures.of(half), FrameFeatures.of(half), None)
    assert flat_row["contrast_rms"] == pytest.approx(0.0, abs=1e-6)
    assert half_row["contrast_rms"] == pytest.approx(40.0, abs=0.05)
