"""A wrong action, answered for real: the service draws its challenges from
``turn_left`` and ``blink`` only (``HEALTHCODE_LIVENESS_ACTIONS``, an operator
setting), and the fake camera films a face that turns to its *right* and opens
its mouth (``support.browser.turning_film``). The real liveness judge (face
models) refuses the answer, and the page says what it saw, in words (an action
that was not asked for), and offers a retry that keeps the document."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from support.backends import LiveServer
from support.browser import turning_film, wait_for_scene
from support.faces import require_face_models

SLOW_MS = 120_000
"""The face check runs the real models on a shared machine: a generous wait."""


@pytest.fixture(scope="module")
def _liveness_actions_env() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HEALTHCODE_LIVENESS_ACTIONS", "turn_left,blink")
        yield


@pytest.fixture(scope="module")
def live_server(_liveness_actions_env: None, live_server: LiveServer) -> LiveServer:
    """The live server (tests/conftest.py), asking for actions the film never shows."""
    return live_server


def test_a_wrong_action_is_named_and_the_retry_keeps_the_document(
    live_server: LiveServer,
    browser_filming: Callable[[Path], Browser],
    new_context: Callable[..., BrowserContext],
    screenshot: Callable[[Page, str], Path],
    tmp_path: Path,
) -> None:
    require_face_models()
    page = new_context(browser_filming(turning_film(tmp_path / "turning.y4m"))).new_page()
    page.goto("/")
    page.locator("#privacy-ok").click()
    expect(page.locator("#kind option").first).to_be_attached()
    page.locator("#kind").select_option("cn_resident_id")
    page.locator("#declared-name").fill("张三")
    page.locator("#number").fill("11010519491231002X")
    page.locator("#step-document button[type=submit]").click()
    page.locator("#confirm-ok").click()
    expect(page.locator("#face-view")).to_be_visible()

    wait_for_scene(page, white=True)
    wait_for_scene(page, white=False)
    with (
        page.expect_response("**/enrollments/challenges") as issued,
        page.expect_response(
            lambda r: r.url.endswith("/enrollments") and r.request.method == "POST",
            timeout=SLOW_MS,
        ) as answered,
    ):
        page.locator("#face-start").click()
    assert sorted(issued.value.json()["actions"]) == ["blink", "turn_left"]
    problem = answered.value.json()
    assert 400 <= answered.value.status < 500, problem
    assert problem["code"] == "liveness_failed", problem
    assert "unexpected_action:turn_right" in problem["details"]["reasons"], problem

    error = page.locator("#face-error")
    expect(error).to_contain_text("活体检测未通过")
    expect(error).to_contain_text(re.compile(r"做了未要求的动作（[^）]*向右转头"))
    expect(page.locator("#face-start")).to_have_text("重新进行人脸核验")
    screenshot(page, "wrong-action")

    # The retry asks for a fresh challenge; the document entered is kept.
    with page.expect_request("**/enrollments/challenges"):
        page.locator("#face-start").click()
    expect(page.locator("#step-document")).to_be_hidden()
    expect(page.locator("#face-action")).to_have_attribute("data-action", re.compile(r"\w+"))
