"""Passes issued, revocations, and guard/admin API tokens.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from healthcode.core.storage.tables import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "passes",
        sa.Column("pass_id", sa.LargeBinary(16), nullable=False),
        sa.Column("subject_key", sa.LargeBinary(32), nullable=False),
        sa.Column("issuer_kid", sa.LargeBinary(8), nullable=False),
        sa.Column("colour", sa.String(8), nullable=False),
        sa.Column("severity", sa.SmallInteger(), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("valid_until", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("pass_id", name="pk_passes"),
    )
    op.create_index("ix_passes_subject_key", "passes", ["subject_key"], unique=False)
    op.create_index("ix_passes_valid_until", "passes", ["valid_until"], unique=False)
    op.create_table(
        "revocations",
        sa.Column("pass_id", sa.LargeBinary(16), nullable=False),
        sa.Column("issuer_kid", sa.LargeBinary(8), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=False),
        sa.Column("valid_until", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("pass_id", name="pk_revocations"),
    )
    op.create_index("ix_revocations_valid_until", "revocations", ["valid_until"], unique=False)
    op.create_table(
        "api_tokens",
        sa.Column("token_id", sa.String(32), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("token_id", name="pk_api_tokens"),
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
    op.drop_index("ix_revocations_valid_until", table_name="revocations")
    op.drop_table("revocations")
    op.drop_index("ix_passes_valid_until", table_name="passes")
    op.drop_index("ix_passes_subject_key", table_name="passes")
    op.drop_table("passes")
