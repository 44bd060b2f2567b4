"""Signed things accepted once: holders' signed requests and live codes.

The first use of a signed request or a live code inserts the SHA-256 of what
was signed; the primary key makes a second use, from any worker sharing the
database, a conflict, so a race between two workers ends in one acceptance.
Rows expire when the signed thing would be refused as stale anyway.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from healthcode.core.storage.tables import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "used_signatures",
        sa.Column(
            "digest", sa.LargeBinary(32), nullable=False, comment="SHA-256 of purpose + signed text"
        ),
        sa.Column("purpose", sa.String(16), nullable=False, comment="request or presentation"),
        sa.Column("used_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_used_signatures"),
    )
    op.create_index(
        "ix_used_signatures_expires_at", "used_signatures", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_used_signatures_expires_at", table_name="used_signatures")
    op.drop_table("used_signatures")
