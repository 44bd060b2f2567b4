"""The face steps of enrollment, every one through the hooks
(``healthcode_detect_faces``, ``healthcode_assess_face_quality``,
``healthcode_face_template``, ``healthcode_compare_templates``,
``healthcode_check_liveness``, ``healthcode_portrait_region``,
``healthcode_reference_face``), so that another face plugin can stand in for
the built-in one. All of them are CPU-bound: the service runs them off the
event loop."""

from __future__ import annotations

from collections.abc import Mapping

import pluggy

from healthcode.core.enrollment.errors import (
    CaptureNotFromLivenessError,
    CaptureUnusableError,
    FaceCheckUnavailableError,
    LivenessFailedError,
    ReferenceFaceUnavailableError,
)
from healthcode.core.enrollment.values import LivenessAnswer
from healthcode.core.errors import PluginError
from healthcode.core.models import (
    Document,
    DocumentSubmission,
    Face,
    FaceMatch,
    Image,
    LivenessChallenge,
    LivenessResult,
    Problem,
)


def _unusable(what: str, faces: list[Face], problems: list[Problem]) -> CaptureUnusableError:
    first = problems[0]
    return CaptureUnusableError(
        f"The {what} cannot be used: {first.message_en}",
        f"{'照片' if what == 'capture' else '视频帧'}无法使用：{first.message_zh}",
        details={
            "problem": first.code,
            "problems": [p.code for p in problems],
            "image": what,
            "faces": len(faces),
        },
    )


class FaceChecks:
    """Detection, templates, matches, liveness and the reference face, over ``pm``."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm

    def faces(self, image: Image) -> list[Face]:
        faces = self.pm.hook.healthcode_detect_faces(image=image)
        if faces is None:
            raise FaceCheckUnavailableError(details={"hook": "healthcode_detect_faces"})
        return list(faces)

    def one_face(self, image: Image, what: str) -> tuple[Face, list[Problem]]:
        """The one usable face of a live image, and the quality warnings that
        stop nothing (``image_soft``); the quality gates of the face plugin
        (frame, size, light, blur) apply when it offers them."""
        faces = self.faces(image)
        problems = self.pm.hook.healthcode_assess_face_quality(image=image, faces=faces)
        if problems is None and len(faces) != 1:
            problem = "no_face" if not faces else "more_than_one_face"
            raise CaptureUnusableError(
                details={"problem": problem, "image": what, "faces": len(faces)}
            )
        errors = [p for p in problems or () if p.severity == "error"]
        if errors:
            raise _unusable(what, faces, errors)
        return faces[0], [p for p in problems or () if p.severity != "error"]

    def template(self, image: Image, face: Face) -> bytes:
        template = self.pm.hook.healthcode_face_template(image=image, face=face)
        if template is None:
            raise FaceCheckUnavailableError(details={"hook": "healthcode_face_template"})
        return bytes(template)

    def compare(self, a: bytes, b: bytes) -> FaceMatch:
        match = self.pm.hook.healthcode_compare_templates(a=a, b=b)
        if match is None:
            raise FaceCheckUnavailableError(details={"hook": "healthcode_compare_templates"})
        if not isinstance(match, FaceMatch):
            raise PluginError(
                "healthcode_compare_templates returned a wrong type.",
                "healthcode_compare_templates 返回值类型错误。",
            )
        return match

    def largest_face_template(self, image: Image) -> bytes | None:
        faces = self.faces(image)
        if not faces:
            return None
        face = max(faces, key=lambda f: f.box[2] * f.box[3])
        return self.template(image, face)

    def live_template(
        self, challenge: LivenessChallenge, answer: LivenessAnswer, capture: Image
    ) -> tuple[bytes, LivenessResult, list[Problem]]:
        """Judge the liveness answer and return the capture's template (and the
        capture's quality warnings), after checking that the capture shows the
        person who answered."""
        result = self.pm.hook.healthcode_check_liveness(
            challenge=challenge, frames=list(answer.frames)
        )
        if result is None:
            raise FaceCheckUnavailableError(details={"hook": "healthcode_check_liveness"})
        if not result.passed:
            raise LivenessFailedError(
                details={"reasons": list(result.reasons), "score": result.score}
            )
        capture_face, warnings = self.one_face(capture, "capture")
        capture_template = self.template(capture, capture_face)
        # The still must be of the person in the frames: otherwise one person
        # answers the challenge and another person's photo gets enrolled.
        first = answer.frames[0]
        frame_template = self.template(first, self.one_face(first, "frame")[0])
        binding = self.compare(capture_template, frame_template)
        if not binding.is_match:
            raise CaptureNotFromLivenessError(
                details={
                    "similarity": round(binding.similarity, 3),
                    "threshold": binding.threshold,
                }
            )
        return capture_template, result, warnings

    def portrait_region(self, page: Image, document: Document) -> Image:
        """The page area an image reader reported for the portrait, as the face
        plugin cuts it out (``healthcode_portrait_region``); the whole page when
        no area was reported or no plugin cuts it."""
        info = document.extra.get("image")
        box = info.get("portrait_box") if isinstance(info, Mapping) else None
        if not box or len(box) != 4:
            return page
        region = self.pm.hook.healthcode_portrait_region(page=page, box=tuple(int(v) for v in box))
        return page if region is None else region

    def reference_template(
        self, document: Document, submission: DocumentSubmission
    ) -> tuple[bytes, str]:
        """The holder's reference face: the portrait on a photographed page, else
        the authority's reference photo."""
        if submission.image is not None and document.source == "image":
            return self._portrait_template(document, submission.image), "document_portrait"
        image = self.pm.hook.healthcode_reference_face(document=document)
        if image is None:
            raise ReferenceFaceUnavailableError(details={"reason": "no_reference_photo"})
        template = self.largest_face_template(image)
        if template is None:
            raise ReferenceFaceUnavailableError(details={"reason": "no_face_in_reference"})
        return template, "reference_photo"

    def _portrait_template(self, document: Document, data: bytes) -> bytes:
        from healthcode.core.images import decode_image

        page = decode_image(data)
        region = self.portrait_region(page, document)
        template = self.largest_face_template(region)
        if template is None and region is not page:
            template = self.largest_face_template(page)
        if template is None:
            raise ReferenceFaceUnavailableError(
                "No portrait was found on the document photo.",
                "证件照片上未找到人像。",
                details={"reason": "no_portrait"},
            )
        return template
