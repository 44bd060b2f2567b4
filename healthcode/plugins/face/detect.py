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
  ``sharpness`` (variance of the Laplacian of the face resized to 112 px wide,
  so that it does not depend on the image size).

:func:`assess_quality` turns those into ``Problem``s with stable codes, with
thresholds measured on the project's test photos (bench/README.md, "Faces").
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
MIN_SHARPNESS = 40.0
"""Laplacian variance of the 112-px face over its grey-level variance (x1000),
so that a dim face is not called blurred. Real photos here: 59-426; the same
photos at 640 px with a Gaussian blur of sigma 2 px: 7-29 (refused)."""

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
    brightness, sharpness = _face_photometry(rgb, box)
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


def _face_photometry(rgb: npt.NDArray[np.uint8], box: tuple[float, ...]) -> tuple[float, float]:
    import cv2

    height, width = rgb.shape[:2]
    x, y, w, h = box
    left, top = max(int(x), 0), max(int(y), 0)
    right, bottom = min(int(x + w), width), min(int(y + h), height)
    if right - left < 4 or bottom - top < 4:
        return 0.0, 0.0
    crop = rgb[top:bottom, left:right]
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    brightness = float(grey.mean())
    scale = 112.0 / grey.shape[1]
    resized = cv2.resize(
        grey,
        (112, max(round(grey.shape[0] * scale), 4)),
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
    )
    # Laplacian energy relative to the face's own contrast: a dim but sharp face
    # is "too dark", not "too blurred".
    laplacian = float(cv2.Laplacian(resized, cv2.CV_64F).var())
    contrast = float(resized.astype(np.float64).var())
    sharpness = 1000.0 * laplacian / max(contrast, 1.0)
    return brightness, sharpness


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
                "The face is blurred; hold the camera still.",
                "人脸模糊，请保持摄像头稳定。",
                sharpness=round(m["sharpness"], 1),
                min_sharpness=MIN_SHARPNESS,
            )
        )
    return tuple(problems)


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
