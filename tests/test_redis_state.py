"""The state several nodes share in Redis (issue 13), and what happens while
Redis is down.

Two apps stand for two nodes (litestar's AsyncTestClient), with a
redis-server of this module's own on a Unix socket, stopped and restarted by
the tests: a live code verified at one node is refused at the other, a rate
limit counts across both, a token or pass revocation reaches the other at
once; Redis down gives only 503 ``replay_check_unavailable`` (with
Retry-After) for what must count once, local rate limits, and recovery
without a restart.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TypeVar

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from support.holders import insert_subject
from support.redis import OwnRedis, own_redis, redis_server_available, unique_prefix

from healthcode.api.app import create_app
from healthcode.api.settings import Settings
from healthcode.core.auth import create_token, revoke_token, sign_request
from healthcode.core.passes import HolderDevice, KeyStore
from healthcode.core.privacy import document_key, subject_id_hex
from healthcode.core.shared import (
    EVENT_PASS,
    ReplayCheckUnavailableError,
    SharedState,
    publish_event,
    shared_state,
)
from healthcode.core.storage import tables
from healthcode.core.storage.database import Database, init_instance

pytestmark = pytest.mark.skipif(not redis_server_available(), reason="no redis-server")

T = TypeVar("T")
Client = AsyncTestClient[Litestar]


MID_WINDOW = 1_800_000_030.0
"""An instant 30 s into a one-minute rate window."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnRedis]:
    with own_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis(redis_server: OwnRedis, monkeypatch: pytest.MonkeyPatch) -> OwnRedis:
    """The module's redis-server, running, under a key prefix of this test's own."""
    if redis_server.process is None:
        redis_server.start()
    # Not id(monkeypatch): CPython reuses an address once the object is freed,
    # and a later test in the same minute would meet an earlier one's counters.
    monkeypatch.setenv("HEALTHCODE_REDIS_PREFIX", unique_prefix())
    # Mid-window, whatever the hour: a test's requests never straddle two
    # fixed one-minute rate windows.
    monkeypatch.setattr(SharedState, "clock", staticmethod(lambda: MID_WINDOW))
    return redis_server


async def _node(tmp_path: Path, name: str, redis: OwnRedis, **overrides: Any) -> Settings:
    """One node: its own SQLite database, the region's one key store, the shared Redis."""
    keys = tmp_path / "keys"
    if not keys.exists():
        KeyStore(keys).init("110000", "北京市")
    url = f"sqlite:///{tmp_path / f'{name}.db'}"
    secrets = tmp_path / "secrets.json"
    await init_instance(url, secrets)
    return Settings(
        database_url=url,
        secrets_file=secrets,
        keys_dir=keys,
        trust_file=tmp_path / "trust.hct",
        run_purge=False,
        redis_url=redis.url,
        **overrides,
    )


@pytest.fixture
async def nodes(tmp_path: Path, redis: OwnRedis) -> AsyncIterator[tuple[Client, Client]]:
    """Nodes A and B: each its own database (so that only Redis is shared)."""
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(
            AsyncTestClient(create_app(await _node(tmp_path, "a", redis)))
        )
        b = await stack.enter_async_context(
            AsyncTestClient(create_app(await _node(tmp_path, "b", redis)))
        )
        yield a, b


def _svc(client: Client) -> Any:
    return client.app.state.services


def _in_app(client: Client, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    """Run ``fn`` on the app's own event loop."""
    return client.blocking_portal.call(functools.partial(fn, *args, **kwargs))


def _holder(client: Client, device: HolderDevice) -> str:
    svc = _svc(client)
    key = document_key(svc.secrets, "passport", "GBR", "Q7654321")
    _in_app(client, insert_subject, svc.db, key, device)
    return subject_id_hex(key)


def _guard(client: Client) -> dict[str, str]:
    token = _in_app(client, create_token, _svc(client).db, "guard", "gate 3")
    return {"authorization": f"Bearer {token}"}


async def _pass(client: Client) -> tuple[HolderDevice, str, str]:
    """A holder enrolled at ``client``'s node and a pass issued there."""
    device = HolderDevice.generate("ES256")
    subject = _holder(client, device)
    signed = sign_request(device.private_key, subject, "POST", "/me/passes")
    issued = await client.post("/me/passes", headers={"authorization": signed})
    assert issued.status_code == 201, issued.text
    return device, subject, issued.json()["text"]


async def _verify(client: Client, guard: dict[str, str], code: str) -> Any:
    return await client.post("/guard/verifications", json={"presentation": code}, headers=guard)


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["message_en"] and body["message_zh"]
    return body


class Monotonic:
    """A token cache's clock that stands still: no database re-read."""

    now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- shared: used live codes, rate limits, revocations ---------------------------------


@pytest.mark.anyio
async def test_a_live_code_verified_at_one_node_is_refused_at_another(
    nodes: tuple[Client, Client],
) -> None:
    a, b = nodes
    guard_a, guard_b = _guard(a), _guard(b)
    device, _, issued = await _pass(a)
    code = device.present(issued)
    first = (await _verify(a, guard_a, code)).json()
    assert (first["ok"], first["colour"]) == (True, "green")
    # Node B has its own database: only Redis tells it the code was used.
    again = (await _verify(b, guard_b, code)).json()
    assert (again["ok"], again["code"]) == (False, "presentation_replayed")


@pytest.mark.anyio
async def test_a_signed_request_counts_once_across_nodes(tmp_path: Path, redis: OwnRedis) -> None:
    # Two nodes on one database (as on PostgreSQL) but the use recorded in Redis only.
    settings = await _node(tmp_path, "one", redis)
    async with (
        AsyncTestClient(create_app(settings)) as a,
        AsyncTestClient(create_app(settings)) as b,
    ):
        device = HolderDevice.generate("ES256")
        subject = _holder(a, device)
        header = {"authorization": sign_request(device.private_key, subject, "GET", "/me/status")}
        assert (await a.get("/me/status", headers=header)).status_code == 200
        _problem(await b.get("/me/status", headers=header), 401, "request_replayed")
        rows = _in_app(a, _used_rows, _svc(a).db)
        assert rows == 0  # not in the database's table: Redis holds it


async def _used_rows(db: Database) -> int:
    import sqlalchemy as sa

    async with db.begin() as conn:
        count = await conn.execute(sa.select(sa.func.count()).select_from(tables.used_signatures))
        return int(count.scalar_one())


@pytest.mark.anyio
async def test_the_address_rate_limit_counts_across_nodes(tmp_path: Path, redis: OwnRedis) -> None:
    limit = 3
    async with (
        AsyncTestClient(
            create_app(await _node(tmp_path, "a", redis, rate_limit_per_minute=limit))
        ) as a,
        AsyncTestClient(
            create_app(await _node(tmp_path, "b", redis, rate_limit_per_minute=limit))
        ) as b,
    ):
        answers = []
        for client in (a, b, a, b, a, b):
            answers.append(await client.post("/guard/verifications", json={"presentation": "x"}))
        passed = [r for r in answers if r.status_code != 429]
        assert len(passed) == limit
        refused = answers[-1]
        _problem(refused, 429, "too_many_requests")
        assert refused.headers["retry-after"] == "30"  # the rest of the window


@pytest.mark.anyio
async def test_the_guard_token_limit_counts_across_nodes(tmp_path: Path, redis: OwnRedis) -> None:
    settings = await _node(tmp_path, "one", redis, caller_rate_per_minute=2)
    async with (
        AsyncTestClient(create_app(settings)) as a,
        AsyncTestClient(create_app(settings)) as b,
    ):
        guard = _guard(a)
        codes = [(await _verify(c, guard, "HCP1:x")).status_code for c in (a, b, a)]
        assert codes == [200, 200, 429]


@pytest.mark.anyio
async def test_the_assisted_check_limit_counts_across_nodes(
    tmp_path: Path, redis: OwnRedis
) -> None:
    settings = await _node(tmp_path, "one", redis)
    elder = "11010519491231002X"  # born 1949: eligible
    async with (
        AsyncTestClient(create_app(settings)) as a,
        AsyncTestClient(create_app(settings)) as b,
    ):
        guard = _guard(a)
        capacity = _svc(a).enrollment.assist_limiter.capacity
        codes = [
            (
                await client.post("/guard/assisted-checks", json={"number": elder}, headers=guard)
            ).status_code
            for client in [a, b] * (capacity // 2) + [b]
        ]
    # Each worker alone would allow ``capacity``: together they allow it once.
    assert codes == [200] * capacity + [429]


@pytest.mark.anyio
async def test_a_token_revoked_at_one_node_is_refused_at_another_at_once(
    tmp_path: Path, redis: OwnRedis
) -> None:
    settings = await _node(tmp_path, "one", redis)
    async with (
        AsyncTestClient(create_app(settings)) as a,
        AsyncTestClient(create_app(settings)) as b,
    ):
        _svc(b).tokens.clock = Monotonic()  # B never re-reads the database on its own
        guard = _guard(a)
        assert (await _verify(b, guard, "HCP1:x")).status_code == 200
        token_id = guard["authorization"].split("_")[2].split(".")[0]
        assert _in_app(a, revoke_token, _svc(a).db, token_id)
        status = 200
        for _ in range(50):  # the message arrives within milliseconds
            status = (await _verify(b, guard, "HCP1:x")).status_code
            if status != 200:
                break
            await asyncio.sleep(0.01)
        assert status == 401


@pytest.mark.anyio
async def test_a_pass_revocation_is_pushed_to_every_node(nodes: tuple[Client, Client]) -> None:
    a, b = nodes
    pass_ids = [bytes.fromhex("ab" * 16), bytes.fromhex("cd" * 16)]
    # Both nodes' listeners subscribe as their apps start; a message published
    # before that reaches nobody (the database reconciles real revocations).
    shared = shared_state(_svc(a).db)
    assert shared is not None
    for _ in range(500):
        ((_, listeners),) = _in_app(a, shared.client.pubsub_numsub, shared.channel)
        if listeners >= 2:
            break
        await asyncio.sleep(0.01)
    _in_app(a, publish_event, _svc(a).db, EVENT_PASS + ",".join(p.hex() for p in pass_ids))
    for _ in range(500):
        if pass_ids[-1] in _svc(b).passes._revoked:
            break
        await asyncio.sleep(0.01)
    assert set(pass_ids) <= _svc(b).passes._revoked


# --- Redis down and back --------------------------------------------------------------


@pytest.mark.anyio
async def test_redis_down_refuses_what_counts_once_and_recovers(
    nodes: tuple[Client, Client], redis: OwnRedis, caplog: pytest.LogCaptureFixture
) -> None:
    a, _ = nodes
    guard = _guard(a)
    device, subject, issued = await _pass(a)
    redis.stop()
    try:
        # Online verification: 503 with Retry-After, never an unchecked accept.
        down = await _verify(a, guard, device.present(issued))
        body = _problem(down, 503, "replay_check_unavailable")
        assert body["message_zh"] == "一次性使用校验暂不可用，请稍后重试。"
        assert down.headers["retry-after"] == "2"
        # A holder's signed request: likewise.
        header = {"authorization": sign_request(device.private_key, subject, "GET", "/me/status")}
        _problem(await a.get("/me/status", headers=header), 503, "replay_check_unavailable")
        # Rate limits fall back to this node's own count; probes still answer.
        assert (await a.get("/health/ready")).status_code == 200
        assert (await a.post("/guard/verifications", json={"presentation": "x"})).status_code == 401
        assert "Redis unreachable" in caplog.text
        # Counted where operators look for "try later" answers.
        metrics = a.app.state.metrics.render().decode()
        assert 'healthcode_refusals_total{code="replay_check_unavailable"} 2.0' in metrics
    finally:
        redis.start()
    # Back: served again, without a restart of the node.
    again = await _verify(a, guard, device.present(issued))
    assert again.status_code == 200 and again.json()["ok"] is True
    header = {"authorization": sign_request(device.private_key, subject, "GET", "/me/status")}
    assert (await a.get("/me/status", headers=header)).status_code == 200
    assert "Redis reachable again" in caplog.text


@pytest.mark.anyio
async def test_shared_state_use_once_and_outage(redis: OwnRedis) -> None:
    now = dt.datetime.now(dt.UTC)
    one, two = SharedState(redis.url), SharedState(redis.url)
    try:
        later = now + dt.timedelta(seconds=30)
        assert await one.use_once(b"\x01" * 32, expires_at=later, now=now)
        assert not await two.use_once(b"\x01" * 32, expires_at=later, now=now)
        assert await one.hit("addr:x", 1) == 0
        assert (await two.hit("addr:x", 1) or 0) >= 1
        redis.stop()
        with pytest.raises(ReplayCheckUnavailableError):
            await one.use_once(b"\x02" * 32, expires_at=later, now=now)
        assert await one.hit("addr:x", 1) is None
        assert not await one.publish("tokens")
    finally:
        redis.start()
        await one.close()
        await two.close()
