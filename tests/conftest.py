"""Shared fixtures. Third-party plugins installed on the machine are kept out
of the test session: only the built-ins (and throwaway test plugins) load."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pluggy
import pytest
from attrs import frozen

os.environ["HEALTHCODE_DISABLE_PLUGIN_AUTOLOAD"] = "1"

from healthcode.core.passes import KeyStore
from healthcode.core.plugins import get_plugin_manager, new_plugin_manager
from healthcode.core.storage.database import init_instance

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TODAY = dt.date(2026, 11, 26)


@pytest.fixture
def pm() -> pluggy.PluginManager:
    """A fresh manager with the built-in plugins only."""
    return new_plugin_manager(autoload=False)


@pytest.fixture(autouse=True)
def _fresh_global_manager() -> None:
    # Tests that register throwaway plugins on the cached manager must not
    # leak them into other tests.
    get_plugin_manager.cache_clear()


@pytest.fixture
def today() -> dt.date:
    return TODAY


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@frozen
class LiveServer:
    url: str
    home: Path
    database_url: str


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The real service under uvicorn on a free loopback port, with its own
    SQLite database, secrets and issuer key (region 110000)."""
    home = tmp_path_factory.mktemp("live")
    url = f"sqlite:///{home / 'hc.db'}"
    asyncio.run(init_instance(url, home / "secrets.json"))
    KeyStore(home / "keys").init("110000", "北京市")
    port = _free_port()
    env = os.environ | {
        "HEALTHCODE_DATABASE_URL": url,
        "HEALTHCODE_SECRETS_FILE": str(home / "secrets.json"),
        "HEALTHCODE_KEYS_DIR": str(home / "keys"),
        "HEALTHCODE_TRUST_FILE": str(home / "trust.hct"),
        "HEALTHCODE_RATE_LIMIT_PER_MINUTE": "1000000",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "healthcode.api.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=Path(__file__).parents[1],
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
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the service did not start")
            time.sleep(0.2)
        yield LiveServer(base, home, url)
    finally:
        server.terminate()
        server.wait(timeout=20)
