"""``healthcode doctor``: a healthy instance passes every check; each failure
that can be provoked here is reported with its fix, and fails the command.

Everything is real: an instance made by ``healthcode init`` and ``keys init``
in a temporary directory (SQLite, and PostgreSQL where one answers), the face
models fetched at set-up, the tesseract binary, the Redis server at
127.0.0.1:6379 when one runs. The full command runs through CliRunner; the
single checks are called directly where a failure needs only that check.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from support.backends import Backend
from support.faces import require_face_models
from typer.testing import CliRunner

from healthcode.cli.doctor import (
    REDIS_URL_ENV,
    Check,
    check_face_models,
    check_keys,
    check_redis,
    check_tesseract,
    check_trust,
    database_checks,
)
from healthcode.cli.main import app as cli
from healthcode.core.passes import KeyStore, TrustStore
from healthcode.core.privacy import create_secrets
from healthcode.core.storage.database import Database, head_revision, write_audit

HAS_TESSERACT = shutil.which("tesseract") is not None


@pytest.fixture
def instance(backend: Backend, tmp_path: Path) -> dict[str, str]:
    """An initialised instance: database, secrets, issuer keys and trust list."""
    keys = KeyStore(tmp_path / "keys")
    keys.init("110000", "北京市")
    TrustStore(tmp_path / "trust.hct", keys).load()
    return {
        "--database": backend.url,
        "--secrets-file": str(backend.secrets_file),
        "--keys-dir": str(tmp_path / "keys"),
        "--trust-file": str(tmp_path / "trust.hct"),
    }


def doctor(options: dict[str, str], *extra: str) -> Any:
    args = [item for pair in options.items() for item in pair]
    return CliRunner().invoke(cli, ["doctor", *args, *extra])


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def stored(backend: Backend, secrets_file: Path | None = None) -> dict[str, Check]:
    return by_name(asyncio.run(database_checks(backend.url, secrets_file)))


def redis_running() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


# --- the whole command --------------------------------------------------------------------


@pytest.mark.skipif(not HAS_TESSERACT, reason="tesseract not installed")
def test_a_healthy_instance_passes_every_check(
    instance: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    require_face_models()
    monkeypatch.delenv(REDIS_URL_ENV, raising=False)
    result = doctor(instance, "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["ok"] is True
    states = {c["name"]: c["state"] for c in payload["checks"]}
    assert states == {
        "face models": "ok",
        "tesseract": "ok",
        "database": "ok",
        "secrets": "ok",
        "issuer keys": "ok",
        "trust list": "ok",
        "redis": "ok",
        "clock": "ok",
    }
    human = doctor(instance)
    assert human.exit_code == 0
    assert len(human.stdout.splitlines()) == 9  # one line per check, then the summary
    assert "all checks passed" in human.stdout
    assert f"schema at {head_revision()} (newest)" in human.stdout
    assert "+08:00" in human.stdout


def test_a_broken_instance_fails_with_a_fix_per_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEALTHCODE_MODEL_DIR", str(tmp_path / "no-models"))
    monkeypatch.setenv("HEALTHCODE_TESSERACT", str(tmp_path / "no-tesseract"))
    monkeypatch.setenv(REDIS_URL_ENV, "redis://127.0.0.1:1/0")
    options = {
        "--database": f"sqlite:///{tmp_path / 'nothing-here.db'}",
        "--secrets-file": str(tmp_path / "secrets.json"),
        "--keys-dir": str(tmp_path / "keys"),
        "--trust-file": str(tmp_path / "trust.hct"),
    }
    result = doctor(options, "--json")
    assert result.exit_code == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    failed = {name for name, c in checks.items() if c["state"] == "fail"}
    assert failed == {"face models", "tesseract", "database", "issuer keys", "redis"}
    assert checks["face models"]["fix"] == "healthcode models fetch"
    assert checks["tesseract"]["fix"].startswith("apt-get install tesseract-ocr")
    assert checks["database"]["fix"] == "healthcode init"
    assert checks["issuer keys"]["fix"].startswith("healthcode keys init")
    assert checks["redis"]["fix"].startswith("start Redis")
    assert checks["clock"]["state"] == "ok"
    # Nothing was created on the way.
    assert sorted(p.name for p in tmp_path.iterdir()) == []

    human = doctor(options)
    assert human.exit_code == 1
    lines = human.stdout.splitlines()
    assert sum(line.startswith("FAIL") for line in lines) == 5
    # A fix under each failure and each warning (secrets and trust list: not checked).
    assert sum("fix / 修复:" in line for line in lines) == 7
    assert lines[-1].startswith("5 failed, 2 warning(s)")


# --- one check at a time ----------------------------------------------------------------


def test_models_missing_or_with_a_wrong_sha256(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEALTHCODE_MODEL_DIR", str(tmp_path))
    (tmp_path / "face_landmarker.task").write_bytes(b"not the model")
    check = check_face_models()
    assert check.state == "fail"
    assert "sha256 wrong: face_landmarker.task" in check.detail
    assert "missing: face_recognition_sface_2021dec.onnx" in check.detail
    assert check.fix == "healthcode models fetch --force"


def test_tesseract_missing_or_without_its_language_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEALTHCODE_TESSERACT", "no-such-tesseract")
    missing = check_tesseract()
    assert missing.state == "fail" and "no-such-tesseract not found" in missing.detail
    if shutil.which("tesseract") is None:
        return
    monkeypatch.delenv("HEALTHCODE_TESSERACT")
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))
    bare = check_tesseract()
    assert bare.state == "fail" and "no 'eng' language data" in bare.detail
    assert bare.fix is not None and "tesseract-ocr-eng" in bare.fix


def test_database_unreachable_or_with_a_bad_url() -> None:
    async def checks(url: str) -> dict[str, Check]:
        return by_name(await database_checks(url, None))

    unreachable = asyncio.run(checks("postgresql://nobody@127.0.0.1:1/healthcode"))["database"]
    assert unreachable.state == "fail" and "unreachable" in unreachable.detail
    assert unreachable.fix is not None and "HEALTHCODE_DATABASE_URL" in unreachable.fix
    bad = asyncio.run(checks("mysql://somewhere/db"))["database"]
    assert bad.state == "fail" and "mysql" in bad.detail


def test_database_behind_the_migrations(bare_backend: Backend) -> None:
    async def record_revision(revision: str | None) -> None:
        # What an instance not migrated since ``revision`` records of itself
        # (put back after: the PostgreSQL database serves the whole module).
        db = Database(bare_backend.url)
        try:
            if revision == "0005":
                await db.migrate()
            async with db.begin() as conn:
                update = "UPDATE alembic_version SET version_num = :revision"
                await conn.execute(sa.text(update), {"revision": revision})
        finally:
            await db.dispose()

    asyncio.run(record_revision("0005"))
    try:
        check = stored(bare_backend)["database"]
    finally:
        asyncio.run(record_revision(head_revision()))
    assert check.state == "fail"
    assert f"schema at 0005; this healthcode needs {head_revision()}" in check.detail
    assert check.fix is not None and check.fix.startswith("healthcode init")


def test_database_not_initialised(bare_backend: Backend) -> None:
    # PostgreSQL: migrated then emptied (no secrets bound yet); SQLite: no tables.
    checks = stored(bare_backend, bare_backend.secrets_file)
    failed = checks["database"] if checks["database"].state == "fail" else checks["secrets"]
    assert failed.state == "fail" and failed.fix is not None
    assert failed.fix.startswith("healthcode init")


def test_secrets_missing_or_of_another_database(backend: Backend, tmp_path: Path) -> None:
    missing = stored(backend, tmp_path / "gone.json")["secrets"]
    assert missing.state == "fail" and "[secrets_missing]" in missing.detail
    assert missing.fix is not None and "restore" in missing.fix
    other = tmp_path / "other.json"
    create_secrets(other)
    mismatch = stored(backend, other)["secrets"]
    assert mismatch.state == "fail" and "[secrets_mismatch]" in mismatch.detail
    assert mismatch.fix is not None and "--secrets-file" in mismatch.fix
    assert stored(backend, backend.secrets_file)["secrets"].state == "ok"


def test_keys_and_trust_list(tmp_path: Path, clock: Any) -> None:
    keys_dir, trust_file = tmp_path / "keys", tmp_path / "trust.hct"
    assert check_keys(keys_dir).state == "fail"
    assert check_trust(keys_dir, trust_file).state == "warning"
    keys = KeyStore(keys_dir)
    keys.init("110000", "北京市")
    assert check_keys(keys_dir).detail.startswith("region 110000, signing key ")
    absent = check_trust(keys_dir, trust_file)
    assert absent.state == "warning" and absent.fix == "healthcode trust list (makes it now)"
    assert not trust_file.exists()

    TrustStore(trust_file, keys).load()
    assert check_trust(keys_dir, trust_file).state == "ok"
    clock.shift(dt.timedelta(days=8))
    stale = check_trust(keys_dir, trust_file)
    assert stale.state == "warning" and "stale after 7" in stale.detail

    trust_file.write_text("HCT1:not-a-trust-list", encoding="ascii")
    damaged = check_trust(keys_dir, trust_file)
    assert damaged.state == "fail" and damaged.fix is not None
    assert "healthcode trust add" in damaged.fix

    (keys_dir / "issuer.json").write_text("{", encoding="utf-8")
    broken = check_keys(keys_dir)
    assert broken.state == "fail" and broken.detail.endswith("[key_store_error]")
    assert broken.fix is not None and "restore" in broken.fix


def test_redis_by_a_plain_ping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REDIS_URL_ENV, raising=False)
    assert check_redis().state == "ok"
    monkeypatch.setenv(REDIS_URL_ENV, "redis://127.0.0.1:1/0")
    down = check_redis()
    assert down.state == "fail" and "127.0.0.1:1 unreachable" in down.detail
    monkeypatch.setenv(REDIS_URL_ENV, "http://127.0.0.1:6379")
    assert "use redis://" in check_redis().detail
    if not redis_running():
        return
    monkeypatch.setenv(REDIS_URL_ENV, "redis://127.0.0.1:6379/0")
    assert check_redis().detail == "127.0.0.1:6379 answers PING"
    monkeypatch.setenv(REDIS_URL_ENV, "redis://:secret-password@127.0.0.1:6379/0")
    refused = check_redis()
    assert refused.state == "fail" and "secret-password" not in refused.detail


def test_a_clock_before_the_newest_stored_time_fails(backend: Backend, clock: Any) -> None:
    async def audit_now() -> None:
        db = Database(backend.url)
        try:
            async with db.begin() as conn:
                await write_audit(conn, "test", {})
        finally:
            await db.dispose()

    asyncio.run(audit_now())
    assert stored(backend, backend.secrets_file)["clock"].state == "ok"
    clock.shift(-dt.timedelta(hours=1))
    behind = stored(backend, backend.secrets_file)["clock"]
    assert behind.state == "fail"
    assert "before the newest stored time (audit_log.at, 2026-11-26 10:00" in behind.detail
    assert behind.fix is not None and "timedatectl" in behind.fix
