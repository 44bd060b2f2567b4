"""Subjects, their documents and their dependants in the database.

Subjects are keyed by the HMAC of their first document's key; each document
enrolled points at its subject (``subject_documents``); templates are stored
encrypted (AES-GCM) and bound to their subject's key.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from healthcode.core.enrollment.errors import (
    DependantExistsError,
    DependantLimitError,
    SubjectNotFoundError,
)
from healthcode.core.enrollment.reviews import ReviewAttempt
from healthcode.core.models import Document, FaceMatch, MaskedDocument, Subject
from healthcode.core.privacy import (
    OperatorSecrets,
    decrypt_template,
    subject_id_hex,
    subject_key_bytes,
)
from healthcode.core.storage import tables
from healthcode.core.storage.database import Database
from healthcode.core.storage.tables import MAX_DEPENDANTS

log = logging.getLogger("healthcode.core.enrollment")


def subject_key(subject_id: str) -> bytes:
    """The key of ``subject_id``; ``SubjectNotFoundError`` for a malformed id."""
    try:
        return subject_key_bytes(subject_id)
    except ValueError:
        raise SubjectNotFoundError(details={"reason": "malformed_subject_id"}) from None


def device_key(row: Any | None) -> bytes | None:
    """The device public key stored on a subject row, if any."""
    if row is None or row.device_public_key is None:
        return None
    return bytes(row.device_public_key)


def stored_template(secrets: OperatorSecrets, row: Any | None) -> bytes | None:
    """The decrypted template of a subject row; ``None`` when it has none."""
    if row is None or row.encrypted_template is None:
        return None
    return decrypt_template(
        secrets, bytes(row.encrypted_template), subject_key=bytes(row.subject_key)
    )


async def subject_of_document(conn: AsyncConnection, document_key: bytes) -> bytes | None:
    docs = tables.subject_documents
    row = await conn.execute(
        sa.select(docs.c.subject_key).where(docs.c.document_key == document_key)
    )
    value = row.scalar_one_or_none()
    return bytes(value) if value is not None else None


async def subject_row(conn: AsyncConnection, key: bytes) -> Any:
    return (
        await conn.execute(sa.select(tables.subjects).where(tables.subjects.c.subject_key == key))
    ).one_or_none()


async def load_subject(db: Database, key: bytes, row: Any | None = None) -> Subject:
    """The subject ``key`` with its dependants' ids (``row``: already read)."""
    async with db.begin() as conn:
        if row is None:
            row = await subject_row(conn, key)
        if row is None:
            raise SubjectNotFoundError()
        deps = await conn.execute(
            sa.select(tables.dependants.c.dependant_key)
            .where(tables.dependants.c.holder_key == key)
            .order_by(tables.dependants.c.slot)
        )
        dependant_ids = tuple(subject_id_hex(bytes(k)) for (k,) in deps)
    return Subject(
        subject_id=subject_id_hex(key),
        masked=MaskedDocument(row.kind, row.masked_name, row.masked_number),
        encrypted_template=(
            bytes(row.encrypted_template) if row.encrypted_template is not None else None
        ),
        dependants=dependant_ids,
    )


async def record_review(
    db: Database,
    attempt: ReviewAttempt,
    against: str,
    match: FaceMatch,
    now: dt.datetime,
    *,
    sealed_capture: bytes | None = None,
) -> int:
    """Keep a refused face match for an operator to review (the review queue,
    ``healthcode.core.enrollment.reviews``): what was compared, the scores, the
    document's kind and masked number, and the refused face, encrypted
    (``sealed_capture``, from ``reviews.seal_capture``). The entry's id."""
    async with db.begin() as conn:
        result = await conn.execute(
            tables.enrollment_reviews.insert().values(
                subject_key=attempt.subject_key,
                document_key=attempt.document_key,
                reason=attempt.reason,
                against=against,
                kind=attempt.kind,
                masked_number=attempt.masked_number,
                similarity=float(match.similarity),
                threshold=float(match.threshold),
                capture_template=sealed_capture,
                created_at=now,
            )
        )
        inserted = result.inserted_primary_key
        assert inserted is not None
        review_id = int(inserted[0])
    log.warning(
        "enrollment refused: %s against %s (review %d recorded)", attempt.reason, against, review_id
    )
    return review_id


async def replace_template(
    conn: AsyncConnection, key: bytes, sealed_template: bytes, now: dt.datetime
) -> None:
    """Store a new (encrypted) template for the subject ``key``."""
    subjects = tables.subjects
    await conn.execute(
        subjects.update()
        .where(subjects.c.subject_key == key)
        .values(encrypted_template=sealed_template, updated_at=now)
    )


async def link_document(
    conn: AsyncConnection, document_key: bytes, key: bytes, kind: str, now: dt.datetime
) -> None:
    """Record that the document ``document_key`` belongs to the subject ``key``."""
    await conn.execute(
        tables.subject_documents.insert().values(
            document_key=document_key, subject_key=key, kind=kind, created_at=now
        )
    )


async def write_subject(
    conn: AsyncConnection, key: bytes, values: dict[str, Any], *, create: bool, now: dt.datetime
) -> None:
    """Insert the subject ``key`` (``create``) or update it with ``values``."""
    subjects = tables.subjects
    if create:
        await conn.execute(subjects.insert().values(subject_key=key, created_at=now, **values))
    else:
        await conn.execute(subjects.update().where(subjects.c.subject_key == key).values(**values))


# --- dependants ------------------------------------------------------------------------


async def check_dependant_room(
    conn: AsyncConnection, holder_key: bytes, dependant_key: bytes
) -> list[int]:
    """The holder's taken slots, when one more dependant (not already theirs) fits."""
    deps = tables.dependants
    rows = (
        await conn.execute(
            sa.select(deps.c.slot, deps.c.dependant_key).where(deps.c.holder_key == holder_key)
        )
    ).all()
    if any(bytes(k) == dependant_key for _, k in rows):
        raise DependantExistsError()
    slots = sorted(int(s) for s, _ in rows)
    if len(slots) >= MAX_DEPENDANTS:
        raise DependantLimitError(details={"limit": MAX_DEPENDANTS})
    return slots


async def add_dependant_subject(
    conn: AsyncConnection,
    dependant_key: bytes,
    document: Document,
    masked: MaskedDocument,
    now: dt.datetime,
) -> None:
    """Create the dependant's subject (no template, no device key) unless it exists."""
    if await subject_row(conn, dependant_key) is not None:
        return
    values = {
        "kind": masked.kind,
        "masked_name": masked.masked_name,
        "masked_number": masked.masked_number,
        "encrypted_template": None,
        "device_public_key": None,
        "updated_at": now,
    }
    await write_subject(conn, dependant_key, values, create=True, now=now)
    await link_document(conn, dependant_key, dependant_key, document.kind, now)


async def take_dependant_slot(
    conn: AsyncConnection,
    holder_key: bytes,
    dependant_key: bytes,
    taken: list[int],
    now: dt.datetime,
) -> int:
    """Give the dependant the holder's lowest slot not in ``taken``."""
    slot = next(s for s in range(1, MAX_DEPENDANTS + 2) if s not in taken)
    await conn.execute(
        tables.dependants.insert().values(
            holder_key=holder_key, dependant_key=dependant_key, slot=slot, created_at=now
        )
    )
    return slot


async def dependant_rows(conn: AsyncConnection, holder_key: bytes) -> list[Any]:
    """(slot, key, kind, masked name, masked number) of each of the holder's dependants."""
    deps, subjects = tables.dependants, tables.subjects
    return list(
        (
            await conn.execute(
                sa.select(
                    deps.c.slot,
                    deps.c.dependant_key,
                    subjects.c.kind,
                    subjects.c.masked_name,
                    subjects.c.masked_number,
                )
                .join(subjects, subjects.c.subject_key == deps.c.dependant_key)
                .where(deps.c.holder_key == holder_key)
                .order_by(deps.c.slot)
            )
        ).all()
    )
