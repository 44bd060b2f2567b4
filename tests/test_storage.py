"""Storage, migrations, operator secrets and privacy crypto, on SQLite and PostgreSQL.

PostgreSQL tests use a fresh database on 127.0.0.1:5432 (or
``HEALTHCODE_TEST_POSTGRES_URL``); they are skipped when no server answers,
except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
import typer
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.pool import QueuePool
from support.backends import Backend
from typer.testing import CliRunner

from healthcode.cli.admin import init_command, status_app
from healthcode.core.privacy import (
    SECRETS_ENV,
    canonical_document_key,
    create_secrets,
    decrypt_template,
    document_key,
    encrypt_template,
    generate_secrets,
    load_secrets,
    secrets_path,
    subject_id_hex,
    subject_key_bytes,
)
from healthcode.core.storage import tables
from healthcode.core.storage.database import (
    DATABASE_URL_ENV,
    Database,
    database_url,
    ensure_day_partitions,
    head_revision,
    init_instance,
    open_database,
)
from healthcode.core.storage.errors import (
    DatabasePoolSettingError,
    DatabaseUnavailableError,
    DatabaseURLError,
    SchemaOutdatedError,
    SecretsInsecureError,
    SecretsInvalidError,
    SecretsMismatchError,
    SecretsMissingError,
    TemplateDecryptionError,
)


@pytest.fixture
def backend(bare_backend: Backend) -> Backend:
    """Storage tests start from an empty database: they test `init` itself."""
    return bare_backend


# --- URLs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("sqlite:////var/lib/hc.db", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///hc.db", "sqlite+aiosqlite"),
        ("postgresql://u@db/hc", "postgresql+asyncpg"),
        ("postgres://u@db/hc", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u@db/hc", "postgresql+asyncpg"),
    ],
)
def test_plain_urls_get_an_async_driver(given: str, driver: str) -> None:
    assert database_url(given).drivername == driver


def test_sslmode_is_translated_for_asyncpg() -> None:
    url = database_url("postgresql://u@db/hc?sslmode=require")
    assert dict(url.query) == {"ssl": "require"}


def test_unsupported_url_is_refused() -> None:
    with pytest.raises(DatabaseURLError) as info:
        database_url("mysql://u@db/hc")
    assert info.value.code == "database_url_invalid"


def test_url_from_environment_and_embedded_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATABASE_URL_ENV, "postgresql://u@db/hc")
    assert database_url().drivername == "postgresql+asyncpg"
    monkeypatch.delenv(DATABASE_URL_ENV)
    default = database_url()
    assert default.drivername == "sqlite+aiosqlite"
    assert default.database is not None and default.database.endswith("healthcode.db")


def test_password_is_not_shown() -> None:
    db = Database("postgresql://user:hunter2@127.0.0.1:1/hc")
    assert "hunter2" not in repr(db)


# --- migrations and init ---------------------------------------------------------------


def test_migrations_create_exactly_the_declared_schema(backend: Backend) -> None:
    async def go() -> list[object]:
        db = Database(backend.url)
        try:
            assert await db.migrate() == head_revision()
            await db.check_schema()
            async with db.begin() as conn:
                return await conn.run_sync(
                    lambda c: compare_metadata(
                        MigrationContext.configure(
                            c,
                            opts={
                                "compare_type": True,
                                # PostgreSQL's day partitions are no tables of their own.
                                "include_name": lambda name, kind, _parent: (
                                    not (kind == "table" and tables.is_partition_name(name))
                                ),
                            },
                        ),
                        tables.metadata,
                    )
                )
        finally:
            await db.dispose()

    assert asyncio.run(go()) == []


def test_init_is_idempotent_and_binds_the_secrets(backend: Backend) -> None:
    first = asyncio.run(init_instance(backend.url, backend.secrets_file))
    assert first.secrets_created
    assert stat.S_IMODE(backend.secrets_file.stat().st_mode) == 0o600
    second = asyncio.run(init_instance(backend.url, backend.secrets_file))
    assert not second.secrets_created
    assert second.fingerprint == first.fingerprint

    async def opened() -> None:
        db, secrets = await open_database(backend.url, backend.secrets_file)
        await db.dispose()
        assert secrets.fingerprint == first.fingerprint

    asyncio.run(opened())

    # Another operator's secrets file must not open this database.
    other = backend.secrets_file.with_name("other.json")
    create_secrets(other)
    with pytest.raises(SecretsMismatchError):
        asyncio.run(open_database(backend.url, other))
    # A database bound to a secrets file never silently gets a new one.
    backend.secrets_file.unlink()
    with pytest.raises(SecretsMissingError):
        asyncio.run(init_instance(backend.url, backend.secrets_file))
    assert not backend.secrets_file.exists()


def test_uninitialised_database_is_reported() -> None:
    async def go() -> None:
        db = Database("sqlite:///:memory:")
        try:
            with pytest.raises(SchemaOutdatedError):
                await db.check_schema()
            with pytest.raises(SchemaOutdatedError):
                async with db.begin() as conn:
                    await conn.execute(sa.select(tables.status_entries))
        finally:
            await db.dispose()

    asyncio.run(go())


def test_datetimes_come_back_aware_utc(backend: Backend) -> None:
    asyncio.run(init_instance(backend.url, backend.secrets_file))
    at = dt.datetime(2026, 11, 26, 23, 59, 59, 999000, tzinfo=dt.timezone(dt.timedelta(hours=8)))

    async def go() -> dt.datetime:
        db = Database(backend.url)
        try:
            async with db.begin() as conn:
                await conn.execute(
                    tables.audit_log.insert().values(at=at, action="test", details={})
                )
                row = await conn.execute(
                    sa.select(tables.audit_log.c.at).where(tables.audit_log.c.action == "test")
                )
                value: dt.datetime = row.scalar_one()
                return value
        finally:
            await db.dispose()

    got = asyncio.run(go())
    assert got == at and got.utcoffset() == dt.timedelta(0)


def test_the_database_itself_limits_dependants_to_four(backend: Backend) -> None:
    asyncio.run(init_instance(backend.url, backend.secrets_file))
    now = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
    keys = [bytes([i]) * 32 for i in range(7)]

    async def go() -> None:
        db = Database(backend.url)
        try:
            async with db.begin() as conn:
                await conn.execute(
                    tables.subjects.insert(),
                    [
                        {
                            "subject_key": k,
                            "kind": "cn_resident_id",
                            "masked_name": "张",
                            "masked_number": "11**************2X",
                            "created_at": now,
                            "updated_at": now,
                        }
                        for k in keys
                    ],
                )
                await conn.execute(
                    tables.dependants.insert(),
                    [
                        {
                            "holder_key": keys[0],
                            "dependant_key": keys[s],
                            "slot": s,
                            "created_at": now,
                        }
                        for s in range(1, 5)
                    ],
                )
            for slot, dependant in ((5, keys[5]), (4, keys[5]), (1, keys[0])):
                with pytest.raises(sa.exc.IntegrityError):
                    async with db.begin() as conn:
                        await conn.execute(
                            tables.dependants.insert().values(
                                holder_key=keys[0],
                                dependant_key=dependant,
                                slot=slot,
                                created_at=now,
                            )
                        )
        finally:
            await db.dispose()

    asyncio.run(go())


# --- unavailable database -----------------------------------------------------------------


def test_unreachable_postgres_is_a_clear_error() -> None:
    async def go() -> None:
        db = Database("postgresql://postgres@127.0.0.1:1/hc")
        try:
            await db.current_revision()
        finally:
            await db.dispose()

    with pytest.raises(DatabaseUnavailableError) as info:
        asyncio.run(go())
    assert info.value.code == "database_unavailable"
    assert info.value.message_zh


def test_unwritable_sqlite_path_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DatabaseUnavailableError):
        asyncio.run(init_instance(f"sqlite:///{blocker / 'sub' / 'hc.db'}", tmp_path / "s.json"))
    # and a directory where the database file should be
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(DatabaseUnavailableError):
        asyncio.run(init_instance(f"sqlite:///{tmp_path / 'dir.db'}", tmp_path / "s.json"))


def test_cli_reports_an_unavailable_database_with_its_code(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command("init")(init_command)
    app.add_typer(status_app, name="status")
    result = CliRunner().invoke(
        app,
        ["init", "--database", "postgresql://postgres@127.0.0.1:1/hc", "--json"],
        env={SECRETS_ENV: str(tmp_path / "s.json")},
    )
    assert result.exit_code != 0
    payload = json.loads(result.stdout)
    assert payload["error"]["code"] == "database_unavailable"
    assert not (tmp_path / "s.json").exists()


# --- secrets ----------------------------------------------------------------------------


def test_secrets_file_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(SECRETS_ENV, str(tmp_path / "x" / "s.json"))
    assert secrets_path() == tmp_path / "x" / "s.json"
    secrets, created = create_secrets()
    assert created and load_secrets() == secrets
    assert "subject_hmac_key=" not in repr(secrets)


def test_secrets_refused_when_others_can_read_them(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    create_secrets(path)
    path.chmod(0o644)
    with pytest.raises(SecretsInsecureError):
        load_secrets(path)


@pytest.mark.parametrize(
    "content",
    [b"", b"not json", b"{}", b'{"format": "healthcode-secrets", "version": 1}'],
)
def test_damaged_secrets_are_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "s.json"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(SecretsInvalidError):
        load_secrets(path)


def test_missing_secrets(tmp_path: Path) -> None:
    with pytest.raises(SecretsMissingError) as info:
        load_secrets(tmp_path / "none.json")
    assert info.value.code == "secrets_missing"


# --- privacy crypto ----------------------------------------------------------------------


def test_document_key_depends_on_every_part_and_on_the_secret() -> None:
    a, b = generate_secrets(), generate_secrets()
    base = document_key(a, "passport", "D", "C01X00T47")
    assert len(base) == 32
    assert base == document_key(a, "passport", "d", "C01X00T47")
    others = {
        document_key(a, "passport", "DEU", "C01X00T47"),
        document_key(a, "hk_mo_home_return_permit", "D", "C01X00T47"),
        document_key(a, "passport", "D", "C01X00T48"),
        document_key(b, "passport", "D", "C01X00T47"),
    }
    assert base not in others and len(others) == 4
    # The separator keeps ("AB", "C") and ("A", "BC") apart.
    assert canonical_document_key("k", "AB", "C") != canonical_document_key("k", "A", "BC")
    assert subject_key_bytes(subject_id_hex(base)) == base
    with pytest.raises(ValueError):
        subject_key_bytes("abcd")


def test_templates_are_sealed_to_their_subject() -> None:
    secrets = generate_secrets()
    template = bytes(range(256)) * 2
    key_a, key_b = b"a" * 32, b"b" * 32
    blob = encrypt_template(secrets, template, subject_key=key_a)
    assert template not in blob
    assert encrypt_template(secrets, template, subject_key=key_a) != blob  # fresh nonce
    assert decrypt_template(secrets, blob, subject_key=key_a) == template
    with pytest.raises(TemplateDecryptionError):
        decrypt_template(secrets, blob, subject_key=key_b)
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    with pytest.raises(TemplateDecryptionError):
        decrypt_template(secrets, bytes(tampered), subject_key=key_a)
    with pytest.raises(TemplateDecryptionError):
        decrypt_template(generate_secrets(), blob, subject_key=key_a)


def test_the_schema_check_is_quiet_and_knows_the_revision(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    """The readiness check runs ``check_schema`` on every call: it reads the
    revision without Alembic's two log lines per call."""

    async def go() -> str | None:
        await init_instance(backend.url, backend.secrets_file)
        db = Database(backend.url)
        caplog.clear()  # init itself runs the migrations, which do log
        try:
            await db.check_schema()
            return await db.current_revision()
        finally:
            await db.dispose()

    caplog.set_level("INFO", logger="alembic")
    assert asyncio.run(go()) == head_revision()
    assert not [r for r in caplog.records if r.name.startswith("alembic")]


def test_an_empty_database_has_no_revision(tmp_path: Path) -> None:
    async def go() -> str | None:
        db = Database(f"sqlite:///{tmp_path / 'empty.db'}")
        try:
            return await db.current_revision()
        finally:
            await db.dispose()

    assert asyncio.run(go()) is None


def test_the_postgresql_pool_is_sized_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "postgresql://healthcode@127.0.0.1/healthcode"
    monkeypatch.setenv("HEALTHCODE_DB_POOL_SIZE", "3")
    monkeypatch.setenv("HEALTHCODE_DB_MAX_OVERFLOW", "0")
    pool = Database(url).engine.sync_engine.pool
    assert isinstance(pool, QueuePool)
    assert (pool.size(), pool.overflow()) == (3, -3)  # nothing checked out yet
    for bad in ("many", "-1", "1001"):
        monkeypatch.setenv("HEALTHCODE_DB_POOL_SIZE", bad)
        with pytest.raises(DatabasePoolSettingError):
            Database(url)


def test_day_partitions_are_nothing_on_sqlite(tmp_path: Path) -> None:
    """Migration 0008 (the peers' lists partitioned by day) and making a day's
    partitions do nothing on SQLite: rows and schema stay as they were."""
    day = dt.date(2026, 11, 26)
    row = {
        "day": day,
        "peer_region": "120000",
        "pair_hash": b"h" * 16,
        "colour": "red",
        "severity": 2,
        "imported_at": dt.datetime(2026, 11, 26, 2, tzinfo=dt.UTC),
    }
    entries = tables.peer_status_entries

    async def go() -> None:
        db = Database(f"sqlite:///{tmp_path / 'hc.db'}")
        try:
            assert await db.migrate("0007") == "0007"
            async with db.begin() as conn:
                await conn.execute(entries.insert().values(**row))
            assert await db.migrate() == head_revision()
            assert await ensure_day_partitions(db, day, (entries,)) == []
            assert await db.downgrade("0007") == "0007"
            assert await db.migrate() == head_revision()
            async with db.begin() as conn:
                stored = (await conn.execute(sa.select(entries))).mappings().all()
                names = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
            assert [dict(r) for r in stored] == [row]
            assert not [n for n in names if n.startswith(f"{entries.name}_")]
        finally:
            await db.dispose()

    asyncio.run(go())
