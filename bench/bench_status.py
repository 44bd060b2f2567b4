"""Benchmark: import 1,000,000 authority status rows into SQLite and PostgreSQL
(time, peak RSS sampled during the run), then status look-ups per second.

    .venv/bin/python bench/bench_status.py [--rows 1000000] [--lookups 5000] [--no-postgres]

Writes bench/STATUS.md. PostgreSQL: a throwaway database on
$HEALTHCODE_TEST_POSTGRES_URL's server (default 127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pluggy

import healthcode.plugins.authority_status as authority_status
from healthcode.core.models import MaskedDocument, Subject
from healthcode.core.passes import KeyStore
from healthcode.core.passes.service import PassService, load_subject
from healthcode.core.plugins import new_plugin_manager
from healthcode.core.privacy import OperatorSecrets, document_key, subject_id_hex
from healthcode.core.status import fetch_authority_entries, import_status_file, resolve_status
from healthcode.core.storage import tables
from healthcode.core.storage.database import init_instance, open_database
from healthcode.core.storage.testing import (
    DEFAULT_POSTGRES_SERVER,
    TEST_POSTGRES_ENV,
    create_postgres_database,
    drop_postgres_database,
)
from healthcode.testing.resident_id import random_resident_id

DAY = dt.date(2026, 11, 26)
NOON = dt.datetime(2026, 11, 26, 4, tzinfo=dt.UTC)
KIND = "cn_resident_id"


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class RssSampler(threading.Thread):
    """Samples RSS every 50 ms; keeps the peak and a trace keyed by progress."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_mib())
            time.sleep(0.05)


def generate(path: Path, rows: int, seed: int = 1) -> list[str]:
    """Write ``rows`` rows; return a sample of listed numbers for look-ups."""
    rng = random.Random(seed)
    sample: list[str] = []
    with path.open("w", encoding="utf-8") as fh:
        fh.write("kind,number,status\n")
        for i in range(rows):
            number = random_resident_id(rng)
            fh.write(f"{KIND},{number},{'red' if i % 4 == 0 else 'yellow'}\n")
            if i % max(1, rows // 10_000) == 0:
                sample.append(number)
    return sample


async def bench_backend(
    name: str,
    url: str,
    secrets_file: Path,
    csv_path: Path,
    listed: list[str],
    lookups: int,
    pm: pluggy.PluginManager,
) -> dict[str, Any]:
    await init_instance(url, secrets_file)
    db, secrets = await open_database(url, secrets_file)
    trace: list[tuple[float, float]] = []
    total = csv_path.stat().st_size
    sampler = RssSampler()
    base = rss_mib()
    sampler.start()

    def progress(done: int, _total: int) -> None:
        # RSS at each tenth of the file, to show it stays flat.
        if not trace or done / total >= trace[-1][0] + 0.1 or done == total:
            trace.append((done / total, rss_mib()))

    started = time.perf_counter()
    summary = await import_status_file(db, secrets, csv_path, day=DAY, pm=pm, progress=progress)
    seconds = time.perf_counter() - started
    sampler.stop.set()
    sampler.join()
    # Re-import of the same file (replace mode: delete + insert in one transaction).
    started = time.perf_counter()
    await import_status_file(db, secrets, csv_path, day=DAY, pm=pm)
    reimport = time.perf_counter() - started

    result: dict[str, Any] = {
        "backend": name,
        "rows": summary.rows_read,
        "entries": summary.entries,
        "seconds": seconds,
        "rows_per_s": summary.rows_read / seconds,
        "reimport_seconds": reimport,
        "rss_before": base,
        "rss_peak": sampler.peak,
        "trace": trace,
    }
    result.update(await bench_lookups(db, secrets, listed, lookups, pm))
    await db.dispose()
    return result


def _subject(secrets: OperatorSecrets, number: str) -> Subject:
    key = document_key(secrets, KIND, "CHN", number)
    return Subject(subject_id=subject_id_hex(key), masked=MaskedDocument(KIND, "X", "XX"))


async def bench_lookups(
    db: Any, secrets: OperatorSecrets, listed: list[str], n: int, pm: pluggy.PluginManager
) -> dict[str, float]:
    rng = random.Random(5)
    # Half listed people, half people nobody lists (green).
    numbers = [rng.choice(listed) if i % 2 else random_resident_id(rng) for i in range(n)]
    subjects = [_subject(secrets, number) for number in numbers]
    out: dict[str, float] = {}
    started = time.perf_counter()
    async with db.begin() as conn:
        for s in subjects:
            await fetch_authority_entries(conn, bytes.fromhex(s.subject_id), DAY)
    out["indexed_reads_per_s"] = n / (time.perf_counter() - started)
    for record in (False, True):
        started = time.perf_counter()
        for s in subjects:
            await resolve_status(db, s, now=NOON, pm=pm, record=record)
        out[f"resolve_per_s_record_{record}".lower()] = n / (time.perf_counter() - started)

    # Concurrency: 16 tasks sharing the engine's pool.
    async def worker(chunk: list[Subject]) -> None:
        for s in chunk:
            await resolve_status(db, s, now=NOON, pm=pm, record=False)

    started = time.perf_counter()
    await asyncio.gather(*(worker(subjects[i::16]) for i in range(16)))
    out["resolve_per_s_16_tasks"] = n / (time.perf_counter() - started)
    out.update(await bench_holder_lookups(db, subjects, pm))
    return out


async def bench_holder_lookups(
    db: Any, subjects: list[Subject], pm: pluggy.PluginManager
) -> dict[str, float]:
    """A holder's own look-up (``PassService.current_status``, what ``GET
    /me/status`` calls after authentication) against the path it replaced
    (read the subject, then ``resolve_status``), in the same run on the same
    subjects: the first look-up of each subject today (nothing cached) and a
    repeated one. CPU time of this process (SQLite: aiosqlite's thread too)."""
    keys = KeyStore(Path(tempfile.mkdtemp()) / "keys")
    keys.init("110000", "北京市")
    passes = PassService(db, keys, pm=pm)
    now = dt.datetime.now(dt.UTC)
    unique = list({s.subject_id: s for s in subjects}.values())
    async with db.begin() as conn:
        for s in unique:
            key = bytes.fromhex(s.subject_id)
            await conn.execute(
                tables.subjects.insert().values(
                    subject_key=key,
                    kind=KIND,
                    masked_name="X",
                    masked_number="11**********1X",
                    created_at=now,
                    updated_at=now,
                )
            )

    async def replaced(subject_id: str) -> None:
        async with db.begin() as conn:
            subject, _ = await load_subject(conn, bytes.fromhex(subject_id))
        await resolve_status(db, subject, now=NOON, pm=pm, record=False)

    async def holder(subject_id: str) -> None:
        await passes.current_status(subject_id, now=NOON)

    out: dict[str, float] = {}
    for label, call in (("baseline", replaced), ("first", holder), ("repeated", holder)):
        started, cpu = time.perf_counter(), time.process_time()
        for s in unique:
            await call(s.subject_id)
        seconds = time.perf_counter() - started
        out[f"holder_lookup_per_s_{label}"] = len(unique) / seconds
        out[f"holder_lookup_cpu_ms_{label}"] = 1000 * (time.process_time() - cpu) / len(unique)
    return out


def write_report(path: Path, results: list[dict[str, Any]], rows: int, gen_s: float) -> None:
    lines = [
        "# Status import and look-up benchmark",
        "",
        f"`bench/bench_status.py --rows {rows}` on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{dt.date.today().isoformat()}. One process, one import transaction per run; "
        "numbers canonicalised through the id_card plugin and HMAC-hashed on the way in. "
        f"Generating the file took {gen_s:.1f} s (not counted).",
        "",
        "| backend | rows | import s | rows/s | re-import s | RSS before MiB | peak RSS MiB "
        "| indexed reads/s | resolve/s | resolve+record/s | resolve/s (16 tasks) "
        "| holder look-up/s: replaced path, first, repeated "
        "| CPU ms per holder look-up: replaced, first, repeated |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['backend']} | {r['rows']:,} | {r['seconds']:.1f} | {r['rows_per_s']:,.0f} "
            f"| {r['reimport_seconds']:.1f} | {r['rss_before']:.0f} | {r['rss_peak']:.0f} "
            f"| {r['indexed_reads_per_s']:,.0f} | {r['resolve_per_s_record_false']:,.0f} "
            f"| {r['resolve_per_s_record_true']:,.0f} | {r['resolve_per_s_16_tasks']:,.0f} "
            f"| {r['holder_lookup_per_s_baseline']:,.0f}, {r['holder_lookup_per_s_first']:,.0f}, "
            f"{r['holder_lookup_per_s_repeated']:,.0f} "
            f"| {r['holder_lookup_cpu_ms_baseline']:.2f}, {r['holder_lookup_cpu_ms_first']:.2f}, "
            f"{r['holder_lookup_cpu_ms_repeated']:.2f} |"
        )
    lines += ["", "RSS (MiB) as the import progresses, sampled at each tenth of the file:", ""]
    for r in results:
        trace = ", ".join(f"{frac:.0%}: {mib:.0f}" for frac, mib in r["trace"])
        lines.append(f"- {r['backend']}: {trace}")
    lines += [
        "",
        "Memory stays flat: rows stream in batches of 5,000 and only counts are kept.",
        "Look-ups: half of the subjects are listed, half are not; `resolve` is the full",
        "path (one indexed read + every status hook + combining), `+record` also writes",
        "the audit row of the decision.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=5_000)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("STATUS.md"))
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    pm = new_plugin_manager(autoload=False)
    if not pm.is_registered(authority_status):
        pm.register(authority_status, name="authority_status")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        csv_path = tmpdir / "status.csv"
        started = time.perf_counter()
        listed = generate(csv_path, args.rows)
        gen_s = time.perf_counter() - started
        print(f"generated {args.rows:,} rows in {gen_s:.1f} s", file=sys.stderr)
        secrets_file = tmpdir / "secrets.json"
        results.append(
            asyncio.run(
                bench_backend(
                    "SQLite",
                    f"sqlite:///{tmpdir / 'hc.db'}",
                    secrets_file,
                    csv_path,
                    listed,
                    args.lookups,
                    pm,
                )
            )
        )
        print(results[-1], file=sys.stderr)
        if not args.no_postgres:
            server = os.environ.get(TEST_POSTGRES_ENV, "").strip() or DEFAULT_POSTGRES_SERVER
            url = asyncio.run(create_postgres_database(server, "healthcode_bench"))
            try:
                results.append(
                    asyncio.run(
                        bench_backend(
                            "PostgreSQL", url, secrets_file, csv_path, listed, args.lookups, pm
                        )
                    )
                )
                print(results[-1], file=sys.stderr)
            finally:
                asyncio.run(drop_postgres_database(server, url))
    write_report(args.out, results, args.rows, gen_s)
    if args.json:
        record = {"rows": args.rows, "load_average_after": os.getloadavg(), "results": results}
        args.json.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"wrote {args.out}; max RSS {max_rss:.0f} MiB")


if __name__ == "__main__":
    main()
