"""Photos harder than the generated set's levels: worn print, low contrast,
glare, quarter turns (each layout read from a rendered and degraded photo),
and the MRZ printed in a monospace font other than OCR-B, which the OCR-B
templates do not know and the second engine (PP-OCR) and the merging of the
engines' readings read.

Accuracy over many images is the benchmark's job (``bench/bench_ocr.py
--hard``); these pin one seed per case and assert no timings.
"""

from __future__ import annotations

import random
import shutil

import pluggy
import pytest
from support.data import TODAY

from healthcode.core.documents import make_submission, parse_document
from healthcode.core.images import decode_image
from healthcode.core.models import Document, MachineZoneCandidate
from healthcode.plugins.mrz_ocr import ppocr
from healthcode.plugins.mrz_ocr.reader import differs_unchecked, read_machine_zone
from healthcode.testing import synthetic_documents as synth

needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract-ocr is not installed"
)
needs_second_engine = pytest.mark.skipif(
    shutil.which("tesseract") is None
    or not ppocr.available()
    or "dejavu-mono" not in synth.available_mrz_fonts(),
    reason="tesseract-ocr, the pinned PP-OCR model or fonts-dejavu-core is not installed",
)


def _fields(document: Document) -> tuple[object, ...]:
    return (
        document.kind, document.number, document.document_code, document.issuing_state,
        document.surname, document.given_names, document.nationality, document.birth_date,
        document.sex, document.expiry_date,
    )  # fmt: skip


def _same_as_printed(mrz: str, image: bytes, pm: pluggy.PluginManager) -> None:
    read = parse_document(make_submission(image=image)[0], pm)
    printed = parse_document(make_submission(mrz=mrz)[0], pm)
    assert _fields(read) == _fields(printed)


@needs_tesseract
@pytest.mark.parametrize("hardship", ["worn_print", "low_contrast"])
@pytest.mark.parametrize("layout", synth.DOCUMENT_LAYOUTS)
def test_each_layout_is_read_from_a_hard_photo(
    layout: str, hardship: str, pm: pluggy.PluginManager
) -> None:
    document = synth.hard_document(
        random.Random(5),
        layout,  # type: ignore[arg-type]
        hardship,  # type: ignore[arg-type]
        "mild",
        today=TODAY,
    )
    _same_as_printed(document.mrz, document.image, pm)


@needs_tesseract
@pytest.mark.parametrize("layout", ["TD3", "TD1"])
def test_glare_over_the_page_is_read_through(layout: str, pm: pluggy.PluginManager) -> None:
    document = synth.hard_document(
        random.Random(5),
        layout,  # type: ignore[arg-type]
        "glare",
        "mild",
        today=TODAY,
    )
    _same_as_printed(document.mrz, document.image, pm)


@needs_second_engine
@pytest.mark.parametrize("layout", ["CR", "CS"])
def test_permit_cards_printed_in_another_font_are_read(
    layout: str, pm: pluggy.PluginManager
) -> None:
    rng = random.Random(41)
    mrz = synth.random_document_mrz(rng, layout, today=TODAY)  # type: ignore[arg-type]
    page, box = synth.render_page(mrz, layout, rng, font="dejavu-mono")  # type: ignore[arg-type]
    image, *_ = synth.photograph(page, box, "mild", rng)
    _same_as_printed(mrz, image, pm)


def test_hard_photos_keep_their_portrait_box_inside_the_photo() -> None:
    rng = random.Random(3)
    for hardship in ("quarter_turn", "small_in_frame"):
        document = synth.hard_document(rng, "TD1", hardship, "clean", today=TODAY)
        x, y, width, height = document.portrait_box
        assert x >= 0 and y >= 0 and width > 0 and height > 0
        assert x + width <= document.width and y + height <= document.height


@needs_tesseract
def test_a_photographed_screen_is_read_through_its_moire() -> None:
    """The fringes of a photographed screen break the one-line card's glyphs
    and ink extents for the template reader; the zone is read on a slightly
    blurred copy (``attempt:descreened``)."""
    document = synth.hard_document(random.Random(12), "CS", "moire", "moderate", today=TODAY)
    reading = read_machine_zone(decode_image(document.image), use_passporteye=False)
    assert reading.candidates[0].checks_passed
    assert reading.candidates[0].text == document.mrz
    assert "attempt:descreened" in reading.candidates[0].notes


def _candidate(text: str, note: str) -> MachineZoneCandidate:
    return MachineZoneCandidate(text, (note,), True, 0.8)


def test_the_second_engine_goes_first_only_where_no_check_digit_decides() -> None:
    """An unsure template reading and the second engine's, both with their
    check digits holding: where they differ in a name the second engine's is
    taken first; where they differ only under a check digit (``G`` and ``6``
    weigh the same in it) the digits cannot decide, and the templates stay first."""
    line1 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<"
    line2 = "L898902C36UTO7408122F1204159ZE184226B<<<<<10"
    template = _candidate(f"{line1}\n{line2}", "attempt:templates_0")
    in_a_name = _candidate(f"{line1.replace('ANNA', 'ANNE')}\n{line2}", "attempt:ppocr_confirm")
    assert differs_unchecked(in_a_name, [template])
    # C and 2 weigh 12 and 2 in the number's check digit: both hold.
    under_check = _candidate(f"{line1}\n{line2.replace('C36', '236')}", "attempt:ppocr_confirm")
    assert not differs_unchecked(under_check, [template])
