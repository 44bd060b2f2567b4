"""MRZ from photos: our reader vs raw ``passporteye.read_mrz``, on the same images.

Generated photos (healthcode.testing.synthetic_documents: TD3, TD2, TD1, CR,
CT, CS at four degradation levels) plus the specimens in tests/data/documents.
An image counts as correct when every field of the document read from it
(kind, number, code, states, names, dates, sex) equals the ground truth parsed
from the generated MRZ text. passporteye's text is parsed by the same parser.
Times are per image, decoding included, one process per core.

    .venv/bin/python bench/bench_ocr.py --count 320 --out bench/OCR.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

TODAY = dt.date(2026, 11, 26)
DOCUMENTS = Path(__file__).resolve().parents[1] / "tests" / "data" / "documents"
SPECIMENS = {
    "specimen_passport_td3.png": "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\n"
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
    "specimen_passport_td3.jpg": "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\n"
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
    "specimen_id_td2.png": "I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<\n"
    "D231458907UTO7408122F1204159<<<<<<<6",
}


def _fields(document: Any) -> tuple[Any, ...]:
    return (
        document.kind, document.number, document.document_code, document.issuing_state,
        document.surname, document.given_names, document.nationality, document.birth_date,
        document.sex, document.expiry_date,
    )  # fmt: skip


def _truth(mrz: str) -> tuple[Any, ...]:
    from healthcode.core.documents import make_submission, parse_document

    return _fields(parse_document(make_submission(mrz=mrz)[0]))


def _ours(data: bytes) -> tuple[tuple[Any, ...] | None, float]:
    from healthcode.core.documents import make_submission, parse_document
    from healthcode.core.errors import HealthcodeError

    started = time.perf_counter()
    try:
        document = parse_document(make_submission(image=data)[0])
        fields: tuple[Any, ...] | None = _fields(document)
    except HealthcodeError:
        fields = None
    return fields, time.perf_counter() - started


def _raw(data: bytes) -> tuple[tuple[Any, ...] | None, float]:
    from healthcode.core.documents import make_submission, parse_document
    from healthcode.core.errors import HealthcodeError
    from healthcode.plugins.mrz_ocr.engine import passporteye_read

    started = time.perf_counter()
    text = passporteye_read(data)
    elapsed = time.perf_counter() - started
    if not text:
        return None, elapsed
    try:
        return _fields(parse_document(make_submission(mrz=text)[0])), elapsed
    except HealthcodeError:
        return None, elapsed


def _one(job: tuple[str, str, str, bytes]) -> tuple[str, str, bool, float, bool, float]:
    level, layout, mrz, data = job
    truth = _truth(mrz)
    ours, ours_s = _ours(data)
    raw, raw_s = _raw(data)
    return level, layout, ours == truth, ours_s, raw == truth, raw_s


def _jobs(count: int, seed: int) -> list[tuple[str, str, str, bytes]]:
    from healthcode.testing.synthetic_documents import synthetic_batch

    jobs: list[tuple[str, str, str, bytes]] = [
        (d.level, d.layout, d.mrz, d.image) for d in synthetic_batch(seed, count, today=TODAY)
    ]
    for name, mrz in SPECIMENS.items():
        jobs.append(("specimen", name, mrz, (DOCUMENTS / name).read_bytes()))
    return jobs


def _pct(values: list[bool]) -> str:
    return f"{100 * sum(values) / len(values):.1f}%" if values else "-"


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(int(0.95 * len(ordered)), len(ordered) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=320)
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    jobs = _jobs(args.count, args.seed)
    results = []
    with ProcessPoolExecutor(args.workers) as pool:
        for index, result in enumerate(pool.map(_one, jobs, chunksize=4)):
            results.append(result)
            if index % 40 == 0:
                print(f"{index}/{len(jobs)}", file=sys.stderr)
    by_level: dict[str, list[tuple[str, str, bool, float, bool, float]]] = defaultdict(list)
    for row in results:
        by_level[row[0]].append(row)
    lines = [
        f"# MRZ from photos: healthcode vs raw passporteye ({len(results)} images, "
        f"seed {args.seed}, {args.workers} workers)",
        "",
        "| level | images | healthcode fully correct | raw passporteye fully correct "
        "| healthcode median / p95 s | passporteye median / p95 s |",
        "|---|---|---|---|---|---|",
    ]
    for level in ("clean", "mild", "moderate", "severe", "specimen", "all"):
        rows = results if level == "all" else by_level.get(level, [])
        if not rows:
            continue
        ours_t = [r[3] for r in rows]
        raw_t = [r[5] for r in rows]
        lines.append(
            f"| {level} | {len(rows)} | {_pct([r[2] for r in rows])} "
            f"| {_pct([r[4] for r in rows])} "
            f"| {statistics.median(ours_t):.2f} / {_p95(ours_t):.2f} "
            f"| {statistics.median(raw_t):.2f} / {_p95(raw_t):.2f} |"
        )
    lines += ["", "Per layout (healthcode / passporteye, all levels):", ""]
    by_layout: dict[str, list[tuple[str, str, bool, float, bool, float]]] = defaultdict(list)
    for row in results:
        by_layout[row[1]].append(row)
    for layout, rows in sorted(by_layout.items()):
        lines.append(
            f"- {layout}: {_pct([r[2] for r in rows])} / {_pct([r[4] for r in rows])} "
            f"({len(rows)} images)"
        )
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
