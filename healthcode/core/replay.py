"""Signed things that count once: a holder's signed request, a live code shown
to a guard.

Each is known by the SHA-256 of what its signature covers, never of the
signature itself: an ECDSA signature can be rewritten into another valid one,
the signed text cannot.

* Online (:func:`use_once`): the first use inserts the digest into
  ``used_signatures``; the primary key turns every later use, from any worker
  sharing the database, into a conflict, so two workers racing on one request
  accept it exactly once. A row expires when the signed thing would be refused
  as stale anyway; :func:`purge_used` deletes expired rows, and each worker's
  :class:`UsedPurger` runs it every few minutes.
  With Redis configured (:mod:`healthcode.core.shared`), the digest is set
  there instead (``SET NX`` with an expiry), shared by every node; Redis
  unreachable refuses the use (``replay_check_unavailable``), never accepts
  it unchecked.
* Offline (:class:`SeenList`): a guard's verifier keeps the digests of the live
  codes it accepted in a small JSON file until they expire.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import platformdirs
from attrs import define
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from healthcode.core.clock import now_utc
from healthcode.core.shared import shared_state
from healthcode.core.storage import tables
from healthcode.core.storage.database import Database
from healthcode.core.storage.errors import StorageError

log = logging.getLogger(__name__)

PURPOSE_REQUEST = "request"
PURPOSE_PRESENTATION = "presentation"
SEEN_FILE_ENV = "HEALTHCODE_SEEN_FILE"
PURGE_GRACE = dt.timedelta(minutes=5)
"""Records are kept this long after they expire, for workers whose clocks run
behind the purging one's."""
USED_PURGE_SECONDS = 300.0
"""How often each worker deletes expired records of used requests and live codes."""
_SEEN_MAX = 100_000
"""Entries kept in a seen-list file at most (a day of scans at a busy door)."""


def use_digest(purpose: str, signed: bytes) -> bytes:
    return hashlib.sha256(purpose.encode() + b"\0" + signed).digest()


async def use_once(
    db: Database,
    purpose: str,
    signed: bytes,
    *,
    expires_at: dt.datetime,
    now: dt.datetime | None = None,
) -> bool:
    """Record the use of ``signed`` (the text a signature covers); False when it
    was used before, by this worker or any other (any node's, with Redis)."""
    shared = shared_state(db)
    if shared is not None:
        return await shared.use_once(
            use_digest(purpose, signed), expires_at=expires_at, now=now or now_utc()
        )
    values = {
        "digest": use_digest(purpose, signed),
        "purpose": purpose,
        "used_at": now or now_utc(),
        "expires_at": expires_at,
    }
    async with db.begin() as conn:
        result = await conn.execute(_insert_once(db.backend), values)
        return bool(result.rowcount)


@functools.cache
def _insert_once(backend: str) -> Any:
    """The insert that records one use, or does nothing when the digest is
    there already; built once per backend (building it costs more than
    running it), its values bound at each execution."""
    table = tables.used_signatures
    insert = (sqlite.insert if backend == "sqlite" else postgresql.insert)(table)
    return insert.on_conflict_do_nothing(index_elements=[table.c.digest])


async def purge_used(db: Database, *, now: dt.datetime | None = None) -> int:
    """Delete the records of signed things that expired more than
    ``PURGE_GRACE`` ago; how many. Each worker runs it every few minutes, so
    that the table stays small between the nightly purges."""
    async with db.begin() as conn:
        return await delete_expired_uses(conn, now=now)


async def delete_expired_uses(conn: AsyncConnection, *, now: dt.datetime | None = None) -> int:
    """:func:`purge_used` inside a caller's transaction (for the one purge,
    ``healthcode.core.status.purge_expired``)."""
    table = tables.used_signatures
    before = (now or now_utc()) - PURGE_GRACE
    result = await conn.execute(table.delete().where(table.c.expires_at < before))
    return int(result.rowcount or 0)


@define
class UsedPurger:
    """One worker's purge of expired use records, at most once per
    ``every_s``: the table stays small between the nightly purges. A failure
    is logged, never a failed request."""

    db: Database
    every_s: float = USED_PURGE_SECONDS
    clock: Callable[[], float] = time.monotonic
    """Monotonic seconds; tests drive it."""
    last_run: float = float("-inf")

    async def maybe_purge(self) -> None:
        now = self.clock()
        if now - self.last_run < self.every_s:
            return
        self.last_run = now
        try:
            await purge_used(self.db)
        except Exception:
            log.warning("purging used signatures failed", exc_info=True)


# --- offline: the verifier's seen-list ----------------------------------------------


class SeenListError(StorageError):
    code = "seen_list_unavailable"
    default_en = "The list of live codes already accepted cannot be written; check --seen-file."
    default_zh = "无法写入已核验动态码列表，请检查 --seen-file。"


def default_seen_file() -> Path:
    """``$HEALTHCODE_SEEN_FILE``, else ``seen-live-codes.json`` in the user's state directory."""
    configured = os.environ.get(SEEN_FILE_ENV, "").strip()
    if configured:
        return Path(configured)
    return platformdirs.user_state_path("healthcode", appauthor=False) / "seen-live-codes.json"


class SeenList:
    """The live codes an offline verifier has accepted, until each expires.

    A JSON file ``{"seen": {digest hex: expiry, unix seconds}}``, rewritten
    atomically; a damaged file is started afresh (it only ever holds
    digests). Several verifier processes on one device take turns through an
    advisory lock where the platform has one.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def first_use(self, signed: bytes, expires_at: dt.datetime, now: dt.datetime) -> bool:
        """Record a live code's signed text; False when it was seen before."""
        digest = use_digest(PURPOSE_PRESENTATION, signed).hex()
        now_s = now.timestamp()
        try:
            with self._locked():
                seen = {d: e for d, e in self._load().items() if e >= now_s}
                if digest in seen:
                    return False
                seen[digest] = expires_at.timestamp()
                if len(seen) > _SEEN_MAX:
                    # Keep the entries that expire last.
                    seen = dict(sorted(seen.items(), key=lambda item: item[1])[-_SEEN_MAX:])
                self._save(seen)
        except OSError as exc:
            raise SeenListError(details={"errno": exc.errno}) from None
        return True

    def _load(self) -> dict[str, float]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            entries = data["seen"]
            return {str(d): float(e) for d, e in entries.items()}
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return {}

    def _save(self, seen: dict[str, float]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"seen": seen}, out)
        os.replace(temporary, self.path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not on Linux
            yield
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


__all__ = [
    "PURPOSE_PRESENTATION",
    "PURPOSE_REQUEST",
    "SeenList",
    "SeenListError",
    "UsedPurger",
    "default_seen_file",
    "delete_expired_uses",
    "purge_used",
    "use_once",
]
