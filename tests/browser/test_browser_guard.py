"""The guard page (/guard) in Chromium: a guard signs in with a token, picks an
image of a holder's live code (made as the holder's phone would: a pass from
the live server, presented with the device key, drawn by
``healthcode passes qr``), and the page shows the service's verdict full
screen: 通行 ADMIT only for a genuine, current, green pass; 禁止通行 DO NOT
ADMIT with the label for yellow and red, and with the reason for a refused
(here: replayed) code or a 429; a revoked guard token is sent back to sign-in.
Each verdict has its own sound and vibration (``navigator.vibrate`` and the
Web Audio oscillators, spied on through an init script).
More bad paths and the assisted check: test_browser_guard_paths.py."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect
from support.backends import LiveServer
from support.browser import (
    Holder,
    PageWatch,
    add_holder,
    fetch_pass,
    list_statuses,
    new_token,
    revoke_tokens_labelled,
)

from healthcode.core.passes.qr import qr_png

ADMIT_EN = re.compile(r"^\s*admit\s*$", re.IGNORECASE)
REFUSE_EN = re.compile(r"^\s*do not admit\s*$", re.IGNORECASE)
_numbers = itertools.count(1)


@pytest.fixture
def holders(live_server: LiveServer) -> dict[str, tuple[Holder, str]]:
    """A holder of each colour with today's pass (colour -> holder, pass text)."""
    admin = new_token(live_server, "admin", "operator")
    people = {
        colour: add_holder(live_server, f"G{next(_numbers):07d}")
        for colour in ("green", "yellow", "red")
    }
    list_statuses(
        live_server, admin, {people["yellow"].number: "yellow", people["red"].number: "red"}
    )
    return {colour: (holder, fetch_pass(live_server, holder)) for colour, holder in people.items()}


def sign_in(page: Page, token: str) -> None:
    page.goto("/guard")
    expect(page.locator("#signin")).to_be_visible()
    page.locator("#token").fill(token)
    page.locator("#signin-form button[type=submit]").click()
    expect(page.locator("#scanner")).to_be_visible()


@pytest.fixture
def guard_page(live_server: LiveServer, page: Page) -> Page:
    """/guard, signed in with a fresh guard token."""
    sign_in(page, new_token(live_server, "guard", "gate 1"))
    return page


def live_code_png(tmp_path: Path, holder: Holder, pass_text: str, name: str) -> Path:
    """A live code (HCP1:) for ``pass_text`` signed now, as a QR code PNG."""
    path = tmp_path / f"{name}.png"
    path.write_bytes(qr_png(holder.device.present(pass_text)))
    return path


def pick(page: Page, image: Path) -> None:
    """Verify ``image`` through the page's image picker and wait for the verdict."""
    page.locator("#pick-image").set_input_files(str(image))
    expect(page.locator("#verdict")).to_be_visible()


def next_person(page: Page) -> None:
    page.locator("#verdict-next").click()
    expect(page.locator("#verdict")).to_be_hidden()


def test_green_admits_yellow_and_red_do_not(
    live_server: LiveServer,
    guard_page: Page,
    watch: PageWatch,
    holders: dict[str, tuple[Holder, str]],
    tmp_path: Path,
    screenshot: Callable[[Page, str], Path],
) -> None:
    page = guard_page
    verdict = page.locator("#verdict")

    pick(page, live_code_png(tmp_path, *holders["green"], "green"))
    expect(page.locator("#verdict-zh")).to_have_text(re.compile(r"^\s*通行\s*$"))
    expect(page.locator("#verdict-en")).to_have_text(ADMIT_EN)
    screenshot(page, "green-admit")
    next_person(page)

    for colour, label in (("yellow", "居家观察"), ("red", "集中观察")):
        pick(page, live_code_png(tmp_path, *holders[colour], colour))
        expect(page.locator("#verdict-zh")).to_have_text(re.compile(r"^\s*禁止通行\s*$"))
        expect(page.locator("#verdict-en")).to_have_text(REFUSE_EN)
        expect(verdict).to_contain_text(label)
        screenshot(page, f"{colour}-do-not-admit")
        next_person(page)

    assert watch.page_errors == []
    assert watch.foreign_requests(live_server.url) == []


def test_a_replayed_code_does_not_admit_and_says_why(
    guard_page: Page,
    holders: dict[str, tuple[Holder, str]],
    tmp_path: Path,
    screenshot: Callable[[Page, str], Path],
) -> None:
    page = guard_page
    code = live_code_png(tmp_path, *holders["green"], "green")
    pick(page, code)
    expect(page.locator("#verdict-zh")).to_have_text(re.compile(r"^\s*通行\s*$"))
    next_person(page)

    pick(page, code)  # the same live code again: a screenshot passed on
    expect(page.locator("#verdict-zh")).to_have_text(re.compile(r"^\s*禁止通行\s*$"))
    expect(page.locator("#verdict-en")).to_have_text(REFUSE_EN)
    expect(page.locator("#verdict")).to_contain_text("此动态码已被使用")
    expect(page.locator("#verdict")).to_contain_text("already used")
    screenshot(page, "replayed-do-not-admit")


def test_another_tab_is_not_signed_in(guard_page: Page) -> None:
    # The token is in this tab's sessionStorage only (test_browser_guard_paths.py).
    other_tab = guard_page.context.new_page()
    other_tab.goto("/guard")
    expect(other_tab.locator("#signin")).to_be_visible()
    expect(other_tab.locator("#scanner")).to_be_hidden()


def wait_until_refused(server: LiveServer, token: str) -> None:
    """Until the server refuses ``token`` (workers see a revocation within a second)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = httpx.post(
            f"{server.url}/guard/verifications",
            json={"presentation": "HCP1:not-a-code"},
            headers={"authorization": f"Bearer {token}"},
            timeout=30,
        )
        if answer.status_code == 401:
            return
        time.sleep(0.2)
    pytest.fail("the revoked token was still accepted after 30 s")


def test_a_revoked_token_sends_the_guard_back_to_sign_in(
    live_server: LiveServer,
    page: Page,
    holders: dict[str, tuple[Holder, str]],
    tmp_path: Path,
    screenshot: Callable[[Page, str], Path],
) -> None:
    # A wrong token at sign-in: test_browser_guard_paths.py.
    token = new_token(live_server, "guard", "gate to revoke")
    sign_in(page, token)
    revoke_tokens_labelled(live_server, "gate to revoke")
    wait_until_refused(live_server, token)
    page.locator("#pick-image").set_input_files(
        str(live_code_png(tmp_path, *holders["green"], "green"))
    )
    expect(page.locator("#signin")).to_be_visible()
    expect(page.locator("#signin-error")).to_contain_text("令牌无效或已吊销")
    expect(page.locator("#verdict")).to_be_hidden()
    screenshot(page, "token-revoked")


def test_a_rate_limited_guard_is_not_admitted_and_told_when_to_retry(
    guard_page: Page,
    holders: dict[str, tuple[Holder, str]],
    tmp_path: Path,
    screenshot: Callable[[Page, str], Path],
) -> None:
    # 503 and no network: test_browser_guard_paths.py.
    page = guard_page
    status = 429
    problem = {
        "type": "about:blank",
        "title": "busy",
        "status": status,
        "code": "rate_limited",
        "message_zh": "请求过于频繁。",
        "message_en": "Too many requests.",
    }
    page.route(
        "**/guard/verifications",
        lambda route: route.fulfill(
            status=status,
            headers={"Retry-After": "7", "Content-Type": "application/problem+json"},
            json=problem,
        ),
    )
    pick(page, live_code_png(tmp_path, *holders["green"], "green"))
    expect(page.locator("#verdict-zh")).to_have_text(re.compile(r"^\s*禁止通行\s*$"))
    expect(page.locator("#verdict-detail")).to_contain_text("请求过于频繁")
    expect(page.locator("#verdict-detail")).to_contain_text("7 秒后重试")
    screenshot(page, "rate-limited")


FEEDBACK_SPY = """
(() => {
  const seen = (window.__feedback = { vibrations: [], tones: [] });
  Navigator.prototype.vibrate = function (pattern) {
    seen.vibrations.push(pattern);
    return true;
  };
  const start = OscillatorNode.prototype.start;
  OscillatorNode.prototype.start = function (...args) {
    seen.tones.push({ type: this.type, frequency: this.frequency.value });
    return start.apply(this, args);
  };
})();
"""


def test_each_verdict_sounds_and_vibrates_its_own_way(
    live_server: LiveServer,
    page: Page,
    watch: PageWatch,
    holders: dict[str, tuple[Holder, str]],
    tmp_path: Path,
) -> None:
    page.add_init_script(FEEDBACK_SPY)
    sign_in(page, new_token(live_server, "guard", "gate 3"))
    feedback = "window.__feedback"

    pick(page, live_code_png(tmp_path, *holders["green"], "green"))
    expect(page.locator("#verdict")).to_have_attribute("data-admit", "true")
    admit = page.evaluate(feedback)
    assert admit["vibrations"] == [120], admit  # one short buzz
    assert admit["tones"] == [{"type": "sine", "frequency": 880}], admit  # one high tone
    next_person(page)

    pick(page, live_code_png(tmp_path, *holders["red"], "red"))
    expect(page.locator("#verdict")).to_have_attribute("data-admit", "false")
    refuse = page.evaluate(feedback)
    assert refuse["vibrations"][1:] == [[300, 120, 300, 120, 300]], refuse  # three long buzzes
    assert refuse["tones"][1:] == [{"type": "square", "frequency": 220}] * 3, refuse
    assert watch.page_errors == []
