"""The holder's command-line client against the real service (uvicorn on
loopback): signed status and pass requests, a live presentation, and a guard's
verification of it. The subject is written straight into the database (the
face work of enrollment is covered by tests/test_api_flows.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import httpx
from support.backends import LiveServer
from typer.testing import CliRunner

from healthcode.cli.main import app
from healthcode.core.auth import create_token
from healthcode.core.passes import HolderDevice
from healthcode.core.privacy import document_key, subject_id_hex
from healthcode.core.storage import tables
from healthcode.core.storage.database import open_database

runner = CliRunner()


def _subject_and_guard(server: LiveServer, device: HolderDevice, number: str) -> tuple[str, str]:
    """A subject bound to ``device`` (passport ``number``) and a guard token."""

    async def go() -> tuple[str, str]:
        db, secrets = await open_database(server.database_url, server.home / "secrets.json")
        try:
            key = document_key(secrets, "passport", "GBR", number)
            now = dt.datetime.now(dt.UTC)
            async with db.begin() as conn:
                await conn.execute(
                    tables.subjects.insert().values(
                        subject_key=key,
                        kind="passport",
                        masked_name="QUARTERMAINE",
                        masked_number=number[:2] + "****" + number[-2:],
                        device_public_key=device.public_key_der,
                        created_at=now,
                        updated_at=now,
                    )
                )
            return subject_id_hex(key), await create_token(db, "guard", "gate 1")
        finally:
            await db.dispose()

    return asyncio.run(go())


def test_holder_status_pass_and_a_verified_presentation(
    live_server: LiveServer, tmp_path: Path
) -> None:
    device = HolderDevice.generate("ES256")
    key_file = tmp_path / "phone.key"
    device.save(key_file)
    subject, guard = _subject_and_guard(live_server, device, "Q7654321")
    common = ["--server", live_server.url, "--key", str(key_file), "--subject", subject]

    status = runner.invoke(app, ["holder", "status", *common, "--json"])
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["label_en"] == "nothing abnormal"

    pass_file = tmp_path / "pass.txt"
    issued = runner.invoke(app, ["holder", "pass", *common, "--out", str(pass_file)])
    assert issued.exit_code == 0, issued.output
    shown = runner.invoke(
        app, ["passes", "present", "-", "--device-key", str(key_file)], input=pass_file.read_text()
    )
    assert shown.exit_code == 0, shown.output
    presentation = shown.stdout.strip()
    assert presentation.startswith("HCP1:")

    verdict = httpx.post(
        f"{live_server.url}/guard/verifications",
        json={"presentation": presentation},
        headers={"authorization": f"Bearer {guard}"},
        timeout=30,
    ).json()
    assert (verdict["ok"], verdict["colour"], verdict["masked_number"]) == (
        True,
        "green",
        "Q7****21",
    ), verdict


def test_a_stranger_device_is_refused(live_server: LiveServer, tmp_path: Path) -> None:
    owner = HolderDevice.generate("EdDSA")
    subject, _ = _subject_and_guard(live_server, owner, "Q1111111")
    stranger = tmp_path / "stranger.key"
    HolderDevice.generate("ES256").save(stranger)
    result = runner.invoke(
        app,
        [
            "holder",
            "status",
            "--server",
            live_server.url,
            "--key",
            str(stranger),
            "--subject",
            subject,
        ],
    )
    assert result.exit_code == 1
    # Said once, on stderr; nothing on stdout.
    assert result.stderr.count("device_signature_invalid") == 1
    assert result.stdout == ""
