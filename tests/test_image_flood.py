"""Image floods (hardening finding 1): a request full of images must be
refused from its cheap fields, its challenge and its image headers before any
pixel is decoded, and what is decoded is decoded off the event loop.

"No pixel was decoded" is observed at Pillow's own ``ImageFile.load``, which
every decode of a PNG or JPEG goes through, whoever calls it. No face model is
needed: every request here stops before face work.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import io
import os
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient, TestClient
from PIL import Image as PILImage
from PIL import ImageFile
from support.holders import signed_multipart
from support.instances import sqlite_instance

from healthcode.api.app import create_app
from healthcode.api.settings import Settings
from healthcode.core.enrollment import (
    FRAME_MAX_PIXELS,
    REQUEST_PIXEL_BUDGET,
    frames_allowed,
)
from healthcode.core.images import decode_image, read_image_header
from healthcode.core.models import LivenessChallenge
from healthcode.core.passes import HolderDevice
from healthcode.core.storage import tables
from healthcode.testing.images import zero_png

TD3 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10"
ATTACK_SIDE = 4800
"""The finding's frames: 4800 x 4800 all-zero PNGs of about 22 KB each."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return sqlite_instance(tmp_path, rate_limit_per_minute=100_000)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def no_pixel_decoding(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail any request that decodes a pixel; the list names what was loaded."""
    loaded: list[str] = []

    def refuse(self: Any) -> Any:
        loaded.append(f"{self.format} {self.size}")
        raise AssertionError("a pixel was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    return loaded


def _jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (width, height), (90, 120, 150)).save(out, format="JPEG", quality=80)
    return out.getvalue()


def _parts(frames: list[bytes], capture: bytes) -> list[tuple[str, tuple[str, bytes, str]]]:
    files = [("frames", (f"f{i}.png", data, "image/png")) for i, data in enumerate(frames)]
    files.append(("capture", ("c.png", capture, "image/png")))
    return files


def _enrollment_form(nonce: str) -> dict[str, str]:
    device = HolderDevice.generate("ES256")
    return {
        "challenge_nonce": nonce,
        "declared_name": "ERIKSSON ANNA MARIA",
        "device_public_key": base64.b64encode(device.public_key_der).decode(),
        "mrz": TD3,
    }


def _services(client: AsyncTestClient[Litestar] | TestClient[Litestar]) -> Any:
    return client.app.state.services


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code
    assert body["message_en"] and body["message_zh"]
    return body  # type: ignore[no-any-return]


# --- POST /enrollments, no login needed ------------------------------------------------------


@pytest.mark.anyio
async def test_the_reported_flood_with_a_made_up_nonce_decodes_nothing(
    client: AsyncTestClient[Litestar], no_pixel_decoding: list[str]
) -> None:
    frame = zero_png(ATTACK_SIDE, ATTACK_SIDE)
    assert len(frame) < 100_000  # 23 megapixels (69 MB decoded) in tens of KB
    response = await client.post(
        "/enrollments",
        data=_enrollment_form("made-up-nonce"),
        files=_parts([frame] * 59, frame),
    )
    assert_problem(response, 409, "challenge_unknown")
    assert no_pixel_decoding == []


@pytest.mark.anyio
async def test_a_used_challenge_is_refused_before_any_decode(
    client: AsyncTestClient[Litestar], no_pixel_decoding: list[str]
) -> None:
    enrollment = _services(client).enrollment
    challenge = await enrollment.issue_challenge(actions=("blink",))
    # Use it up the way a judged answer does.
    await enrollment._consume_challenge(challenge.nonce, "enroll", challenge.issued_at)
    frame = zero_png(ATTACK_SIDE, ATTACK_SIDE)
    response = await client.post(
        "/enrollments", data=_enrollment_form(challenge.nonce), files=_parts([frame] * 3, frame)
    )
    assert_problem(response, 409, "challenge_already_used")
    assert no_pixel_decoding == []


@pytest.mark.anyio
async def test_more_frames_than_the_challenge_allows_are_refused_before_any_decode(
    client: AsyncTestClient[Litestar], no_pixel_decoding: list[str]
) -> None:
    challenge = await _services(client).enrollment.issue_challenge(actions=("blink",))
    allowed = frames_allowed(challenge)
    small = zero_png(64, 64)
    response = await client.post(
        "/enrollments",
        data=_enrollment_form(challenge.nonce),
        files=_parts([small] * (allowed + 1), small),
    )
    body = assert_problem(response, 422, "too_many_images")
    assert body["details"] == {"max": allowed, "frames": allowed + 1}
    assert no_pixel_decoding == []


@pytest.mark.anyio
async def test_a_frame_over_the_pixel_cap_is_refused_from_its_header(
    client: AsyncTestClient[Litestar], no_pixel_decoding: list[str]
) -> None:
    challenge = await _services(client).enrollment.issue_challenge(actions=("blink",))
    small = zero_png(64, 64)
    huge = zero_png(ATTACK_SIDE, ATTACK_SIDE)
    response = await client.post(
        "/enrollments",
        data=_enrollment_form(challenge.nonce),
        files=_parts([small, huge, small], small),
    )
    body = assert_problem(response, 422, "image_too_large")
    assert body["details"]["image"] == "frame"
    assert body["details"]["index"] == 1
    assert body["details"]["max_pixels"] == FRAME_MAX_PIXELS
    assert no_pixel_decoding == []


@pytest.mark.anyio
async def test_frames_over_the_request_pixel_budget_are_refused_before_any_decode(
    client: AsyncTestClient[Litestar], no_pixel_decoding: list[str]
) -> None:
    challenge = await _services(client).enrollment.issue_challenge(actions=("blink", "nod"))
    # Each frame is within the per-image cap; together they are not within the budget.
    frame = zero_png(2000, 2000)
    count = REQUEST_PIXEL_BUDGET // (2000 * 2000) + 1
    assert count <= frames_allowed(challenge)
    response = await client.post(
        "/enrollments",
        data=_enrollment_form(challenge.nonce),
        files=_parts([frame] * count, zero_png(64, 64)),
    )
    body = assert_problem(response, 413, "image_budget_exceeded")
    assert body["details"]["max_pixels"] == REQUEST_PIXEL_BUDGET
    assert body["details"]["pixels"] == count * 2000 * 2000 + 64 * 64
    assert no_pixel_decoding == []


@pytest.mark.anyio
async def test_a_worker_holds_decoded_images_for_a_bounded_number_of_requests(
    client: AsyncTestClient[Litestar], no_pixel_decoding: list[str]
) -> None:
    enrollment = _services(client).enrollment
    challenge = await enrollment.issue_challenge(actions=("blink",))
    # As if max_image_requests answers were being decoded or judged right now.
    enrollment._image_requests = enrollment.max_image_requests
    small = zero_png(64, 64)
    response = await client.post(
        "/enrollments", data=_enrollment_form(challenge.nonce), files=_parts([small] * 3, small)
    )
    assert_problem(response, 503, "face_service_busy")
    assert response.headers["retry-after"] == "2"
    assert no_pixel_decoding == []


def test_a_large_jpeg_counts_at_the_scale_it_is_decoded_at() -> None:
    # 12 megapixels on the wire; decoded at 1/2 scale under a 4-megapixel cap.
    data = _jpeg(4000, 3000)
    header = read_image_header(data, max_pixels=FRAME_MAX_PIXELS)
    assert (header.format, header.width, header.height) == ("JPEG", 4000, 3000)
    image = decode_image(data, max_pixels=FRAME_MAX_PIXELS)
    assert header.decoded_pixels == image.width * image.height <= FRAME_MAX_PIXELS


def test_decoding_runs_off_the_event_loop_while_health_answers(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A legitimate answer is decoded in a worker thread: while its first frame
    is being decoded (held here until /health/live has answered), the event
    loop still serves /health/live. Decoded on the loop, the health check
    could only be answered after the hold timed out."""
    real_load: Callable[[Any], Any] = ImageFile.ImageFile.load
    decoding = threading.Event()
    health_answered = threading.Event()
    on_event_loop: list[bool] = []
    released_by_health: list[bool] = []

    def held_load(self: Any) -> Any:
        try:
            asyncio.get_running_loop()
            on_event_loop.append(True)
        except RuntimeError:
            on_event_loop.append(False)
        if not decoding.is_set():
            decoding.set()
            released_by_health.append(health_answered.wait(timeout=20))
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", held_load)
    with TestClient(create_app(settings)) as client:
        issued = client.post("/enrollments/challenges", json={})
        assert issued.status_code == 201, issued.text
        frame = _jpeg(640, 480)
        results: list[Any] = []
        heavy = threading.Thread(
            target=lambda: results.append(
                client.post(
                    "/enrollments",
                    data=_enrollment_form(issued.json()["nonce"]),
                    files=_parts([frame] * 3, frame),
                )
            )
        )
        heavy.start()
        try:
            assert decoding.wait(timeout=60), "the enrollment never started decoding"
            assert client.get("/health/live").json()["status"] == "ok"
            health_answered.set()
        finally:
            health_answered.set()
            heavy.join(timeout=120)
    assert released_by_health == [True]
    assert on_event_loop and not any(on_event_loop)
    # The specimen passport is refused after the images were decoded.
    assert results and 400 <= results[0].status_code < 500


# --- after holder login: /me/renewals and /me/dependant-enrollments --------------------------


@pytest.fixture
async def holder(client: AsyncTestClient[Litestar]) -> tuple[HolderDevice, str]:
    device = HolderDevice.generate("ES256")
    key = os.urandom(32)
    now = dt.datetime.now(dt.UTC)
    async with _services(client).db.begin() as conn:
        await conn.execute(
            tables.subjects.insert().values(
                subject_key=key,
                kind="passport",
                masked_name="ERIKSSON",
                masked_number="L8**26",
                device_public_key=device.public_key_der,
                created_at=now,
                updated_at=now,
            )
        )
    return device, key.hex()


HOLDER_PATHS = {
    "/me/renewals": ("renew", {}),
    "/me/dependant-enrollments": (
        "dependant",
        {"declared_name": "ANY NAME", "number": "11010519491231002X"},
    ),
}


@pytest.mark.anyio
@pytest.mark.parametrize("path", sorted(HOLDER_PATHS))
async def test_holder_floods_with_a_made_up_nonce_decode_nothing(
    client: AsyncTestClient[Litestar],
    holder: tuple[HolderDevice, str],
    no_pixel_decoding: list[str],
    path: str,
) -> None:
    device, subject_id = holder
    frame = zero_png(ATTACK_SIDE, ATTACK_SIDE)
    form = {"challenge_nonce": "made-up-nonce", **HOLDER_PATHS[path][1]}
    response = await signed_multipart(
        client, device, subject_id, path, form, _parts([frame] * 9, frame)
    )
    assert_problem(response, 409, "challenge_unknown")
    assert no_pixel_decoding == []


@pytest.mark.anyio
@pytest.mark.parametrize("path", sorted(HOLDER_PATHS))
async def test_holder_answers_are_held_to_the_challenge_and_the_pixel_caps(
    client: AsyncTestClient[Litestar],
    holder: tuple[HolderDevice, str],
    no_pixel_decoding: list[str],
    path: str,
) -> None:
    device, subject_id = holder
    purpose, extra = HOLDER_PATHS[path]
    enrollment = _services(client).enrollment
    small = zero_png(64, 64)

    challenge: LivenessChallenge = await enrollment.issue_challenge(
        purpose=purpose, actions=("blink",)
    )
    form = {"challenge_nonce": challenge.nonce, **extra}
    too_many = _parts([small] * (frames_allowed(challenge) + 1), small)
    response = await signed_multipart(client, device, subject_id, path, form, too_many)
    assert_problem(response, 422, "too_many_images")

    huge = zero_png(ATTACK_SIDE, ATTACK_SIDE)
    response = await signed_multipart(client, device, subject_id, path, form, _parts([small], huge))
    assert_problem(response, 422, "image_too_large")

    big = zero_png(2000, 2000)
    over_budget = _parts([big] * (REQUEST_PIXEL_BUDGET // (2000 * 2000) + 1), small)
    response = await signed_multipart(client, device, subject_id, path, form, over_budget)
    assert_problem(response, 413, "image_budget_exceeded")
    assert no_pixel_decoding == []
