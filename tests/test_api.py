"""The HTTP API through litestar's AsyncTestClient: problem details, limits,
overload behaviour and the document endpoints."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from healthcode.api.app import create_app
from healthcode.api.overload import InFlight, LoadShedder, RateLimiter
from healthcode.api.settings import Settings
from healthcode.core.passes import KeyStore
from healthcode.core.storage.database import init_instance

TD3 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    url = f"sqlite:///{tmp_path / 'hc.db'}"
    secrets = tmp_path / "secrets.json"
    asyncio.run(init_instance(url, secrets))
    keys_dir = tmp_path / "keys"
    KeyStore(keys_dir).init("110000", "北京市")
    return Settings(
        database_url=url,
        secrets_file=secrets,
        keys_dir=keys_dir,
        trust_file=tmp_path / "trust.hct",
    )


async def _client(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async for c in _client(settings):
        yield c


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["message_en"] and body["message_zh"]
    return body  # type: ignore[no-any-return]


@pytest.mark.anyio
async def test_health_and_readiness(client: AsyncTestClient[Litestar]) -> None:
    assert (await client.get("/health/live")).json()["status"] == "ok"
    ready = await client.get("/health/ready")
    assert ready.json() == {"status": "ready", "backend": "sqlite"}


@pytest.mark.anyio
async def test_check_a_resident_id(client: AsyncTestClient[Litestar]) -> None:
    response = await client.post("/documents/check", json={"number": "11010519491231002X"})
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is True
    assert body["kind"] == "cn_resident_id"
    assert body["masked_number"] == "11**************2X"
    assert "11010519491231002X" not in response.text


@pytest.mark.anyio
async def test_check_an_mrz_reports_expiry_without_failing(
    client: AsyncTestClient[Litestar],
) -> None:
    body = (await client.post("/documents/check", json={"mrz": TD3})).json()
    assert body["valid"] is True
    assert body["masked_name"] == "ERIKSSON"
    assert {"document_expired", "specimen_document"} <= {p["code"] for p in body["problems"]}


@pytest.mark.anyio
async def test_wrong_check_digit_is_a_200_with_problems(client: AsyncTestClient[Litestar]) -> None:
    body = (await client.post("/documents/check", json={"number": "110105194912310021"})).json()
    assert body["valid"] is False
    assert "check_digit_mismatch" in {p["code"] for p in body["problems"]}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"number": "ABC"}, "unknown_document_kind"),
        ({"number": ""}, "empty_input"),
        ({}, "empty_input"),
        ({"number": "1" * 1000}, "input_too_long"),
        ({"number": "１１０１０５!"}, "invalid_characters"),
        ({"kind": "nope", "number": "123"}, "unknown_document_kind"),
        ({"mrz": "P<UTO\nL898"}, "malformed_mrz"),
    ],
)
async def test_unreadable_input_is_a_coded_problem(
    client: AsyncTestClient[Litestar], payload: dict[str, str], code: str
) -> None:
    assert_problem(await client.post("/documents/check", json=payload), 422, code)


@pytest.mark.anyio
async def test_malformed_requests_are_400_problems(client: AsyncTestClient[Litestar]) -> None:
    assert_problem(
        await client.post("/documents/check", json={"numbr": "1"}), 400, "invalid_request"
    )
    assert_problem(
        await client.post(
            "/documents/check", content=b"{not json", headers={"content-type": "application/json"}
        ),
        400,
        "bad_request",
    )
    assert_problem(await client.get("/no/such/path"), 404, "not_found")


@pytest.mark.anyio
async def test_body_size_is_capped(settings: Settings, tmp_path: Path) -> None:
    small = attrs.evolve(settings, max_body_bytes=256)
    async for client in _client(small):
        response = await client.post("/documents/check", json={"mrz": "<" * 2000})
        assert_problem(response, 413, "request_too_large")


@pytest.mark.anyio
async def test_rate_limit_answers_429_with_retry_after(settings: Settings) -> None:
    limited = attrs.evolve(settings, rate_limit_per_minute=3)
    async for client in _client(limited):
        statuses = []
        for _ in range(5):
            response = await client.get("/documents/kinds")
            statuses.append(response.status_code)
        assert statuses == [200, 200, 200, 429, 429]
        body = assert_problem(response, 429, "too_many_requests")
        assert int(response.headers["retry-after"]) >= 1
        assert body["message_zh"] == "请求过于频繁，请稍后再试。"
        # Probes are never rate-limited.
        assert (await client.get("/health/live")).status_code == 200


@pytest.mark.anyio
async def test_database_unavailable_is_503_with_retry_after(
    client: AsyncTestClient[Litestar],
) -> None:
    from healthcode.core.storage.database import Database

    app = client.app
    working = app.state.db
    # Nothing listens on port 1: every connection attempt fails at once.
    app.state.db = Database("postgresql://postgres@127.0.0.1:1/healthcode")
    try:
        response = await client.get("/health/ready")
    finally:
        await app.state.db.dispose()
        app.state.db = working
    assert_problem(response, 503, "database_unavailable")
    assert response.headers["retry-after"]


@pytest.mark.anyio
async def test_load_shedder_answers_503_past_its_bound() -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    async def slow_app(scope: Any, receive: Any, send: Any) -> None:
        entered.set()
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    counter = InFlight()
    shedder = LoadShedder(slow_app, limit=1, retry_after=3, exempt=("/health",), counter=counter)
    # Another route's instance shares the count (Litestar builds one per route).
    other_route = LoadShedder(
        slow_app, limit=1, retry_after=3, exempt=("/health",), counter=counter
    )
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "path": "/documents/check"}
    first = asyncio.create_task(shedder(scope, receive, send))  # type: ignore[arg-type]
    await entered.wait()
    await other_route(scope, receive, send)  # type: ignore[arg-type]
    start = sent[0]
    assert start["status"] == 503
    assert (b"retry-after", b"3") in start["headers"]
    assert json.loads(sent[1]["body"])["code"] == "service_busy"
    release.set()
    await first
    assert sent[-2]["status"] == 200
    assert shedder.in_flight == 0


@pytest.mark.anyio
async def test_openapi_document_lists_problem_responses(client: AsyncTestClient[Litestar]) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    assert schema["openapi"].startswith("3.1")
    check = schema["paths"]["/documents/check"]["post"]
    assert check["operationId"] == "checkDocument"
    assert {"200", "400", "422", "429", "503"} <= set(check["responses"])
    assert (await client.get("/schema")).status_code == 200


@pytest.mark.anyio
async def test_rate_limit_window_resets_and_is_per_client() -> None:
    now = [1000.0]

    async def ok_app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    limiter = RateLimiter(ok_app, per_minute=2, exempt=("/health",), clock=lambda: now[0])
    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def call(address: str, path: str = "/documents/kinds") -> None:
        scope = {"type": "http", "path": path, "client": (address, 1234)}
        await limiter(scope, None, send)  # type: ignore[arg-type]

    for _ in range(3):
        await call("client-a")
    await call("client-b")
    await call("client-a", "/health/live")
    assert statuses == [200, 200, 429, 200, 200]
    now[0] += 61
    await call("client-a")
    assert statuses[-1] == 200


@pytest.mark.anyio
async def test_options_lists_every_method_of_a_path(client: AsyncTestClient[Litestar]) -> None:
    # GET and POST /admin/trust are two handlers on one path.
    response = await client.options("/admin/trust")
    assert response.status_code == 204
    assert response.headers["allow"] == "GET, OPTIONS, POST"
