"""Benchmark: image floods against POST /enrollments (hardening finding 1).

Starts the real service under uvicorn on a free loopback port (one worker,
SQLite in a temporary home, as the ``live_server`` test fixture does), sends
each attack once, polls ``/health/live`` every 10 ms while it is in flight, and
samples the server's RSS (``/proc/PID/status``). Prints a markdown table.

    .venv/bin/python bench/bench_image_flood.py [--json bench/results/image_flood.json]

The server imports ``healthcode`` the way this script does (it runs from the
temporary home, so the current directory does not shadow ``PYTHONPATH``): to
measure another checkout, e.g. the code before a fix,

    git worktree add /tmp/hc-before HEAD
    PYTHONPATH=/tmp/hc-before .venv/bin/python bench/bench_image_flood.py

The package path the server imported is printed with the results.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

POLL_S = 0.01
TD3 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def zero_png(side: int) -> bytes:
    """A valid all-black RGB PNG, ``side`` x ``side``: tiny on the wire. The
    same as ``healthcode.testing.images.zero_png``, kept here because the bench
    also measures the code before the fix (``PYTHONPATH`` at an older tree)."""
    packer = zlib.compressobj(9)
    row = b"\x00" * (1 + 3 * side)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )


def flat_jpeg(width: int, height: int) -> bytes:
    from PIL import Image as PILImage

    out = io.BytesIO()
    PILImage.new("RGB", (width, height), (0, 0, 0)).save(out, format="JPEG", quality=75)
    return out.getvalue()


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


class Server:
    """The service under uvicorn, one worker, in a temporary home."""

    def __init__(self, home: Path) -> None:
        from healthcode.core.passes import KeyStore
        from healthcode.core.storage.database import init_instance

        url = f"sqlite:///{home / 'hc.db'}"
        asyncio.run(init_instance(url, home / "secrets.json"))
        KeyStore(home / "keys").init("110000", "北京市")
        self.env = os.environ | {
            "HEALTHCODE_DATABASE_URL": url,
            "HEALTHCODE_SECRETS_FILE": str(home / "secrets.json"),
            "HEALTHCODE_KEYS_DIR": str(home / "keys"),
            "HEALTHCODE_TRUST_FILE": str(home / "trust.hct"),
            "HEALTHCODE_RATE_LIMIT_PER_MINUTE": "1000000",
        }
        self.home = home
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.package = subprocess.run(
            [sys.executable, "-c", "import healthcode; print(healthcode.__file__)"],
            env=self.env,
            cwd=home,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "healthcode.api.app:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            env=self.env,
            cwd=home,  # not the checkout: the current directory would shadow PYTHONPATH
        )
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{self.base}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the service did not start")
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def attack(
    server: Server, name: str, send: Callable[[httpx.Client], httpx.Response]
) -> dict[str, Any]:
    """Send one attack request; meanwhile poll /health/live and sample RSS."""
    pid = server.process.pid
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def run() -> None:
        with httpx.Client(base_url=server.base, timeout=600) as client:
            started = time.perf_counter()
            try:
                response = send(client)
                code = response.json().get("code") if response.status_code >= 400 else "-"
                outcome["response"] = f"{response.status_code} {code}"
            except httpx.HTTPError as exc:
                outcome["response"] = type(exc).__name__
            outcome["request_s"] = time.perf_counter() - started
        done.set()

    rss_before = rss_mib(pid)
    peak = rss_before
    waits: list[float] = []
    sender = threading.Thread(target=run)
    with httpx.Client(base_url=server.base, timeout=600) as health:
        sender.start()
        while not done.is_set():
            t0 = time.perf_counter()
            ok = health.get("/health/live").status_code == 200
            waits.append(time.perf_counter() - t0 if ok else float("inf"))
            peak = max(peak, rss_mib(pid))
            time.sleep(POLL_S)
    sender.join()
    peak = max(peak, rss_mib(pid))
    return {
        "attack": name,
        "response": outcome.get("response"),
        "request_s": round(outcome.get("request_s", 0.0), 3),
        "health_polls": len(waits),
        "health_max_ms": round(max(waits) * 1000, 1) if waits else None,
        "rss_before_mib": round(rss_before),
        "rss_peak_mib": round(peak),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=59, help="PNG frames (plus a capture)")
    parser.add_argument("--side", type=int, default=4800, help="PNG side in pixels")
    parser.add_argument("--jpeg-frames", type=int, default=29, help="24-megapixel JPEG frames")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()

    from healthcode.core.passes import HolderDevice

    png = zero_png(args.side)
    jpeg = flat_jpeg(6000, 4000)
    device_key = base64.b64encode(HolderDevice.generate("ES256").public_key_der).decode()

    def form(nonce: str) -> dict[str, str]:
        return {
            "challenge_nonce": nonce,
            "declared_name": "ERIKSSON ANNA MARIA",
            "device_public_key": device_key,
            "mrz": TD3,
        }

    def parts(frame: bytes, count: int, kind: str) -> list[Any]:
        files: list[Any] = [("frames", (f"f{i}", frame, kind)) for i in range(count)]
        files.append(("capture", ("c", frame, kind)))
        return files

    def with_real_challenge(frame: bytes, count: int, kind: str) -> Callable[[httpx.Client], Any]:
        def send(client: httpx.Client) -> httpx.Response:
            nonce = client.post("/enrollments/challenges", json={}).json()["nonce"]
            return client.post("/enrollments", data=form(nonce), files=parts(frame, count, kind))

        return send

    attacks: list[tuple[str, Callable[[httpx.Client], httpx.Response]]] = [
        (
            f"{args.frames}+1 PNG {args.side}x{args.side} ({len(png) // 1024} KB each), "
            "made-up nonce",
            lambda c: c.post(
                "/enrollments", data=form("made-up"), files=parts(png, args.frames, "image/png")
            ),
        ),
        (
            f"{args.jpeg_frames}+1 JPEG 6000x4000 ({len(jpeg) // 1024} KB each), made-up nonce",
            lambda c: c.post(
                "/enrollments",
                data=form("made-up"),
                files=parts(jpeg, args.jpeg_frames, "image/jpeg"),
            ),
        ),
        (
            f"{args.frames}+1 PNG {args.side}x{args.side}, issued challenge",
            with_real_challenge(png, args.frames, "image/png"),
        ),
        (
            f"17+1 PNG {args.side}x{args.side}, issued challenge (within its frame count)",
            with_real_challenge(png, 17, "image/png"),
        ),
        (
            f"{args.jpeg_frames}+1 JPEG 6000x4000, issued challenge",
            with_real_challenge(jpeg, args.jpeg_frames, "image/jpeg"),
        ),
        (
            "17+1 JPEG 6000x4000, issued challenge (within its frame count)",
            with_real_challenge(jpeg, 17, "image/jpeg"),
        ),
        (
            "7+1 JPEG 6000x4000, issued challenge (within every cap: decoded, then refused)",
            with_real_challenge(jpeg, 7, "image/jpeg"),
        ),
    ]

    rows = []
    with tempfile.TemporaryDirectory(prefix="hc-flood-") as tmp:
        server = Server(Path(tmp))
        try:
            idle = rss_mib(server.process.pid)
            for name, send in attacks:
                rows.append(attack(server, name, send))
            hwm = rss_mib(server.process.pid, "VmHWM")
        finally:
            server.stop()

    print(f"server package: {server.package}")
    print(f"server RSS idle {idle:.0f} MiB, high-water mark over the run {hwm:.0f} MiB\n")
    print(
        "| attack | response | request s | /health/live max ms (polls) "
        "| server RSS before -> peak MiB |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['attack']} | {r['response']} | {r['request_s']} | "
            f"{r['health_max_ms']} ({r['health_polls']}) | "
            f"{r['rss_before_mib']} -> {r['rss_peak_mib']} |"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"package": server.package, "idle_mib": idle, "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
