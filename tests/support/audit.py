"""What the audit log holds for an action (tests that an action is audited)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from healthcode.core.storage import tables
from healthcode.core.storage.database import Database


async def audit_rows(db: Database, action: str) -> list[Any]:
    """Every audit record of ``action``, oldest first (``at``, ``details``...)."""
    log = tables.audit_log
    async with db.begin() as conn:
        rows = await conn.execute(sa.select(log).where(log.c.action == action).order_by(log.c.id))
        return list(rows.all())
