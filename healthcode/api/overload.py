"""Load shedding: a bounded number of requests in flight per worker.

Past the bound a request is answered at once with 503 and ``Retry-After``
instead of queueing until clients time out: a rush gets a clear "try later",
never a hung connection. Health probes are never shed.
"""

from __future__ import annotations

import json
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

_BODY = json.dumps(
    {
        "type": "https://healthcode.invalid/problems/service_busy",
        "title": "service busy",
        "status": 503,
        "detail": "The service is busy: please try again shortly.",
        "code": "service_busy",
        "message_en": "The service is busy: please try again shortly.",
        "message_zh": "服务繁忙，请稍后再试。",
        "details": {},
    },
    ensure_ascii=False,
).encode()


class InFlight:
    """The count of requests in flight, shared by every route of one app
    (Litestar builds one middleware instance per route handler)."""

    def __init__(self) -> None:
        self.count = 0


class LoadShedder:
    """ASGI middleware counting requests in flight."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        retry_after: int,
        exempt: tuple[str, ...],
        counter: InFlight | None = None,
    ):
        self.app = app
        self.limit = limit
        self.retry_after = retry_after
        self.exempt = exempt
        self.counter = counter or InFlight()

    @property
    def in_flight(self) -> int:
        return self.counter.count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        if self.counter.count >= self.limit:
            start: Any = {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"retry-after", str(self.retry_after).encode()),
                    (b"content-length", str(len(_BODY)).encode()),
                ],
            }
            await send(start)
            await send({"type": "http.response.body", "body": _BODY, "more_body": False})
            return
        self.counter.count += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.counter.count -= 1
