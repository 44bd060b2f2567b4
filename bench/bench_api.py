"""Benchmark: the HTTP service under load, on loopback (issue 7, "Measure").

    .venv/bin/python bench/bench_api.py [--duration 10] [--connections 32]
        [--workers 1,2] [--backends sqlite,postgresql] [--no-faces] [--json out.json]

What it measures, each run bounded in time (``--duration``) and in count
(``--max-requests``), against ``healthcode serve`` started and stopped here:

* (a) ``POST /guard/verifications`` and (b) ``GET /me/status``: requests/s and
  p50/p99 latency with 1 and 2 workers, on SQLite and on PostgreSQL (a
  throwaway database on 127.0.0.1:5432, dropped afterwards);
* (c) overload: many more connections than the service admits, counting
  responses by status code. Pass: only 200/429/503, every 429/503 with
  ``Retry-After``, no socket timeouts (no hung connection);
* an enrollment rush: many concurrent ``POST /enrollments`` with a bad body,
  then real re-enrollments with the photos in tests/data/faces; afterwards
  every subject row must have its template and (holders) its device key.

Set-up writes rows directly through the storage layer instead of enrolling
through the API (no face work for the throughput runs): subjects with a
document key, an encrypted face template (computed once from obama_3.jpg) and
a device key; passes from ``PassService.issue``; a guard token. Presentations
and device signatures are made afresh just before each run (they are valid 30 s
and 60 s).

Throughput runs set ``HEALTHCODE_RATE_LIMIT_PER_MINUTE`` to 100,000,000 so that
the per-IP limit (all load comes from 127.0.0.1) does not cap the measurement;
one overload run keeps the default limit to show the 429 path.

Load generator: ``wrk`` (4.1, with a Lua script that rotates requests and
counts status codes) when it is on PATH; on Debian ``apt-get install -y wrk``
(installed that way on the development box for bench/API.md).
Without it, a slower asyncio/httpx generator in this file does the same job
(closed loop, same counts); its own CPU use lowers the figures much more.
The generator and the server share the machine's cores: say so with results.
"server CPU ms/req" (the server's CPU time during a run over its requests) is the
figure least disturbed by other jobs.

``--source DIR`` serves from another copy of the package (one worker), to measure
a candidate change without touching the tree.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from attrs import define

from healthcode.core.auth import create_token, sign_request
from healthcode.core.clock import now_utc
from healthcode.core.enrollment import EnrollmentService
from healthcode.core.images import read_image_file
from healthcode.core.passes import HolderDevice, KeyStore, TrustStore
from healthcode.core.passes.service import PassService
from healthcode.core.privacy import document_key, encrypt_template, load_secrets, subject_id_hex
from healthcode.core.storage import tables
from healthcode.core.storage.database import Database, init_instance
from healthcode.core.storage.testing import (
    create_postgres_database,
    drop_postgres_database,
    postgres_server_url,
)
from healthcode.testing.mrz import MRZFields, format_mrz

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT / "tests" / "data" / "faces"
HEALTHCODE = ROOT / ".venv" / "bin" / "healthcode"
HIGH_RATE_LIMIT = 100_000_000
SURNAME, GIVEN = "QUARTERMAINE", "ALLAN JAMES"
DECLARED_NAME = f"{SURNAME} {GIVEN}"
# Liveness from photos, as in tests/test_api_flows.py.
FRAMES = ("obama_1.jpg", "obama_2.jpg", "obama_1.jpg")
CAPTURE = "obama_3.jpg"
ACTIONS = ("turn_right", "open_mouth")
OK_CODES = {200, 201, 429, 503}


def passport_number(i: int) -> str:
    return f"Q{i:07d}"


def passport_mrz(i: int) -> str:
    return format_mrz(
        MRZFields(
            layout="TD3",
            document_code="P",
            issuing_state="GBR",
            nationality="GBR",
            surname=SURNAME,
            given_names=GIVEN,
            number=passport_number(i),
            birth_date=dt.date(1971, 3, 14),
            sex="M",
            expiry_date=dt.date(2034, 6, 30),
        )
    )


# --- the instance: database, keys, seeded holders ----------------------------------------------


@define
class Holder:
    subject_id: str
    device: HolderDevice
    pass_text: str


@define
class Instance:
    root: Path
    url: str
    backend: str
    env: dict[str, str]
    holders: list[Holder]
    guard_token: str
    drop_from: str | None = None


def face_template() -> bytes:
    """A real template of the capture photo, as enrollment would store it."""
    from healthcode.core.enrollment.faces import FaceChecks
    from healthcode.core.plugins import get_plugin_manager

    checks = FaceChecks(get_plugin_manager())
    image = read_image_file(FACES / CAPTURE)
    face, _warnings = checks.one_face(image, "capture")
    return checks.template(image, face)


async def setup_instance(backend: str, root: Path, holders: int, template: bytes) -> Instance:
    drop_from = None
    if backend == "sqlite":
        url = f"sqlite:///{root / 'hc.db'}"
    else:
        drop_from = postgres_server_url()
        url = await create_postgres_database(drop_from, prefix="healthcode_bench")
    secrets_file = root / "secrets.json"
    await init_instance(url, secrets_file)
    keys = KeyStore(root / "keys")
    keys.init("110000", "北京市")
    TrustStore(root / "trust.hct", keys).load()
    secrets = load_secrets(secrets_file)
    db = Database(url)
    seeded: list[Holder] = []
    try:
        now = now_utc()
        devices = [HolderDevice.generate("ES256") for _ in range(holders)]
        async with db.begin() as conn:
            for i, device in enumerate(devices):
                key = document_key(secrets, "passport", "GBR", passport_number(i))
                await conn.execute(
                    tables.subjects.insert().values(
                        subject_key=key,
                        kind="passport",
                        masked_name=SURNAME,
                        masked_number=passport_number(i)[:2] + "****" + passport_number(i)[-2:],
                        encrypted_template=encrypt_template(secrets, template, subject_key=key),
                        device_public_key=device.public_key_der,
                        created_at=now,
                        updated_at=now,
                    )
                )
                await conn.execute(
                    tables.subject_documents.insert().values(
                        document_key=key, subject_key=key, kind="passport", created_at=now
                    )
                )
        passes = PassService(db, keys)
        for i, device in enumerate(devices):
            subject_id = subject_id_hex(
                document_key(secrets, "passport", "GBR", passport_number(i))
            )
            issued = await passes.issue(subject_id)
            seeded.append(Holder(subject_id, device, issued.issued.text))
        guard = await create_token(db, "guard", "bench")
    finally:
        await db.dispose()
    env = {
        "HEALTHCODE_DATABASE_URL": url,
        "HEALTHCODE_SECRETS_FILE": str(secrets_file),
        "HEALTHCODE_KEYS_DIR": str(root / "keys"),
        "HEALTHCODE_TRUST_FILE": str(root / "trust.hct"),
        "HEALTHCODE_MIGRATE_ON_START": "0",
    }
    return Instance(root, url, backend, env, seeded, guard, drop_from)


def save_instance(instance: Instance) -> None:
    """Write ``instance`` (device keys included) to ``instance.json`` in its root."""
    for i, h in enumerate(instance.holders):
        h.device.save(instance.root / "devices" / f"{i}.pem")
    record = {
        "url": instance.url,
        "backend": instance.backend,
        "env": instance.env,
        "guard_token": instance.guard_token,
        "drop_from": instance.drop_from,
        "holders": [[h.subject_id, h.pass_text] for h in instance.holders],
    }
    (instance.root / "instance.json").write_text(json.dumps(record))


def load_instance(root: Path) -> Instance:
    record = json.loads((root / "instance.json").read_text())
    holders = [
        Holder(subject_id, HolderDevice.load(root / "devices" / f"{i}.pem"), pass_text)
        for i, (subject_id, pass_text) in enumerate(record["holders"])
    ]
    return Instance(
        root,
        record["url"],
        record["backend"],
        record["env"],
        holders,
        record["guard_token"],
        record["drop_from"],
    )


def setup_with(source: Path, backend: str, root: Path, holders: int, template: bytes) -> Instance:
    """``setup_instance`` by ``source``'s copy of the package (its own schema
    and migrations), in a child process."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "template.bin").write_bytes(template)
    command = [sys.executable, str(Path(__file__).resolve()), "--setup-only", str(root)]
    command += ["--backends", backend, "--holders", str(holders)]
    env = {**os.environ, "PYTHONPATH": str(source)}
    subprocess.run(command, env=env, cwd=root, check=True)
    return load_instance(root)


async def teardown_instance(instance: Instance) -> None:
    if instance.drop_from is not None:
        await drop_postgres_database(instance.drop_from, instance.url)


# --- the server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# ``--source``/``--baseline``: serve from another copy of the package. The
# console script's first path entry is .venv/bin, and PYTHONPATH comes before
# the editable install's finder, so the server and every uvicorn worker it
# spawns import that copy.
SOURCE: Path | None = None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its child processes (uvicorn's
    workers), all threads included: Linux /proc only, else 0."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state, ppid, ..., utime (14th field) and stime (15th).
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


SERVER_PIDS: dict[str, int] = {}


@contextlib.contextmanager
def server(
    instance: Instance, workers: int, extra_env: dict[str, str], source: Path | None = None
) -> Iterator[str]:
    """``healthcode serve`` in its own process group; killed on exit. ``source``
    (default ``--source``): another copy of the package to serve from."""
    port = free_port()
    env = {**os.environ, **instance.env, **extra_env}
    source = source or SOURCE
    if source is not None:
        env["PYTHONPATH"] = str(source)
    launch = [str(HEALTHCODE)]
    log = open(instance.root / f"server-{port}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            *launch,
            *("serve", "--host", "127.0.0.1", "--port", str(port)),
            *("--workers", str(workers), "--log-level", "warning"),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    SERVER_PIDS[base] = proc.pid
    try:
        deadline = time.monotonic() + 60
        ready = 0
        while ready < workers * 4:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"server did not start: {(instance.root / f'server-{port}.log').read_text()}"
                )
            try:
                with urllib.request.urlopen(f"{base}/health/ready", timeout=2) as r:
                    ready += r.status == 200
            except OSError:
                time.sleep(0.2)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.close()


# --- load generation -------------------------------------------------------------------------


@define
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


@define
class RunResult:
    requests: int
    seconds: float
    codes: dict[int, int]
    p50_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: dict[str, int]
    missing_retry_after: int
    generator: str
    server_cpu_s: float = 0.0
    """CPU time the server used during the run (every worker and thread)."""
    accepted: int | None = None
    """Verifications answered ``ok: true`` (wrk only): a stale or replayed
    live code is refused with 200 too, and costs less."""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def ok_rate(self) -> float:
        ok = sum(n for c, n in self.codes.items() if 200 <= c < 300)
        return ok / self.seconds if self.seconds else 0.0


def _lua_string(data: bytes | str) -> str:
    text = data.decode() if isinstance(data, bytes) else data
    return json.dumps(text)  # a JSON string of ASCII is a valid Lua string literal


WRK_READER = r"""
function read_requests(path)
  local out = {}
  for line in io.lines(path) do
    local f = {}
    for field in (line .. "\t"):gmatch("([^\t]*)\t") do table.insert(f, field) end
    local headers = {}
    for k = 4, #f - 1, 2 do headers[f[k]] = f[k + 1] end
    local body = nil
    if f[3] ~= "" then body = f[3] end
    table.insert(out, {f[1], f[2], headers, body})
  end
  return out
end
"""

WRK_SCRIPT = r"""
local threads = {}
local n = #reqs
function setup(thread)
  thread:set("id", #threads)
  thread:set("nthreads", nthreads)
  table.insert(threads, thread)
end
function init(args)
  codes = {}
  missing = 0
  seen = 0
  accepted = 0
  -- Thread t sends requests t, t + nthreads, ...: each signed request once.
  i = id - nthreads
end
function delay()
  return pace_ms
end
function request()
  i = i + nthreads
  local r = reqs[(i % n) + 1]
  return wrk.format(r[1], r[2], r[3], r[4])
end
function response(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
  if (status == 429 or status == 503) and headers["retry-after"] == nil
     and headers["Retry-After"] == nil then
    missing = missing + 1
  end
  seen = seen + 1
  -- A verification refused (stale, replayed) is a 200 too: count acceptances.
  if body ~= nil and body:find('"ok":true', 1, true) then accepted = accepted + 1 end
  if seen >= max_per_thread then wrk.thread:stop() end
end
function done(summary, latency, requests)
  local agg = {}
  local miss = 0
  local acc = 0
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("codes")) do agg[k] = (agg[k] or 0) + v end
    miss = miss + t:get("missing")
    acc = acc + t:get("accepted")
  end
  local parts = {}
  for k, v in pairs(agg) do table.insert(parts, string.format('"%d": %d', k, v)) end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "codes": {%s}, "missing": %d, ' ..
    '"accepted": %d, ' ..
    '"p50": %d, "p99": %d, "max": %d, "errors": {"connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d}}\n',
    summary.requests, summary.duration, table.concat(parts, ", "), miss, acc,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def run_wrk(
    base: str,
    requests: list[Request],
    connections: int,
    duration: float,
    max_requests: int,
    timeout_s: float,
    root: Path,
    pace_ms: int,
) -> RunResult:
    threads = 2
    # The requests go in a data file, one a line (method, path, body, then
    # header names and values, tab-separated): a Lua chunk holds at most
    # 65,536 constants, fewer than the requests a run signs.
    data = root / "requests.tsv"
    with data.open("w", encoding="utf-8") as out:
        for r in requests:
            fields = [r.method, r.path, r.body.decode()]
            for k, v in r.headers.items():
                fields += [k, v]
            if any("\t" in f or "\n" in f for f in fields):
                raise ValueError("a request field holds a tab or a line break")
            out.write("\t".join(fields) + "\n")
    lines = [f"reqs = read_requests({_lua_string(str(data))})"]
    lines.append(f"max_per_thread = {max(1, max_requests // threads)}")
    lines.append(f"nthreads = {threads}")
    lines.append(f"pace_ms = {pace_ms}")
    script = root / "load.lua"
    script.write_text(WRK_READER + "\n".join(lines) + WRK_SCRIPT)
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration:g}s"]
    command += ["--timeout", f"{timeout_s:g}s", "-s", str(script), base]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=duration + timeout_s + 30, check=False
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {done.stdout}\n{done.stderr}")
    data = json.loads(line[len("WRKJSON ") :])
    return RunResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        codes={int(k): v for k, v in data["codes"].items()},
        p50_ms=data["p50"] / 1000,
        p99_ms=data["p99"] / 1000,
        max_ms=data["max"] / 1000,
        socket_errors={k: v for k, v in data["errors"].items() if k != "status"},
        missing_retry_after=data["missing"],
        accepted=data["accepted"],
        generator="wrk",
    )


async def _httpx_load(
    base: str,
    requests: list[Request],
    connections: int,
    duration: float,
    max_requests: int,
    timeout_s: float,
    pace_ms: int,
) -> RunResult:
    import httpx

    codes: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    missing = 0
    sent = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    started = time.perf_counter()
    deadline = started + duration

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal missing, sent
        while time.perf_counter() < deadline and sent < max_requests:
            # One shared counter: each signed request is sent once.
            r = requests[sent % len(requests)]
            sent += 1
            if pace_ms:
                await asyncio.sleep(pace_ms / 1000)
            t = time.perf_counter()
            try:
                response = await client.request(
                    r.method, r.path, headers=r.headers, content=r.body or None
                )
            except httpx.TimeoutException:
                errors["timeout"] += 1
                continue
            except httpx.TransportError:
                errors["read"] += 1
                continue
            latencies.append(time.perf_counter() - t)
            codes[response.status_code] += 1
            if response.status_code in (429, 503) and "retry-after" not in response.headers:
                missing += 1

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout_s) as client:
        await asyncio.gather(*(worker(client) for _ in range(connections)))
    seconds = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else 0
        )

    return RunResult(
        requests=len(latencies),
        seconds=seconds,
        codes=dict(codes),
        p50_ms=pct(0.50),
        p99_ms=pct(0.99),
        max_ms=latencies[-1] * 1000 if latencies else 0.0,
        socket_errors=dict(errors),
        missing_retry_after=missing,
        generator="httpx",
    )


def run_load(
    base: str,
    requests: list[Request],
    *,
    connections: int,
    duration: float,
    max_requests: int,
    timeout_s: float,
    root: Path,
    rate: float | None = None,
) -> RunResult:
    """Closed loop: each connection sends its next request when the last is
    answered; with ``rate``, each also waits ``connections / rate`` seconds
    first, which offers about ``rate`` requests/s whatever the service does
    (its refusals are fast)."""
    pace_ms = round(connections * 1000 / rate) if rate else 0
    pid = SERVER_PIDS.get(base)
    cpu_before = cpu_seconds(pid) if pid else 0.0
    if shutil.which("wrk"):
        result = run_wrk(
            base, requests, connections, duration, max_requests, timeout_s, root, pace_ms
        )
    else:
        result = asyncio.run(
            _httpx_load(base, requests, connections, duration, max_requests, timeout_s, pace_ms)
        )
    if pid:
        result.server_cpu_s = cpu_seconds(pid) - cpu_before
    return result


def _moments(count: int, holders: int) -> list[dt.datetime]:
    """One signing time per request: the ``k``-th request of a holder is signed
    ``k`` ms after the first, so that no two requests sign the same text (the
    service accepts each signed request and each live code once)."""
    start = now_utc()
    return [start + dt.timedelta(milliseconds=k // holders) for k in range(count)]


def verification_requests(instance: Instance, count: int | None = None) -> list[Request]:
    """``count`` fresh presentations (valid 30 s), each a different live code,
    rotated over the seeded holders."""
    headers = {
        "authorization": f"Bearer {instance.guard_token}",
        "content-type": "application/json",
    }
    n = len(instance.holders)
    return [
        Request(
            "POST",
            "/guard/verifications",
            headers,
            json.dumps(
                {
                    "presentation": instance.holders[k % n].device.present(
                        instance.holders[k % n].pass_text, moment
                    )
                }
            ).encode(),
        )
        for k, moment in enumerate(_moments(count or n, n))
    ]


def status_requests(instance: Instance, count: int | None = None) -> list[Request]:
    """``count`` fresh device signatures (valid 60 s), each signing a different
    time, rotated over the seeded holders."""
    n = len(instance.holders)
    out: list[Request] = []
    for k, moment in enumerate(_moments(count or n, n)):
        h = instance.holders[k % n]
        auth = sign_request(h.device.private_key, h.subject_id, "GET", "/me/status", now=moment)
        out.append(Request("GET", "/me/status", {"authorization": auth}))
    return out


def check_sample(base: str, request: Request, expect: dict[str, Any]) -> str | None:
    """One request before a run (the load must be of requests that succeed):
    None when it did, else what went wrong."""
    req = urllib.request.Request(
        base + request.path,
        data=request.body or None,
        headers=request.headers,
        method=request.method,
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            body = json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}: {exc.read()[:300]!r}"
    for key, value in expect.items():
        if body.get(key) != value:
            return f"unexpected answer: {body}"
    return None


# --- the enrollment rush -----------------------------------------------------------------------


async def enrollment_rush(
    base: str, instance: Instance, *, bad: int, real: int, timeout_s: float
) -> dict[str, Any]:
    import httpx

    secrets = load_secrets(instance.root / "secrets.json")
    db = Database(instance.url)
    out: dict[str, Any] = {}
    try:
        limits = httpx.Limits(max_connections=max(bad, real) + 10)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout_s) as client:
            device = HolderDevice.generate("ES256")
            minimal = {
                "challenge_nonce": "x" * 22,
                "declared_name": DECLARED_NAME,
                "device_public_key": base64.b64encode(device.public_key_der).decode(),
                "mrz": passport_mrz(0),
            }
            files = [("capture", ("c.jpg", b"not an image", "image/jpeg"))]

            async def post_bad() -> int | str:
                try:
                    r = await client.post("/enrollments", data=minimal, files=files)
                except httpx.HTTPError as exc:
                    return type(exc).__name__
                if r.status_code in (429, 503) and "retry-after" not in r.headers:
                    return f"{r.status_code} without Retry-After"
                return r.status_code

            t = time.perf_counter()
            results = await asyncio.gather(*(post_bad() for _ in range(bad)))
            out["bad"] = {
                "requests": bad,
                "seconds": round(time.perf_counter() - t, 2),
                "codes": dict(Counter(str(c) for c in results)),
            }

        # A fresh client: connections idle since the first phase may have been
        # closed by the server's 5 s keep-alive timeout meanwhile.
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout_s) as client:
            if real:
                service = EnrollmentService(db, secrets)
                images = {n: (FACES / n).read_bytes() for n in {*FRAMES, CAPTURE}}
                # Re-enrollments of seeded holders (their stored template is of
                # this face): each binds a new device key, a real write.
                jobs = []
                for i in range(real):
                    challenge = await service.issue_challenge(actions=ACTIONS)
                    jobs.append((i % len(instance.holders), challenge.nonce))

                async def post_real(i: int, nonce: str) -> tuple[int | str, float]:
                    data = {
                        "challenge_nonce": nonce,
                        "declared_name": DECLARED_NAME,
                        "device_public_key": base64.b64encode(
                            HolderDevice.generate("ES256").public_key_der
                        ).decode(),
                        "mrz": passport_mrz(i),
                    }
                    parts = [("frames", (n, images[n], "image/jpeg")) for n in FRAMES]
                    parts.append(("capture", (CAPTURE, images[CAPTURE], "image/jpeg")))
                    t0 = time.perf_counter()
                    try:
                        r = await client.post("/enrollments", data=data, files=parts)
                    except httpx.HTTPError as exc:
                        return type(exc).__name__, time.perf_counter() - t0
                    code: int | str = r.status_code
                    if r.status_code >= 400:
                        code = f"{r.status_code} {r.json().get('code')}"
                    return code, time.perf_counter() - t0

                t = time.perf_counter()
                done = await asyncio.gather(*(post_real(i, n) for i, n in jobs))
                waits = sorted(s for _, s in done)
                out["real"] = {
                    "requests": real,
                    "seconds": round(time.perf_counter() - t, 2),
                    "codes": dict(Counter(str(c) for c, _ in done)),
                    "p50_s": round(waits[len(waits) // 2], 2),
                    "max_s": round(waits[-1], 2),
                }

        # No half-written enrollment: every subject has a template and a
        # document; every holder (not a dependant) has a device key.
        s, d = tables.subjects, tables.subject_documents
        async with db.begin() as conn:
            total = (await conn.execute(sa.select(sa.func.count()).select_from(s))).scalar_one()
            no_template = (
                await conn.execute(
                    sa.select(sa.func.count())
                    .select_from(s)
                    .where(s.c.encrypted_template.is_(None))
                )
            ).scalar_one()
            no_device = (
                await conn.execute(
                    sa.select(sa.func.count())
                    .select_from(s)
                    .where(s.c.device_public_key.is_(None))
                    .where(s.c.subject_key.not_in(sa.select(tables.dependants.c.dependant_key)))
                )
            ).scalar_one()
            no_document = (
                await conn.execute(
                    sa.select(sa.func.count())
                    .select_from(s)
                    .where(s.c.subject_key.not_in(sa.select(d.c.subject_key)))
                )
            ).scalar_one()
        out["subjects"] = {
            "rows": total,
            "without_template": no_template,
            "holders_without_device_key": no_device,
            "without_document": no_document,
        }
        out["half_written"] = no_template + no_device + no_document
    finally:
        await db.dispose()
    return out


# --- the benchmark -----------------------------------------------------------------------------


def row(label: str, r: RunResult) -> dict[str, Any]:
    return {
        "run": label,
        "requests": r.requests,
        "seconds": round(r.seconds, 2),
        "per_second": round(r.rate),
        "ok_per_second": round(r.ok_rate),
        "p50_ms": round(r.p50_ms, 1),
        "p99_ms": round(r.p99_ms, 1),
        "max_ms": round(r.max_ms, 1),
        "server_cpu_s": round(r.server_cpu_s, 2),
        "server_cpu_ms_per_request": round(1000 * r.server_cpu_s / r.requests, 2)
        if r.requests
        else None,
        "codes": {str(k): v for k, v in sorted(r.codes.items())},
        "socket_errors": r.socket_errors,
        "missing_retry_after": r.missing_retry_after,
        "accepted": r.accepted,
        "generator": r.generator,
    }


def markdown(results: dict[str, Any]) -> str:
    """The results as the tables in bench/API.md."""
    out = [
        "| run | requests | req/s | p50 ms | p99 ms | max ms | server CPU ms/req | codes "
        "| ok: true |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in results["runs"]:
        if "skipped" in r:
            out.append(f"| {r['run']} | skipped: {r['skipped']} | | | | | | | |")
            continue
        out.append(
            f"| {r['run']} | {r['requests']:,} | {r['per_second']:,} | {r['p50_ms']} | "
            f"{r['p99_ms']} | {r['max_ms']} | {r['server_cpu_ms_per_request']} | "
            f"{json.dumps(r['codes'])} | {r.get('accepted', '')} |"
        )
    if results["overload"]:
        out += [
            "",
            "| overload run | offered req/s | answered req/s | 200/s | p99 ms | max ms "
            "| codes | socket errors | 429/503 without Retry-After | pass |",
            "|---|---:|---:|---:|---:|---:|---|---|---:|---|",
        ]
        for r in results["overload"]:
            errors = sum(r["socket_errors"].values())
            out.append(
                f"| {r['run']} | {r['offered_per_second'] or 'flood'} | {r['per_second']:,} | "
                f"{r['ok_per_second']:,} | {r['p99_ms']} | {r['max_ms']} | "
                f"{json.dumps(r['codes'])} | {errors} | {r['missing_retry_after']} | "
                f"{'yes' if r['pass'] else 'NO'} |"
            )
    for backend, rush in results["rush"].items():
        out.append("")
        out.append(f"Enrollment rush, {backend}: bad bodies {json.dumps(rush['bad'])}")
        if "real" in rush:
            out.append(f"; real faces {json.dumps(rush['real'])}")
        out.append(f"; subjects {json.dumps(rush['subjects'])}")
        if "verification_meanwhile" in rush:
            v = rush["verification_meanwhile"]
            out.append(
                f"; verifications meanwhile (about 100/s offered): {v['per_second']}/s, "
                f"p50 {v['p50_ms']} ms, p99 {v['p99_ms']} ms, max {v['max_ms']} ms, "
                f"codes {json.dumps(v['codes'])}, socket errors {json.dumps(v['socket_errors'])}"
            )
    return "\n".join(out) + "\n"


def guards_meanwhile(
    base: str, instance: Instance, root: Path, timeout_s: float, out: list[RunResult]
) -> None:
    """About 100 verifications/s for 15 s (run beside the enrollment rush)."""
    out.append(
        run_load(
            base,
            verification_requests(instance, 1_950),
            connections=20,
            duration=15,
            max_requests=1_900,
            timeout_s=timeout_s,
            root=root,
            rate=100,
        )
    )


def overload_verdict(r: RunResult) -> bool:
    bad_codes = sum(n for c, n in r.codes.items() if c not in OK_CODES)
    hung = r.socket_errors.get("timeout", 0)
    return bad_codes == 0 and hung == 0 and r.missing_retry_after == 0


RUNS: list[dict[str, Any]] = []
"""Rows of the last ``throughput_runs``."""


def throughput_runs(base: str, instance: Instance, root: Path, name: str, args: Any) -> None:
    """The saturation runs (and the paced one) against one server, into ``RUNS``."""
    load = {
        "duration": args.duration,
        # Never more than were signed: a signed request sent twice is refused.
        "max_requests": min(args.max_requests, args.presigned - 2 * args.connections),
        "timeout_s": args.timeout,
    }
    for what, make, expect in (
        ("verification", verification_requests, {"ok": True}),
        ("status", status_requests, {"colour": "green"}),
    ):
        label = f"{what} {name}"
        if what not in args.only:
            continue
        problem = check_sample(base, make(instance, 1)[0], expect)
        if problem is not None:
            RUNS.append({"run": label, "skipped": problem})
            print(json.dumps(RUNS[-1]), flush=True)
            continue
        reqs = make(instance, args.presigned)
        r = run_load(base, reqs, connections=args.connections, root=root, **load)
        RUNS.append(row(label, r))
        print(json.dumps(RUNS[-1]), flush=True)
    if args.paced:
        r = run_load(
            base,
            verification_requests(instance, args.presigned),
            connections=args.connections,
            root=root,
            rate=args.paced,
            **load,
        )
        RUNS.append(row(f"verification {name}, paced {args.paced:.0f}/s", r))
        print(json.dumps(RUNS[-1]), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--connections", type=int, default=32, help="for throughput runs")
    parser.add_argument("--overload-connections", type=int, default=1500)
    parser.add_argument(
        "--overload-rate", type=float, help="offered req/s; default 3x the 1-worker rate"
    )
    parser.add_argument("--max-requests", type=int, default=300_000, help="cap per run")
    parser.add_argument(
        "--presigned",
        type=int,
        default=80_000,
        help="requests signed afresh before each run (each is accepted once); a run "
        "sends at most this many, less twice the connections",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--holders", type=int, default=64)
    parser.add_argument("--rush-bad", type=int, default=300)
    parser.add_argument("--rush-real", type=int, default=16)
    parser.add_argument("--only", default="verification,status", help="which throughput runs")
    parser.add_argument(
        "--paced",
        type=float,
        help="also offer verifications at this fixed rate (req/s) to each worker count: "
        "the latency at the target rate rather than at saturation",
    )
    parser.add_argument("--no-rush", action="store_true")
    parser.add_argument("--no-faces", action="store_true", help="skip the real-face rush")
    parser.add_argument("--no-overload", action="store_true")
    parser.add_argument("--json", type=Path, help="write raw results here")
    parser.add_argument("--markdown", type=Path, help="write the results tables here")
    parser.add_argument(
        "--source",
        type=Path,
        help="serve from this copy of the package (to measure a candidate change)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="also run each throughput configuration against this copy of the package "
        "(e.g. `git worktree add /tmp/base <commit>`), right after the current tree's "
        "run, on the same instance: rows labelled '(baseline)'",
    )
    parser.add_argument("--setup-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    global SOURCE
    SOURCE = args.source
    if args.setup_only is not None:
        # A child of ``setup_with``: set up an instance with this copy of the package.
        template = (args.setup_only / "template.bin").read_bytes()
        save_instance(
            asyncio.run(setup_instance(args.backends, args.setup_only, args.holders, template))
        )
        return

    template = face_template()
    workers = [int(w) for w in args.workers.split(",")]
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "load_average_before": os.getloadavg(),
        "generator": "wrk" if shutil.which("wrk") else "httpx",
        "connections": args.connections,
        "duration_s": args.duration,
        "runs": [],
        "overload": [],
        "rush": {},
    }
    fast = {
        "HEALTHCODE_RATE_LIMIT_PER_MINUTE": str(HIGH_RATE_LIMIT),
        "HEALTHCODE_CALLER_RATE_PER_MINUTE": str(HIGH_RATE_LIMIT),
    }
    load = {
        "duration": args.duration,
        # Never more than were signed: a signed request sent twice is refused.
        "max_requests": min(
            args.max_requests,
            args.presigned - 2 * max(args.connections, args.overload_connections),
        ),
        "timeout_s": args.timeout,
    }
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory(prefix="hc-bench-api-") as tmp:
            root = Path(tmp)
            instance = asyncio.run(setup_instance(backend, root, args.holders, template))
            baseline = None
            try:
                if args.baseline is not None:
                    baseline = setup_with(
                        args.baseline, backend, root / "baseline", args.holders, template
                    )
                for n in workers:
                    trees: list[tuple[str, Instance, Path | None]] = [("", instance, None)]
                    if baseline is not None:
                        trees.append((" (baseline)", baseline, args.baseline))
                    for suffix, inst, tree in trees:
                        with server(inst, n, fast, tree) as base:
                            throughput_runs(base, inst, root, f"{backend} {n}w{suffix}", args)
                            results["runs"] += RUNS
                            RUNS.clear()
                if not args.no_overload:
                    sustained = next(
                        (
                            r["ok_per_second"]
                            for r in results["runs"]
                            if r["run"] == f"verification {backend} 1w" and "per_second" in r
                        ),
                        None,
                    )
                    rate = args.overload_rate or 3 * (sustained or 600)
                    overloads: list[tuple[str, dict[str, str], float | None, int]] = [
                        (f"paced {rate:.0f}/s", fast, rate, args.overload_connections),
                        ("flood", fast, None, args.overload_connections),
                    ]
                    if backend == "sqlite":
                        overloads.append(
                            (
                                f"paced {rate:.0f}/s, default rate limit",
                                {},
                                rate,
                                args.overload_connections,
                            )
                        )
                    for name, extra, offered, conns in overloads:
                        with server(instance, 1, extra) as base:
                            r = run_load(
                                base,
                                verification_requests(instance, args.presigned),
                                connections=conns,
                                root=root,
                                rate=offered,
                                **load,
                            )
                        entry = row(f"overload verification {backend} 1w, {name}", r)
                        entry["offered_per_second"] = round(offered) if offered else None
                        entry["pass"] = overload_verdict(r)
                        results["overload"].append(entry)
                        print(json.dumps(entry), flush=True)
                if not args.no_rush:
                    with server(instance, 2, fast) as base:
                        # Guards keep verifying (about 100/s) during the rush:
                        # how long do they wait while workers do face work?
                        side: list[RunResult] = []
                        guards = threading.Thread(
                            target=guards_meanwhile,
                            args=(base, instance, root, args.timeout, side),
                        )
                        guards.start()
                        rush = asyncio.run(
                            enrollment_rush(
                                base,
                                instance,
                                bad=args.rush_bad,
                                real=0 if args.no_faces else args.rush_real,
                                timeout_s=120.0,
                            )
                        )
                        guards.join()
                        rush["verification_meanwhile"] = row(
                            f"verification during the rush {backend} 2w", side[0]
                        )
                    results["rush"][backend] = rush
                    print(json.dumps({"rush": backend, **rush}), flush=True)
            finally:
                asyncio.run(teardown_instance(instance))
                if baseline is not None:
                    asyncio.run(teardown_instance(baseline))
    results["load_average_after"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    if args.markdown:
        args.markdown.write_text(markdown(results))
    print(json.dumps(results, indent=2, ensure_ascii=False))
    sys.exit(0)


if __name__ == "__main__":
    main()
