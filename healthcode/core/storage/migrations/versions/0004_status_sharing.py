"""Status data sharing between regions: per-peer subject tokens, the daily
hashes exported to each peer, and the lists imported from peers.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from healthcode.core.storage.tables import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subject_peer_tokens",
        sa.Column("document_key", sa.LargeBinary(32), nullable=False),
        sa.Column("peer_region", sa.String(12), nullable=False),
        sa.Column("subject_key", sa.LargeBinary(32), nullable=False),
        sa.Column("token", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subject_key"],
            ["subjects.subject_key"],
            name="fk_subject_peer_tokens_subject_key_subjects",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("document_key", "peer_region", name="pk_subject_peer_tokens"),
    )
    op.create_index(
        "ix_subject_peer_tokens_subject_key", "subject_peer_tokens", ["subject_key"], unique=False
    )
    op.create_table(
        "peer_status_exports",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("peer_region", sa.String(12), nullable=False),
        sa.Column("pair_hash", sa.LargeBinary(16), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("colour", sa.String(8), nullable=False),
        sa.Column("severity", sa.SmallInteger(), nullable=False),
        sa.CheckConstraint("colour IN ('red', 'yellow')", name="ck_peer_status_exports_colour"),
        sa.PrimaryKeyConstraint(
            "day", "peer_region", "pair_hash", "source", name="pk_peer_status_exports"
        ),
    )
    op.create_table(
        "peer_status_entries",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("peer_region", sa.String(12), nullable=False),
        sa.Column("pair_hash", sa.LargeBinary(16), nullable=False),
        sa.Column("colour", sa.String(8), nullable=False),
        sa.Column("severity", sa.SmallInteger(), nullable=False),
        sa.Column("imported_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("colour IN ('red', 'yellow')", name="ck_peer_status_entries_colour"),
        sa.PrimaryKeyConstraint("day", "pair_hash", "peer_region", name="pk_peer_status_entries"),
    )


def downgrade() -> None:
    op.drop_table("peer_status_entries")
    op.drop_table("peer_status_exports")
    op.drop_index("ix_subject_peer_tokens_subject_key", table_name="subject_peer_tokens")
    op.drop_table("subject_peer_tokens")
