"""The services one worker holds, built once at start-up, and the
dependencies that hand them to handlers."""

from __future__ import annotations

import datetime as dt
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


async def require_token(request: Request[Any, Any, Any], *roles: str) -> Caller:
    svc = services(request.app.state)
    caller = await authenticate_token(svc.db, request.headers.get("authorization"))
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
