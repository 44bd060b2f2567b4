"""The review queue (后台核验): what an entry shows and what resolving it allows.

``enrollment_reviews`` gains the document presented (its keyed hash), what the
capture was compared with, the document kind and masked number, the refused
face (encrypted), and the resolution's operator, reason and, for a
confirmation, the window of the one retry it allows. ``blocked_documents``
holds the documents an operator blocked. Entries written before this revision
were all stored-template mismatches.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from healthcode.core.storage.tables import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_NEW_COLUMNS = (
    ("document_key", sa.LargeBinary(32), "the document presented, if any"),
    ("against", sa.String(32), "what the capture was compared with"),
    ("kind", sa.String(64), None),
    ("masked_number", sa.String(64), "first 2 + last 2"),
    (
        "capture_template",
        sa.LargeBinary(),
        "AES-GCM; the refused face, kept until the review no longer needs it",
    ),
    ("resolved_by", sa.String(64), "token id or CLI operator label"),
    ("resolution_reason", sa.String(500), None),
    ("grant_expires_at", UTCDateTime(), "confirm: retry allowed until"),
    ("grant_used_at", UTCDateTime(), None),
)


def upgrade() -> None:
    for name, type_, comment in _NEW_COLUMNS:
        op.add_column("enrollment_reviews", sa.Column(name, type_, nullable=True, comment=comment))
    op.create_index(
        "ix_enrollment_reviews_document_key",
        "enrollment_reviews",
        ["document_key"],
        unique=False,
    )
    op.execute("UPDATE enrollment_reviews SET against = 'stored_template' WHERE against IS NULL")
    op.create_table(
        "blocked_documents",
        sa.Column("document_key", sa.LargeBinary(32), nullable=False),
        sa.Column("review_id", sa.Integer(), nullable=False),
        sa.Column("blocked_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["review_id"],
            ["enrollment_reviews.id"],
            name="fk_blocked_documents_review_id_enrollment_reviews",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("document_key", name="pk_blocked_documents"),
    )


def downgrade() -> None:
    op.drop_table("blocked_documents")
    op.drop_index("ix_enrollment_reviews_document_key", table_name="enrollment_reviews")
    with op.batch_alter_table("enrollment_reviews") as batch:
        for name, _type, _comment in reversed(_NEW_COLUMNS):
            batch.drop_column(name)
