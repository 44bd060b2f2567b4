"""The pass service: tells enrolled holders their current status, issues them
signed passes from it, records them, revokes them when the status becomes
more severe before they expire, and answers online revocation checks.

The signing itself is :mod:`healthcode.core.passes.passes`; this module binds
it to storage. A pass carries only masked identity (see ``issue_pass``); the table
of issued passes holds the subject's keyed hash, the colour and the validity.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

import pluggy
import sqlalchemy as sa
from attrs import frozen
from sqlalchemy.ext.asyncio import AsyncConnection

from healthcode.core.clock import now_utc, today_shanghai
from healthcode.core.enrollment.errors import SubjectNotFoundError
from healthcode.core.errors import HealthcodeError
from healthcode.core.models import Colour, MaskedDocument, Status, Subject
from healthcode.core.passes.keys import KeyStore
from healthcode.core.passes.models import IssuedPass
from healthcode.core.passes.passes import issue_pass
from healthcode.core.passes.revocation import build_revocation_list
from healthcode.core.plugins import get_plugin_manager
from healthcode.core.privacy import subject_id_hex, subject_key_bytes
from healthcode.core.shared import EVENT_PASS, publish_event
from healthcode.core.status import purge_expired, resolve_status
from healthcode.core.status.resolution import (
    DecisionCache,
    DecisionStamp,
    decide_status,
    fetch_status_entries,
    status_revision_column,
)
from healthcode.core.storage import tables
from healthcode.core.storage.database import Database, write_audit

log = logging.getLogger(__name__)

REVOKED_STATUS_WORSENED = "status_worsened"
REVOCATION_REFRESH_S = 1.0
"""How stale a worker's view of revocations may be."""


class DeviceKeyMissingError(HealthcodeError):
    code = "device_key_missing"
    default_en = "This person enrolled without a device key: re-enroll from the holder's phone."
    default_zh = "该登记未绑定设备密钥，请在持有人手机上重新登记。"
    http_status = 409


# A holder's look-up: the subject row and the status revision, one statement
# (built once: constructing it costs more than running it).
_STATUS_READ = sa.select(
    tables.subjects.c.kind,
    tables.subjects.c.masked_name,
    tables.subjects.c.masked_number,
    tables.subjects.c.updated_at,
    status_revision_column(),
).where(tables.subjects.c.subject_key == sa.bindparam("key"))


@frozen
class PassIssue:
    """A pass just issued, with the status it reflects."""

    issued: IssuedPass
    status: Status


@frozen
class RevocationSummary:
    checked: int
    revoked: int


async def load_subject(conn: AsyncConnection, subject_key: bytes) -> tuple[Subject, bytes | None]:
    """The subject (masked fields only) and its device public key (DER)."""
    row = (
        await conn.execute(
            sa.select(tables.subjects).where(tables.subjects.c.subject_key == subject_key)
        )
    ).first()
    if row is None:
        raise SubjectNotFoundError()
    subject = Subject(
        subject_id=subject_id_hex(subject_key),
        masked=MaskedDocument(row.kind, row.masked_name, row.masked_number),
    )
    device = bytes(row.device_public_key) if row.device_public_key is not None else None
    return subject, device


class PassService:
    def __init__(
        self, db: Database, keys: KeyStore, *, pm: pluggy.PluginManager | None = None
    ) -> None:
        self.db = db
        self.keys = keys
        self.pm = pm
        self._revoked: set[bytes] = set()
        self._revoked_since: dt.datetime | None = None
        self._revoked_checked_at = float("-inf")
        self.decisions = DecisionCache()
        """Today's decisions shown to holders, per worker (see ``current_status``)."""

    async def current_status(self, subject_id: str, *, now: dt.datetime | None = None) -> Status:
        """Today's status of an enrolled holder, as shown to them. A look-up
        records nothing: decisions are recorded when a pass is issued.

        One indexed read: the subject row with the status revision. The
        decision made earlier today by this worker is reused while neither
        changed (``healthcode.core.status.resolution.DecisionCache``); else the
        subject's entries are read in the same transaction and the status
        sources asked."""
        now = now or now_utc()
        day = today_shanghai(now)
        key = subject_key_bytes(subject_id)
        async with self.db.begin() as conn:
            row = (await conn.execute(_STATUS_READ, {"key": key})).first()
            if row is None:
                raise SubjectNotFoundError()
            stamp = DecisionStamp(day, row.status_revision, row.updated_at)
            cached = self.decisions.get(key, stamp)
            if cached is not None:
                return cached
            entries = await fetch_status_entries(conn, key, day)
        subject = Subject(
            subject_id=subject_id_hex(key),
            masked=MaskedDocument(row.kind, row.masked_name, row.masked_number),
        )
        status, _ = decide_status(subject, day, entries, now, self.pm or get_plugin_manager())
        self.decisions.put(key, stamp, status)
        return status

    async def issue(self, subject_id: str, *, now: dt.datetime | None = None) -> PassIssue:
        """Resolve today's status and sign a pass bound to the holder's device key."""
        now = now or now_utc()
        key = subject_key_bytes(subject_id)
        async with self.db.begin() as conn:
            subject, device = await load_subject(conn, key)
        if device is None:
            raise DeviceKeyMissingError()
        status = await resolve_status(self.db, subject, now=now, pm=self.pm)
        signing = self.keys.active()
        issued = issue_pass(
            signing.private_key,
            signing.kid,
            region_code=signing.region_code,
            colour=status.colour,
            masked=subject.masked,
            holder_key=device,
            now=now,
        )
        async with self.db.begin() as conn:
            await conn.execute(
                tables.passes.insert().values(
                    pass_id=issued.claims.pass_id,
                    subject_key=key,
                    issuer_kid=signing.kid,
                    colour=status.colour.value,
                    severity=status.colour.severity,
                    issued_at=now,
                    valid_until=status.valid_until,
                )
            )
        return PassIssue(issued=issued, status=status)

    async def revoke_worsened(self, *, now: dt.datetime | None = None) -> RevocationSummary:
        """Revoke every unexpired pass whose holder's status is now more severe.

        Run after each status import: a pass shown as green must not stay
        valid until 24:00 once the holder is listed.
        """
        now = now or now_utc()
        passes = tables.passes
        async with self.db.begin() as conn:
            rows = (
                await conn.execute(
                    sa.select(
                        passes.c.pass_id,
                        passes.c.subject_key,
                        passes.c.issuer_kid,
                        passes.c.severity,
                        passes.c.valid_until,
                    )
                    .where(passes.c.valid_until > now)
                    .where(passes.c.pass_id.not_in(sa.select(tables.revocations.c.pass_id)))
                )
            ).all()
        revoked = 0
        pushed: list[str] = []
        current: dict[bytes, Colour] = {}
        for row in rows:
            subject_key = bytes(row.subject_key)
            if subject_key not in current:
                async with self.db.begin() as conn:
                    subject, _ = await load_subject(conn, subject_key)
                status = await resolve_status(self.db, subject, now=now, pm=self.pm, record=False)
                current[subject_key] = status.colour
            if current[subject_key].severity > row.severity:
                async with self.db.begin() as conn:
                    await conn.execute(
                        tables.revocations.insert().values(
                            pass_id=bytes(row.pass_id),
                            issuer_kid=bytes(row.issuer_kid),
                            reason=REVOKED_STATUS_WORSENED,
                            revoked_at=now,
                            valid_until=row.valid_until,
                        )
                    )
                self._revoked.add(bytes(row.pass_id))
                pushed.append(bytes(row.pass_id).hex())
                revoked += 1
        if revoked:
            async with self.db.begin() as conn:
                await write_audit(conn, "revoke_passes", {"checked": len(rows), "revoked": revoked})
        # Every node's workers learn of the revocations at once (with Redis),
        # a thousand pass ids a message.
        for start in range(0, len(pushed), 1000):
            await publish_event(self.db, EVENT_PASS + ",".join(pushed[start : start + 1000]))
        return RevocationSummary(checked=len(rows), revoked=revoked)

    async def is_revoked(self, pass_id: bytes) -> bool:
        """The online check, from an in-memory set of revoked pass ids that is
        brought up to date at most ``REVOCATION_REFRESH_S`` seconds apart (one
        incremental read), so that a guard's scan costs no database round trip.
        A revocation reaches every worker within that interval; with Redis,
        at once (published by the revoking worker, :meth:`revoked_elsewhere`)."""
        now = time.monotonic()
        if now - self._revoked_checked_at >= REVOCATION_REFRESH_S:
            await self._refresh_revoked()
            self._revoked_checked_at = now
        return pass_id in self._revoked

    def revoked_elsewhere(self, pass_id: bytes) -> None:
        """A revocation published by another worker or node (through Redis):
        refused from now on, before the next read of the database."""
        self._revoked.add(pass_id)

    def reconcile(self) -> None:
        """Read the revocations afresh at the next check (after missed messages)."""
        self._revoked_checked_at = float("-inf")

    async def _refresh_revoked(self) -> None:
        revocations = tables.revocations
        query = sa.select(revocations.c.pass_id, revocations.c.revoked_at)
        if self._revoked_since is not None:
            query = query.where(revocations.c.revoked_at >= self._revoked_since)
        async with self.db.begin() as conn:
            rows = (await conn.execute(query)).all()
        for pass_id, revoked_at in rows:
            self._revoked.add(bytes(pass_id))
            if self._revoked_since is None or revoked_at > self._revoked_since:
                self._revoked_since = revoked_at

    async def revocation_list(self, *, now: dt.datetime | None = None) -> str:
        """The signed, compact revocation list of this instance's unexpired passes."""
        now = now or now_utc()
        revocations = tables.revocations
        async with self.db.begin() as conn:
            rows = (
                await conn.execute(
                    sa.select(revocations.c.issuer_kid, revocations.c.pass_id).where(
                        revocations.c.valid_until > now
                    )
                )
            ).all()
        kids = [info.kid for info in self.keys.verification_keys(now)]
        return build_revocation_list(
            self.keys.active(),
            [(bytes(kid), bytes(pass_id)) for kid, pass_id in rows],
            now,
            kids=kids,
        )

    async def purge(self, *, now: dt.datetime | None = None) -> dict[str, int]:
        """``purge_expired`` (the one purge: day-scoped rows, expired passes
        and revocations, liveness challenges); returns the rows deleted by table."""
        summary = await purge_expired(self.db, now=now)
        deleted = dict(summary.deleted)
        # Expired passes fail on their own; start the in-memory set afresh.
        self._revoked.clear()
        self._revoked_since = None
        self._revoked_checked_at = float("-inf")
        return deleted
