"""The holder app (/) in Chromium at 360 px: a first visit loads without errors
and asks for nothing from another origin; a holder whose phone (the page's own
WebCrypto key in IndexedDB) is bound to a subject sees the status card: the
label, the guidance, the masked name and number, and a live code that a guard
admits, renewed by the page itself.

The subject is written straight into the live server's database with the
public half of the key the page made (the face work of enrollment is tested
elsewhere)."""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import Page, expect
from support.backends import LiveServer
from support.browser import PageWatch, add_subject, list_statuses, masked_number, new_token

_numbers = itertools.count(1)

DEVICE = "/static/js/holder/device.js"
STORE = "/static/js/holder/store.js"


def page_device_key(page: Page) -> bytes:
    """The page's device key (made on first use): its public half, DER."""
    spki = page.evaluate(
        """async ([device]) => {
            const d = await import(device);
            return d.publicKeySpki((await d.deviceKeys()).publicKey);
        }""",
        [DEVICE],
    )
    return base64.b64decode(spki)


def bind_page_to_subject(page: Page, subject_id: str, surname: str, number: str) -> None:
    """What a finished enrollment leaves in the page's IndexedDB."""
    page.evaluate(
        """async ([device, store, subject]) => {
            const d = await import(device);
            const s = await import(store);
            await s.set("subject", subject);
            await d.setSubjectId(subject.subject_id);
        }""",
        [
            DEVICE,
            STORE,
            {
                "subject_id": subject_id,
                "kind": "passport",
                "masked_name": surname,
                "masked_number": masked_number(number),
            },
        ],
    )


@pytest.fixture
def enrolled(live_server: LiveServer, page: Page) -> Callable[[str | None], str]:
    """Bind ``page`` to a new subject (listed yellow or red if asked); the number."""

    def enroll(colour: str | None = None) -> str:
        number = f"H{next(_numbers):07d}"
        page.goto("/")
        # The page has made and stored its key by the time it shows the notice.
        expect(page.locator("#step-privacy")).to_be_visible()
        subject = add_subject(live_server, number, page_device_key(page))
        if colour is not None:
            admin = new_token(live_server, "admin", "operator")
            list_statuses(live_server, admin, {number: colour})
        bind_page_to_subject(page, subject, "QUARTERMAINE", number)
        page.reload()
        return number

    return enroll


def read_live_code(page: Page, tmp_path: Path) -> str:
    """The live code on the page's canvas, read back as a phone camera would."""
    shot = tmp_path / "qr.png"
    page.locator("#qr").screenshot(path=str(shot))
    with Image.open(shot) as image:
        found = zxingcpp.read_barcodes(image.convert("L"))
    assert found, "no QR code on the page"
    text: str = found[0].text
    return text


def test_a_first_visit_loads_at_360px_without_errors_and_stays_on_the_origin(
    live_server: LiveServer,
    page: Page,
    watch: PageWatch,
    screenshot: Callable[[Page, str], Path],
) -> None:
    page.goto("/")
    expect(page.locator("#enroll-view")).to_be_visible()
    expect(page.locator("#step-privacy")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, "no sideways scrolling"
    screenshot(page, "first-visit")
    page.wait_for_load_state("networkidle")
    assert watch.console_errors == [] and watch.page_errors == []
    assert watch.foreign_requests(live_server.url) == []
    assert any(url.endswith("/static/js/holder/app.js") for url in watch.requests)


def test_the_status_card_and_a_live_code_a_guard_admits(
    live_server: LiveServer,
    page: Page,
    watch: PageWatch,
    enrolled: Callable[[str | None], str],
    tmp_path: Path,
    screenshot: Callable[[Page, str], Path],
) -> None:
    number = enrolled(None)
    card = page.locator("#card")
    expect(card).to_be_visible()
    expect(card).to_have_attribute("data-colour", "green")
    expect(page.locator("#card-label")).to_have_text("未见异常")
    expect(page.locator("#card-colour")).to_have_text("绿码")
    expect(page.locator("#card-name")).to_have_text("QUARTERMAINE")
    expect(page.locator("#card-number")).to_have_text(masked_number(number))
    expect(page.locator("#card-valid")).to_contain_text("24:00")
    expect(page.locator("#guidance")).to_contain_text("口罩")
    expect(page.locator("#refreshed")).to_contain_text("北京时间")
    expect(page.locator("#live")).to_be_visible()
    assert number not in page.content()
    screenshot(page, "green-card")

    code = read_live_code(page, tmp_path)
    assert code.startswith("HCP1:")
    guard = new_token(live_server, "guard", "gate 2")
    verdict = httpx.post(
        f"{live_server.url}/guard/verifications",
        json={"presentation": code},
        headers={"authorization": f"Bearer {guard}"},
        timeout=30,
    ).json()
    assert (verdict["admit"], verdict["colour"]) == (True, "green"), verdict

    assert watch.console_errors == [] and watch.page_errors == []
    assert watch.foreign_requests(live_server.url) == []


def test_a_red_card_says_what_to_do(
    page: Page,
    enrolled: Callable[[str | None], str],
    screenshot: Callable[[Page, str], Path],
) -> None:
    enrolled("red")  # yellow: test_browser_holder_card.py
    expect(page.locator("#card")).to_have_attribute("data-colour", "red")
    expect(page.locator("#card-label")).to_have_text("集中观察")
    expect(page.locator("#card-colour")).to_have_text("红码")
    expect(page.locator("#guidance")).to_contain_text("疾病预防控制中心")
    screenshot(page, "red-card")
