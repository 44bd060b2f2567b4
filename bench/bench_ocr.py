"""MRZ from photos: our reader vs raw ``passporteye.read_mrz``, on the same images.

Generated photos (healthcode.testing.synthetic_documents: TD3, TD2, TD1, CR,
CT, CS at four degradation levels) plus the specimens in tests/data/documents.
An image counts as correct when every field of the document read from it
(kind, number, code, states, names, dates, sex) equals the ground truth parsed
from the generated MRZ text. passporteye's text is parsed by the same parser.
Times are per image, decoding included, one process per core.

    .venv/bin/python bench/bench_ocr.py --count 320 --out bench/OCR.md

``--hard``: the set that does not flatter (issue 15): each image at the
moderate level plus one hardship (``synthetic_documents.HARDSHIPS``: MRZ
fonts other than OCR-B, worn print, moire, motion blur, steep perspective,
heavy JPEG, a small page in a large photo, quarter turns, low contrast,
glare), per layout and per hardship, and the real phone photos in
tests/data/documents on a line of their own; ours against raw passporteye and
against the second engine alone (PP-OCR's recogniser on our located strips,
no templates, no tesseract, no merging), with a JSON file of every row.

    .venv/bin/python bench/bench_ocr.py --hard --count 120 \
        --json bench/results/ocr_hard.json --out /tmp/ocr_hard.md
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
REAL_PHOTOS = {
    # Phone photos of specimen data pages, transcribed by eye (every check digit holds).
    "real_handheld_card_photo.jpg": "PCAZEQAQARIN<<FIDAN<<<<<<<<<<<<<<<<<<<<<<<<<\n"
    "C946302620AZE6707297F23031072W12IMJ<<<<<<<40",
    "real_passport_page_on_desk.jpg": "PCAZEARGEDAS<<CEYLA<<<<<<<<<<<<<<<<<<<<<<<<<\n"
    "C051777748AZE7611175F2201133S2SSBW3<<<<<<<26",
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


def _second_engine(data: bytes) -> tuple[tuple[Any, ...] | None, float]:
    """PP-OCR's recogniser alone on the zone our locator finds (see the module doc)."""
    from healthcode.core.documents import make_submission, parse_document
    from healthcode.core.errors import HealthcodeError
    from healthcode.core.images import decode_image
    from healthcode.plugins.mrz_ocr import ppocr
    from healthcode.plugins.mrz_ocr import tesseract as reader
    from healthcode.plugins.mrz_ocr.reader import _grey
    from healthcode.plugins.mrz_ocr.repair import candidates_from_lines

    started = time.perf_counter()
    if not ppocr.available():
        return None, 0.0
    grey = _grey(decode_image(data))
    timings = {"locate": 0.0}
    attempt = next(a for a in reader.ATTEMPTS if a.engine == "ppocr")
    located: dict[int, Any] = {}
    for turns in range(4):
        turned = reader.Attempt("ppocr", turns, 0, False, False, attempt.char_height, "ppocr")
        turned_grey, zones = reader._located(grey, turns, located, timings)
        if not zones:
            continue
        zone = reader.read_zone(turned_grey, zones[0], turned)
        if zone is None:
            continue
        found = candidates_from_lines(zone.lines, zone.confidence, [], zone.confidences)
        try:
            document = parse_document(make_submission(mrz=found[0].text)[0])
        except HealthcodeError:
            continue
        if found[0].checks_passed:
            return _fields(document), time.perf_counter() - started
    return None, time.perf_counter() - started


def _one(job: tuple[str, str, str, bytes]) -> tuple[str, str, bool, float, bool, float]:
    level, layout, mrz, data = job
    truth = _truth(mrz)
    ours, ours_s = _ours(data)
    raw, raw_s = _raw(data)
    return level, layout, ours == truth, ours_s, raw == truth, raw_s


def _one_hard(job: tuple[str, str, str, bytes]) -> dict[str, Any]:
    hardship, layout, mrz, data = job
    truth = _truth(mrz)
    ours, ours_s = _ours(data)
    raw, raw_s = _raw(data)
    second, second_s = _second_engine(data)
    return {
        "hardship": hardship, "layout": layout,
        "ours": ours == truth, "ours_s": round(ours_s, 3),
        "passporteye": raw == truth, "passporteye_s": round(raw_s, 3),
        "ppocr_alone": second == truth, "ppocr_alone_s": round(second_s, 3),
    }  # fmt: skip


def _hard_report(rows: list[dict[str, Any]], seed: int, workers: int) -> str:
    lines = [
        f"# MRZ from hard photos (moderate + one hardship): {len(rows)} images, seed {seed}, "
        f"{workers} workers",
        "",
        "| group | images | healthcode | raw passporteye | PP-OCR alone "
        "| healthcode median / p95 s | passporteye median / p95 s |",
        "|---|---|---|---|---|---|---|",
    ]
    synthetic = [row for row in rows if row["hardship"] != "real_photo"]
    real = [row for row in rows if row["hardship"] == "real_photo"]
    for key in ("layout", "hardship"):
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in synthetic:
            groups[row[key]].append(row)
        named = [*sorted(groups.items()), ("all", synthetic)]
        if key == "layout" and real:
            named.append(("real photos", real))
        for name, group in named:
            ours_t = [r["ours_s"] for r in group]
            raw_t = [r["passporteye_s"] for r in group]
            lines.append(
                f"| {key} {name} | {len(group)} | {_pct([r['ours'] for r in group])} "
                f"| {_pct([r['passporteye'] for r in group])} "
                f"| {_pct([r['ppocr_alone'] for r in group])} "
                f"| {statistics.median(ours_t):.2f} / {_p95(ours_t):.2f} "
                f"| {statistics.median(raw_t):.2f} / {_p95(raw_t):.2f} |"
            )
    return "\n".join(lines) + "\n"


def _hard_jobs(count: int, seed: int) -> list[tuple[str, str, str, bytes]]:
    from healthcode.testing.synthetic_documents import hard_batch

    jobs: list[tuple[str, str, str, bytes]] = [
        (h, d.layout, d.mrz, d.image) for h, d in hard_batch(seed, count, today=TODAY)
    ]
    # The real photos are reported on a line of their own, outside the synthetic groups.
    for name, mrz in REAL_PHOTOS.items():
        jobs.append(("real_photo", name, mrz, (DOCUMENTS / name).read_bytes()))
    return jobs


def hard_main(args: argparse.Namespace) -> None:
    import json

    jobs = _hard_jobs(args.count, args.seed)
    rows: list[dict[str, Any]] = []
    with ProcessPoolExecutor(args.workers) as pool:
        for index, row in enumerate(pool.map(_one_hard, jobs, chunksize=2)):
            rows.append(row)
            if index % 20 == 0:
                print(f"{index}/{len(jobs)}", file=sys.stderr)
    report = _hard_report(rows, args.seed, args.workers)
    print(report)
    if args.out:
        args.out.write_text(report, encoding="utf-8")
    if args.json:
        load = (
            Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
        )
        args.json.write_text(
            json.dumps({"seed": args.seed, "loadavg_after": load, "rows": rows}, indent=1),
            encoding="utf-8",
        )


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
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--hard", action="store_true", help="the hard set (see the module doc)")
    args = parser.parse_args()
    if args.hard:
        hard_main(args)
        return
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
