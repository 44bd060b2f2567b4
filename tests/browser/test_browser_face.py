"""The holder's face check against the real service (face models) in
Chromium: the fake camera films no face, and the page shows the service's
reason and offers a retry that keeps the document entered."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page, expect
from support.backends import LiveServer
from support.faces import require_face_models


def to_face_step(page: Page) -> None:
    """Through the privacy notice and a typed resident ID to the face check."""
    page.goto("/")
    page.locator("#privacy-ok").click()
    expect(page.locator("#kind option").first).to_be_attached()
    page.locator("#kind").select_option("cn_resident_id")
    page.locator("#declared-name").fill("张三")
    page.locator("#number").fill("11010519491231002X")
    page.locator("#step-document button[type=submit]").click()
    expect(page.locator("#confirm-number")).to_have_text("11**************2X")
    page.locator("#confirm-ok").click()
    expect(page.locator("#face-view")).to_be_visible()


def test_no_face_on_camera_shows_the_servers_reason_and_a_retry(
    live_server: LiveServer,
    faceless_browser: Browser,
    new_context: Callable[..., BrowserContext],
    screenshot: Callable[[Page, str], Path],
) -> None:
    require_face_models()
    page = new_context(faceless_browser).new_page()
    to_face_step(page)
    with page.expect_response(
        lambda r: r.url.endswith("/enrollments") and r.request.method == "POST", timeout=90_000
    ) as answered:
        page.locator("#face-start").click()
    problem = answered.value.json()
    assert 400 <= answered.value.status < 500, problem
    error = page.locator("#face-error")
    expect(error).to_contain_text(problem["message_zh"])
    expect(error).to_contain_text("活体检测未通过")
    expect(page.locator("#face-start")).to_have_text("重新进行人脸核验")
    screenshot(page, "no-face")

    # The retry asks for a fresh challenge; the document entered is kept.
    with page.expect_request("**/enrollments/challenges"):
        page.locator("#face-start").click()
    expect(page.locator("#step-document")).to_be_hidden()
    expect(page.locator("#face-action")).to_have_attribute("data-action", re.compile(r"\w+"))
