"""The whole journey through the pages only, in Chromium, against the live
server with the real face models:

1. a passport holder photographs the data page (a synthetic page with a real
   portrait, as in
   ``test_enrollment.py::test_enroll_with_a_photographed_passport_page``),
   passes the face check in front of the fake camera and sees the green card;
2. the code renews: two screenshots of the holder's page 6 s apart (on the
   page's clock) hold different codes, and both verify;
3. the guard page reads the code from a screenshot of the holder's page (the
   image picked on the guard page) and shows 通行 admit;
4. the authority's list (imported through the admin API) makes the holder
   red: the green code still on the phone is refused (its pass was revoked by
   the import); the holder's card turns red with its guidance when it
   refreshes, and the guard page shows 禁止通行 with the red label;
5. a dependant is added through the pages (data page photo, face check) and
   the holder switches between the two cards.

Every step leaves a screenshot in the test artefacts
(``<test name>-<step>.png``).

The liveness challenge is drawn at random by the server; this module's server
runs with ``HEALTHCODE_LIVENESS_ACTIONS=turn_right,open_mouth`` (an operator
setting), so that every challenge is those two actions in some order. The
camera's film answers both orders: Obama facing the camera (obama_1), then
turned to his right with the mouth open (obama_2: both actions start in one
frame, and the judge takes simultaneous onsets in the challenge's order), held
far longer than the check lasts. The film loops, so the test starts the check
just after the film shows the neutral face again: each scene carries a marker
in its top-left corner (black: neutral, white: turned) that the test reads
from the page's own video element.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, FilePayload, Page, expect
from support.backends import LiveServer
from support.browser import (
    data_page_png,
    list_statuses,
    new_token,
    server_time,
    turning_film,
    wait_for_scene,
)
from support.faces import require_face_models

ACTIONS = "turn_right,open_mouth"
NUMBER = "P7788990"
DEPENDANT_NUMBER = "P5566778"
RENEW_MS = 5_000
"""The page renews its live code this often (static/js/holder/livecode.js)."""
SLOW_MS = 120_000
"""The face check runs the real models on a shared machine: a generous wait."""


@pytest.fixture(scope="module")
def _liveness_actions_env() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HEALTHCODE_LIVENESS_ACTIONS", ACTIONS)
        yield


@pytest.fixture(scope="module")
def live_server(_liveness_actions_env: None, live_server: LiveServer) -> LiveServer:
    """The live server (tests/conftest.py), started with the actions restricted."""
    return live_server


def face_check(page: Page, answer_path: str) -> None:
    """Start the face check just after the film shows the neutral face again,
    and wait for the service to accept the answer (POST ``answer_path``)."""
    expect(page.locator("#face-view")).to_be_visible()
    wait_for_scene(page, white=True)
    wait_for_scene(page, white=False)
    with (
        page.expect_response("**/enrollments/challenges") as issued,
        page.expect_response(
            lambda r: r.url.endswith(answer_path) and r.request.method == "POST",
            timeout=SLOW_MS,
        ) as answered,
    ):
        page.locator("#face-start").click()
    assert sorted(issued.value.json()["actions"]) == ["open_mouth", "turn_right"]
    assert answered.value.status == 201, answered.value.text()


def give_data_page(page: Page, name: str, png: bytes) -> None:
    """The document step: a passport, the typed name, a photo of the data page."""
    expect(page.locator("#kind option[value=passport]")).to_be_attached()
    page.locator("#kind").select_option("passport")
    page.locator("#declared-name").fill(name)
    page.locator("input[name=how][value=file]").check()
    passport = FilePayload(name="passport.png", mimeType="image/png", buffer=png)
    page.locator("#doc-image").set_input_files(files=[passport])
    expect(page.locator("#doc-preview")).to_be_visible()


def enroll(page: Page, screenshot: Callable[[Page, str], Path]) -> None:
    """From a first visit to the green card."""
    page.goto("/")
    page.locator("#privacy-ok").click()
    give_data_page(page, "QUARTERMAINE ALLAN JAMES", data_page_png(NUMBER))
    screenshot(page, "1-document")
    page.locator("#step-document button[type=submit]").click()
    expect(page.locator("#confirm-name")).to_have_text("QUARTERMAINE")
    page.locator("#confirm-ok").click()
    face_check(page, "/enrollments")
    card = page.locator("#card")
    expect(card).to_have_attribute("data-colour", "green", timeout=SLOW_MS)
    expect(page.locator("#card-name")).to_have_text("QUARTERMAINE")
    expect(page.locator("#card-number")).to_have_text("P7****90")
    expect(page.locator("#live")).to_be_visible()


def read_code(shot: Path) -> str:
    """The live code in a screenshot, read as a phone camera would."""
    import zxingcpp
    from PIL import Image as PILImage

    with PILImage.open(shot) as image:
        found = zxingcpp.read_barcodes(image.convert("L"))
    assert len(found) == 1, f"{len(found)} codes in {shot.name}"
    text: str = found[0].text
    assert text.startswith("HCP1:"), text
    return text


def renew_code(page: Page, milliseconds: int) -> None:
    """Move the page's clock on by ``milliseconds`` (at least one renewal, no
    real waiting) and wait for the new code to be drawn."""
    before = page.locator("#qr").get_attribute("data-code")
    page.clock.run_for(milliseconds)
    expect(page.locator("#qr")).not_to_have_attribute("data-code", before or "")


def fresh_code(page: Page, server: LiveServer) -> None:
    """Put the page's clock on the server's (the test's) and have it draw a
    fresh code: the clock is set one renewal behind and run on to now, so that a
    renewal fires (no real waiting) and the code shown is signed at the
    server's "now", whatever the page's clock did before (moved on by the test,
    or late on a loaded machine)."""
    before = page.locator("#qr").get_attribute("data-code")
    page.clock.set_system_time(server_time(server) - RENEW_MS / 1000)
    page.clock.run_for(RENEW_MS)
    expect(page.locator("#qr")).not_to_have_attribute("data-code", before or "")


def verify(server: LiveServer, token: str, code: str) -> dict[str, object]:
    response = httpx.post(
        f"{server.url}/guard/verifications",
        json={"presentation": code},
        headers={"authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    verdict: dict[str, object] = response.json()
    return verdict


def open_guard_page(page: Page, token: str) -> None:
    page.goto("/guard")
    page.locator("#token").fill(token)
    page.locator("#signin-form button[type=submit]").click()
    expect(page.locator("#scanner")).to_be_visible()


def show_to_guard(guard: Page, shot: Path) -> None:
    """The guard picks ``shot`` (a screenshot of the holder's page) on the guard page."""
    if guard.locator("#verdict").is_visible():
        guard.locator("#verdict-next").click()
        expect(guard.locator("#verdict")).to_be_hidden()
    guard.locator("#pick-image").set_input_files(str(shot))
    expect(guard.locator("#verdict")).to_be_visible()


def add_dependant(page: Page, screenshot: Callable[[Page, str], Path]) -> None:
    """Through the pages: the notice, the dependant's data page, the face check."""
    page.locator("#add-dependant").click()
    expect(page.locator("#enroll-heading")).to_have_text("添加家人")
    page.locator("#privacy-ok").click()
    give_data_page(page, "MORGAN ELLA", data_page_png(DEPENDANT_NUMBER, "MORGAN", "ELLA"))
    page.locator("#step-document button[type=submit]").click()
    expect(page.locator("#confirm-name")).to_have_text("MORGAN")
    screenshot(page, "7-dependant-document")
    page.locator("#confirm-ok").click()
    face_check(page, "/me/dependant-enrollments")


def test_the_whole_journey_through_the_pages(
    live_server: LiveServer,
    browser_filming: Callable[[Path], Browser],
    new_context: Callable[..., BrowserContext],
    screenshot: Callable[[Page, str], Path],
    tmp_path: Path,
) -> None:
    require_face_models()
    chromium = browser_filming(turning_film(tmp_path / "turning.y4m"))
    holder = new_context(chromium).new_page()
    enroll(holder, screenshot)
    screenshot(holder, "2-green-card")
    token = new_token(live_server, "guard", "journey gate")

    # The code renews: two screenshots 6 s apart (on the page's clock).
    fresh_code(holder, live_server)
    first_shot = screenshot(holder, "3-code-first")
    first_clock = holder.locator("#clock").inner_text()
    renew_code(holder, 6_000)
    second_shot = screenshot(holder, "3-code-6s-later")
    assert holder.locator("#clock").inner_text() != first_clock, "the clock ticks"
    first, second = read_code(first_shot), read_code(second_shot)
    assert first != second
    first_verdict = verify(live_server, token, first)
    assert first_verdict["admit"] is True, (first_verdict["code"], first_verdict["message_en"])
    assert first_verdict["colour"] == "green"

    # The guard page reads the second code from its screenshot: admit.
    guard = new_context(chromium).new_page()
    open_guard_page(guard, token)
    show_to_guard(guard, second_shot)
    expect(guard.locator("#verdict")).to_have_attribute("data-admit", "true")
    expect(guard.locator("#verdict-zh")).to_have_text("通行")
    expect(guard.locator("#verdict-en")).to_have_text("ADMIT")
    screenshot(guard, "4-guard-admit")

    # The authority lists the holder red: the green pass on the phone is revoked...
    admin = new_token(live_server, "admin", "journey authority")
    list_statuses(live_server, admin, {NUMBER: "red"})
    fresh_code(holder, live_server)
    expect(holder.locator("#card")).to_have_attribute("data-colour", "green")
    show_to_guard(guard, screenshot(holder, "5-green-code-after-the-list"))
    expect(guard.locator("#verdict")).to_have_attribute("data-admit", "false")
    expect(guard.locator("#verdict-zh")).to_have_text("禁止通行")
    expect(guard.locator("#verdict")).to_have_attribute("data-code", "revoked")
    screenshot(guard, "5-guard-revoked")

    # ...the card turns red with its guidance when it refreshes...
    holder.locator("#refresh").click()
    expect(holder.locator("#card")).to_have_attribute("data-colour", "red")
    expect(holder.locator("#card-label")).to_have_text("集中观察")
    expect(holder.locator("#card-colour")).to_have_text("红码")
    expect(holder.locator("#guidance")).to_contain_text("疾病预防控制中心")
    expect(holder.locator("#live")).to_be_visible()
    fresh_code(holder, live_server)
    red_shot = screenshot(holder, "6-red-card")

    # ...and the guard sees do-not-admit with the red label.
    show_to_guard(guard, red_shot)
    verdict = guard.locator("#verdict")
    expect(verdict).to_have_attribute("data-admit", "false")
    expect(verdict).to_have_class(re.compile(r"\bstatus-red\b"))
    expect(guard.locator("#verdict-zh")).to_have_text("禁止通行")
    expect(guard.locator("#verdict-en")).to_have_text("DO NOT ADMIT")
    expect(guard.locator("#verdict-detail")).to_contain_text("集中观察")
    screenshot(guard, "6-guard-do-not-admit")

    # A dependant, added through the pages; the holder switches between the cards.
    add_dependant(holder, screenshot)
    people = holder.locator("#people")
    expect(people).to_be_visible()
    people.locator("button", has_text="MORGAN").click()
    expect(holder.locator("#card")).to_have_attribute("data-colour", "green")
    expect(holder.locator("#card-name")).to_have_text("MORGAN")
    expect(holder.locator("#card-number")).to_have_text("P5****78")
    expect(holder.locator("#live")).to_be_hidden()
    expect(holder.locator("#no-code")).to_be_visible()
    screenshot(holder, "8-dependant-card")
    people.locator("button", has_text="本人").click()
    expect(holder.locator("#card")).to_have_attribute("data-colour", "red")
    expect(holder.locator("#card-name")).to_have_text("QUARTERMAINE")
    expect(holder.locator("#live")).to_be_visible()
    screenshot(holder, "9-back-to-own-card")
