"""Benchmark: the web pages' first load (issue 12).

Starts the real service under uvicorn on a free loopback port (one worker,
SQLite in a temporary home, as ``bench_image_flood.py`` does), opens each page
in Debian's Chromium through Playwright (``/usr/bin/chromium``, no browser
download) with a fresh profile each time (nothing cached, no service worker),
and reports:

- first-load bytes: the page and every same-origin resource it loaded (HTML,
  CSS, ES modules, vendored libraries): decoded ("raw") and as sent on the
  wire (the app gzips what is 1024 bytes or more for a client that accepts
  it; Chromium's encoded body size), against the budget of issue 12 (at most
  300 KB sent for both pages' first loads, scripts at most 150 KB); a
  request that left the origin is an error;
- time to a rendered page on loopback: from navigation to the page's first
  screen being visible (``/``: the enrollment view of a first visit,
  ``/guard``: the sign-in form), with the browser's first contentful paint
  beside it. Median and best of ``--runs`` loads;
- for a holder whose phone is enrolled (the page's own key, the subject
  written into the database as the tests do): time from a reload to the status
  card with its live code drawn (status and pass fetched, signed, from the
  server; service worker active), and the CPU time of one live-code renewal in
  the page (COSE_Sign1 signature with the WebCrypto key, then the QR drawn on
  a canvas), median of 50;
- the enrollment through the page, end to end, with the real face models and
  Chromium's fake camera playing ``tests/support/browser.py``'s turning film
  (the service draws its challenges from ``turn_right`` and ``open_mouth``:
  ``HEALTHCODE_LIVENESS_ACTIONS``): from choosing the data-page photo to the
  green card with its live code. The wait for the film to show the neutral
  face again (a person would simply start) is measured and reported apart.

    .venv/bin/python bench/bench_web.py [--runs 7] [--enrollments 3] [--json bench/results/web.json]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
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
sys.path.insert(1, str(Path(__file__).parents[1] / "tests"))
from bench_image_flood import Server

CHROMIUM = "/usr/bin/chromium"
PAGES = {
    "/": "#enroll-view:not([hidden]), #card-view:not([hidden])",
    "/guard": "#signin:not([hidden])",
}
"""Each page and the selector of its first screen."""
BUDGET_BYTES = 300_000
SCRIPT_BUDGET_BYTES = 150_000
ACTIONS = "turn_right,open_mouth"
"""The actions the turning film answers (an operator setting of the bench's service)."""


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
        encoding = response.headers.get("content-encoding", "")
        # Bytes on the wire: the encoded body Chromium received.
        sent = response.request.sizes()["responseBodySize"] if encoding else len(body)
        files[response.url[len(base) :]] = (len(body), sent, encoding)
    context.close()
    return {
        "rendered_ms": rendered_ms,
        "first_contentful_paint_ms": fcp,
        "files": files,
        "foreign_requests": foreign,
    }


RENEWALS = """async (count) => {
  const store = await import('/static/js/holder/store.js');
  const live = await import('/static/js/holder/livecode.js');
  const {drawQr} = await import('/static/js/holder/qr.js');
  const {deviceKeys} = await import('/static/js/holder/device.js');
  const pass = await live.readPass((await store.get('card')).pass);
  const {privateKey} = await deviceKeys();
  const canvas = document.createElement('canvas');
  const times = [];
  for (let i = 0; i < count; i++) {
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


RENEWAL_COUNT = 50


def browser_cpu_seconds(cdp: Any) -> float:
    """CPU seconds used so far by all of Chromium's processes."""
    processes = cdp.send("SystemInfo.getProcessInfo")["processInfo"]
    return float(sum(process["cpuTime"] for process in processes))


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
    renewals = page.evaluate(RENEWALS, RENEWAL_COUNT)
    # CPU time, not wall time (the machine is shared): every Chromium process's
    # CPU (renderer, GPU, browser) over a batch of renewals, per renewal.
    cdp = browser.new_browser_cdp_session()
    before = browser_cpu_seconds(cdp)
    page.evaluate(RENEWALS, RENEWAL_COUNT)
    cpu_ms = (browser_cpu_seconds(cdp) - before) / RENEWAL_COUNT * 1000
    context.close()
    return {"card_ms": times, "renewal_ms": renewals, "renewal_cpu_ms": cpu_ms}


def enroll_once(browser: Any, base: str, number: str) -> dict[str, float]:
    """One enrollment through the page (data-page photo, face check) to the
    green card: seconds from choosing the photo, the wait for the film, the
    challenge and filming in the page (Start to the answer sent), and the
    service's check (the answer sent to its reply)."""
    from playwright.sync_api import FilePayload
    from support.browser import data_page_png, wait_for_scene

    context = browser.new_context(
        viewport={"width": 360, "height": 740}, locale="zh-CN", permissions=["camera"]
    )
    page = context.new_page()
    page.goto(base + "/")
    page.locator("#privacy-ok").click()
    page.locator("#kind option[value=passport]").wait_for(state="attached")
    page.locator("#kind").select_option("passport")
    page.locator("#declared-name").fill("QUARTERMAINE ALLAN JAMES")
    page.locator("input[name=how][value=file]").check()
    photo = FilePayload(name="passport.png", mimeType="image/png", buffer=data_page_png(number))
    started = time.perf_counter()
    page.locator("#doc-image").set_input_files(files=[photo])
    page.locator("#step-document button[type=submit]").click()
    page.locator("#confirm-ok").click()
    page.locator("#face-view").wait_for(state="visible")
    waited = time.perf_counter()
    wait_for_scene(page, white=True)
    wait_for_scene(page, white=False)
    waited = time.perf_counter() - waited
    clicked = time.perf_counter()
    marks: dict[str, float] = {}

    def answer(request: Any) -> bool:
        return bool(request.url.endswith("/enrollments") and request.method == "POST")

    page.on("request", lambda r: marks.setdefault("sent", time.perf_counter()) if answer(r) else 0)
    with page.expect_response(lambda r: answer(r.request), timeout=180_000) as answered:
        page.locator("#face-start").click()
    marks["answered"] = time.perf_counter()
    if answered.value.status != 201:
        raise RuntimeError(f"enrollment refused: {answered.value.text()}")
    page.wait_for_selector('#card[data-colour="green"]', timeout=60_000)
    page.wait_for_selector("#live:not([hidden])", timeout=60_000)
    done = time.perf_counter()
    context.close()
    return {
        "total_s": done - started,
        "film_wait_s": waited,
        "start_to_card_s": done - clicked,
        "filming_s": marks["sent"] - clicked,
        "server_check_s": marks["answered"] - marks["sent"],
    }


def enrollment_server(home: Path) -> Server:
    """The service for the enrollments: challenges drawn from the film's actions."""
    home.mkdir()
    os.environ["HEALTHCODE_LIVENESS_ACTIONS"] = ACTIONS
    try:
        return Server(home)
    finally:
        del os.environ["HEALTHCODE_LIVENESS_ACTIONS"]


def enrollments(driver: Any, server: Server, runs: int) -> list[dict[str, float]]:
    """``runs`` enrollments through the page, each a new passport holder."""
    from support.browser import turning_film

    film = turning_film(server.home / "turning.y4m")
    args = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={film}",
    ]
    if os.geteuid() == 0:
        args.append("--no-sandbox")
    browser = driver.chromium.launch(executable_path=CHROMIUM, args=args)
    try:
        return [enroll_once(browser, server.base, f"P77889{i:02d}") for i in range(runs)]
    finally:
        browser.close()


def page_rows(results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Print the first-load table; the figures per page."""
    print(
        "| page | files | raw bytes | sent bytes (gzip) | of which scripts "
        "| rendered ms (median / best) | FCP ms (median) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    summary: dict[str, Any] = {}
    for path, runs in results.items():
        files = runs[0]["files"]
        raw = sum(size for size, _, _ in files.values())
        sent = sum(size for _, size, _ in files.values())
        scripts = sum(
            size for name, (_, size, _) in files.items() if name.endswith((".js", ".mjs"))
        )
        rendered = [run["rendered_ms"] for run in runs]
        paints = [
            run["first_contentful_paint_ms"] for run in runs if run["first_contentful_paint_ms"]
        ]
        fcp = f"{statistics.median(paints):.0f}" if paints else "-"
        print(
            f"| `{path}` | {len(files)} | {raw:,} | {sent:,} | {scripts:,} "
            f"| {statistics.median(rendered):.0f} / {min(rendered):.0f} | {fcp} |"
        )
        foreign = sorted({url for run in runs for url in run["foreign_requests"]})
        if foreign:
            print(f"\nERROR: {path} sent requests off the origin: {foreign}", file=sys.stderr)
        summary[path] = {
            "files": {
                name: {"raw": r, "sent": g, "served_encoding": e}
                for name, (r, g, e) in files.items()
            },
            "raw_bytes": raw,
            "sent_bytes": sent,
            "script_bytes_sent": scripts,
            "rendered_ms": rendered,
            "first_contentful_paint_ms": paints,
            "foreign_requests": foreign,
        }
    total = sum(entry["sent_bytes"] for entry in summary.values())
    scripts = sum(entry["script_bytes_sent"] for entry in summary.values())
    met = {True: "met", False: "EXCEEDED"}
    print(
        f"\nboth first loads: {total:,} bytes sent (budget {BUDGET_BYTES:,}: "
        f"{met[total <= BUDGET_BYTES]}), scripts {scripts:,} "
        f"(budget {SCRIPT_BUDGET_BYTES:,}: {met[scripts <= SCRIPT_BUDGET_BYTES]})"
    )
    return summary


def report(
    summary: dict[str, Any], holder: dict[str, Any], enrolled: list[dict[str, float]]
) -> None:
    renewal = holder["renewal_ms"]
    print(
        f"\nenrolled holder, reload to card with live code: median "
        f"{statistics.median(holder['card_ms']):.0f} ms, best {min(holder['card_ms']):.0f} ms; "
        f"one live-code renewal (sign + draw) in the page: median "
        f"{statistics.median(renewal):.2f} ms, slowest {max(renewal):.2f} ms of {len(renewal)} "
        f"(wall); CPU {holder['renewal_cpu_ms']:.2f} ms per renewal (all Chromium processes, "
        f"{RENEWAL_COUNT} in a row)"
    )
    if enrolled:
        print(
            "\n| enrollment | photo to green card s | waiting for the film s "
            "| Start to green card s | challenge + filming s | service's check s |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        for i, run in enumerate(enrolled, 1):
            print(
                f"| {i} | {run['total_s']:.1f} | {run['film_wait_s']:.1f} "
                f"| {run['start_to_card_s']:.1f} | {run['filming_s']:.1f} "
                f"| {run['server_check_s']:.1f} |"
            )
        person = [run["total_s"] - run["film_wait_s"] for run in enrolled]
        print(f"\nmedian without the film wait: {statistics.median(person):.1f} s")
    for path, entry in summary.items():
        print(f"\n{path}:")
        for name, sizes in sorted(entry["files"].items(), key=lambda kv: -kv[1]["raw"]):
            print(f"  {sizes['raw']:>8,} raw {sizes['sent']:>7,} sent  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--enrollments", type=int, default=3, help="enrollments through the page (0: none)"
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="hc-bench-web-") as tmp:
        # Both services start before Playwright (its sync API keeps an event loop
        # running in this thread, and starting a service runs asyncio).
        server = Server(Path(tmp))
        enrolling = enrollment_server(Path(tmp) / "enrol") if args.enrollments else None
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
                server.stop()
                enrolled = []
                if enrolling:
                    try:
                        enrolled = enrollments(driver, enrolling, args.enrollments)
                    except Exception as exc:  # e.g. no face models here: say so, keep the rest
                        print(f"enrollments not measured: {exc}", file=sys.stderr)
        finally:
            server.stop()
            if enrolling:
                enrolling.stop()

    print(f"pages served by {server.package}; {args.runs} first loads each, fresh profile\n")
    summary = page_rows(results)
    report(summary, holder, enrolled)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        everything = {**summary, "enrolled_holder": holder, "enrollments": enrolled}
        args.json.write_text(json.dumps(everything, indent=2), encoding="utf-8")
    if any(entry.get("foreign_requests") for entry in summary.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
