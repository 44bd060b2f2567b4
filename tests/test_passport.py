"""The passport plugin: ICAO 9303 MRZs (TD1, TD2, TD3, MRV-A, MRV-B) from text,
typed passport numbers, validation for the day and masking."""

from __future__ import annotations

import datetime as dt

import pluggy
import pytest
from support.data import TODAY

from healthcode.core.checkdigits import icao_check_digit
from healthcode.core.documents import check_document, document_types, make_submission
from healthcode.core.errors import MalformedMRZError, MalformedNumberError, UnknownDocumentKindError
from healthcode.core.models import Document, DocumentSubmission
from healthcode.plugins import passport
from healthcode.plugins.passport.countries import (
    ICAO_SPECIFIC,
    ISO_3166_ALPHA3,
    country_name,
    is_known_code,
)
from healthcode.plugins.passport.mrz import (
    check_digit,
    layout_of,
    looks_like_icao_mrz,
    parse_mrz,
    parse_passport_number,
)

TD3 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10"
TD2 = "I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<\nD231458907UTO7408122F1204159<<<<<<<6"
TD1 = (
    "I<UTOD231458907<<<<<<<<<<<<<<<\n7408122F1204159UTO<<<<<<<<<<<6\nERIKSSON<<ANNA<MARIA<<<<<<<<<<"
)
# ICAO 9303 part 5's example of a document number longer than 9 characters.
TD1_LONG = (
    "I<UTOD23145890<7349<<<<<<<<<<<\n3407127M9507122UTO<<<<<<<<<<<2\nSTEVENSON<<PETER<JOHN<<<<<<<<<"
)
MRVA = "V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL8988901C4XXX4009078F96121096ZE184226B<<<<<<"
MRVB = "V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<\nL8988901C4XXX4009078F9612109<<<<<<<<"


def parse(mrz: str, today: dt.date = TODAY) -> Document:
    return parse_mrz(mrz, today=today)


def errors(document: Document) -> list[tuple[str, str | None]]:
    return [(p.code, p.field) for p in document.problems if p.severity == "error"]


def codes(document: Document) -> set[str]:
    return {p.code for p in document.problems}


def td3(
    *,
    line1: str = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    number: str = "L898902C3",
    nationality: str = "UTO",
    birth: str = "740812",
    sex: str = "F",
    expiry: str = "120415",
    optional: str = "ZE184226B<<<<<",
    optional_check: str | None = None,
) -> str:
    """A TD3 with every check digit right for the raw fields given."""
    line2 = (
        number
        + icao_check_digit(number)
        + nationality
        + birth
        + icao_check_digit(birth)
        + sex
        + expiry
        + icao_check_digit(expiry)
        + optional
        + (optional_check if optional_check is not None else icao_check_digit(optional))
    )
    line2 += icao_check_digit(line2[0:10] + line2[13:20] + line2[21:43])
    assert len(line1) == len(line2) == 44
    return line1 + "\n" + line2


def replace(mrz: str, line: int, column: int, char: str) -> str:
    """``mrz`` with the character at (1-based) line and column replaced."""
    lines = mrz.split("\n")
    text = lines[line - 1]
    lines[line - 1] = text[: column - 1] + char + text[column:]
    return "\n".join(lines)


# --- specimens ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mrz", "kind", "layout", "code", "number", "birth", "expiry", "nationality", "optional"),
    [
        (TD3, "passport", "TD3", "P", "L898902C3", dt.date(1974, 8, 12), dt.date(2012, 4, 15),
         "UTO", "ZE184226B"),
        (TD2, "travel_id", "TD2", "I", "D23145890", dt.date(1974, 8, 12), dt.date(2012, 4, 15),
         "UTO", ""),
        (TD1, "travel_id", "TD1", "I", "D23145890", dt.date(1974, 8, 12), dt.date(2012, 4, 15),
         "UTO", ""),
        (MRVA, "visa", "MRV-A", "V", "L8988901C", dt.date(1940, 9, 7), dt.date(1996, 12, 10),
         "XXX", "6ZE184226B"),
        (MRVB, "visa", "MRV-B", "V", "L8988901C", dt.date(1940, 9, 7), dt.date(1996, 12, 10),
         "XXX", ""),
    ],
)  # fmt: skip
def test_icao_specimens_parse(
    mrz: str,
    kind: str,
    layout: str,
    code: str,
    number: str,
    birth: dt.date,
    expiry: dt.date,
    nationality: str,
    optional: str,
) -> None:
    doc = parse(mrz)
    assert doc.is_valid, doc.problems
    assert codes(doc) == {"specimen_document"}  # a warning, not an error
    assert (doc.kind, doc.extra["layout"], doc.document_code) == (kind, layout, code)
    assert (doc.number, doc.birth_date, doc.expiry_date) == (number, birth, expiry)
    assert (doc.surname, doc.given_names, doc.sex) == ("ERIKSSON", "ANNA MARIA", "F")
    assert (doc.issuing_state, doc.nationality) == ("UTO", nationality)
    assert doc.extra["optional_data"] == optional
    assert doc.source == "mrz"
    assert doc.raw == mrz


def test_long_document_number_specimen() -> None:
    doc = parse(TD1_LONG)
    assert doc.is_valid, doc.problems
    assert doc.number == "D23145890734"
    assert doc.extra["long_number"] is True
    assert doc.extra["optional_data"] == ""
    assert (doc.surname, doc.given_names, doc.sex) == ("STEVENSON", "PETER JOHN", "M")
    assert (doc.birth_date, doc.expiry_date) == (dt.date(1934, 7, 12), dt.date(1995, 7, 12))


def test_fast_check_digit_matches_core() -> None:
    assert check_digit("L898902C3") == "6"
    assert check_digit("D23145890734") == "9"
    for data in ("", "<", "<<<<<<<<<<<<<<", "ZE184226B<<<<<", "740812", "ABCXYZ0123456789"):
        assert check_digit(data) == icao_check_digit(data)


# --- check digits -------------------------------------------------------------------


def _bump(char: str) -> str:
    return str((int(char) + 1) % 10)


@pytest.mark.parametrize(
    ("mrz", "line", "column", "fields"),
    [
        # A field's own check digit is also inside the composite, so both fail.
        (TD3, 2, 10, {"document_number", "composite"}),
        (TD3, 2, 20, {"birth_date", "composite"}),
        (TD3, 2, 28, {"expiry_date", "composite"}),
        (TD3, 2, 43, {"optional_data", "composite"}),
        (TD3, 2, 44, {"composite"}),
        (TD2, 2, 10, {"document_number", "composite"}),
        (TD2, 2, 20, {"birth_date", "composite"}),
        (TD2, 2, 28, {"expiry_date", "composite"}),
        (TD2, 2, 36, {"composite"}),
        (TD1, 1, 15, {"document_number", "composite"}),
        (TD1, 2, 7, {"birth_date", "composite"}),
        (TD1, 2, 15, {"expiry_date", "composite"}),
        (TD1, 2, 30, {"composite"}),
        (TD1_LONG, 1, 19, {"document_number", "composite"}),
        # Visas have no composite check.
        (MRVA, 2, 10, {"document_number"}),
        (MRVA, 2, 20, {"birth_date"}),
        (MRVA, 2, 28, {"expiry_date"}),
        (MRVB, 2, 10, {"document_number"}),
        (MRVB, 2, 20, {"birth_date"}),
        (MRVB, 2, 28, {"expiry_date"}),
    ],
)
def test_each_check_digit_broken_in_turn(
    mrz: str, line: int, column: int, fields: set[str]
) -> None:
    old = mrz.split("\n")[line - 1][column - 1]
    doc = parse(replace(mrz, line, column, _bump(old)))
    assert not doc.is_valid
    assert set(errors(doc)) == {("check_digit_mismatch", f) for f in fields}
    field = min(fields, key=lambda f: f == "composite")  # the field's own check first
    problem = next(p for p in doc.problems if p.field == field)
    assert problem.details["found"] == _bump(old)
    assert problem.details["expected"] == old
    assert (problem.details["check_line"], problem.details["check_column"]) == (line, column)


def test_a_data_change_fails_its_field_and_the_composite() -> None:
    # 'L' -> 'M' in the number: its check and the composite both notice.
    doc = parse(replace(TD3, 2, 1, "M"))
    assert set(errors(doc)) == {
        ("check_digit_mismatch", "document_number"),
        ("check_digit_mismatch", "composite"),
    }


def test_composite_alone() -> None:
    # The optional data of a TD1 has no check of its own: only the composite covers it.
    # ('<' -> 'A' would go unnoticed: both count 0 mod 10; see the property tests.)
    doc = parse(replace(TD1, 1, 20, "B"))
    assert errors(doc) == [("check_digit_mismatch", "composite")]


def test_empty_personal_number_may_have_a_filler_check() -> None:
    for check in ("<", "0"):
        doc = parse(td3(optional="<" * 14, optional_check=check))
        assert doc.is_valid, doc.problems
        assert doc.extra["optional_data"] == ""
    doc = parse(td3(optional="<" * 14, optional_check="5"))  # composite built over the '5'
    assert errors(doc) == [("check_digit_mismatch", "optional_data")]
    # A filler check is only allowed over an empty field.
    doc = parse(td3(optional="ZE184226B<<<<<", optional_check="<"))
    assert ("check_digit_mismatch", "optional_data") in errors(doc)


def test_long_numbers_in_td2_and_td3() -> None:
    # Built by hand per the convention: 9 characters, '<', the rest + check in optional data.
    number = "AB1234567890"
    check = icao_check_digit(number)
    optional = ("890" + check + "<X1<<<<<<<<<<")[:14]
    mrz = td3(number=number[:9], optional=optional)
    mrz = replace(mrz, 2, 10, "<")
    line2 = mrz.split("\n")[1]
    mrz = replace(mrz, 2, 44, icao_check_digit(line2[0:10] + line2[13:20] + line2[21:43]))
    doc = parse(mrz)
    assert doc.is_valid, doc.problems
    assert doc.number == number
    assert doc.extra["optional_data"] == "X1"

    l2 = "AB1234567<UTO7408122F1204159" + "890" + check + "<<<"
    l2 += icao_check_digit(l2[0:10] + l2[13:20] + l2[21:35])
    doc = parse("I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<\n" + l2)
    assert doc.is_valid, doc.problems
    assert (doc.number, doc.extra["layout"]) == (number, "TD2")


def test_long_number_with_a_wrong_check_digit() -> None:
    doc = parse(replace(TD1_LONG, 1, 19, "8"))
    assert ("check_digit_mismatch", "document_number") in errors(doc)
    problem = next(p for p in doc.problems if p.field == "document_number")
    assert (problem.details["check_line"], problem.details["check_column"]) == (1, 19)


def test_filler_check_without_overflow_is_a_mismatch() -> None:
    # '<' in the check position but nothing in the optional data to continue the number.
    doc = parse(replace(TD1, 1, 15, "<"))
    problem = next(p for p in doc.problems if p.field == "document_number")
    assert problem.code == "check_digit_mismatch"
    assert problem.details["found"] == "<"
    assert doc.extra["long_number"] is False


def test_visas_have_no_long_number_convention() -> None:
    doc = parse(replace(MRVA, 2, 10, "<"))
    assert errors(doc) == [("check_digit_mismatch", "document_number")]
    assert doc.number == "L8988901C"


# --- suggested repairs --------------------------------------------------------------


def test_letter_o_in_a_date_is_reported_never_repaired() -> None:
    doc = parse(replace(TD3, 2, 16, "O"))  # birth 740812 -> 74O812
    assert doc.birth_date is None
    assert ("invalid_characters_in_field", "birth_date") in errors(doc)
    assert ("check_digit_mismatch", "birth_date") in errors(doc)
    repair = next(p for p in doc.problems if p.code == "suggested_repair")
    assert repair.severity == "warning"
    assert repair.field == "birth_date"
    assert dict(repair.details) == {"line": 2, "column": 16, "found": "O", "suggested": "0"}


def test_suggested_repair_in_the_number_keeps_the_number_as_read() -> None:
    mrz = td3(number="X0Y6RK<<<")
    doc = parse(replace(mrz, 2, 2, "O"))
    assert doc.number == "XOY6RK"  # what the MRZ says, not the repair
    repair = next(p for p in doc.problems if p.code == "suggested_repair")
    assert dict(repair.details) == {"line": 2, "column": 2, "found": "O", "suggested": "0"}
    assert "XOY6RK" not in repair.message_en + repair.message_zh


def test_letter_in_a_check_digit_position_gets_a_suggestion() -> None:
    doc = parse(replace(TD3, 2, 20, "Z"))  # birth check '2' read as 'Z'
    repair = next(p for p in doc.problems if p.code == "suggested_repair")
    assert dict(repair.details) == {"line": 2, "column": 20, "found": "Z", "suggested": "2"}


# --- names --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name_field", "surname", "given", "truncated"),
    [
        ("ERIKSSON<<ANNA<MARIA", "ERIKSSON", "ANNA MARIA", False),
        ("VAN<DER<BERG<<JAN<PIETER", "VAN DER BERG", "JAN PIETER", False),
        ("MADONNA", "MADONNA", None, False),
        ("MADONNA<<", "MADONNA", None, False),
        ("O<NEILL<<SEAN", "O NEILL", "SEAN", False),
        ("A" * 39, "A" * 39, None, True),
        # Cut at 39 characters, as ICAO truncates: read as printed, with a warning.
        ("NILAVADHANANANDA<<CHAYAPA<DEJTHAMRONG<KRASU", "NILAVADHANANANDA",
         "CHAYAPA DEJTHAMRONG K", True),
    ],
)  # fmt: skip
def test_names(name_field: str, surname: str, given: str | None, truncated: bool) -> None:
    line1 = ("P<UTO" + name_field + "<" * 39)[:44]
    doc = parse(td3(line1=line1))
    assert (doc.surname, doc.given_names) == (surname, given)
    assert ("name_truncated" in codes(doc)) is truncated
    assert doc.is_valid


def test_name_without_primary_identifier_is_an_error() -> None:
    doc = parse(td3(line1=("P<UTO<<ANNA" + "<" * 39)[:44]))
    assert errors(doc) == [("missing_primary_identifier", "name")]
    assert (doc.surname, doc.given_names) == (None, "ANNA")


def test_digits_in_a_name_are_invalid() -> None:
    doc = parse(td3(line1=("P<UTOERIKSS0N<<ANNA" + "<" * 39)[:44]))
    assert errors(doc) == [("invalid_characters_in_field", "name")]
    assert doc.surname is None


# --- country codes ------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    ["D<<", "UTO", "XXA", "XXB", "XXC", "XXX", "GBN", "UNO", "EUE", "RKS", "XOM", "CHN", "HKG",
     "MAC", "TWN", "DEU"],
)  # fmt: skip
def test_known_country_codes(code: str) -> None:
    doc = parse(td3(line1="P<" + code + TD3[5:44], nationality=code))
    assert "unknown_country_code" not in codes(doc)
    assert doc.issuing_state == doc.nationality == code.rstrip("<")


def test_unknown_country_codes() -> None:
    doc = parse(td3(line1="P<ZZZ" + TD3[5:44], nationality="QQQ"))
    unknown = [p for p in doc.problems if p.code == "unknown_country_code"]
    assert [(p.field, p.details["code"]) for p in unknown] == [
        ("issuing_state", "ZZZ"),
        ("nationality", "QQQ"),
    ]
    assert doc.issuing_state == "ZZZ"


def test_digits_in_a_country_code_are_invalid() -> None:
    doc = parse(td3(nationality="U7O"))
    assert errors(doc) == [("invalid_characters_in_field", "nationality")]
    assert doc.nationality is None


def test_country_table() -> None:
    assert len(ISO_3166_ALPHA3) == 249
    assert not set(ISO_3166_ALPHA3) & set(ICAO_SPECIFIC)
    assert all(len(c) == 3 and c.isalpha() for c in ISO_3166_ALPHA3)
    assert country_name("D<<") == "Germany"
    assert is_known_code("XXA") and is_known_code("UTO") and not is_known_code("ZZZ")


# --- sex ----------------------------------------------------------------------------


@pytest.mark.parametrize(("char", "sex"), [("M", "M"), ("F", "F"), ("X", "X"), ("<", None)])
def test_sex_values(char: str, sex: str | None) -> None:
    doc = parse(td3(sex=char))
    assert doc.is_valid
    assert doc.sex == sex


@pytest.mark.parametrize("char", ["Q", "1", "W"])
def test_invalid_sex(char: str) -> None:
    doc = parse(td3(sex=char))
    assert errors(doc) == [("invalid_sex", "sex")]
    assert doc.sex is None


# --- dates --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth", "expected"),
    [
        ("740812", dt.date(1974, 8, 12)),
        ("250101", dt.date(2025, 1, 1)),  # not in the future: this century
        ("261126", dt.date(2026, 11, 26)),  # today
        ("261127", dt.date(1926, 11, 27)),  # tomorrow would be the future
        ("301231", dt.date(1930, 12, 31)),
        ("000229", dt.date(2000, 2, 29)),
    ],
)
def test_birth_year_resolution(birth: str, expected: dt.date) -> None:
    doc = parse(td3(birth=birth, expiry="300101"))
    assert doc.birth_date == expected
    assert doc.is_valid


@pytest.mark.parametrize(
    ("expiry", "expected"),
    [
        ("120415", dt.date(2012, 4, 15)),
        ("361231", dt.date(2036, 12, 31)),
        ("751231", dt.date(2075, 12, 31)),  # within 50 years ahead
        ("770101", dt.date(1977, 1, 1)),  # 2077 is 50 years ahead: read as the past
    ],
)
def test_expiry_year_resolution(expiry: str, expected: dt.date) -> None:
    doc = parse(td3(birth="700101", expiry=expiry))
    assert doc.expiry_date == expected


def test_year_resolution_depends_on_today() -> None:
    assert parse(td3(birth="301231"), today=dt.date(2031, 1, 1)).birth_date == dt.date(2030, 12, 31)


@pytest.mark.parametrize("birth", ["740230", "741301", "740000", "990229"])
def test_impossible_birth_dates(birth: str) -> None:
    doc = parse(td3(birth=birth))
    assert errors(doc) == [("invalid_birth_date", "birth_date")]
    assert doc.birth_date is None


def test_impossible_expiry_date() -> None:
    doc = parse(td3(expiry="301532"))
    assert errors(doc) == [("invalid_expiry_date", "expiry_date")]


@pytest.mark.parametrize("birth", ["<<<<<<", "74<<<<", "7408<<"])
def test_unknown_birth_date_parts(birth: str) -> None:
    doc = parse(td3(birth=birth))
    assert doc.is_valid, doc.problems
    assert doc.birth_date is None
    assert "birth_date_unknown" in codes(doc)


def test_stray_filler_in_a_date_is_invalid() -> None:
    doc = parse(td3(birth="74<812"))
    assert errors(doc) == [("invalid_characters_in_field", "birth_date")]


def test_expiry_before_birth() -> None:
    doc = parse(td3(birth="900101", expiry="850101"))
    assert ("expiry_before_birth", "expiry_date") in errors(doc)


# --- shapes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mrz", "lines", "lengths"),
    [
        (TD3[:-1], 2, [44, 43]),
        (TD3 + "<", 2, [44, 45]),
        (TD3 + "\n" + "<" * 44, 3, [44, 44, 44]),
        (TD1.replace("\n", "<\n") + "<", 3, [31, 31, 31]),
        ("P<UTOERIKSSON", 1, [13]),
    ],
)
def test_malformed_shapes(mrz: str, lines: int, lengths: list[int]) -> None:
    with pytest.raises(MalformedMRZError) as info:
        parse(mrz)
    assert info.value.code == "malformed_mrz"
    assert info.value.details == {
        "lines": lines,
        "lengths": lengths,
        "expected": [[2, 44], [2, 36], [3, 30]],
    }
    assert "ERIKSSON" not in str(info.value)


def test_characters_outside_the_mrz_alphabet() -> None:
    with pytest.raises(MalformedMRZError):
        parse(TD3.lower())


def test_one_line_paste_is_cut_into_lines() -> None:
    for mrz in (TD3, TD2, TD1):
        doc = parse(mrz.replace("\n", ""))
        assert doc.is_valid
        assert doc.raw == mrz
        assert "mrz_lines_split" in codes(doc)


def test_layout_of() -> None:
    assert layout_of(TD3.split("\n")) == "TD3"
    assert layout_of(MRVA.split("\n")) == "MRV-A"
    assert layout_of(TD2.split("\n")) == "TD2"
    assert layout_of(MRVB.split("\n")) == "MRV-B"
    assert layout_of(TD1.split("\n")) == "TD1"
    assert layout_of(TD1.split("\n")[:2]) is None


def test_unexpected_document_code_is_an_error() -> None:
    # ICAO 9303 part 4: a TD3 document code starts with P. An 'I' there is a
    # misread or a damaged line, not a document of another kind.
    doc = parse("I" + TD3[1:])
    assert doc.kind == "travel_id"
    assert not doc.is_valid
    assert ("unexpected_document_code", "document_code") in errors(doc)
    doc = parse("1" + TD3[1:])
    assert ("invalid_characters_in_field", "document_code") in errors(doc)


# --- plugin hooks -------------------------------------------------------------------


def test_document_types_registered(pm: pluggy.PluginManager) -> None:
    types = document_types(pm)
    assert (types["passport"].name_zh, types["passport"].name_en) == ("护照", "Passport")
    assert types["travel_id"].name_zh == "旅行身份证件"
    assert types["visa"].name_zh == "签证"
    assert types["passport"].inputs == frozenset({"number", "mrz", "image"})
    for kind in ("passport", "travel_id", "visa"):
        example = types[kind].example
        assert example is not None
        assert parse(example).kind == kind


@pytest.mark.parametrize(("mrz", "kind"), [(TD3, "passport"), (TD1, "travel_id"), (MRVB, "visa")])
def test_check_document_detects_the_kind(pm: pluggy.PluginManager, mrz: str, kind: str) -> None:
    sub, warnings = make_submission(mrz=mrz)
    result = check_document(sub, today=TODAY, warnings=warnings, pm=pm)
    assert result.document.kind == kind
    # The specimens expired long ago: reported, yet still well-formed.
    assert "document_expired" in {p.code for p in result.problems}
    assert result.is_valid
    assert result.masked is not None
    assert result.masked.masked_name == "ERIKSSON"


def test_check_document_masks(pm: pluggy.PluginManager) -> None:
    sub, warnings = make_submission(mrz=TD3.lower(), kind="passport")
    result = check_document(sub, today=dt.date(2010, 1, 1), warnings=warnings, pm=pm)
    assert result.masked is not None
    assert (result.masked.masked_name, result.masked.masked_number) == ("ERIKSSON", "L8*****C3")
    assert {p.code for p in result.problems} == {"mrz_lowercase", "specimen_document"}


def test_claimed_kind_that_differs_is_a_warning() -> None:
    doc = passport.healthcode_parse_document(DocumentSubmission(kind="visa", mrz=TD3))
    assert doc is not None
    assert doc.kind == "passport"
    problem = next(p for p in doc.problems if p.code == "document_kind_mismatch")
    assert problem.details == {"claimed": "visa", "read": "passport"}


def test_chinese_permit_codes_are_left_to_hkmo_permit() -> None:
    for code in ("CR", "CT", "CS", "CD"):
        mrz = code + TD1[2:]
        assert not looks_like_icao_mrz(mrz)
        assert passport.healthcode_parse_document(DocumentSubmission(mrz=mrz)) is None
    # Named as ours, they are read (and judged) as ICAO cards.
    doc = passport.healthcode_parse_document(
        DocumentSubmission(kind="travel_id", mrz="CR" + TD1[2:])
    )
    assert doc is not None and doc.extra["layout"] == "TD1"


def test_other_kinds_and_shapes_are_not_ours() -> None:
    hook = passport.healthcode_parse_document
    assert hook(DocumentSubmission(kind="cn_resident_id", mrz=TD3)) is None
    assert hook(DocumentSubmission(mrz="X" + TD3[1:])) is None
    assert hook(DocumentSubmission(mrz="P<UTO")) is None
    assert hook(DocumentSubmission(number="E12345678")) is None  # too ambiguous without a kind
    assert hook(DocumentSubmission(kind="visa", number="E12345678")) is None
    # Looks like ours but broken: an error that says why, not "unknown document".
    with pytest.raises(MalformedMRZError):
        hook(DocumentSubmission(mrz=TD3[:-1]))
    with pytest.raises(MalformedMRZError):
        hook(DocumentSubmission(kind="passport", mrz="X<<"))


def test_unknown_mrz_reaches_core_as_unknown(pm: pluggy.PluginManager) -> None:
    sub, _ = make_submission(mrz="X" + TD3[1:])
    with pytest.raises(UnknownDocumentKindError):
        check_document(sub, today=TODAY, pm=pm)


# --- typed passport numbers ---------------------------------------------------------


def test_typed_passport_number(pm: pluggy.PluginManager) -> None:
    sub, warnings = make_submission(kind="passport", number="e 1234 5678", issuing_state="chn")
    result = check_document(sub, today=TODAY, warnings=warnings, pm=pm)
    doc = result.document
    assert (doc.kind, doc.number, doc.issuing_state, doc.source) == (
        "passport",
        "E12345678",
        "CHN",
        "number",
    )
    assert result.is_valid
    assert [(p.code, p.severity) for p in result.problems] == [("not_check_verified", "warning")]
    assert result.masked is not None and result.masked.masked_number == "E1*****78"


def test_typed_passport_number_states() -> None:
    assert parse_passport_number("C01X00T47", "D").issuing_state == "D"
    assert parse_passport_number("C01X00T47").issuing_state is None
    doc = parse_passport_number("C01X00T47", "ZZZ")
    assert errors(doc) == [("unknown_country_code", "issuing_state")]


@pytest.mark.parametrize("number", ["E123456789", "ABCDEFG", "X" * 20])
def test_typed_passport_number_malformed(number: str) -> None:
    with pytest.raises(MalformedNumberError) as info:
        parse_passport_number(number)
    assert info.value.details["length"] == len(number)
    assert number not in str(info.value)


# --- validation for the day -----------------------------------------------------------


def test_validate_expired_and_future_birth() -> None:
    doc = parse(TD3)
    problems = passport.healthcode_validate_document(doc, TODAY)
    assert [(p.code, p.severity) for p in problems] == [("document_expired", "error")]
    assert passport.healthcode_validate_document(doc, dt.date(2012, 4, 15)) == []
    future = Document(kind="passport", number="E1", birth_date=dt.date(2030, 1, 1))
    assert [p.code for p in passport.healthcode_validate_document(future, TODAY)] == [
        "birth_date_in_future"
    ]
    other = Document(kind="cn_resident_id", number="1", expiry_date=dt.date(2000, 1, 1))
    assert passport.healthcode_validate_document(other, TODAY) == []


def test_mask_only_our_kinds() -> None:
    doc = parse(td3(line1=("P<UTOVAN<DER<BERG<<JAN" + "<" * 39)[:44]))
    masked = passport.healthcode_mask_document(doc)
    assert masked is not None
    assert (masked.kind, masked.masked_name, masked.masked_number) == (
        "passport",
        "VAN DER BERG",
        "L8*****C3",
    )
    assert passport.healthcode_mask_document(Document(kind="cn_resident_id", number="1")) is None


# --- privacy ------------------------------------------------------------------------


def test_no_personal_data_in_repr_messages_or_details() -> None:
    broken = replace(replace(replace(TD3, 2, 10, "7"), 2, 16, "O"), 1, 3, "Z")
    doc = parse(broken)
    assert len(doc.problems) >= 4
    text = repr(doc) + "".join(
        p.message_en + p.message_zh + repr(dict(p.details)) for p in doc.problems
    )
    for secret in ("L898902C3", "ERIKSSON", "ANNA", "ZE184226B", "7408"):
        assert secret not in text
    assert "optional_data" in doc.extra["personal_data"]


@pytest.mark.parametrize(
    "name_field",
    [
        "SMITH<<<JOHN",  # three fillers between identifiers
        "SMITH<<JOHN<<<<<<<<K",  # a letter after the padding: damage or an OCR 'K' for '<'
        "SMITH<<JOHN<<PAUL",  # a third '<<' group
        "<SMITH<<JOHN",  # leading filler
    ],
)
def test_damaged_name_fields_are_errors(name_field: str) -> None:
    line1 = ("P<UTO" + name_field + "<" * 39)[:44]
    doc = parse(td3(line1=line1))
    assert "invalid_name_field" in codes(doc)
    assert not doc.is_valid
