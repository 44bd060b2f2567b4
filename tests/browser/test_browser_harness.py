"""The browser harness itself: Chromium starts, its fake camera films the
test video, and pages run on the live server's clock."""

from __future__ import annotations

import datetime as dt
import time

from playwright.sync_api import Page
from support.backends import LiveServer
from support.browser import SHANGHAI, server_time
from support.data import TODAY

CAMERA_PROBE = """async () => {
  const stream = await navigator.mediaDevices.getUserMedia({video: true});
  const video = document.createElement('video');
  video.muted = true;
  video.srcObject = stream;
  await video.play();
  while (video.videoWidth === 0) await new Promise(r => requestAnimationFrame(r));
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth; canvas.height = video.videoHeight;
  const g = canvas.getContext('2d');
  g.drawImage(video, 0, 0);
  const px = g.getImageData(0, 0, canvas.width, canvas.height).data;
  let spread = 0;
  for (let i = 0; i < px.length; i += 4 * 97) spread = Math.max(spread, Math.abs(px[i] - 128));
  stream.getTracks().forEach(t => t.stop());
  return {width: canvas.width, height: canvas.height, spread};
}"""


def test_the_fake_camera_films_the_face_video(live_server: LiveServer, page: Page) -> None:
    page.goto("/health")
    shot = page.evaluate(CAMERA_PROBE)
    assert (shot["width"], shot["height"]) == (640, 480)
    assert shot["spread"] > 40, "the frame shows a photo, not the grey border only"


def test_pages_run_on_the_live_servers_clock(live_server: LiveServer, page: Page) -> None:
    page.goto("/health")
    shown = page.evaluate("Date.now()") / 1000
    assert abs(shown - time.time()) < 120  # the test's clock, less the server's start-up
    assert abs(shown - server_time(live_server)) < 3
    assert dt.datetime.fromtimestamp(shown, SHANGHAI).date() == TODAY
