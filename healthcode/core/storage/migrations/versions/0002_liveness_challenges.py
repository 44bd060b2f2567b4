"""Liveness challenges issued by this instance, each answerable once.

A challenge is stored when it is issued and marked used by the first answer
(a conditional UPDATE), so that with any number of workers in front of one
database a recorded answer cannot be replayed, and a client cannot answer a
challenge it made up itself.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from healthcode.core.storage.tables import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "liveness_challenges",
        sa.Column("nonce", sa.String(128), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("actions", sa.String(128), nullable=False, comment="comma-separated, in order"),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("nonce", name="pk_liveness_challenges"),
    )
    op.create_index(
        "ix_liveness_challenges_expires_at", "liveness_challenges", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_liveness_challenges_expires_at", table_name="liveness_challenges")
    op.drop_table("liveness_challenges")
