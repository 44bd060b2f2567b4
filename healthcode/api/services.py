"""The services one worker holds, built once at start-up, and the
dependencies that hand them to handlers."""

from __future__ import annotations

from typing import Any

import attrs
import pluggy
from attrs import define
from litestar import Request
from litestar.datastructures import State

from healthcode.core.auth import Caller, TokenCache, authenticate_holder, request_target
from healthcode.core.auth import ForbiddenError as ForbiddenRoleError
from healthcode.core.enrollment import EnrollmentService, OperatorRateLimiter
from healthcode.core.enrollment.errors import RateLimitedError
from healthcode.core.passes import KeyStore, TrustStore
from healthcode.core.passes.service import PassService
from healthcode.core.passes.verification import VerificationService
from healthcode.core.privacy import OperatorSecrets
from healthcode.core.replay import UsedPurger
from healthcode.core.shared import SharedState
from healthcode.core.storage.database import Database


@define
class Services:
    db: Database
    secrets: OperatorSecrets
    pm: pluggy.PluginManager
    """The plugin manager every service of this worker was built with."""
    enrollment: EnrollmentService
    keys: KeyStore
    passes: PassService
    trust: TrustStore
    verification: VerificationService
    """Guards' scans: offline checks, this region's revocations, one use per live code."""
    callers: OperatorRateLimiter
    """Requests per guard token and per holder (429 beyond)."""
    used: UsedPurger
    """This worker's purge of expired records of used requests and live codes."""
    tokens: TokenCache = attrs.field(factory=TokenCache)
    shared: SharedState | None = None
    """Redis (``HEALTHCODE_REDIS_URL``): limits, uses and fan-out across nodes."""
    caller_rate_per_minute: int = 600

    async def take_caller(self, key: str) -> None:
        """Count one request of a guard token or a holder: across nodes in
        Redis, or in this worker when there is none or it is unreachable."""
        if self.shared is not None:
            retry = await self.shared.hit(f"caller:{key}", self.caller_rate_per_minute)
            if retry is not None:
                if retry:
                    raise RateLimitedError(details={"retry_after_s": retry})
                return
        self.callers.take(key)


def services(state: State) -> Services:
    found: Services = state.services
    return found


async def require_token(request: Request[Any, Any, Any], *roles: str) -> Caller:
    svc = services(request.app.state)
    caller = await svc.tokens.caller(svc.db, request.headers.get("authorization") or "")
    if caller.role not in roles:
        raise ForbiddenRoleError(details={"allowed": list(roles)})
    await svc.take_caller(f"token:{caller.token_id}")
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
    await svc.take_caller(f"holder:{caller.subject_id}")
    await svc.used.maybe_purge()
    return caller
