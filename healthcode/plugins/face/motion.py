"""How a face moved between two frames, told apart from how a flat picture moves.

A photo held up to the camera, slid, rotated, brought closer or tilted, moves
as a plane: the face landmarks of any frame are those of the first frame
mapped by one 2D homography (a plane seen by a pinhole camera), up to the
landmarker's noise. A real head is not flat: when it turns or nods, the nose
moves across the cheeks (parallax), and when the eyes close or the mouth
opens, the eyelids and lips move against the rest of the face. No homography
explains that.

:func:`planar_residuals` fits the homography from one frame's landmarks to
another's (least squares over the whole face mesh) and reports what it leaves
unexplained, per region of the face, in units of the distance between the outer
eye corners. :func:`flat_motion` decides: a region is where a flat picture
would put it when that residual is within the landmarker's noise, or a little
above it for a picture tilted far from the camera (strongly stretched, where
the landmarker follows the picture less closely), or, for the whole face, when
it turned in the image plane further than any action asks. The liveness judge
asks it about the frame where each action peaked, for the region that action
moves (``healthcode.plugins.face.liveness``); :func:`displacement` tells it
whether anything moved at all.

Landmarks are MediaPipe FaceLandmarker's 478 points (468 mesh + 10 iris), in
image pixels; only x and y are used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

MESH_POINTS = 468
"""The face mesh; the 10 iris points after it follow the gaze, not the head."""
OUTER_EYE_CORNERS = (33, 263)
"""The unit of distance: the outer corners of the right and left eye."""

REGIONS: Mapping[str, tuple[int, ...]] = {
    "face": tuple(range(MESH_POINTS)),
    # Both eyes' outlines (FaceLandmarksConnections.FACE_LANDMARKS_RIGHT_EYE / LEFT_EYE).
    "eyes": (
        7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246,
        249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466,
    ),
    # Inner and outer lip outlines (FACE_LANDMARKS_LIPS).
    "mouth": (
        0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181,
        185, 191, 267, 269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375,
        402, 405, 409, 415,
    ),
}  # fmt: skip
"""Landmark indices per region of the face."""

RESIDUAL_QUANTILE = 0.75
"""A region's residual is this quantile of its points' residuals: robust to a
few noisy points, yet it sees an eyelid (half of an eye's outline) move."""

Points = npt.NDArray[np.float64]


def as_points(landmarks: Any) -> Points | None:
    """The (x, y) of the face mesh as float64, or None when ``landmarks`` is not
    a MediaPipe landmark array."""
    if landmarks is None:
        return None
    points = np.asarray(landmarks, dtype=np.float64)
    if points.ndim != 2 or points.shape[0] < MESH_POINTS or points.shape[1] < 2:
        return None
    return points[:MESH_POINTS, :2]


def eye_distance(points: Points) -> float:
    a, b = OUTER_EYE_CORNERS
    return float(np.linalg.norm(points[a] - points[b]))


def _normaliser(points: Points) -> npt.NDArray[np.float64]:
    """Hartley's normalisation: centroid to the origin, mean distance sqrt(2)."""
    centre = points.mean(axis=0)
    spread = float(np.sqrt(((points - centre) ** 2).sum(axis=1)).mean())
    scale = np.sqrt(2.0) / max(spread, 1e-9)
    return np.array(
        [[scale, 0.0, -scale * centre[0]], [0.0, scale, -scale * centre[1]], [0.0, 0.0, 1.0]]
    )


def fit_homography(source: Points, target: Points) -> npt.NDArray[np.float64]:
    """The 3x3 homography that maps ``source`` onto ``target`` best (normalised
    direct linear transform, least squares)."""
    t_source, t_target = _normaliser(source), _normaliser(target)
    s = source @ t_source[:2, :2].T + t_source[:2, 2]
    d = target @ t_target[:2, :2].T + t_target[:2, 2]
    ones, zeros = np.ones(len(s)), np.zeros((len(s), 3))
    homogeneous = np.column_stack([s, ones])
    rows_x = np.column_stack([homogeneous, zeros, -d[:, :1] * homogeneous])
    rows_y = np.column_stack([zeros, homogeneous, -d[:, 1:] * homogeneous])
    _, _, vt = np.linalg.svd(np.vstack([rows_x, rows_y]), full_matrices=False)
    normalised = vt[-1].reshape(3, 3)
    homography: npt.NDArray[np.float64] = np.linalg.inv(t_target) @ normalised @ t_source
    scaled: npt.NDArray[np.float64] = homography / homography[2, 2]
    return scaled


def apply_homography(homography: npt.NDArray[np.float64], points: Points) -> Points:
    mapped = np.column_stack([points, np.ones(len(points))]) @ homography.T
    result: Points = mapped[:, :2] / mapped[:, 2:]
    return result


def planar_residuals(base: Points, frame: Points) -> dict[str, float]:
    """Per region, how far ``frame``'s landmarks lie from ``base``'s mapped by the
    best homography, in eye distances (of ``base``). Small everywhere: the face
    moved as a flat picture would."""
    unit = max(eye_distance(base), 1e-9)
    error = np.linalg.norm(apply_homography(fit_homography(base, frame), base) - frame, axis=1)
    return {
        region: float(np.quantile(error[list(indices)], RESIDUAL_QUANTILE)) / unit
        for region, indices in REGIONS.items()
    }


def displacement(base: Points, frame: Points) -> float:
    """How far the landmarks moved at all (no fit), in eye distances of ``base``:
    the largest of the regions' quantiles, so that eyes closing or a mouth
    opening in a face held still count as movement."""
    unit = max(eye_distance(base), 1e-9)
    moved = np.linalg.norm(frame - base, axis=1)
    return max(
        float(np.quantile(moved[list(indices)], RESIDUAL_QUANTILE)) / unit
        for indices in REGIONS.values()
    )


def aspect(base: Points, frame: Points) -> float:
    """How anisotropically the face was stretched from ``base`` to ``frame``: the
    ratio of the smaller to the larger singular value of the best affine map's
    linear part (1: shape kept, as in a slide, a zoom or an in-plane rotation;
    a photo tilted by 55 degrees: about 0.6)."""
    design = np.column_stack([base, np.ones(len(base))])
    solution, *_ = np.linalg.lstsq(design, frame, rcond=None)
    singular = np.linalg.svd(solution[:2, :2], compute_uv=False)
    return float(singular[1] / max(singular[0], 1e-12))


def roll_change(base: Points, frame: Points) -> float:
    """In-plane rotation of the line through the outer eye corners, in degrees
    (-180 .. 180)."""
    a, b = OUTER_EYE_CORNERS
    before, after = base[b] - base[a], frame[b] - frame[a]
    angle = np.degrees(np.arctan2(after[1], after[0]) - np.arctan2(before[1], before[0]))
    return float((angle + 180.0) % 360.0 - 180.0)


# Thresholds, in eye distances, measured on the attack videos that
# tests/test_liveness_video.py makes from real photos (the figures below).
FLAT_MAX_RESIDUAL = 0.03
"""Below this, a region moved as a plane. Photos of six faces slid, zoomed,
rotated in-plane up to 90 degrees or tilted up to 40 degrees, through an MJPG
video: at most 0.027 where an action was (wrongly) measured. Two photos of one
person turned 11 to 15 degrees apart: 0.039 to 0.096; the landmarker's mesh of
a real photo turned rigidly by 12 degrees (the smallest turn counted): 0.035,
nodded by 10: 0.035."""
TILTED_MAX_ASPECT = 0.85
"""A stretch this anisotropic is a picture tilted away from the camera (photos
tilted 40 to 60 degrees: 0.58 to 0.84); a head turned 11 to 15 degrees: 0.89
to 0.94."""
TILTED_MAX_RESIDUAL: Mapping[str, float] = {"face": 0.07, "eyes": 0.07, "mouth": 0.09}
"""Per region, below this a strongly stretched region still moved as a plane.
Tilted 55 to 60 degrees, the landmarker follows the picture less closely: up
to 0.054 over the face and 0.046 in the eyes, and 0.076 in the mouth where it
reported an open mouth; a real mouth opening: 0.10 to 0.12. The mesh of a real
photo turned rigidly by 30 degrees is stretched about as much (0.85 to 0.88)
and leaves 0.088 to 0.093 over the face."""
MAX_ROLL_CHANGE = 30.0
"""Degrees of in-plane rotation past which a measured turn or nod comes from a
picture turned in the image plane, not from a head: no action asks for it."""
STATIC_MAX_DISPLACEMENT = 0.02
"""Below this in every frame and every region, nothing moved at all: one still
picture (MJPG videos of a repeated photo: at most 0.0052). A person moves more
in the seconds a challenge takes; regions are taken one by one, so that a
blink or an open mouth in a head held still counts as movement."""


def flat_motion(base: Points, frame: Points, region: str) -> bool:
    """True when ``frame``'s ``region`` (a key of ``REGIONS``) is where a flat
    picture of ``base`` would put it: moved as a plane, or, for the whole face
    (a turn or a nod), turned in the image plane further than a head is asked to."""
    if region == "face" and abs(roll_change(base, frame)) > MAX_ROLL_CHANGE:
        return True
    residual = planar_residuals(base, frame)[region]
    if residual < FLAT_MAX_RESIDUAL:
        return True
    return aspect(base, frame) < TILTED_MAX_ASPECT and residual < TILTED_MAX_RESIDUAL[region]
