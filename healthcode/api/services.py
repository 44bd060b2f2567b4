"""The services one worker holds, built once at start-up, and the
dependencies that hand them to handlers."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

import attrs
from attrs import define
from litestar import Request
from litestar.datastructures import State

from healthcode.core.auth import (
    Caller,
    authenticate_holder,
    authenticate_token,
    local_revocations,
    request_target,
    tokens_revision,
)
from healthcode.core.auth import ForbiddenError as ForbiddenRoleError
from healthcode.core.enrollment import EnrollmentService, OperatorRateLimiter
from healthcode.core.models import Issuer
from healthcode.core.pass_service import PassService
from healthcode.core.passes import KeyStore, TrustStore, Verifier
from healthcode.core.passes.trust import with_plugin_issuers
from healthcode.core.replay import purge_used
from healthcode.core.secrets import OperatorSecrets
from healthcode.core.storage.database import Database

log = logging.getLogger("healthcode.api")

TRUST_RECHECK_SECONDS = 1.0
USED_PURGE_SECONDS = 300.0
"""How often each worker deletes expired records of used requests and live codes."""

# Checked tokens, kept briefly so that a guard's scans do not each cost a
# token read. A revocation empties the cache at once in the process that made
# it, and in every other worker within TOKEN_RECHECK_SECONDS.
TOKEN_CACHE_SECONDS = 30.0
TOKEN_RECHECK_SECONDS = 1.0
_TOKEN_CACHE_MAX = 10_000


@define
class TokenCache:
    """Guard and admin tokens already checked, per worker.

    Like the online revocation set (``PassService.is_revoked``), it is brought
    up to date at most once a ``TOKEN_RECHECK_SECONDS``, here with one
    primary-key read of the tokens revision, which every revocation changes.
    """

    clock: Callable[[], float] = time.monotonic
    """Monotonic seconds; tests drive it."""
    entries: dict[str, tuple[float, Caller]] = attrs.field(factory=dict)
    revision: str | None = None
    """The tokens revision the entries were checked under."""
    revoked_here: int = 0
    """Revocations this process made through the database, when last looked at."""
    checked_at: float = float("-inf")

    async def caller(self, db: Database, header: str) -> Caller:
        now = self.clock()
        if local_revocations(db) != self.revoked_here:
            self.revoked_here = local_revocations(db)
            self.entries.clear()
        if now - self.checked_at >= TOKEN_RECHECK_SECONDS:
            revision = await tokens_revision(db)
            self.checked_at = now
            if revision != self.revision:
                self.revision = revision
                self.entries.clear()
        cached = self.entries.get(header)
        if cached is not None and cached[0] > now:
            return cached[1]
        caller = await authenticate_token(db, header or None)
        if len(self.entries) >= _TOKEN_CACHE_MAX:
            self.entries.clear()
        self.entries[header] = (now + TOKEN_CACHE_SECONDS, caller)
        return caller


@define
class Services:
    db: Database
    secrets: OperatorSecrets
    enrollment: EnrollmentService
    keys: KeyStore
    passes: PassService
    trust: TrustStore
    verifier: Verifier
    region_code: str
    """This instance's region (GB/T 2260), read once from the key store."""
    callers: OperatorRateLimiter
    """Requests per guard token and per holder (429 beyond)."""
    plugin_issuers: list[Issuer] = attrs.field(factory=list)
    """Peers named by plugins (``healthcode_trusted_issuers``), merged into the trust list."""
    trust_seen: tuple[float, float] = (0.0, 0.0)
    trust_checked_at: float = 0.0
    tokens: TokenCache = attrs.field(factory=TokenCache)
    used_purged_at: float = float("-inf")

    def reload_trust(self) -> None:
        """Rebuild the verifier's trust list from the signed file and the plugins."""
        self.verifier.set_trust_list(with_plugin_issuers(self.trust.load(), self.plugin_issuers))
        self.trust_seen = self.trust_stamp()

    def maybe_reload_trust(self) -> None:
        """Pick up a trust list or key rotation written by another worker or the
        CLI: one ``stat`` a second at most."""
        now = time.monotonic()
        if now - self.trust_checked_at < TRUST_RECHECK_SECONDS:
            return
        self.trust_checked_at = now
        if self.trust_stamp() != self.trust_seen:
            self.reload_trust()

    def trust_stamp(self) -> tuple[float, float]:
        """Modification times of the trust list and the key store's metadata."""
        stamps = []
        for path in (self.trust.path, self.keys.path / "issuer.json"):
            try:
                stamps.append(path.stat().st_mtime)
            except OSError:
                stamps.append(0.0)
        return stamps[0], stamps[1]

    async def maybe_purge_used(self) -> None:
        """Delete expired records of used requests and live codes, at most once
        per ``USED_PURGE_SECONDS`` per worker: the table stays small between
        daily purges. A failure is logged, never a failed request."""
        now = time.monotonic()
        if now - self.used_purged_at < USED_PURGE_SECONDS:
            return
        self.used_purged_at = now
        try:
            await purge_used(self.db)
        except Exception:
            log.warning("purging used signatures failed", exc_info=True)


def services(state: State) -> Services:
    found: Services = state.services
    return found


async def require_token(request: Request[Any, Any, Any], *roles: str) -> Caller:
    svc = services(request.app.state)
    caller = await svc.tokens.caller(svc.db, request.headers.get("authorization") or "")
    if caller.role not in roles:
        raise ForbiddenRoleError(details={"allowed": list(roles)})
    svc.callers.take(f"token:{caller.token_id}")
    return caller


async def require_holder(request: Request[Any, Any, Any]) -> Caller:
    svc = services(request.app.state)
    body = await request.body()
    caller = await authenticate_holder(
        svc.db,
        request.headers.get("authorization"),
        method=request.method,
        # The query string as sent: a signature for /me/status does not
        # cover /me/status?anything.
        path=request_target(request.url.path, request.scope["query_string"].decode("latin-1")),
        body=body,
    )
    svc.callers.take(f"holder:{caller.subject_id}")
    await svc.maybe_purge_used()
    return caller


def iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None
