"""Document validation throughput, against the named peers in the same run.

* 100,000 generated resident ID numbers through ``healthcode.plugins.id_card``
  and through python-stdnum's ``stdnum.cn.ric``;
* 100,000 generated TD3 MRZs through ``healthcode.plugins.passport`` and through
  the ``mrz`` package's ``TD3CodeChecker``.

A tenth of each input set has one character changed, so both "valid" and
"invalid" verdicts are exercised and compared. Each measurement is the best of
``--repeat`` runs (the machine is shared and noisy; the best run is the least
disturbed one). Results go to stdout (Markdown) and ``bench/results/documents.json``.

Run with::

    scripts/setup bench && .venv/bin/python bench/bench_documents.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mrz.checker.td3 import TD3CodeChecker
from stdnum.cn import ric

from healthcode.core.documents import check_document, make_submission
from healthcode.core.errors import HealthcodeError
from healthcode.core.plugins import new_plugin_manager
from healthcode.plugins.id_card import is_valid_resident_id
from healthcode.plugins.passport.mrz import parse_mrz
from healthcode.testing.mrz import random_td3_batch
from healthcode.testing.resident_id import random_resident_id

TODAY = dt.date(2026, 11, 26)
RESULTS = Path(__file__).parent / "results" / "documents.json"
DIGITS = "0123456789"
MRZ_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ<"


def corrupt(text: str, rng: random.Random, alphabet: str, skip: str = "\n") -> str:
    """Change one character (never a line break) to another of ``alphabet``."""
    while True:
        i = rng.randrange(len(text))
        if text[i] not in skip:
            break
    replacement = rng.choice([c for c in alphabet if c != text[i]])
    return text[:i] + replacement + text[i + 1 :]


def best_time(fn: Callable[[str], bool], inputs: Sequence[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for item in inputs:
            fn(item)
        best = min(best, time.perf_counter() - start)
    return best


def pipeline_verdict(pm: Any, *, mrz: bool) -> Callable[[str], bool]:
    """The full path the CLI and API take: normalise, parse, validate, mask."""

    def verdict(text: str) -> bool:
        try:
            sub, warnings = make_submission(mrz=text) if mrz else make_submission(number=text)
            return check_document(sub, today=TODAY, warnings=warnings, pm=pm).is_valid
        except HealthcodeError:
            return False

    return verdict


def is_valid_mrz(text: str) -> bool:
    """Our direct path: parse the MRZ, apply the day's rules (expiry excluded)."""
    try:
        document = parse_mrz(text, today=TODAY)
    except HealthcodeError:
        return False
    return document.is_valid


def stdnum_verdict(number: str) -> bool:
    return bool(ric.is_valid(number))


def mrz_package_verdict(text: str) -> bool:
    try:
        return bool(TD3CodeChecker(text))
    except Exception:  # the peer raises on some malformed input
        return False


def id_difference_reason(difference: tuple[str, bool, bool]) -> str:
    number, ours, _ = difference
    if ours and len(number) == 18 and ric.calc_check_digit(number) == number[-1]:
        # stdnum also checks that the division code was in force in the birth
        # year; numbers keep the code in force when they were issued, and
        # the standard's own example 440524188001010014 fails that test.
        return "stdnum: division code not in force in the birth year"
    return "other"


def mrz_difference_reason(difference: tuple[str, bool, bool]) -> str:
    text, ours, _ = difference
    lines = text.split("\n")
    if ours and len(lines) == 2 and lines[1][20] == "X":
        return "sex X (unspecified): ICAO 9303 allows it, mrz 0.6.2 refuses it"
    if ours and len(lines) == 2 and lines[1][20] == "<":
        return "sex '<': ICAO 9303 allows it, mrz 0.6.2 refuses it"
    if ours and lines[0].startswith("V"):
        return "a 2x44 visa (MRV-A, code V): ours reads it, the TD3 checker knows passports only"
    if not ours and not lines[0][1].isalpha() and lines[0][1] != "<":
        return "a digit in the document code: ICAO 9303 allows a letter or '<' only"
    if ours and "XXC" in (lines[0][2:5], lines[1][10:13]):
        return "XXC (refugee, ICAO code): mrz 0.6.2 does not know it"
    return "other"


def compare(
    inputs: Sequence[str],
    ours: Callable[[str], bool],
    peer: Callable[[str], bool],
) -> tuple[dict[str, int], list[tuple[str, bool, bool]]]:
    counts: Counter[str] = Counter()
    differences = []
    for item in inputs:
        a, b = ours(item), peer(item)
        counts[f"ours={'valid' if a else 'invalid'} peer={'valid' if b else 'invalid'}"] += 1
        if a != b:
            differences.append((item, a, b))
    return dict(counts), differences


def run_case(
    name: str,
    inputs: Sequence[str],
    contenders: dict[str, Callable[[str], bool]],
    peer_name: str,
    repeat: int,
) -> dict[str, Any]:
    timings = {label: best_time(fn, inputs, repeat) for label, fn in contenders.items()}
    peer_time = timings[peer_name]
    rows = {
        label: {
            "seconds": round(seconds, 4),
            "per_second": round(len(inputs) / seconds),
            "speed_vs_peer": round(peer_time / seconds, 2),
        }
        for label, seconds in timings.items()
    }
    return {"case": name, "inputs": len(inputs), "results": rows}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2260)
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    pm = new_plugin_manager(autoload=False)

    ids = [random_resident_id(rng) for _ in range(args.count)]
    ids = [corrupt(n, rng, DIGITS) if rng.random() < 0.1 else n for n in ids]
    td3s = random_td3_batch(rng, args.count, today=TODAY)
    td3s = [corrupt(m, rng, MRZ_CHARS) if rng.random() < 0.1 else m for m in td3s]

    cases = [
        run_case(
            "resident ID (GB 11643)",
            ids,
            {
                "healthcode is_valid_resident_id": lambda n: is_valid_resident_id(n, TODAY),
                "healthcode full pipeline (hooks)": pipeline_verdict(pm, mrz=False),
                "python-stdnum cn.ric.is_valid": stdnum_verdict,
            },
            "python-stdnum cn.ric.is_valid",
            args.repeat,
        ),
        run_case(
            "TD3 MRZ (ICAO 9303)",
            td3s,
            {
                "healthcode is_valid_mrz": is_valid_mrz,
                "healthcode full pipeline (hooks)": pipeline_verdict(pm, mrz=True),
                "mrz TD3CodeChecker": mrz_package_verdict,
            },
            "mrz TD3CodeChecker",
            args.repeat,
        ),
    ]
    id_counts, id_diffs = compare(ids, lambda n: is_valid_resident_id(n, TODAY), stdnum_verdict)
    mrz_counts, mrz_diffs = compare(td3s, is_valid_mrz, mrz_package_verdict)
    cases[0]["verdicts"] = id_counts
    cases[0]["difference_reasons"] = dict(Counter(id_difference_reason(d) for d in id_diffs))
    cases[0]["differences"] = [list(d) for d in id_diffs[:20]]
    cases[1]["verdicts"] = mrz_counts
    cases[1]["difference_reasons"] = dict(Counter(mrz_difference_reason(d) for d in mrz_diffs))
    cases[1]["differences"] = [list(d) for d in mrz_diffs[:20]]

    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "seed": args.seed,
        "repeat": args.repeat,
        "cases": cases,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    for case in cases:
        print(f"\n### {case['case']}: {case['inputs']:,} inputs, best of {args.repeat}\n")
        print("| contender | seconds | per second | speed vs peer |")
        print("|---|---:|---:|---:|")
        for label, row in case["results"].items():
            print(
                f"| {label} | {row['seconds']:.3f} | {row['per_second']:,} "
                f"| {row['speed_vs_peer']:.2f}x |"
            )
        print("\nverdicts (ours vs peer):", json.dumps(case["verdicts"]))
        print("reasons for differences:", json.dumps(case["difference_reasons"]))
        print(f"differences: {len(case['differences'])} shown (of the first 20)")
        for item, ours, peer in case["differences"]:
            shown = item.replace("\n", " / ")
            print(
                f"  ours={'valid' if ours else 'invalid'} peer={'valid' if peer else 'invalid'}: "
                f"{shown}"
            )


if __name__ == "__main__":
    main()
