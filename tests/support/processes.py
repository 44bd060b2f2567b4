"""Starting helper processes from the tests."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

_TESTS = Path(__file__).parents[1]


def without_libfaketime(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without libfaketime, for a helper process whose clock is no part
    of what a test checks (a Redis server, an HTTP test client). Under
    ``faketime`` (the suite's second run) such processes can hang: redis-server
    does not start, and a thread's timed wait in Python may wait for ever."""
    kept = {k: v for k, v in env.items() if not k.startswith("FAKETIME")}
    preload = [p for p in env.get("LD_PRELOAD", "").split(":") if p and "faketime" not in p]
    if preload:
        kept["LD_PRELOAD"] = ":".join(preload)
    else:
        kept.pop("LD_PRELOAD", None)
    return kept


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_clocked_server(env: Mapping[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """The service under ``tests/clocked_uvicorn.py`` (uvicorn on the clock the
    environment names) on a free loopback port: the process and its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            str(_TESTS / "clocked_uvicorn.py"),
            "--factory",
            "healthcode.api.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=dict(env),
        cwd=_TESTS.parent,
    )
    return process, f"http://127.0.0.1:{port}"


def wait_ready(process: subprocess.Popen[bytes], url: str, timeout: float = 60) -> None:
    """Wait until ``url`` answers ``/health/ready`` with 200; fail if the
    process exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the service at {url} did not start")
        time.sleep(0.2)
