"""Resolving a subject's status for today.

Core reads what storage holds about the subject for the day (imported
authority entries, peer-list matches) and hands it to every status source
through ``healthcode_resolve_status``; the most severe colour wins; every
contribution is kept for audit (never shown to guards); nobody reporting means
green 未见异常. A status is valid until the next 24:00 Asia/Shanghai.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import pluggy
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from healthcode.core.clock import next_cutoff, now_utc, today_shanghai
from healthcode.core.documents import mask_document
from healthcode.core.errors import PluginError
from healthcode.core.models import Colour, Document, Status, StatusContribution, Subject
from healthcode.core.plugins import get_plugin_manager
from healthcode.core.privacy import (
    OperatorSecrets,
    document_key_for,
    subject_id_hex,
    subject_key_bytes,
)
from healthcode.core.status.entries import AuthorityEntry, StatusEntries
from healthcode.core.status.peer_tokens import fetch_peer_entries
from healthcode.core.storage import tables
from healthcode.core.storage.database import Database


async def fetch_authority_entries(
    conn: AsyncConnection, subject_key: bytes, day: dt.date
) -> tuple[AuthorityEntry, ...]:
    """Entries for the subject's own key and every document linked to it."""
    entries = tables.status_entries
    linked = sa.select(tables.subject_documents.c.document_key).where(
        tables.subject_documents.c.subject_key == subject_key
    )
    rows = await conn.execute(
        sa.select(entries.c.source, entries.c.colour)
        .where(entries.c.day == day)
        # IN over a UNION (not an OR) so that both backends probe the primary key.
        .where(
            entries.c.subject_key.in_(
                sa.union_all(sa.select(sa.literal(subject_key, sa.LargeBinary)), linked)
            )
        )
        .order_by(entries.c.source)
    )
    seen: dict[str, Colour] = {}
    for source, colour in rows:
        prior = seen.get(source)
        value = Colour(colour)
        if prior is None or value.severity > prior.severity:
            seen[source] = value
    return tuple(AuthorityEntry(source, colour) for source, colour in seen.items())


async def fetch_status_entries(
    conn: AsyncConnection, subject_key: bytes, day: dt.date
) -> StatusEntries:
    """What storage holds about the subject for ``day``: the hook's ``entries``."""
    return StatusEntries(
        authority=await fetch_authority_entries(conn, subject_key, day),
        peers=await fetch_peer_entries(conn, subject_key, day),
    )


def _flatten(results: Iterable[object]) -> list[StatusContribution]:
    contributions: list[StatusContribution] = []
    for result in results:
        items: Iterable[object]
        if result is None:
            continue
        items = (result,) if isinstance(result, StatusContribution) else result  # type: ignore[assignment]
        if not isinstance(items, Iterable):
            items = (items,)
        for item in items:
            if not isinstance(item, StatusContribution):
                raise PluginError(
                    f"healthcode_resolve_status returned {type(item).__name__}, "
                    "expected StatusContribution.",
                    "healthcode_resolve_status 返回值类型错误。",
                )
            contributions.append(item)
    return contributions


def combine_contributions(
    contributions: Sequence[StatusContribution], valid_until: dt.datetime
) -> Status:
    """Most severe wins; every contribution becomes a reason (for audit)."""
    colour = Colour.GREEN
    for contribution in contributions:
        if contribution.colour.severity > colour.severity:
            colour = contribution.colour
    ordered = sorted(contributions, key=lambda c: (-c.colour.severity, c.source))
    return Status(
        colour=colour,
        valid_until=valid_until,
        reasons=tuple(f"{c.source}: {c.colour.value}: {c.reason}" for c in ordered),
        sources=tuple(dict.fromkeys(c.source for c in ordered)),
    )


async def _record_decision(
    db: Database,
    *,
    day: dt.date,
    subject_key: bytes,
    status: Status,
    contributions: Sequence[StatusContribution],
    now: dt.datetime,
) -> None:
    async with db.begin() as conn:
        await conn.execute(
            tables.status_decisions.insert().values(
                day=day,
                subject_key=subject_key,
                colour=status.colour.value,
                valid_until=status.valid_until,
                contributions=[
                    {"source": c.source, "colour": c.colour.value, "reason": c.reason}
                    for c in contributions
                ],
                decided_at=now,
            )
        )


async def resolve_status(
    db: Database,
    subject: Subject,
    *,
    now: dt.datetime | None = None,
    pm: pluggy.PluginManager | None = None,
    record: bool = True,
) -> Status:
    """Today's status (Asia/Shanghai) of ``subject``, valid until the next 24:00.

    With ``record`` the decision and all contributions are stored for audit
    (in the day-scoped ``status_decisions`` table).
    """
    now = now or now_utc()
    day = today_shanghai(now)
    key = subject_key_bytes(subject.subject_id)
    pm = pm or get_plugin_manager()
    async with db.begin() as conn:
        entries = await fetch_status_entries(conn, key, day)
    results = pm.hook.healthcode_resolve_status(subject=subject, day=day, entries=entries)
    contributions = _flatten(results)
    status = combine_contributions(contributions, next_cutoff(now))
    if record:
        await _record_decision(
            db, day=day, subject_key=key, status=status, contributions=contributions, now=now
        )
    return status


async def resolve_document_status(
    db: Database,
    secrets: OperatorSecrets,
    document: Document,
    *,
    now: dt.datetime | None = None,
    pm: pluggy.PluginManager | None = None,
    record: bool = True,
) -> tuple[Subject, Status]:
    """The subject a parsed document names (keyed by the document's hash,
    masked by its plugin) and its status today, as ``resolve_status``."""
    pm = pm or get_plugin_manager()
    subject = Subject(
        subject_id=subject_id_hex(document_key_for(secrets, document)),
        masked=mask_document(document, pm),
    )
    return subject, await resolve_status(db, subject, now=now, pm=pm, record=record)
