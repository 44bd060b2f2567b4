"""Enrollment: a liveness challenge, then the document, the frames that answer
it, a still capture and the holder's device public key.

Every handler that takes frames checks the cheap fields and the challenge
first, then the images' headers, and only then decodes them, off the event
loop (:func:`answer_images`).
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

from litestar import Controller, Request, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, JSONBody

from healthcode.api.metrics import metrics_of
from healthcode.api.problems import COMMON_RESPONSES, INVALID_INPUT, problem_spec
from healthcode.api.services import services
from healthcode.api.wire import (
    ChallengeRequest,
    ChallengeResponse,
    EnrollmentResponse,
    SubjectView,
    problem_to_wire,
    status_to_wire,
)
from healthcode.core.documents import make_submission
from healthcode.core.enrollment import (
    MAX_ANSWER_FRAMES,
    EnrollmentRequest,
    EnrollmentService,
    LivenessAnswer,
    Purpose,
    check_frame_count,
    normalise_device_key,
)
from healthcode.core.errors import EmptyInputError, InputError
from healthcode.core.models import Image, MaskedDocument, Subject

ENROLLMENT_RESPONSES = {
    **COMMON_RESPONSES,
    **INVALID_INPUT,
    403: problem_spec("The live face does not match (recorded for review)."),
    409: problem_spec("The challenge was already used, or the enrollment conflicts."),
}


@dataclass
class EnrollmentForm:
    """multipart/form-data fields of an enrollment."""

    challenge_nonce: str
    declared_name: str
    device_public_key: str
    """The holder's device public key: PEM, or base64 of DER (P-256 or Ed25519)."""
    capture: UploadFile
    frames: list[UploadFile] = field(default_factory=list)
    number: str | None = None
    mrz: str | None = None
    kind: str | None = None
    issuing_state: str | None = None
    document_image: UploadFile | None = None


@contextlib.asynccontextmanager
async def answer_images(
    enrollment: EnrollmentService,
    purpose: Purpose,
    nonce: str,
    frames: list[UploadFile],
    capture: UploadFile,
) -> AsyncIterator[tuple[LivenessAnswer, Image]]:
    """The decoded answer to challenge ``nonce`` and the capture, held while the
    block runs. In order, each refusal before any pixel is decoded: too many
    frames for any challenge; a nonce that is unknown, of another purpose,
    used or expired (a look-up; the challenge is used up later, when judged);
    too many frames for this challenge; an image whose header is refused; too
    many pixels in all. Decoding then runs in the service's bounded pool."""
    check_frame_count(
        len(frames), MAX_ANSWER_FRAMES, "At most {max} frames may be sent.", "最多可提交 {max} 帧。"
    )
    challenge = await enrollment.check_challenge(nonce, purpose)
    frame_bytes = [await f.read() for f in frames]
    capture_bytes = await capture.read()
    async with enrollment.image_intake(challenge, frame_bytes, capture_bytes) as (decoded, still):
        yield LivenessAnswer(nonce=nonce, frames=decoded), still


class DocumentForm(Protocol):
    """The fields an enrollment's form and a dependant's share: the document,
    the declared name and the answer to a challenge."""

    challenge_nonce: str
    declared_name: str
    capture: UploadFile
    frames: list[UploadFile]
    number: str | None
    mrz: str | None
    kind: str | None
    issuing_state: str | None
    document_image: UploadFile | None


@contextlib.asynccontextmanager
async def form_request(
    enrollment: EnrollmentService,
    purpose: Purpose,
    form: DocumentForm,
    device_public_key: bytes | None = None,
) -> AsyncIterator[EnrollmentRequest]:
    """The request ``form`` makes, held while the block runs: its document is
    read first, then its answer to the challenge (:func:`answer_images`)."""
    image_bytes = await form.document_image.read() if form.document_image else None
    submission, warnings = make_submission(
        kind=form.kind,
        number=form.number,
        mrz=form.mrz,
        image=image_bytes,
        issuing_state=form.issuing_state,
    )
    async with answer_images(
        enrollment, purpose, form.challenge_nonce, form.frames, form.capture
    ) as (liveness, capture):
        yield EnrollmentRequest(
            submission=submission,
            declared_name=form.declared_name,
            liveness=liveness,
            capture=capture,
            device_public_key=device_public_key,
            warnings=tuple(warnings),
        )


def device_key_bytes(text: str) -> bytes:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        return text.encode()
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise InputError(
            "The device public key must be PEM or base64 DER.",
            "设备公钥须为 PEM 或 base64 编码的 DER。",
            code="device_key_invalid",
        ) from None


def masked_subject_view(subject_id: str, masked: MaskedDocument) -> SubjectView:
    return SubjectView(
        subject_id=subject_id,
        kind=masked.kind,
        masked_name=masked.masked_name,
        masked_number=masked.masked_number,
    )


def subject_view(subject: Subject) -> SubjectView:
    return masked_subject_view(subject.subject_id, subject.masked)


class EnrollmentController(Controller):
    path = "/enrollments"
    tags = ["enrollments"]

    @post(
        "/challenges",
        operation_id="issueChallenge",
        status_code=201,
        responses={**COMMON_RESPONSES, **INVALID_INPUT},
    )
    async def challenge(
        self, request: Request[Any, Any, Any], data: JSONBody[ChallengeRequest]
    ) -> ChallengeResponse:
        """A fresh active-liveness challenge (actions in order, nonce, expiry)."""
        challenge = await services(request.app.state).enrollment.issue_challenge(
            purpose=data.purpose
        )
        return ChallengeResponse(
            nonce=challenge.nonce,
            actions=list(challenge.actions),
            issued_at=challenge.issued_at.isoformat(),
            expires_at=challenge.expires_at.isoformat(),
        )

    @post("/", operation_id="enroll", status_code=201, responses=ENROLLMENT_RESPONSES)
    async def enroll(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[EnrollmentForm, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> EnrollmentResponse:
        """Enroll (or re-enroll) a person: document + liveness + face + device key.

        The document is a typed ``number``, an ``mrz`` text, or a
        ``document_image``. Nothing is written unless every check passes.
        """
        with metrics_of(request.app.state).enrollment("enroll") as counted:
            if data.number is None and data.mrz is None and data.document_image is None:
                raise EmptyInputError(
                    "Give the document as a number, an MRZ or an image.",
                    "请以号码、机读区或照片形式提供证件。",
                )
            device_key = normalise_device_key(device_key_bytes(data.device_public_key))
            enrollment = services(request.app.state).enrollment
            async with form_request(enrollment, "enroll", data, device_key) as enrollment_request:
                result = await enrollment.enroll(enrollment_request)
            counted.result = result.outcome
        return EnrollmentResponse(
            outcome=result.outcome,
            subject=subject_view(result.subject),
            status=status_to_wire(result.status),
            similarity=round(result.match.similarity, 4),
            reference=result.reference,
            warnings=[problem_to_wire(p) for p in result.warnings],
        )
