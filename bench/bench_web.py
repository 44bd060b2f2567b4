"""Benchmark: the web pages' first load (issue 12).

Starts the real service under uvicorn on a free loopback port (one worker,
SQLite in a temporary home, as ``bench_image_flood.py`` does), opens each page
in Debian's Chromium through Playwright (``/usr/bin/chromium``, no browser
download) with a fresh profile each time (nothing cached, no service worker),
and reports:

- first-load bytes: the page and every same-origin resource it loaded (HTML,
  CSS, ES modules, vendored libraries), as served (raw) and gzip-compressed
  (each response on its own, ``gzip -6``: what a compressing proxy in front
  would send); a request that left the origin is an error;
- time to a rendered page on loopback: from navigation to the page's first
  screen being visible (``/``: the enrollment view of a first visit,
  ``/guard``: the sign-in form), with the browser's first contentful paint
  beside it. Median and best of ``--runs`` loads;
- for a holder whose phone is enrolled (the page's own key, the subject
  written into the database as the tests do): time from a reload to the status
  card with its live code drawn (status and pass fetched, signed, from the
  server; service worker active), and the CPU time of one live-code renewal in
  the page (COSE_Sign1 signature with the WebCrypto key, then the QR drawn on
  a canvas), median of 50.

    .venv/bin/python bench/bench_web.py [--runs 7] [--json bench/results/web.json]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from bench_image_flood import Server

CHROMIUM = "/usr/bin/chromium"
PAGES = {
    "/": "#enroll-view:not([hidden]), #card-view:not([hidden])",
    "/guard": "#signin:not([hidden])",
}
"""Each page and the selector of its first screen."""


def load_once(browser: Any, base: str, path: str, ready: str) -> dict[str, Any]:
    """One first load of ``path`` in a fresh context: bytes and times."""
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN")
    page = context.new_page()
    responses: list[Any] = []
    foreign: list[str] = []
    page.on("response", lambda r: responses.append(r))
    page.on(
        "request",
        lambda r: (
            None if r.url.startswith((base + "/", "data:", "blob:")) else foreign.append(r.url)
        ),
    )
    started = time.perf_counter()
    page.goto(base + path, wait_until="commit")
    page.wait_for_selector(ready, state="visible", timeout=60_000)
    rendered_ms = (time.perf_counter() - started) * 1000
    page.wait_for_load_state("networkidle")
    fcp = page.evaluate(
        "() => (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime ?? null"
    )
    files: dict[str, tuple[int, int, str]] = {}
    for response in responses:
        if not response.url.startswith(base + "/") or response.status >= 300:
            continue
        body = response.body()
        files[response.url[len(base) :]] = (
            len(body),
            len(gzip.compress(body, compresslevel=6)),
            response.headers.get("content-encoding", ""),
        )
    context.close()
    return {
        "rendered_ms": rendered_ms,
        "first_contentful_paint_ms": fcp,
        "files": files,
        "foreign_requests": foreign,
    }


RENEWALS = """async () => {
  const store = await import('/static/js/holder/store.js');
  const live = await import('/static/js/holder/livecode.js');
  const {drawQr} = await import('/static/js/holder/qr.js');
  const {deviceKeys} = await import('/static/js/holder/device.js');
  const pass = await live.readPass((await store.get('card')).pass);
  const {privateKey} = await deviceKeys();
  const canvas = document.createElement('canvas');
  const times = [];
  for (let i = 0; i < 50; i++) {
    const start = performance.now();
    drawQr(canvas, await live.present(pass, privateKey, Date.now()));
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return times;
}"""


def add_subject(server: Server, device_public_key: bytes) -> str:
    """A passport subject bound to the page's key, written as the tests do."""
    from healthcode.core.privacy import document_key, subject_id_hex
    from healthcode.core.storage import tables
    from healthcode.core.storage.database import open_database

    async def go() -> str:
        db, secrets = await open_database(
            server.env["HEALTHCODE_DATABASE_URL"], Path(server.env["HEALTHCODE_SECRETS_FILE"])
        )
        try:
            key = document_key(secrets, "passport", "GBR", "B1234567")
            now = dt.datetime.now(dt.UTC)
            async with db.begin() as conn:
                await conn.execute(
                    tables.subjects.insert().values(
                        subject_key=key,
                        kind="passport",
                        masked_name="BENCH",
                        masked_number="B1****67",
                        device_public_key=device_public_key,
                        created_at=now,
                        updated_at=now,
                    )
                )
            return subject_id_hex(key)
        finally:
            await db.dispose()

    # Playwright's sync API keeps an event loop running in this thread.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result()


def enrolled_card(browser: Any, server: Server, runs: int) -> dict[str, Any]:
    """Reload-to-card times and per-renewal CPU for an enrolled holder's page."""
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN")
    page = context.new_page()
    page.goto(server.base + "/")
    page.wait_for_selector("#enroll-view:not([hidden])", timeout=60_000)
    spki = page.evaluate(
        """async () => {
            const d = await import('/static/js/holder/device.js');
            return d.publicKeySpki((await d.deviceKeys()).publicKey);
        }"""
    )
    subject = add_subject(server, base64.b64decode(spki))
    page.evaluate(
        """async (subject) => {
            const store = await import('/static/js/holder/store.js');
            const d = await import('/static/js/holder/device.js');
            await store.set('subject', subject);
            await d.setSubjectId(subject.subject_id);
        }""",
        {
            "subject_id": subject,
            "kind": "passport",
            "masked_name": "BENCH",
            "masked_number": "B1****67",
        },
    )
    card = "#live:not([hidden])"
    page.reload()
    page.wait_for_selector(card, timeout=60_000)  # first card: the service worker installs
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        page.reload(wait_until="commit")
        page.wait_for_selector(card, timeout=60_000)
        times.append((time.perf_counter() - started) * 1000)
    renewals = page.evaluate(RENEWALS)
    context.close()
    return {"card_ms": times, "renewal_ms": renewals}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="hc-bench-web-") as tmp:
        server = Server(Path(tmp))
        try:
            with sync_playwright() as driver:
                launch_args = ["--no-sandbox"] if os.geteuid() == 0 else []
                browser = driver.chromium.launch(executable_path=CHROMIUM, args=launch_args)
                load_once(browser, server.base, "/guard", PAGES["/guard"])  # warm the server
                results = {
                    path: [load_once(browser, server.base, path, ready) for _ in range(args.runs)]
                    for path, ready in PAGES.items()
                }
                holder = enrolled_card(browser, server, args.runs)
                browser.close()
        finally:
            server.stop()

    print(f"pages served by {server.package}; {args.runs} first loads each, fresh profile\n")
    print(
        "| page | files | raw bytes | gzip bytes | rendered ms (median / best) | FCP ms (median) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    summary: dict[str, Any] = {}
    for path, runs in results.items():
        files = runs[0]["files"]
        raw = sum(size for size, _, _ in files.values())
        packed = sum(size for _, size, _ in files.values())
        rendered = [run["rendered_ms"] for run in runs]
        paints = [
            run["first_contentful_paint_ms"] for run in runs if run["first_contentful_paint_ms"]
        ]
        fcp = f"{statistics.median(paints):.0f}" if paints else "-"
        print(
            f"| `{path}` | {len(files)} | {raw:,} | {packed:,} "
            f"| {statistics.median(rendered):.0f} / {min(rendered):.0f} | {fcp} |"
        )
        foreign = sorted({url for run in runs for url in run["foreign_requests"]})
        if foreign:
            print(f"\nERROR: {path} sent requests off the origin: {foreign}", file=sys.stderr)
        summary[path] = {
            "files": {
                name: {"raw": r, "gzip": g, "served_encoding": e}
                for name, (r, g, e) in files.items()
            },
            "raw_bytes": raw,
            "gzip_bytes": packed,
            "rendered_ms": rendered,
            "first_contentful_paint_ms": paints,
            "foreign_requests": foreign,
        }
    renewal = holder["renewal_ms"]
    print(
        f"\nenrolled holder, reload to card with live code: median "
        f"{statistics.median(holder['card_ms']):.0f} ms, best {min(holder['card_ms']):.0f} ms; "
        f"one live-code renewal (sign + draw) in the page: median "
        f"{statistics.median(renewal):.2f} ms, slowest {max(renewal):.2f} ms of {len(renewal)}"
    )
    summary["enrolled_holder"] = holder
    for path, entry in summary.items():
        if path == "enrolled_holder":
            continue
        print(f"\n{path}:")
        for name, sizes in sorted(entry["files"].items(), key=lambda kv: -kv[1]["raw"]):
            print(f"  {sizes['raw']:>8,} raw {sizes['gzip']:>7,} gzip  {name}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    if any(entry.get("foreign_requests") for entry in summary.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
