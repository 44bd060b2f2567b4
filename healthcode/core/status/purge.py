"""Day rollover: the one purge of what has expired.

``purge_expired`` (for the CLI, the API and the server's nightly task) deletes
day-scoped rows once their day has ended in Shanghai, and expired passes,
revocations, liveness challenges and records of used live codes.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from attrs import frozen

from healthcode.core.clock import now_utc, today_shanghai
from healthcode.core.replay import delete_expired_uses
from healthcode.core.storage import tables
from healthcode.core.storage.database import Database, write_audit

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
    also forgets its cached revocations)."""
    now = now or now_utc()
    today = today_shanghai(now)
    deleted: dict[str, int] = {}
    async with db.begin() as conn:
        for table in tables.DAY_SCOPED_TABLES:
            result = await conn.execute(table.delete().where(table.c.day < today))
            deleted[table.name] = int(result.rowcount or 0)
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
        await write_audit(conn, "purge", {"before": today.isoformat(), "deleted": deleted})
    log.info("purge before=%s deleted=%s", today, deleted)
    return PurgeSummary(before=today, deleted=deleted)
