"""The services one worker holds, built once at start-up, and the
dependencies that hand them to handlers."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from attrs import define
from litestar import Request
from litestar.datastructures import State

from healthcode.core.auth import Caller, authenticate_holder, authenticate_token
from healthcode.core.auth import ForbiddenError as ForbiddenRoleError
from healthcode.core.enrollment import EnrollmentService
from healthcode.core.models import Status
from healthcode.core.pass_service import PassService
from healthcode.core.passes import KeyStore, TrustStore, Verifier
from healthcode.core.secrets import OperatorSecrets
from healthcode.core.storage.database import Database


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
    return caller


async def require_holder(request: Request[Any, Any, Any]) -> Caller:
    svc = services(request.app.state)
    body = await request.body()
    return await authenticate_holder(
        svc.db,
        request.headers.get("authorization"),
        method=request.method,
        path=request.url.path,
        body=body,
    )


def status_view(status: Status) -> dict[str, str]:
    return {
        "colour": status.colour.value,
        "label_zh": status.colour.label_zh,
        "label_en": status.colour.label_en,
        "valid_until": status.valid_until.isoformat(),
    }


def iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None
