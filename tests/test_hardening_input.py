"""Hostile or careless input and concurrent operators (hardening issue, findings
2, 4, 8, 9, 10 and 11): deeply nested JSON bodies, JSON Lines rows the parser
chokes on, the import day, private SQLite files, concurrent imports of one
list, and the one purge shared by the CLI, the API and the nightly task.

Storage tests run on SQLite and PostgreSQL (the ``backend`` fixture). No test
depends on the real date: the core takes ``now``; the API's clock is the
``now_utc`` the admin controller calls, patched here; the CLI takes ``--now``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa
import typer
from litestar import Litestar
from litestar.testing import AsyncTestClient
from support.backends import Backend
from typer.testing import CliRunner

import healthcode.api.controllers.admin as admin_controller
from healthcode.api.app import create_app
from healthcode.api.settings import Settings
from healthcode.cli.admin import purge_command, status_app
from healthcode.core.auth import create_token
from healthcode.core.clock import SHANGHAI
from healthcode.core.passes import KeyStore
from healthcode.core.plugins import new_plugin_manager
from healthcode.core.privacy import SECRETS_ENV, load_secrets
from healthcode.core.status import (
    ImportDayError,
    ImportDayOutOfRangeError,
    ImportInProgressError,
    ImportSummary,
    import_lock_name,
    import_status_rows,
    parse_import_day,
)
from healthcode.core.storage import tables
from healthcode.core.storage.database import (
    DATABASE_URL_ENV,
    Database,
    init_instance,
    open_database,
)
from healthcode.core.storage.errors import ImportFormatError
from healthcode.testing.resident_id import random_resident_id

KIND = "cn_resident_id"
# 12:00 on 30 November in Shanghai: yesterday is the 29th, tomorrow 1 December.
NOW = dt.datetime(2026, 11, 30, 12, tzinfo=SHANGHAI).astimezone(dt.UTC)
TODAY = dt.date(2026, 11, 30)
DEEP = 100_000
HUGE_NUMBER = "1" * 5_000


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def numbers() -> list[str]:
    rng = random.Random(20261130)
    return [random_resident_id(rng) for _ in range(300)]


def settings_for(backend: Backend, tmp_path: Path) -> Settings:
    keys_dir = tmp_path / "keys"
    KeyStore(keys_dir).init("110000", "北京市")
    return Settings(
        database_url=backend.url,
        secrets_file=backend.secrets_file,
        keys_dir=keys_dir,
        trust_file=tmp_path / "trust.hct",
        run_purge=False,
    )


@pytest.fixture
async def client(backend: Backend, tmp_path: Path) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(create_app(settings_for(backend, tmp_path))) as client:
        yield client


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    url = f"sqlite:///{tmp_path / 'hc.db'}"
    asyncio.run(init_instance(url, tmp_path / "secrets.json"))
    return settings_for(Backend("sqlite", url, tmp_path / "secrets.json"), tmp_path)


@pytest.fixture
async def sqlite_client(sqlite_settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(create_app(sqlite_settings)) as client:
        yield client


@pytest.fixture
async def db(backend: Backend) -> AsyncIterator[Database]:
    """The client's database, opened on the test's own event loop (the app
    runs on another): like a second worker or the CLI."""
    database = Database(backend.url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def sqlite_db(sqlite_settings: Settings) -> AsyncIterator[Database]:
    database = Database(sqlite_settings.database_url)
    try:
        yield database
    finally:
        await database.dispose()


async def admin_headers(db: Database) -> dict[str, str]:
    return {"authorization": f"Bearer {await create_token(db, 'admin', 'operator')}"}


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert (body["status"], body["code"]) == (status, code)
    assert body["message_en"] and body["message_zh"]
    return body  # type: ignore[no-any-return]


def csv_text(rows: list[tuple[str, str]]) -> str:
    return "kind,number,status\n" + "".join(f"{KIND},{n},{s}\n" for n, s in rows)


async def import_csv(
    db: Database, backend: Backend, text: str, **kwargs: Any
) -> ImportSummary | BaseException:
    return await import_status_rows(
        db,
        load_secrets(backend.secrets_file),
        text.splitlines(keepends=True),
        day=kwargs.pop("day", TODAY),
        fmt="csv",
        pm=new_plugin_manager(autoload=False),
        **kwargs,
    )


async def count_entries(db: Database, source: str = "authority") -> int:
    entries = tables.status_entries
    async with db.begin() as conn:
        found = await conn.scalar(
            sa.select(sa.func.count()).select_from(entries).where(entries.c.source == source)
        )
    return int(found or 0)


# --- finding 2: deeply nested JSON bodies -----------------------------------------------------


def test_msgspec_raises_recursion_error_on_deep_nesting() -> None:
    # The reason for JSONSafeRequest: msgspec has no depth limit of its own
    # and untyped decoding (what litestar does first) recurses until Python's.
    with pytest.raises(RecursionError):
        msgspec.json.decode(b"[" * DEEP)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "path",
    [
        "/documents/check",
        "/enrollments/challenges",
        "/guard/verifications",
        "/guard/assisted-checks",
        "/admin/trust",
        "/admin/keys/rotations",
    ],
)
@pytest.mark.parametrize(
    "body",
    [b"[" * DEEP, b"[" * DEEP + b"]" * DEEP, b'{"number": ' + b"[" * DEEP + b"]" * DEEP + b"}"],
    ids=["open", "closed", "in-a-field"],
)
async def test_deeply_nested_json_is_a_400_problem(
    sqlite_client: AsyncTestClient[Litestar], path: str, body: bytes
) -> None:
    response = await sqlite_client.post(
        path, content=body, headers={"content-type": "application/json"}
    )
    # The same answer as any other JSON body that cannot be decoded.
    assert_problem(response, 400, "bad_request")
    # The worker is fine afterwards.
    ok = await sqlite_client.post("/documents/check", json={"number": "11010519491231002X"})
    assert ok.status_code == 200


# --- finding 4: JSON Lines rows that make the parser fail --------------------------------------


def hostile_jsonl(number: str) -> str:
    good = json.dumps({"kind": KIND, "number": number, "status": "red"})
    return "\n".join(
        [
            good,  # 1
            f'{{"kind": "{KIND}", "number": {HUGE_NUMBER}, "status": "red"}}',  # 2
            f'{{"kind": "{KIND}", "number": "{number}", "status": {HUGE_NUMBER}}}',  # 3
            f'{{"kind": "{KIND}", "number": ' + "[" * DEEP + "]" * DEEP + "}",  # 4
            "[" * DEEP,  # 5
            f'{{"kind": "{KIND}", "number": {{"nested": ["{number}"]}}, "status": "red"}}',  # 6
            f'{{"kind": {{"a": 1}}, "number": "{number}", "status": "red"}}',  # 7
            "1" * 5_000,  # 8
        ]
    )


def assert_hostile_rows_reported(invalid_rows: list[dict[str, Any]]) -> None:
    by_line = {row["line"]: row["code"] for row in invalid_rows}
    assert sorted(by_line) == [2, 3, 4, 5, 6, 7, 8]
    for line in (2, 3, 4, 5, 8):
        assert by_line[line] == "import_invalid_json"
    assert by_line[7] == "import_unknown_kind"
    assert by_line[6] != "import_invalid_json"  # parsed; the number is not a string


def test_jsonl_rows_past_the_parser_are_reported_by_line(
    backend: Backend, numbers: list[str]
) -> None:
    async def go() -> ImportSummary:
        db, secrets = await open_database(backend.url, backend.secrets_file)
        try:
            return await import_status_rows(
                db,
                secrets,
                hostile_jsonl(numbers[0]).splitlines(keepends=True),
                day=TODAY,
                fmt="jsonl",
                pm=new_plugin_manager(autoload=False),
            )
        finally:
            await db.dispose()

    summary = asyncio.run(go())
    assert (summary.rows_read, summary.rows_imported, summary.entries) == (8, 1, 1)
    assert_hostile_rows_reported([row.as_dict() for row in summary.invalid_rows])


@pytest.mark.anyio
async def test_jsonl_rows_past_the_parser_are_reported_through_the_api(
    client: AsyncTestClient[Litestar],
    db: Database,
    numbers: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(admin_controller, "now_utc", lambda: NOW)
    response = await client.post(
        "/admin/status-imports",
        data={"day": TODAY.isoformat()},
        files=[("file", ("list.jsonl", hostile_jsonl(numbers[0]).encode(), "text/plain"))],
        headers=await admin_headers(db),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["imported"], body["invalid"]) == (1, 7)
    assert_hostile_rows_reported(body["invalid_rows"])


# --- finding 8: the import day --------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "20261201",
        "2026-W49-2",
        "2026W492",
        "2026-335",
        "2026-12-01T00:00",
        "2026-12-1",
        "２０２６-１２-０１",
        "2026-02-30",
        "",
        "yesterday",
    ],
)
def test_import_day_must_be_yyyy_mm_dd(value: str) -> None:
    with pytest.raises(ImportDayError) as raised:
        parse_import_day(value, now=NOW)
    assert raised.value.code == "import_day_invalid"
    # Allowing any day does not allow any spelling.
    with pytest.raises(ImportDayError):
        parse_import_day(value, now=NOW, allow_any_day=True)


@pytest.mark.parametrize("value", ["9999-12-31", "1900-01-01", "2026-11-28", "2026-12-02"])
def test_import_day_is_yesterday_today_or_tomorrow(value: str) -> None:
    with pytest.raises(ImportDayOutOfRangeError) as raised:
        parse_import_day(value, now=NOW)
    error = raised.value
    assert error.code == "import_day_out_of_range"
    assert error.details["earliest"] == "2026-11-29" and error.details["latest"] == "2026-12-01"
    assert "allow_any_day" in error.message_en and "--any-day" in error.message_zh
    assert parse_import_day(value, now=NOW, allow_any_day=True) == dt.date.fromisoformat(value)


def test_import_day_window_follows_shanghai_not_utc() -> None:
    for value in ("2026-11-29", "2026-11-30", "2026-12-01", " 2026-12-01\n"):
        assert parse_import_day(value, now=NOW) == dt.date.fromisoformat(value.strip())
    # 16:30 UTC on the 30th is 00:30 on 1 December in Shanghai.
    late = dt.datetime(2026, 11, 30, 16, 30, tzinfo=dt.UTC)
    assert parse_import_day("2026-12-02", now=late) == dt.date(2026, 12, 2)
    with pytest.raises(ImportDayOutOfRangeError):
        parse_import_day("2026-11-29", now=late)


@pytest.mark.anyio
async def test_api_import_day_rule_and_explicit_any_day(
    sqlite_client: AsyncTestClient[Litestar], sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admin_controller, "now_utc", lambda: NOW)
    headers = await admin_headers(sqlite_db)
    listing = csv_text([]).encode()

    async def post(**fields: str) -> Any:
        return await sqlite_client.post(
            "/admin/status-imports",
            data=fields,
            files=[("file", ("list.csv", listing, "text/csv"))],
            headers=headers,
        )

    for bad in ("20261201", "2026-W49-2"):
        assert_problem(await post(day=bad), 422, "import_day_invalid")
    for far in ("9999-12-31", "1900-01-01", "2026-12-02"):
        body = assert_problem(await post(day=far), 422, "import_day_out_of_range")
        assert body["details"]["latest"] == "2026-12-01"
    assert (await post(day="2026-12-01")).status_code == 201
    assert (await post(day="2026-11-29")).status_code == 201
    allowed = await post(day="1900-01-01", allow_any_day="true")
    assert allowed.status_code == 201, allowed.text
    assert allowed.json()["day"] == "1900-01-01"
    assert_problem(await post(day="19000101", allow_any_day="true"), 422, "import_day_invalid")


def cli(backend: Backend, args: list[str]) -> Any:
    app = typer.Typer()
    app.command("purge")(purge_command)
    app.add_typer(status_app, name="status")
    env = {DATABASE_URL_ENV: backend.url, SECRETS_ENV: str(backend.secrets_file)}
    return CliRunner().invoke(app, args, env=env)


def test_cli_import_day_rule_and_any_day(backend: Backend, tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text(csv_text([]), encoding="utf-8")
    base = ["status", "import", str(path), "--now", NOW.isoformat(), "--json"]

    far = cli(backend, [*base, "--day", "2026-12-05"])
    assert far.exit_code == 2, far.output
    assert json.loads(far.stdout)["error"]["code"] == "import_day_out_of_range"
    assert "import_day_out_of_range" in far.stderr and "北京时间" in far.stderr
    bad = cli(backend, [*base, "--day", "20261201", "--any-day"])
    assert bad.exit_code == 2
    assert json.loads(bad.stdout)["error"]["code"] == "import_day_invalid"
    near = cli(backend, [*base, "--day", "2026-12-01"])
    assert near.exit_code == 0, near.output
    anyday = cli(backend, [*base, "--day", "2026-12-05", "--any-day"])
    assert anyday.exit_code == 0, anyday.output
    assert json.loads(anyday.stdout)["day"] == "2026-12-05"


# --- finding 9: the SQLite files are private -----------------------------------------------


@pytest.fixture
def loose_umask() -> Iterator[None]:
    previous = os.umask(0o022)  # the usual default, which gives 0644 files
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("loose_umask")
def test_sqlite_database_wal_and_directories_are_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "healthcode" / "hc.db"
    url = f"sqlite:///{path}"
    asyncio.run(init_instance(url, tmp_path / "secrets.json"))
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700 and mode(path.parent.parent) == 0o700

    async def write_and_look() -> dict[str, int]:
        db = Database(url)
        try:
            async with db.begin() as conn:
                await conn.execute(tables.operator_meta.insert().values(name="probe", value="1"))
            # The WAL and its index exist while a connection is open.
            async with db.begin_exclusive("probe") as conn:
                await conn.execute(sa.select(1))
                return {p.name: mode(p) for p in path.parent.iterdir()}
        finally:
            await db.dispose()

    seen = asyncio.run(write_and_look())
    assert {"hc.db", "hc.db-wal", "hc.db-shm", "hc.db-lock-probe"} <= set(seen)
    assert set(seen.values()) == {0o600}, seen


@pytest.mark.usefixtures("loose_umask")
def test_an_existing_readable_database_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "hc.db"
    url = f"sqlite:///{path}"
    asyncio.run(init_instance(url, tmp_path / "secrets.json"))
    path.chmod(0o644)
    wal = path.with_name("hc.db-wal")
    wal.write_bytes(b"")
    wal.chmod(0o644)
    asyncio.run(Database(url).dispose())
    assert mode(path) == 0o600 and mode(wal) == 0o600


# --- finding 10: concurrent imports of one list ------------------------------------------


def test_concurrent_imports_of_one_list_never_lose_one_silently(
    backend: Backend, numbers: list[str]
) -> None:
    first = csv_text([(n, "red") for n in numbers[:200]])
    second = csv_text([(n, "yellow") for n in numbers[200:210]])

    async def go() -> tuple[list[ImportSummary | BaseException], int]:
        db = Database(backend.url)
        try:
            started = asyncio.Event()

            async def one() -> ImportSummary | BaseException:
                # Small batches: many awaits while the lock is held.
                return await import_csv(
                    db, backend, first, batch_size=5, progress=lambda _rows: started.set()
                )

            async def two() -> ImportSummary | BaseException:
                await started.wait()  # the first is mid-way through its list
                return await import_csv(db, backend, second)

            results = await asyncio.gather(one(), two(), return_exceptions=True)
            return list(results), await count_entries(db)
        finally:
            await db.dispose()

    (done, refused), entries = asyncio.run(go())
    assert isinstance(done, ImportSummary), done
    assert isinstance(refused, ImportInProgressError), refused
    assert refused.code == "import_in_progress"
    assert refused.details == {"source": "authority", "day": TODAY.isoformat()}
    # The first list is whole; the second was refused, not silently dropped.
    assert done.entries == entries == 200

    async def after() -> tuple[ImportSummary | BaseException, int]:
        db = Database(backend.url)
        try:
            # A failed import lets go of the lock as well.
            with pytest.raises(ImportFormatError):
                await import_csv(db, backend, "no,header\n1,2\n")
            summary = await import_csv(db, backend, second)
            return summary, await count_entries(db)
        finally:
            await db.dispose()

    summary, entries = asyncio.run(after())
    assert isinstance(summary, ImportSummary) and summary.entries == entries == 10


def test_imports_of_other_sources_or_days_run_side_by_side(
    backend: Backend, numbers: list[str]
) -> None:
    listing = csv_text([(n, "red") for n in numbers[:50]])

    async def go() -> list[ImportSummary | BaseException]:
        db = Database(backend.url)
        try:
            started = asyncio.Event()

            async def one() -> ImportSummary | BaseException:
                return await import_csv(
                    db, backend, listing, batch_size=5, progress=lambda _rows: started.set()
                )

            async def other(**kwargs: Any) -> ImportSummary | BaseException:
                await started.wait()
                return await import_csv(db, backend, listing, **kwargs)

            return list(
                await asyncio.gather(
                    one(),
                    other(source="peer-list"),
                    other(day=TODAY + dt.timedelta(days=1)),
                    return_exceptions=True,
                )
            )
        finally:
            await db.dispose()

    results = asyncio.run(go())
    assert all(isinstance(r, ImportSummary) and r.entries == 50 for r in results), results


def test_an_import_in_another_process_is_refused_while_one_runs(
    backend: Backend, tmp_path: Path, numbers: list[str]
) -> None:
    path = tmp_path / "list.csv"
    path.write_text(csv_text([(numbers[0], "red")]), encoding="utf-8")
    env = os.environ | {DATABASE_URL_ENV: backend.url, SECRETS_ENV: str(backend.secrets_file)}
    command = [
        sys.executable,
        "-m",
        "healthcode.cli.main",
        "status",
        "import",
        str(path),
        "--day",
        TODAY.isoformat(),
        "--any-day",
        "--json",
    ]

    async def go() -> subprocess.CompletedProcess[str]:
        db = Database(backend.url)
        try:
            # This process is in the middle of importing the same list.
            async with db.begin_exclusive(import_lock_name("authority", TODAY)):
                return await asyncio.to_thread(
                    subprocess.run, command, env=env, capture_output=True, text=True, timeout=120
                )
        finally:
            await db.dispose()

    refused = asyncio.run(go())
    assert refused.returncode == 1, refused.stderr
    assert json.loads(refused.stdout)["error"]["code"] == "import_in_progress"
    assert "Traceback" not in refused.stderr


@pytest.mark.anyio
async def test_api_import_while_one_runs_is_409(
    client: AsyncTestClient[Litestar],
    db: Database,
    numbers: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(admin_controller, "now_utc", lambda: NOW)
    headers = await admin_headers(db)
    listing = csv_text([(numbers[0], "red")]).encode()

    async def post() -> Any:
        return await client.post(
            "/admin/status-imports",
            data={"day": TODAY.isoformat()},
            files=[("file", ("list.csv", listing, "text/csv"))],
            headers=headers,
        )

    # Another worker (this test's own engine) is importing the same list.
    async with db.begin_exclusive(import_lock_name("authority", TODAY)):
        assert_problem(await post(), 409, "import_in_progress")
    assert await count_entries(db) == 0
    assert (await post()).status_code == 201
    assert await count_entries(db) == 1


# --- finding 11: one purge ----------------------------------------------------------------


async def seed_passes(db: Database, now: dt.datetime = NOW) -> None:
    """Two passes that expired before ``now`` (one revoked) and one still valid."""
    expired = now - dt.timedelta(days=1)
    async with db.begin() as conn:
        for pass_id, valid_until in ((b"\x01", expired), (b"\x02", expired), (b"\x03", now)):
            await conn.execute(
                tables.passes.insert().values(
                    pass_id=pass_id * 16,
                    subject_key=pass_id * 32,
                    issuer_kid=b"k" * 8,
                    colour="green",
                    severity=0,
                    issued_at=valid_until - dt.timedelta(hours=8),
                    valid_until=valid_until + dt.timedelta(hours=12),
                )
            )
        await conn.execute(
            tables.revocations.insert().values(
                pass_id=b"\x02" * 16,
                issuer_kid=b"k" * 8,
                reason="status_worsened",
                revoked_at=expired,
                valid_until=expired + dt.timedelta(hours=12),
            )
        )


async def pass_ids(db: Database) -> tuple[set[bytes], set[bytes]]:
    async with db.begin() as conn:
        passes = {bytes(r[0]) for r in await conn.execute(sa.select(tables.passes.c.pass_id))}
        revoked = {bytes(r[0]) for r in await conn.execute(sa.select(tables.revocations.c.pass_id))}
    return passes, revoked


def run_with_db(backend: Backend, action: Any) -> Any:
    async def go() -> Any:
        db = Database(backend.url)
        try:
            return await action(db)
        finally:
            await db.dispose()

    return asyncio.run(go())


def test_cli_purge_deletes_expired_passes_and_revocations(backend: Backend) -> None:
    run_with_db(backend, seed_passes)
    result = cli(backend, ["purge", "--now", NOW.isoformat(), "--json"])
    assert result.exit_code == 0, result.output
    deleted = json.loads(result.stdout)["deleted"]
    assert (deleted["passes"], deleted["revocations"]) == (2, 1)
    assert run_with_db(backend, pass_ids) == ({b"\x03" * 16}, set())


@pytest.mark.anyio
async def test_api_purge_is_the_same_purge(client: AsyncTestClient[Litestar], db: Database) -> None:
    # The server purges as of its own clock: passes around that moment.
    await seed_passes(db, dt.datetime.now(dt.UTC))
    response = await client.post("/admin/purge", headers=await admin_headers(db))
    assert response.status_code == 200, response.text
    deleted = response.json()["deleted"]
    assert set(deleted) >= {"status_entries", "passes", "revocations", "liveness_challenges"}
    assert (deleted["passes"], deleted["revocations"]) == (2, 1)
    assert await pass_ids(db) == ({b"\x03" * 16}, set())
