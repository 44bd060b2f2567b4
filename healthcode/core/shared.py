"""The fast state several nodes share, in Redis (``HEALTHCODE_REDIS_URL``).

PostgreSQL stays the truth; Redis holds what every node must see at once:

* **once-only uses** (:meth:`SharedState.use_once`): a live code verified
  online and a holder's signed request, ``SET NX`` with an expiry at the end
  of their window. Redis unreachable: :class:`ReplayCheckUnavailableError`
  (503 ``replay_check_unavailable``, with ``Retry-After``), never an
  unchecked accept.
* **rate limits** (:meth:`SharedState.hit`): a fixed one-minute window per
  key (``INCR`` + ``EXPIRE`` in one transaction), counted across nodes.
  Redis unreachable: None, and the caller falls back to its node-local
  limiter (logged once per outage).
* **fan-out** (:meth:`SharedState.publish`, :meth:`SharedState.listen`): a
  token revocation or a pass revocation is published on one channel and every
  worker of every node drops its cached view at once. A worker that missed
  messages (Redis blip, restart) still reconciles from the database, as
  without Redis.

Without ``HEALTHCODE_REDIS_URL`` nothing here is used: one node keeps its
in-process state and the database's ``used_signatures`` table.

The state in use by a database's workers is found with :func:`shared_state`
(attached at start-up by :func:`attach`), so that core functions such as
``replay.use_once`` need no extra argument.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from healthcode.core.errors import HealthcodeError

log = logging.getLogger(__name__)

REDIS_URL_ENV = "HEALTHCODE_REDIS_URL"
REDIS_PREFIX_ENV = "HEALTHCODE_REDIS_PREFIX"
DEFAULT_PREFIX = "healthcode"
SOCKET_TIMEOUT_S = 0.5
"""A Redis call that takes longer counts as Redis being down: a guard's scan
must not hang on it."""
EVENT_TOKENS = "tokens"
"""Published after a token revocation: every token cache empties."""
EVENT_PASS = "pass:"
"""Prefix of the event published for revoked passes (``pass:<id hex>,<id hex>,...``)."""
RETRY_AFTER_S = 2


class ReplayCheckUnavailableError(HealthcodeError):
    """The shared record of used live codes and signed requests cannot be
    reached; the request is refused rather than accepted unchecked."""

    code = "replay_check_unavailable"
    default_en = (
        "The check that each code and signed request is used once is unavailable; "
        "try again shortly."
    )
    default_zh = "一次性使用校验暂不可用，请稍后重试。"
    http_status = 503


EventHandler = Callable[[str], Awaitable[None] | None]


def redis_url_from_env() -> str | None:
    return os.environ.get(REDIS_URL_ENV, "").strip() or None


_COUNT_IN_WINDOW = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then
    redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return count
"""
"""One request counted in a fixed window's counter, which expires with the
window: one command (EVALSHA) instead of MULTI, INCR, EXPIRE, EXEC."""


class SharedState:
    """One worker's connection to the shared Redis, under a key prefix."""

    clock: Callable[[], float] = staticmethod(time.time)
    """Wall-clock seconds that place a request in its rate window (tests fix it)."""

    def __init__(self, url: str, *, prefix: str | None = None) -> None:
        import redis.asyncio as aioredis

        self.url = url
        self.prefix = (prefix or os.environ.get(REDIS_PREFIX_ENV) or DEFAULT_PREFIX).strip(":")
        self.client: Any = aioredis.Redis.from_url(
            url,
            socket_timeout=SOCKET_TIMEOUT_S,
            socket_connect_timeout=SOCKET_TIMEOUT_S,
            retry_on_timeout=False,
        )
        self.channel = f"{self.prefix}:events"
        self.down = False
        """Whether the last call failed (a recovery is logged once)."""
        self._count = self.client.register_script(_COUNT_IN_WINDOW)

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def _failed(self, what: str) -> None:
        if not self.down:
            log.warning(
                "Redis unreachable (%s): rate limits count per worker, live codes and "
                "signed requests are refused with 503 replay_check_unavailable, caches "
                "read the database, until it returns / Redis 不可用，已降级运行",
                what,
            )
        self.down = True

    def _ok(self) -> None:
        if self.down:
            log.warning("Redis reachable again; shared state restored / Redis 已恢复")
        self.down = False

    async def use_once(self, digest: bytes, *, expires_at: dt.datetime, now: dt.datetime) -> bool:
        """Record one use of ``digest`` until ``expires_at``; False when it was
        used before, at any node. Raises :class:`ReplayCheckUnavailableError`."""
        ttl_ms = max(1000, int((expires_at - now).total_seconds() * 1000) + 1000)
        try:
            first = await self.client.set(self.key("used", digest.hex()), b"1", nx=True, px=ttl_ms)
        except Exception:
            self._failed("use_once")
            raise ReplayCheckUnavailableError(details={"retry_after_s": RETRY_AFTER_S}) from None
        self._ok()
        return bool(first)

    async def hit(self, name: str, limit: int, *, window_s: int = 60) -> int | None:
        """Count one request against ``name``'s ``limit`` in the current fixed
        window, across nodes: 0 when allowed, else the seconds until the window
        ends. None when Redis is unreachable (the caller limits locally)."""
        now = self.clock()
        window = int(now // window_s)
        key = self.key("rate", name, str(window))
        try:
            count = await self._count(keys=[key], args=[window_s + 1])
        except Exception:
            self._failed("rate limit")
            return None
        self._ok()
        if int(count) <= limit:
            return 0
        return max(1, int((window + 1) * window_s - now))

    async def publish(self, event: str) -> bool:
        """Tell every node's workers of ``event``; False when Redis is down
        (they will reconcile from the database)."""
        try:
            await self.client.publish(self.channel, event)
        except Exception:
            self._failed("publish")
            return False
        self._ok()
        return True

    async def listen(
        self, handler: EventHandler, *, on_reconnect: Callable[[], None] | None = None
    ) -> None:
        """Call ``handler`` with every event published, forever; after a lost
        subscription, ``on_reconnect`` (the worker reconciles from the
        database) once subscribed again."""
        lost = False
        while True:
            try:
                async with self.client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self.channel)
                    if lost and on_reconnect is not None:
                        on_reconnect()
                    lost = False
                    await self._receive(pubsub, handler)
            except asyncio.CancelledError:
                raise
            except Exception:
                lost = True
                self._failed("subscription")
                await asyncio.sleep(0.5)

    async def _receive(self, pubsub: Any, handler: EventHandler) -> None:
        while True:
            message = await pubsub.get_message(timeout=1.0)
            if message is None or message.get("type") != "message":
                continue
            data = message["data"]
            event = data.decode() if isinstance(data, bytes) else str(data)
            result = handler(event)
            if result is not None:
                await result

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.aclose()


# The shared state the workers of one open Database use.
_attached: weakref.WeakKeyDictionary[Any, SharedState] = weakref.WeakKeyDictionary()


def attach(db: Any, shared: SharedState) -> None:
    """Make ``shared`` the state used with ``db`` (at a worker's start)."""
    _attached[db] = shared


def shared_state(db: Any) -> SharedState | None:
    """The shared state attached to ``db``; None: one node, no Redis."""
    return _attached.get(db)


async def publish_event(db: Any, event: str) -> None:
    """Publish ``event`` through ``db``'s shared state or, in a process with
    none attached (the CLI), through ``HEALTHCODE_REDIS_URL`` when it is set.
    Best effort: the database stays the truth."""
    shared = shared_state(db)
    if shared is not None:
        await shared.publish(event)
        return
    url = redis_url_from_env()
    if url is None:
        return
    once = SharedState(url)
    try:
        await once.publish(event)
    finally:
        await once.close()


__all__ = [
    "EVENT_PASS",
    "EVENT_TOKENS",
    "REDIS_URL_ENV",
    "ReplayCheckUnavailableError",
    "SharedState",
    "attach",
    "publish_event",
    "redis_url_from_env",
    "shared_state",
]
