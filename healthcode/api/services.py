"""The services one worker holds, built once at start-up, and the
dependencies that hand them to handlers."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import attrs
from attrs import define
from litestar import Request
from litestar.datastructures import State

from healthcode.core.auth import Caller, authenticate_holder, authenticate_token
from healthcode.core.auth import ForbiddenError as ForbiddenRoleError
from healthcode.core.enrollment import EnrollmentService, OperatorRateLimiter
from healthcode.core.models import Issuer
from healthcode.core.pass_service import PassService
from healthcode.core.passes import KeyStore, TrustStore, Verifier
from healthcode.core.passes.trust import with_plugin_issuers
from healthcode.core.secrets import OperatorSecrets
from healthcode.core.storage.database import Database

TRUST_RECHECK_SECONDS = 1.0


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


def services(state: State) -> Services:
    found: Services = state.services
    return found


# Checked tokens, kept briefly so that a guard's scans do not each cost a
# database read: a revoked token stops working within TOKEN_CACHE_SECONDS.
TOKEN_CACHE_SECONDS = 30.0
_TOKEN_CACHE_MAX = 10_000
_token_cache: dict[str, tuple[float, Caller]] = {}


async def require_token(request: Request[Any, Any, Any], *roles: str) -> Caller:
    svc = services(request.app.state)
    header = request.headers.get("authorization") or ""
    cached = _token_cache.get(header)
    now = time.monotonic()
    if cached is not None and cached[0] > now:
        caller = cached[1]
    else:
        caller = await authenticate_token(svc.db, header or None)
        if len(_token_cache) >= _TOKEN_CACHE_MAX:
            _token_cache.clear()
        _token_cache[header] = (now + TOKEN_CACHE_SECONDS, caller)
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
        path=request.url.path,
        body=body,
    )
    svc.callers.take(f"holder:{caller.subject_id}")
    return caller


def iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None
