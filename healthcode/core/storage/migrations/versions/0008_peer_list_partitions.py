"""Peers' shared lists partitioned by day on PostgreSQL (nothing changes on SQLite).

``peer_status_entries`` becomes ``PARTITION BY LIST (day)``, so that the
daily purge drops a past day's partition whole, as it already does for
``status_entries`` and ``peer_status_exports`` (migration 0007). A day's
partition is not split further (by peer region): a peer's list is replaced
by a DELETE and INSERTs in one transaction, under which readers keep the
previous list; a part per peer would only serve a swap, which lists of this
size do not need, at the price of DDL (and a lock on the table) for every
new peer and day. Rows are kept: each day already held gets its partition,
and ``peer_status_entries_default`` takes rows of days without one. Runs,
like every migration, under the advisory lock that ``Database.migrate`` takes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

from healthcode.core.storage.tables import day_partition_ddl

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_TABLE = "peer_status_entries"
_COLUMNS = (
    "day DATE NOT NULL, peer_region VARCHAR(12) NOT NULL, pair_hash BYTEA NOT NULL, "
    "colour VARCHAR(8) NOT NULL, severity SMALLINT NOT NULL, "
    "imported_at TIMESTAMP WITH TIME ZONE NOT NULL"
)
_NAMES = "day, peer_region, pair_hash, colour, severity, imported_at"


def _rebuild(*, partitioned: bool) -> None:
    """Move the table aside, create it again (partitioned or not) and copy its rows."""
    old = f"{_TABLE}_before_0008"
    op.execute(f"ALTER TABLE {_TABLE} RENAME TO {old}")
    op.execute(f"ALTER TABLE {old} RENAME CONSTRAINT pk_{_TABLE} TO pk_{old}")
    op.execute(
        f"CREATE TABLE {_TABLE} ({_COLUMNS}, "
        f"CONSTRAINT pk_{_TABLE} PRIMARY KEY (day, pair_hash, peer_region), "
        f"CONSTRAINT ck_{_TABLE}_colour CHECK (colour IN ('red', 'yellow')))"
        + (" PARTITION BY LIST (day)" if partitioned else "")
    )
    if partitioned:
        op.execute(f"CREATE TABLE {_TABLE}_default PARTITION OF {_TABLE} DEFAULT")
        days = op.get_bind().execute(sa.text(f"SELECT DISTINCT day FROM {old}")).scalars()
        for day in sorted(days):
            assert isinstance(day, dt.date)
            for statement in day_partition_ddl(_TABLE, day):
                op.execute(statement)
    op.execute(f"INSERT INTO {_TABLE} ({_NAMES}) SELECT {_NAMES} FROM {old}")
    # CASCADE: a partitioned table's partitions go with it.
    op.execute(f"DROP TABLE {old} CASCADE")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _rebuild(partitioned=True)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _rebuild(partitioned=False)
