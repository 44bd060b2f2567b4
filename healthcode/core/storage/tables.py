"""The schema, as SQLAlchemy Core tables (the migrations create exactly this).

What is never stored: a raw document number, a full name, a plain face
template. People are known by 32-byte keyed hashes (``subject_key`` /
``document_key``, see ``healthcode.core.privacy``); what may be shown
is stored already masked.

Day-scoped tables carry a ``day`` column (the Asia/Shanghai calendar day they
belong to) and are purged once that day has ended.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    TypeDecorator,
    UniqueConstraint,
)

# Stable constraint names, so that migrations can refer to them on both backends.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

MAX_DEPENDANTS = 4
KEY_BYTES = 32


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware datetimes in, aware UTC datetimes out, on both backends.

    SQLite has no time zone type; storing naive UTC and re-attaching UTC on
    the way out keeps comparisons right whatever the server's TZ is.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: healthcode stores aware datetimes only")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def _key(name: str, *args: Any, **kwargs: Any) -> Column[bytes]:
    return Column(name, LargeBinary(KEY_BYTES), *args, **kwargs)


operator_meta = Table(
    "operator_meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
    comment="Non-secret facts about this instance, e.g. the secrets fingerprint.",
)

subjects = Table(
    "subjects",
    metadata,
    _key("subject_key", primary_key=True, comment="HMAC of the first enrolled document key"),
    Column("kind", String(64), nullable=False),
    Column("masked_name", String(64), nullable=False, comment="surname only"),
    Column("masked_number", String(64), nullable=False, comment="first 2 + last 2"),
    Column("encrypted_template", LargeBinary, nullable=True, comment="AES-GCM, see privacy_crypto"),
    Column("device_public_key", LargeBinary, nullable=True, comment="DER SPKI, used by passes"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Every document a subject has enrolled with (a renewed passport adds a row
# pointing at the same subject). The first document's key is also the
# subject's key.
subject_documents = Table(
    "subject_documents",
    metadata,
    _key("document_key", primary_key=True),
    _key(
        "subject_key",
        ForeignKey("subjects.subject_key", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("kind", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# 他人代查: a holder manages up to MAX_DEPENDANTS dependants. The slot column
# with its CHECK and UNIQUE enforces the limit in the database itself, so two
# concurrent "add" requests cannot both take the fifth place.
dependants = Table(
    "dependants",
    metadata,
    _key("holder_key", ForeignKey("subjects.subject_key", ondelete="CASCADE"), nullable=False),
    _key(
        "dependant_key",
        ForeignKey("subjects.subject_key", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("slot", SmallInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("holder_key", "dependant_key"),
    UniqueConstraint("holder_key", "slot"),
    CheckConstraint(f"slot >= 1 AND slot <= {MAX_DEPENDANTS}", name="slot_range"),
    CheckConstraint("holder_key <> dependant_key", name="not_self"),
)

# Authority data for one day: one row per (day, document key, source). Keys
# are of documents, not subjects: a person may be listed before enrolling.
status_entries = Table(
    "status_entries",
    metadata,
    Column("day", Date, nullable=False),
    _key("subject_key", nullable=False),
    Column("source", String(64), nullable=False),
    Column("colour", String(8), nullable=False),
    Column("severity", SmallInteger, nullable=False),
    PrimaryKeyConstraint("day", "subject_key", "source"),
    CheckConstraint("colour IN ('red', 'yellow')", name="colour"),
    # PostgreSQL (migration 0007): one partition per day, each split by source.
    postgresql_partition_by="LIST (day)",
)

# Every status decision, with all contributions, kept for audit until its
# day ends (never shown to guards).
status_decisions = Table(
    "status_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("day", Date, nullable=False, index=True),
    _key("subject_key", nullable=False),
    Column("colour", String(8), nullable=False),
    Column("valid_until", UTCDateTime, nullable=False),
    Column("contributions", JSON, nullable=False, comment="[{source, colour, reason}]"),
    Column("decided_at", UTCDateTime, nullable=False),
)
Index("ix_status_decisions_subject_day", status_decisions.c.subject_key, status_decisions.c.day)

# The review queue (后台核验): an enrollment or a renewal refused because the
# live face did not match (the stored template, the document's portrait or the
# authority's photo), kept for an operator to confirm or block (migration 0006
# added what an entry shows and what its resolution allows).
enrollment_reviews = Table(
    "enrollment_reviews",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _key("subject_key", nullable=False, index=True),
    Column("reason", String(64), nullable=False),
    Column("similarity", Float, nullable=True),
    Column("threshold", Float, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("resolution", String(64), nullable=True),
    _key("document_key", nullable=True, index=True, comment="the document presented, if any"),
    Column("against", String(32), nullable=True, comment="what the capture was compared with"),
    Column("kind", String(64), nullable=True),
    Column("masked_number", String(64), nullable=True, comment="first 2 + last 2"),
    Column(
        "capture_template",
        LargeBinary,
        nullable=True,
        comment="AES-GCM; the refused face, kept until the review no longer needs it",
    ),
    Column("resolved_by", String(64), nullable=True, comment="token id or CLI operator label"),
    Column("resolution_reason", String(500), nullable=True),
    Column("grant_expires_at", UTCDateTime, nullable=True, comment="confirm: retry allowed until"),
    Column("grant_used_at", UTCDateTime, nullable=True),
)

# Documents an operator blocked from the review queue: enrollment with them
# (and renewal of a subject holding one) is refused.
blocked_documents = Table(
    "blocked_documents",
    metadata,
    _key("document_key", primary_key=True),
    Column(
        "review_id",
        Integer,
        ForeignKey("enrollment_reviews.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("blocked_at", UTCDateTime, nullable=False),
)

# Admin actions (init, imports, purges). Details are counts, days, sources:
# never a number or a name.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("action", String(64), nullable=False),
    Column("details", JSON, nullable=False),
)

# Liveness challenges issued by this instance, each answerable once across all
# workers (a conditional UPDATE marks the first answer). Purged after expiry.
liveness_challenges = Table(
    "liveness_challenges",
    metadata,
    Column("nonce", String(128), primary_key=True),
    Column("purpose", String(16), nullable=False),
    Column("actions", String(128), nullable=False, comment="comma-separated, in order"),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
)
Index("ix_liveness_challenges_expires_at", liveness_challenges.c.expires_at)

# Passes issued by this instance (migration 0003). No identity beyond the
# subject's keyed hash; purged once the pass has expired.
passes = Table(
    "passes",
    metadata,
    Column("pass_id", LargeBinary(16), primary_key=True),
    _key("subject_key", nullable=False, index=True),
    Column("issuer_kid", LargeBinary(8), nullable=False),
    Column("colour", String(8), nullable=False),
    Column("severity", SmallInteger, nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("valid_until", UTCDateTime, nullable=False, index=True),
)

# Passes revoked before their expiry because the holder's status became more
# severe; the source of online refusals and of the signed revocation lists.
revocations = Table(
    "revocations",
    metadata,
    Column("pass_id", LargeBinary(16), primary_key=True),
    Column("issuer_kid", LargeBinary(8), nullable=False),
    Column("reason", String(64), nullable=False),
    Column("revoked_at", UTCDateTime, nullable=False),
    Column("valid_until", UTCDateTime, nullable=False, index=True),
)

# Guard and admin tokens: only a SHA-256 of the secret part is kept.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_id", String(32), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("label", String(64), nullable=False),
    Column("secret_hash", LargeBinary(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

# Signed things accepted once (migration 0005): a holder's signed request, a
# live code shown to a guard. The first use inserts the SHA-256 of what was
# signed; the primary key makes every later use, from any worker, a conflict.
# Rows are purged once what they stand for would be refused as stale anyway.
used_signatures = Table(
    "used_signatures",
    metadata,
    Column("digest", LargeBinary(32), primary_key=True, comment="SHA-256 of purpose + signed text"),
    Column("purpose", String(16), nullable=False, comment="request or presentation"),
    Column("used_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
)

# --- status sharing between regions (migration 0004) -------------------------------

# Importing side: a stable token per (document, peer region), HMAC(pair key,
# canonical document key), computed at enrollment while the document is in
# hand. It lets a peer's daily hashes be matched without keeping the number.
subject_peer_tokens = Table(
    "subject_peer_tokens",
    metadata,
    _key("document_key", nullable=False),
    Column("peer_region", String(12), nullable=False),
    _key(
        "subject_key",
        ForeignKey("subjects.subject_key", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    _key("token", nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("document_key", "peer_region"),
)

# Exporting side: the daily hash HMAC(token, day) of each person an authority
# import listed, per peer region and source, kept until the day ends.
peer_status_exports = Table(
    "peer_status_exports",
    metadata,
    Column("day", Date, nullable=False),
    Column("peer_region", String(12), nullable=False),
    Column("pair_hash", LargeBinary(16), nullable=False),
    Column("source", String(64), nullable=False),
    Column("colour", String(8), nullable=False),
    Column("severity", SmallInteger, nullable=False),
    PrimaryKeyConstraint("day", "peer_region", "pair_hash", "source"),
    CheckConstraint("colour IN ('red', 'yellow')", name="colour"),
    postgresql_partition_by="LIST (day)",
)

# Importing side: a peer's verified list for one day (hashes only).
peer_status_entries = Table(
    "peer_status_entries",
    metadata,
    Column("day", Date, nullable=False),
    Column("peer_region", String(12), nullable=False),
    Column("pair_hash", LargeBinary(16), nullable=False),
    Column("colour", String(8), nullable=False),
    Column("severity", SmallInteger, nullable=False),
    Column("imported_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("day", "pair_hash", "peer_region"),
    CheckConstraint("colour IN ('red', 'yellow')", name="colour"),
    # PostgreSQL (migration 0008): one partition per day, not split further.
    postgresql_partition_by="LIST (day)",
)

DAY_SCOPED_TABLES = (status_entries, status_decisions, peer_status_exports, peer_status_entries)
"""Tables purged once their ``day`` has ended in Asia/Shanghai."""

# --- day partitions (PostgreSQL) ------------------------------------------------------------
#
# On PostgreSQL the status tables are partitioned by day (``LIST (day)``) so
# that the daily purge drops past days' partitions whole. The tables an
# authority import fills have each day's partition split again by source
# (``LIST (source)``): an import builds a (day, source) table off to the side
# and swaps it in. A peer's shared list (``peer_status_entries``) is replaced
# by a DELETE and INSERTs in one transaction instead (readers keep the
# previous list until it commits and never wait for it), so its day
# partitions are plain tables. Rows written for a day that
# has no partition yet land in ``<table>_default``; each source-split day
# partition has a ``_default`` part for sources that never had an import of
# their own.

AUTHORITY_IMPORT_TABLES = (status_entries, peer_status_exports)
"""Tables an authority import fills: partitioned by day, then by source, on
PostgreSQL (migration 0007)."""

DAY_PARTITIONED_TABLES = (*AUTHORITY_IMPORT_TABLES, peer_status_entries)
"""Tables partitioned by day on PostgreSQL (migrations 0007 and 0008)."""

_PARTITION_NAME = re.compile(
    r"(?P<table>[a-z_]+)_(?:default|p(?P<day>[0-9]{8})(?:_\w+)?)", re.ASCII
)


def day_partition_name(table: str, day: dt.date) -> str:
    """The partition of ``table`` holding ``day`` (itself split by source)."""
    return f"{table}_p{day:%Y%m%d}"


def source_partition_name(table: str, day: dt.date, source: str) -> str:
    """The part of ``day``'s partition of ``table`` holding ``source``'s rows;
    a digest of the source keeps the name short and plain."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    return f"{day_partition_name(table, day)}_s{digest}"


def partition_day(name: str) -> dt.date | None:
    """The day a partition (or part of one) of a day-partitioned table holds,
    from its name; None for a default partition or any other table."""
    match = _PARTITION_NAME.fullmatch(name)
    if match is None or match["table"] not in {t.name for t in DAY_PARTITIONED_TABLES}:
        return None
    day = match["day"]
    return None if day is None else dt.datetime.strptime(day, "%Y%m%d").date()


def is_partition_name(name: str) -> bool:
    """True for a partition (or part of one) of a day-partitioned table."""
    match = _PARTITION_NAME.fullmatch(name)
    return match is not None and match["table"] in {t.name for t in DAY_PARTITIONED_TABLES}


def day_partition_ddl(table: str, day: dt.date) -> list[str]:
    """Statements creating ``day``'s partition of ``table`` (for an authority
    import's table, split by source, with its default part), moving there any
    rows of that day from the table's default partition first. Idempotent
    only under the caller's lock."""
    part = day_partition_name(table, day)
    literal = f"DATE '{day.isoformat()}'"
    if table in {t.name for t in AUTHORITY_IMPORT_TABLES}:
        create = [
            f"CREATE TABLE {part} PARTITION OF {table} FOR VALUES IN ({literal}) "
            f"PARTITION BY LIST (source)",
            f"CREATE TABLE {part}_default PARTITION OF {part} DEFAULT",
        ]
    else:
        create = [f"CREATE TABLE {part} PARTITION OF {table} FOR VALUES IN ({literal})"]
    return [
        f"CREATE TEMPORARY TABLE _hc_moved ON COMMIT DROP AS "
        f"WITH moved AS (DELETE FROM {table}_default WHERE day = {literal} RETURNING *) "
        f"SELECT * FROM moved",
        *create,
        f"INSERT INTO {table} SELECT * FROM _hc_moved",
        "DROP TABLE _hc_moved",
    ]
