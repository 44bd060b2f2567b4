"""What enrollment takes and gives back: requests, answers and results, and the
plain-data views of a subject and a status that clients are shown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs
from attrs import frozen

from healthcode.core.models import (
    DocumentSubmission,
    FaceMatch,
    Image,
    LivenessResult,
    MaskedDocument,
    Problem,
    Status,
    Subject,
)

Purpose = Literal["enroll", "renew", "dependant"]
PURPOSES: tuple[Purpose, ...] = ("enroll", "renew", "dependant")
Outcome = Literal["created", "updated", "linked"]

ASSIST_DISPLAY_SECONDS = 30
"""How long a client should show an assisted-check result (it keeps nothing)."""


@frozen
class LivenessAnswer:
    """What a client sends back for a challenge: its nonce and the frames."""

    nonce: str
    frames: Sequence[Image] = attrs.field(repr=False)


@frozen
class EnrollmentRequest:
    """One person's enrollment (or a dependant's: then ``device_public_key`` is unused)."""

    submission: DocumentSubmission
    """The document, as ``healthcode.core.documents.make_submission`` built it."""
    declared_name: str = attrs.field(repr=False)
    """The name the person typed; checked against the name the document carries."""
    liveness: LivenessAnswer
    capture: Image = attrs.field(repr=False)
    """A still photo of the person, taken with the frames."""
    device_public_key: bytes | None = attrs.field(default=None, repr=False)
    """DER (or PEM) SubjectPublicKeyInfo of the holder's device key, P-256 or Ed25519."""
    previous: DocumentSubmission | None = None
    """For a renewed document (new number): the document enrolled before, whose
    subject the new one joins after a face match against the stored template."""
    warnings: tuple[Problem, ...] = ()
    """Warnings from ``make_submission``, passed through to the result."""


@frozen
class EnrollmentResult:
    subject: Subject
    outcome: Outcome
    """``created`` a new subject; ``updated`` the same document again; ``linked``
    a new document to an existing subject."""
    match: FaceMatch
    """The decisive match: against the stored template, else the reference."""
    reference: str
    """``stored_template``, ``document_portrait`` or ``reference_photo``."""
    liveness: LivenessResult
    status: Status
    device_public_key: bytes | None = attrs.field(repr=False)
    warnings: tuple[Problem, ...] = ()
    timings: Mapping[str, float] = attrs.field(factory=dict)
    """Seconds per stage: ``document``, ``database``, ``faces``, ``status``, ``total``."""


@frozen
class RenewalResult:
    subject: Subject
    status: Status
    match: FaceMatch
    liveness: LivenessResult
    warnings: tuple[Problem, ...] = ()
    """What the person should know and nothing stopped: the capture's
    warnings (``image_soft``)."""


@frozen
class DependantView:
    """One dependant as the holder sees it: masked fields and today's status."""

    slot: int
    subject_id: str
    masked: MaskedDocument
    status: Status
    warnings: tuple[Problem, ...] = ()
    """When the dependant was just added: the document's and the capture's
    warnings (as at enrollment); none in a list of dependants."""


@frozen
class AssistResult:
    """A masked result, shown briefly and not kept."""

    masked: MaskedDocument
    status: Status
    display_seconds: int = ASSIST_DISPLAY_SECONDS


def subject_to_dict(subject: Subject) -> dict[str, Any]:
    """What a client may be shown about a subject (no template)."""
    return {
        "subject_id": subject.subject_id,
        "kind": subject.masked.kind,
        "masked_name": subject.masked.masked_name,
        "masked_number": subject.masked.masked_number,
        "dependants": list(subject.dependants),
    }


def status_to_dict(status: Status, *, with_reasons: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "colour": status.colour.value,
        "label_zh": status.colour.label_zh,
        "label_en": status.colour.label_en,
        "valid_until": status.valid_until.isoformat(),
    }
    if with_reasons:
        data["reasons"] = list(status.reasons)
        data["sources"] = list(status.sources)
    return data
