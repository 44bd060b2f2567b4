"""The holder app (/) in Chromium: the page makes its own device key
(WebCrypto, non-extractable, IndexedDB), signs its requests (HC-Device) and
builds its live codes (HCP1:) itself; the guard API admits them. The card and
its renewing code keep working offline once loaded (service worker).

Bad paths, each with a clear message: the camera refused, the server's reason
for a failed face check (with a retry that keeps the document), an expired
challenge, and a busy service (429 with Retry-After) while the last card stays
on screen, offline or overloaded at the face check. The server's refusals are
played by ``page.route`` where producing them for real needs the face models
or an overloaded service (a wrong action for real: test_browser_face_wrong_action.py,
no face: test_browser_face.py). The screen is kept awake while the code shows
(Screen Wake Lock, spied on), and the card works where the API is missing."""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, Route, expect
from support.backends import LiveServer
from support.browser import (
    PageWatch,
    add_subject,
    list_statuses,
    masked_number,
    new_token,
    server_time,
)

_numbers = itertools.count(1)

DEVICE_KEY = """async () => {
  const device = await import('/static/js/holder/device.js');
  const pair = await device.deviceKeys();
  return {spki: await device.publicKeySpki(pair.publicKey),
          extractable: pair.privateKey.extractable};
}"""

BIND = """async ([id, subject]) => {
  const device = await import('/static/js/holder/device.js');
  const store = await import('/static/js/holder/store.js');
  await store.set('subject', subject);
  await device.setSubjectId(id);
}"""


def bind_page_to_new_subject(server: LiveServer, page: Page, number: str) -> str:
    """Write a passport holder whose device key is the page's own (the face work
    of enrollment is tested elsewhere), and tell the page its subject id."""
    key_info = page.evaluate(DEVICE_KEY)
    assert key_info["extractable"] is False
    der = base64.b64decode(key_info["spki"])

    subject_id = add_subject(server, number, der)
    subject = {
        "subject_id": subject_id,
        "kind": "passport",
        "masked_name": "QUARTERMAINE",
        "masked_number": masked_number(number),
    }
    page.evaluate(BIND, [subject_id, subject])
    return subject_id


def guard_verdict(server: LiveServer, token: str, code: str) -> dict[str, object]:
    response = httpx.post(
        f"{server.url}/guard/verifications",
        json={"presentation": code},
        headers={"authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    verdict: dict[str, object] = response.json()
    return verdict


def shown_code(page: Page) -> str:
    code = page.locator("#qr").get_attribute("data-code")
    assert code and code.startswith("HCP1:")
    return code


@pytest.mark.parametrize("colour", ["green", "yellow"])
def test_the_card_shows_a_live_code_the_guard_api_accepts(
    live_server: LiveServer,
    page: Page,
    watch: PageWatch,
    colour: str,
    screenshot: Callable[[Page, str], Path],
) -> None:
    number = f"H{next(_numbers):07d}"
    page.goto("/")
    expect(page.locator("#step-privacy")).to_be_visible()
    bind_page_to_new_subject(live_server, page, number)
    if colour != "green":
        admin = new_token(live_server, "admin", "operator")
        list_statuses(live_server, admin, {number: colour})
    page.reload()
    card = page.locator("#card")
    expect(card).to_have_attribute("data-colour", colour)
    expect(page.locator("#card-name")).to_have_text("QUARTERMAINE")
    expect(page.locator("#card-number")).to_have_text(number[:2] + "****" + number[-2:])
    expect(page.locator("#card-valid")).to_contain_text("24:00")
    expect(page.locator("#card-label")).to_have_text(
        "未见异常" if colour == "green" else "居家观察"
    )
    expect(page.locator("#guidance")).to_contain_text("居委会" if colour == "yellow" else "口罩")
    expect(page.locator("#live")).to_be_visible()
    first = shown_code(page)
    screenshot(page, "card")
    guard = new_token(live_server, "guard", "gate 1")
    verdict = guard_verdict(live_server, guard, first)
    assert verdict["admit"] is (colour == "green"), verdict
    # Renewed every 5 s with a fresh device signature.
    page.clock.run_for(5_100)
    expect(page.locator("#qr")).not_to_have_attribute("data-code", first)
    assert guard_verdict(live_server, guard, shown_code(page))["code"] == "accepted"
    assert watch.page_errors == [] and watch.console_errors == [], watch.console_errors


def test_offline_the_card_and_its_code_keep_working(
    live_server: LiveServer,
    page: Page,
    screenshot: Callable[[Page, str], Path],
) -> None:
    page.goto("/")
    expect(page.locator("#step-privacy")).to_be_visible()
    bind_page_to_new_subject(live_server, page, f"H{next(_numbers):07d}")
    page.reload()
    expect(page.locator("#live")).to_be_visible()
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.reload()  # now controlled by the service worker
    expect(page.locator("#live")).to_be_visible()
    page.context.set_offline(True)
    page.reload()
    expect(page.locator("#offline")).to_be_visible()
    expect(page.locator("#offline")).to_contain_text("离线")
    expect(page.locator("#card")).to_have_attribute("data-colour", "green")
    first = shown_code(page)
    page.clock.run_for(5_100)
    expect(page.locator("#qr")).not_to_have_attribute("data-code", first)
    screenshot(page, "offline")
    page.context.set_offline(False)
    guard = new_token(live_server, "guard", "gate 1")
    assert guard_verdict(live_server, guard, shown_code(page))["admit"] is True


REFUSE_CAMERA = """
navigator.mediaDevices.getUserMedia = () =>
  Promise.reject(new DOMException('denied', 'NotAllowedError'));
"""


def problem(
    status: int, code: str, zh: str, en: str, retry_after: int | None = None
) -> Callable[[Route], None]:
    def answer(route: Route) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after else {}
        route.fulfill(
            status=status,
            content_type="application/problem+json",
            headers=headers,
            body=json.dumps({"status": status, "code": code, "message_zh": zh, "message_en": en}),
        )

    return answer


def to_face_step(page: Page) -> None:
    """Privacy notice, a typed number, the masked confirmation, the face step."""
    page.goto("/")
    expect(page.locator("#step-privacy")).to_be_visible()
    page.locator("#privacy-ok").click()
    expect(page.locator("#kind option").first).to_be_attached()
    page.locator("#kind").select_option("cn_resident_id")
    page.locator("#declared-name").fill("张三")
    page.locator("#number").fill("11010519491231002X")
    page.locator("#step-document button[type=submit]").click()
    expect(page.locator("#confirm-number")).to_have_text("11**************2X")
    expect(page.locator("#confirm-name")).to_have_text("张")
    page.locator("#confirm-ok").click()
    expect(page.locator("#face-view")).to_be_visible()


def test_the_servers_reason_is_shown_and_the_retry_keeps_the_document(
    live_server: LiveServer, page: Page, screenshot: Callable[[Page, str], Path]
) -> None:
    page.route(
        "**/enrollments",
        problem(403, "face_mismatch", "人脸与证件照片不一致。", "The face does not match."),
    )
    to_face_step(page)
    with page.expect_request("**/enrollments/challenges"):
        page.locator("#face-start").click()
    expect(page.locator("#face-action")).to_have_attribute("data-action", re.compile(r"\w+"))
    expect(page.locator("#face-error")).to_contain_text("人脸与证件照片不一致", timeout=30_000)
    expect(page.locator("#face-start")).to_have_text("重新进行人脸核验")
    screenshot(page, "face-refused")
    page.unroute("**/enrollments")
    page.route(
        "**/enrollments",
        problem(409, "challenge_expired", "活体检测已过期。", "The challenge has expired."),
    )
    with page.expect_request("**/enrollments/challenges"):
        page.locator("#face-start").click()
    expect(page.locator("#face-error")).to_contain_text("活体检测已过期", timeout=30_000)


def test_a_refused_camera_says_so(
    live_server: LiveServer, page: Page, screenshot: Callable[[Page, str], Path]
) -> None:
    page.add_init_script(REFUSE_CAMERA)
    to_face_step(page)
    expect(page.locator("#face-error")).to_contain_text("权限被拒绝")
    page.locator("#face-start").click()
    expect(page.locator("#face-error")).to_contain_text("权限被拒绝")
    screenshot(page, "camera-refused")


def test_a_busy_service_keeps_the_card_and_says_when_to_retry(
    live_server: LiveServer, page: Page, screenshot: Callable[[Page, str], Path]
) -> None:
    page.goto("/")
    expect(page.locator("#step-privacy")).to_be_visible()
    bind_page_to_new_subject(live_server, page, f"H{next(_numbers):07d}")
    page.reload()
    expect(page.locator("#live")).to_be_visible()
    page.route(
        "**/me/status", problem(429, "rate_limited", "请求过于频繁。", "Too many requests.", 30)
    )
    page.locator("#refresh").click()
    expect(page.locator("#card-error")).to_contain_text("30")
    expect(page.locator("#live")).to_be_visible()
    expect(page.locator("#card")).to_have_attribute("data-colour", "green")
    screenshot(page, "busy")


def test_dependants_switch_cards_and_english_switches_the_card(
    live_server: LiveServer, page: Page, screenshot: Callable[[Page, str], Path]
) -> None:
    page.goto("/")
    expect(page.locator("#step-privacy")).to_be_visible()
    bind_page_to_new_subject(live_server, page, f"H{next(_numbers):07d}")
    valid_until = page.evaluate("new Date(Date.now() + 3600e3).toISOString()")
    dependant = {
        "slot": 1,
        "subject": {
            "subject_id": "cd" * 32,
            "kind": "cn_resident_id",
            "masked_name": "李",
            "masked_number": "11**************2X",
        },
        "status": {
            "colour": "red",
            "label_zh": "集中观察",
            "label_en": "Central observation",
            "valid_until": valid_until,
        },
    }
    page.route(
        "**/me/dependants",
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps([dependant])
        ),
    )
    page.reload()
    expect(page.locator("#live")).to_be_visible()
    page.locator("#people button", has_text="李").click()
    expect(page.locator("#card")).to_have_attribute("data-colour", "red")
    expect(page.locator("#card-label")).to_have_text("集中观察")
    expect(page.locator("#guidance")).to_contain_text("疾病预防控制中心")
    expect(page.locator("#live")).to_be_hidden()
    expect(page.locator("#no-code")).to_be_visible()
    screenshot(page, "dependant")
    page.locator("#lang-switch").click()
    expect(page.locator("#card-label")).to_have_text("Central observation")
    expect(page.locator("#guidance")).to_contain_text("disease-control centre")
    page.locator("#people button", has_text="Me").click()
    expect(page.locator("#card")).to_have_attribute("data-colour", "green")
    expect(page.locator("#live")).to_be_visible()
    screenshot(page, "me-english")


def test_what_the_server_says_to_note_after_a_renewal_is_shown_until_dismissed(
    live_server: LiveServer, page: Page, screenshot: Callable[[Page, str], Path]
) -> None:
    # A soft capture renews with a warning (image_soft, made for real in
    # tests/test_enrollment.py): the answer is played here, the rest is real.
    page.goto("/")
    expect(page.locator("#step-privacy")).to_be_visible()
    subject_id = bind_page_to_new_subject(live_server, page, f"H{next(_numbers):07d}")
    page.reload()
    expect(page.locator("#live")).to_be_visible()
    expect(page.locator("#card-notes")).to_be_hidden()
    soft = {
        "code": "image_soft",
        "severity": "warning",
        "field": "capture",
        "message_en": "The photo is less sharp than a studio photo.",
        "message_zh": "照片不够清晰。",
        "details": {},
    }

    subject = {
        "subject_id": subject_id,
        "kind": "passport",
        "masked_name": "QUARTERMAINE",
        "masked_number": "H0****01",
    }
    status = {
        "colour": "green",
        "label_zh": "未见异常",
        "label_en": "Nothing abnormal",
        "valid_until": "2099-01-01T16:00:00+00:00",
    }
    answer = {"subject": subject, "status": status, "similarity": 0.71, "warnings": [soft]}

    def renewed(route: Route) -> None:
        route.fulfill(status=201, content_type="application/json", body=json.dumps(answer))

    page.route("**/me/renewals", renewed)
    page.locator("#renew").click()
    expect(page.locator("#face-view")).to_be_visible()
    page.locator("#face-start").click()
    expect(page.locator("#card-notes")).to_be_visible(timeout=60_000)
    expect(page.locator("#card-notes-list li")).to_have_text(["照片不够清晰。"])
    expect(page.locator("#live")).to_be_visible()
    screenshot(page, "renewal-note")
    page.locator("#lang-switch").click()
    expect(page.locator("#card-notes-list li")).to_have_text(
        ["The photo is less sharp than a studio photo."]
    )
    page.locator("#card-notes-ok").click()
    expect(page.locator("#card-notes")).to_be_hidden()


# --- more bad paths at the face check: offline, overloaded, an expired challenge --------------


def test_offline_at_the_face_check_says_so_and_the_retry_works_once_back(
    live_server: LiveServer, page: Page, screenshot: Callable[[Page, str], Path]
) -> None:
    to_face_step(page)
    page.context.set_offline(True)
    page.locator("#face-start").click()
    expect(page.locator("#face-error")).to_contain_text("网络不可用")
    expect(page.locator("#face-start")).to_have_text("重新进行人脸核验")
    expect(page.locator("#face-cancel")).to_be_visible()
    screenshot(page, "offline-face-check")
    page.context.set_offline(False)
    with page.expect_response("**/enrollments/challenges") as issued:
        page.locator("#face-start").click()
    assert issued.value.status == 201
    expect(page.locator("#face-error")).to_be_hidden()
    expect(page.locator("#face-action")).to_have_attribute("data-action", re.compile(r"\w+"))


def test_an_overloaded_service_says_when_to_retry_and_the_retry_works(
    live_server: LiveServer, page: Page, screenshot: Callable[[Page, str], Path]
) -> None:
    # Faked (page.route): a real 503 needs a service overloaded for the length of
    # the test; the page's handling of Retry-After is what is under test.
    page.route(
        "**/enrollments/challenges",
        problem(503, "service_unavailable", "服务繁忙。", "The service is busy.", 12),
    )
    to_face_step(page)
    page.locator("#face-start").click()
    expect(page.locator("#face-error")).to_contain_text("服务繁忙")
    expect(page.locator("#face-error")).to_contain_text("12 秒后重试")
    expect(page.locator("#face-start")).to_have_text("重新进行人脸核验")
    screenshot(page, "overloaded-503")
    page.unroute("**/enrollments/challenges")
    with page.expect_response("**/enrollments/challenges") as issued:
        page.locator("#face-start").click()
    assert issued.value.status == 201
    expect(page.locator("#face-error")).to_be_hidden()


def test_a_challenge_that_expires_during_the_check_is_not_sent_and_a_new_one_is_asked(
    live_server: LiveServer, page: Page, screenshot: Callable[[Page, str], Path]
) -> None:
    # The server's challenge (90 s, its own expires_at) outlives the page's film:
    # the page's clock jumps past the expiry while it films, as on a phone put
    # aside mid-check. The page does not send the stale answer.
    to_face_step(page)
    with page.expect_response("**/enrollments/challenges") as issued:
        page.locator("#face-start").click()
    expires_at = issued.value.json()["expires_at"]
    page.clock.fast_forward(91_000)
    expect(page.locator("#face-error")).to_contain_text("核验已超时", timeout=30_000)
    expect(page.locator("#face-start")).to_have_text("重新进行人脸核验")
    screenshot(page, "challenge-expired")
    page.clock.set_system_time(server_time(live_server))  # back in step with the server
    with page.expect_response("**/enrollments/challenges") as again:
        page.locator("#face-start").click()
    assert again.value.json()["expires_at"] != expires_at
    expect(page.locator("#face-error")).to_be_hidden()
    expect(page.locator("#face-action")).to_have_attribute("data-action", re.compile(r"\w+"))


# --- the screen stays awake while the code shows -------------------------------------------

WAKE_LOCK_SPY = """
(() => {
  const seen = (window.__wakeLock = { requests: [], held: 0 });
  const wakeLock = {
    request: async (type) => {
      seen.requests.push(type);
      seen.held += 1;
      const listeners = [];
      return {
        type,
        released: false,
        addEventListener: (name, listener) => listeners.push(listener),
        async release() {
          if (this.released) return;
          this.released = true;
          seen.held -= 1;
          for (const listener of listeners) listener();
        },
      };
    },
  };
  Object.defineProperty(Navigator.prototype, 'wakeLock', {
    configurable: true,
    get: () => wakeLock,
  });
})();
"""

NO_WAKE_LOCK = """
Object.defineProperty(Navigator.prototype, 'wakeLock', {
  configurable: true,
  get: () => undefined,
});
"""


def test_the_card_keeps_the_screen_awake_while_its_code_shows(
    live_server: LiveServer, page: Page, watch: PageWatch
) -> None:
    page.add_init_script(WAKE_LOCK_SPY)
    page.goto("/")
    expect(page.locator("#step-privacy")).to_be_visible()
    assert page.evaluate("window.__wakeLock.held") == 0, "no lock before a card"
    bind_page_to_new_subject(live_server, page, f"H{next(_numbers):07d}")
    page.reload()
    expect(page.locator("#live")).to_be_visible()
    page.wait_for_function("window.__wakeLock.held === 1")
    assert set(page.evaluate("window.__wakeLock.requests")) == {"screen"}
    # The face check (renewal) hides the code: the screen may sleep again...
    page.locator("#renew").click()
    expect(page.locator("#face-view")).to_be_visible()
    page.wait_for_function("window.__wakeLock.held === 0")
    # ...and the card, back, keeps it awake again.
    page.locator("#face-cancel").click()
    expect(page.locator("#live")).to_be_visible()
    page.wait_for_function("window.__wakeLock.held === 1")
    assert watch.page_errors == [] and watch.console_errors == []


def test_without_the_wake_lock_api_the_card_works_all_the_same(
    live_server: LiveServer, page: Page, watch: PageWatch
) -> None:
    page.add_init_script(NO_WAKE_LOCK)
    page.goto("/")
    expect(page.locator("#step-privacy")).to_be_visible()
    bind_page_to_new_subject(live_server, page, f"H{next(_numbers):07d}")
    page.reload()
    expect(page.locator("#live")).to_be_visible()
    first = shown_code(page)
    page.clock.run_for(5_100)
    expect(page.locator("#qr")).not_to_have_attribute("data-code", first)
    assert page.evaluate("navigator.wakeLock") is None
    assert watch.page_errors == [] and watch.console_errors == []
