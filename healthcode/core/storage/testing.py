"""Helpers for tests and benchmarks: throwaway PostgreSQL databases, table
dumps (for privacy scans and before/after comparisons), truncation.

Not used by the service itself.
"""

from __future__ import annotations

import os
import secrets as _random
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from healthcode.core.storage import tables
from healthcode.core.storage.database import Database, database_url

TEST_POSTGRES_ENV = "HEALTHCODE_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_server_url() -> str:
    """The PostgreSQL server to create throwaway databases on."""
    return os.environ.get(TEST_POSTGRES_ENV, "").strip() or DEFAULT_POSTGRES_SERVER


async def _admin(server_url: str, statement: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    url = make_url(server_url)
    conn = await asyncpg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        database=url.database or "postgres",
        timeout=5,
    )
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def create_postgres_database(server_url: str, prefix: str = "healthcode_test") -> str:
    """Create an empty database next to ``server_url``'s; return its URL."""
    name = f"{prefix}_{os.getpid()}_{_random.token_hex(3)}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(server_url: str, database_url_: str) -> None:
    name = make_url(database_url_).database
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def dump_tables(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (including Alembic's), sorted, as plain tuples."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with db.begin() as conn:
        every = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
        # On PostgreSQL a day-partitioned table's partitions are tables too:
        # their rows are the parent's, so they are not listed twice.
        names = [name for name in every if not tables.is_partition_name(name)]
        for name in sorted(names):
            rows = await conn.execute(sa.text(f'SELECT * FROM "{name}"'))
            out[name] = sorted((tuple(r) for r in rows), key=repr)
    return out


async def truncate_all(db: Database) -> None:
    """Empty every healthcode table (the schema and its revision stay)."""
    async with db.begin() as conn:
        for table in reversed(tables.metadata.sorted_tables):
            await conn.execute(table.delete())


__all__ = [
    "TEST_POSTGRES_ENV",
    "create_postgres_database",
    "database_url",
    "drop_postgres_database",
    "dump_tables",
    "postgres_server_url",
    "truncate_all",
]


class PostgresUnavailable(RuntimeError):
    pass


def open_session_postgres() -> tuple[str, str | None]:
    """For a test session: ``(url, server_url_to_drop_from)``.

    With ``HEALTHCODE_TEST_POSTGRES_URL`` set, that database is used as it is
    (nothing to drop); otherwise a fresh database is created on the local
    server. Raises ``PostgresUnavailable`` when the server cannot be reached.
    """
    import asyncio

    given = os.environ.get(TEST_POSTGRES_ENV, "").strip()
    try:
        if given:
            asyncio.run(_admin(given, "SELECT 1"))
            return given, None
        server = DEFAULT_POSTGRES_SERVER
        return asyncio.run(create_postgres_database(server)), server
    except (OSError, TimeoutError) as exc:
        raise PostgresUnavailable(str(exc)) from exc
    except Exception as exc:
        if type(exc).__module__.startswith("asyncpg"):
            raise PostgresUnavailable(str(exc)) from exc
        raise


def close_session_postgres(url: str, server: str | None) -> None:
    import asyncio

    if server is not None:
        asyncio.run(drop_postgres_database(server, url))
