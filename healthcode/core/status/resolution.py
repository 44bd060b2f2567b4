"""Resolving a subject's status for today.

Core reads what storage holds about the subject for the day (imported
authority entries, peer-list matches) and hands it to every status source
through ``healthcode_resolve_status``; the most severe colour wins; every
contribution is kept for audit (never shown to guards); nobody reporting means
green 未见异常. A status is valid until the next 24:00 Asia/Shanghai.

A holder's own look-up (``PassService.current_status``) reads the decision
from a per-worker :class:`DecisionCache` instead of asking the status sources
again: an entry is used only for the day it was made on, and only while the
*status revision* (a row of ``operator_meta`` that every status list import
changes, :func:`bump_status_revision`) and the subject row's ``updated_at``
(changed by every enrollment that links a document or stores peer tokens) are
what they were. Both are read with the subject row, in the one indexed read a
look-up makes, so an import is seen by the next look-up at every worker of
every node sharing the database; the database stays the truth.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from secrets import token_hex
from typing import Any

import attrs
import pluggy
import sqlalchemy as sa
from attrs import define, frozen
from sqlalchemy.dialects import postgresql, sqlite
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


def decide_status(
    subject: Subject,
    day: dt.date,
    entries: StatusEntries,
    now: dt.datetime,
    pm: pluggy.PluginManager,
) -> tuple[Status, list[StatusContribution]]:
    """Ask every status source about ``subject`` on ``day`` and combine the answers."""
    results = pm.hook.healthcode_resolve_status(subject=subject, day=day, entries=entries)
    contributions = _flatten(results)
    return combine_contributions(contributions, next_cutoff(now)), contributions


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
    status, contributions = decide_status(subject, day, entries, now, pm)
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


# --- the decision cache -------------------------------------------------------------

STATUS_REVISION = "status_revision"
"""``operator_meta`` row changed by every status list import (a random value)."""
DECISION_CACHE_MAX = 100_000
"""Decisions kept per worker at most (the oldest go first)."""


def status_revision_column() -> Any:
    """The status revision as a scalar subquery (a primary-key read), to be
    selected beside the subject row: NULL until the first import."""
    meta = tables.operator_meta
    return (
        sa.select(meta.c.value)
        .where(meta.c.name == STATUS_REVISION)
        .scalar_subquery()
        .label("status_revision")
    )


async def bump_status_revision(db: Database) -> None:
    """Tell every worker's :class:`DecisionCache` that the status lists changed:
    their next look-up of any subject asks the status sources again."""
    meta = tables.operator_meta
    insert = (sqlite.insert if db.backend == "sqlite" else postgresql.insert)(meta).values(
        name=STATUS_REVISION, value=token_hex(16)
    )
    async with db.begin() as conn:
        await conn.execute(
            insert.on_conflict_do_update(
                index_elements=[meta.c.name], set_={"value": insert.excluded.value}
            )
        )


@frozen
class DecisionStamp:
    """What a cached decision depends on besides the subject itself."""

    day: dt.date
    """The day (Asia/Shanghai) it was made for: it never serves another."""
    revision: str | None
    """The status revision when it was made."""
    subject_updated_at: dt.datetime | None
    """The subject row's ``updated_at`` (documents linked, peer tokens stored)."""


@define
class DecisionCache:
    """Today's decisions of one worker, by subject key."""

    max_entries: int = DECISION_CACHE_MAX
    entries: dict[bytes, tuple[DecisionStamp, Status]] = attrs.field(factory=dict)
    shared: dict[Status, Status] = attrs.field(factory=dict)
    """One object per distinct decision (most holders share "green until
    24:00"), so that an entry costs little more than its key and stamp."""

    def get(self, subject_key: bytes, stamp: DecisionStamp) -> Status | None:
        """The decision made under ``stamp``; None when there is none or it is stale."""
        found = self.entries.get(subject_key)
        if found is None or found[0] != stamp:
            return None
        return found[1]

    def put(self, subject_key: bytes, stamp: DecisionStamp, status: Status) -> None:
        if subject_key not in self.entries and len(self.entries) >= self.max_entries:
            # Drop the oldest entry (dicts keep insertion order).
            del self.entries[next(iter(self.entries))]
        if len(self.shared) >= 1000:
            self.shared.clear()
        self.entries[subject_key] = (stamp, self.shared.setdefault(status, status))

    def clear(self) -> None:
        self.entries.clear()
        self.shared.clear()
