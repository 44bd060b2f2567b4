"""The guard's pages in Chromium, beyond the verdicts of test_browser_guard.py:
scanning a live code with the camera (the fake camera films a QR code), and
the bad paths each saying clearly what happened: a refused camera, a wrong
token, a busy service (503 with Retry-After), no network. And 老幼助查
(/guard/assist): the masked result shows, then is cleared."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect
from support.backends import LiveServer
from support.browser import (
    Holder,
    PageWatch,
    add_holder,
    fetch_pass,
    fit_frame,
    new_token,
    write_y4m,
)
from support.documents import resident_id

from healthcode.core.passes.qr import qr_png

_numbers = itertools.count(1)

CAMERA_REFUSED = """
navigator.mediaDevices.getUserMedia = () =>
  Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
"""


def sign_in(page: Page, path: str, token: str) -> None:
    page.goto(path)
    expect(page.locator("#signin")).to_be_visible()
    page.locator("#token").fill(token)
    page.locator("#signin-form button[type=submit]").click()
    expect(page.locator("#signin")).to_be_hidden()


@pytest.fixture
def guard_token(live_server: LiveServer) -> str:
    return new_token(live_server, "guard", "gate 2")


@pytest.fixture
def holder(live_server: LiveServer) -> tuple[Holder, str]:
    person = add_holder(live_server, f"S{next(_numbers):07d}")
    return person, fetch_pass(live_server, person)


def qr_image(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "code.png"
    path.write_bytes(qr_png(text))
    return path


def test_the_camera_reads_a_live_code_and_the_guard_admits(
    live_server: LiveServer,
    browser_filming: Callable[[Path], Browser],
    new_context: Callable[..., BrowserContext],
    holder: tuple[Holder, str],
    guard_token: str,
    tmp_path: Path,
    screenshot: Callable[[Page, str], Path],
) -> None:
    person, pass_text = holder
    png = cv2.imdecode(np.frombuffer(qr_png(person.device.present(pass_text)), np.uint8), 1)
    frame = fit_frame(cv2.cvtColor(png, cv2.COLOR_BGR2RGB), 640, 480)
    video = write_y4m(tmp_path / "qr.y4m", [(frame, 1.0)])
    page = new_context(browser_filming(video)).new_page()
    watch = PageWatch(page)
    sign_in(page, "/guard", guard_token)
    page.locator("#start-camera").click()
    expect(page.locator("#verdict")).to_be_visible()
    expect(page.locator("#verdict-zh")).to_have_text("通行")
    expect(page.locator("#verdict-en")).to_have_text("ADMIT")
    expect(page.locator("#verdict")).to_have_attribute("data-admit", "true")
    screenshot(page, "camera-admit")
    # Scan next: the same code still in front of the camera is not checked again.
    page.locator("#verdict-next").click()
    expect(page.locator("#verdict")).to_be_hidden()
    page.wait_for_timeout(600)
    expect(page.locator("#verdict")).to_be_hidden()
    page.locator("#stop-camera").click()
    expect(page.locator("#camera")).to_be_hidden()
    assert watch.page_errors == []
    assert watch.foreign_requests(live_server.url) == []


def test_a_refused_camera_says_so_and_an_image_still_works(
    page: Page, guard_token: str, screenshot: Callable[[Page, str], Path]
) -> None:
    page.add_init_script(CAMERA_REFUSED)
    sign_in(page, "/guard", guard_token)
    page.locator("#start-camera").click()
    expect(page.locator("#scan-error")).to_contain_text("权限被拒绝")
    expect(page.locator("#pick-image")).to_be_attached()
    screenshot(page, "camera-refused")


def test_a_wrong_token_is_refused_at_sign_in(page: Page) -> None:
    page.goto("/guard")
    page.locator("#token").fill("hc_guard_nope.nope")
    page.locator("#signin-form button[type=submit]").click()
    expect(page.locator("#signin-error")).to_contain_text("令牌无效")
    expect(page.locator("#scanner")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('hc.guardToken')") is None


def test_the_token_lives_in_session_storage_only(page: Page, guard_token: str) -> None:
    sign_in(page, "/guard", guard_token)
    assert page.evaluate("sessionStorage.getItem('hc.guardToken')") == guard_token
    assert guard_token not in page.evaluate("JSON.stringify(Object.entries(localStorage))")
    page.reload()
    expect(page.locator("#scanner")).to_be_visible()  # same tab: still signed in
    page.locator("#signout").click()
    expect(page.locator("#signin")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('hc.guardToken')") is None


def test_a_busy_service_and_no_network_never_admit_and_say_why(
    page: Page,
    guard_token: str,
    holder: tuple[Holder, str],
    tmp_path: Path,
    screenshot: Callable[[Page, str], Path],
) -> None:
    person, pass_text = holder
    sign_in(page, "/guard", guard_token)

    def busy(route: Route) -> None:
        route.fulfill(
            status=503,
            headers={"Retry-After": "7", "Content-Type": "application/problem+json"},
            body='{"type":"about:blank","title":"Service Unavailable","status":503,'
            '"detail":"busy","code":"service_unavailable","message_en":"The service is busy.",'
            '"message_zh":"服务繁忙。","details":{}}',
        )

    page.route("**/guard/verifications", busy)
    page.locator("#pick-image").set_input_files(
        str(qr_image(tmp_path, person.device.present(pass_text)))
    )
    expect(page.locator("#verdict")).to_be_visible()
    expect(page.locator("#verdict-zh")).to_have_text("禁止通行")
    expect(page.locator("#verdict-detail")).to_contain_text("7 秒后重试")
    expect(page.locator("#verdict-detail")).to_contain_text("The service is busy.")
    screenshot(page, "busy-503")
    page.locator("#verdict-next").click()

    page.unroute("**/guard/verifications")
    page.route("**/guard/verifications", lambda route: route.abort("internetdisconnected"))
    page.locator("#pick-image").set_input_files(
        str(qr_image(tmp_path, person.device.present(pass_text)))
    )
    expect(page.locator("#verdict-zh")).to_have_text("禁止通行")
    expect(page.locator("#verdict-detail")).to_contain_text("网络不可用")
    expect(page.locator("#verdict-detail")).to_contain_text("No network connection")
    screenshot(page, "offline")


def test_an_image_without_a_code_or_with_another_code_says_so(
    page: Page, guard_token: str, tmp_path: Path
) -> None:
    sign_in(page, "/guard", guard_token)
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 255, np.uint8))
    page.locator("#pick-image").set_input_files(str(blank))
    expect(page.locator("#scan-error")).to_contain_text("未找到二维码")
    page.locator("#pick-image").set_input_files(str(qr_image(tmp_path, "https://example.com/")))
    expect(page.locator("#scan-error")).to_contain_text("HCP1:")
    expect(page.locator("#verdict")).to_be_hidden()


def test_assisted_check_shows_the_masked_result_then_clears_it(
    page: Page, guard_token: str, screenshot: Callable[[Page, str], Path]
) -> None:
    child = resident_id(dt.date(2016, 1, 1))
    sign_in(page, "/guard/assist", guard_token)
    expect(page.locator("#kind option[value=cn_resident_id]")).to_be_attached()
    page.locator("#kind").select_option("cn_resident_id")
    page.locator("#number").fill(child)
    page.locator("#assist-submit").click()
    result = page.locator("#result")
    expect(result).to_be_visible()
    expect(result).to_contain_text("未见异常")
    expect(result).to_contain_text("绿码")
    expect(page.locator("#result-number")).to_have_text(re.compile(r"^11\*+\d\d$|^11\*+\d[\dX]$"))
    expect(page.locator("#number")).to_have_value("")  # not kept on the page
    expect(page.locator("#result-valid")).to_contain_text("24:00")
    screenshot(page, "assist-result")
    page.clock.run_for(31_000)
    expect(result).to_be_hidden()
    expect(page.locator("#result-cleared")).to_be_visible()
    assert child[2:-2] not in page.content()


def test_assisted_check_refuses_an_adult_with_the_reason(page: Page, guard_token: str) -> None:
    sign_in(page, "/guard/assist", guard_token)
    page.locator("#number").fill(resident_id(dt.date(1990, 1, 1)))
    page.locator("#assist-submit").click()
    expect(page.locator("#assist-error")).to_be_visible()
    expect(page.locator("#result")).to_be_hidden()
