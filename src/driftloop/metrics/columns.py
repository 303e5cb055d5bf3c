"""Stable metric column names and their one-line descriptions (units included).

Users plot these names, so they never change meaning; a new definition gets a new name. Pairwise metrics
come in two flavours: ``*_to_origin`` (against frame 0) and ``*_to_prev`` (against the previous frame,
absent for frame 0).
"""

from __future__ import annotations

_PAIRWISE = {
    "psnr": "Peak signal-to-noise ratio over RGB, dB (inf when identical)",
    "ssim": "SSIM of the BT.601 luma, 11×11 Gaussian window σ=1.5 (Wang et al. 2004), −1..1 (1 = identical)",
    "mae": "Mean absolute RGB difference, 8-bit levels 0..255",
    "phash": "Hamming distance of 64-bit DCT perceptual hashes, bits 0..64",
}
_TARGETS = {"origin": "the original (frame 0)", "prev": "the previous frame"}

COLUMNS: dict[str, str] = {}
for _name, _text in _PAIRWISE.items():
    for _target, _what in _TARGETS.items():
        COLUMNS[f"{_name}_to_{_target}"] = f"{_text}, vs {_what}"

COLUMNS.update(
    {
        "lab_l_mean": "Mean CIELAB lightness L* (D65), 0..100",
        "lab_a_mean": "Mean CIELAB a* (+ red, − green)",
        "lab_b_mean": "Mean CIELAB b* (+ yellow, − blue); its rise is the 'orange tint'",
        "lab_chroma_mean": "Mean per-pixel CIELAB chroma C*ab = √(a*²+b*²)",
        "lab_hue_deg": (
            "Hue angle h_ab of the mean a*, b*, degrees 0..360 (0 red, 90 yellow); noisy when near grey"
        ),
        "lab_l_delta": "lab_l_mean − origin's lab_l_mean, L* units",
        "lab_a_delta": "lab_a_mean − origin's lab_a_mean, a* units",
        "lab_b_delta": "lab_b_mean − origin's lab_b_mean, b* units (> 0: yellower than the original)",
        "lab_delta_e": "CIE76 ΔE*ab between the frame's and the origin's mean L*a*b* colours",
        "hsv_saturation_mean": "Mean HSV saturation (max−min)/max, 0..1",
        "colourfulness": "Hasler–Süsstrunk colourfulness M, 8-bit units (0 = grey)",
        "white_cast": (
            "Mean (R+G)/2 − B over bright near-neutral pixels (HSV V>0.7, S<0.25), 8-bit levels; "
            "> ~25 reads yellow, 0 if there are none"
        ),
        "white_cast_pixels": "Share of pixels white_cast is computed over, 0..1",
        "cct_kelvin": "Correlated colour temperature of the mean linear colour (McCamy), K, 1000..25000",
        "sharpness": "Variance of the 4-neighbour Laplacian of the luma, (8-bit levels)²",
        "edge_density": "Share of pixels with Sobel gradient > 12 levels/pixel, 0..1",
        "entropy_bits": "Shannon entropy of the 8-bit luma histogram, bits 0..8",
        "contrast_rms": "RMS contrast: standard deviation of the luma, 8-bit levels",
        "hf_energy_share": "Share of luma (DCT) spectral power above 1/8 cycle/pixel (¼ Nyquist), 0..1",
        "histogram_gaps": (
            "Posterisation: share of empty 8-bit levels inside each RGB channel's 1–99 % range, "
            "mean of R, G, B, 0..1 (0 = smooth; histogram matching leaves comb-like gaps)"
        ),
    }
)

_PERCEPTUAL = {
    "lpips": "LPIPS distance (AlexNet, v0.1), 0 = identical, larger = more different",
    "clip_cosine": "Cosine similarity of CLIP image embeddings, −1..1 (1 = same)",
    "dino_cosine": "Cosine similarity of DINOv2 CLS embeddings, −1..1 (1 = same)",
}
PERCEPTUAL_COLUMNS: dict[str, str] = {
    f"{_name}_to_{_target}": f"{_text}, vs {_what}"
    for _name, _text in _PERCEPTUAL.items()
    for _target, _what in _TARGETS.items()
}

ALL_COLUMNS: dict[str, str] = {**COLUMNS, **PERCEPTUAL_COLUMNS}
