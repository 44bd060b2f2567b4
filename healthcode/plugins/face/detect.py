"""Face detection, landmarks and per-face measurements with mediapipe's FaceLandmarker.

One FaceLandmarker graph (Tasks API) gives, per face, 478 landmarks,
52 blendshapes and a facial transformation matrix. From them we take:

* ``yaw``, ``pitch``, ``roll`` in degrees, from the transformation matrix.
  ``yaw > 0`` means the person turned to *their own left* (nose towards the
  right of the image as the camera sent it, unmirrored); a mirrored image gives
  the opposite sign. ``pitch`` is the rotation about the horizontal axis.
* ``blink_left``, ``blink_right`` (eyeBlink blendshapes, 0 open .. 1 closed) and
  ``jaw_open`` (0 closed .. 1 wide open).
* quality facts: ``face_width`` (pixels), ``out_of_frame`` (share of the face box
  outside the image), ``brightness`` (mean luma of the face, 0..255) and
  ``sharpness`` (fine detail of the inner face, eye-aligned at a fixed eye
  distance, so that a 240p and a 1080p photo of the same face score alike:
  :func:`face_sharpness`).

:func:`assess_quality` turns those into the ``Problem``s that refuse a face,
with stable codes; :func:`quality_warnings` gives the findings that do not
(``image_soft``: less sharp than a studio photo, still good enough to match).
The thresholds were measured on real photos and realistic degradations of them
(bench/bench_face_gates.py, bench/README.md "Faces").
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import math
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from healthcode.core.models import Face, Image, Problem
from healthcode.plugins.face.errors import FaceQualityError
from healthcode.plugins.face.memo import memo
from healthcode.plugins.face.modelstore import LANDMARKER, require_model
from healthcode.plugins.face.quiet import quiet_native_logs

MAX_FACES = 4
"""Faces looked for per image: enough to say "more than one face"."""

# Quality thresholds (measured; bench/README.md, "Faces", shows the numbers behind them).
MIN_FACE_WIDTH = 64
"""Pixels across the face box: SFace works on 112 px crops; below 80 px the
embedding is built mostly from upsampled pixels."""
MAX_OUT_OF_FRAME = 0.02
"""Share of the face box that may lie outside the image (landmarks of a cut
face are extrapolated by the model, not seen)."""
MIN_BRIGHTNESS = 50.0
"""Mean luma of the face (0..255). Real photos here: 105-166; the same photos
with a quarter of their light: 26-41 (refused); with a third: 35-55."""

# Sharpness (issue 15). The old gate (Laplacian of the face box resized to 112 px,
# refused below 40) was set on Gaussian-blurred copies of 4 photos; it refused a
# real, slightly soft phone frame (31.7) while other frames of the same video
# matched the person's photo at 0.55-0.71. The measure and
# both thresholds below come from bench/bench_face_gates.py (results in
# bench/results/face_gates.json): real photos (tests/data/faces obama_1-3 and
# biden_1-2, tests/data/antispoof/real_1, skimage's astronaut) at full size and at
# 720, 480 and 360 px high, each degraded as cameras degrade: JPEG q=30, a 240-line
# capture upscaled, motion blur 3-7 px, defocus disc radius 1-3 px, sensor noise,
# an indoor phone frame, combinations ("realistic"); and, to find where matching
# breaks, motion 11-21 px, defocus 4-9 px, Gaussian 3-5 px, 80- and 120-line
# captures, noise 12 with JPEG q=30 ("beyond"). Each was matched (SFace) against
# another photo of the same person: clean pairs score 0.65-0.76, the threshold is
# 0.40. Of 646 images with one face of at least 64 px, 444 have such a pair: 25
# fall below 0.40, 48 below 0.50, 380 stay at 0.55 or more.
#
#   refuse below                     8      10     12     15     20     30
#   kept, genuine < 0.50         16/48   6/48   3/48   1/48   1/48   1/48
#   refused, genuine >= 0.55     9/380 14/380 19/380 31/380 44/380 91/380
#   realistic images refused     0/336  2/336  2/336  3/336  8/336 29/336
#
# Below 12, 45 of the 71 paired images match at under 0.50 and the highest
# impostor similarity rises to 0.335 (0.26-0.29 above): the margin is gone on both
# sides. The old rule refused 129 of 313 realistic images and 169 of the 380 that
# match well; the new one refuses 2 (faces of 64 px with a 7-px shake or a 3-px
# defocus, matching at 0.52-0.56) and 19. Clean photos score 93-265, JPEG q=30
# copies 92-223, 240-line captures upscaled 27-94 (matching at 0.58-0.75).
SHARPNESS_EYE_DISTANCE = 40.0
"""Pixels between the eye centres in the crop sharpness is measured on: about
SFace's own scale (35 px in its 112-px input), so that the detail measured is the
detail the matcher sees. Crops with a smaller eye distance are upsampled, which
the face-size gate bounds to about 1.6x (a 64-px face has eyes about 26 px apart)."""
SHARPNESS_CROP = (-1.0, 1.0, -0.6, 1.6)
"""The inner face measured, in eye distances from the midpoint between the eyes:
left, right, top, bottom (eyebrows to chin, cheek to cheek; no hair, no background)."""
SHARPNESS_PRESMOOTH = 0.7
"""Gaussian sigma (pixels of the aligned crop) applied before measuring: sensor
noise and JPEG ringing otherwise read as detail (while calibrating, noise of
sigma 8 raised the unsmoothed Laplacian score of obama_3's crop at 720 px from
169 to 317)."""
MIN_SHARPNESS = 12.0
"""Refuse below: too blurred to match reliably (``image_too_blurred``). See the
table above; of the 3 low-margin matches let through, 2 are motion blur of 15-21
px and 1 is noise of sigma 12 with JPEG q=30, which reads as detail."""
STUDIO_SHARPNESS = 80.0
"""Warn below: less sharp than a studio photo (``image_soft``), a warning and
never a refusal. Below every clean photo and JPEG q=30 copy here (92 and up)."""

_lock = threading.Lock()


@functools.cache
def _landmarker() -> Any:
    from mediapipe.tasks.python import BaseOptions, vision

    path = require_model(LANDMARKER)
    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(path)),
        running_mode=vision.RunningMode.IMAGE,
        num_faces=MAX_FACES,
        output_face_blendshapes=True,
        output_facial_transformation_matrixes=True,
    )
    # Loading prints absl and TFLite lines on fd 2 (issue 15): filtered out.
    with quiet_native_logs():
        landmarker = vision.FaceLandmarker.create_from_options(options)
    # Close it while the interpreter is still whole: mediapipe's __del__ at
    # shutdown otherwise prints a TypeError.
    _close_at_exit(landmarker)
    return landmarker


def _close_at_exit(landmarker: Any) -> None:
    def close() -> None:
        with contextlib.suppress(Exception):
            landmarker.close()

    # mediapipe dispatches close() through a concurrent.futures executor that is
    # shut down by threading's exit hooks, before atexit runs: register there
    # (runs in reverse order, so before the executor's own shutdown).
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(close)
    else:  # pragma: no cover - other Pythons
        atexit.register(close)


def warm_up() -> None:
    """Load the landmarker now (it is loaded on first use otherwise)."""
    _landmarker()


def _as_rgb(image: Image) -> npt.NDArray[np.uint8]:
    pixels = np.asarray(image.pixels)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError("Image.pixels must be an RGB uint8 array (H, W, 3)")
    return np.ascontiguousarray(pixels)


def detect_faces(image: Image) -> list[Face]:
    """Every face found (at most ``MAX_FACES``), largest first, with measurements.

    An image looked at before (the same live pixel array) is answered from
    :mod:`healthcode.plugins.face.memo`: landmarks are found once per frame."""
    rgb = _as_rgb(image)
    remembered = memo.faces(image)
    if remembered is not None:
        return remembered
    faces = _detect(rgb)
    memo.remember_faces(image, faces)
    return list(faces)


def _detect(rgb: npt.NDArray[np.uint8]) -> list[Face]:
    import mediapipe as mp

    landmarker = _landmarker()
    with _lock:
        result = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
    faces = []
    height, width = rgb.shape[:2]
    for index, normalised in enumerate(result.face_landmarks):
        points = np.array([(p.x * width, p.y * height, p.z * width) for p in normalised])
        blendshapes = (
            {c.category_name: float(c.score) for c in result.face_blendshapes[index]}
            if result.face_blendshapes
            else {}
        )
        matrix = (
            np.asarray(result.facial_transformation_matrixes[index])
            if result.facial_transformation_matrixes
            else np.eye(4)
        )
        faces.append(_make_face(rgb, points, blendshapes, matrix))
    faces.sort(key=lambda face: face.box[2] * face.box[3], reverse=True)
    return faces


def head_pose(matrix: npt.NDArray[Any]) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from a facial transformation matrix."""
    rotation = np.asarray(matrix, dtype=np.float64)[:3, :3]
    yaw = math.degrees(math.atan2(rotation[0, 2], rotation[2, 2]))
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, -rotation[1, 2]))))
    roll = math.degrees(math.atan2(rotation[1, 0], rotation[1, 1]))
    return yaw, pitch, roll


def _make_face(
    rgb: npt.NDArray[np.uint8],
    points: npt.NDArray[np.float64],
    blendshapes: dict[str, float],
    matrix: npt.NDArray[Any],
) -> Face:
    height, width = rgb.shape[:2]
    x0, y0 = float(points[:, 0].min()), float(points[:, 1].min())
    x1, y1 = float(points[:, 0].max()), float(points[:, 1].max())
    box = (x0, y0, x1 - x0, y1 - y0)
    area = max(box[2] * box[3], 1.0)
    inside_w = max(0.0, min(x1, width) - max(x0, 0.0))
    inside_h = max(0.0, min(y1, height) - max(y0, 0.0))
    out_of_frame = 1.0 - (inside_w * inside_h) / area
    yaw, pitch, roll = head_pose(matrix)
    brightness = _face_brightness(rgb, box)
    sharpness = face_sharpness(rgb, points)
    measurements = {
        "yaw": yaw,
        "pitch": pitch,
        "roll": roll,
        "blink_left": blendshapes.get("eyeBlinkLeft", 0.0),
        "blink_right": blendshapes.get("eyeBlinkRight", 0.0),
        "jaw_open": blendshapes.get("jawOpen", 0.0),
        "face_width": box[2],
        "out_of_frame": out_of_frame,
        "brightness": brightness,
        "sharpness": sharpness,
    }
    # The landmarker exposes no per-face confidence: a face it returns passed
    # its own detection threshold (0.5), so the score says only that.
    return Face(box=box, score=1.0, landmarks=points, measurements=measurements)


def _face_brightness(rgb: npt.NDArray[np.uint8], box: tuple[float, ...]) -> float:
    """Mean luma (0..255) of the face box, the part inside the image."""
    import cv2

    height, width = rgb.shape[:2]
    x, y, w, h = box
    left, top = max(int(x), 0), max(int(y), 0)
    right, bottom = min(int(x + w), width), min(int(y + h), height)
    if right - left < 1 or bottom - top < 1:
        return 0.0
    return float(cv2.cvtColor(rgb[top:bottom, left:right], cv2.COLOR_RGB2GRAY).mean())


def eye_aligned_face(rgb: npt.NDArray[np.uint8], points: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    """The inner face in grey, rotated so that the eyes are level and scaled so
    that they are ``SHARPNESS_EYE_DISTANCE`` pixels apart (``SHARPNESS_CROP``).

    ``points`` are the face's landmarks in pixels. Shrinking is done by area
    averaging before the rotation (bilinear sampling alone would alias); a face
    whose eyes are closer than the target is upsampled. Only the neighbourhood of
    the face is converted, so a large photo costs no more than a small one."""
    import cv2

    from healthcode.plugins.face.embed import eye_centres

    left, right = eye_centres(np.asarray(points, dtype=np.float64)[:, :2])
    distance = float(np.hypot(*(right - left)))
    x_from, x_to, y_from, y_to = SHARPNESS_CROP
    size = (
        round((x_to - x_from) * SHARPNESS_EYE_DISTANCE),
        round((y_to - y_from) * SHARPNESS_EYE_DISTANCE),
    )
    if distance < 2.0:
        return np.zeros(size[::-1], dtype=np.uint8)
    # The crop's farthest corner lies within 1.9 eye distances of the eyes' midpoint.
    middle = (left + right) / 2
    reach = 2.0 * distance + 2.0
    height, width = rgb.shape[:2]
    x0, y0 = max(int(middle[0] - reach), 0), max(int(middle[1] - reach), 0)
    x1 = min(math.ceil(middle[0] + reach), width)
    y1 = min(math.ceil(middle[1] + reach), height)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.zeros(size[::-1], dtype=np.uint8)
    grey = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    middle = middle - (x0, y0)
    scale = SHARPNESS_EYE_DISTANCE / distance
    if scale < 1.0:
        grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        middle, scale = middle * scale, 1.0
    angle = math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))
    matrix = cv2.getRotationMatrix2D((float(middle[0]), float(middle[1])), angle, scale)
    matrix[0, 2] += -x_from * SHARPNESS_EYE_DISTANCE - middle[0]
    matrix[1, 2] += -y_from * SHARPNESS_EYE_DISTANCE - middle[1]
    aligned = cv2.warpAffine(
        grey, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    return np.asarray(aligned, dtype=np.uint8)


def detail_score(aligned: npt.NDArray[np.uint8]) -> float:
    """Fine detail of an eye-aligned face crop, over its contrast.

    The mean squared second difference is taken along four directions (across
    rows, columns and both diagonals) after a light smoothing, and the weakest
    direction counts: motion blur removes detail along one direction only, which
    a Laplacian averages away. On the calibration set (see ``MIN_SHARPNESS``) it
    tells degraded images that still match well (>= 0.55) from those that barely
    match (< 0.45) with a ROC AUC of 0.983, the old measure with 0.930. Divided by
    the crop's grey-level variance, so that a dim face is "too dark", not "too
    blurred"; x10_000."""
    import cv2

    smooth = cv2.GaussianBlur(aligned.astype(np.float64), (0, 0), SHARPNESS_PRESMOOTH)
    contrast = max(float(smooth.var()), 1.0)
    centre = smooth[1:-1, 1:-1]
    second_differences = (
        smooth[1:-1, 2:] - 2 * centre + smooth[1:-1, :-2],
        smooth[2:, 1:-1] - 2 * centre + smooth[:-2, 1:-1],
        (smooth[2:, 2:] - 2 * centre + smooth[:-2, :-2]) / 2,
        (smooth[2:, :-2] - 2 * centre + smooth[:-2, 2:]) / 2,
    )
    weakest = min(float(np.mean(d * d)) for d in second_differences)
    return 10_000.0 * weakest / contrast


def face_sharpness(rgb: npt.NDArray[np.uint8], points: npt.NDArray[Any]) -> float:
    """The ``sharpness`` measurement: :func:`detail_score` of :func:`eye_aligned_face`."""
    return detail_score(eye_aligned_face(rgb, points))


# --- quality gates ----------------------------------------------------------------


def _problem(code: str, en: str, zh: str, **details: Any) -> Problem:
    return Problem(code=code, message_en=en, message_zh=zh, field="image", details=details)


QUALITY_MEASUREMENTS = frozenset({"out_of_frame", "face_width", "brightness", "sharpness"})
"""The per-face measurements the quality gates read."""


def assess_quality(faces: Sequence[Face]) -> tuple[Problem, ...]:
    """What stops this image from serving a 1:1 face check; empty when it can."""
    if not faces:
        return (_problem("no_face", "No face was found.", "未检测到人脸。"),)
    if len(faces) > 1:
        return (
            _problem(
                "more_than_one_face",
                "More than one face is in the picture; only the person being checked may appear.",
                "画面中有多于一张人脸；只能出现被核验的人。",
                faces=len(faces),
            ),
        )
    return _measured_problems(faces[0].measurements)


def _measured_problems(m: Mapping[str, float]) -> tuple[Problem, ...]:
    """The gates on one face's measurements: in frame, large, lit and sharp enough."""
    problems = []
    if m["out_of_frame"] > MAX_OUT_OF_FRAME:
        problems.append(
            _problem(
                "face_out_of_frame",
                "The face is not fully in the picture.",
                "人脸不完整，部分在画面之外。",
                out_of_frame=round(m["out_of_frame"], 3),
            )
        )
    if m["face_width"] < MIN_FACE_WIDTH:
        problems.append(
            _problem(
                "face_too_small",
                "The face is too small; come closer to the camera.",
                "人脸过小，请靠近摄像头。",
                face_width=round(m["face_width"]),
                min_face_width=MIN_FACE_WIDTH,
            )
        )
    if m["brightness"] < MIN_BRIGHTNESS:
        problems.append(
            _problem(
                "image_too_dark",
                "The face is too dark; find more light.",
                "人脸过暗，请到光线充足处。",
                brightness=round(m["brightness"], 1),
                min_brightness=MIN_BRIGHTNESS,
            )
        )
    if m["sharpness"] < MIN_SHARPNESS:
        problems.append(
            _problem(
                "image_too_blurred",
                "The face is too blurred to be matched reliably; hold the camera still.",
                "人脸过于模糊，无法可靠比对；请保持摄像头稳定。",
                sharpness=round(m["sharpness"], 1),
                min_sharpness=MIN_SHARPNESS,
            )
        )
    return tuple(problems)


def quality_warnings(faces: Sequence[Face]) -> tuple[Problem, ...]:
    """Findings that do not stop a single face from serving a 1:1 check (severity
    ``warning``): ``image_soft``, less sharp than a studio photo but sharp enough
    to match. Empty for no face, several faces, a face refused for blur, or faces
    another plugin measured."""
    if len(faces) != 1 or not set(faces[0].measurements) >= QUALITY_MEASUREMENTS:
        return ()
    sharpness = faces[0].measurements["sharpness"]
    if not MIN_SHARPNESS <= sharpness < STUDIO_SHARPNESS:
        return ()
    return (
        Problem(
            code="image_soft",
            message_en="The face is less sharp than a studio photo; it can still be matched.",
            message_zh="人脸清晰度低于标准证件照，仍可比对。",
            severity="warning",
            field="image",
            details={
                "sharpness": round(sharpness, 1),
                "studio_sharpness": STUDIO_SHARPNESS,
            },
        ),
    )


def quality_error(problems: Sequence[Problem]) -> FaceQualityError:
    """The error that refuses a face for ``problems`` (not empty): the first one
    says why, all of them are listed in its details."""
    first = problems[0]
    return FaceQualityError(
        first.message_en,
        first.message_zh,
        code=first.code,
        details={"problems": [p.code for p in problems], **first.details},
    )


def single_face(image: Image) -> Face:
    """The one usable face in ``image``, or ``FaceQualityError`` saying why not."""
    faces = detect_faces(image)
    problems = assess_quality(faces)
    if problems:
        raise quality_error(problems)
    return faces[0]
