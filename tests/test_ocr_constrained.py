"""Constrained decoding of the MRZ fields no check digit covers, readings of
several engines merged, and merged card lines split: the mrz_ocr plugin's
repairs, each reported as a warning with a stable code.

No OCR engine runs here: the readings are texts with the errors engines make.
"""

from __future__ import annotations

import datetime as dt
import io
import random

import attrs
import pluggy
import pytest
from PIL import Image as PILImage
from support.data import TODAY

import healthcode.plugins.passport as passport
from healthcode.core import hookspecs
from healthcode.core.documents import check_document, make_submission
from healthcode.core.hookspecs import hookimpl
from healthcode.core.models import CheckResult, Image, MachineZoneCandidate, MachineZoneReading
from healthcode.plugins.mrz_ocr.constrain import confusion_cost, constrain, state_codes
from healthcode.plugins.mrz_ocr.decode import allowed_characters
from healthcode.plugins.mrz_ocr.layouts import failing_checks, layout_for
from healthcode.plugins.mrz_ocr.locate.components import TextLine
from healthcode.plugins.mrz_ocr.locate.lines import split_merged
from healthcode.plugins.mrz_ocr.merge import merged_candidate
from healthcode.plugins.mrz_ocr.notices import CONFIRMED_CODE, CONSTRAINED_CODE, repair_problems
from healthcode.plugins.mrz_ocr.reader import names_seen_by_others
from healthcode.plugins.mrz_ocr.repair import candidates_from_lines
from healthcode.testing import permits
from healthcode.testing.mrz import format_mrz, random_fields
from healthcode.testing.synthetic_documents import random_document_mrz

TD3 = [
    "P<NLDERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36NLD7408122F1204159ZE184226B<<<<<10",
]
"""The ICAO specimen's zone with the Netherlands as issuing state and nationality."""


def _with(lines: list[str], line: int, col: int, text: str) -> list[str]:
    changed = list(lines)
    changed[line] = changed[line][:col] + text + changed[line][col + len(text) :]
    return changed


def test_an_issuing_state_one_look_alike_off_takes_the_valid_code() -> None:
    misread = _with(TD3, 0, 2, "NLO")
    fixed, notes = constrain(misread)
    assert fixed == TD3
    assert notes == ["constrained:issuing_state:line1:col5"]


def test_the_nationality_is_evidence_for_the_issuing_state() -> None:
    slovenian = _with(_with(TD3, 0, 2, "SVN"), 1, 10, "SVN")
    misread = _with(slovenian, 0, 2, "SI<")  # two letters off: only the nationality tells
    fixed, notes = constrain(misread)
    assert fixed == slovenian
    assert notes == [
        "constrained:issuing_state:line1:col4",
        "constrained:issuing_state:line1:col5",
    ]


def test_a_state_far_from_every_code_is_left_as_read() -> None:
    misread = _with(_with(TD3, 0, 2, "QQQ"), 1, 10, "WWW")
    assert constrain(misread) == (misread, [])


@pytest.mark.parametrize("code", ["D<<", "GBD", "GBN", "UNO", "XXA", "XXX", "EUE", "RKS", "XOM"])
def test_icao_special_codes_are_valid_values(code: str) -> None:
    assert code in state_codes()
    zone = _with(_with(TD3, 0, 2, code), 1, 10, code)
    assert constrain(zone) == (zone, [])


def test_sex_and_document_code_take_the_values_they_may_hold() -> None:
    misread = _with(_with(TD3, 1, 20, "P"), 0, 0, "R")
    fixed, notes = constrain(misread)
    assert fixed == TD3
    assert notes == ["constrained:document_code:line1:col1", "constrained:sex:line2:col21"]


def test_a_sex_between_two_values_is_left_as_read() -> None:
    misread = _with(TD3, 1, 20, "K")  # as near X as the filler
    assert constrain(misread) == (misread, [])


@pytest.mark.parametrize("layout", ["TD3", "TD2", "TD1", "MRV-A", "MRV-B"])
def test_valid_zones_are_never_changed(layout: str) -> None:
    rng = random.Random(7)
    for _ in range(40):
        lines = format_mrz(random_fields(rng, layout, today=TODAY)).split("\n")  # type: ignore[arg-type]
        assert constrain(lines) == (lines, [])


@pytest.mark.parametrize("layout", ["CR", "CT", "CS"])
def test_permit_zones_are_never_changed(layout: str) -> None:
    rng = random.Random(8)
    for _ in range(20):
        lines = random_document_mrz(rng, layout, today=TODAY).split("\n")  # type: ignore[arg-type]
        assert constrain(lines) == (lines, [])


CT = permits.td1_permit_mrz(
    "CT", "05825360", dt.date(1968, 10, 6), "F", dt.date(2037, 12, 20), "WONG", "KA YAN"
).split("\n")
"""A Taiwan compatriot permit: its number is 8 digits."""


def test_letters_read_in_a_permit_number_are_the_digits_they_look_like() -> None:
    # O, S, B for 0, 5, 8 keep the 7-3-1 sum: the check digits cannot tell,
    # the number's shape can.
    misread = _with(CT, 0, 5, "OSB")
    assert failing_checks(misread, layout_for(misread)) == []  # type: ignore[arg-type]
    candidate = candidates_from_lines(misread, 0.9, [])[0]
    assert candidate.checks_passed
    assert candidate.text == "\n".join(CT)
    assert [n for n in candidate.notes if n.startswith("number_digit")] == [
        "number_digit:line1:col6",
        "number_digit:line1:col7",
        "number_digit:line1:col8",
    ]
    assert [p.code for p in repair_problems(candidate.notes)] == [CONFIRMED_CODE]


def test_a_permit_number_no_digit_fits_is_not_a_reading() -> None:
    # W looks like no digit: the reading is refused, not passed on as a number.
    misread = _with(CT, 0, 6, "W")
    candidates = candidates_from_lines(misread, 0.9, [])
    assert not any(c.checks_passed for c in candidates)
    assert "check_failed:malformed" in candidates[0].notes


def test_the_template_reader_allows_a_permit_number_only_its_shape() -> None:
    allowed = allowed_characters(layout_for(CT), CT)  # type: ignore[arg-type]
    assert allowed[(0, 5)] == frozenset("0123456789")
    assert allowed[(0, 13)] == frozenset("0123456789<")
    cr = permits.td1_permit_mrz(
        "CR", "H12345678", dt.date(1985, 3, 9), "F", dt.date(2031, 6, 30), "CHAN", "TAI MAN"
    ).split("\n")
    allowed = allowed_characters(layout_for(cr), cr)  # type: ignore[arg-type]
    assert allowed[(0, 5)] == frozenset("HM")
    assert allowed[(0, 6)] == frozenset("0123456789A")
    # Other documents' numbers stay alphanumeric.
    assert (1, 0) not in allowed_characters(layout_for(TD3), TD3)  # type: ignore[arg-type]


def test_confusion_costs_rank_look_alikes_first() -> None:
    assert confusion_cost("O", "O") == 0
    assert confusion_cost("O", "D") < confusion_cost("O", "W")
    assert confusion_cost("1", "I") == confusion_cost("I", "1")
    assert confusion_cost("K", "<") < confusion_cost("A", "<")


def test_repairs_become_warnings_with_stable_codes_and_both_languages() -> None:
    candidate = candidates_from_lines(_with(_with(TD3, 0, 2, "NLO"), 1, 16, "B"), 0.9, [])[0]
    assert candidate.checks_passed
    assert candidate.text == "\n".join(TD3)
    problems = {p.code: p for p in repair_problems(candidate.notes)}
    assert set(problems) == {CONSTRAINED_CODE, CONFIRMED_CODE}
    corrected = problems[CONSTRAINED_CODE]
    assert corrected.severity == "warning"
    assert corrected.field == "issuing_state"
    assert corrected.details == {"positions": [[1, 5]]}
    assert corrected.message_en and corrected.message_zh
    assert problems[CONFIRMED_CODE].severity == "warning"
    # Positions only: no character of the zone in any note or warning.
    for text in [*candidate.notes, *(str(p.as_dict()) for p in problems.values())]:
        assert "NLD" not in text and "ERIKSSON" not in text and "L898902C3" not in text


def test_readings_of_several_engines_confirm_each_other() -> None:
    truth = _with(TD3, 1, 28, "OV1ZJ2VDLAXA5").copy()
    spec = layout_for(truth)
    assert spec is not None
    truth = _with(truth, 1, 42, _optional_check(truth))
    truth = _with(truth, 1, 43, _composite(truth))
    assert failing_checks(truth, spec) == []
    first = _with(truth, 1, 28, "0")  # sure of a zero, as tesseract is in some fonts
    second = _with(truth, 1, 3, "B")  # right there, wrong elsewhere
    assert failing_checks(first, spec) and failing_checks(second, spec)
    merged = merged_candidate(
        [
            MachineZoneCandidate("\n".join(first), (), False, 0.8),
            MachineZoneCandidate("\n".join(second), (), False, 0.7),
        ]
    )
    assert merged is not None and merged.checks_passed
    assert merged.text == "\n".join(truth)
    assert "attempt:merged" in merged.notes


def test_readings_that_do_not_confirm_each_other_are_not_merged() -> None:
    first = _with(TD3, 1, 2, "X")  # both wrong in the same place
    second = _with(TD3, 1, 2, "Y")
    assert (
        merged_candidate(
            [
                MachineZoneCandidate("\n".join(first), (), False, 0.8),
                MachineZoneCandidate("\n".join(second), (), False, 0.7),
            ]
        )
        is None
    )


def test_card_lines_run_together_are_split() -> None:
    thin = TextLine(cx=100.0, cy=200.0, length=600.0, thickness=20.0, angle=0.0)
    double = TextLine(cx=100.0, cy=150.0, length=600.0, thickness=41.0, angle=0.0)
    split = split_merged([double, thin])
    assert len(split) == 3
    assert [round(line.cy) for line in split[:2]] == [140, 160]
    assert all(round(line.thickness) == 20 for line in split)
    assert split_merged([thin, thin]) == [thin, thin]


def _optional_check(lines: list[str]) -> str:
    from healthcode.core.checkdigits import icao_check_digit

    return icao_check_digit(lines[1][28:42])


def _composite(lines: list[str]) -> str:
    from healthcode.core.checkdigits import icao_check_digit

    line = lines[1]
    return icao_check_digit(line[0:10] + line[13:20] + line[21:43])


class _StandInReader:
    """An OCR plugin that 'reads' a fixed zone with one state misread, as the
    reader reports it: the repaired text, its notes and their warnings."""

    @hookimpl
    def healthcode_read_machine_zone(self, image: Image) -> MachineZoneReading:
        candidate = candidates_from_lines(_with(TD3, 0, 2, "NLO"), 0.9, [])[0]
        candidate = attrs.evolve(candidate, warnings=tuple(repair_problems(candidate.notes)))
        return MachineZoneReading(candidates=(candidate,), confidence=0.9)


def _checked_photo(document_plugin: object, reader: object, kind: str | None) -> CheckResult:
    """A blank photo checked with only ``document_plugin`` and the stand-in ``reader``."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(document_plugin, name="document_plugin")
    pm.register(reader, name="stand_in_reader")
    page = io.BytesIO()
    PILImage.new("RGB", (64, 48), "white").save(page, format="PNG")
    submission, warnings = make_submission(kind=kind, image=page.getvalue())
    return check_document(submission, today=TODAY, warnings=warnings, pm=pm)


def test_a_repair_reaches_the_person_as_a_warning_on_the_document() -> None:
    result = _checked_photo(passport, _StandInReader(), "passport")
    corrected = [p for p in result.problems if p.code == CONSTRAINED_CODE]
    assert [(p.severity, p.field) for p in corrected] == [("warning", "issuing_state")]
    assert result.document.issuing_state == "NLD"


class _TwoReadings:
    """An OCR stand-in whose first candidate passes its check digits with a
    number no Taiwan compatriot permit has; its second is the document."""

    @hookimpl
    def healthcode_read_machine_zone(self, image: Image) -> MachineZoneReading:
        wrong = MachineZoneCandidate("\n".join(_with(CT, 0, 5, "OSB")), (), True, 0.9)
        right = MachineZoneCandidate("\n".join(CT), (), True, 0.8)
        return MachineZoneReading(candidates=(wrong, right), confidence=0.9)


def test_a_candidate_that_breaks_a_rule_gives_way_to_one_that_breaks_none() -> None:
    import healthcode.plugins.hkmo_permit as hkmo_permit

    result = _checked_photo(hkmo_permit, _TwoReadings(), None)
    assert result.is_valid, result.problems
    assert result.document.number == "05825360"
    assert result.document.extra["image"]["candidate"] == 1


TD1_ZONE = [
    "ACTHA0ADUY0B<<2688XXFMNJUI<<<<",
    "7602252M3306091CHN0V4IA<<<<<<2",
    "XNDVPNG<<TBK<<<<<<<<<<<<<<<<<<",
]
"""A TD1 zone of the hard set (DejaVu Sans Mono) whose name PP-OCR nearly lost."""


def _reading(lines: list[str]) -> MachineZoneCandidate:
    return MachineZoneCandidate("\n".join(lines), ("attempt:templates_0",), False, 0.4)


def test_name_cells_the_second_engine_missed_come_from_agreeing_readings() -> None:
    lost = _with(TD1_ZONE, 2, 0, "X" + "<" * 29)
    sure = [[0.9] * 30, [0.9] * 30, [0.38] + [0.0] * 6 + [0.92, 0.92, 0.0, 0.0, 0.55] + [0.9] * 18]
    others = [_reading(TD1_ZONE), _reading(_with(TD1_ZONE, 1, 0, "76677"))]
    fixed, notes = names_seen_by_others(lost, sure, others)
    assert fixed == TD1_ZONE
    assert notes[0] == "constrained:name:line3:col2" and len(notes) == 9  # NDVPNG TBK
    problems = repair_problems(notes)
    assert [(p.code, p.field, p.severity) for p in problems] == [
        (CONSTRAINED_CODE, "name", "warning")
    ]
    assert "姓名" in problems[0].message_zh
    # One other reading is no agreement; disagreeing readings are none either.
    assert names_seen_by_others(lost, sure, others[:1]) == (lost, [])
    disagreeing = [_reading(TD1_ZONE), _reading(_with(TD1_ZONE, 2, 0, "XMDVPNG"))]
    assert names_seen_by_others(lost, sure, disagreeing)[0][2][:3] == "X<D"
    # A filler the engine is sure of stays.
    assert names_seen_by_others(lost, [[0.9] * 30] * 3, others) == (lost, [])
