"""Real face photos, the people in them, and the authority stand-in plugin.

Liveness from photos: ``tests/data`` has no video, so a challenge is answered
with real photos that show what they can: obama_1 is neutral, obama_2 is the
same person turned to his right with the mouth open (``turn_right`` and
``open_mouth`` at once), its mirror image turned to his left; biden_2 is
neutral and the mirror of biden_1 is turned to his right (12.7 degrees, just
past the 12-degree threshold).
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from collections.abc import Sequence
from typing import Any

import pytest
from attrs import frozen

from healthcode.core.hookspecs import hookimpl
from healthcode.core.images import image_from_array, read_image_file
from healthcode.core.models import (
    Document,
    Face,
    FaceMatch,
    Image,
    LivenessChallenge,
    LivenessResult,
)

from .data import FACES

CHALLENGE_ISSUED_AT = dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.UTC)
"""When the liveness tests' challenges were issued (they expire a minute later)."""
CHALLENGE_ANSWERED_AT = CHALLENGE_ISSUED_AT + dt.timedelta(seconds=10)
"""When they are answered: within their minute."""


def liveness_challenge(*actions: str, nonce_prefix: str = "n") -> LivenessChallenge:
    """A challenge of ``actions``, in order, issued at ``CHALLENGE_ISSUED_AT``."""
    return LivenessChallenge(
        nonce=f"{nonce_prefix}-" + "-".join(actions),
        actions=tuple(actions),
        issued_at=CHALLENGE_ISSUED_AT,
        expires_at=CHALLENGE_ISSUED_AT + dt.timedelta(seconds=60),
    )


def require_face_models() -> None:
    """Skip (locally) or fail (under CI) when the face models are not fetched:
    the message names the command that fetches them."""
    from healthcode.plugins.face.modelstore import FETCH_COMMAND, list_models

    missing = [state.spec.name for state in list_models(verify=False) if not state.verified]
    if missing:
        message = f"face models missing ({', '.join(missing)}): run `{FETCH_COMMAND}`"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)


@functools.cache
def photo(name: str, mirrored: bool = False) -> Image:
    """A photo from ``tests/data/faces``, mirrored left to right on request."""
    image = read_image_file(FACES / name)
    return image_from_array(image.pixels[:, ::-1]) if mirrored else image


@frozen
class Person:
    """Photos of one real person, and what they can answer."""

    frames: tuple[tuple[str, bool], ...]
    actions: tuple[str, ...]
    capture: str
    reference: str

    def frame_images(self) -> list[Image]:
        return [photo(name, mirrored) for name, mirrored in self.frames]


OBAMA = Person(
    frames=(("obama_1.jpg", False), ("obama_2.jpg", False), ("obama_1.jpg", False)),
    actions=("turn_right", "open_mouth"),
    capture="obama_3.jpg",
    reference="obama_2.jpg",
)
OBAMA_OTHER_WAY = Person(
    frames=(("obama_1.jpg", False), ("obama_2.jpg", True), ("obama_1.jpg", False)),
    actions=("turn_left", "open_mouth"),
    capture="obama_1.jpg",
    reference="obama_2.jpg",
)
BIDEN = Person(
    frames=(("biden_2.jpg", False), ("biden_1.jpg", True), ("biden_2.jpg", False)),
    actions=("turn_right",),
    capture="biden_1.jpg",
    reference="biden_2.jpg",
)


class AuthorityPhotos:
    """Stand-in for an authority integration (``healthcode_reference_face``):
    a real reference photo for each document number it was given."""

    def __init__(self, photos: dict[str, str] | None = None) -> None:
        self.photos: dict[str, str] = dict(photos or {})

    @hookimpl
    def healthcode_reference_face(self, document: Document) -> Image | None:
        name = self.photos.get(document.number)
        return photo(name) if name else None


GREY_PHOTO = image_from_array([[[128, 128, 128]] * 32] * 32)
"""A plain 32x32 grey image: the reference face of :class:`AcceptingFaces`."""


class AcceptingFaces:
    """A face plugin that accepts everyone: for tests of enrollment's wiring,
    not of faces. Every image holds one face that matches every template, and
    liveness passes (subclasses override :meth:`healthcode_check_liveness`)."""

    @hookimpl
    def healthcode_detect_faces(self, image: Image) -> Sequence[Face]:
        return [Face(box=(0.0, 0.0, float(image.width), float(image.height)), score=1.0)]

    @hookimpl
    def healthcode_assess_face_quality(self, image: Image, faces: Sequence[Face]) -> list[Any]:
        return []

    @hookimpl
    def healthcode_face_template(self, image: Image, face: Face) -> bytes:
        return b"template"

    @hookimpl
    def healthcode_compare_templates(self, a: bytes, b: bytes) -> FaceMatch:
        return FaceMatch(similarity=1.0, threshold=0.5, is_match=True)

    @hookimpl
    def healthcode_check_liveness(
        self, challenge: LivenessChallenge, frames: Sequence[Image]
    ) -> LivenessResult:
        return LivenessResult(passed=True, score=1.0)

    @hookimpl
    def healthcode_reference_face(self, document: Document) -> Image:
        return GREY_PHOTO
