"""The API reference at /schema in Chromium: it renders from the service's own
vendored Swagger UI, with no request leaving the origin (works offline), and
shows the security schemes; nothing on it breaks the page's
Content-Security-Policy (no violation reported)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect
from support.backends import LiveServer
from support.browser import PageWatch

VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', (event) =>
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`));
"""


def test_the_schema_page_renders_offline(
    live_server: LiveServer,
    page: Page,
    watch: PageWatch,
    screenshot: Callable[[Page, str], Path],
) -> None:
    page.context.route(lambda url: not url.startswith(live_server.url), lambda route: route.abort())
    page.add_init_script(VIOLATIONS)
    page.goto("/schema")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("healthcode")
    expect(page.locator(".swagger-ui")).to_contain_text("/guard/verifications")
    page.locator(".swagger-ui .btn.authorize").click()
    expect(page.locator(".swagger-ui .modal-ux")).to_contain_text("HC-Device")
    expect(page.locator(".swagger-ui .modal-ux")).to_contain_text("bearer")
    screenshot(page, "schema")
    page.locator(".swagger-ui .modal-ux .close-modal").click()
    page.locator(".swagger-ui .opblock-summary").first.click()
    expect(page.locator(".swagger-ui .opblock-body").first).to_be_visible()
    assert page.evaluate("window.__violations") == []
    assert watch.page_errors == [] and watch.console_errors == []
    assert watch.foreign_requests(live_server.url) == []
