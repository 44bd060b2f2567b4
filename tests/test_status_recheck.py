"""Asking every status source again with no list imported (``healthcode
status recheck``, ``POST /admin/status-rechecks``): for a status source plugin
that reads data of its own. Until a recheck, a holder's own look-up reuses the
decision its worker made and a green pass stays valid; after it, the look-up
and the guard both see the new status."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from support.audit import audit_rows
from support.data import TODAY
from support.holders import insert_subject
from support.instances import sqlite_instance
from typer.testing import CliRunner

import healthcode.plugins.authority_status as authority_status
from healthcode.api.app import create_app
from healthcode.api.settings import Settings
from healthcode.cli.main import app as cli
from healthcode.core.auth import create_token, sign_request
from healthcode.core.hookspecs import hookimpl
from healthcode.core.models import Colour, StatusContribution, Subject
from healthcode.core.passes import HolderDevice
from healthcode.core.plugins import new_plugin_manager
from healthcode.core.privacy import document_key, subject_id_hex
from healthcode.core.status.importing import import_status_rows
from healthcode.core.storage.database import open_database

NUMBER = "Q7654321"


class OwnList:
    """A status source with data of its own: subjects it has marked red."""

    def __init__(self) -> None:
        self.red: set[str] = set()

    @hookimpl
    def healthcode_resolve_status(self, subject: Subject) -> StatusContribution | None:
        if subject.subject_id in self.red:
            return StatusContribution("own_list", Colour.RED, "on the plugin's own list")
        return None


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def own_list() -> OwnList:
    return OwnList()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return sqlite_instance(tmp_path)


@pytest.fixture
async def client(settings: Settings, own_list: OwnList) -> AsyncIterator[AsyncTestClient[Litestar]]:
    pm = new_plugin_manager(autoload=False)
    pm.register(own_list, name="own_list")
    async with AsyncTestClient(create_app(settings, plugin_manager=pm)) as c:
        yield c


def _svc(client: AsyncTestClient[Litestar]) -> Any:
    return client.app.state.services


async def _holder_with_pass(client: AsyncTestClient[Litestar]) -> tuple[HolderDevice, str, str]:
    svc = _svc(client)
    device = HolderDevice.generate("ES256")
    key = document_key(svc.secrets, "passport", "GBR", NUMBER)
    await insert_subject(svc.db, key, device)
    subject = subject_id_hex(key)
    issued = await client.post(
        "/me/passes",
        headers={"authorization": sign_request(device.private_key, subject, "POST", "/me/passes")},
    )
    assert issued.status_code == 201, issued.text
    return device, subject, issued.json()["text"]


async def _own_status(client: AsyncTestClient[Litestar], device: HolderDevice, subject: str) -> str:
    header = sign_request(device.private_key, subject, "GET", "/me/status")
    response = await client.get("/me/status", headers={"authorization": header})
    assert response.status_code == 200, response.text
    return str(response.json()["colour"])


@pytest.mark.anyio
async def test_a_recheck_shows_the_sources_own_change_and_revokes_the_pass(
    client: AsyncTestClient[Litestar], own_list: OwnList
) -> None:
    svc = _svc(client)
    device, subject, pass_text = await _holder_with_pass(client)
    assert await _own_status(client, device, subject) == "green"

    own_list.red.add(subject)
    # Nothing told core: the worker's decision of this morning still stands.
    assert await _own_status(client, device, subject) == "green"

    admin = await create_token(svc.db, "admin", "operator")
    guard = await create_token(svc.db, "guard", "gate 3")
    refused = await client.post(
        "/admin/status-rechecks", headers={"authorization": f"Bearer {guard}"}
    )
    assert refused.status_code == 403, refused.text
    rechecked = await client.post(
        "/admin/status-rechecks", headers={"authorization": f"Bearer {admin}"}
    )
    assert rechecked.status_code == 200, rechecked.text
    assert rechecked.json() == {"passes_checked": 1, "passes_revoked": 1}

    assert await _own_status(client, device, subject) == "red"
    verdict = await client.post(
        "/guard/verifications",
        json={"presentation": device.present(pass_text)},
        headers={"authorization": f"Bearer {guard}"},
    )
    assert verdict.status_code == 200, verdict.text
    assert (verdict.json()["ok"], verdict.json()["code"]) == (False, "revoked")
    audit = [dict(r.details) for r in await audit_rows(svc.db, "api_status_recheck")]
    assert len(audit) == 1
    assert (audit[0]["passes_checked"], audit[0]["passes_revoked"]) == (1, 1)
    assert NUMBER not in json.dumps(audit)


@pytest.mark.anyio
async def test_a_recheck_with_nothing_changed_revokes_nothing(
    client: AsyncTestClient[Litestar],
) -> None:
    svc = _svc(client)
    device, subject, _ = await _holder_with_pass(client)
    admin = await create_token(svc.db, "admin", "operator")
    rechecked = await client.post(
        "/admin/status-rechecks", headers={"authorization": f"Bearer {admin}"}
    )
    assert rechecked.json() == {"passes_checked": 1, "passes_revoked": 0}
    assert await _own_status(client, device, subject) == "green"


def test_status_recheck_from_the_cli(settings: Settings) -> None:
    """Data changed under a source without the import service (here, rows
    written by the bare import function, which revokes nothing): the CLI's
    recheck revokes the pass issued green."""
    import asyncio

    from healthcode.core.passes import KeyStore
    from healthcode.core.passes.service import PassService

    pm = new_plugin_manager(autoload=False)
    assert pm.is_registered(authority_status)

    async def issue_then_list() -> None:
        db, secrets = await open_database(settings.database_url, settings.secrets_file)
        try:
            device = HolderDevice.generate("ES256")
            key = document_key(secrets, "passport", "GBR", NUMBER)
            await insert_subject(db, key, device)
            await PassService(db, KeyStore(settings.keys_dir), pm=pm).issue(subject_id_hex(key))
            listing = f"kind,number,issuing_state,status\npassport,{NUMBER},GBR,red\n"
            await import_status_rows(db, secrets, io.StringIO(listing), day=TODAY, fmt="csv", pm=pm)
        finally:
            await db.dispose()

    asyncio.run(issue_then_list())
    args = [
        "status",
        "recheck",
        "--database",
        str(settings.database_url),
        "--secrets-file",
        str(settings.secrets_file),
        "--keys-dir",
        str(settings.keys_dir),
    ]
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"ok": True, "passes_checked": 1, "passes_revoked": 1}
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert "0 revoked" in again.stdout and "已吊销" in again.stdout
