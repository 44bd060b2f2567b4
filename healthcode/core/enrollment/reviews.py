"""The review queue (后台核验): enrollments and renewals refused because the live
face did not match, kept for an operator to resolve.

An entry is written when a capture fails its decisive match: the subject's
stored template (a re-enrollment or a face-only renewal), or the document's
reference (the portrait on a photographed page, or the authority's photo) at
a first enrollment or for a renewed passport. It shows what was compared, the
similarity and the threshold, the document kind and masked number, and when;
never a number or a name. The refused face is kept encrypted (AES-GCM, bound
to the entry's subject) for as long as the entry may need it.

An operator resolves an entry once (a second resolution is refused with
``review_already_resolved``), with a reason, and the resolution is audited:

* ``confirm``: it is the same person. The next attempt of that subject (an
  enrollment with the same document, another document of the same subject, or
  a face-only renewal) that fails its usual match is accepted instead when its
  live capture matches the face the operator confirmed, within
  ``CONFIRM_GRANT_TTL`` of the confirmation, once. Everything else is checked
  as always (document, name, liveness, capture binding). The new capture then
  becomes the subject's stored template, and the kept face is erased.
* ``block``: the document is blocked (for a renewal, every document of the
  subject). Enrollment with it, adding it as a dependant and face-only
  renewal of a subject holding it are refused with ``document_blocked``. The
  kept face is erased.

A block can be lifted (``unblock``, with a reason, audited): the documents
that entry blocked may enroll and renew again, unless another blocking entry
of the subject covers them, and the entry shows the unblock (``unblocked``:
who, when, why; the block itself stays in the audit log). Only a blocking
entry can be unblocked (``review_not_blocked``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Literal

import sqlalchemy as sa
from attrs import frozen
from sqlalchemy.ext.asyncio import AsyncConnection

from healthcode.core.clock import SHANGHAI, now_utc
from healthcode.core.enrollment.errors import (
    DocumentBlockedError,
    ReviewAlreadyResolvedError,
    ReviewInputError,
    ReviewNotBlockedError,
    ReviewNotFoundError,
    ReviewReasonPersonalDataError,
)
from healthcode.core.models import FaceMatch
from healthcode.core.privacy import OperatorSecrets, decrypt_template, encrypt_template
from healthcode.core.storage import tables
from healthcode.core.storage.database import Database, write_audit

CONFIRM_GRANT_TTL: Final = dt.timedelta(hours=72)
"""How long a confirmation lets the confirmed face through, once."""
DEFAULT_PAGE_SIZE: Final = 20
MAX_PAGE_SIZE: Final = 100
REASON_MAX_CHARS: Final = 500
OPERATOR_MAX_CHARS: Final = 64
CONFIRMED_REVIEW: Final = "confirmed_review"
"""What an attempt let through by a confirmation was matched against."""

Decision = Literal["confirm", "block"]
DECISIONS: Final = ("confirm", "block")
StateFilter = Literal["open", "resolved", "all"]
STATE_FILTERS: Final = ("open", "resolved", "all")

AGAINST_LABELS: Final[Mapping[str, tuple[str, str]]] = {
    "stored_template": ("the face enrolled before (stored template)", "此前登记的人脸（已存模板）"),
    "document_portrait": ("the portrait on the photographed document", "证件照片上的人像"),
    "reference_photo": ("the authority's reference photo", "权威部门的参考照片"),
}
"""What a capture was compared with, for people (en, zh)."""

_REVIEW_AAD = b"healthcode/review/"
_NUMBER_LIKE = re.compile(r"[A-Za-z0-9]{7,}")


@frozen
class ReviewAttempt:
    """Whose attempt was refused, as a review entry records it."""

    subject_key: bytes
    """The subject, or for a first enrollment the subject it would have been
    (its document's key)."""
    document_key: bytes | None
    """The document presented; None for a face-only renewal."""
    kind: str
    masked_number: str
    reason: str
    """``face_mismatch_on_enrollment``, ``..._on_reenrollment`` or ``..._on_renewal``."""


@frozen
class Review:
    """One entry of the queue, as an operator sees it."""

    review_id: int
    reason: str
    against: str
    similarity: float | None
    threshold: float | None
    kind: str | None
    masked_number: str | None
    created_at: dt.datetime
    resolution: str | None
    """None (open), ``confirm``, ``block`` or ``unblock`` (a block lifted)."""
    resolved_at: dt.datetime | None
    resolved_by: str | None
    resolution_reason: str | None
    grant_expires_at: dt.datetime | None
    grant_used_at: dt.datetime | None
    documents_blocked: int

    @property
    def state(self) -> str:
        """``open``, ``confirmed``, ``blocked`` or ``unblocked``."""
        return {
            None: "open",
            "confirm": "confirmed",
            "block": "blocked",
            "unblock": "unblocked",
        }.get(self.resolution, str(self.resolution))

    def grant_state(self, now: dt.datetime) -> str | None:
        """For a confirmed entry: ``unused``, ``used`` or ``expired``."""
        if self.resolution != "confirm" or self.grant_expires_at is None:
            return None
        if self.grant_used_at is not None:
            return "used"
        return "unused" if now < self.grant_expires_at else "expired"

    def as_dict(self, now: dt.datetime | None = None) -> dict[str, Any]:
        """JSON-ready, times in Asia/Shanghai."""
        en, zh = AGAINST_LABELS.get(self.against, (self.against, self.against))
        return {
            "review_id": self.review_id,
            "state": self.state,
            "reason": self.reason,
            "against": self.against,
            "against_en": en,
            "against_zh": zh,
            "similarity": None if self.similarity is None else round(self.similarity, 3),
            "threshold": self.threshold,
            "kind": self.kind,
            "masked_number": self.masked_number,
            "created_at": shanghai_time(self.created_at),
            "resolution": self.resolution,
            "resolved_at": shanghai_time(self.resolved_at),
            "resolved_by": self.resolved_by,
            "resolution_reason": self.resolution_reason,
            "grant": self.grant_state(now or now_utc()),
            "grant_expires_at": shanghai_time(self.grant_expires_at),
            "grant_used_at": shanghai_time(self.grant_used_at),
            "documents_blocked": self.documents_blocked,
        }


@frozen
class ReviewPage:
    reviews: tuple[Review, ...]
    next_cursor: int | None
    """Pass as ``cursor`` for the next page; None on the last page."""
    open_count: int
    """Open entries in the whole queue."""


def shanghai_time(moment: dt.datetime | None) -> str | None:
    """ISO 8601 in Asia/Shanghai, to the second (what a person reads)."""
    return None if moment is None else moment.astimezone(SHANGHAI).isoformat(timespec="seconds")


def _template_binding(subject_key: bytes) -> bytes:
    # A kept face is bound to its entry's subject, and can never be taken for
    # a subject's own stored template (another associated-data prefix).
    return _REVIEW_AAD + subject_key


def seal_capture(secrets: OperatorSecrets, subject_key: bytes, template: bytes) -> bytes:
    """The refused capture's template, encrypted for a review entry."""
    return encrypt_template(secrets, template, subject_key=_template_binding(subject_key))


# --- what the enrollment service asks -------------------------------------------------


async def blocked_documents(conn: AsyncConnection, keys: Iterable[bytes | None]) -> bool:
    """Whether any of the documents ``keys`` is blocked."""
    wanted = [k for k in keys if k is not None]
    if not wanted:
        return False
    found = await conn.execute(
        sa.select(tables.blocked_documents.c.document_key)
        .where(tables.blocked_documents.c.document_key.in_(wanted))
        .limit(1)
    )
    return found.first() is not None


async def check_document_not_blocked(conn: AsyncConnection, *keys: bytes | None) -> None:
    if await blocked_documents(conn, keys):
        raise DocumentBlockedError(details={"reason": "document_blocked"})


async def check_subject_not_blocked(conn: AsyncConnection, subject_key: bytes) -> None:
    """Refuse a renewal of a subject one of whose documents is blocked."""
    docs, blocked = tables.subject_documents, tables.blocked_documents
    found = await conn.execute(
        sa.select(blocked.c.document_key)
        .join(docs, docs.c.document_key == blocked.c.document_key)
        .where(docs.c.subject_key == subject_key)
        .limit(1)
    )
    if found.first() is not None:
        raise DocumentBlockedError(details={"reason": "subject_blocked"})


async def use_confirmation(
    db: Database,
    secrets: OperatorSecrets,
    subject_key: bytes,
    capture_template: bytes,
    compare: Callable[[bytes, bytes], FaceMatch],
    now: dt.datetime,
) -> FaceMatch | None:
    """The match of ``capture_template`` with a face an operator confirmed for
    ``subject_key`` (within its window, not used yet), the confirmation used up
    and its face erased; None when there is no such confirmation or the face
    is another. The conditional update makes a confirmation count once across
    workers."""
    reviews = tables.enrollment_reviews
    async with db.begin() as conn:
        rows = (
            await conn.execute(
                sa.select(reviews.c.id, reviews.c.capture_template)
                .where(
                    reviews.c.subject_key == subject_key,
                    reviews.c.resolution == "confirm",
                    reviews.c.grant_used_at.is_(None),
                    reviews.c.grant_expires_at > now,
                    reviews.c.capture_template.is_not(None),
                )
                .order_by(reviews.c.id.desc())
            )
        ).all()
    for review_id, sealed in rows:
        confirmed = decrypt_template(
            secrets, bytes(sealed), subject_key=_template_binding(subject_key)
        )
        match = compare(capture_template, confirmed)
        if not match.is_match:
            continue
        async with db.begin() as conn:
            used = await conn.execute(
                reviews.update()
                .where(reviews.c.id == review_id, reviews.c.grant_used_at.is_(None))
                .values(grant_used_at=now, capture_template=None)
            )
            if used.rowcount == 1:
                await write_audit(conn, "review_confirmation_used", {"review_id": review_id})
                return match
    return None


async def erase_unneeded_faces(conn: AsyncConnection, now: dt.datetime) -> int:
    """Erase the kept faces of confirmations whose window has passed unused
    (nothing can use them any more); the number erased. For the daily purge."""
    reviews = tables.enrollment_reviews
    erased = await conn.execute(
        reviews.update()
        .where(
            reviews.c.resolution == "confirm",
            reviews.c.grant_expires_at <= now,
            reviews.c.capture_template.is_not(None),
        )
        .values(capture_template=None)
    )
    return int(erased.rowcount or 0)


# --- what operators do -----------------------------------------------------------------


def check_reason(reason: str) -> str:
    """The operator's reason, stripped; refused when empty, too long or when it
    looks like it holds a document number (it goes to the audit log)."""
    text = reason.strip()
    if not 1 <= len(text) <= REASON_MAX_CHARS:
        raise ReviewInputError(
            f"Give a reason of 1 to {REASON_MAX_CHARS} characters.",
            f"请填写 1 至 {REASON_MAX_CHARS} 个字符的处理理由。",
            details={"field": "reason", "max": REASON_MAX_CHARS},
        )
    if any(sum(c.isdigit() for c in word) >= 6 for word in _NUMBER_LIKE.findall(text)):
        raise ReviewReasonPersonalDataError(details={"field": "reason"})
    return text


def _check_operator(operator: str) -> str:
    text = operator.strip()
    if not 1 <= len(text) <= OPERATOR_MAX_CHARS or not text.isprintable():
        raise ReviewInputError(
            f"The operator label must be 1 to {OPERATOR_MAX_CHARS} printable characters.",
            f"操作员标识须为 1 至 {OPERATOR_MAX_CHARS} 个可打印字符。",
            details={"field": "operator"},
        )
    return text


def _check_page(state: str, limit: int, cursor: int | None) -> None:
    if state not in STATE_FILTERS:
        raise ReviewInputError(
            "The state filter must be open, resolved or all.",
            "状态筛选须为 open、resolved 或 all。",
            details={"field": "state", "allowed": list(STATE_FILTERS)},
        )
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ReviewInputError(
            f"The page size must be 1 to {MAX_PAGE_SIZE}.",
            f"每页条数须为 1 至 {MAX_PAGE_SIZE}。",
            details={"field": "limit", "max": MAX_PAGE_SIZE},
        )
    if cursor is not None and cursor < 0:
        raise ReviewInputError(
            "The cursor must be a value given by the previous page.",
            "游标须取自上一页返回的值。",
            details={"field": "cursor"},
        )


def _view_query() -> sa.Select[Any]:
    """Entries with their kind and masked number (from the subject for entries
    written before these were recorded) and how many documents they blocked."""
    reviews, subjects, blocked = (
        tables.enrollment_reviews,
        tables.subjects,
        tables.blocked_documents,
    )
    blocked_count = (
        sa.select(sa.func.count())
        .where(blocked.c.review_id == reviews.c.id)
        .scalar_subquery()
        .label("documents_blocked")
    )
    return sa.select(
        reviews.c.id,
        reviews.c.reason,
        sa.func.coalesce(reviews.c.against, "stored_template").label("against"),
        reviews.c.similarity,
        reviews.c.threshold,
        sa.func.coalesce(reviews.c.kind, subjects.c.kind).label("kind"),
        sa.func.coalesce(reviews.c.masked_number, subjects.c.masked_number).label("masked_number"),
        reviews.c.created_at,
        reviews.c.resolution,
        reviews.c.resolved_at,
        reviews.c.resolved_by,
        reviews.c.resolution_reason,
        reviews.c.grant_expires_at,
        reviews.c.grant_used_at,
        blocked_count,
    ).select_from(reviews.outerjoin(subjects, subjects.c.subject_key == reviews.c.subject_key))


def _review(row: Any) -> Review:
    return Review(
        review_id=int(row.id),
        reason=row.reason,
        against=row.against,
        similarity=row.similarity,
        threshold=row.threshold,
        kind=row.kind,
        masked_number=row.masked_number,
        created_at=row.created_at,
        resolution=row.resolution,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        resolution_reason=row.resolution_reason,
        grant_expires_at=row.grant_expires_at,
        grant_used_at=row.grant_used_at,
        documents_blocked=int(row.documents_blocked or 0),
    )


async def _block(conn: AsyncConnection, review_id: int, now: dt.datetime) -> int:
    """Block the entry's document, or for a renewal every document of its
    subject; documents blocked already stay as they were. The count newly blocked."""
    reviews, docs, blocked = (
        tables.enrollment_reviews,
        tables.subject_documents,
        tables.blocked_documents,
    )
    subject_key, document_key = (
        await conn.execute(
            sa.select(reviews.c.subject_key, reviews.c.document_key).where(
                reviews.c.id == review_id
            )
        )
    ).one()
    if document_key is not None:
        keys = {bytes(document_key)}
    else:
        found = await conn.execute(
            sa.select(docs.c.document_key).where(docs.c.subject_key == subject_key)
        )
        keys = {bytes(k) for (k,) in found}
    already = {
        bytes(k)
        for (k,) in await conn.execute(
            sa.select(blocked.c.document_key).where(blocked.c.document_key.in_(keys))
        )
    }
    new = sorted(keys - already)
    if new:
        await conn.execute(
            blocked.insert(),
            [{"document_key": k, "review_id": review_id, "blocked_at": now} for k in new],
        )
    return len(new)


async def _resolution_of(conn: AsyncConnection, review_id: int) -> Any:
    """The entry's ``resolution`` and ``resolved_at`` (to say why a change was
    refused); ``review_not_found`` when there is no such entry."""
    reviews = tables.enrollment_reviews
    row = (
        await conn.execute(
            sa.select(reviews.c.resolution, reviews.c.resolved_at).where(reviews.c.id == review_id)
        )
    ).one_or_none()
    if row is None:
        raise ReviewNotFoundError(details={"review_id": review_id})
    return row


class ReviewService:
    """List, show and resolve entries of the review queue.

    >>> reviews = ReviewService(db)                                  # doctest: +SKIP
    >>> page = await reviews.list(state="open")                      # doctest: +SKIP
    >>> await reviews.resolve(3, "block", "stolen", operator="cli")  # doctest: +SKIP
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(
        self, *, state: str = "open", limit: int = DEFAULT_PAGE_SIZE, cursor: int | None = None
    ) -> ReviewPage:
        """Entries in the order they were written (the oldest open one first),
        ``limit`` at a time, after the entry ``cursor``."""
        _check_page(state, limit, cursor)
        reviews = tables.enrollment_reviews
        query = _view_query().order_by(reviews.c.id).limit(limit + 1)
        if state == "open":
            query = query.where(reviews.c.resolved_at.is_(None))
        elif state == "resolved":
            query = query.where(reviews.c.resolved_at.is_not(None))
        if cursor is not None:
            query = query.where(reviews.c.id > cursor)
        async with self.db.begin() as conn:
            rows = (await conn.execute(query)).all()
            open_count = (
                await conn.execute(
                    sa.select(sa.func.count())
                    .select_from(reviews)
                    .where(reviews.c.resolved_at.is_(None))
                )
            ).scalar_one()
        page = tuple(_review(row) for row in rows[:limit])
        more = len(rows) > limit
        return ReviewPage(
            reviews=page,
            next_cursor=page[-1].review_id if more and page else None,
            open_count=int(open_count),
        )

    async def get(self, review_id: int) -> Review:
        async with self.db.begin() as conn:
            row = (
                await conn.execute(_view_query().where(tables.enrollment_reviews.c.id == review_id))
            ).one_or_none()
        if row is None:
            raise ReviewNotFoundError(details={"review_id": review_id})
        return _review(row)

    async def resolve(
        self,
        review_id: int,
        decision: str,
        reason: str,
        *,
        operator: str,
        now: dt.datetime | None = None,
    ) -> Review:
        """Confirm (the same person: one retry allowed, see the module doc) or
        block (the document), once; audited as ``review_resolve``. A resolved
        entry is never changed: ``review_already_resolved``."""
        if decision not in DECISIONS:
            raise ReviewInputError(
                "The decision must be confirm or block.",
                "处理决定须为 confirm（确认本人）或 block（停用证件）。",
                details={"field": "decision", "allowed": list(DECISIONS)},
            )
        reason = check_reason(reason)
        operator = _check_operator(operator)
        now = now or now_utc()
        values: dict[str, Any] = {
            "resolution": decision,
            "resolved_at": now,
            "resolved_by": operator,
            "resolution_reason": reason,
        }
        if decision == "confirm":
            values["grant_expires_at"] = now + CONFIRM_GRANT_TTL
        else:
            values["capture_template"] = None
        reviews = tables.enrollment_reviews
        async with self.db.begin() as conn:
            # Conditional: of two operators resolving at once, one wins.
            changed = await conn.execute(
                reviews.update()
                .where(reviews.c.id == review_id, reviews.c.resolved_at.is_(None))
                .values(**values)
            )
            if changed.rowcount != 1:
                await self._refuse_resolution(conn, review_id)
            blocked = await _block(conn, review_id, now) if decision == "block" else 0
            await write_audit(
                conn,
                "review_resolve",
                {
                    "review_id": review_id,
                    "decision": decision,
                    "operator": operator,
                    "reason": reason,
                    "documents_blocked": blocked,
                },
            )
        return await self.get(review_id)

    async def unblock(
        self, review_id: int, reason: str, *, operator: str, now: dt.datetime | None = None
    ) -> Review:
        """Lift a block (a wrong decision, an appeal upheld): the documents this
        entry blocked may enroll and renew again; audited as ``review_unblock``
        with how many. Only a blocking entry: ``review_not_blocked``."""
        reason = check_reason(reason)
        operator = _check_operator(operator)
        now = now or now_utc()
        reviews, blocked = tables.enrollment_reviews, tables.blocked_documents
        async with self.db.begin() as conn:
            # Conditional: of two operators unblocking at once, one does.
            changed = await conn.execute(
                reviews.update()
                .where(reviews.c.id == review_id, reviews.c.resolution == "block")
                .values(
                    resolution="unblock",
                    resolved_at=now,
                    resolved_by=operator,
                    resolution_reason=reason,
                )
            )
            if changed.rowcount != 1:
                row = await _resolution_of(conn, review_id)
                raise ReviewNotBlockedError(
                    details={"review_id": review_id, "resolution": row.resolution}
                )
            lifted = await conn.execute(blocked.delete().where(blocked.c.review_id == review_id))
            # A document another blocking entry of the subject covers stays blocked.
            still = 0
            others = await conn.execute(
                sa.select(reviews.c.id).where(
                    reviews.c.resolution == "block",
                    reviews.c.subject_key
                    == sa.select(reviews.c.subject_key)
                    .where(reviews.c.id == review_id)
                    .scalar_subquery(),
                )
            )
            for (other,) in others.all():
                still += await _block(conn, other, now)
            await write_audit(
                conn,
                "review_unblock",
                {
                    "review_id": review_id,
                    "operator": operator,
                    "reason": reason,
                    "documents_unblocked": lifted.rowcount - still,
                },
            )
        return await self.get(review_id)

    async def _refuse_resolution(self, conn: AsyncConnection, review_id: int) -> None:
        row = await _resolution_of(conn, review_id)
        raise ReviewAlreadyResolvedError(
            details={
                "review_id": review_id,
                "resolution": row.resolution,
                "resolved_at": shanghai_time(row.resolved_at),
            }
        )


__all__ = [
    "AGAINST_LABELS",
    "CONFIRMED_REVIEW",
    "CONFIRM_GRANT_TTL",
    "DECISIONS",
    "STATE_FILTERS",
    "Decision",
    "Review",
    "ReviewAttempt",
    "ReviewPage",
    "ReviewService",
    "StateFilter",
    "blocked_documents",
    "check_document_not_blocked",
    "check_reason",
    "check_subject_not_blocked",
    "erase_unneeded_faces",
    "seal_capture",
    "shanghai_time",
    "use_confirmation",
]
