"""Built-in face plugin: detection and landmarks (mediapipe), SFace templates
(onnxruntime), active liveness, optional passive presentation-attack check.

Models are pinned files fetched at set-up (``healthcode models fetch``); a
missing model raises ``ModelMissingError`` naming that command. Heavy imports
(mediapipe, onnxruntime, cv2) happen on first use, not on import.
"""

from __future__ import annotations

from collections.abc import Sequence

from healthcode.core.hookspecs import hookimpl
from healthcode.core.models import (
    Face,
    FaceMatch,
    Image,
    LivenessChallenge,
    LivenessResult,
    Problem,
)

__version__ = "0.1.0"


@hookimpl
def healthcode_detect_faces(image: Image) -> Sequence[Face] | None:
    from healthcode.plugins.face.detect import detect_faces

    return detect_faces(image)


@hookimpl
def healthcode_assess_face_quality(image: Image, faces: Sequence[Face]) -> Sequence[Problem] | None:
    from healthcode.plugins.face.detect import QUALITY_MEASUREMENTS, assess_quality

    # Faces another plugin detected carry other measurements: not ours to judge.
    if any(not set(face.measurements) >= QUALITY_MEASUREMENTS for face in faces):
        return None
    return assess_quality(faces)


@hookimpl
def healthcode_face_template(image: Image, face: Face) -> bytes | None:
    from healthcode.plugins.face.embed import face_embedding, to_template

    if face.landmarks is None:
        return None  # not one of our faces: no landmarks to align with
    return to_template(face_embedding(image, face))


@hookimpl
def healthcode_compare_templates(a: bytes, b: bytes) -> FaceMatch | None:
    from healthcode.plugins.face.embed import compare_templates

    return compare_templates(a, b)


@hookimpl
def healthcode_check_liveness(
    challenge: LivenessChallenge, frames: Sequence[Image]
) -> LivenessResult | None:
    from healthcode.plugins.face.liveness import check_liveness

    return check_liveness(challenge, frames)


@hookimpl
def healthcode_presentation_attack_score(image: Image, face: Face) -> float | None:
    from healthcode.plugins.face.pad import presentation_attack_score

    return presentation_attack_score(image, face)
