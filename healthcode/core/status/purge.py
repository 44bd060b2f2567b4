"""Day rollover: the one purge of what has expired.

``purge_expired`` (for the CLI, the API and the server's nightly task) deletes
day-scoped rows once their day has ended in Shanghai, and expired passes,
revocations, liveness challenges and records of used live codes. On
PostgreSQL a past day's partitions of the status tables (the authority's
entries, the hashes kept for peers, the peers' lists) are dropped whole
rather than deleted row by row.

``roll_over`` is the server's 24:00: the first worker (of any node) to call
it for a new day claims the day and purges, in one transaction, and gets a
``Rollover`` to log as one summary line; every other call that day gets
``None``. So the rollover is logged once, however many workers run.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from attrs import frozen
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from healthcode.core.clock import now_utc, today_shanghai
from healthcode.core.replay import delete_expired_uses
from healthcode.core.storage import tables
from healthcode.core.storage.database import Database, drop_day_partitions_before, write_audit

ROLLOVER_META = "rollover_day"
"""``operator_meta`` row: the last Shanghai day whose rollover was done."""

log = logging.getLogger("healthcode.core.status")


@frozen
class PurgeSummary:
    before: dt.date
    """Rows of days before this one (today in Asia/Shanghai) were deleted."""
    deleted: Mapping[str, int]
    """Rows deleted, by table."""

    def as_dict(self) -> dict[str, Any]:
        return {"before": self.before.isoformat(), "deleted": dict(self.deleted)}


async def purge_expired(db: Database, *, now: dt.datetime | None = None) -> PurgeSummary:
    """Delete what has expired as of ``now``: day-scoped rows whose day has
    ended (24:00 Asia/Shanghai has passed), passes and revocations whose
    passes have expired, liveness challenges past their time and used live
    codes and request signatures past their window. The one
    purge: ``healthcode purge``, ``POST /admin/purge`` and the server's
    nightly task all run this (the API through ``PassService.purge``, which
    also forgets its cached revocations). Logged at debug level only: the
    server logs its rollover once (``roll_over``), the CLI prints, the API audits."""
    now = now or now_utc()
    async with db.begin() as conn:
        summary = await _purge(conn, now)
    log.debug("purge before=%s deleted=%s", summary.before, dict(summary.deleted))
    return summary


async def _purge(conn: AsyncConnection, now: dt.datetime) -> PurgeSummary:
    today = today_shanghai(now)
    deleted: dict[str, int] = {}
    for table in tables.DAY_SCOPED_TABLES:
        dropped = 0
        if conn.dialect.name == "postgresql" and table in tables.DAY_PARTITIONED_TABLES:
            # A past day's partition goes whole; what is left (rows in the
            # default partition) is deleted below.
            dropped = await drop_day_partitions_before(conn, table, today)
        result = await conn.execute(table.delete().where(table.c.day < today))
        deleted[table.name] = dropped + int(result.rowcount or 0)
    # An expired pass fails on its own: neither it nor its revocation
    # need be kept.
    for table in (tables.passes, tables.revocations):
        result = await conn.execute(table.delete().where(table.c.valid_until <= now))
        deleted[table.name] = int(result.rowcount or 0)
    # Expired liveness challenges can no longer be answered: nothing to keep.
    challenges = tables.liveness_challenges
    result = await conn.execute(challenges.delete().where(challenges.c.expires_at < now))
    deleted[challenges.name] = int(result.rowcount or 0)
    # Used live codes and request signatures past their window (and a grace).
    deleted[tables.used_signatures.name] = await delete_expired_uses(conn, now=now)
    # Faces kept for a review whose confirmation window has passed. Imported
    # here: the enrollment package imports this module.
    from healthcode.core.enrollment.reviews import erase_unneeded_faces

    deleted["review_faces"] = await erase_unneeded_faces(conn, now)
    await write_audit(conn, "purge", {"before": today.isoformat(), "deleted": deleted})
    return PurgeSummary(before=today, deleted=deleted)


# --- the server's 24:00 -------------------------------------------------------------------


@frozen
class Rollover:
    """What one day's rollover did: the purge, and where the new day starts."""

    day: dt.date
    """The new day (Asia/Shanghai)."""
    purge: PurgeSummary
    entries_today: int
    """Status entries already imported for the new day (any source)."""
    passes_valid: int
    """Passes still valid after the purge (issued for the new day already)."""

    @property
    def deleted_any(self) -> bool:
        return any(self.purge.deleted.values())

    def line(self) -> str:
        """The one summary line (counts only, nothing about a person)."""
        deleted = self.purge.deleted
        by_table = ", ".join(f"{t.name} {deleted.get(t.name, 0)}" for t in tables.DAY_SCOPED_TABLES)
        day_rows = sum(deleted.get(t.name, 0) for t in tables.DAY_SCOPED_TABLES)
        return (
            f"day rollover: {self.day.isoformat()} began (Asia/Shanghai); "
            f"passes expired {deleted.get('passes', 0)}, "
            f"revocations dropped {deleted.get('revocations', 0)}, "
            f"day-scoped rows purged {day_rows} "
            f"({by_table}), "
            f"liveness challenges {deleted.get('liveness_challenges', 0)}, "
            f"used codes {deleted.get('used_signatures', 0)}; "
            f"new day: status entries {self.entries_today}, passes valid {self.passes_valid}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "deleted": dict(self.purge.deleted),
            "entries_today": self.entries_today,
            "passes_valid": self.passes_valid,
        }


async def roll_over(db: Database, *, now: dt.datetime | None = None) -> Rollover | None:
    """Claim the Shanghai day of ``now`` and purge, in one transaction; None
    when this day's rollover was already done (by this or another worker or
    node). The claim is the transaction's first write, so that concurrent
    callers wait for it and then see it done."""
    now = now or now_utc()
    day = today_shanghai(now)
    async with db.begin() as conn:
        if not await _claim_day(conn, db.backend, day):
            return None
        summary = await _purge(conn, now)
        entries = tables.status_entries
        entries_today = await conn.scalar(
            sa.select(sa.func.count()).select_from(entries).where(entries.c.day == day)
        )
        passes_valid = await conn.scalar(sa.select(sa.func.count()).select_from(tables.passes))
    return Rollover(
        day=day,
        purge=summary,
        entries_today=int(entries_today or 0),
        passes_valid=int(passes_valid or 0),
    )


async def _claim_day(conn: AsyncConnection, backend: str, day: dt.date) -> bool:
    """Mark ``day``'s rollover done; False when it was (or a later day's was)."""
    meta = tables.operator_meta
    claimed = await conn.execute(
        meta.update()
        .where((meta.c.name == ROLLOVER_META) & (meta.c.value < day.isoformat()))
        .values(value=day.isoformat())
    )
    if claimed.rowcount:
        return True
    insert = sqlite_insert(meta) if backend == "sqlite" else pg_insert(meta)
    inserted = await conn.execute(
        insert.values(name=ROLLOVER_META, value=day.isoformat()).on_conflict_do_nothing()
    )
    return bool(inserted.rowcount)
