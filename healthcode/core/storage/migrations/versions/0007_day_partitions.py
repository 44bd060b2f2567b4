"""Status tables partitioned by day on PostgreSQL (nothing changes on SQLite).

``status_entries`` and ``peer_status_exports`` become ``PARTITION BY LIST
(day)``, each day's partition ``PARTITION BY LIST (source)``, so that an
authority import can swap in a (day, source) table built off to the side and
the daily purge can drop a past day whole. Rows are kept: each day already
held gets its partition (rows in its default part until the source's next
import), and ``<table>_default`` takes rows of days without one. Runs, like
every migration, under the advisory lock that ``Database.migrate`` takes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

from healthcode.core.storage.tables import day_partition_ddl

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_COLUMNS = {
    "status_entries": (
        "day DATE NOT NULL, subject_key BYTEA NOT NULL, source VARCHAR(64) NOT NULL, "
        "colour VARCHAR(8) NOT NULL, severity SMALLINT NOT NULL"
    ),
    "peer_status_exports": (
        "day DATE NOT NULL, peer_region VARCHAR(12) NOT NULL, pair_hash BYTEA NOT NULL, "
        "source VARCHAR(64) NOT NULL, colour VARCHAR(8) NOT NULL, severity SMALLINT NOT NULL"
    ),
}
_PRIMARY_KEYS = {
    "status_entries": "day, subject_key, source",
    "peer_status_exports": "day, peer_region, pair_hash, source",
}


def _create(table: str, *, partitioned: bool) -> None:
    op.execute(
        f"CREATE TABLE {table} ({_COLUMNS[table]}, "
        f"CONSTRAINT pk_{table} PRIMARY KEY ({_PRIMARY_KEYS[table]}), "
        f"CONSTRAINT ck_{table}_colour CHECK (colour IN ('red', 'yellow')))"
        + (" PARTITION BY LIST (day)" if partitioned else "")
    )


def _rebuild(table: str, *, partitioned: bool) -> None:
    """Move ``table`` aside, create it again (partitioned or not) and copy its rows."""
    old = f"{table}_before_0007"
    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    op.execute(f"ALTER TABLE {old} RENAME CONSTRAINT pk_{table} TO pk_{old}")
    _create(table, partitioned=partitioned)
    if partitioned:
        op.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
        days = op.get_bind().execute(sa.text(f"SELECT DISTINCT day FROM {old}")).scalars()
        for day in sorted(days):
            assert isinstance(day, dt.date)
            for statement in day_partition_ddl(table, day):
                op.execute(statement)
    op.execute(f"INSERT INTO {table} SELECT * FROM {old}")
    # CASCADE: a partitioned table's partitions go with it.
    op.execute(f"DROP TABLE {old} CASCADE")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in _COLUMNS:
        _rebuild(table, partitioned=True)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in _COLUMNS:
        _rebuild(table, partitioned=False)
