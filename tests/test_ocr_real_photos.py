"""Real photographs of specimen passport pages, read end to end.

Two phone photos in tests/data/documents (their MRZs transcribed by eye, every
check digit holding):

* ``real_handheld_card_photo.jpg``: a hand holds the data page small in a
  2160 x 3840 photo, tilted and at an angle to the camera (perspective);
* ``real_passport_page_on_desk.jpg``: the page lies on printed text, at an
  angle, with a red highlighter stroke over its zone.

The template reader sees each zone but cannot read it as photographed (the
cells drift off its straight grid); rectified onto a rectangle
(``locate.rectify``) it reads both. No timings are asserted.
"""

from __future__ import annotations

import datetime as dt
import shutil

import pluggy
import pytest
from support.data import DOCUMENTS

from healthcode.core.documents import make_submission, parse_document
from healthcode.core.images import decode_image
from healthcode.plugins.mrz_ocr import glyphs
from healthcode.plugins.mrz_ocr.reader import read_machine_zone

pytestmark = pytest.mark.skipif(
    shutil.which("tesseract") is None or glyphs.templates() is None,
    reason="tesseract-ocr or fonts-ocr-b is not installed",
)

HANDHELD = (
    "PCAZEQAQARIN<<FIDAN<<<<<<<<<<<<<<<<<<<<<<<<<\nC946302620AZE6707297F23031072W12IMJ<<<<<<<40"
)
ON_DESK = (
    "PCAZEARGEDAS<<CEYLA<<<<<<<<<<<<<<<<<<<<<<<<<\nC051777748AZE7611175F2201133S2SSBW3<<<<<<<26"
)
PHOTOS = {
    "real_handheld_card_photo.jpg": (
        HANDHELD,
        ("passport", "C94630262", "PC", "AZE", "QAQARIN", "FIDAN", "AZE",
         dt.date(1967, 7, 29), "F", dt.date(2023, 3, 10)),
    ),
    "real_passport_page_on_desk.jpg": (
        ON_DESK,
        ("passport", "C05177774", "PC", "AZE", "ARGEDAS", "CEYLA", "AZE",
         dt.date(1976, 11, 17), "F", dt.date(2022, 1, 13)),
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_a_real_photo_at_an_angle_is_read_exactly(name: str) -> None:
    text, _fields = PHOTOS[name]
    image = decode_image((DOCUMENTS / name).read_bytes())
    reading = read_machine_zone(image, use_passporteye=False)
    assert reading.candidates[0].checks_passed
    assert reading.candidates[0].text == text
    assert "attempt:rectified" in reading.candidates[0].notes


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_a_real_photo_gives_every_field(name: str, pm: pluggy.PluginManager) -> None:
    _text, fields = PHOTOS[name]
    document = parse_document(make_submission(image=(DOCUMENTS / name).read_bytes())[0], pm)
    assert (
        document.kind, document.number, document.document_code, document.issuing_state,
        document.surname, document.given_names, document.nationality, document.birth_date,
        document.sex, document.expiry_date,
    ) == fields  # fmt: skip
    # The zone was read, not guessed: no check digit failed.
    assert "check_digit_mismatch" not in {p.code for p in document.problems}


def test_the_portrait_is_placed_in_the_photo_as_given() -> None:
    """The portrait box comes from the zone as photographed, not the rectified copy:
    on the handheld photo it lies left of the page's middle, above the zone."""
    image = decode_image((DOCUMENTS / "real_handheld_card_photo.jpg").read_bytes())
    box = read_machine_zone(image, use_passporteye=False).portrait_box
    assert box is not None
    x, y, width, height = box
    # The zone spans about x 170..1660, y 1950..2085 in this 2160 x 3840 photo.
    assert 0 <= x < 600 and x + width < 1100
    assert 1200 < y < 1950 and y + height <= 2000
