"""Hardening of who may call and what counts once (hardening issue, findings
3, 5, 6, 7 and the offline revocation notice).

* a holder's timestamp far outside the datetime range is a 401 ``stale_request``;
* a live code is accepted once online, across the workers of a node
  (``presentation_replayed``), and once per device offline (a seen-list);
* a holder's signature covers the query string, and a signed request is
  accepted once (``request_replayed``), whatever its signature's encoding;
* a revoked token is refused at once by the process that revoked it and
  within a second by every other worker;
* an offline verification without a revocation list says so, or refuses
  with ``--require-revocation-list``.

The API runs through litestar's AsyncTestClient, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
import sqlalchemy as sa
from litestar import Litestar
from litestar.testing import AsyncTestClient
from support.backends import Backend
from support.holders import insert_subject
from support.passes import NOW, Instance, at
from typer.testing import CliRunner

from healthcode.api.app import create_app
from healthcode.api.settings import Settings
from healthcode.cli.main import app as cli
from healthcode.core.auth import (
    StaleRequestError,
    authenticate_holder,
    create_token,
    revoke_token,
    sign_request,
)
from healthcode.core.models import Colour
from healthcode.core.passes import HolderDevice, KeyStore, build_revocation_list
from healthcode.core.privacy import document_key, subject_id_hex
from healthcode.core.replay import PURGE_GRACE, PURPOSE_PRESENTATION, purge_used, use_once
from healthcode.core.status import purge_expired
from healthcode.core.storage import tables
from healthcode.core.storage.database import Database

T = TypeVar("T")
runner = CliRunner()
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings(backend: Backend, tmp_path: Path) -> Settings:
    KeyStore(tmp_path / "keys").init("110000", "北京市")
    return Settings(
        database_url=backend.url,
        secrets_file=backend.secrets_file,
        keys_dir=tmp_path / "keys",
        trust_file=tmp_path / "trust.hct",
        run_purge=False,
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(create_app(settings)) as c:
        yield c


def _svc(client: AsyncTestClient[Litestar]) -> Any:
    return client.app.state.services


def _in_app(
    client: AsyncTestClient[Litestar], fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
) -> T:
    """Run ``fn`` on the app's event loop (the test client serves the app from
    its own loop, and asyncpg connections belong to one loop)."""
    return client.blocking_portal.call(functools.partial(fn, *args, **kwargs))


def _holder(client: AsyncTestClient[Litestar], device: HolderDevice) -> str:
    """A subject bound to ``device``, written straight into the database (the
    face work of enrollment is covered by tests/test_api_flows.py)."""
    svc = _svc(client)
    key = document_key(svc.secrets, "passport", "GBR", "Q7654321")
    _in_app(client, insert_subject, svc.db, key, device)
    return subject_id_hex(key)


def _token(client: AsyncTestClient[Litestar], label: str) -> str:
    token: str = _in_app(client, create_token, _svc(client).db, "guard", label)
    return token


async def _get(client: AsyncTestClient[Litestar], target: str, header: str) -> Any:
    return await client.get(target, headers={"authorization": header})


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["message_en"] and body["message_zh"]
    return body


# --- finding 3: a timestamp outside the datetime range ----------------------------------


@pytest.mark.anyio
async def test_a_timestamp_beyond_the_year_9999_is_stale_not_a_crash(
    client: AsyncTestClient[Litestar],
) -> None:
    device = HolderDevice.generate("EdDSA")
    subject = _holder(client, device)
    header = f"HC-Device subject={subject}, ts=999999999999999, sig={'A' * 86}"
    _problem(await _get(client, "/me/status", header), 401, "stale_request")
    # Before any signature check, and without a subject at all.
    with pytest.raises(StaleRequestError):
        _in_app(
            client,
            authenticate_holder,
            _svc(client).db,
            f"HC-Device subject={'0' * 64}, ts=999999999999999, sig={'A' * 86}",
            method="GET",
            path="/me/status",
            body=b"",
        )


# --- finding 6: the query string is signed, a signed request counts once ---------------


@pytest.mark.anyio
async def test_the_signature_covers_the_query_string(client: AsyncTestClient[Litestar]) -> None:
    device = HolderDevice.generate("ES256")
    subject = _holder(client, device)
    for_path = sign_request(device.private_key, subject, "GET", "/me/status")
    refused = await _get(client, "/me/status?foo=bar", for_path)
    _problem(refused, 401, "device_signature_invalid")
    for_target = sign_request(device.private_key, subject, "GET", "/me/status?foo=bar")
    assert (await _get(client, "/me/status?foo=bar", for_target)).status_code == 200


@pytest.mark.anyio
async def test_a_signed_request_is_accepted_once(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    device = HolderDevice.generate("ES256")
    subject = _holder(client, device)
    header = sign_request(device.private_key, subject, "GET", "/me/status")
    assert (await _get(client, "/me/status", header)).status_code == 200
    body = _problem(await _get(client, "/me/status", header), 401, "request_replayed")
    assert body["message_zh"] == "该签名请求已被使用过，每次请求须重新签名。"

    # The same signature rewritten (ECDSA's s -> n - s also verifies) is the
    # same signed request.
    fields = dict(part.strip().split("=", 1) for part in header[len("HC-Device ") :].split(","))
    raw = base64.urlsafe_b64decode(fields["sig"] + "=" * (-len(fields["sig"]) % 4))
    s = P256_ORDER - int.from_bytes(raw[32:], "big")
    rewritten = base64.urlsafe_b64encode(raw[:32] + s.to_bytes(32, "big")).rstrip(b"=").decode()
    malleated = header.replace(fields["sig"], rewritten)
    assert malleated != header
    _problem(await _get(client, "/me/status", malleated), 401, "request_replayed")

    # Another worker of the node shares the record.
    fresh = sign_request(device.private_key, subject, "GET", "/me/status")
    async with AsyncTestClient(create_app(settings)) as other:
        assert (await _get(client, "/me/status", fresh)).status_code == 200
        _problem(await _get(other, "/me/status", fresh), 401, "request_replayed")


# --- finding 5: a live code counts once -------------------------------------------------


async def _guard_and_code(client: AsyncTestClient[Litestar]) -> tuple[dict[str, str], str]:
    device = HolderDevice.generate("ES256")
    subject = _holder(client, device)
    signed = sign_request(device.private_key, subject, "POST", "/me/passes")
    issued = await client.post("/me/passes", headers={"authorization": signed})
    assert issued.status_code == 201, issued.text
    guard = {"authorization": f"Bearer {_token(client, 'gate 3')}"}
    return guard, device.present(issued.json()["text"])


@pytest.mark.anyio
async def test_a_live_code_is_accepted_once_on_any_worker(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    guard, code = await _guard_and_code(client)
    first = await client.post("/guard/verifications", json={"presentation": code}, headers=guard)
    assert (first.json()["ok"], first.json()["colour"]) == (True, "green")
    again = (
        await client.post("/guard/verifications", json={"presentation": code}, headers=guard)
    ).json()
    assert (again["ok"], again["code"]) == (False, "presentation_replayed")
    assert (again["message_zh"], again["message_en"]) == (
        "此动态码已被使用。",
        "This live code was already used.",
    )
    assert again["colour"] is None and again["masked_name"] is None
    # Relayed to a screen served by another worker: refused there too.
    async with AsyncTestClient(create_app(settings)) as other:
        relayed = await other.post(
            "/guard/verifications", json={"presentation": code}, headers=guard
        )
        assert (relayed.json()["ok"], relayed.json()["code"]) == (False, "presentation_replayed")


@pytest.mark.anyio
async def test_racing_workers_accept_a_live_code_exactly_once(backend: Backend) -> None:
    workers = [Database(backend.url) for _ in range(4)]
    expires = NOW + dt.timedelta(seconds=40)
    try:
        results = await asyncio.gather(
            *(
                use_once(db, PURPOSE_PRESENTATION, b"the same code", expires_at=expires, now=NOW)
                for db in workers
            )
        )
        assert sorted(results) == [False, False, False, True]
        # Kept until it has expired (with a grace for workers' clocks), then purged.
        assert await purge_used(workers[0], now=expires + PURGE_GRACE) == 0
        assert (
            await purge_used(workers[0], now=expires + PURGE_GRACE + dt.timedelta(seconds=1)) == 1
        )
        # The one purge (CLI, API, nightly task) takes them too.
        await use_once(workers[0], PURPOSE_PRESENTATION, b"another", expires_at=expires, now=NOW)
        later = expires + PURGE_GRACE + dt.timedelta(seconds=1)
        assert (await purge_expired(workers[0], now=later)).deleted["used_signatures"] == 1
        async with workers[0].begin() as conn:
            count = sa.select(sa.func.count()).select_from(tables.used_signatures)
            assert (await conn.execute(count)).scalar_one() == 0
    finally:
        for db in workers:
            await db.dispose()


def _region(tmp_path: Path) -> tuple[Instance, list[str]]:
    bj = Instance.create(tmp_path, "110000", "北京市")
    options = ["--keys-dir", str(bj.keys.path), "--trust-file", str(bj.trust_store.path)]
    return bj, options


def _verify(*args: str) -> tuple[int, dict[str, Any], str]:
    result = runner.invoke(cli, ["verify", *args])
    last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "{}"
    return result.exit_code, json.loads(last) if last.startswith("{") else {}, result.stderr


def test_offline_verify_accepts_a_live_code_once_per_device(tmp_path: Path) -> None:
    bj, options = _region(tmp_path)
    device = HolderDevice.generate("EdDSA")
    code = device.present(bj.issue(device).text, at(1))
    seen = ["--seen-file", str(tmp_path / "gate3.json")]
    when = ["--now", at(5).isoformat()]
    exit_code, first, _ = _verify(code, *options, *seen, *when, "--json")
    assert (exit_code, first["ok"]) == (0, True)
    exit_code, again, _ = _verify(code, *options, *seen, *when, "--json")
    assert (exit_code, again["ok"], again["code"]) == (1, False, "presentation_replayed")
    exit_code, _, stderr = _verify(code, *options, *seen, *when)
    assert exit_code == 1
    assert "presentation_replayed" in stderr and "此动态码已被使用" in stderr
    # The file holds digests only, and forgets a code once it has expired.
    stored = (tmp_path / "gate3.json").read_text()
    assert code[5:40] not in stored
    later = ["--now", at(120).isoformat()]
    fresh = device.present(bj.issue(device).text, at(116))
    assert _verify(fresh, *options, *seen, *later, "--json")[0] == 0
    assert len(json.loads((tmp_path / "gate3.json").read_text())["seen"]) == 1


# --- finding 7: a revoked token stops at once ------------------------------------------


class Monotonic:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _scan(client: AsyncTestClient[Litestar], token: str) -> int:
    response = await client.post(
        "/guard/verifications",
        json={"presentation": "HCP1:x"},
        headers={"authorization": f"Bearer {token}"},
    )
    return response.status_code


@pytest.mark.anyio
async def test_a_token_revoked_by_this_process_is_refused_at_once(
    client: AsyncTestClient[Litestar],
) -> None:
    svc = _svc(client)
    svc.tokens.clock = Monotonic()
    token = _token(client, "gate 3")
    assert await _scan(client, token) == 200
    assert _in_app(client, revoke_token, svc.db, token.split("_")[2].split(".")[0])
    assert await _scan(client, token) == 401


@pytest.mark.anyio
async def test_a_token_revoked_from_the_cli_is_refused_within_a_second(
    client: AsyncTestClient[Litestar], backend: Backend
) -> None:
    svc = _svc(client)
    clock = Monotonic()
    svc.tokens.clock = clock
    token = _token(client, "gate 3")
    other = _token(client, "gate 4")
    assert await _scan(client, token) == 200
    assert await _scan(client, other) == 200
    token_id = token.split("_")[2].split(".")[0]

    def revoke() -> Any:
        common = ["--database", backend.url, "--secrets-file", str(backend.secrets_file)]
        return runner.invoke(cli, ["tokens", "revoke", token_id, *common, "--json"])

    revoked = await anyio.to_thread.run_sync(revoke)  # another process, another Database
    assert revoked.exit_code == 0, revoked.output
    clock.now += 0.5  # not yet re-read: the cache may still answer for half a second
    assert await _scan(client, token) == 200
    clock.now += 0.5
    response = await client.post(
        "/guard/verifications",
        json={"presentation": "HCP1:x"},
        headers={"authorization": f"Bearer {token}"},
    )
    _problem(response, 401, "invalid_token")
    assert await _scan(client, other) == 200


# --- offline verification without a revocation list -------------------------------------


def test_offline_verify_says_when_revocations_were_not_checked(tmp_path: Path) -> None:
    bj, options = _region(tmp_path)
    device = HolderDevice.generate("ES256")
    issued = bj.issue(device, Colour.GREEN)
    key = bj.keys.active()
    revocations = tmp_path / "110000.hcr"
    revocations.write_text(
        build_revocation_list(key, [(key.kid, issued.claims.pass_id)], NOW), encoding="ascii"
    )
    when = ["--now", at(5).isoformat(), "--no-seen-list"]

    # No list: accepted, but the answer says revocations were not checked.
    code = device.present(issued.text, at(1))
    exit_code, verdict, _ = _verify(code, *options, *when, "--json")
    assert (exit_code, verdict["ok"]) == (0, True)
    notice = {n["code"]: n for n in verdict["notices"]}["revocations_not_checked"]
    assert notice["message_zh"].startswith("未核查撤销情况")
    assert notice["message_en"].startswith("Revocations were not checked")
    exit_code, _, stderr = _verify(code, *options, *when)
    assert exit_code == 0
    assert "revocations_not_checked" in stderr and "未核查撤销情况" in stderr

    # Required: a refusal with a stable code, in both outputs.
    exit_code, verdict, _ = _verify(code, *options, *when, "--require-revocation-list", "--json")
    assert (exit_code, verdict["ok"], verdict["code"]) == (1, False, "revocation_list_missing")
    exit_code, _, stderr = _verify(code, *options, *when, "--require-revocation-list")
    assert exit_code == 1 and "revocation_list_missing" in stderr

    # With the list: the revoked pass is refused, and nothing is left unchecked.
    listed = ["--revocation-list", str(revocations), "--require-revocation-list"]
    exit_code, verdict, _ = _verify(code, *options, *when, *listed, "--json")
    assert (exit_code, verdict["code"]) == (1, "revoked")
    other = bj.issue(device)
    exit_code, verdict, _ = _verify(
        device.present(other.text, at(1)), *options, *when, *listed, "--json"
    )
    assert (exit_code, verdict["ok"]) == (0, True)
    assert "revocations_not_checked" not in {n["code"] for n in verdict["notices"]}
