"""Load shedding and rate limiting, before any request reaches a handler.

Load shedding: a bounded number of requests in flight per worker.

Past the bound a request is answered at once with 503 and ``Retry-After``
instead of queueing until clients time out: a rush gets a clear "try later",
never a hung connection. Health probes are never shed.
"""

from __future__ import annotations

import json
import time
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


def _problem_body(code: str, status: int, en: str, zh: str) -> bytes:
    return json.dumps(
        {
            "type": f"https://healthcode.invalid/problems/{code}",
            "title": code.replace("_", " "),
            "status": status,
            "detail": en,
            "code": code,
            "message_en": en,
            "message_zh": zh,
            "details": {},
        },
        ensure_ascii=False,
    ).encode()


_TOO_MANY = _problem_body(
    "too_many_requests",
    429,
    "Too many requests: please try again shortly.",
    "请求过于频繁，请稍后再试。",
)


class ClientWindows:
    """Requests per client address in fixed one-minute windows, shared by
    every route of one app. Bounded: past ``max_clients`` addresses in one
    window the table starts afresh (a flood of spoofed addresses cannot grow
    it without limit)."""

    def __init__(self, *, max_clients: int = 100_000) -> None:
        self.window_start = 0.0
        self.counts: dict[str, int] = {}
        self.max_clients = max_clients


class RateLimiter:
    """ASGI middleware: at most ``per_minute`` requests per client address;
    beyond it 429 with ``Retry-After`` (the seconds left in the window).

    In-process and per worker: a deployment with N workers allows N times the
    rate per address; a global limit belongs in the reverse proxy."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        per_minute: int,
        exempt: tuple[str, ...],
        windows: ClientWindows | None = None,
        clock: Any = time.monotonic,
    ):
        self.app = app
        self.per_minute = per_minute
        self.exempt = exempt
        self.windows = windows or ClientWindows()
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        now = self.clock()
        windows = self.windows
        if now - windows.window_start >= 60 or len(windows.counts) >= windows.max_clients:
            windows.window_start = now
            windows.counts.clear()
        client = scope.get("client")
        address = client[0] if client else "unknown"
        count = windows.counts.get(address, 0) + 1
        windows.counts[address] = count
        if count > self.per_minute:
            retry = max(1, int(60 - (now - windows.window_start)))
            start: Any = {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"retry-after", str(retry).encode()),
                    (b"content-length", str(len(_TOO_MANY)).encode()),
                ],
            }
            await send(start)
            await send({"type": "http.response.body", "body": _TOO_MANY, "more_body": False})
            return
        await self.app(scope, receive, send)
