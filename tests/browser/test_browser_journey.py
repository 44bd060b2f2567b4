"""The holder's whole enrollment through the pages, in Chromium, against the
live server with the real face models: a passport holder photographs the
data page (a synthetic page with a real portrait, as in
``test_enrollment.py::test_enroll_with_a_photographed_passport_page``), passes
the face check in front of the fake camera, sees the green card, and the
guard API admits the card's live code.

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

import io
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from playwright.sync_api import Browser, BrowserContext, FilePayload, Page, expect
from support.backends import LiveServer
from support.browser import new_token, photo_frame, write_y4m
from support.data import FACES
from support.documents import passport_mrz
from support.faces import require_face_models

ACTIONS = "turn_right,open_mouth"
NEUTRAL_SECONDS = 2.5
"""Long enough for the challenge's round trip between the click and the first frame."""
TURNED_SECONDS = 12.0
"""Far longer than the check's frames take (two actions of about 2.5 s each)."""
MARKER = 40
"""Side of the scene marker square, in pixels."""
NUMBER = "P7788990"
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


def marked(frame: np.ndarray, value: int) -> np.ndarray:
    frame = frame.copy()
    frame[:MARKER, :MARKER] = value
    return frame


def turning_film(path: Path) -> Path:
    """Neutral (black marker), then turned right with the mouth open (white marker)."""
    neutral = marked(photo_frame("obama_1.jpg"), 0)
    turned = marked(photo_frame("obama_2.jpg"), 255)
    return write_y4m(path, [(neutral, NEUTRAL_SECONDS), (turned, TURNED_SECONDS)])


def data_page_png() -> bytes:
    """A passport data page (GBR, far expiry) with obama_1 in the portrait box."""
    from PIL import Image as PILImage

    from healthcode.testing.synthetic_documents import render_page

    page, (x, y, w, h) = render_page(passport_mrz(NUMBER), "TD3", random.Random(5))
    portrait = PILImage.open(FACES / "obama_1.jpg").convert("RGB")
    portrait.thumbnail((w, h))
    page.paste(portrait, (x + (w - portrait.width) // 2, y + (h - portrait.height) // 2))
    buffer = io.BytesIO()
    page.save(buffer, format="PNG")
    return buffer.getvalue()


SCENE_SHOWN = """(white) => {
  const video = document.getElementById('face-video');
  if (!video.videoWidth) return false;
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(video, 0, 0);
  const [r, g, b] = ctx.getImageData(8, 8, 1, 1).data;
  return ((r + g + b) / 3 > 128) === white;
}"""


def wait_for_scene(page: Page, *, white: bool) -> None:
    """Until the page's camera preview shows the scene with that marker."""
    page.wait_for_function(SCENE_SHOWN, arg=white, polling=40, timeout=60_000)


def test_a_passport_holder_enrolls_through_the_pages_and_the_guard_admits_the_card(
    live_server: LiveServer,
    browser_filming: Callable[[Path], Browser],
    new_context: Callable[..., BrowserContext],
    screenshot: Callable[[Page, str], Path],
    tmp_path: Path,
) -> None:
    require_face_models()
    page = new_context(browser_filming(turning_film(tmp_path / "turning.y4m"))).new_page()
    page.goto("/")

    # The document: a photo of the passport's data page.
    page.locator("#privacy-ok").click()
    expect(page.locator("#kind option[value=passport]")).to_be_attached()
    page.locator("#kind").select_option("passport")
    page.locator("#declared-name").fill("QUARTERMAINE ALLAN JAMES")
    page.locator("input[name=how][value=file]").check()
    passport = FilePayload(name="passport.png", mimeType="image/png", buffer=data_page_png())
    page.locator("#doc-image").set_input_files(files=[passport])
    expect(page.locator("#doc-preview")).to_be_visible()
    screenshot(page, "document")
    page.locator("#step-document button[type=submit]").click()
    expect(page.locator("#confirm-name")).to_have_text("QUARTERMAINE")
    page.locator("#confirm-ok").click()
    expect(page.locator("#face-view")).to_be_visible()

    # The face check, started while the film shows the neutral face.
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
    assert sorted(issued.value.json()["actions"]) == ["open_mouth", "turn_right"]
    assert answered.value.status == 201, answered.value.text()

    # The green card, and a live code the guard API admits.
    card = page.locator("#card")
    expect(card).to_have_attribute("data-colour", "green", timeout=SLOW_MS)
    expect(page.locator("#card-name")).to_have_text("QUARTERMAINE")
    expect(page.locator("#card-number")).to_have_text("P7****90")
    expect(page.locator("#live")).to_be_visible()
    code = page.locator("#qr").get_attribute("data-code")
    assert code and code.startswith("HCP1:"), code
    screenshot(page, "card")
    guard = new_token(live_server, "guard", "journey gate")
    response = httpx.post(
        f"{live_server.url}/guard/verifications",
        json={"presentation": code},
        headers={"authorization": f"Bearer {guard}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    verdict = response.json()
    assert verdict["admit"] is True, verdict
