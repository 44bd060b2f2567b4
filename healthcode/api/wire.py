"""Wire types (msgspec Structs) and their conversion from domain values.

Requests forbid unknown fields; responses carry masked identity only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import msgspec

from healthcode.core.enrollment import status_to_dict
from healthcode.core.enrollment.reviews import Review, ReviewPage
from healthcode.core.models import CheckResult, DocumentType, Status
from healthcode.core.models import Problem as DomainProblem
from healthcode.core.passes.models import Verdict


class DocumentCheckRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A typed number or an MRZ text; ``kind`` may name the document kind."""

    number: str | None = None
    mrz: str | None = None
    kind: str | None = None
    issuing_state: str | None = None


class DocumentProblem(msgspec.Struct, kw_only=True):
    code: str
    severity: str
    field: str | None
    message_en: str
    message_zh: str
    details: dict[str, Any]


class DocumentCheckResponse(msgspec.Struct, kw_only=True):
    valid: bool
    """Well-formed document of a known kind (expiry is reported, not counted)."""
    kind: str
    source: str
    document_code: str | None
    issuing_state: str | None
    nationality: str | None
    sex: str | None
    expiry_date: str | None
    masked_name: str
    masked_number: str
    problems: list[DocumentProblem]


class DocumentKind(msgspec.Struct, kw_only=True):
    kind: str
    name_en: str
    name_zh: str
    inputs: list[str]
    example: str | None


class Health(msgspec.Struct, kw_only=True):
    status: str
    version: str


class Readiness(msgspec.Struct, kw_only=True):
    status: str
    backend: str


def problem_to_wire(problem: DomainProblem) -> DocumentProblem:
    return DocumentProblem(
        code=problem.code,
        severity=problem.severity,
        field=problem.field,
        message_en=problem.message_en,
        message_zh=problem.message_zh,
        details=dict(problem.details),
    )


def check_result_to_wire(result: CheckResult) -> DocumentCheckResponse:
    document = result.document
    masked = result.masked
    return DocumentCheckResponse(
        valid=result.is_valid,
        kind=document.kind,
        source=document.source,
        document_code=document.document_code,
        issuing_state=document.issuing_state,
        nationality=document.nationality,
        sex=document.sex,
        expiry_date=document.expiry_date.isoformat() if document.expiry_date else None,
        masked_name=masked.masked_name if masked else "",
        masked_number=masked.masked_number if masked else "",
        problems=[problem_to_wire(p) for p in result.problems],
    )


def status_to_wire(status: Status) -> StatusView:
    """Colour, bilingual label and validity; never the reasons."""
    return StatusView(**status_to_dict(status))


def kind_to_wire(kind: DocumentType) -> DocumentKind:
    return DocumentKind(
        kind=kind.kind,
        name_en=kind.name_en,
        name_zh=kind.name_zh,
        inputs=sorted(kind.inputs),
        example=kind.example,
    )


# --- enrollment, status, passes ---------------------------------------------------------


class ChallengeRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    purpose: Literal["enroll", "renew", "dependant"] = "enroll"
    """``enroll``, ``renew`` or ``dependant``."""


class ChallengeResponse(msgspec.Struct, kw_only=True):
    nonce: str
    actions: list[str]
    """In order: ``blink``, ``turn_left``, ``turn_right``, ``open_mouth``, ``nod``."""
    issued_at: str
    expires_at: str


class StatusView(msgspec.Struct, kw_only=True):
    colour: str
    label_zh: str
    label_en: str
    valid_until: str


class SubjectView(msgspec.Struct, kw_only=True):
    subject_id: str
    kind: str
    masked_name: str
    masked_number: str


class EnrollmentResponse(msgspec.Struct, kw_only=True):
    outcome: str
    subject: SubjectView
    status: StatusView
    similarity: float
    reference: str
    warnings: list[DocumentProblem]


class RenewalResponse(msgspec.Struct, kw_only=True):
    subject: SubjectView
    status: StatusView
    similarity: float
    warnings: list[DocumentProblem]
    """What nothing stopped and the person should know (a soft capture)."""


class PassResponse(msgspec.Struct, kw_only=True):
    text: str
    """``HC1:...``: what the QR code carries; the holder's device adds a fresh
    presentation signature before showing it."""
    status: StatusView
    issuer: str
    kid: str
    valid_until: str


class DependantResponse(msgspec.Struct, kw_only=True):
    slot: int
    subject: SubjectView
    status: StatusView


class DependantAddedResponse(DependantResponse, kw_only=True):
    warnings: list[DocumentProblem]
    """The dependant's document and capture warnings, as at enrollment."""


class AssistRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    number: str
    kind: str | None = None
    issuing_state: str | None = None


class AssistResponse(msgspec.Struct, kw_only=True):
    masked_name: str
    masked_number: str
    status: StatusView
    display_seconds: int


class VerificationRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    presentation: str
    """What the guard scanned: ``HCP1:...``."""


class VerificationResponse(msgspec.Struct, kw_only=True):
    admit: bool
    """Let this person in: true only for a genuine, current, green pass. Show
    this first; ``ok`` alone is not an admission (a red pass is genuine)."""
    decision_zh: str
    """``通行`` or ``禁止通行``."""
    decision_en: str
    """``Admit`` or ``Do not admit``."""
    ok: bool
    """The pass is genuine and current (signature, issuer, window, device,
    revocation, replay); it says nothing of its colour."""
    code: str
    """``accepted`` or the refusal code (``stale_presentation``, ``revoked``, ...)."""
    message_en: str
    message_zh: str
    colour: str | None = None
    label_zh: str | None = None
    label_en: str | None = None
    masked_name: str | None = None
    masked_number: str | None = None
    issuer: str | None = None
    valid_until: str | None = None
    notices: list[str] = msgspec.field(default_factory=list)


class StatusImportResponse(msgspec.Struct, kw_only=True):
    day: str
    source: str
    imported: int
    invalid: int
    invalid_rows: list[dict[str, Any]]
    passes_checked: int
    passes_revoked: int


class StatusRecheckResponse(msgspec.Struct, kw_only=True):
    passes_checked: int
    passes_revoked: int


class PurgeResponse(msgspec.Struct, kw_only=True):
    deleted: dict[str, int]


class TextDocument(msgspec.Struct, kw_only=True):
    """A signed document as text (trust list export, revocation list)."""

    text: str


class IssuerKeyView(msgspec.Struct, kw_only=True):
    kid: str
    alg: str
    created_at: str
    retired_at: str | None
    verify_until: str | None


class KeyRotationRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    alg: Literal["ES256", "EdDSA"] | None = None
    """None: keep the current algorithm."""


class TrustedIssuerView(msgspec.Struct, kw_only=True):
    region_code: str
    name: str
    kids: list[str]


class TrustAddRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    export: str
    """The peer's signed issuer export (``HCK1:...``, from its ``/public/issuer``)."""


# --- the review queue (后台核验) ------------------------------------------------------


class ReviewView(msgspec.Struct, kw_only=True):
    """One entry of the review queue: masked document only, times in Asia/Shanghai."""

    review_id: int
    state: str
    """``open``, ``confirmed`` or ``blocked``."""
    reason: str
    """``face_mismatch_on_enrollment``, ``face_mismatch_on_reenrollment`` or
    ``face_mismatch_on_renewal``."""
    against: str
    """What the live capture was compared with: ``stored_template``,
    ``document_portrait`` or ``reference_photo``."""
    against_en: str
    against_zh: str
    similarity: float | None
    threshold: float | None
    kind: str | None
    masked_number: str | None
    created_at: str
    resolution: str | None
    """None while open, else ``confirm`` or ``block``."""
    resolved_at: str | None
    resolved_by: str | None
    resolution_reason: str | None
    grant: str | None
    """For a confirmed entry: ``unused`` (the confirmed face may retry once until
    ``grant_expires_at``), ``used`` or ``expired``."""
    grant_expires_at: str | None
    grant_used_at: str | None
    documents_blocked: int


class ReviewPageView(msgspec.Struct, kw_only=True):
    reviews: list[ReviewView]
    next_cursor: int | None
    """Pass as ``cursor`` for the next page; null on the last page."""
    open_count: int


class ReviewResolveRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    decision: Literal["confirm", "block"]
    """``confirm``: the same person (one retry of that face within 72 hours);
    ``block``: block the document."""
    reason: str
    """Why, in a few words; no personal data (it is audited)."""


class ReviewUnblockRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reason: str
    """Why the block is lifted, in a few words; no personal data (it is audited)."""


def review_to_wire(review: Review, now: dt.datetime | None = None) -> ReviewView:
    return ReviewView(**review.as_dict(now))


def review_page_to_wire(page: ReviewPage, now: dt.datetime | None = None) -> ReviewPageView:
    return ReviewPageView(
        reviews=[review_to_wire(r, now) for r in page.reviews],
        next_cursor=page.next_cursor,
        open_count=page.open_count,
    )


def verdict_to_wire(verdict: Verdict) -> VerificationResponse:
    """What a guard's screen shows of a verdict: colour, masked identity, issuer,
    validity, or the refusal's code and messages; the notices' codes."""
    return VerificationResponse(
        admit=verdict.admit,
        decision_zh=verdict.decision_zh,
        decision_en=verdict.decision_en,
        ok=verdict.ok,
        code=verdict.code,
        message_en=verdict.message_en,
        message_zh=verdict.message_zh,
        colour=verdict.colour.value if verdict.colour else None,
        label_zh=verdict.colour.label_zh if verdict.colour else None,
        label_en=verdict.colour.label_en if verdict.colour else None,
        masked_name=verdict.masked.masked_name if verdict.masked else None,
        masked_number=verdict.masked.masked_number if verdict.masked else None,
        issuer=verdict.issuer,
        valid_until=verdict.valid_until.isoformat() if verdict.valid_until else None,
        notices=[n.code for n in verdict.notices],
    )
