"""Benchmark: passes issued/s, presentations verified/s (one core, offline), the
overhead against bare ``cryptography`` verification of the same bytes, QR times.

    .venv/bin/python bench/bench_passes.py [--n 3000] [--json]

Cold = every presentation carries a different pass (issuer signature and device
signature both checked); warm = passes seen before, re-presented with fresh
device signatures (the issuer check is cached). The bare baseline verifies the
same two signatures over the same bytes with ``cryptography`` alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from healthcode.core.models import Colour, MaskedDocument
from healthcode.core.passes import HolderDevice, KeyStore, TrustStore, Verifier, issue_pass
from healthcode.core.passes.codec import Algorithm, verify_raw
from healthcode.core.passes.passes import device_message, parse_pass_cose, split_presentation
from healthcode.core.passes.qr import decode_qr, qr_png, qr_svg

NOW = dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC)
MASKED = MaskedDocument("cn_resident_id", "张", "11**************2X")


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds else float("inf")


def bench_alg(alg: Algorithm, n: int, root: Path) -> dict[str, Any]:
    keys = KeyStore(root / alg)
    keys.init("110000", "北京市", alg=alg, now=NOW)
    trust = TrustStore(root / f"{alg}.hct", keys).load(NOW)
    key = keys.active()
    device = HolderDevice.generate(alg)

    t = time.perf_counter()
    issued = [
        issue_pass(
            key.private_key,
            key.kid,
            region_code="110000",
            colour=Colour.GREEN,
            masked=MASKED,
            holder_key=device.public_key,
            now=NOW,
        )
        for _ in range(n)
    ]
    issue_s = time.perf_counter() - t
    shown = [device.present(p.text, NOW) for p in issued]
    later = NOW + dt.timedelta(seconds=2)

    verifier = Verifier(trust, clock=lambda: later, cache_size=n + 1)
    t = time.perf_counter()
    for text in shown:
        if not verifier.verify(text).ok:
            raise SystemExit("verification failed")
    cold_s = time.perf_counter() - t
    t = time.perf_counter()
    for text in shown:
        verifier.verify(text)
    warm_s = time.perf_counter() - t

    # Baseline: the same two signatures over the same bytes, cryptography only.
    prepared = []
    for text in shown:
        cose, time_ms, device_sig = split_presentation(text)
        sign, claims = parse_pass_cose(cose)
        prepared.append(
            (
                sign.signature,
                sign.to_be_signed(),
                device_sig,
                device_message(claims.pass_id, time_ms),
                claims.holder_key,
            )
        )
    issuer_public = key.private_key.public_key()
    t = time.perf_counter()
    for sig, tbs, dsig, dmsg, holder in prepared:
        ok = verify_raw(issuer_public, sig, tbs) and verify_raw(holder, dsig, dmsg)
        if not ok:
            raise SystemExit("baseline failed")
    bare_s = time.perf_counter() - t
    return {
        "alg": alg,
        "n": n,
        "issued_per_s": round(_rate(n, issue_s)),
        "verified_per_s_cold": round(_rate(n, cold_s)),
        "verified_per_s_warm": round(_rate(n, warm_s)),
        "bare_two_signatures_per_s": round(_rate(n, bare_s)),
        "overhead_ratio_cold": round(cold_s / bare_s, 2),
        "pass_chars": len(issued[0].text),
        "presentation_chars": len(shown[0]),
    }


def bench_qr(text: str, rounds: int) -> dict[str, Any]:
    t = time.perf_counter()
    for _ in range(rounds):
        png = qr_png(text)
    png_ms = (time.perf_counter() - t) / rounds * 1000
    t = time.perf_counter()
    for _ in range(rounds):
        qr_svg(text)
    svg_ms = (time.perf_counter() - t) / rounds * 1000
    t = time.perf_counter()
    for _ in range(rounds):
        if decode_qr(png) != text:
            raise SystemExit("QR round trip failed")
    decode_ms = (time.perf_counter() - t) / rounds * 1000
    return {
        "encode_png_ms": round(png_ms, 2),
        "encode_svg_ms": round(svg_ms, 2),
        "decode_png_ms": round(decode_ms, 2),
        "png_bytes": len(png),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--qr-rounds", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        results = [bench_alg(alg, args.n, root) for alg in ("ES256", "EdDSA")]
        device = HolderDevice.generate()
        keys = KeyStore(root / "qr")
        keys.init("110000", "北京市", now=NOW)
        key = keys.active()
        p = issue_pass(
            key.private_key,
            key.kid,
            region_code="110000",
            colour=Colour.GREEN,
            masked=MASKED,
            holder_key=device.public_key,
            now=NOW,
        )
        qr = bench_qr(device.present(p.text, NOW), args.qr_rounds)
    report = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu": platform.processor() or "unknown",
        "passes": results,
        "qr": qr,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"Python {report['python']} on {report['machine']}, one core")
    print(
        "| issuer alg | issued/s | verified/s cold | verified/s warm | bare 2 sigs/s | overhead |"
    )
    print("|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['alg']} | {r['issued_per_s']:,} | {r['verified_per_s_cold']:,} | "
            f"{r['verified_per_s_warm']:,} | {r['bare_two_signatures_per_s']:,} | "
            f"{r['overhead_ratio_cold']}x |"
        )
    print(
        f"QR (presentation, {results[0]['presentation_chars']} chars): PNG encode "
        f"{qr['encode_png_ms']} ms, SVG encode {qr['encode_svg_ms']} ms, "
        f"decode {qr['decode_png_ms']} ms"
    )


if __name__ == "__main__":
    main()
