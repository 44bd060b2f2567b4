"""Built-in face plugin: detection and landmarks (mediapipe), SFace templates
(OpenCV's DNN module; onnxruntime on request), active liveness and its
vocabulary of actions, the document portrait, optional passive
presentation-attack check, and the ``faces`` and ``models`` CLI commands.

Models are pinned files fetched at set-up (``healthcode models fetch``); a
missing model raises ``ModelMissingError`` naming that command. Heavy imports
(mediapipe, onnxruntime, cv2) happen on first use, not on import. Each image's
faces and embeddings are computed once while the image is alive
(``healthcode.plugins.face.memo``), and the native libraries' start-up log
lines are kept off stderr (``healthcode.plugins.face.quiet``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from healthcode.core.hookspecs import hookimpl
from healthcode.core.models import (
    Face,
    FaceMatch,
    Image,
    LivenessAction,
    LivenessChallenge,
    LivenessResult,
    Problem,
)

if TYPE_CHECKING:
    import typer

__version__ = "0.1.0"


@hookimpl
def healthcode_detect_faces(image: Image) -> Sequence[Face] | None:
    from healthcode.plugins.face.detect import detect_faces

    return detect_faces(image)


@hookimpl
def healthcode_assess_face_quality(image: Image, faces: Sequence[Face]) -> Sequence[Problem] | None:
    from healthcode.plugins.face.detect import (
        QUALITY_MEASUREMENTS,
        assess_quality,
        quality_warnings,
    )

    # Faces another plugin detected carry other measurements: not ours to judge.
    if any(not set(face.measurements) >= QUALITY_MEASUREMENTS for face in faces):
        return None
    # The refusals; only when there are none, the warnings (image_soft).
    return assess_quality(faces) or quality_warnings(faces)


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


@hookimpl
def healthcode_liveness_actions() -> Sequence[LivenessAction]:
    from healthcode.plugins.face.actions import LIVENESS_ACTIONS

    return LIVENESS_ACTIONS


@hookimpl
def healthcode_portrait_region(page: Image, box: tuple[int, int, int, int]) -> Image | None:
    from healthcode.plugins.face.portrait import portrait_region

    return portrait_region(page, box)


@hookimpl
def healthcode_register_commands(app: typer.Typer) -> None:
    from healthcode.plugins.face.cli import faces_app, models_app

    app.add_typer(faces_app, name="faces")
    app.add_typer(models_app, name="models")
