"""The test PostgreSQL database: at head and emptied for a test, and opened
for the length of a block."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from healthcode.core.storage.database import Database
from healthcode.core.storage.testing import truncate_all


def emptied_postgres(
    url: str | None, *, tidy: Callable[[AsyncConnection], Awaitable[object]] | None = None
) -> str:
    """``url`` (the ``postgres_url`` fixture) migrated to head, every table
    emptied and ``tidy`` run; the test is skipped when there is no server."""
    if url is None:
        pytest.skip("PostgreSQL not reachable (set CI=true to make this a failure)")

    async def clean() -> None:
        async with Database(url) as db:
            await db.migrate()
            await truncate_all(db)
            if tidy is not None:
                async with db.begin() as conn:
                    await tidy(conn)

    asyncio.run(clean())
    return url


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[Database]:
    """A ``Database`` on ``url``, disposed of at the end of the block."""
    db = Database(url)
    try:
        yield db
    finally:
        await db.dispose()
