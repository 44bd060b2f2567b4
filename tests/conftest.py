"""Shared fixtures, and the test tiers. Third-party plugins installed on the
machine are kept out of the test session: only the built-ins (and throwaway
test plugins) load.

The test tiers (markers ``face``, ``ocr``, ``postgres``, ``slow``) are set here
at collection, by the rules in ``support/tiers.py``, so that test modules need
not carry them. ``pytest -m "not slow"`` is the fast tier; plain ``pytest``
runs all.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pluggy
import pytest
import time_machine
import typer.main
import typer.testing

os.environ["HEALTHCODE_DISABLE_PLUGIN_AUTOLOAD"] = "1"

from support.backends import Backend, LiveServer
from support.data import CLOCK_START, TODAY
from support.processes import start_clocked_server, wait_ready
from support.tiers import tiers

from healthcode.core.passes import KeyStore
from healthcode.core.plugins import get_plugin_manager, new_plugin_manager
from healthcode.core.storage.database import Database, init_instance
from healthcode.core.storage.testing import (
    PostgresUnavailable,
    close_session_postgres,
    open_session_postgres,
    truncate_all,
)

# typer's CliRunner builds the whole click command tree of an app at every
# invoke (about 0.1 s for ``healthcode``'s); a built tree is reused as the
# installed console script would, once per app object.
typer.testing._get_command = functools.cache(typer.main.get_command)  # type: ignore[attr-defined]


@pytest.fixture
def pm() -> pluggy.PluginManager:
    """A fresh manager with the built-in plugins only."""
    return new_plugin_manager(autoload=False)


@pytest.fixture(autouse=True)
def _fresh_global_manager() -> None:
    # Tests that register throwaway plugins on the cached manager must not
    # leak them into other tests.
    get_plugin_manager.cache_clear()


@pytest.fixture(autouse=True)
def _own_seen_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `healthcode verify` remembers accepted live codes; never in the user's state dir.
    monkeypatch.setenv("HEALTHCODE_SEEN_FILE", str(tmp_path / "seen-live-codes.json"))


@pytest.fixture
def today() -> dt.date:
    return TODAY


@pytest.fixture(autouse=True)
def _controlled_clock(request: pytest.FixtureRequest) -> Iterator[time_machine.Coordinates | None]:
    """Every test runs on a clock it controls, never on the date or hour the
    suite happens to run at: wall-clock time (``datetime.now``, ``time.time``)
    starts at ``CLOCK_START`` and ticks. Monotonic clocks are left alone.

    Tests against the live server (another process) run on the machine's
    clock shifted so that the module's server started at ``CLOCK_START``; the
    server's clock starts where that shifted clock stood when it was started.
    Tests marked ``real_clock`` keep the machine's clock and must not depend
    on the date themselves.
    ``scripts/test`` also runs the suite under libfaketime to prove it."""
    if request.node.get_closest_marker("real_clock"):
        yield None
        return
    if "live_server" in request.fixturenames:
        # The server is another process: both run on the machine's clock
        # shifted by the same offset, so they agree.
        server: LiveServer = request.getfixturevalue("live_server")
        start: dt.datetime | float = time.time() + server.clock_offset
    else:
        start = CLOCK_START
    with time_machine.travel(start, tick=True) as traveller:
        yield traveller


@pytest.fixture
def clock(_controlled_clock: time_machine.Coordinates | None) -> time_machine.Coordinates:
    """The test's clock, to move (``clock.move_to(...)``, ``clock.shift(...)``)."""
    if _controlled_clock is None:
        pytest.fail("this test keeps the real clock and cannot move it")
    return _controlled_clock


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The real service under uvicorn on a free loopback port, with its own
    SQLite database, secrets and issuer key (region 110000)."""
    home = tmp_path_factory.mktemp("live")
    clock_offset = CLOCK_START.timestamp() - time.time()
    url = f"sqlite:///{home / 'hc.db'}"
    with time_machine.travel(CLOCK_START, tick=True):
        asyncio.run(init_instance(url, home / "secrets.json"))
        KeyStore(home / "keys").init("110000", "北京市")
    env = os.environ | {
        "HEALTHCODE_DATABASE_URL": url,
        "HEALTHCODE_SECRETS_FILE": str(home / "secrets.json"),
        "HEALTHCODE_KEYS_DIR": str(home / "keys"),
        "HEALTHCODE_TRUST_FILE": str(home / "trust.hct"),
        "HEALTHCODE_RATE_LIMIT_PER_MINUTE": "1000000",
    }
    env["HEALTHCODE_TEST_CLOCK_START"] = repr(time.time() + clock_offset)
    # The system-wide monotonic clock at that instant: the server adds the time
    # its start-up took, so that its clock does not lag the test's by it.
    env["HEALTHCODE_TEST_CLOCK_MONOTONIC"] = repr(time.monotonic())
    server, base = start_clocked_server(env)
    try:
        wait_ready(server, base)
        yield LiveServer(base, home, url, clock_offset)
    finally:
        server.terminate()
        server.wait(timeout=20)


# --- database backends: every storage test runs on SQLite and on PostgreSQL ----------------


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str | None]:
    try:
        url, server = open_session_postgres()
    except PostgresUnavailable as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL is required under CI and is unreachable: {exc}")
        yield None
        return
    try:
        yield url
    finally:
        close_session_postgres(url, server)


@pytest.fixture(params=["sqlite", "postgresql"])
def bare_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """An empty database (PostgreSQL: migrated, then truncated), not initialised."""
    secrets_file = tmp_path / "secrets.json"
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hc.db'}"
    else:
        # Asked for here, not as an argument: the SQLite cases (the fast tier)
        # then never create a PostgreSQL database.
        postgres_url: str | None = request.getfixturevalue("postgres_url")
        if postgres_url is None:
            pytest.skip("PostgreSQL not reachable (set CI=true to make this a failure)")
        url = postgres_url

        async def clean() -> None:
            db = Database(url)
            try:
                await db.migrate()
                await truncate_all(db)
            finally:
                await db.dispose()

        asyncio.run(clean())
    yield Backend(request.param, url, secrets_file)


@pytest.fixture
def backend(bare_backend: Backend) -> Backend:
    """A database set up by ``healthcode init`` with its own secrets file."""
    asyncio.run(init_instance(bare_backend.url, bare_backend.secrets_file))
    return bare_backend


# --- tiers ------------------------------------------------------------------------------------


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, pytest.Function):
            for tier in sorted(tiers(item)):
                item.add_marker(tier)
