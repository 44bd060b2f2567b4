"""Every page in Chromium: usable at 360 px (no sideways scrolling), no console
error, nothing fetched from another origin, Chinese by default and English
when the browser prefers it (Accept-Language) or the switch is pressed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from support.backends import LiveServer
from support.browser import PageWatch

PAGES = {
    "/": ("#enroll-view", "申领健康码", "Get a health code"),
    "/guard": ("#signin", "查验员登录", "Guard sign-in"),
    "/guard/assist": ("#signin", "查验员登录", "Guard sign-in"),
}
"""Each page: its first screen, and a heading on it in Chinese and English."""


@pytest.mark.parametrize("path", list(PAGES))
def test_each_page_at_360px_without_errors_on_its_own_origin(
    live_server: LiveServer,
    page: Page,
    watch: PageWatch,
    path: str,
    screenshot: Callable[[Page, str], Path],
) -> None:
    first_screen, zh, _ = PAGES[path]
    page.goto(path)
    expect(page.locator(first_screen)).to_be_visible()
    expect(page.locator(first_screen)).to_contain_text(zh)
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    # Else Chromium asks for /favicon.ico, a 404 and a console error (at some point).
    expect(page.locator('link[rel~="icon"]')).to_have_count(1)
    page.wait_for_load_state("networkidle")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, "no sideways scrolling"
    screenshot(page, "zh-360")
    assert watch.failed == []
    assert watch.console_errors == [] and watch.page_errors == []
    assert watch.foreign_requests(live_server.url) == []


@pytest.mark.parametrize("path", list(PAGES))
def test_english_from_accept_language_and_from_the_switch(
    new_context: Callable[..., BrowserContext],
    path: str,
    screenshot: Callable[[Page, str], Path],
) -> None:
    first_screen, zh, en = PAGES[path]
    english = new_context(locale="en-GB").new_page()
    english.goto(path)
    expect(english.locator("html")).to_have_attribute("lang", "en")
    expect(english.locator(first_screen)).to_contain_text(en)
    screenshot(english, "en-360")

    chinese = new_context().new_page()
    chinese.goto(path)
    expect(chinese.locator(first_screen)).to_contain_text(zh)
    chinese.locator("#lang-switch").click()
    expect(chinese.locator(first_screen)).to_contain_text(en)
    chinese.locator("#lang-switch").click()
    expect(chinese.locator(first_screen)).to_contain_text(zh)
