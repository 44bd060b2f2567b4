"""Reading MRZs from images: the reading hook, core's choice among candidates,
the mrz_ocr plugin's template and tesseract readers, their confirmed repairs,
and bad input.

Tests that run tesseract are skipped when the binary is absent (CI installs
``tesseract-ocr``); accuracy per degradation level is the benchmark's job
(bench/bench_ocr.py), so these use the specimens and a few clean generated
photos, and assert no timings.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import random
import shutil
import string
from typing import Any

import pluggy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.data import DOCUMENTS, TODAY
from typer.testing import CliRunner

from healthcode.cli.main import app
from healthcode.core.documents import check_document, make_submission, parse_document
from healthcode.core.errors import HealthcodeError
from healthcode.core.hookspecs import hookimpl
from healthcode.core.images import decode_image
from healthcode.core.models import Document, Image, MachineZoneCandidate, MachineZoneReading
from healthcode.plugins.mrz_ocr import glyphs as ocr_glyphs
from healthcode.plugins.mrz_ocr.decode import decode_scores
from healthcode.plugins.mrz_ocr.grid import is_chevron
from healthcode.plugins.mrz_ocr.layouts import LAYOUT_SPECS, failing_checks, layout_for
from healthcode.plugins.mrz_ocr.reader import read_machine_zone
from healthcode.plugins.mrz_ocr.repair import candidates_from_lines, repair
from healthcode.testing.mrz import format_mrz, random_fields

needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract-ocr is not installed"
)
TD3_SPECIMEN = (
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10"
)
TD2_SPECIMEN = "I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<\nD231458907UTO7408122F1204159<<<<<<<6"


def _fields(document: Document) -> tuple[object, ...]:
    """Everything a person or the service reads from a document."""
    return (
        document.kind,
        document.number,
        document.document_code,
        document.issuing_state,
        document.surname,
        document.given_names,
        document.nationality,
        document.birth_date,
        document.sex,
        document.expiry_date,
    )


def _from_text(mrz: str, pm: pluggy.PluginManager) -> Document:
    submission, _ = make_submission(mrz=mrz)
    return parse_document(submission, pm)


def _from_image(data: bytes, pm: pluggy.PluginManager, kind: str | None = None) -> Document:
    submission, _ = make_submission(image=data, kind=kind)
    return parse_document(submission, pm)


def _png(width: int, height: int) -> bytes:
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.new("RGB", (width, height), "white").save(buffer, format="PNG")
    return buffer.getvalue()


# --- core: the hook and the choice among candidates ----------------------------------


class FakeReader:
    """A throwaway OCR plugin answering before the built-in reader."""

    def __init__(self, reading: MachineZoneReading | None) -> None:
        self.reading = reading

    @hookimpl(tryfirst=True)
    def healthcode_read_machine_zone(self, image: Image) -> MachineZoneReading | None:
        return self.reading


@pytest.fixture
def white_page() -> bytes:
    return _png(64, 48)


def _register(pm: pluggy.PluginManager, reading: MachineZoneReading | None) -> None:
    pm.register(FakeReader(reading), name="fake_reader")


def test_core_keeps_the_first_candidate_whose_check_digits_hold(
    pm: pluggy.PluginManager, white_page: bytes
) -> None:
    broken = TD3_SPECIMEN.replace("7408122", "7408123")  # birth-date check fails
    reading = MachineZoneReading(
        candidates=(MachineZoneCandidate(broken), MachineZoneCandidate(TD3_SPECIMEN)),
        portrait_box=(1, 2, 3, 4),
        confidence=0.75,
        timings={"ocr": 0.1},
        engine="fake",
    )
    _register(pm, reading)
    # The hook itself, called through the manager.
    assert pm.hook.healthcode_read_machine_zone(image=decode_image(white_page)) is reading
    document = _from_image(white_page, pm)
    assert document.source == "image"
    assert _fields(document) == _fields(_from_text(TD3_SPECIMEN, pm))
    facts = document.extra["image"]
    assert facts["candidate"] == 1
    assert facts["portrait_box"] == [1, 2, 3, 4]
    assert facts["engine"] == "fake"
    assert set(facts["timings"]) >= {"ocr", "decode", "total"}


def test_core_falls_back_to_the_best_candidate_with_its_problems(
    pm: pluggy.PluginManager, white_page: bytes
) -> None:
    broken = TD3_SPECIMEN.replace("7408122", "7408123")
    _register(pm, MachineZoneReading(candidates=(MachineZoneCandidate(broken),)))
    document = _from_image(white_page, pm)
    assert "check_digit_mismatch" in {p.code for p in document.problems}


def test_permit_candidates_are_parsed_by_the_permit_plugin(
    pm: pluggy.PluginManager, white_page: bytes
) -> None:
    from healthcode.testing.permits import random_mrz_sample

    sample = random_mrz_sample(random.Random(3), "hk_mo_home_return_permit")
    _register(pm, MachineZoneReading(candidates=(MachineZoneCandidate(sample.mrz),)))
    document = _from_image(white_page, pm)
    assert document.kind == "hk_mo_home_return_permit"
    assert document.number == sample.number


@pytest.mark.parametrize(
    ("reading", "code"),
    [
        (MachineZoneReading(candidates=()), "no_machine_readable_zone"),
        (None, "image_reading_unavailable"),
        (
            MachineZoneReading(candidates=(MachineZoneCandidate("NOT<AN<MRZ"),)),
            "no_machine_readable_zone",
        ),
    ],
)
def test_core_reports_unreadable_images_with_stable_codes(
    pm: pluggy.PluginManager,
    white_page: bytes,
    reading: MachineZoneReading | None,
    code: str,
) -> None:
    pm.register(FakeReader(reading), name="fake_reader")
    if reading is None:
        # Nobody reads images: take the built-in reader out too.
        pm.unregister(name="mrz_ocr")
    with pytest.raises(HealthcodeError) as caught:
        _from_image(white_page, pm)
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "not_an_image"),
        (b"this is a text file, not a photo", "not_an_image"),
        (b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n", "pdf_not_supported"),
    ],
)
def test_bad_files_get_stable_codes(pm: pluggy.PluginManager, data: bytes, code: str) -> None:
    with pytest.raises(HealthcodeError) as caught:
        _from_image(data, pm)
    assert caught.value.code == code


def test_a_decompression_bomb_is_refused_before_decoding(pm: pluggy.PluginManager) -> None:
    with pytest.raises(HealthcodeError) as caught:
        _from_image(_png(8000, 4000), pm)  # 32 MP PNG, a few KB on disk
    assert caught.value.code == "image_too_large"


# --- the tesseract reader ---------------------------------------------------------------


@needs_tesseract
@pytest.mark.parametrize(
    ("name", "mrz", "portrait_centre"),
    [
        ("specimen_passport_td3.png", TD3_SPECIMEN, (280, 430)),
        ("specimen_passport_td3.jpg", TD3_SPECIMEN, (280, 430)),
        ("specimen_id_td2.png", TD2_SPECIMEN, (260, 460)),
    ],
)
def test_specimens_are_read_exactly(
    pm: pluggy.PluginManager, name: str, mrz: str, portrait_centre: tuple[int, int]
) -> None:
    # Raw passporteye misreads all three (fillers read as K, UTO as UT0).
    document = _from_image((DOCUMENTS / name).read_bytes(), pm)
    assert _fields(document) == _fields(_from_text(mrz, pm))
    facts = document.extra["image"]
    assert 0.5 < facts["confidence"] <= 1.0
    x, y, w, h = facts["portrait_box"]
    assert x <= portrait_centre[0] <= x + w and y <= portrait_centre[1] <= y + h


@needs_tesseract
def test_generated_photos_of_each_family_are_read(pm: pluggy.PluginManager) -> None:
    from healthcode.testing.synthetic_documents import DocumentLayout, Level, synthetic_document

    rng = random.Random(2026)
    cases: tuple[tuple[DocumentLayout, Level], ...] = (
        ("TD3", "mild"),
        ("TD1", "clean"),
        ("CR", "clean"),
        ("CS", "mild"),
    )
    for layout, level in cases:
        doc = synthetic_document(rng, layout, level, today=TODAY)
        document = _from_image(doc.image, pm)
        assert _fields(document) == _fields(_from_text(doc.mrz, pm)), layout
        # The portrait estimate overlaps the drawn portrait.
        x, y, w, h = document.extra["image"]["portrait_box"]
        px, py, pw, ph = doc.portrait_box
        overlap_w = min(x + w, px + pw) - max(x, px)
        overlap_h = min(y + h, py + ph) - max(y, py)
        assert overlap_w > 0.5 * pw and overlap_h > 0.5 * ph, layout


@needs_tesseract
def test_a_photo_turned_upside_down_is_read(pm: pluggy.PluginManager) -> None:
    from PIL import Image as PILImage

    turned = io.BytesIO()
    PILImage.open(DOCUMENTS / "specimen_passport_td3.png").rotate(180).save(turned, "PNG")
    document = _from_image(turned.getvalue(), pm)
    assert document.number == "L898902C3"


@needs_tesseract
def test_a_page_without_mrz_is_reported(pm: pluggy.PluginManager) -> None:
    from healthcode.testing.synthetic_documents import page_without_mrz

    with pytest.raises(HealthcodeError) as caught:
        _from_image(page_without_mrz(random.Random(1)), pm)
    assert caught.value.code == "no_machine_readable_zone"
    assert "no machine-readable zone found" in caught.value.message_en.lower()


@needs_tesseract
def test_two_documents_in_one_photo_are_refused(pm: pluggy.PluginManager) -> None:
    from healthcode.testing.synthetic_documents import two_documents_photo

    data, _ = two_documents_photo(random.Random(7), today=TODAY)
    with pytest.raises(HealthcodeError) as caught:
        _from_image(data, pm)
    assert caught.value.code == "multiple_documents"


def test_a_missing_engine_names_the_binary_and_the_package(
    pm: pluggy.PluginManager, monkeypatch: pytest.MonkeyPatch, white_page: bytes
) -> None:
    monkeypatch.setenv("HEALTHCODE_TESSERACT", "/nonexistent/tesseract")
    with pytest.raises(HealthcodeError) as caught:
        _from_image(white_page, pm)
    assert caught.value.code == "ocr_engine_missing"
    assert "tesseract" in caught.value.message_en
    assert "tesseract-ocr" in caught.value.message_en


@needs_tesseract
def test_cli_read_prints_masked_fields_only() -> None:
    result = CliRunner().invoke(
        app,
        ["documents", "read", str(DOCUMENTS / "specimen_passport_td3.jpg"), "--json"],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["source"] == "image"
    assert payload["masked_number"].startswith("L8") and payload["masked_number"].endswith("C3")
    assert "L898902C3" not in result.stdout and "ANNA" not in result.stdout
    assert payload["confidence"] > 0.5 and payload["timings"]["total"] > 0
    assert {"document_expired", "specimen_document"} <= {p["code"] for p in payload["problems"]}


def test_cli_read_refuses_a_text_file(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "notes.txt"  # type: ignore[operator]
    path.write_text("hello")
    result = CliRunner().invoke(app, ["documents", "read", str(path), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["code"] == "not_an_image"


# --- repairs the check digits confirm (pure) ------------------------------------------------

TD3 = LAYOUT_SPECS["TD3"]


def _sure(lines: list[str], unsure: set[tuple[int, int]] = frozenset()) -> list[list[float]]:  # type: ignore[assignment]
    return [
        [0.5 if (row, col) in unsure else 0.99 for col in range(len(line))]
        for row, line in enumerate(lines)
    ]


def test_a_letter_in_a_date_is_changed_only_when_the_check_digit_confirms() -> None:
    lines = TD3_SPECIMEN.split("\n")
    read = [lines[0], lines[1][:13] + "74O8122" + lines[1][20:]]  # O for 0 in the birth date
    fixed, notes, _ = repair(read, TD3, _sure(read))
    assert fixed == lines
    assert any(note.startswith("check_confirmed:birth_date") for note in notes)
    # A digit misread as another digit is not a look-alike: left for the parser.
    wrong = [lines[0], lines[1][:13] + "7418122" + lines[1][20:]]
    fixed, _, _ = repair(wrong, TD3, _sure(wrong))
    assert fixed == wrong
    assert "birth_date" in failing_checks(fixed, TD3)


def test_look_alikes_in_the_number_change_only_where_the_engine_was_unsure() -> None:
    lines = TD3_SPECIMEN.split("\n")
    read = [lines[0], "L8989O2C3" + lines[1][9:]]  # O for 0 at column 6
    sure_fixed, _, _ = repair(read, TD3, _sure(read))
    assert sure_fixed[1][:9] == "L8989O2C3"  # confident reading: not touched
    unsure_fixed, notes, _ = repair(read, TD3, _sure(read, {(1, 5)}))
    assert unsure_fixed == lines
    assert "check_confirmed:number:line2:col6" in notes


def test_filler_look_alikes_in_the_name_tail_and_digits_in_letter_fields() -> None:
    lines = TD3_SPECIMEN.split("\n")
    read = [lines[0][:30] + "K<X" + lines[0][33:], lines[1][:10] + "UT0" + lines[1][13:]]
    fixed, notes, _ = repair(read, TD3, _sure(read))
    assert fixed == lines
    assert any(n.startswith("name_filler") for n in notes)
    assert any(n.startswith("letter_field") for n in notes)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), layout=st.sampled_from(["TD3", "TD2", "TD1"]))
def test_valid_zones_are_left_alone(seed: int, layout: str) -> None:
    mrz = format_mrz(random_fields(random.Random(seed), layout, today=TODAY, plain=True))  # type: ignore[arg-type]
    lines = mrz.split("\n")
    spec = layout_for(lines)
    assert spec is not None
    assert failing_checks(lines, spec) == []
    # Every position unsure: still nothing changes, since every check holds.
    everything = {(r, c) for r, line in enumerate(lines) for c in range(len(line))}
    fixed, notes, _ = repair(lines, spec, _sure(lines, everything))
    if not any(n.startswith("name_filler") for n in notes):
        assert fixed == lines


_DIGIT_LOOKALIKE = {"0": "O", "1": "I", "8": "B", "5": "S", "2": "Z"}


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), which=st.integers(0, 5))
def test_a_date_digit_read_as_its_look_alike_is_restored(seed: int, which: int) -> None:
    fields = random_fields(random.Random(seed), "TD3", today=TODAY, plain=True)
    lines = format_mrz(fields).split("\n")
    column = 13 + which  # birth date, YYMMDD
    digit = lines[1][column]
    if digit not in _DIGIT_LOOKALIKE:
        return  # 3, 4, 6, 7, 9 have no letter look-alike in this set
    read = [lines[0], lines[1][:column] + _DIGIT_LOOKALIKE[digit] + lines[1][column + 1 :]]
    fixed, _, _ = repair(read, TD3, _sure(read))
    # Dates hold digits only, so the letter maps back and the check digit confirms.
    assert fixed == lines


def test_chevrons_are_told_from_k_and_other_letters() -> None:
    import numpy as np
    from PIL import Image as PILImage
    from PIL import ImageDraw, ImageFont

    from healthcode.testing.synthetic_documents import ocr_b_font_path

    try:
        font = ImageFont.truetype(str(ocr_b_font_path()), 47)
    except FileNotFoundError:
        pytest.skip("fonts-ocr-b is not installed")
    for char in string.ascii_uppercase + string.digits + "<":
        page = PILImage.new("L", (102, 60), 255)
        draw = ImageDraw.Draw(page)
        for index, shown in enumerate("A" + char + "A"):
            draw.text((index * 34, 0), shown, font=font, fill=0)
        ink = np.asarray(page) < 128
        assert is_chevron(ink[:, 32:70]) == (char == "<"), char


def test_layouts_are_told_from_the_shape_of_the_reading() -> None:
    assert layout_for(["A" * 44, "B" * 44]).name == "TD3"  # type: ignore[union-attr]
    assert layout_for(["V" * 36, "B" * 36]).name == "MRV-B"  # type: ignore[union-attr]
    assert layout_for(["C" * 30]).name == "CARD"  # type: ignore[union-attr]
    assert layout_for(["A" * 30, "B" * 30, "C" * 30]).name == "TD1"  # type: ignore[union-attr]
    assert layout_for(["A" * 30, "B" * 29]) is None


def test_no_candidate_note_holds_zone_characters() -> None:
    lines = TD3_SPECIMEN.split("\n")
    candidates = candidates_from_lines(lines, 0.9, ["attempt:direct"])
    for note in candidates[0].notes:
        assert "ERIKSSON" not in note and "L898902C3" not in note


def test_check_document_reports_image_source(pm: pluggy.PluginManager, white_page: bytes) -> None:
    _register(pm, MachineZoneReading(candidates=(MachineZoneCandidate(TD3_SPECIMEN),)))
    submission, warnings = make_submission(image=white_page)
    result = check_document(submission, today=dt.date(2011, 1, 1), warnings=warnings, pm=pm)
    assert result.document.source == "image"
    assert result.masked is not None and result.masked.masked_name == "ERIKSSON"


# --- the OCR-B template reader -------------------------------------------------------------

needs_font = pytest.mark.skipif(
    ocr_glyphs.font_path() is None, reason="fonts-ocr-b is not installed"
)


def _scores(lines: list[str], tweaks: dict[tuple[int, int], dict[str, float]]) -> list[Any]:
    """Glyph scores as the template reader gives them: 0.9 for the printed
    character, 0.3 for the rest, with ``tweaks`` per (line, column)."""
    import numpy as np

    out = []
    for row, line in enumerate(lines):
        grid = np.full((len(line), len(ocr_glyphs.ALPHABET)), 0.3, dtype=np.float32)
        for col, char in enumerate(line):
            grid[col, ocr_glyphs.ALPHABET.index(char)] = 0.9
            for other, value in tweaks.get((row, col), {}).items():
                grid[col, ocr_glyphs.ALPHABET.index(other)] = value
        out.append(grid)
    return out


def test_template_scores_decode_to_the_printed_zone() -> None:
    reading = decode_scores(_scores(TD3_SPECIMEN.split("\n"), {}))
    assert reading is not None and reading.checks_passed
    assert "\n".join(reading.lines) == TD3_SPECIMEN


def test_field_alphabets_rule_out_look_alikes() -> None:
    lines = TD3_SPECIMEN.split("\n")
    # A date cell that matches 'O' best still reads as a digit; a state cell
    # that matches '0' best still reads as a letter.
    tweaks = {(1, 14): {"O": 0.95}, (1, 11): {"0": 0.97}}
    reading = decode_scores(_scores(lines, tweaks))
    assert reading is not None
    assert "\n".join(reading.lines) == TD3_SPECIMEN
    assert not any(n.startswith("check_confirmed") for n in reading.notes)


def test_a_close_runner_up_is_taken_only_when_the_check_digit_confirms() -> None:
    lines = TD3_SPECIMEN.split("\n")
    # Number "L898902C3": the '0' cell matches 'O' a little better (a close call).
    close = decode_scores(_scores(lines, {(1, 5): {"O": 0.92}}))
    assert close is not None and close.lines[1][:9] == "L898902C3"
    assert "check_confirmed:number:line2:col6" in close.notes
    # A clear 'O' is what was printed as far as the reader can tell: left for the parser.
    clear = decode_scores(_scores(lines, {(1, 5): {"O": 0.99, "0": 0.5}}))
    assert clear is not None and clear.lines[1][5] == "O"
    assert not clear.checks_passed and "check_failed:number" in clear.notes
    # A close call in a name (no check digit) is never changed.
    name = decode_scores(_scores(lines, {(0, 6): {"B": 0.93}}))
    assert name is not None and name.lines[0][6] == "B"


@needs_font
@pytest.mark.parametrize("layout", ["TD3", "TD2", "TD1", "CR", "CT", "CS"])
def test_moderately_degraded_photos_are_read_by_templates(layout: str) -> None:
    from healthcode.testing.synthetic_documents import synthetic_document

    rng = random.Random(f"templates-{layout}")
    doc = synthetic_document(rng, layout, "moderate", today=TODAY)  # type: ignore[arg-type]
    reading = read_machine_zone(decode_image(doc.image), use_passporteye=False)
    best = reading.candidates[0]
    assert best.text == doc.mrz
    assert best.checks_passed
    assert any(note.startswith("attempt:templates") for note in best.notes)


@needs_font
@pytest.mark.parametrize("quarter_turns", [1, 2, 3])
def test_turned_photos_are_read_by_templates(quarter_turns: int) -> None:
    from PIL import Image as PILImage

    from healthcode.testing.synthetic_documents import synthetic_document

    doc = synthetic_document(random.Random(11), "TD1", "mild", today=TODAY)
    turned = io.BytesIO()
    PILImage.open(io.BytesIO(doc.image)).rotate(90 * quarter_turns, expand=True).save(turned, "PNG")
    reading = read_machine_zone(decode_image(turned.getvalue()), use_passporteye=False)
    assert reading.candidates[0].text == doc.mrz
