"""Several service nodes as real processes on one PostgreSQL and one Redis
(issue 13), for tests/test_multinode.py and tests/test_multinode_nginx.py;
and what an operator and a phone do against them."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Concatenate, NoReturn, ParamSpec, TypeVar

import httpx
import pytest
from attrs import frozen

from healthcode.core.auth import create_token, sign_request
from healthcode.core.passes import HolderDevice, KeyStore
from healthcode.core.privacy import document_key, subject_id_hex
from healthcode.core.privacy.secrets import load_secrets
from healthcode.core.storage.database import Database, init_instance
from healthcode.core.storage.testing import truncate_all
from support.data import CLOCK_START
from support.holders import insert_subject
from support.processes import start_clocked_server, wait_ready
from support.redis import shared_redis_reachable, shared_redis_url, unique_prefix

P = ParamSpec("P")
T = TypeVar("T")


@frozen
class Cluster:
    """Service nodes sharing one database and one Redis (under ``prefix``)."""

    urls: tuple[str, ...]
    """Each node's base URL."""
    database_url: str
    secrets_file: Path
    redis_url: str
    prefix: str
    clock_start: float
    """The nodes' clock (Unix seconds) when ``monotonic_start`` was read."""
    monotonic_start: float

    def now(self) -> dt.datetime:
        """The nodes' clock now (they run on a shifted clock, see clocked_uvicorn.py)."""
        elapsed = time.monotonic() - self.monotonic_start
        return dt.datetime.fromtimestamp(self.clock_start + elapsed, dt.UTC)

    def clear_of_a_window_edge(self, needed_s: float, *, margin_s: float = 3.0) -> None:
        """Wait, if need be, until the nodes' fixed one-minute rate window has
        ``needed_s`` left, ``margin_s`` clear of either edge (a node's clock may
        run a start-up's seconds off ``now``): requests sent within ``needed_s``
        are then counted in one window, whatever the hour the test runs at."""
        into = self.now().timestamp() % 60
        if into < margin_s:
            time.sleep(margin_s - into)
        elif into > 60 - needed_s - margin_s:
            time.sleep(60 - into + margin_s)

    @property
    def ports(self) -> tuple[int, ...]:
        """Each node's port on loopback."""
        return tuple(int(url.rsplit(":", 1)[1]) for url in self.urls)


def require(reason: str) -> NoReturn:
    """Skip the test for want of ``reason``'s service; fail it under ``CI=true``."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (required under CI)")
    pytest.skip(reason)


def shared_services(postgres_url: str | None) -> tuple[str, str]:
    """The database (the ``postgres_url`` fixture) and the shared Redis URLs,
    or the test skipped (failed under CI) where either is unreachable."""
    if postgres_url is None:
        require("PostgreSQL not reachable")
    redis_url = shared_redis_url()
    if not shared_redis_reachable(redis_url):
        require(f"Redis not reachable at {redis_url}")
    return postgres_url, redis_url


@contextmanager
def running_cluster(
    home: Path,
    database_url: str,
    redis_url: str,
    *,
    rate_limit: int,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[Cluster]:
    """Two nodes on ``database_url`` (migrated and emptied here) and
    ``redis_url``, their secrets and keys under ``home``; each client address
    may send ``rate_limit`` requests a minute, counted across both. The nodes'
    environment takes ``extra_env`` last."""
    secrets = home / "secrets.json"

    async def set_up() -> None:
        db = Database(database_url)
        try:
            await db.migrate()
            await truncate_all(db)
        finally:
            await db.dispose()
        await init_instance(database_url, secrets)

    asyncio.run(set_up())
    if not (home / "keys").exists():
        KeyStore(home / "keys").init("110000", "北京市", now=CLOCK_START)
    prefix = unique_prefix()
    clock_start, monotonic_start = CLOCK_START.timestamp(), time.monotonic()
    env = os.environ | {
        "HEALTHCODE_DATABASE_URL": database_url,
        "HEALTHCODE_SECRETS_FILE": str(secrets),
        "HEALTHCODE_KEYS_DIR": str(home / "keys"),
        "HEALTHCODE_TRUST_FILE": str(home / "trust.hct"),
        "HEALTHCODE_REDIS_URL": redis_url,
        "HEALTHCODE_REDIS_PREFIX": prefix,
        "HEALTHCODE_RATE_LIMIT_PER_MINUTE": str(rate_limit),
        "HEALTHCODE_MIGRATE_ON_START": "0",
        "HEALTHCODE_RUN_PURGE": "0",
        "HEALTHCODE_TEST_CLOCK_START": repr(clock_start),
        "HEALTHCODE_TEST_CLOCK_MONOTONIC": repr(monotonic_start),
    }
    env |= extra_env or {}
    nodes = [start_clocked_server(env) for _ in range(2)]
    try:
        for process, url in nodes:
            wait_ready(process, url)
        yield Cluster(
            tuple(url for _, url in nodes),
            database_url,
            secrets,
            redis_url,
            prefix,
            clock_start,
            monotonic_start,
        )
    finally:
        for process, _ in nodes:
            process.terminate()
        for process, _ in nodes:
            process.wait(timeout=20)


# --- what an operator and a phone do ----------------------------------------------------


def db_call(
    database_url: str,
    fn: Callable[Concatenate[Database, P], Awaitable[T]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """``fn(db, *args, **kwargs)`` on a database of its own, as the CLI runs it."""

    async def run() -> T:
        db = Database(database_url)
        try:
            return await fn(db, *args, **kwargs)
        finally:
            await db.dispose()

    return asyncio.run(run())


def guard_token(cluster: Cluster) -> tuple[str, dict[str, str]]:
    """A new guard token: its id and the Bearer header that carries it."""
    token = db_call(cluster.database_url, create_token, "guard", "gate 3")
    return token.split("_")[2].split(".")[0], {"authorization": f"Bearer {token}"}


def holder_with_pass(
    cluster: Cluster, number: str, via: str | None = None
) -> tuple[HolderDevice, str, str]:
    """A holder (passport ``number``) written into the database and a pass
    issued through ``via`` (the first node by default): its device, subject id
    and the pass's text."""
    device = HolderDevice.generate("ES256")
    key = document_key(load_secrets(cluster.secrets_file), "passport", "GBR", number)
    db_call(cluster.database_url, insert_subject, key, device)
    subject = subject_id_hex(key)
    signed = sign_request(device.private_key, subject, "POST", "/me/passes", now=cluster.now())
    url = cluster.urls[0] if via is None else via
    issued = httpx.post(f"{url}/me/passes", headers={"authorization": signed})
    assert issued.status_code == 201, issued.text
    return device, subject, issued.json()["text"]


def verify(url: str, guard: dict[str, str], code: str) -> httpx.Response:
    """A guard's verification of ``code`` at ``url``."""
    return httpx.post(
        f"{url}/guard/verifications", json={"presentation": code}, headers=guard, timeout=10
    )
