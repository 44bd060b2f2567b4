"""Alembic environment: runs on the connection that ``Database.migrate`` passes
in ``config.attributes["connection"]``.

For development (``alembic revision --autogenerate``) without that, it builds a
synchronous engine from ``HEALTHCODE_DATABASE_URL``.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import context

from healthcode.core.storage.tables import metadata

# Any fixed number: PostgreSQL advisory lock taken while migrating, so that
# several workers starting at once do not race each other.
_MIGRATION_LOCK_ID = 0x4843_4D49  # "HCMI"


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode copies tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_ID})"))
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = os.environ.get("HEALTHCODE_DATABASE_URL", "sqlite:///healthcode-dev.db")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        _run(conn)


_main()
