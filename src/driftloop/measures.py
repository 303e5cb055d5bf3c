"""The vocabulary of measures: every metric column, what it means, and how to talk about it.

One record per column name, read by every stage that names a measure: the metric column lists and their
descriptions (:mod:`driftloop.metrics`), the chain summaries and their sentences, the bias card, the plots
and the report. A new measure is one new :class:`Measure` here (plus the function that computes it).

Column names are stable because users plot them: a new definition gets a new name. Pairwise metrics come
in two flavours, ``*_to_origin`` (against frame 0) and ``*_to_prev`` (against the previous frame, absent
for frame 0). This module sits below :mod:`driftloop.metrics` and imports nothing of driftloop.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "COLOUR_DRAINS",
    "DRAIN_SHARE",
    "GREY_CCT",
    "GROUPS",
    "HUE_MIN_CHROMA",
    "HUE_NAMES",
    "HUE_NEGLIGIBLE_DEG",
    "MEASURES",
    "NEGLIGIBLE_LAB",
    "PLOT_LABELS",
    "STEP_MARKS",
    "SUMMARY_STATS",
    "Measure",
    "column_descriptions",
    "summary_columns",
]

# Below this many CIELAB units a net change is not worth a sentence (a just-noticeable colour difference
# is ~1-2.3 ΔE).
NEGLIGIBLE_LAB = 1.0
# The correlated colour temperature of any grey (the D65 white's chromaticity, by McCamy), kelvin.
GREY_CCT = 6503.0
# Colour read right (analysis/colour_reading.py): a chain whose mean per-pixel chroma C* falls by at least
# this share of its start (and by more than NEGLIGIBLE_LAB) is losing its colour, and a measure with a
# ``neutral`` value that moves toward it is said as the colour draining, not as a change of hue or light.
DRAIN_SHARE = 0.25
# Below this chroma of the mean colour √(ā*² + b̄*²) the hue angle of the mean is noise and is not read.
HUE_MIN_CHROMA = 4.0
# Turns of the mean colour's hue smaller than this many degrees are not worth a sentence.
HUE_NEGLIGIBLE_DEG = 5.0
COLOUR_DRAINS = "the colour drains to grey"
# CIELAB hue angles h_ab (degrees) of named hues, for saying where a hue turns (sRGB red is at ~40°, yellow
# at ~102°, green at ~136°, cyan at ~196°, blue at ~306°); a hue is named after the nearest one.
HUE_NAMES: tuple[tuple[float, str], ...] = (
    (0.0, "pink"), (40.0, "red"), (62.0, "orange"), (95.0, "yellow"), (120.0, "yellow-green"),
    (145.0, "green"), (196.0, "cyan"), (250.0, "sky blue"), (300.0, "blue"), (330.0, "purple"),
)  # fmt: skip
# Which metrics module writes a column: "core" (always), "perceptual" (optional networks), "face" (optional
# face mesh); "other" columns are never written by driftloop but read when a table has them.
GROUPS = ("core", "perceptual", "face", "other")


@dataclass(frozen=True)
class Measure:
    """One measure (a metric column) and the words for it.

    The words come in the forms the outputs need, so that no stage writes its own: ``symbol`` names a
    change ("Δb*"); ``name`` is the measure in a summary sentence ("b* (blue–yellow)") and ``noun`` in a
    bias-card verdict ("no reliable b* change"); ``up_word``/``down_word`` read a direction in a table
    ("warmer"/"cooler"); ``up_head``/``down_head`` open a sentence about an image ("the image drifts warmer
    (yellower)"); ``up_verb``/``down_verb`` follow a model's name ("taef2 drifts warmer (yellower)").
    ``title`` and ``axis`` label a plot of the measure. Empty strings: not said about this measure.
    """

    column: str
    description: str  # one line, units included: the documentation of the column
    group: str = "core"  # see GROUPS
    title: str = ""  # plot title: "Mean b* (blue–yellow)"
    axis: str = ""  # plot y-axis label with unit: "b* (CIELAB; − blue, + yellow)"
    symbol: str = ""  # a change of it: "Δb*"
    unit: str = ""  # appended to numbers: " K"
    name: str = ""  # in summary sentences: "b* (blue–yellow)"
    noun: str = ""  # in bias-card verdicts: "b* (blue–yellow)"
    up_word: str = ""  # a rise, in a word or two: "warmer"
    down_word: str = ""
    up_head: str = ""  # sentence head when it rises: "the image drifts warmer (yellower)"
    down_head: str = ""
    up_verb: str = ""  # predicate after a model's name when it rises: "drifts warmer (yellower)"
    down_verb: str = ""
    negligible: float = 0.0  # |total change| below this is not worth a sentence (0: never)
    neutral: float | None = None  # its value on a grey image (None: no such value); see COLOUR_DRAINS


def _pairwise(
    family: str, description: str, title: str, axis: str, group: str = "core"
) -> dict[str, Measure]:
    """The ``*_to_origin`` and ``*_to_prev`` records of one pairwise metric."""
    targets = {"origin": ("the original (frame 0)", "the original"), "prev": ("the previous frame",) * 2}
    return {
        f"{family}_to_{target}": Measure(
            f"{family}_to_{target}", f"{description}, vs {what}", group, f"{title} to {short}", axis
        )
        for target, (what, short) in targets.items()
    }


def _colour(column: str, description: str, title: str, axis: str, symbol: str, name: str, noun: str,
            words: tuple[str, str], heads: tuple[str, str], verbs: tuple[str, str], unit: str = "",
            negligible: float = 0.0, neutral: float | None = None) -> Measure:  # fmt: skip
    """A measure with every form of words (the colour measures summaries and the card talk about)."""
    return Measure(column, description, "core", title, axis, symbol, unit, name, noun, *words, *heads, *verbs,
                   negligible=negligible, neutral=neutral)  # fmt: skip


def _card(column: str, description: str, symbol: str, noun: str, verbs: tuple[str, str],
          words: tuple[str, str], group: str = "core", title: str = "", axis: str = "",
          unit: str = "") -> Measure:  # fmt: skip
    """A measure the bias card talks about (no summary sentences)."""
    return Measure(column, description, group, title, axis, symbol, unit, noun=noun, up_word=words[0],
                   down_word=words[1], up_verb=verbs[0], down_verb=verbs[1])  # fmt: skip


def _plain(column: str, description: str, title: str = "", axis: str = "", group: str = "core") -> Measure:
    return Measure(column, description, group, title, axis)


_CONTRAST_WORDS = dict(symbol="Δcontrast", noun="contrast", verbs=("raises contrast", "lowers contrast"),
                       words=("more contrast", "less contrast"))  # fmt: skip

_RECORDS: list[Measure] = [
    *_pairwise("psnr", "Peak signal-to-noise ratio over RGB, dB (inf when identical)", "PSNR",
               "PSNR (dB; higher = closer)").values(),
    *_pairwise("ssim", "SSIM of the BT.601 luma, 11×11 Gaussian window σ=1.5 (Wang et al. 2004), −1..1 "
               "(1 = identical)", "SSIM", "SSIM (1 = identical)").values(),
    *_pairwise("mae", "Mean absolute RGB difference, 8-bit levels 0..255", "Mean absolute error",
               "MAE (8-bit levels; 0 = identical)").values(),
    *_pairwise("phash", "Hamming distance of 64-bit DCT perceptual hashes, bits 0..64",
               "Perceptual-hash distance", "pHash distance (bits)").values(),
    _colour("lab_l_mean", "Mean CIELAB lightness L* (D65), 0..100", "Mean lightness L*",
            "L* (CIELAB, 0–100)", "ΔL*", "L* (lightness)", "lightness (L*)", ("brighter", "darker"),
            ("the image gets brighter", "the image gets darker"),
            ("makes images brighter", "makes images darker"), negligible=NEGLIGIBLE_LAB),
    _colour("lab_a_mean", "Mean CIELAB a* (+ red, − green)", "Mean a* (green–red)",
            "a* (CIELAB; − green, + red)", "Δa*", "a* (green–red)", "a* (green–red)", ("redder", "greener"),
            ("the image drifts redder", "the image drifts greener"), ("drifts redder", "drifts greener"),
            negligible=NEGLIGIBLE_LAB, neutral=0.0),
    _colour("lab_b_mean", "Mean CIELAB b* (+ yellow, − blue); its rise is the 'orange tint'",
            "Mean b* (blue–yellow)", "b* (CIELAB; − blue, + yellow)", "Δb*", "b* (blue–yellow)",
            "b* (blue–yellow)", ("warmer", "cooler"),
            ("the image drifts warmer (yellower)", "the image drifts cooler (bluer)"),
            ("drifts warmer (yellower)", "drifts cooler (bluer)"), negligible=NEGLIGIBLE_LAB, neutral=0.0),
    _colour("lab_chroma_mean", "Mean per-pixel CIELAB chroma C*ab = √(a*²+b*²)", "Mean chroma C*",
            "C* (CIELAB)", "ΔC*", "C* (chroma)", "chroma", ("more saturated", "greyer"),
            ("colours get more saturated", "colours get less saturated (greyer)"),
            ("makes colours more saturated (chroma)", "makes colours greyer (chroma)"),
            negligible=NEGLIGIBLE_LAB),
    _plain("lab_hue_deg", "Hue angle h_ab of the mean a*, b*, degrees 0..360 (0 red, 90 yellow); noisy when "
           "near grey", "Mean hue angle", "hue angle h (degrees)"),
    _plain("lab_hue_chroma", "Chroma of the mean colour √(ā*²+b̄*²): how strongly the whole image leans to "
           "the hue lab_hue_deg names; below ~4 that hue is noise", "Chroma of the mean colour",
           "C* of the mean a*, b* (CIELAB)"),
    _plain("lab_l_delta", "lab_l_mean − origin's lab_l_mean, L* units", "ΔL* from the original",
           "ΔL* (CIELAB)"),
    _plain("lab_a_delta", "lab_a_mean − origin's lab_a_mean, a* units", "Δa* from the original",
           "Δa* (CIELAB)"),
    _plain("lab_b_delta", "lab_b_mean − origin's lab_b_mean, b* units (> 0: yellower than the original)",
           "Δb* from the original", "Δb* (CIELAB)"),
    _plain("lab_delta_e", "CIE76 ΔE*ab between the frame's and the origin's mean L*a*b* colours",
           "Colour shift of the mean colour from the original", "ΔE*ab (CIE76)"),
    _colour("hsv_saturation_mean", "Mean HSV saturation (max−min)/max, 0..1", "Mean HSV saturation",
            "saturation (0–1)", "Δsaturation", "HSV saturation", "saturation",
            ("more saturated", "less saturated"),
            ("colours get more saturated", "colours get less saturated"),
            ("raises saturation", "lowers saturation")),
    _colour("colourfulness", "Hasler–Süsstrunk colourfulness M, 8-bit units (0 = grey)", "Colourfulness",
            "Hasler–Süsstrunk M (8-bit units)", "Δcolourfulness", "colourfulness", "colourfulness",
            ("more colourful", "duller"), ("the image gets more colourful", "the image gets duller"),
            ("makes images more colourful", "makes images duller")),
    _colour("white_cast", "Mean (R+G)/2 − B over bright near-neutral pixels (HSV V>0.7, S<0.25), 8-bit "
            "levels; > ~25 reads yellow, 0 if there are none", "White cast",
            "(R+G)/2 − B of bright neutrals (8-bit levels)", "Δwhite cast", "white cast", "white cast",
            ("yellower whites", "bluer whites"), ("whites turn yellower", "whites turn bluer"),
            ("turns whites yellower", "turns whites bluer"), neutral=0.0),
    _plain("white_cast_pixels", "Share of pixels white_cast is computed over, 0..1",
           "Pixels the white cast is measured on", "share of pixels (0–1)"),
    _colour("cct_kelvin", "Correlated colour temperature of the mean linear colour (McCamy), K, 1000..25000",
            "Correlated colour temperature", "CCT (K)", "ΔCCT", "colour temperature (CCT)",
            "colour temperature", ("cooler light", "warmer light"),
            ("the colour temperature rises (cooler, bluer light)",
             "the colour temperature falls (warmer, more orange light)"),
            ("raises the colour temperature (cooler, bluer light)",
             "lowers the colour temperature (warmer, more orange light)"), unit=" K", neutral=GREY_CCT),
    _card("sharpness", "Variance of the 4-neighbour Laplacian of the luma, (8-bit levels)²", "Δsharpness",
          "sharpness", ("sharpens images", "blurs images"), ("sharper", "blurrier"),
          title="Sharpness (Laplacian variance)", axis="variance of the Laplacian ((8-bit levels)²)"),
    _card("edge_density", "Share of pixels with Sobel gradient > 12 levels/pixel, 0..1", "Δedge density",
          "edge density", ("adds edges", "removes edges (smoother)"), ("more edges", "fewer edges"),
          title="Edge density", axis="share of edge pixels (0–1)"),
    _card("entropy_bits", "Shannon entropy of the 8-bit luma histogram, bits 0..8", "Δentropy",
          "luma entropy", ("raises luma entropy (busier)", "lowers luma entropy (flatter)"),
          ("busier", "flatter"), title="Entropy of the luma histogram", axis="entropy (bits, 0–8)",
          unit=" bits"),
    _card("contrast_rms", "RMS contrast: standard deviation of the luma, 8-bit levels", **_CONTRAST_WORDS,
          title="RMS contrast", axis="standard deviation of the luma (8-bit levels)"),
    _plain("hf_energy_share", "Share of luma (DCT) spectral power above 1/8 cycle/pixel (¼ Nyquist), 0..1",
           "High-frequency energy share", "share of spectral energy (0–1)"),
    _card("histogram_gaps", "Posterisation: share of empty 8-bit levels inside each RGB channel's 1–99 % "
          "range, mean of R, G, B, 0..1 (0 = smooth; histogram matching leaves comb-like gaps)", "Δgaps",
          "histogram gaps", ("posterises (gaps in the histogram)", "fills histogram gaps"),
          ("more banding", "smoother"), title="Histogram gaps (posterisation)",
          axis="share of empty levels (0–1)"),
    *_pairwise("lpips", "LPIPS distance (AlexNet, v0.1), 0 = identical, larger = more different", "LPIPS",
               "LPIPS (0 = identical)", "perceptual").values(),
    *_pairwise("clip_cosine", "Cosine similarity of CLIP image embeddings, −1..1 (1 = same)",
               "CLIP similarity", "cosine similarity (1 = identical)", "perceptual").values(),
    *_pairwise("dino_cosine", "Cosine similarity of DINOv2 CLS embeddings, −1..1 (1 = same)",
               "DINOv2 similarity", "cosine similarity (1 = identical)", "perceptual").values(),
    _plain("face_found", "1.0 if a face was detected in the frame, else 0.0 (then no other face_* column is "
           "given)", group="face"),
    _card("face_eyebrow_thickness", "Eyebrow thickness: upper-to-lower brow contour along the face's "
          "vertical axis, mean of both brows, in inter-ocular distances (IOD)", "Δeyebrow thickness",
          "eyebrow thickness", ("thickens eyebrows", "thins eyebrows"), ("thicker brows", "thinner brows"),
          group="face"),
    _card("face_eyebrow_height", "Eyebrow height: eye centre (mid eye corners) to the brow's midline along "
          "the face's vertical axis, mean of both sides, IOD", "Δeyebrow height", "eyebrow height",
          ("raises eyebrows", "lowers eyebrows"), ("higher brows", "lower brows"), group="face"),
    _card("face_eye_opening", "Eye opening: upper-to-lower eyelid along the face's vertical axis (3 point "
          "pairs), mean of both eyes, IOD", "Δeye opening", "eye opening",
          ("opens eyes wider", "narrows eyes"), ("wider eyes", "narrower eyes"), group="face"),
    _card("face_mouth_width", "Mouth width: distance between the mouth corners, IOD", "Δmouth width",
          "mouth width", ("widens mouths", "narrows mouths"), ("wider mouths", "narrower mouths"),
          group="face"),
    _card("face_aspect", "Face height (mesh top, mid forehead → chin) / face width (cheek to cheek), ratio",
          "Δface aspect", "face aspect (height/width)", ("makes faces longer", "makes faces wider"),
          ("longer faces", "wider faces"), group="face"),
    _card("contrast", "Contrast, as tables made by other tools name it (read by the bias card, not written)",
          **_CONTRAST_WORDS, group="other"),
]  # fmt: skip

# Every measure by column name, in the order the metrics tables list them.
MEASURES: dict[str, Measure] = {m.column: m for m in _RECORDS}

# column → (plot title, y-axis label with unit), for the measures that have a plot of their own.
PLOT_LABELS: dict[str, tuple[str, str]] = {c: (m.title, m.axis) for c, m in MEASURES.items() if m.title}


def column_descriptions(group: str) -> dict[str, str]:
    """column → one-line description of the columns of one group (see :data:`GROUPS`), in table order."""
    if group not in GROUPS:
        raise ValueError(f"unknown measure group {group!r}; one of {', '.join(GROUPS)}")
    return {c: m.description for c, m in MEASURES.items() if m.group == group}


TABLE_ORDER: tuple[str, ...] = (*column_descriptions("core"), *column_descriptions("perceptual"))
"""The order of metric columns in a run's table (the export, the report): the standard suite, then the
perceptual scores; other measured columns (faces) follow in the order they were stored."""

SUMMARY_STATS: tuple[str, ...] = ("final", "change", "rate")
"""What a chain's summary says of a measure, as the column ``MEASURE.STAT``: its value at the last step,
that minus its value at step 0, and its per-step rate."""
STEP_MARKS: tuple[str, ...] = ("half_life", "fixed_point", "face_lost", "last_step")
"""A chain's marked steps, each a summary column of its own: the first step with SSIM to the original
below 0.5, the first step of a fixed point, the first step without the face, and its last step."""


def summary_columns() -> tuple[str, ...]:
    """Every number a chain's summary can store, by column name: the marked steps, then each measure's
    statistics (the columns of the workspace's ``chain_summaries`` table and of the gallery's table)."""
    return (*STEP_MARKS, *(f"{m}.{s}" for m in MEASURES for s in SUMMARY_STATS))
