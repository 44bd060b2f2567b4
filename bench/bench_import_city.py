"""Benchmark: a city-scale authority list imported into PostgreSQL (issue 13).

    .venv/bin/python bench/bench_import_city.py [--rows 22000000] [--baseline-rows 200000]

Generates ``--rows`` resident-ID rows on disk, imports them (COPY into a new
table, swapped in per day and source), and reports the time, rows per second,
the importing process's peak RSS and the latency of status look-ups made by a
concurrent reader (another process) during the import. The baseline, in the
same run on the first ``--baseline-rows`` rows of the same file, is the old
path: batched ``INSERT ... ON CONFLICT`` (``insert_only=True``), against the
COPY path on the same rows. A per-row profile on a sample compares the
row-by-row keying (one parse per row) with the bulk keying the import uses,
and says where the time goes (reading, keying, the HMAC, COPY).
Results: bench/results/import_city.json.
A throwaway database on $HEALTHCODE_TEST_POSTGRES_URL's server (default
127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import logging
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_status import RssSampler, rss_mib

from healthcode.core.plugins import get_plugin_manager
from healthcode.core.privacy import DocumentKeyer, OperatorSecrets, document_key
from healthcode.core.status import import_status_file
from healthcode.core.status.rows import BatchKeyer, InvalidRow, RowKeyer, read_records, read_rows
from healthcode.core.storage import tables
from healthcode.core.storage.database import Database, init_instance, open_database
from healthcode.core.storage.testing import (
    create_postgres_database,
    drop_postgres_database,
    postgres_server_url,
)
from healthcode.plugins.id_card.bulk import CHECK_CHARS, WEIGHTS

DAY = dt.date(2026, 11, 26)
KIND = "cn_resident_id"
DIVISIONS = ("110101", "110105", "110108", "310104", "440305")
RESULTS = Path(__file__).parent / "results" / "import_city.json"


def numbers_block(start: int, count: int) -> list[str]:
    """Distinct valid resident-ID numbers ``start`` to ``start + count``:
    division, birth day (one per 5,000 numbers from 1950-01-01), sequence;
    built with numpy (a city's 22 million in seconds)."""
    i = np.arange(start, start + count, dtype=np.int64)
    born = np.datetime64("1950-01-01") + (i // 5000).astype("timedelta64[D]")
    year = born.astype("datetime64[Y]").astype(np.int64) + 1970
    month_start = born.astype("datetime64[M]")
    month = month_start.astype(np.int64) % 12 + 1
    day = (born - month_start.astype("datetime64[D]")).astype(np.int64) + 1
    division = np.array([int(d) for d in DIVISIONS], dtype=np.int64)[i % len(DIVISIONS)]
    body = (((division * 10_000 + year) * 100 + month) * 100 + day) * 1000 + (
        i // 5
    ) % 1000  # 17 digits
    digits = (body[:, None] // 10 ** np.arange(16, -1, -1, dtype=np.int64)) % 10
    check = CHECK_CHARS[(digits @ WEIGHTS) % 11]
    raw = np.concatenate([(digits + ord("0")).astype(np.uint8), check[:, None]], axis=1)
    text = raw.tobytes().decode("ascii")
    return [text[k : k + 18] for k in range(0, 18 * count, 18)]


def generate(path: Path, rows: int, samples: int) -> list[str]:
    """Write ``rows`` rows (a quarter red); return ``samples`` listed numbers."""
    every = max(1, rows // samples)
    sample: list[str] = []
    colours = ("red", "yellow", "yellow", "yellow")
    with path.open("w", encoding="utf-8") as fh:
        fh.write("kind,number,status\n")
        for start in range(0, rows, 1_000_000):
            block = numbers_block(start, min(1_000_000, rows - start))
            fh.write(
                "".join(
                    f"{KIND},{number},{colours[(start + k) % 4]}\n"
                    for k, number in enumerate(block)
                )
            )
            sample.extend(block[(-start) % every :: every])
    return sample


def head(path: Path, rows: int, out: Path) -> None:
    with path.open(encoding="utf-8") as src, out.open("w", encoding="utf-8") as dst:
        for line in itertools.islice(src, rows + 1):
            dst.write(line)


# --- the concurrent reader (another process) -------------------------------------------------


def _reader(url: str, keys: list[bytes], stop: Any, out: Any) -> None:
    async def run() -> list[tuple[float, float]]:
        db = Database(url)
        entries = tables.status_entries
        import sqlalchemy as sa

        latencies: list[tuple[float, float]] = []
        try:
            for key in itertools.cycle(keys):
                if stop.is_set():
                    break
                started = time.perf_counter()
                async with db.begin() as conn:
                    await conn.execute(
                        sa.select(entries.c.colour).where(
                            (entries.c.day == DAY) & (entries.c.subject_key == key)
                        )
                    )
                latencies.append((time.time(), time.perf_counter() - started))
                await asyncio.sleep(0.01)  # about 100 look-ups a second
        finally:
            await db.dispose()
        return latencies

    out.put(asyncio.run(run()))


def _percentiles(samples: list[tuple[float, float]], ended: float) -> dict[str, float]:
    """Look-up latencies (ms) made while the import ran, and when the slowest
    one started, in seconds before the import ended (the swap is at the end)."""
    if not samples:
        return {}
    ordered = sorted(latency for _, latency in samples)
    worst_at = max(samples, key=lambda s: s[1])[0]

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {
        "count": len(ordered),
        "p50_ms": at(0.5),
        "p99_ms": at(0.99),
        "max_ms": round(ordered[-1] * 1000, 2),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
        "max_started_s_before_end": round(ended - worst_at, 2),
    }


class _StageLog(logging.Handler):
    """The import's own account of its stages (COPY path): seconds by stage."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.stages: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if text.startswith("status import stages"):
            for word in text.split():
                name, _, value = word.partition("=")
                if name.endswith("_s"):
                    self.stages[name] = float(value)


async def timed_import(
    url: str, secrets_file: Path, path: Path, *, insert_only: bool, sample_keys: list[bytes]
) -> dict[str, Any]:
    db, secrets = await open_database(url, secrets_file)
    ctx = mp.get_context("spawn")
    stop, out = ctx.Event(), ctx.Queue()
    reader = ctx.Process(target=_reader, args=(url, sample_keys, stop, out))
    reader.start()
    sampler = RssSampler()
    base = rss_mib()
    stages = _StageLog()
    logging.getLogger("healthcode.core.status").addHandler(stages)
    logging.getLogger("healthcode.core.status").setLevel(logging.INFO)
    sampler.start()
    try:
        await asyncio.sleep(1.0)  # the reader's first look-ups, before the import
        began, started = time.time(), time.perf_counter()
        summary = await import_status_file(
            db, secrets, path, day=DAY, pm=get_plugin_manager(), insert_only=insert_only
        )
        seconds = time.perf_counter() - started
        ended = time.time()
    finally:
        logging.getLogger("healthcode.core.status").removeHandler(stages)
        sampler.stop.set()
        sampler.join()
        stop.set()
        latencies = out.get()
        reader.join()
        await db.dispose()
    return {
        "path": "insert" if insert_only else "copy",
        "rows": summary.rows_read,
        "entries": summary.entries,
        "seconds": round(seconds, 2),
        "rows_per_s": round(summary.rows_read / seconds),
        "stages_s": stages.stages,
        "rss_before_mib": round(base, 1),
        "rss_peak_mib": round(sampler.peak, 1),
        "lookups_during_import": _percentiles(
            [(at, lat) for at, lat in latencies if began <= at <= ended], ended
        ),
    }


# --- where the time goes, per row -----------------------------------------------------------


async def profile(url: str, secrets: OperatorSecrets, path: Path, rows: int) -> dict[str, Any]:
    """Microseconds per row for each stage on the first ``rows`` rows: the
    row-by-row path (``read_rows`` and ``RowKeyer``, one parse hook call per
    row, what imports did before the bulk path) against the bulk path
    (``read_records`` and ``BatchKeyer``), then the COPY of the keyed rows."""
    pm = get_plugin_manager()
    with path.open(encoding="utf-8", newline="") as fh:
        started = time.perf_counter()
        raw = list(itertools.islice(read_rows(fh, "csv"), rows))
        read_rows_s = time.perf_counter() - started
    keyer = RowKeyer(secrets, pm)
    started = time.perf_counter()
    for r in raw:
        keyer(r)  # type: ignore[arg-type]
    row_key_s = time.perf_counter() - started
    with path.open(encoding="utf-8", newline="") as fh:
        started = time.perf_counter()
        records = list(itertools.islice(read_records(fh, "csv"), rows))
        read_records_s = time.perf_counter() - started
    bulk = BatchKeyer(secrets, pm)
    started = time.perf_counter()
    batches = [bulk(records[i : i + 50_000]) for i in range(0, len(records), 50_000)]
    bulk_key_s = time.perf_counter() - started
    numbers = [r[2] for r in records if not isinstance(r, InvalidRow)]
    started = time.perf_counter()
    DocumentKeyer(secrets).keys(KIND, "CHN", numbers)
    hmac_s = time.perf_counter() - started
    copied = [
        (key, colour.value, colour.severity)
        for batch in batches
        for key, colour in zip(batch.keys, batch.colours, strict=True)
    ]
    db = Database(url)
    try:
        async with db.begin() as conn:
            import sqlalchemy as sa

            await conn.execute(
                sa.text("CREATE TEMPORARY TABLE profile_copy (LIKE status_entries) ON COMMIT DROP")
            )
            await conn.execute(
                sa.text(
                    f"ALTER TABLE profile_copy ALTER COLUMN day SET DEFAULT DATE '{DAY}', "
                    "ALTER COLUMN source SET DEFAULT 'profile'"
                )
            )
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            started = time.perf_counter()
            for i in range(0, len(copied), 50_000):
                await driver.copy_records_to_table(
                    "profile_copy",
                    records=copied[i : i + 50_000],
                    columns=("subject_key", "colour", "severity"),
                )
            copy_s = time.perf_counter() - started
    finally:
        await db.dispose()
    n = len(raw)

    def us(seconds: float) -> float:
        return round(seconds / n * 1e6, 2)

    return {
        "rows": n,
        "row_by_row": {"read_us_per_row": us(read_rows_s), "key_us_per_row": us(row_key_s)},
        "bulk": {
            "read_us_per_row": us(read_records_s),
            "key_us_per_row": us(bulk_key_s),
            "of_which_hmac_us_per_row": us(hmac_s),
        },
        "bulk_over_row_by_row": round((read_rows_s + row_key_s) / (read_records_s + bulk_key_s), 2),
        "copy_us_per_row": us(copy_s),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="hc-city-"))
    big, small = workdir / "city.csv", workdir / "baseline.csv"
    started = time.perf_counter()
    sample = generate(big, args.rows, 2000)
    generate_s = time.perf_counter() - started
    head(big, min(args.baseline_rows, args.rows), small)
    server = postgres_server_url()
    url = await create_postgres_database(server, "healthcode_bench_city")
    secrets_file = workdir / "secrets.json"
    try:
        await init_instance(url, secrets_file)
        db, secrets = await open_database(url, secrets_file)
        await db.dispose()
        keys = [document_key(secrets, KIND, "CHN", n) for n in sample]
        prof = await profile(url, secrets, big, min(50_000, args.rows))
        runs = []
        # The baseline and the COPY path on the same (smaller) list, then the city.
        for path, insert_only in ((small, True), (small, False), (big, False)):
            print(f"importing {path.name} insert_only={insert_only} ...", file=sys.stderr)
            runs.append(
                await timed_import(
                    url, secrets_file, path, insert_only=insert_only, sample_keys=keys
                )
            )
            print(json.dumps(runs[-1]), file=sys.stderr)
    finally:
        await drop_postgres_database(server, url)
        for file in (big, small):
            file.unlink(missing_ok=True)
    baseline, copy_small, city = runs
    city_s = city["seconds"]
    return {
        "rows": args.rows,
        "generate_seconds": round(generate_s, 1),
        "baseline_insert": baseline,
        "copy_same_rows": copy_small,
        "copy_over_insert_speedup": round(baseline["seconds"] / copy_small["seconds"], 2),
        "city": city,
        "extrapolated_22m_seconds": round(city_s * 22_000_000 / city["rows"]),
        "profile": prof,
        "loadavg_after": Path("/proc/loadavg").read_text().split()[:3],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=22_000_000)
    parser.add_argument("--baseline-rows", type=int, default=200_000)
    args = parser.parse_args()
    print("loadavg before:", Path("/proc/loadavg").read_text().strip(), file=sys.stderr)
    result = asyncio.run(main_async(args))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
