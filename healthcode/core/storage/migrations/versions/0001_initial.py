"""Initial schema: subjects, documents, dependants, status entries and
decisions, enrollment reviews, audit log, operator metadata.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from healthcode.core.storage.tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _key(name: str, *args: object, **kwargs: object) -> sa.Column[bytes]:
    return sa.Column(name, sa.LargeBinary(32), *args, **kwargs)  # type: ignore[arg-type]


def upgrade() -> None:
    op.create_table(
        "operator_meta",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_operator_meta"),
        comment="Non-secret facts about this instance, e.g. the secrets fingerprint.",
    )
    op.create_table(
        "subjects",
        _key("subject_key", nullable=False, comment="HMAC of the first enrolled document key"),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("masked_name", sa.String(64), nullable=False, comment="surname only"),
        sa.Column("masked_number", sa.String(64), nullable=False, comment="first 2 + last 2"),
        sa.Column(
            "encrypted_template",
            sa.LargeBinary(),
            nullable=True,
            comment="AES-GCM, see privacy_crypto",
        ),
        sa.Column(
            "device_public_key", sa.LargeBinary(), nullable=True, comment="DER SPKI, used by passes"
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("subject_key", name="pk_subjects"),
    )
    op.create_table(
        "subject_documents",
        _key("document_key", nullable=False),
        _key("subject_key", nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subject_key"],
            ["subjects.subject_key"],
            name="fk_subject_documents_subject_key_subjects",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("document_key", name="pk_subject_documents"),
    )
    op.create_index(
        "ix_subject_documents_subject_key", "subject_documents", ["subject_key"], unique=False
    )
    op.create_table(
        "dependants",
        _key("holder_key", nullable=False),
        _key("dependant_key", nullable=False),
        sa.Column("slot", sa.SmallInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("holder_key <> dependant_key", name="ck_dependants_not_self"),
        sa.CheckConstraint("slot >= 1 AND slot <= 4", name="ck_dependants_slot_range"),
        sa.ForeignKeyConstraint(
            ["dependant_key"],
            ["subjects.subject_key"],
            name="fk_dependants_dependant_key_subjects",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["holder_key"],
            ["subjects.subject_key"],
            name="fk_dependants_holder_key_subjects",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("holder_key", "dependant_key", name="pk_dependants"),
        sa.UniqueConstraint("holder_key", "slot", name="uq_dependants_holder_key_slot"),
    )
    op.create_index("ix_dependants_dependant_key", "dependants", ["dependant_key"], unique=False)
    op.create_table(
        "status_entries",
        sa.Column("day", sa.Date(), nullable=False),
        _key("subject_key", nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("colour", sa.String(8), nullable=False),
        sa.Column("severity", sa.SmallInteger(), nullable=False),
        sa.CheckConstraint("colour IN ('red', 'yellow')", name="ck_status_entries_colour"),
        sa.PrimaryKeyConstraint("day", "subject_key", "source", name="pk_status_entries"),
    )
    op.create_table(
        "status_decisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        _key("subject_key", nullable=False),
        sa.Column("colour", sa.String(8), nullable=False),
        sa.Column("valid_until", UTCDateTime(), nullable=False),
        sa.Column("contributions", sa.JSON(), nullable=False, comment="[{source, colour, reason}]"),
        sa.Column("decided_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_status_decisions"),
    )
    op.create_index("ix_status_decisions_day", "status_decisions", ["day"], unique=False)
    op.create_index(
        "ix_status_decisions_subject_day",
        "status_decisions",
        ["subject_key", "day"],
        unique=False,
    )
    op.create_table(
        "enrollment_reviews",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _key("subject_key", nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("similarity", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("resolution", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_enrollment_reviews"),
    )
    op.create_index(
        "ix_enrollment_reviews_subject_key", "enrollment_reviews", ["subject_key"], unique=False
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"], unique=False)


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("enrollment_reviews")
    op.drop_table("status_decisions")
    op.drop_table("status_entries")
    op.drop_table("dependants")
    op.drop_table("subject_documents")
    op.drop_table("subjects")
    op.drop_table("operator_meta")
