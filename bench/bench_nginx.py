"""Benchmark: verifications through nginx, one node and two, and the cost of the
Redis checks (issue 13, "Measure").

    .venv/bin/python bench/bench_nginx.py [--duration 8] [--connections 32]
        [--offered 2000] [--moderate 0.6] [--cases a,b,c,d] [--rounds 2]
        [--json bench/results/nginx.json]

One PostgreSQL instance (a throwaway database on 127.0.0.1:5432, dropped
afterwards) with seeded holders and passes (``bench_api.setup_instance``), and
nginx in front (deploy/nginx.conf rendered into a temporary directory and
run as this user on free ports by ``healthcode.testing.nginx``, its upstream
the nodes of the case):

* (a) one node without Redis;
* (b) one node with Redis (the system Redis at ``--redis-url``, under a key
  prefix of this run's own, deleted afterwards);
* (c) two nodes with the same Redis;
* (d) as (b), and nginx answers 503 itself beyond 32 requests in flight per
  node: deploy/nginx.conf's total cap (``limit_conn healthcode_total``, one
  key for all clients) at 32 per node worker. In (a) to (c) that cap is
  raised out of reach (4,096), as the per-client limits are.

``--rounds N`` runs the cases N times in turn: on a shared machine the spread
between rounds says how far other jobs moved the figures.

Every node is ``healthcode serve`` with **one worker** (``bench_api.server``).
Each case sends ``POST /guard/verifications`` through nginx, each request a
fresh live code (signed just before the run, every one different, dated ahead
by about the signing time, at most 9 s, so that none is stale when sent), so
that the replay check accepts all of them (``ok: true`` is counted, and must
equal the 200s):

* closed loop: ``--connections`` connections, each sending its next request
  when the last is answered: the most the case serves (req/s, p50/p99);
* offered rates: ``--offered`` req/s (the issue's 2,000/s) and ``--moderate``
  times case (a)'s closed-loop rate (the same absolute rate for every case), by
  wrk on a timetable: each wrk thread hands out send times spaced
  ``threads / rate`` apart (LuaJIT's ffi reads the monotonic clock) and a
  connection waits for its slot; a slot already past is sent at once. So the
  rate offered does not fall when answers slow down, up to
  ``--offered-connections`` requests in flight; beyond that it becomes a closed
  loop (the achieved rate shows it). wrk's latency counts from the actual send.

Reported per run: req/s, p50/p99/max, the share of non-200 answers, the
``ok: true`` count, and CPU milliseconds per request of each node (its process
and children, as ``bench_api`` measures), of nginx, of the database's server
processes serving this database (``pg_stat_activity``) and of redis-server
(``INFO cpu``; with Redis commands per request from ``INFO stats``; other jobs
using the same Redis add to both). Requests per node come from each node's
``/metrics`` (``healthcode_verifications_total``, and its refusals by code),
nginx's own refusals from its error log, and the Redis time-outs the nodes
logged. Then: the Redis cost ((a) against (b): throughput lost and node CPU
added per verification) and the two-node ratio ((c) against (b)). Before the
cases, the checks alone: the once-only check and the two limits of one
verification, through the service's own code, with Redis and without (the
``used_signatures`` insert), timed in this process.

A sanity count, not a test: in case (c) fresh live codes verified at node 1 are
sent again to node 2 (directly, not through nginx), which must refuse each as
``presentation_replayed``.

The generated nginx config differs from deploy/nginx.conf in: listen address
and port, the upstream servers, the per-client limits (all load here comes from
127.0.0.1, so ``limit_req`` is raised to 100,000 r/s and ``limit_conn`` to
4,096; the zones stay, so their cost is measured), the total cap (see case
(d)), ``access_log off`` (the
nodes' access logs are off too: ``--log-level warning``), temp paths in the
temporary directory and one nginx worker process. wrk's script is bench_api's
(its ``delay()`` replaced for the offered runs). The nodes run without
``--forwarded-allow-ips`` (``bench_api.server`` takes no extra arguments): every
request comes from 127.0.0.1 either way, so the limits count the same key.

The generator, nginx, the nodes, PostgreSQL and Redis share this machine's
cores: two nodes cannot show scaling on 2 cores. The CPU per request figures
carry over to a larger machine better than the rates do.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import re
import resource
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bench_api
import redis
import sqlalchemy as sa
from attrs import define
from bench_api import (
    HIGH_RATE_LIMIT,
    Instance,
    Request,
    RunResult,
    check_sample,
    cpu_seconds,
    face_template,
    run_load,
    server,
    setup_instance,
    teardown_instance,
    verification_requests,
)

import healthcode
from healthcode.core.auth import create_token
from healthcode.core.clock import now_utc
from healthcode.core.replay import PURPOSE_PRESENTATION, use_once
from healthcode.core.shared import ReplayCheckUnavailableError, SharedState
from healthcode.core.storage.database import Database
from healthcode.testing.nginx import NginxLimits, nginx_binary, running_nginx

ROOT = Path(__file__).resolve().parents[1]
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
RESULTS = Path(__file__).parent / "results" / "nginx.json"
CASES = {
    "a": ("1 node, no Redis", 1, False, None),
    "b": ("1 node, Redis", 1, True, None),
    "c": ("2 nodes, Redis", 2, True, None),
    "d": ("1 node, Redis, nginx caps in flight", 1, True, 32),
}
"""Case: name, nodes, Redis or not, and the requests in flight per node beyond
which nginx itself answers 503 (deploy/nginx.conf's total cap; None: out of reach)."""
BENCH_RATE = "100000r/s"
BENCH_CONN = 4096


# --- nginx -------------------------------------------------------------------------------


def bench_limits(nodes: int, cap_per_node: int | None) -> NginxLimits:
    """The limits of this bench's nginx: the per-client ones raised (all load
    comes from 127.0.0.1; the zones stay, so their cost is measured), and the
    total cap (deploy/nginx.conf's ``limit_conn healthcode_total``) at
    ``cap_per_node`` times the nodes, or raised out of reach when None."""
    total = BENCH_CONN if cap_per_node is None else cap_per_node * nodes
    return NginxLimits(
        per_client_rate=BENCH_RATE, per_client_in_flight=BENCH_CONN, total_in_flight=total
    )


@contextlib.contextmanager
def nginx(
    folder: Path, upstreams: list[str], cap_per_node: int | None = None
) -> Iterator[tuple[str, int]]:
    """nginx in front of ``upstreams``, as this user: its base URL and master pid."""
    ports = [int(u.rsplit(":", 1)[1]) for u in upstreams]
    with running_nginx(
        folder, ports, config=NGINX_CONF, limits=bench_limits(len(ports), cap_per_node)
    ) as proxy:
        yield proxy.url, proxy.pid


# --- the offered rate: wrk on a timetable --------------------------------------------------

TIMETABLE_LUA = r"""
-- Appended to bench_api's script: a later delay() replaces its fixed pause.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } hc_timespec;
int clock_gettime(int clk_id, hc_timespec *tp);
]]
local hc_ts = ffi.new("hc_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, hc_ts)  -- CLOCK_MONOTONIC
  return tonumber(hc_ts.tv_sec) * 1000 + tonumber(hc_ts.tv_nsec) / 1e6
end
local slot_ms = 1000 * nthreads / OFFERED
local next_slot = nil
function delay()
  local now = now_ms()
  -- Threads start half a slot apart, so their timetables interleave.
  if next_slot == nil then next_slot = now + id * slot_ms / nthreads end
  local wait = next_slot - now
  next_slot = next_slot + slot_ms
  if wait <= 0 then return 0 end
  return math.floor(wait)
end
"""


@contextlib.contextmanager
def timetable(rate: float) -> Iterator[None]:
    """While open, bench_api's wrk runs send on a timetable of ``rate`` req/s."""
    original = bench_api.WRK_SCRIPT
    bench_api.WRK_SCRIPT = original + TIMETABLE_LUA.replace("OFFERED", repr(float(rate)))
    try:
        yield
    finally:
        bench_api.WRK_SCRIPT = original


# --- fresh codes ---------------------------------------------------------------------------

MAX_AHEAD_S = 9.0
"""Live codes may be dated up to this far ahead (the verifier allows 10 s of skew)."""


@contextlib.contextmanager
def signed_ahead(seconds: float) -> Iterator[None]:
    """While open, bench_api signs live codes dated ``seconds`` ahead: codes
    signed for a long run (signing 16,000 takes 10 to 25 s on a busy 2-core
    machine) are then not already old when sent, and are refused as stale (30 s
    window) only if the service really answers late."""
    names = vars(bench_api)
    original = names["now_utc"]
    names["now_utc"] = lambda: original() + dt.timedelta(seconds=seconds)
    try:
        yield
    finally:
        names["now_utc"] = original


def fresh_verifications(instance: Instance, count: int) -> tuple[list[Request], float, float]:
    """``count`` fresh live codes, dated ahead by about the time signing them
    takes (at most ``MAX_AHEAD_S``): the requests, that time and the date shift."""
    started = time.perf_counter()
    verification_requests(instance, 200)  # the pace of signing now
    ahead = min(MAX_AHEAD_S, (time.perf_counter() - started) / 200 * count)
    with signed_ahead(ahead):
        reqs = verification_requests(instance, count)
    return reqs, time.perf_counter() - started, ahead


# --- what the servers spent ----------------------------------------------------------------


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads); 0 if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def database_backends(url: str) -> list[int]:
    """The PostgreSQL server processes connected to ``url``'s database now."""

    async def query() -> list[int]:
        db = Database(url)
        try:
            async with db.begin() as conn:
                rows = await conn.execute(
                    sa.text(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid()"
                    )
                )
                return [int(r[0]) for r in rows]
        finally:
            await db.dispose()

    return asyncio.run(query())


REFUSAL = re.compile(r'^healthcode_refusals_total\{code="([a-z_]+)"\} (\S+)$', re.M)


def node_counts(base: str, admin: str) -> dict[str, float]:
    """From the node's ``/metrics``: verifications (all labels summed) and
    refusals by code."""
    req = urllib.request.Request(f"{base}/metrics", headers={"authorization": f"Bearer {admin}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read().decode()
    out = {f"refused {code}": float(n) for code, n in REFUSAL.findall(text)}
    out["verifications"] = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("healthcode_verifications_total{")
    )
    return out


def redis_outages_logged(root: Path, base: str) -> int:
    """Lines of a node's log (``bench_api.server`` writes it) saying Redis was
    unreachable: a Redis call slower than 0.5 s counts as Redis down."""
    log = root / f"server-{base.rsplit(':', 1)[1]}.log"
    return log.read_text(errors="replace").count("Redis unreachable") if log.exists() else 0


@define
class Meter:
    """CPU of every server process, and work counts, around one run."""

    nodes: list[str]
    node_pids: list[int]
    nginx_pid: int
    database_url: str
    admin: str
    redis_client: redis.Redis | None
    nginx_log: Path
    before: dict[str, Any] | None = None

    def read(self) -> dict[str, Any]:
        pg = {pid: proc_cpu(pid) for pid in database_backends(self.database_url)}
        out: dict[str, Any] = {
            "nodes_cpu": [cpu_seconds(pid) for pid in self.node_pids],
            "nodes_counts": [node_counts(b, self.admin) for b in self.nodes],
            "redis_outages": sum(
                redis_outages_logged(self.nginx_log.parents[1], b) for b in self.nodes
            ),
            "nginx_cpu": cpu_seconds(self.nginx_pid),
            "pg_cpu": pg,
            # nginx logs each of its own limit refusals (at "error").
            "nginx_refusals": self.nginx_log.read_text().count(" by zone "),
        }
        if self.redis_client is not None:
            cpu = self.redis_client.info("cpu")
            stats = self.redis_client.info("stats")
            out["redis_cpu"] = float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])
            out["redis_commands"] = int(stats["total_commands_processed"])
        return out

    def start(self) -> None:
        self.before = self.read()

    def spent(self, requests: int) -> dict[str, Any]:
        """CPU ms per request (each node's over the verifications it answered)."""
        assert self.before is not None
        after, before = self.read(), self.before
        per = (lambda s: round(1000 * s / requests, 3)) if requests else (lambda s: None)
        node_cpu = [a - b for a, b in zip(after["nodes_cpu"], before["nodes_cpu"], strict=True)]
        node_req = [
            round(a["verifications"] - b["verifications"])
            for a, b in zip(after["nodes_counts"], before["nodes_counts"], strict=True)
        ]
        refused: dict[str, int] = {}
        for a, b in zip(after["nodes_counts"], before["nodes_counts"], strict=True):
            for k, v in a.items():
                if k != "verifications" and v - b.get(k, 0.0):
                    refused[k] = refused.get(k, 0) + round(v - b.get(k, 0.0))
        pg_cpu = sum(c - before["pg_cpu"].get(pid, 0.0) for pid, c in after["pg_cpu"].items())
        out: dict[str, Any] = {
            "node_requests": node_req,
            "node_cpu_s": [round(c, 2) for c in node_cpu],
            "node_cpu_ms_per_request": [
                round(1000 * c / n, 3) if n else None
                for c, n in zip(node_cpu, node_req, strict=True)
            ],
            "nodes_cpu_ms_per_request": per(sum(node_cpu)),
            "nginx_cpu_ms_per_request": per(after["nginx_cpu"] - before["nginx_cpu"]),
            "postgres_cpu_ms_per_request": per(pg_cpu),
            "nginx_refusals": after["nginx_refusals"] - before["nginx_refusals"],
            "node_refusals": refused,
            "redis_outages_logged": after["redis_outages"] - before["redis_outages"],
        }
        if "redis_cpu" in after:
            out["redis_cpu_ms_per_request"] = per(after["redis_cpu"] - before["redis_cpu"])
            commands = after["redis_commands"] - before["redis_commands"]
            out["redis_commands_per_request"] = round(commands / requests, 2) if requests else None
        return out


# --- runs ----------------------------------------------------------------------------------


def run_row(
    label: str, r: RunResult, offered: float | None, spent: dict[str, Any]
) -> dict[str, Any]:
    non_200 = sum(n for c, n in r.codes.items() if c != 200)
    return {
        "run": label,
        "offered_per_second": round(offered) if offered else None,
        "requests": r.requests,
        "seconds": round(r.seconds, 2),
        "per_second": round(r.rate),
        "p50_ms": round(r.p50_ms, 1),
        "p99_ms": round(r.p99_ms, 1),
        "max_ms": round(r.max_ms, 1),
        "codes": {str(k): v for k, v in sorted(r.codes.items())},
        "non_200_share": round(non_200 / r.requests, 4) if r.requests else None,
        "accepted": r.accepted,
        "ok_per_second": round(r.accepted / r.seconds) if r.accepted and r.seconds else 0,
        "missing_retry_after": r.missing_retry_after,
        "fresh_codes_refused": (r.codes.get(200, 0) - r.accepted)
        if r.accepted is not None
        else None,
        "socket_errors": r.socket_errors,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        **spent,
    }


def one_run(
    base: str,
    instance: Instance,
    meter: Meter,
    args: argparse.Namespace,
    label: str,
    offered: float | None,
) -> dict[str, Any]:
    connections = args.offered_connections if offered else args.connections
    expected = (offered or args.closed_loop_guess) * args.duration
    # Never more than were signed: a live code sent twice is refused.
    count = int(expected * 1.1) + 4 * connections
    reqs, signing_s, ahead = fresh_verifications(instance, count)
    load = {
        "connections": connections,
        "duration": args.duration,
        "max_requests": count - 2 * connections,
        "timeout_s": args.timeout,
        "root": instance.root,
    }
    meter.start()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    if offered:
        with timetable(offered):
            r = run_load(base, reqs, rate=offered, **load)
    else:
        r = run_load(base, reqs, **load)
    entry = run_row(label, r, offered, meter.spent(r.requests))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # wrk is the only child process waited for during the run.
    wrk_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    entry["wrk_cpu_ms_per_request"] = round(1000 * wrk_cpu / r.requests, 3) if r.requests else None
    entry["connections"] = connections
    entry["signed"] = count
    entry["signing_s"] = round(signing_s, 1)
    entry["codes_dated_ahead_s"] = round(ahead, 1)
    print(json.dumps(entry), flush=True)
    return entry


def post_json(url: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            answer: dict[str, Any] = json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return {"http_status": exc.code}
    return answer


def replay_across_nodes(nodes: list[str], instance: Instance, count: int) -> dict[str, Any]:
    """Fresh live codes verified at the first node, then sent to the second."""
    first_ok = refused_replayed = other = 0
    for req in verification_requests(instance, count):
        body = json.loads(req.body)
        a = post_json(f"{nodes[0]}/guard/verifications", instance.guard_token, body)
        b = post_json(f"{nodes[1]}/guard/verifications", instance.guard_token, body)
        first_ok += a.get("ok") is True
        if b.get("ok") is False and b.get("code") == "presentation_replayed":
            refused_replayed += 1
        else:
            other += 1
    return {
        "codes": count,
        "accepted_at_node_1": first_ok,
        "refused_as_replayed_at_node_2": refused_replayed,
        "other_answers_at_node_2": other,
    }


def delete_prefix(client: redis.Redis, prefix: str) -> int:
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for i in range(0, len(keys), 500):
        client.delete(*keys[i : i + 500])
    return len(keys)


def run_case(
    key: str,
    instance: Instance,
    admin: str,
    args: argparse.Namespace,
    moderate: list[float],
) -> dict[str, Any]:
    name, node_count, with_redis, cap = CASES[key]
    extra = {
        "HEALTHCODE_RATE_LIMIT_PER_MINUTE": str(HIGH_RATE_LIMIT),
        "HEALTHCODE_CALLER_RATE_PER_MINUTE": str(HIGH_RATE_LIMIT),
    }
    client = None
    prefix = f"hcbench-nginx-{secrets.token_hex(4)}"
    if with_redis:
        extra |= {"HEALTHCODE_REDIS_URL": args.redis_url, "HEALTHCODE_REDIS_PREFIX": prefix}
        client = redis.Redis.from_url(args.redis_url)
    case: dict[str, Any] = {
        "case": f"({key}) {name}" + (f" {cap}/node" if cap else ""),
        "nodes": node_count,
        "redis": with_redis,
        "nginx_in_flight_cap_per_node": cap,
    }
    try:
        with contextlib.ExitStack() as stack:
            nodes = [stack.enter_context(server(instance, 1, extra)) for _ in range(node_count)]
            base, nginx_pid = stack.enter_context(nginx(instance.root / f"nginx-{key}", nodes, cap))
            sample = verification_requests(instance, 1)[0]
            problem = check_sample(base, sample, {"ok": True})
            if problem is not None:
                raise RuntimeError(f"case ({key}): a fresh code was not accepted: {problem}")
            meter = Meter(
                nodes,
                [bench_api.SERVER_PIDS[n] for n in nodes],
                nginx_pid,
                instance.url,
                admin,
                client,
                instance.root / f"nginx-{key}" / "error.log",
            )
            runs = [one_run(base, instance, meter, args, f"({key}) closed loop", None)]
            if not moderate:
                moderate.append(round(args.moderate * runs[0]["per_second"], -1))
            for rate in [*moderate, args.offered]:
                runs.append(one_run(base, instance, meter, args, f"({key}) offered", rate))
            case["runs"] = runs
            if node_count > 1:
                case["replay_across_nodes"] = replay_across_nodes(
                    nodes, instance, args.replay_checks
                )
                print(json.dumps(case["replay_across_nodes"]), flush=True)
    finally:
        if client is not None:
            case["redis_keys_deleted"] = delete_prefix(client, prefix)
            client.close()
    return case


# --- the checks alone -------------------------------------------------------------------


def checks_alone(url: str, redis_url: str, count: int, concurrency: int) -> dict[str, Any]:
    """The once-only check and the limits of one verification, ``count`` times
    from this process (``concurrency`` at a time, like the requests a loaded
    node serves at once), through the service's own code: with Redis (the
    used-code ``SET NX`` and the two counters, client address and guard token,
    as a node with Redis makes them) and without (the ``used_signatures``
    insert on PostgreSQL; the limits are then in-process). Client CPU and wall
    time per verification, and redis-server's CPU and commands."""

    prefix = f"hcbench-nginx-{secrets.token_hex(4)}"
    client = redis.Redis.from_url(redis_url)

    async def measure(with_redis: bool, count: int) -> dict[str, Any]:
        db = Database(url)
        shared = SharedState(redis_url, prefix=prefix) if with_redis else None
        unavailable = [0]

        async def one() -> None:
            now = now_utc()
            expires = now + dt.timedelta(seconds=30)
            signed = secrets.token_bytes(48)
            if shared is None:
                assert await use_once(db, PURPOSE_PRESENTATION, signed, expires_at=expires)
                return
            try:
                assert await shared.use_once(signed, expires_at=expires, now=now)
            except ReplayCheckUnavailableError:
                unavailable[0] += 1  # a reply later than 0.5 s: counted, not fatal
            await shared.hit("addr:127.0.0.1", HIGH_RATE_LIMIT)
            await shared.hit("caller:bench", HIGH_RATE_LIMIT)

        try:
            for _ in range(50):  # connections and statements warmed up
                await one()
            info = client.info("cpu"), client.info("stats")
            cpu, wall = time.process_time(), time.perf_counter()

            async def worker(n: int) -> None:
                for _ in range(n):
                    await one()

            share = count // concurrency
            await asyncio.gather(*(worker(share) for _ in range(concurrency)))
            count = share * concurrency
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            after = client.info("cpu"), client.info("stats")
        finally:
            if shared is not None:
                await shared.close()
            await db.dispose()
        redis_cpu = sum(
            float(after[0][k]) - float(info[0][k]) for k in ("used_cpu_sys", "used_cpu_user")
        )
        commands = int(after[1]["total_commands_processed"]) - int(
            info[1]["total_commands_processed"]
        )
        return {
            "checks": count,
            "concurrency": concurrency,
            "client_cpu_ms_per_verification": round(1000 * cpu / count, 3),
            "wall_ms_per_verification": round(1000 * wall / count, 3),
            "redis_cpu_ms_per_verification": round(1000 * redis_cpu / count, 3),
            "redis_commands_per_verification": round(commands / count, 2),
            "replay_check_unavailable": unavailable[0],
        }

    try:
        out = {
            "redis": asyncio.run(measure(True, count)),
            "postgresql_no_redis": asyncio.run(measure(False, count)),
        }
    finally:
        delete_prefix(client, prefix)
        client.close()
    print(json.dumps({"checks_alone": out}), flush=True)
    return out


# --- summary -------------------------------------------------------------------------------


def closed(case: dict[str, Any]) -> dict[str, Any]:
    run: dict[str, Any] = case["runs"][0]
    return run


def summary(cases: dict[str, dict[str, Any]], offered: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "a" in cases and "b" in cases:
        a, b = closed(cases["a"]), closed(cases["b"])
        out["redis_cost"] = {
            "throughput_lost_share": round(1 - b["per_second"] / a["per_second"], 3),
            "node_cpu_ms_per_request_added": round(
                b["nodes_cpu_ms_per_request"] - a["nodes_cpu_ms_per_request"], 3
            ),
            "node_cpu_share_added": round(
                b["nodes_cpu_ms_per_request"] / a["nodes_cpu_ms_per_request"] - 1, 3
            ),
            "redis_server_cpu_ms_per_request": b.get("redis_cpu_ms_per_request"),
            "redis_commands_per_request": b.get("redis_commands_per_request"),
            "goal": "at most 10% of single-node throughput",
        }
    if "b" in cases and "c" in cases:
        b, c = closed(cases["b"]), closed(cases["c"])
        out["two_nodes_over_one"] = round(c["per_second"] / b["per_second"], 2)
        out["node_cpu_ms_per_request_one_and_two_nodes"] = [
            b["nodes_cpu_ms_per_request"],
            c["nodes_cpu_ms_per_request"],
        ]
    out["p99_at_offered"] = {
        case["case"]: {
            "offered": r["offered_per_second"],
            "achieved": r["per_second"],
            "p99_ms": r["p99_ms"],
            "non_200_share": r["non_200_share"],
            "goal_met": r["p99_ms"] < 50
            and r["per_second"] >= 0.97 * offered
            and r["non_200_share"] < 0.01,
        }
        for case in cases.values()
        for r in case["runs"]
        if r["offered_per_second"] == round(offered)
    }
    return out


def across_rounds(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, list[Any]]]:
    """Per case, each round's closed-loop rate and CPU, and what each offered
    rate got: the spread shows how much other jobs moved the figures."""
    out: dict[str, dict[str, list[Any]]] = {}
    for cases in rounds:
        for case in cases.values():
            row = out.setdefault(case["case"], {})
            for r in case["runs"]:
                what = (
                    f"offered {r['offered_per_second']}/s" if r["offered_per_second"] else "closed"
                )
                row.setdefault(f"{what}: req/s", []).append(r["per_second"])
                row.setdefault(f"{what}: ok:true/s", []).append(r["ok_per_second"])
                row.setdefault(f"{what}: p99 ms", []).append(r["p99_ms"])
                row.setdefault(f"{what}: node CPU ms/req", []).append(r["nodes_cpu_ms_per_request"])
    return out


def refusals(r: dict[str, Any]) -> str:
    by_code = ", ".join(
        f"{k.removeprefix('refused ')} {v:,}" for k, v in r["node_refusals"].items()
    )
    return f"{by_code or '0'}; {r['redis_outages_logged']}"


def markdown(results: dict[str, Any]) -> str:
    """One table row per run (CPU columns: ms per request sent, every answer
    counted, except "per node": per verification that node answered), then the
    Redis cost and the two-node ratio per round, then the figures across rounds."""
    out = [
        "| round | case | run | offered/s | req/s | p50 ms | p99 ms | non-200 | by nginx "
        "| by nodes; Redis timeouts logged "
        "| ok:true/s | node CPU ms/req | per node: verifications, CPU ms each | nginx "
        "| PostgreSQL | Redis | Redis cmds/req | wrk | load after |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for n, cases in enumerate(results["rounds"], 1):
        for case in cases.values():
            for r in case["runs"]:
                nodes = "; ".join(
                    f"{k:,}, {c}"
                    for k, c in zip(r["node_requests"], r["node_cpu_ms_per_request"], strict=True)
                )
                out.append(
                    f"| {n} | {case['case']} "
                    f"| {'offered' if r['offered_per_second'] else 'closed'} "
                    f"| {r['offered_per_second'] or '-'} | {r['per_second']:,} | {r['p50_ms']} "
                    f"| {r['p99_ms']} | {100 * r['non_200_share']:.1f}% | {r['nginx_refusals']:,} "
                    f"| {refusals(r)} | {r['ok_per_second']:,} "
                    f"| {r['nodes_cpu_ms_per_request']} | {nodes} "
                    f"| {r['nginx_cpu_ms_per_request']} | {r['postgres_cpu_ms_per_request']} "
                    f"| {r.get('redis_cpu_ms_per_request', '-')} "
                    f"| {r.get('redis_commands_per_request', '-')} "
                    f"| {r['wrk_cpu_ms_per_request']} "
                    f"| {' '.join(str(x) for x in r['load_average_after'])} |"
                )
    out.append("")
    for n, (cases, s) in enumerate(zip(results["rounds"], results["summary"], strict=True), 1):
        if "redis_cost" in s:
            rc = s["redis_cost"]
            out.append(
                f"Round {n}: Redis cost ((a) vs (b), closed loop): throughput "
                f"{-100 * rc['throughput_lost_share']:+.1f}% with Redis; node CPU "
                f"{rc['node_cpu_ms_per_request_added']:+} ms/req "
                f"({100 * rc['node_cpu_share_added']:+.1f}%); redis-server "
                f"{rc['redis_server_cpu_ms_per_request']} ms/req, "
                f"{rc['redis_commands_per_request']} commands/req."
            )
        if "two_nodes_over_one" in s:
            out.append(
                f"Round {n}: two nodes over one ((c) vs (b), closed loop): "
                f"{s['two_nodes_over_one']}x."
            )
        for case in cases.values():
            if "replay_across_nodes" in case:
                out.append(
                    f"Round {n}: replay across nodes: {json.dumps(case['replay_across_nodes'])}"
                )
    out += ["", "Across rounds (one value per round):", ""]
    for case, row in results["across_rounds"].items():
        out.append(f"* {case}: " + "; ".join(f"{k} {v}" for k, v in row.items()))
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per run")
    parser.add_argument("--connections", type=int, default=32, help="closed-loop connections")
    parser.add_argument("--offered", type=float, default=2000.0, help="offered req/s")
    parser.add_argument(
        "--moderate",
        type=float,
        default=0.6,
        help="also offer this fraction of case (a)'s closed-loop rate, in every case",
    )
    parser.add_argument(
        "--offered-connections",
        type=int,
        default=256,
        help="connections for the offered runs (the most requests in flight)",
    )
    parser.add_argument(
        "--closed-loop-guess",
        type=float,
        default=1500.0,
        help="req/s the closed loop might reach: how many codes to sign for it",
    )
    parser.add_argument("--cases", default="a,b,c,d")
    parser.add_argument(
        "--rounds", type=int, default=1, help="run the cases this many times, in turn"
    )
    parser.add_argument("--holders", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--replay-checks", type=int, default=50)
    parser.add_argument(
        "--checks-alone", type=int, default=2000, help="verifications' checks timed alone"
    )
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    nginx_path = nginx_binary()
    if not shutil.which("wrk") or nginx_path is None:
        raise SystemExit("bench_nginx needs wrk and nginx on PATH (apt-get install wrk nginx)")
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "nginx": subprocess.run(
            [nginx_path, "-v"], capture_output=True, text=True, check=False
        ).stderr.strip(),
        "workers_per_node": 1,
        "nginx_worker_processes": 1,
        "generator": "wrk (2 threads); offered runs on a per-thread timetable",
        "duration_s": args.duration,
        "connections": args.connections,
        "offered_connections": args.offered_connections,
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "commit": subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip(),
        "healthcode_imported_from": str(Path(healthcode.__file__).parent),
        "rounds": [],
    }
    template = face_template()
    moderate: list[float] = []
    with tempfile.TemporaryDirectory(prefix="hc-bench-nginx-") as tmp:
        instance = asyncio.run(setup_instance("postgresql", Path(tmp), args.holders, template))
        try:
            admin = asyncio.run(_admin_token(instance.url))
            if args.checks_alone:
                results["checks_alone"] = checks_alone(
                    instance.url, args.redis_url, args.checks_alone, args.connections
                )
            for _ in range(args.rounds):
                results["rounds"].append(
                    {
                        key: run_case(key, instance, admin, args, moderate)
                        for key in args.cases.split(",")
                    }
                )
        finally:
            asyncio.run(teardown_instance(instance))
    results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    results["summary"] = [summary(cases, args.offered) for cases in results["rounds"]]
    results["across_rounds"] = across_rounds(results["rounds"])
    args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(markdown(results))
    print(json.dumps(results["summary"], indent=2))


async def _admin_token(url: str) -> str:
    db = Database(url)
    try:
        return await create_token(db, "admin", "bench metrics")
    finally:
        await db.dispose()


if __name__ == "__main__":
    main()
