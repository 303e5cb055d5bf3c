"""Face measures: pure geometry on synthetic landmarks, and MediaPipe's face mesh on a real photograph.

The photograph is scikit-image's ``data.astronaut()`` (Eileen Collins, 512×512, face ≈ 90 px wide).
"""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from PIL import Image

from driftloop.errors import DriftloopError
from driftloop.metrics import face
from driftloop.metrics.face import FACE_COLUMNS, FaceMeasurer, FaceModelError, first_lost_step

pytestmark = pytest.mark.filterwarnings("ignore:SymbolDatabase.GetPrototype:UserWarning")

MEASURES = [c for c in FACE_COLUMNS if c != "face_found"]


# ----------------------------------------------------------------------------------------- pure functions


def test_first_lost_step() -> None:
    assert first_lost_step({0: 1, 1: 1, 2: 0, 3: 1}) == 2
    assert first_lost_step({0: 0.0, 1: 0.0, 2: 1.0}) is None  # never present at the start
    assert first_lost_step({0: 0.0, 1: 0.0}) is None
    assert first_lost_step({0: 1.0, 1: 1.0, 2: 1.0}) is None  # never lost
    assert first_lost_step({}) is None
    assert first_lost_step({1: 1.0, 2: 0.0}) is None  # no step 0: unknown start
    assert first_lost_step({3: 0.0, 0: 1.0, 7: 0.0, 5: 1.0}) == 3  # unordered, gaps
    assert first_lost_step({0: 1.0, 1: math.nan, 2: 0.0}) == 2  # NaN = not measured, skipped


def _synthetic_landmarks() -> np.ndarray:
    """A 468-point mesh with the used points placed by hand (pixels, y down), all else at the nose."""
    pts = np.tile([100.0, 120.0], (468, 1))

    def put(i: int, x: float, y: float) -> None:
        pts[i] = (x, y)

    # eye centres at (80, 100) and (120, 100): IOD = 40
    put(33, 70, 100), put(133, 90, 100), put(263, 130, 100), put(362, 110, 100)
    for (up, lo), x in zip(face.EYELID_PAIRS[0], (76, 80, 84), strict=True):
        put(up, x, 96), put(lo, x, 104)  # opening 8 px = 0.2 IOD
    for (up, lo), x in zip(face.EYELID_PAIRS[1], (124, 120, 116), strict=True):
        put(up, x, 97), put(lo, x, 103)  # opening 6 px = 0.15 IOD
    for (up, lo), x in zip(face.BROW_PAIRS[0], (74, 80, 86), strict=True):
        put(up, x, 86), put(lo, x, 90)  # thickness 4 px = 0.1 IOD, midline y=88: height 12 px = 0.3 IOD
    for (up, lo), x in zip(face.BROW_PAIRS[1], (126, 120, 114), strict=True):
        put(up, x, 85), put(lo, x, 91)  # thickness 6 px = 0.15 IOD, height 12 px = 0.3 IOD
    put(61, 80, 140), put(291, 122, 140)  # mouth 42 px = 1.05 IOD
    put(10, 100, 60), put(152, 100, 180), put(234, 50, 110), put(454, 150, 110)  # 120 / 100
    return pts


def test_measures_from_synthetic_landmarks() -> None:
    m = face.measures_from_landmarks(_synthetic_landmarks())
    assert set(m) == set(FACE_COLUMNS)
    assert m["face_found"] == 1.0
    assert m["face_eyebrow_thickness"] == pytest.approx((0.1 + 0.15) / 2)
    assert m["face_eyebrow_height"] == pytest.approx(0.3)
    assert m["face_eye_opening"] == pytest.approx((0.2 + 0.15) / 2)
    assert m["face_mouth_width"] == pytest.approx(1.05)
    assert m["face_aspect"] == pytest.approx(1.2)
    sides = face.side_measures(_synthetic_landmarks())
    assert sides["right"]["eye_opening"] == pytest.approx(0.2)
    assert sides["left"]["eyebrow_thickness"] == pytest.approx(0.15)


@pytest.mark.parametrize("degrees", [-35.0, 12.0, 90.0, 180.0])
def test_measures_ignore_rotation_translation_and_scale(degrees: float) -> None:
    pts = _synthetic_landmarks()
    a = math.radians(degrees)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    moved = 2.5 * pts @ rot.T + (300.0, -40.0)
    assert face.measures_from_landmarks(moved) == pytest.approx(face.measures_from_landmarks(pts))


def test_measures_accept_478_points_with_z() -> None:
    pts = np.hstack([_synthetic_landmarks(), np.zeros((468, 1))])
    pts = np.vstack([pts, np.zeros((10, 3))])  # iris points, unused
    assert face.measures_from_landmarks(pts) == pytest.approx(face.measures_from_landmarks(pts[:468, :2]))


def test_measures_reject_bad_landmarks() -> None:
    with pytest.raises(ValueError, match="N×2"):
        face.measures_from_landmarks(np.zeros((68, 2)))
    bad = _synthetic_landmarks()
    bad[5, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        face.measures_from_landmarks(bad)
    with pytest.raises(ValueError, match="eye centres coincide"):
        face.measures_from_landmarks(np.zeros((468, 2)))


def test_columns_are_documented() -> None:
    assert list(FACE_COLUMNS) == [
        "face_found",
        "face_eyebrow_thickness",
        "face_eyebrow_height",
        "face_eye_opening",
        "face_mouth_width",
        "face_aspect",
    ]
    assert all(isinstance(v, str) and v for v in FACE_COLUMNS.values())


def test_missing_or_broken_task_bundle_is_a_clear_error(tmp_path) -> None:
    _require_model()
    missing = tmp_path / "nope.task"
    with pytest.raises(FaceModelError, match=r"nope\.task not found") as info:
        FaceMeasurer(model_path=missing)
    assert isinstance(info.value, DriftloopError)
    ok, why = face.available(missing)
    assert not ok and "not found" in why
    broken = tmp_path / "face_landmarker.task"
    broken.write_bytes(b"not a zip")
    with pytest.raises(FaceModelError, match="could not load"):
        FaceMeasurer(model_path=tmp_path)  # a folder: its face_landmarker.task


# ---------------------------------------------------------------------------- the real model, a real face


def _require_model() -> None:
    """The dev install includes MediaPipe: its absence is a broken set-up, not a reason to skip."""
    ok, why = face.available()
    if not ok:
        pytest.fail(f"face model unavailable ({why}); install the dev extras: pip install -e '.[dev]'")


@pytest.fixture(scope="module")
def measurer():
    _require_model()
    with FaceMeasurer() as m:
        yield m


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    return data.astronaut()


def _resize(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.asarray(Image.fromarray(frame).resize((width, height), Image.Resampling.LANCZOS))


def test_available_names_the_library(measurer: FaceMeasurer) -> None:
    ok, why = face.available()
    assert ok and why.startswith("MediaPipe ")
    assert measurer.backend in ("face_mesh", "tasks")


def test_real_face_measures_are_plausible(measurer: FaceMeasurer, astronaut: np.ndarray) -> None:
    m = measurer.measure(astronaut)
    assert set(m) == set(FACE_COLUMNS)
    assert m["face_found"] == 1.0
    assert all(math.isfinite(m[c]) for c in MEASURES)
    assert 0.02 < m["face_eyebrow_thickness"] < 0.25
    assert 0.15 < m["face_eyebrow_height"] < 0.5
    assert 0.05 < m["face_eye_opening"] < 0.6
    assert 0.5 < m["face_mouth_width"] < 1.5
    assert 1.0 < m["face_aspect"] < 1.8


def test_real_face_is_left_right_symmetric(measurer: FaceMeasurer, astronaut: np.ndarray) -> None:
    points = measurer.landmarks(astronaut)
    assert points is not None and points.shape == (478, 2)
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    assert 150 < x0 < x1 < 300 and 50 < y0 < y1 < 200  # the face is where the photo has it
    sides = face.side_measures(points)
    for key, value in sides["right"].items():
        other = sides["left"][key]
        assert abs(value - other) <= 0.2 * (value + other) / 2, (key, value, other)


@pytest.mark.parametrize("size", [384, 256])
def test_uniform_scale_barely_changes_normalised_measures(
    measurer: FaceMeasurer, astronaut: np.ndarray, size: int
) -> None:
    base = measurer.measure(astronaut)
    small = measurer.measure(_resize(astronaut, size, size))
    assert small["face_found"] == 1.0
    tolerance = {
        "face_eyebrow_thickness": 0.015,
        "face_eyebrow_height": 0.03,
        "face_eye_opening": 0.02,
        "face_mouth_width": 0.06,
        "face_aspect": 0.04,
    }
    for column, tol in tolerance.items():
        assert abs(small[column] - base[column]) <= tol, (column, base[column], small[column])


def test_vertical_stretch_raises_face_aspect_and_vertical_measures(
    measurer: FaceMeasurer, astronaut: np.ndarray
) -> None:
    base = measurer.measure(astronaut)
    tall = measurer.measure(_resize(astronaut, round(512 * 1.15), 512))
    assert tall["face_found"] == 1.0
    assert tall["face_aspect"] > base["face_aspect"] * 1.03
    assert tall["face_eye_opening"] > base["face_eye_opening"]
    assert tall["face_eyebrow_height"] > base["face_eyebrow_height"]
    assert abs(tall["face_mouth_width"] - base["face_mouth_width"]) < 0.06  # horizontal: unchanged


def test_horizontal_stretch_lowers_face_aspect(measurer: FaceMeasurer, astronaut: np.ndarray) -> None:
    base = measurer.measure(astronaut)
    wide = measurer.measure(_resize(astronaut, 512, round(512 * 1.15)))
    assert wide["face_found"] == 1.0
    assert wide["face_aspect"] < base["face_aspect"] / 1.03


def test_no_face_gives_face_found_zero_only(measurer: FaceMeasurer) -> None:
    assert measurer.measure(np.full((512, 512, 3), 128, np.uint8)) == {"face_found": 0.0}
    assert measurer.landmarks(np.full((64, 48, 3), 200, np.uint8)) is None
    assert measurer.measure(np.zeros((1, 1, 3), np.uint8)) == {"face_found": 0.0}
    rng = np.random.default_rng(0)
    assert measurer.measure(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)) == {"face_found": 0.0}


def test_face_lost_along_a_fading_chain(measurer: FaceMeasurer, astronaut: np.ndarray) -> None:
    grey = np.full_like(astronaut, 128)
    found = {}
    for step, keep in enumerate((1.0, 0.8, 0.0, 1.0)):
        frame = (keep * astronaut + (1 - keep) * grey).round().astype(np.uint8)
        found[step] = measurer.measure(frame)["face_found"]
    assert found == {0: 1.0, 1: 1.0, 2: 0.0, 3: 1.0}
    assert first_lost_step(found) == 2


def test_views_and_deterministic(measurer: FaceMeasurer, astronaut: np.ndarray) -> None:
    padded = np.zeros((512, 1024, 3), np.uint8)
    padded[:, ::2] = astronaut
    view = padded[:, ::2]  # a non-contiguous view of the same pixels
    assert measurer.measure(view) == measurer.measure(astronaut) == measurer.measure(astronaut.copy())


def test_frame_validation(measurer: FaceMeasurer) -> None:
    with pytest.raises(ValueError, match="uint8"):
        measurer.measure(np.zeros((32, 32, 3), np.float32))
    with pytest.raises(ValueError, match="H×W×3"):
        measurer.measure(np.zeros((32, 32), np.uint8))
    with pytest.raises(TypeError):
        measurer.measure([[0, 0, 0]])  # type: ignore[arg-type]


def test_shared_between_threads(measurer: FaceMeasurer, astronaut: np.ndarray) -> None:
    expected = measurer.measure(astronaut)
    results: list[dict[str, float]] = []

    def work() -> None:
        for _ in range(3):
            results.append(measurer.measure(astronaut))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 9 and all(r == expected for r in results)


def test_closed_measurer_refuses() -> None:
    _require_model()
    m = FaceMeasurer()
    m.close()
    m.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        m.measure(np.zeros((8, 8, 3), np.uint8))


# ------------------------------------------------------------------------ a face must be a face


def test_trusted_face_needs_a_confident_detection_over_the_mesh_and_a_big_enough_face() -> None:
    pts = _synthetic_landmarks()  # centred near (100, 110), 100 px wide, in a 200×200 frame
    box = (0.2, 0.2, 0.6, 0.6)
    assert face.trusted_face(pts, [(0.9, *box)], 200, 200)
    assert not face.trusted_face(pts, [(0.6, *box)], 200, 200)  # the detector is not sure: a dog's muzzle
    assert not face.trusted_face(pts, [], 200, 200)  # the mesh fitted a face the detector did not see
    assert not face.trusted_face(pts, [(0.95, 0.7, 0.7, 0.2, 0.2)], 200, 200)  # a face elsewhere
    assert face.trusted_face(pts, [(0.6, *box), (0.8, *box)], 200, 200)  # the confident one counts
    small = pts * 0.1  # 10 px wide
    assert not face.trusted_face(small, [(0.99, 0.0, 0.0, 1.0, 1.0)], 200, 200)
    assert not face.trusted_face(pts, [(0.99, 0.0, 0.0, 1.0, 1.0)], 2000, 2000)  # 5 % of the frame


def test_a_cat_has_no_face_and_a_photographed_face_has_one() -> None:
    from skimage import data

    ok, why = face.available()
    if not ok:
        pytest.skip(f"MediaPipe's face mesh is not installed here: {why}")
    with FaceMeasurer() as measurer:
        for size in (96, 256):
            cat = np.asarray(Image.fromarray(data.chelsea()).resize((size, size)))
            person = np.asarray(Image.fromarray(data.astronaut()).resize((size, size)))
            assert measurer.measure(cat) == {"face_found": 0.0}
            assert measurer.measure(person)["face_found"] == 1.0


def test_the_face_librarys_log_lines_do_not_reach_the_terminal() -> None:
    import subprocess
    import sys

    ok, why = face.available()
    if not ok:
        pytest.skip(f"MediaPipe's face mesh is not installed here: {why}")
    code = (
        "import sys, numpy as np\n"
        "from driftloop.metrics.face import FaceMeasurer\n"
        "print('before', file=sys.stderr)\n"
        "with FaceMeasurer() as f:\n"
        "    f.measure(np.full((96, 96, 3), 128, np.uint8))\n"
        "print('after', file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.split() == ["before", "after"], out.stderr
