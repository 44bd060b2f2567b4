"""Browser tests: the pages served by the real app (``live_server``), driven in
Debian's Chromium (``/usr/bin/chromium``) through Playwright for Python. No
browser is ever downloaded. The camera is Chromium's fake one playing a Y4M
video made from ``tests/data/faces`` (``support/browser.py``), and the
permission prompt is answered yes.

Every test here is marked ``browser`` and counts as ``slow``
(``support/tiers.py``). Without Chromium or Playwright the tests are skipped
with the reason, and fail under ``CI=true`` (like the face models).

Screenshots go to ``$HEALTHCODE_TEST_ARTEFACTS`` or ``tests/browser/artefacts/``
(git-ignored). Pages run on the live server's clock (Playwright's clock, set
from the server's ``Date`` header: ``support.browser.server_time``), so that
the requests and live codes they sign are current for the server.
"""

from __future__ import annotations

import os
import re
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from support.backends import LiveServer
from support.browser import PageWatch, empty_video, face_video, server_time

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 30_000
"""Playwright's auto-waiting limit: generous, the machine is shared."""
ARTEFACTS = Path(
    os.environ.get("HEALTHCODE_TEST_ARTEFACTS") or Path(__file__).with_name("artefacts")
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.browser)


def _under_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_browser() -> None:
    """Skip (locally) or fail (under CI) without Chromium and Playwright,
    naming what installs them."""
    missing = []
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"{CHROMIUM} (scripts/system-packages --with-test-fonts)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install -e '.[test]')")
    if missing:
        message = "browser tests need " + " and ".join(missing)
        if _under_ci():
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def artefacts() -> Path:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    return ARTEFACTS


@pytest.fixture(scope="session")
def camera_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The fake camera's films: ``face`` (a head turning each way) and ``empty``."""
    root = tmp_path_factory.mktemp("camera")
    return {"face": face_video(root / "face.y4m"), "empty": empty_video(root / "empty.y4m")}


@pytest.fixture(scope="module")
def playwright_driver(live_server: LiveServer) -> Iterator[Playwright]:
    """Playwright, per module and after the module's live server: its sync API
    keeps an event loop running in this thread, so ``asyncio.run`` is out while
    it runs (``support.browser.run_async`` runs coroutines in a thread)."""
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as driver:
        yield driver


def launch(driver: Playwright, video: Path) -> Browser:
    """Chromium with the fake camera playing ``video`` and permission granted."""
    args = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ]
    if os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses to start sandboxed as root
    return driver.chromium.launch(executable_path=str(CHROMIUM), args=args, timeout=60_000)


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright, camera_videos: dict[str, Path]) -> Iterator[Browser]:
    """One Chromium for the session; its camera films a face."""
    chromium = launch(playwright_driver, camera_videos["face"])
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def faceless_browser(
    playwright_driver: Playwright, camera_videos: dict[str, Path]
) -> Iterator[Browser]:
    """A Chromium whose camera films no face."""
    chromium = launch(playwright_driver, camera_videos["empty"])
    yield chromium
    chromium.close()


_WATCHES: weakref.WeakKeyDictionary[Page, PageWatch] = weakref.WeakKeyDictionary()


@pytest.fixture
def browser_filming(playwright_driver: Playwright) -> Iterator[Callable[[Path], Browser]]:
    """Start a Chromium whose camera plays a given Y4M file (closed after the test)."""
    started: list[Browser] = []

    def start(video: Path) -> Browser:
        started.append(launch(playwright_driver, video))
        return started[-1]

    yield start
    for chromium in started:
        chromium.close()


@pytest.fixture
def new_context(
    browser: Browser, live_server: LiveServer, request: pytest.FixtureRequest
) -> Iterator[Callable[..., BrowserContext]]:
    """Open browser contexts (Chinese, phone-sized by default) on the live
    server's clock; all are closed after the test."""
    opened: list[BrowserContext] = []
    shifted = request.node.get_closest_marker("real_clock") is None

    def make(
        chromium: Browser | None = None, *, width: int = 360, height: int = 740, **options: Any
    ) -> BrowserContext:
        options.setdefault("locale", "zh-CN")
        options.setdefault("timezone_id", "Europe/London")  # pages must show Shanghai time anyway
        context = (chromium or browser).new_context(
            viewport={"width": width, "height": height},
            base_url=live_server.url,
            permissions=["camera"],
            **options,
        )
        context.set_default_timeout(TIMEOUT_MS)
        if shifted:
            # The live server's clock (the test's, less the server's start-up time).
            context.clock.install(time=server_time(live_server))
        opened.append(context)
        return context

    yield make
    for context in opened:
        context.close()


@pytest.fixture
def page(new_context: Callable[..., BrowserContext]) -> Page:
    """A 360 px wide page in a fresh context, watched from the start (``watch``)."""
    tab = new_context().new_page()
    _WATCHES[tab] = PageWatch(tab)
    return tab


@pytest.fixture
def watch(page: Page) -> PageWatch:
    """What ``page`` did since it opened: console errors, exceptions, requests."""
    return _WATCHES[page]


@pytest.fixture
def screenshot(artefacts: Path, request: pytest.FixtureRequest) -> Callable[[Page, str], Path]:
    """Save a full-page screenshot as ``<test name>-<label>.png`` in the artefacts."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)

    def take(tab: Page, label: str) -> Path:
        path = artefacts / f"{stem}-{label}.png"
        tab.screenshot(path=str(path), full_page=True)
        return path

    return take
