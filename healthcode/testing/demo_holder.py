"""The synthetic holder of ``healthcode demo``: a passport data page that
carries a face you choose, and liveness frames cut from still photos.

Nothing here is a real person's data or a real document. The page is a TD3
passport data page with every check digit right, surname ``DEMO``, issued by
``XXX`` (ICAO: unspecified) and marked ``HEALTHCODEDEMO`` in its optional-data
(personal number) field, valid on the day it is made. Its portrait is the
face of the photo you give.

Stills cannot blink or nod, but a photo of a face turned to one side shows a
turn (its mirror image shows the other), and a photo with the mouth open shows
``open_mouth``: that is why a demo instance draws its challenges from
``DEMO_ACTIONS`` (``healthcode.core.enrollment.challenges``). :func:`plan_frames`
orders the photos (neutral, action, neutral, ...) to answer a challenge, by
the same measurements and thresholds as the face plugin's judge, with a
margin; a challenge the photos cannot answer gets ``None`` (ask for another).

Face measurements come in through the hooks (``healthcode_detect_faces``), so
this module needs no plugin of its own.
"""

from __future__ import annotations

import datetime as dt
import io
import random
import string
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from attrs import frozen

from healthcode.core.enrollment.document import DEMO_DOCUMENT_MARKER
from healthcode.core.models import Face, Image
from healthcode.testing.mrz import MRZFields, format_mrz
from healthcode.testing.synthetic_documents import photograph, render_page

DEMO_SURNAME: Final = "DEMO"
DEMO_GIVEN_NAMES: Final = "HOLDER"
DEMO_DECLARED_NAME: Final = f"{DEMO_SURNAME} {DEMO_GIVEN_NAMES}"
DEMO_STATE: Final = "XXX"
"""Issuing state and nationality: ICAO 9303's "unspecified", not a real state."""
DEMO_MARKER: Final = DEMO_DOCUMENT_MARKER
"""In the optional-data (personal number) field: a page made by ``healthcode demo``,
which only a demo instance enrolls."""
DEMO_TITLE: Final = "HEALTHCODE DEMO - NOT A DOCUMENT"

# The face plugin's thresholds (healthcode.plugins.face.liveness), plus a margin:
# a planned frame does its actions clearly and clearly does no other.
TURN_DEGREES: Final = 12.0
MOUTH_OPEN: Final = 0.35
NOD_DEGREES: Final = 10.0
NEUTRAL_MAX_YAW: Final = 10.0
NEUTRAL_MAX_PITCH: Final = 15.0
NEUTRAL_MAX_BLINK: Final = 0.40
NEUTRAL_MAX_MOUTH: Final = 0.20
TURN_MARGIN: Final = 0.5
MOUTH_MARGIN: Final = 0.03
MAX_SIDE: Final = 1600
"""Photos are scaled down to this longer side before they are sent."""


# --- the document ----------------------------------------------------------------------


def demo_fields(rng: random.Random, *, today: dt.date) -> MRZFields:
    """The demo passport's fields: a random 9-digit number, valid ``today``."""
    number = "".join(rng.choices(string.digits, k=9))
    return MRZFields(
        layout="TD3",
        document_code="P",
        issuing_state=DEMO_STATE,
        nationality=DEMO_STATE,
        surname=DEMO_SURNAME,
        given_names=DEMO_GIVEN_NAMES,
        number=number,
        birth_date=dt.date(today.year - 35, 3, 14),
        sex="X",
        expiry_date=dt.date(today.year + 5, today.month, min(today.day, 28)),
        optional_data=DEMO_MARKER,
    )


def portrait_crop(image: Image, face: Face) -> Any:
    """A passport-style head-and-shoulders crop (PIL) around ``face``: moved
    inside the photo where it fits, padded with a light background where not."""
    from PIL import Image as PILImage

    x, y, w, h = face.box
    photo_h, photo_w = image.pixels.shape[:2]
    width = int(max(w, h) * 2.0)
    height = int(width * 1.3)
    left = _inside(int(x + w / 2 - width / 2), width, photo_w)
    top = _inside(int(y + h / 2 - height * 0.45), height, photo_h)
    clipped = (max(left, 0), max(top, 0), min(left + width, photo_w), min(top + height, photo_h))
    crop = PILImage.new("RGB", (width, height), (214, 222, 232))
    crop.paste(
        PILImage.fromarray(image.pixels).crop(clipped), (clipped[0] - left, clipped[1] - top)
    )
    return crop


def _inside(start: int, length: int, limit: int) -> int:
    """``start`` moved so that [start, start + length) lies in [0, limit) when it can."""
    if length >= limit:
        return (limit - length) // 2
    return min(max(start, 0), limit - length)


def demo_page(fields: MRZFields, image: Image, face: Face, rng: random.Random) -> tuple[str, bytes]:
    """(MRZ text, PNG photo of the data page) with ``face`` as its portrait."""
    mrz = format_mrz(fields)
    labels = [
        ("Surname / Nom", fields.surname),
        ("Given names / Prenoms", fields.given_names or ""),
        ("Date of birth", fields.birth_date.isoformat() if fields.birth_date else ""),
        ("Date of expiry", fields.expiry_date.isoformat()),
    ]
    page, box = render_page(
        mrz, "TD3", rng, portrait=portrait_crop(image, face), labels=labels, title=DEMO_TITLE
    )
    png, *_ = photograph(page, box, "clean", rng)
    return mrz, png


# --- the frames ------------------------------------------------------------------------


@frozen
class Pose:
    """One still (or its mirror image) and what the face in it shows."""

    label: str
    """Where it came from, for messages (a file name, "mirrored" added)."""
    image: Image
    face: Face
    mirrored: bool = False

    def measure(self, name: str) -> float:
        return float(self.face.measurements.get(name, 0.0))

    @property
    def blink(self) -> float:
        return (self.measure("blink_left") + self.measure("blink_right")) / 2

    def is_neutral(self) -> bool:
        """Facing the camera, eyes open, mouth closed, with a margin."""
        return (
            abs(self.measure("yaw")) <= NEUTRAL_MAX_YAW - 2
            and abs(self.measure("pitch")) <= NEUTRAL_MAX_PITCH - 2
            and self.blink < NEUTRAL_MAX_BLINK - 0.05
            and self.measure("jaw_open") < NEUTRAL_MAX_MOUTH - 0.03
        )


def _levels(pose: Pose, base: Pose) -> dict[str, tuple[float, float, float]]:
    """action -> (value against the baseline, threshold, margin)."""
    yaw = pose.measure("yaw") - base.measure("yaw")
    pitch = abs(pose.measure("pitch") - base.measure("pitch"))
    return {
        "turn_left": (yaw, TURN_DEGREES, TURN_MARGIN),
        "turn_right": (-yaw, TURN_DEGREES, TURN_MARGIN),
        "nod": (pitch, NOD_DEGREES, TURN_MARGIN),
        "open_mouth": (pose.measure("jaw_open"), MOUTH_OPEN, MOUTH_MARGIN),
    }


def shown_actions(pose: Pose, base: Pose) -> tuple[frozenset[str], frozenset[str]]:
    """(actions ``pose`` surely shows, actions it may show) against ``base``.
    Blinks are left out: the judge lets anyone blink."""
    surely, maybe = set(), set()
    for action, (value, threshold, margin) in _levels(pose, base).items():
        if value >= threshold + margin:
            surely.add(action)
        if value >= threshold - margin:
            maybe.add(action)
    return frozenset(surely), frozenset(maybe)


def poses(
    photos: Iterable[tuple[str, Image]], detect: Callable[[Image], Sequence[Face]]
) -> list[Pose]:
    """Each photo with exactly one face, and its mirror image."""
    found = []
    for label, image in photos:
        for mirrored in (False, True):
            shown = mirror(image) if mirrored else image
            faces = list(detect(shown))
            if len(faces) == 1:
                name = f"{label} (mirrored)" if mirrored else label
                found.append(Pose(name, shown, faces[0], mirrored))
    return found


def mirror(image: Image) -> Image:
    from healthcode.core.images import image_from_array

    return image_from_array(image.pixels[:, ::-1].copy())


def baseline(candidates: Sequence[Pose]) -> Pose | None:
    """The most neutral unmirrored pose: the first frame, the capture and the portrait."""
    neutral = [p for p in candidates if p.is_neutral() and not p.mirrored]
    if not neutral:
        return None
    return min(neutral, key=lambda p: abs(p.measure("yaw")) + 10 * p.measure("jaw_open"))


def plan_frames(
    actions: Sequence[str], candidates: Sequence[Pose], base: Pose
) -> list[Pose] | None:
    """Frames that answer ``actions`` in order (baseline, action, baseline, ...),
    or None when these photos cannot. A photo that shows several actions at once
    answers them when they come next in the challenge, in any order."""
    frames = [base]
    done = 0
    while done < len(actions):
        step = _next_step(actions[done:], candidates, base)
        if step is None:
            return None
        pose, count = step
        frames += [pose, base]
        done += count
    return frames


def _next_step(
    remaining: Sequence[str], candidates: Sequence[Pose], base: Pose
) -> tuple[Pose, int] | None:
    """The pose that does the next action(s) and nothing else, fewest actions first."""
    for count in range(1, len(remaining) + 1):
        wanted = frozenset(remaining[:count])
        for pose in candidates:
            surely, maybe = shown_actions(pose, base)
            if surely == wanted and maybe <= wanted:
                return pose, count
    return None


def what_photos_show(candidates: Sequence[Pose], base: Pose) -> list[str]:
    """Every action some photo clearly shows on its own or with others (for messages)."""
    shown: set[str] = set()
    for pose in candidates:
        surely, _ = shown_actions(pose, base)
        shown |= surely
    return sorted(shown)


def jpeg(image: Image, *, max_side: int = MAX_SIDE) -> bytes:
    """The image as a fresh JPEG (no metadata, so no capture time from the
    original photo), its longer side at most ``max_side``."""
    from PIL import Image as PILImage

    picture = PILImage.fromarray(image.pixels)
    picture.thumbnail((max_side, max_side))
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=92)
    return out.getvalue()
