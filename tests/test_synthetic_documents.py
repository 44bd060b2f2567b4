"""The synthetic document generator: valid ground truth, graded degradations,
reproducible output, a portrait box inside the photo."""

from __future__ import annotations

import itertools
import random

import pytest
from support.data import TODAY

from healthcode.core.documents import make_submission, parse_document
from healthcode.core.images import decode_image
from healthcode.testing import synthetic_documents as synth

try:
    synth.ocr_b_font_path()
    HAVE_FONT = True
except FileNotFoundError:
    HAVE_FONT = False

needs_font = pytest.mark.skipif(not HAVE_FONT, reason="fonts-ocr-b is not installed")


@pytest.mark.parametrize("layout", synth.DOCUMENT_LAYOUTS)
def test_ground_truth_mrzs_parse_without_errors(layout: str, pm: object) -> None:
    rng = random.Random(11)
    for _ in range(5):
        mrz = synth.random_document_mrz(rng, layout, today=TODAY)  # type: ignore[arg-type]
        submission, _ = make_submission(mrz=mrz)
        document = parse_document(submission, pm)  # type: ignore[arg-type]
        errors = [p.code for p in document.problems if p.severity == "error"]
        assert errors == [], (layout, errors)


def test_levels_are_graded() -> None:
    levels = [synth.DEGRADATIONS[level] for level in synth.LEVELS]
    for weaker, stronger in itertools.pairwise(levels):
        assert weaker.blur_sigma <= stronger.blur_sigma
        assert weaker.noise_sigma <= stronger.noise_sigma
        assert weaker.jpeg_quality >= stronger.jpeg_quality
        assert weaker.rotation_deg <= stronger.rotation_deg
        assert weaker.perspective <= stronger.perspective
        assert weaker.uneven_light <= stronger.uneven_light
        assert weaker.resolution >= stronger.resolution
    assert synth.DEGRADATIONS["severe"].rotation_deg == 10.0


@needs_font
@pytest.mark.parametrize("level", synth.LEVELS)
def test_photos_decode_and_hold_the_portrait(level: str) -> None:
    doc = synth.synthetic_document(random.Random(5), "TD3", level, today=TODAY)  # type: ignore[arg-type]
    image = decode_image(doc.image)
    assert (image.width, image.height) == (doc.width, doc.height)
    x, y, w, h = doc.portrait_box
    assert x >= 0 and y >= 0 and x + w <= doc.width and y + h <= doc.height
    assert w > 50 and h > 50
    spec = synth.DEGRADATIONS[level]  # type: ignore[index]
    assert abs(doc.params["rotation_deg"]) <= spec.rotation_deg
    assert doc.image[:2] == (b"\x89P" if level == "clean" else b"\xff\xd8")


@needs_font
def test_generation_is_reproducible() -> None:
    first = list(synth.synthetic_batch(9, 3, today=TODAY))
    second = list(synth.synthetic_batch(9, 3, today=TODAY))
    assert [d.image for d in first] == [d.image for d in second]
    assert [d.level for d in first] == ["clean", "mild", "moderate"]


@needs_font
def test_special_pages() -> None:
    rng = random.Random(3)
    assert decode_image(synth.page_without_mrz(rng)).width > 100
    data, (first, second) = synth.two_documents_photo(rng, today=TODAY)
    assert first != second and decode_image(data).width > 2000


def test_other_mrz_fonts_are_scaled_to_the_icao_pitch() -> None:
    fonts = [font for font in synth.available_mrz_fonts() if font != "ocr-b"]
    if not fonts:
        pytest.skip("no monospace font besides OCR-B is installed (fonts-dejavu-core)")
    pitch = 25.4
    for font in fonts:
        face = synth._mono_font(font, pitch)
        advance = face.getlength("M")
        _left, top, _right, bottom = face.getbbox("H")
        assert advance <= pitch * 1.02 and bottom - top <= pitch, font
        # One of the two limits binds: the advance fills the cell, or the
        # capitals are OCR-B's height (a font narrower than OCR-B).
        assert advance >= 0.97 * pitch or bottom - top >= 0.85 * pitch, font


@needs_font
def test_the_hard_set_is_reproducible_and_cycles_its_hardships() -> None:
    first = list(synth.hard_batch(5, 3, today=TODAY, level="clean", layouts=("CS",)))
    again = list(synth.hard_batch(5, 3, today=TODAY, level="clean", layouts=("CS",)))
    assert [h for h, _ in first] == list(synth.HARDSHIPS[:3])
    assert [d.image for _, d in first] == [d.image for _, d in again]
    for _hardship, document in first:
        decoded = decode_image(document.image)
        assert (decoded.width, decoded.height) == (document.width, document.height)
