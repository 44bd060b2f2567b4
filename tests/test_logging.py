"""One log format for the server (issue 16): ours, uvicorn's (its access log
included) and the libraries' in one format, text or JSON lines; health checks
stay out of the log; a first start says what it created and where in at most
10 lines, a later start says one line.

The configuration is applied in this process and its output captured; the
real ``healthcode serve`` runs in a subprocess with a home of its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from support.processes import free_port

from healthcode.api.app import create_app
from healthcode.api.settings import Settings
from healthcode.core.passes import KeyStore
from healthcode.core.storage.database import init_instance
from healthcode.logs import configure_logging, masked_client

TEXT_LINE = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: .*"
)
ACCESS = '%s - "%s %s HTTP/%s" %d'
CONFIGURED = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "alembic",
    "litestar",
    "healthcode.serve",
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """Put this process's logging back as it was after the test configured it."""
    root = logging.getLogger()
    saved = {
        name: (lg.handlers[:], lg.level, lg.propagate, lg.filters[:])
        for name, lg in ((n, logging.getLogger(n)) for n in ("", *CONFIGURED))
    }
    try:
        yield
    finally:
        for name, (handlers, level, propagate, filters) in saved.items():
            lg = logging.getLogger(name) if name else root
            lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate = propagate
            lg.filters[:] = filters


def _lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.splitlines()


def test_text_lines_carry_utc_time_level_logger_and_message(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("text", "info")
    logging.getLogger("healthcode.api").info("hello %s", "operator")
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("healthcode.api").exception("it failed")
    lines = _lines(capsys)
    # The test's clock: 10:00 in Shanghai is 02:00 UTC.
    assert re.fullmatch(
        r"2026-11-26T02:00:0\d\.\d{3}Z INFO healthcode\.api: hello operator", lines[0]
    )
    assert lines[1].endswith(" INFO uvicorn.error: Started server process [42]")
    assert TEXT_LINE.fullmatch(lines[1])
    assert lines[2].endswith(" ERROR healthcode.api: it failed")
    assert lines[3] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: boom"


def test_json_lines_carry_the_same_and_their_extra_fields(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("json", "info")
    log = logging.getLogger("healthcode.api")
    log.info(
        "day rollover: ...", extra={"rollover": {"day": "2026-11-27", "deleted": {"passes": 3}}}
    )
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it failed")
    first, second = (json.loads(line) for line in _lines(capsys))
    assert first["time"].startswith("2026-11-26T02:00:0") and first["time"].endswith("Z")
    assert (first["level"], first["logger"], first["message"]) == (
        "INFO",
        "healthcode.api",
        "day rollover: ...",
    )
    assert first["rollover"]["deleted"]["passes"] == 3
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exception"]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_the_access_log_keeps_health_checks_and_query_strings_out(
    restored_logging: None, capsys: pytest.CaptureFixture[str], fmt: Any
) -> None:
    configure_logging(fmt, "info")
    access = logging.getLogger("uvicorn.access")
    access.info(ACCESS, "127.0.0.1:5000", "GET", "/health/ready", "1.1", 200)
    access.info(ACCESS, "127.0.0.1:5000", "GET", "/health/live", "1.1", 200)
    access.info(ACCESS, "127.0.0.1:5001", "GET", "/me/status?subject=abc", "1.1", 401)
    (line,) = _lines(capsys)
    if fmt == "text":
        assert TEXT_LINE.fullmatch(line)
        assert line.endswith(' INFO uvicorn.access: 127.0.0.0 - "GET /me/status HTTP/1.1" 401')
    else:
        entry = json.loads(line)
        assert entry["http"] == {
            "client": "127.0.0.0",
            "method": "GET",
            "path": "/me/status",
            "status": 401,
        }
        assert "subject=abc" not in line


def test_alembic_says_only_warnings_and_serve_always_speaks(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("text", "debug")
    logging.getLogger("alembic.runtime.migration").info("Context impl SQLiteImpl.")
    logging.getLogger("alembic.runtime.migration").warning("something odd")
    (line,) = _lines(capsys)
    assert line.endswith(" WARNING alembic.runtime.migration: something odd")

    configure_logging("text", "warning")
    logging.getLogger("healthcode.api").info("not at this level")
    logging.getLogger("healthcode.serve").info("serving on http://127.0.0.1:8000")
    (line,) = _lines(capsys)
    assert line.endswith(" INFO healthcode.serve: serving on http://127.0.0.1:8000")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    url = f"sqlite:///{tmp_path / 'hc.db'}"
    asyncio.run(init_instance(url, tmp_path / "secrets.json"))
    KeyStore(tmp_path / "keys").init("110000", "北京市")
    return Settings(
        database_url=url,
        secrets_file=tmp_path / "secrets.json",
        keys_dir=tmp_path / "keys",
        trust_file=tmp_path / "trust.hct",
        run_purge=False,
    )


@pytest.mark.anyio
async def test_the_app_leaves_logging_alone_and_readiness_checks_are_quiet(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    root = logging.getLogger()
    before = (root.handlers[:], root.level)
    async with AsyncTestClient(create_app(settings)) as client:
        # Litestar's own default would put its format on the root logger.
        assert (root.handlers[:], root.level) == before
        caplog.set_level(logging.DEBUG)
        caplog.clear()
        for _ in range(3):
            assert (await client.get("/health/ready")).status_code == 200
    assert [r for r in caplog.records if r.name.startswith("alembic")] == []


# --- the real server --------------------------------------------------------------------


@pytest.fixture
def serve_logs() -> Callable[..., list[str]]:
    """Runs the real ``healthcode serve`` in a subprocess, in a home of its own."""

    def _serve(home: Path, **env: str) -> list[str]:
        """Start ``healthcode serve`` in ``home``, ask for readiness and a page,
        stop it; its stderr lines."""
        port = free_port()
        environment = os.environ | {
            "HOME": str(home),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_STATE_HOME": str(home / "state"),
            "XDG_CACHE_HOME": str(home / "cache"),
            **env,
        }
        for name in ("HEALTHCODE_DATABASE_URL", "HEALTHCODE_SECRETS_FILE", "HEALTHCODE_KEYS_DIR"):
            environment.pop(name, None)
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("healthcode")), "serve", "--port", str(port)],
            env=environment,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert server.poll() is None and time.monotonic() < deadline, "did not start"
                time.sleep(0.1)
            assert httpx.get(f"{base}/documents/kinds?lang=en", timeout=5).status_code == 200
        finally:
            server.terminate()
            _, stderr = server.communicate(timeout=30)
        return stderr.splitlines()

    return _serve


def test_serve_is_quiet_and_in_one_format(
    tmp_path: Path, serve_logs: Callable[..., list[str]]
) -> None:
    first = serve_logs(tmp_path)
    serving = next(i for i, line in enumerate(first) if "serving on http://" in line)
    assert 3 <= serving <= 10, first
    created = "\n".join(first[:serving])
    assert "healthcode.db" in created and str(tmp_path / "data") in created
    assert str(tmp_path / "config" / "healthcode" / "secrets.json") in created
    assert str(tmp_path / "data" / "healthcode" / "keys") in created
    assert all(TEXT_LINE.fullmatch(line) for line in first), first
    access = [line for line in first if " uvicorn.access: " in line]
    assert access == [access[0]] and '"GET /documents/kinds HTTP/1.1" 200' in access[0]

    later = serve_logs(tmp_path, HEALTHCODE_LOG_FORMAT="json")
    entries = [json.loads(line) for line in later]
    assert "serving on http://" in entries[0]["message"]
    assert {e["logger"] for e in entries} >= {"healthcode.serve", "uvicorn.error"}
    (request,) = [e for e in entries if e["logger"] == "uvicorn.access"]
    assert request["http"]["path"] == "/documents/kinds"


@pytest.mark.parametrize(
    ("client", "kept"),
    [
        ("203.0.113.77:51234", "203.0.113.0"),
        ("203.0.113.77", "203.0.113.0"),
        ("[2001:db8:85a3:8d3:1319:8a2e:370:7348]:443", "2001:db8:85a3::/48"),
        ("2001:db8:85a3:8d3:1319:8a2e:370:7348", "2001:db8:85a3::/48"),
        ("unix-socket", "unix-socket"),
    ],
)
def test_the_access_log_keeps_a_network_not_an_address(client: str, kept: str) -> None:
    assert masked_client(client) == kept
