"""Helpers for the browser tests (tests/browser): a fake camera's video made
from the real face photos, a record of what a page did, and holders with
passes of each colour on a live server (no tests in here).

The fake camera: Chromium started with ``--use-file-for-fake-video-capture``
plays a Y4M file (``YUV4MPEG2`` header, then ``FRAME`` and I420 bytes per frame)
to ``getUserMedia``, looping. ``tests/data`` has no video, so the video is the
photos held in turn (see ``support/faces.py`` for which actions they show).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import io
import random
import re
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
import numpy as np
from attrs import frozen

from healthcode.core.auth import create_token, list_tokens, revoke_token, sign_request
from healthcode.core.passes import HolderDevice
from healthcode.core.privacy import document_key, subject_id_hex
from healthcode.core.storage import tables
from healthcode.core.storage.database import open_database

from .backends import LiveServer
from .data import FACES
from .documents import passport_mrz

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Page

SHANGHAI = ZoneInfo("Asia/Shanghai")
T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` in a thread of its own: Playwright's sync API keeps an
    event loop running in the test's thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


# --- the fake camera ------------------------------------------------------------------------


def fit_frame(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """``rgb`` scaled to fit ``width`` x ``height``, centred on grey (RGB uint8)."""
    import cv2

    h, w = rgb.shape[:2]
    scale = min(width / w, height / h)
    size = (max(2, round(w * scale)), max(2, round(h * scale)))
    scaled = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    canvas = np.full((height, width, 3), 128, dtype=np.uint8)
    top, left = (height - size[1]) // 2, (width - size[0]) // 2
    canvas[top : top + size[1], left : left + size[0]] = scaled
    return canvas


def photo_frame(
    name: str, *, mirrored: bool = False, size: tuple[int, int] = (640, 480)
) -> np.ndarray:
    """A photo from ``tests/data/faces`` as one video frame (RGB uint8)."""
    import cv2

    bgr = cv2.imread(str(FACES / name), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(FACES / name)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if mirrored:
        rgb = rgb[:, ::-1]
    return fit_frame(np.ascontiguousarray(rgb), *size)


def write_y4m(path: Path, scenes: Sequence[tuple[np.ndarray, float]], fps: int = 30) -> Path:
    """Write a Y4M video: each scene is an RGB frame held for so many seconds.
    Width and height must be even (I420 halves both for the colour planes)."""
    import cv2

    if not scenes:
        raise ValueError("a video needs at least one scene")
    height, width = scenes[0][0].shape[:2]
    if width % 2 or height % 2:
        raise ValueError("Y4M (C420) frames need an even width and height")
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb, seconds in scenes:
            if rgb.shape[:2] != (height, width):
                raise ValueError("every frame of a video has the same size")
            i420 = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420).tobytes()
            for _ in range(max(1, round(seconds * fps))):
                out.write(b"FRAME\n")
                out.write(i420)
    return path


def face_video(path: Path, seconds_per_pose: float = 1.0) -> Path:
    """Obama neutral, then turned to his right with the mouth open
    (``turn_right`` + ``open_mouth``), neutral again, then the mirror image
    (turned to his left): a head turning each way, 640x480 at 30 fps."""
    neutral, turned = photo_frame("obama_1.jpg"), photo_frame("obama_2.jpg")
    other_way = photo_frame("obama_2.jpg", mirrored=True)
    scenes = [(neutral, seconds_per_pose), (turned, seconds_per_pose)]
    scenes += [(neutral, seconds_per_pose), (other_way, seconds_per_pose)]
    return write_y4m(path, scenes)


def empty_video(path: Path) -> Path:
    """A camera that films no face: plain grey, 640x480."""
    return write_y4m(path, [(np.full((480, 640, 3), 128, dtype=np.uint8), 1.0)])


# --- a film for the face check: a neutral face, then one turned ----------------------------
#
# The face check starts just after the film shows the neutral face again: each
# scene carries a marker in its top-left corner (black: neutral, white:
# turned) that a test reads from the page's own video element.

NEUTRAL_SECONDS = 2.5
"""Long enough for the challenge's round trip between the click and the first frame."""
TURNED_SECONDS = 12.0
"""Far longer than the check's frames take (two actions of about 2.5 s each)."""
MARKER = 40
"""Side of the scene marker square, in pixels."""


def marked(frame: np.ndarray, value: int) -> np.ndarray:
    frame = frame.copy()
    frame[:MARKER, :MARKER] = value
    return frame


def turning_film(path: Path) -> Path:
    """Neutral (black marker), then turned right with the mouth open (white marker)."""
    neutral = marked(photo_frame("obama_1.jpg"), 0)
    turned = marked(photo_frame("obama_2.jpg"), 255)
    return write_y4m(path, [(neutral, NEUTRAL_SECONDS), (turned, TURNED_SECONDS)])


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


def data_page_png(number: str, surname: str = "QUARTERMAINE", given: str = "ALLAN JAMES") -> bytes:
    """A passport data page (GBR, far expiry) with obama_1 in the portrait box, as
    in ``test_enrollment.py::test_enroll_with_a_photographed_passport_page``."""
    from PIL import Image as PILImage

    from healthcode.testing.synthetic_documents import render_page

    mrz = passport_mrz(number, surname=surname, given=given)
    page, (x, y, w, h) = render_page(mrz, "TD3", random.Random(5))
    portrait = PILImage.open(FACES / "obama_1.jpg").convert("RGB")
    portrait.thumbnail((w, h))
    page.paste(portrait, (x + (w - portrait.width) // 2, y + (h - portrait.height) // 2))
    buffer = io.BytesIO()
    page.save(buffer, format="PNG")
    return buffer.getvalue()


# --- watching a page ---------------------------------------------------------------------


class PageWatch:
    """What a page did: console errors, uncaught exceptions, every request."""

    def __init__(self, page: Page) -> None:
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        page.on("request", lambda request: self.requests.append(request.url))
        self.failed: list[str] = []
        """Responses of 400 and over: ``STATUS URL``."""
        page.on(
            "response",
            lambda r: self.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None,
        )

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location.get("url", "")
            self.console_errors.append(f"{message.text} ({where})" if where else message.text)

    def foreign_requests(self, origin: str) -> list[str]:
        """Requests that left ``origin`` (data: and blob: URLs stay in the page)."""
        return [
            url
            for url in self.requests
            if not (url.startswith(origin + "/") or url == origin or re.match(r"(data|blob):", url))
        ]


# --- holders and guards on a live server ---------------------------------------------------


@frozen
class Holder:
    """A subject bound to a device key, written straight into the live
    server's database (the face work of enrollment is tested elsewhere)."""

    device: HolderDevice
    subject_id: str
    number: str


def server_time(server: LiveServer) -> float:
    """The live server's clock now (Unix seconds, within about half a second):
    the ``Date`` header of an answer, which its own (shifted) clock writes.
    The test's clock can be ahead of it by the time the server took to start
    (``tests/clocked_uvicorn.py`` starts the server's clock once Python has
    started), which a loaded machine stretches past the verifier's allowed
    skew; pages and the live codes they sign must follow the server's."""
    response = httpx.get(f"{server.url}/health/live", timeout=30)
    sent = email.utils.parsedate_to_datetime(response.headers["date"])
    return sent.timestamp() + 0.5  # the header is cut to the second


def shanghai_today() -> str:
    return dt.datetime.now(dt.UTC).astimezone(SHANGHAI).date().isoformat()


def add_subject(
    server: LiveServer, number: str, device_public_key_der: bytes, surname: str = "QUARTERMAINE"
) -> str:
    """A passport subject (issuing state GBR, ``number``) bound to a device key,
    written into the live server's database; its subject id."""

    async def go() -> str:
        db, secrets = await open_database(server.database_url, server.home / "secrets.json")
        try:
            key = document_key(secrets, "passport", "GBR", number)
            now = dt.datetime.now(dt.UTC)
            async with db.begin() as conn:
                await conn.execute(
                    tables.subjects.insert().values(
                        subject_key=key,
                        kind="passport",
                        masked_name=surname,
                        masked_number=masked_number(number),
                        device_public_key=device_public_key_der,
                        created_at=now,
                        updated_at=now,
                    )
                )
            return subject_id_hex(key)
        finally:
            await db.dispose()

    return run_async(go())


def masked_number(number: str) -> str:
    return number[:2] + "****" + number[-2:]


def add_holder(server: LiveServer, number: str, surname: str = "QUARTERMAINE") -> Holder:
    """A passport holder whose phone is this process (a fresh ES256 key)."""
    device = HolderDevice.generate("ES256")
    return Holder(device, add_subject(server, number, device.public_key_der, surname), number)


def new_token(server: LiveServer, role: str, label: str) -> str:
    """A bearer token for ``role`` (guard or admin) on the live server."""

    async def go() -> str:
        db, _ = await open_database(server.database_url, server.home / "secrets.json")
        try:
            return await create_token(db, role, label)
        finally:
            await db.dispose()

    return run_async(go())


def revoke_tokens_labelled(server: LiveServer, label: str) -> None:
    """Revoke every token with ``label`` (as ``healthcode tokens revoke`` does)."""

    async def go() -> None:
        db, _ = await open_database(server.database_url, server.home / "secrets.json")
        try:
            for token in await list_tokens(db):
                if token["label"] == label:
                    assert await revoke_token(db, str(token["token_id"]))
        finally:
            await db.dispose()

    run_async(go())


def list_statuses(server: LiveServer, admin: str, rows: dict[str, str]) -> None:
    """Import today's authority list: passport number (GBR) -> yellow or red."""
    listing = "kind,number,issuing_state,status\n" + "".join(
        f"passport,{number},GBR,{colour}\n" for number, colour in rows.items()
    )
    response = httpx.post(
        f"{server.url}/admin/status-imports",
        data={"day": shanghai_today()},
        files=[("file", ("list.csv", listing.encode(), "text/csv"))],
        headers={"authorization": f"Bearer {admin}"},
        timeout=60,
    )
    assert response.status_code == 201, response.text


def fetch_pass(server: LiveServer, holder: Holder) -> str:
    """Today's signed pass (``HC1:``) for ``holder``, as its phone asks for it."""
    header = sign_request(holder.device.private_key, holder.subject_id, "POST", "/me/passes")
    response = httpx.post(f"{server.url}/me/passes", headers={"authorization": header}, timeout=60)
    assert response.status_code in (200, 201), response.text
    text: str = response.json()["text"]
    return text
