"""Redis for the shared-state tests: a redis-server of the test's own (to stop
and restart mid-run) and the shared one (the system Redis, or
``HEALTHCODE_TEST_REDIS_URL``) under a key prefix of the test's own."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support.processes import without_libfaketime

TEST_REDIS_ENV = "HEALTHCODE_TEST_REDIS_URL"
DEFAULT_TEST_REDIS = "redis://127.0.0.1:6379/0"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def redis_server_available() -> bool:
    return Path(REDIS_SERVER).exists()


class OwnRedis:
    """A redis-server listening on a Unix socket in ``folder``, nothing saved
    to disk; stopped and started again by the test (never the system one)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.socket = folder / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            env=without_libfaketime(os.environ),
        )
        deadline = time.monotonic() + 10
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
        self.socket.unlink(missing_ok=True)

    def _answers(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(0.5)
                s.connect(str(self.socket))
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@contextmanager
def own_redis(folder: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def shared_redis_url() -> str:
    return os.environ.get(TEST_REDIS_ENV, "").strip() or DEFAULT_TEST_REDIS


def unique_prefix() -> str:
    """A key prefix no other test (or person) uses."""
    return f"hctest:{secrets.token_hex(6)}"


def flush_prefix(url: str, prefix: str) -> None:
    """Delete every key under ``prefix`` (the test's own)."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def shared_redis_reachable(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()
