"""Load shedding and rate limiting, before any request reaches a handler.

Load shedding: a bounded number of requests in flight per worker.

Past the bound a request is answered at once with 503 and ``Retry-After``
instead of queueing until clients time out: a rush gets a clear "try later",
never a hung connection. Health probes are never shed.

Rate limits count per worker, or, with Redis configured (the app's
``state.shared``, :class:`healthcode.core.shared.SharedState`), per client
address across every node; while Redis is unreachable they fall back to the
per-worker count (logged once per outage).

Each refusal is reported to ``on_refusal`` with its problem code
(``service_busy``, ``too_many_requests``), for the app's metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from healthcode.api.problems import PROBLEM_JSON, problem_for_status

_BUSY = msgspec.json.encode(problem_for_status(503))
_TOO_MANY = msgspec.json.encode(problem_for_status(429))
BUSY_CODE = problem_for_status(503).code
TOO_MANY_CODE = problem_for_status(429).code

RefusalListener = Callable[[str], None]
"""Told the problem code of each request refused here."""


def _ignore(_code: str) -> None:
    return None


async def _refuse(send: Send, status: int, body: bytes, retry_after: int) -> None:
    """Answer at once with a problem document and ``Retry-After``."""
    start: Any = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", PROBLEM_JSON.encode()),
            (b"retry-after", str(retry_after).encode()),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _shared_state(scope: Scope) -> Any:
    """The app's shared Redis state (set at start-up), or None."""
    app = scope.get("litestar_app")
    return None if app is None else app.state.get("shared")


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
        on_refusal: RefusalListener = _ignore,
    ):
        self.app = app
        self.limit = limit
        self.retry_after = retry_after
        self.exempt = exempt
        self.counter = counter or InFlight()
        self.on_refusal = on_refusal

    @property
    def in_flight(self) -> int:
        return self.counter.count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        if self.counter.count >= self.limit:
            self.on_refusal(BUSY_CODE)
            await _refuse(send, 503, _BUSY, self.retry_after)
            return
        self.counter.count += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.counter.count -= 1


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

    Without Redis, in-process and per worker: a deployment with N workers
    allows N times the rate per address. With Redis (the app's
    ``state.shared``), one count per address across all nodes."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        per_minute: int,
        exempt: tuple[str, ...],
        windows: ClientWindows | None = None,
        clock: Any = time.monotonic,
        on_refusal: RefusalListener = _ignore,
    ):
        self.app = app
        self.per_minute = per_minute
        self.exempt = exempt
        self.windows = windows or ClientWindows()
        self.clock = clock
        self.on_refusal = on_refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else "unknown"
        shared = _shared_state(scope)
        if shared is not None:
            retry = await shared.hit(f"addr:{address}", self.per_minute)
            if retry:
                self.on_refusal(TOO_MANY_CODE)
                await _refuse(send, 429, _TOO_MANY, retry)
                return
            if retry is not None:
                await self.app(scope, receive, send)
                return
        now = self.clock()
        windows = self.windows
        if now - windows.window_start >= 60 or len(windows.counts) >= windows.max_clients:
            windows.window_start = now
            windows.counts.clear()
        count = windows.counts.get(address, 0) + 1
        windows.counts[address] = count
        if count > self.per_minute:
            retry = max(1, int(60 - (now - windows.window_start)))
            self.on_refusal(TOO_MANY_CODE)
            await _refuse(send, 429, _TOO_MANY, retry)
            return
        await self.app(scope, receive, send)
