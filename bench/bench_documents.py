"""Document validation throughput, against the named peers in the same run.

* 100,000 generated resident ID numbers through ``healthcode.plugins.id_card``
  and through python-stdnum's ``stdnum.cn.ric``;
* 100,000 generated TD3 MRZs through ``healthcode.plugins.passport`` and through
  the ``mrz`` package's ``TD3CodeChecker``;
* in-process, the batch path (``healthcode.core.batch.check_texts``) beside the
  single-row pipeline;
* through the command line, ``healthcode documents check --file`` on
  ``--cli-count`` (200,000) records of each, **process start included**, against
  python-stdnum and mrz doing the same work in a process of their own (start
  included): read the file, check each record, print one JSON line per record.

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
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mrz.checker.td3 import TD3CodeChecker
from stdnum.cn import ric

from healthcode.core.batch import DocumentChecker
from healthcode.core.documents import check_document, make_submission
from healthcode.core.errors import HealthcodeError
from healthcode.core.plugins import new_plugin_manager
from healthcode.core.privacy import generate_secrets
from healthcode.core.status.rows import RawRow, RowKeyer
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


def batch_verdict(pm: Any, *, mrz: bool) -> Callable[[str], bool]:
    """The batch path, one row at a time: hooks resolved once (what
    ``check_texts`` and ``documents check --file`` run)."""
    check_text = DocumentChecker(pm, today=TODAY).check_text

    def verdict(text: str) -> bool:
        try:
            return check_text(text).is_valid
        except HealthcodeError:
            return False

    return verdict


# The peers' command-line runs: the same work as ``documents check --file``
# (read the file, check each record, one JSON line out per record), each in a
# process of its own.
STDNUM_SCRIPT = """
import json, sys
from stdnum.cn import ric
out = []
with open(sys.argv[1], encoding="utf-8") as handle:
    for line_no, line in enumerate(handle, 1):
        text = line.strip()
        if text:
            out.append(json.dumps({"record": line_no, "valid": bool(ric.is_valid(text))}))
sys.stdout.write("\\n".join(out) + "\\n")
"""
MRZ_SCRIPT = """
import json, sys
from mrz.checker.td3 import TD3CodeChecker
def valid(text):
    try:
        return bool(TD3CodeChecker(text))
    except Exception:
        return False
out = []
with open(sys.argv[1], encoding="utf-8") as handle:
    for line_no, line in enumerate(handle, 1):
        text = line.strip()
        if text:
            out.append(json.dumps({"record": line_no, "valid": valid(text.replace("|", "\\n"))}))
sys.stdout.write("\\n".join(out) + "\\n")
"""


def healthcode_command() -> list[str]:
    """The installed console script next to this interpreter."""
    script = Path(sys.executable).parent / "healthcode"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from healthcode.cli.main import main; main()"]


def timed_process(command: list[str], repeat: int) -> tuple[float, list[bool]]:
    """Best wall time of ``command`` (process start included) and the
    verdicts it printed, one JSON line per record."""
    best = float("inf")
    output = b""
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, check=False)
        best = min(best, time.perf_counter() - start)
        if done.returncode not in (0, 1):
            raise SystemExit(f"{command[0]} failed: {done.stderr.decode()[-2000:]}")
        output = done.stdout
    return best, [json.loads(line)["valid"] for line in output.splitlines()]


def run_cli_case(
    name: str, records: Sequence[str], peer_label: str, peer_script: str, repeat: int
) -> dict[str, Any]:
    """``healthcode documents check --file`` against the peer's own process."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "records.txt"
        path.write_text("\n".join(records) + "\n", encoding="utf-8")
        ours_cmd = [*healthcode_command(), "documents", "check", "--file", str(path)]
        ours_cmd += ["--today", TODAY.isoformat()]
        peer_cmd = [sys.executable, "-c", peer_script, str(path)]
        start_cmd = [*healthcode_command(), "documents", "check", "--file", os.devnull]
        timings: dict[str, float] = {}
        timings["healthcode documents check --file"], ours = timed_process(ours_cmd, repeat)
        timings[peer_label], peer = timed_process(peer_cmd, repeat)
        timings["(healthcode start alone: --file of no records)"], _ = timed_process(
            start_cmd, repeat
        )
    peer_time = timings[peer_label]
    rows = {
        label: {
            "seconds": round(seconds, 4),
            "per_second": round(len(records) / seconds),
            "speed_vs_peer": round(peer_time / seconds, 2),
        }
        for label, seconds in timings.items()
    }
    verdicts = Counter(
        f"ours={'valid' if a else 'invalid'} peer={'valid' if b else 'invalid'}"
        for a, b in zip(ours, peer, strict=True)
    )
    return {
        "case": name,
        "inputs": len(records),
        "results": rows,
        "verdicts": dict(verdicts),
        "difference_reasons": {},
        "differences": [],
    }


def import_keying_case(count: int, rng: random.Random, pm: Any) -> dict[str, Any]:
    """Authority-import keying alone (``RowKeyer``, no database) on ``count``
    rows: the batch path against the per-row pluggy dispatch it replaced,
    same rows, same run. A tenth of the numbers have one digit changed."""
    numbers = [random_resident_id(rng) for _ in range(count)]
    numbers = [corrupt(n, rng, DIGITS) if rng.random() < 0.1 else n for n in numbers]
    rows = [
        RawRow(i, {"kind": "cn_resident_id", "number": n, "status": "red"})
        for i, n in enumerate(numbers, 1)
    ]
    secrets = generate_secrets()
    batch = RowKeyer(secrets, pm)
    per_row = RowKeyer(secrets, pm)
    parse_hook = pm.hook.healthcode_parse_document
    # What RowKeyer did before: one pluggy call per row.
    per_row._parse = lambda submission: parse_hook(submission=submission)
    keyers = {"per-row pluggy dispatch (before)": per_row, "batch path": batch}
    timings = dict.fromkeys(keyers, 0.0)
    # Both keyers take turns on chunks of 10,000 rows, so that a change in the
    # machine's load during the run falls on both alike.
    for offset in range(0, count, 10_000):
        chunk = rows[offset : offset + 10_000]
        for label, keyer in keyers.items():
            start = time.perf_counter()
            for row in chunk:
                keyer(row)
            timings[label] += time.perf_counter() - start
    before = timings["per-row pluggy dispatch (before)"]
    return {
        "case": "authority import keying (RowKeyer)",
        "inputs": count,
        "results": {
            label: {
                "seconds": round(seconds, 3),
                "per_second": round(count / seconds),
                "speed_vs_before": round(before / seconds, 2),
            }
            for label, seconds in timings.items()
        },
    }


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
    parser.add_argument("--cli-count", type=int, default=200_000)
    parser.add_argument("--cli-repeat", type=int, default=3)
    parser.add_argument(
        "--import-rows",
        type=int,
        default=0,
        help="only time authority-import keying on this many rows (e.g. 1000000)",
    )
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    pm = new_plugin_manager(autoload=False)
    if args.import_rows:
        keying = import_keying_case(args.import_rows, rng, pm)
        print(json.dumps({**keying, "load_average": os.getloadavg()}, indent=2))
        return

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
                "healthcode batch path (check_texts)": batch_verdict(pm, mrz=False),
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
                "healthcode batch path (check_texts)": batch_verdict(pm, mrz=True),
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

    cli_ids = [random_resident_id(rng) for _ in range(args.cli_count)]
    cli_ids = [corrupt(n, rng, DIGITS) if rng.random() < 0.1 else n for n in cli_ids]
    cli_td3s = random_td3_batch(rng, args.cli_count, today=TODAY)
    cli_td3s = [corrupt(m, rng, MRZ_CHARS) if rng.random() < 0.1 else m for m in cli_td3s]
    load_before = os.getloadavg()
    cases += [
        run_cli_case(
            "resident ID (GB 11643), command line, process start included",
            cli_ids,
            "python-stdnum cn.ric.is_valid (own process)",
            STDNUM_SCRIPT,
            args.cli_repeat,
        ),
        run_cli_case(
            "TD3 MRZ (ICAO 9303), command line, process start included",
            [m.replace("\n", "|") for m in cli_td3s],
            "mrz TD3CodeChecker (own process)",
            MRZ_SCRIPT,
            args.cli_repeat,
        ),
    ]

    report = {
        "load_average": {"before_cli": list(load_before), "after": list(os.getloadavg())},
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
        best_of = args.cli_repeat if "command line" in case["case"] else args.repeat
        print(f"\n### {case['case']}: {case['inputs']:,} inputs, best of {best_of}\n")
        print("| contender | seconds | per second | speed vs peer |")
        print("|---|---:|---:|---:|")
        for label, row in case["results"].items():
            print(
                f"| {label} | {row['seconds']:.3f} | {row['per_second']:,} "
                f"| {row['speed_vs_peer']:.2f}x |"
            )
        print("\nverdicts (ours vs peer):", json.dumps(case["verdicts"]))
        if "command line" in case["case"]:
            continue
        print("reasons for differences:", json.dumps(case["difference_reasons"]))
        print(f"differences: {len(case['differences'])} shown (of the first 20)")
        for item, ours, peer in case["differences"]:
            shown = item.replace("\n", " / ")
            print(
                f"  ours={'valid' if ours else 'invalid'} peer={'valid' if peer else 'invalid'}: "
                f"{shown}"
            )

    print("\nload average (1, 5, 15 min):", report["load_average"])


if __name__ == "__main__":
    main()
