"""What one answer to a challenge (frames and a capture) may make a worker decode.

Every limit is checked from the form and the image headers, after the
challenge is found usable and before any pixel is decoded; see README.md
("Memory per request") for the bound they give.
"""

from __future__ import annotations

from collections.abc import Sequence

from healthcode.core import images
from healthcode.core.errors import InputError
from healthcode.core.models import Image, LivenessChallenge

BASELINE_FRAMES = 2
"""Frames allowed besides those for the actions (the neutral first frame, one spare)."""
FRAMES_PER_ACTION = 8
"""Frames allowed per action of the challenge: a 2-action challenge takes at
most 18 frames, a 5-action one 42 (below the absolute ``MAX_ANSWER_FRAMES``)."""
MAX_ANSWER_FRAMES = 60
FRAME_MAX_PIXELS = 4_000_000
"""Decoded pixels per frame or capture (1080p is 2.1 M). A larger JPEG is decoded
at 1/2, 1/4 or 1/8 scale to fit; another format above it is ``image_too_large``."""
REQUEST_PIXEL_BUDGET = 24_000_000
"""Decoded pixels of all frames and the capture of one request together (72 MB
as RGB); beyond it: ``image_budget_exceeded`` (413)."""
IMAGE_REQUESTS_PER_WORKER = 8
"""Requests whose decoded images one worker holds at once, at most (fewer when
``max_face_jobs`` is lower); beyond it: ``face_service_busy`` (503)."""


def frames_allowed(challenge: LivenessChallenge) -> int:
    """How many frames an answer to ``challenge`` may carry."""
    return min(MAX_ANSWER_FRAMES, BASELINE_FRAMES + FRAMES_PER_ACTION * len(challenge.actions))


def check_frame_count(frames: int, allowed: int, en: str, zh: str) -> None:
    """Refuse ``frames`` frames when more than ``allowed`` (``too_many_images``);
    the messages name the limit as ``{max}``."""
    if frames > allowed:
        raise InputError(
            en.format(max=allowed),
            zh.format(max=allowed),
            code="too_many_images",
            details={"max": allowed, "frames": frames},
        )


def check_answer_headers(
    challenge: LivenessChallenge, frames: Sequence[bytes], capture: bytes
) -> None:
    """Refuse an answer that would decode too much, from its headers alone:
    the frame count against what the challenge allows (``too_many_images``),
    each image against ``FRAME_MAX_PIXELS`` (``not_an_image``,
    ``image_too_large``, ...) and all of them against ``REQUEST_PIXEL_BUDGET``
    (``image_budget_exceeded``)."""
    check_frame_count(
        len(frames),
        frames_allowed(challenge),
        "At most {max} frames may answer this challenge.",
        "此活体检测挑战最多接受 {max} 帧。",
    )
    headers = []
    for index, data in enumerate((*frames, capture)):
        try:
            headers.append(images.read_image_header(data, max_pixels=FRAME_MAX_PIXELS))
        except images.ImageError as exc:
            exc.details.setdefault("image", "capture" if index == len(frames) else "frame")
            if index < len(frames):
                exc.details.setdefault("index", index)
            raise
    images.check_pixel_budget(headers, REQUEST_PIXEL_BUDGET)


def decode_answer_images(data: Sequence[bytes]) -> list[Image]:
    """Decode images whose headers passed the intake checks (in a worker thread)."""
    return [images.decode_image(item, max_pixels=FRAME_MAX_PIXELS) for item in data]
