"""Face measures: landmark geometry of the face in a frame, normalised by the inter-ocular distance.

The landmarks come from MediaPipe's face mesh (478 points with the attention model: the 468-point mesh plus
10 iris points), run on the CPU with the model files that ship inside the wheel, so nothing is downloaded.
Two back-ends, tried in this order:

* ``tasks`` — the MediaPipe Tasks ``FaceLandmarker`` with a ``face_landmarker.task`` bundle, used when a
  bundle is passed as ``model_path=`` (or, when the legacy API below is missing, found at
  ``$DRIFTLOOP_MODEL_DIR/mediapipe/face_landmarker.task``). The official ``mediapipe`` wheels from 0.10.30
  on have only this API and ship no model, so they need the bundle.
* ``face_mesh`` — the legacy ``mediapipe.solutions.face_mesh.FaceMesh`` (``refine_landmarks=True``,
  ``static_image_mode=True``: every frame is detected afresh, no tracking between calls), whose
  ``.tflite`` files are inside the wheel. ``pip install 'driftloop[faces]'`` installs ``rf-mediapipe``,
  a NumPy-2 build of MediaPipe 0.10.14 that still has it (it installs the ``mediapipe`` module).

Geometry (image pixels, x right, y down; "right"/"left" are the subject's own, so the subject's right eye
is on the image's left). Mesh indices:

======================  ========================================  ========================================
feature                 subject's right                           subject's left
======================  ========================================  ========================================
eye corners (out, in)   33, 133                                   263, 362
upper / lower eyelid    160/144, 159/145, 158/153                 387/373, 386/374, 385/380
eyebrow upper / lower   63/53, 105/52, 66/65 (middle 3 pairs)     293/283, 334/282, 296/295
mouth corners           61 and 291
face top / chin         10 (top of the mesh, mid forehead), 152
face sides (cheeks)     234 and 454
======================  ========================================  ========================================

* eye centre: the midpoint of an eye's two corners (anatomically fixed, unlike the iris, which moves with the
  gaze); **IOD**, the inter-ocular distance, is the distance between the two eye centres.
* "vertical" distances are measured along the face's own vertical axis: the unit vector perpendicular to the
  line through the eye centres, pointing towards the chin — so a tilted (rolled) head measures the same.
* ``face_eyebrow_thickness``: mean vertical distance from the eyebrow's upper contour to its lower contour
  over the three middle point pairs, / IOD, mean of both brows.
* ``face_eyebrow_height``: vertical distance from the eye centre up to the eyebrow's midline (mean of its six
  middle contour points), / IOD, mean of both sides.
* ``face_eye_opening``: mean vertical distance between the upper and the lower eyelid over three point pairs,
  / IOD, mean of both eyes (≈ 0, possibly slightly negative, for a closed eye).
* ``face_mouth_width``: distance between the mouth corners / IOD.
* ``face_aspect``: face height (top of mesh 10 → chin 152) / face width (cheek 234 → cheek 454); a ratio
  of two lengths, so already free of scale.

Typical values for an adult face seen from the front: thickness 0.05–0.15, brow height 0.2–0.45, eye
opening 0.1–0.25, mouth width 0.8–1.3 (more when smiling), aspect 1.0–1.4.

Usage::

    with FaceMeasurer() as faces:              # loads the model once (~50 ms)
        row = faces.measure(frame)             # {"face_found": 1.0, "face_eyebrow_thickness": ..., ...}

**A face must pass two tests** before it is measured, because the mesh fits a face to anything roughly
face-like (a dog's muzzle, a pattern): MediaPipe's face *detector* (BlazeFace, full range, in the same
wheel) must find a face with a score of at least :data:`MIN_FACE_SCORE` whose box holds the mesh's
centre, and the mesh must be at least :data:`MIN_FACE_SHARE` of the frame's shorter side wide and
:data:`MIN_FACE_PX` pixels (:func:`trusted_face`). A mesh that fails either is no face.

``measure`` returns ``{"face_found": 0.0}`` alone when no face is found: the other columns are absent, not
NaN. :func:`available` says whether a measurer can be built, and why not. A :class:`FaceMeasurer` wraps one
MediaPipe graph, which is not re-entrant: calls are serialised by a lock, so one measurer may be shared by
threads, but for parallel work make one per thread. The geometry itself (:func:`measures_from_landmarks`,
:func:`side_measures`) is pure NumPy.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from driftloop.errors import WeightsError
from driftloop.measures import column_descriptions

__all__ = [
    "FACE_COLUMNS",
    "FaceMeasurer",
    "FaceModelError",
    "available",
    "first_lost_step",
    "measures_from_landmarks",
    "side_measures",
    "trusted_face",
]

#: Least face-detector score for a face to count (the detector's own default is 0.5; a photographed face
#: scores about 0.9 even at 64-128 px, faces fitted to animals and patterns score lower or are not found).
MIN_FACE_SCORE = 0.75
#: Least face width (cheek to cheek, 234 → 454) as a share of the frame's shorter side, and in pixels.
MIN_FACE_SHARE = 0.08
MIN_FACE_PX = 16.0

Detection = tuple[float, float, float, float, float]  # (score, x, y, w, h), box relative to the frame

FACE_COLUMNS: dict[str, str] = column_descriptions("face")

N_LANDMARKS = 468  # the face mesh; the attention model adds 10 iris points (478), unused here

# (subject's right, subject's left)
EYE_CORNERS = ((33, 133), (263, 362))
EYELID_PAIRS = (((160, 144), (159, 145), (158, 153)), ((387, 373), (386, 374), (385, 380)))
BROW_PAIRS = (((63, 53), (105, 52), (66, 65)), ((293, 283), (334, 282), (296, 295)))
MOUTH_CORNERS = (61, 291)
FACE_TOP_CHIN = (10, 152)
FACE_SIDES = (234, 454)

TASK_FILE = "face_landmarker.task"
_TASK_FOLDER = "mediapipe"
_INSTALL_HINT = (
    "install the face extra: pip install 'driftloop[faces]' (rf-mediapipe, MediaPipe's face mesh with its "
    f"model inside the wheel), or with the official mediapipe>=0.10.30 put {TASK_FILE} in "
    f"$DRIFTLOOP_MODEL_DIR/{_TASK_FOLDER}/"
)


class FaceModelError(WeightsError):
    """The face landmark library or its model is not there or does not load."""


def _side(points: np.ndarray, side: int, down: np.ndarray, iod: float) -> dict[str, float]:
    def vertical(upper: int, lower: int) -> float:
        return float((points[lower] - points[upper]) @ down)

    outer, inner = EYE_CORNERS[side]
    eye_centre = (points[outer] + points[inner]) / 2
    brow_idx = [i for pair in BROW_PAIRS[side] for i in pair]
    brow_mid = points[brow_idx].mean(axis=0)
    return {
        "eyebrow_thickness": float(np.mean([vertical(u, lo) for u, lo in BROW_PAIRS[side]])) / iod,
        "eyebrow_height": float((eye_centre - brow_mid) @ down) / iod,
        "eye_opening": float(np.mean([vertical(u, lo) for u, lo in EYELID_PAIRS[side]])) / iod,
    }


def _frame_axes(points: np.ndarray) -> tuple[float, np.ndarray]:
    """IOD and the face's unit "down" vector (perpendicular to the eye line, towards the chin)."""
    right = points[list(EYE_CORNERS[0])].mean(axis=0)
    left = points[list(EYE_CORNERS[1])].mean(axis=0)
    across = left - right
    iod = float(np.hypot(*across))
    if not math.isfinite(iod) or iod <= 0:
        raise ValueError("degenerate landmarks: the two eye centres coincide")
    across = across / iod
    down = np.array([-across[1], across[0]])
    chin_side = (points[FACE_TOP_CHIN[1]] - points[FACE_TOP_CHIN[0]]) @ down
    if chin_side < 0:  # mirrored landmarks (subject's left on the image's left): keep "down" to the chin
        down = -down
    return iod, down


def _check_points(points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] < 2 or pts.shape[0] < N_LANDMARKS:
        raise ValueError(f"landmarks are an N×2 array with N ≥ {N_LANDMARKS}, got shape {pts.shape}")
    pts = pts[:, :2]
    if not np.isfinite(pts).all():
        raise ValueError("landmarks contain NaN or infinite coordinates")
    return pts


def side_measures(points: np.ndarray) -> dict[str, dict[str, float]]:
    """Per-side eyebrow and eye measures, IOD units: ``{"right": {...}, "left": {...}}`` (the subject's).

    Keys per side: ``eyebrow_thickness``, ``eyebrow_height``, ``eye_opening``. ``points`` are face-mesh
    landmarks in pixels (``N×2`` or ``N×3``, N ≥ 468; z is ignored).
    """
    pts = _check_points(points)
    iod, down = _frame_axes(pts)
    return {"right": _side(pts, 0, down, iod), "left": _side(pts, 1, down, iod)}


def measures_from_landmarks(points: np.ndarray) -> dict[str, float]:
    """The face columns (:data:`FACE_COLUMNS`, with ``face_found`` = 1.0) from face-mesh landmarks in pixels.

    Pure geometry, see the module docstring for the definitions. Raises ``ValueError`` for degenerate
    landmarks (coinciding eye centres, zero face width).
    """
    pts = _check_points(points)
    iod, down = _frame_axes(pts)
    sides = [_side(pts, s, down, iod) for s in (0, 1)]
    width = float(np.hypot(*(pts[FACE_SIDES[1]] - pts[FACE_SIDES[0]])))
    if width <= 0:
        raise ValueError("degenerate landmarks: zero face width")
    height = float(np.hypot(*(pts[FACE_TOP_CHIN[1]] - pts[FACE_TOP_CHIN[0]])))
    mouth = float(np.hypot(*(pts[MOUTH_CORNERS[1]] - pts[MOUTH_CORNERS[0]])))
    return {
        "face_found": 1.0,
        "face_eyebrow_thickness": (sides[0]["eyebrow_thickness"] + sides[1]["eyebrow_thickness"]) / 2,
        "face_eyebrow_height": (sides[0]["eyebrow_height"] + sides[1]["eyebrow_height"]) / 2,
        "face_eye_opening": (sides[0]["eye_opening"] + sides[1]["eye_opening"]) / 2,
        "face_mouth_width": mouth / iod,
        "face_aspect": height / width,
    }


def trusted_face(points: np.ndarray, detections: list[Detection], width: int, height: int) -> bool:
    """Whether a face mesh (pixels) is a face: a detection scoring at least :data:`MIN_FACE_SCORE` holds
    the mesh's centre, and the mesh is wide enough (:data:`MIN_FACE_SHARE` of the shorter side and
    :data:`MIN_FACE_PX` pixels). Pure: tested on the detector's outputs."""
    pts = np.asarray(points, dtype=np.float64)[:, :2]
    if len(pts) < N_LANDMARKS or not np.isfinite(pts).all():
        return False
    face_width = float(np.hypot(*(pts[FACE_SIDES[1]] - pts[FACE_SIDES[0]])))
    if face_width < max(MIN_FACE_PX, MIN_FACE_SHARE * min(width, height)):
        return False
    cx, cy = pts[:N_LANDMARKS].mean(axis=0) / (width, height)
    return any(
        score >= MIN_FACE_SCORE and x <= cx <= x + w and y <= cy <= y + h for score, x, y, w, h in detections
    )


def first_lost_step(face_found_by_step: Mapping[int, float]) -> int | None:
    """The first step at which a face that was found at step 0 is no longer found.

    ``face_found_by_step`` maps step → ``face_found`` (≥ 0.5 counts as found; NaN, i.e. not measured, is
    skipped). ``None`` when step 0 has no face (or is missing) or the face is never lost. Steps need not be
    contiguous: the answer is the smallest listed step > 0 without a face.
    """
    found = {int(k): float(v) for k, v in face_found_by_step.items() if not math.isnan(float(v))}
    if found.get(0, 0.0) < 0.5:
        return None
    for step in sorted(k for k in found if k > 0):
        if found[step] < 0.5:
            return step
    return None


def _check_frame(frame: np.ndarray) -> np.ndarray:
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"a frame is a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"a frame is an H×W×3 uint8 RGB array, got {frame.dtype} of shape {frame.shape}")
    if frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(f"a frame needs at least one pixel, got shape {frame.shape}")
    return np.ascontiguousarray(frame)


def _task_file(model_path: str | Path | None) -> Path | None:
    if model_path is not None:
        path = Path(model_path).expanduser()
        return path / TASK_FILE if path.is_dir() else path
    env = os.environ.get("DRIFTLOOP_MODEL_DIR")
    if env:
        path = Path(env).expanduser() / _TASK_FOLDER / TASK_FILE
        if path.is_file():
            return path
    return None


#: The lines MediaPipe's C++ side (absl, TFLite) writes straight to the process's stderr when a graph
#: first runs: "INFO: Created TensorFlow Lite XNNPACK delegate", "WARNING: All log messages before
#: absl::InitializeLog()...", "W0000 00:00:... inference_feedback_manager.cc:114] ...".
_LIBRARY_LINE = re.compile(
    rb"^(?:[IWE]\d{4} \d\d:\d\d:|INFO: Created TensorFlow|WARNING: All log messages before absl)"
)


@contextlib.contextmanager
def _library_logs_dropped() -> Iterator[None]:
    """Catch what is written to file descriptor 2 meanwhile (C++ code bypasses Python's sys.stderr), drop
    the face library's own log lines and pass every other line on, so a user sees none of its noise."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (an embedded interpreter): nothing to catch
        yield
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [line for line in caught.read().splitlines(keepends=True) if not _LIBRARY_LINE.match(line)]
            if kept:
                os.write(2, b"".join(kept))


def _quiet_protobuf() -> None:
    # mediapipe 0.10.x's legacy API calls a deprecated protobuf function on every frame
    warnings.filterwarnings(
        "ignore", message=r"SymbolDatabase\.GetPrototype\(\) is deprecated", category=UserWarning
    )


class FaceMeasurer:
    """Detects the most confident face in a frame and measures it (see the module docstring).

    ``model_path``: a ``face_landmarker.task`` bundle (or a folder holding one) for the MediaPipe Tasks
    back-end; by default the legacy face mesh with its built-in model is used. ``min_detection_confidence``
    is the face detector's score threshold (MediaPipe's default 0.5).

    Loads the model once; ``close()`` (or ``with``) frees it. Thread-safe by serialising calls.
    Raises :class:`FaceModelError` when neither back-end can be built.
    """

    def __init__(
        self, *, model_path: str | Path | None = None, min_detection_confidence: float = 0.5
    ) -> None:
        if not 0.0 <= min_detection_confidence <= 1.0:
            raise ValueError(f"min_detection_confidence is in 0..1, got {min_detection_confidence}")
        self._lock = threading.Lock()
        self._closed = False
        with _library_logs_dropped():  # its graphs log to stderr when built and first run
            self._build(model_path, min_detection_confidence)
            blank = np.zeros((64, 64, 3), dtype=np.uint8)
            self.landmarks(blank)
            self.detections(blank)

    def _build(self, model_path: str | Path | None, min_detection_confidence: float) -> None:
        try:
            import mediapipe as mp  # the faces extra: optional and heavy
        except ImportError as exc:
            raise FaceModelError(
                f"face measures need MediaPipe, which is not importable ({exc}); {_INSTALL_HINT}"
            ) from exc
        self._mp = mp
        version = getattr(mp, "__version__", "?")
        task = _task_file(model_path)
        legacy = None if model_path is not None else _legacy_face_mesh()
        if legacy is not None:
            _quiet_protobuf()
            try:
                self._graph: Any = legacy(
                    static_image_mode=True,
                    max_num_faces=1,
                    refine_landmarks=True,
                    min_detection_confidence=min_detection_confidence,
                )
            except Exception as exc:  # the graph or its model failed to load
                raise FaceModelError(
                    f"MediaPipe {version} face mesh did not load: {exc}; {_INSTALL_HINT}"
                ) from exc
            self.backend = "face_mesh"
            self._detector = _legacy_detector()
        elif task is not None:
            if not task.is_file():
                raise FaceModelError(
                    f"face landmarker bundle {task} not found: pass a {TASK_FILE} file or its folder"
                )
            try:
                from mediapipe.tasks.python import vision  # the faces extra: optional
                from mediapipe.tasks.python.core.base_options import BaseOptions  # optional, as above

                options = vision.FaceLandmarkerOptions(
                    base_options=BaseOptions(model_asset_path=str(task)),
                    num_faces=1,
                    min_face_detection_confidence=min_detection_confidence,
                )
                self._graph = vision.FaceLandmarker.create_from_options(options)
            except Exception as exc:
                raise FaceModelError(f"MediaPipe {version} could not load {task}: {exc}") from exc
            self.backend = "tasks"
            self._detector = _legacy_detector()
        else:
            raise FaceModelError(
                f"MediaPipe {version} has no built-in face mesh and no {TASK_FILE} was given or found; "
                f"{_INSTALL_HINT}"
            )
        self.description = f"MediaPipe {version} ({self.backend})"

    def landmarks(self, frame: np.ndarray) -> np.ndarray | None:
        """Face-mesh landmarks of the most confident face as ``N×2`` pixel coordinates (x, y), or ``None``.

        ``N`` is 478 (the 468-point mesh plus 10 iris points). Coordinates may fall outside the frame for a
        face cut by its edge.
        """
        rgb = _check_frame(frame)
        h, w = rgb.shape[:2]
        with self._lock:
            if self._closed:
                raise RuntimeError("this FaceMeasurer is closed")
            if self.backend == "face_mesh":
                faces = self._graph.process(rgb).multi_face_landmarks
                marks = faces[0].landmark if faces else None
            else:
                image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb)
                faces = self._graph.detect(image).face_landmarks
                marks = faces[0] if faces else None
        if not marks:
            return None
        return np.array([(p.x * w, p.y * h) for p in marks], dtype=np.float64)

    def detections(self, frame: np.ndarray) -> list[Detection] | None:
        """The face detector's faces: (score, x, y, w, h) with the box relative to the frame; None when
        this MediaPipe has no detector (then only the size test applies)."""
        if self._detector is None:
            return None
        rgb = _check_frame(frame)
        with self._lock:
            found = self._detector.process(rgb).detections or []
        out: list[Detection] = []
        for d in found:
            box = d.location_data.relative_bounding_box
            out.append((float(d.score[0]), box.xmin, box.ymin, box.width, box.height))
        return out

    def measure(self, frame: np.ndarray) -> dict[str, float]:
        """The :data:`FACE_COLUMNS` of an ``H×W×3`` uint8 RGB frame; ``{"face_found": 0.0}`` if no face."""
        points = self.landmarks(frame)
        if points is None or len(points) < N_LANDMARKS:
            return {"face_found": 0.0}
        found = self.detections(frame)
        height, width = frame.shape[:2]
        if found is None:  # no detector: the size test alone
            found = [(1.0, 0.0, 0.0, 1.0, 1.0)]
        if not trusted_face(points, found, width, height):
            return {"face_found": 0.0}
        try:
            return measures_from_landmarks(points)
        except ValueError:  # degenerate mesh (e.g. a face a few pixels wide): nothing measurable
            return {"face_found": 0.0}

    def close(self) -> None:
        """Free the model; later calls raise ``RuntimeError``. Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._graph.close()
                if self._detector is not None:
                    self._detector.close()

    def __enter__(self) -> FaceMeasurer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _legacy_detector() -> Any:
    """MediaPipe's full-range face detector (its model is in the wheel), or None without the legacy API."""
    try:
        from mediapipe.python.solutions import face_detection  # the faces extra: optional
    except ImportError:
        return None
    return face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.3)


def _legacy_face_mesh() -> Any:
    try:
        from mediapipe.python.solutions import face_mesh  # the faces extra: optional
    except ImportError:
        return None
    return getattr(face_mesh, "FaceMesh", None)


@lru_cache(maxsize=8)
def _available(model_path: str | None) -> tuple[bool, str]:
    try:
        measurer = FaceMeasurer(model_path=model_path)
    except FaceModelError as exc:
        return False, str(exc)
    try:
        return True, measurer.description
    finally:
        measurer.close()


def available(model_path: str | Path | None = None) -> tuple[bool, str]:
    """``(True, "MediaPipe 0.10.14 (face_mesh)")`` when a :class:`FaceMeasurer` can be built, else
    ``(False, why and what to install)``. Builds (and frees) one measurer; the answer is cached per path
    for the life of the process (a later change of ``$DRIFTLOOP_MODEL_DIR`` is not seen)."""
    return _available(None if model_path is None else str(model_path))
