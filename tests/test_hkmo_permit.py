"""The hkmo_permit plugin: permits of HK, Macao and Taiwan residents and of
mainland residents travelling there (issue 2, items 5, 6 and 10)."""

from __future__ import annotations

import datetime as dt
import random

import pluggy
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from support.data import TODAY

from healthcode.core.checkdigits import gb11643_check_char, icao_check_digit
from healthcode.core.documents import check_document, document_types, make_submission
from healthcode.core.errors import MalformedMRZError, MalformedNumberError
from healthcode.core.models import Document, DocumentSubmission
from healthcode.plugins import hkmo_permit
from healthcode.plugins.hkmo_permit import (
    HK_MO_EXIT_ENTRY_PERMIT,
    HOME_RETURN_PERMIT,
    KINDS,
    RESIDENCE_PERMIT,
    TW_COMPATRIOT_PERMIT,
    TW_EXIT_ENTRY_PERMIT,
    mask_permit,
    parse_permit,
    parse_permit_mrz,
    parse_permit_number,
    validate_permit,
)
from healthcode.testing import permits

MRZ_KINDS = (
    HOME_RETURN_PERMIT,
    TW_COMPATRIOT_PERMIT,
    HK_MO_EXIT_ENTRY_PERMIT,
    TW_EXIT_ENTRY_PERMIT,
)
ICAO_VALUE = {c: i for i, c in enumerate("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")} | {"<": 0}
ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# A CS card line checked by hand against the confirmed layout: C12345678
# (7-3-1 sum 198 -> 8), expiry 300101 (29 -> 9), birth 900517 (108 -> 8).
CS_LINE = "CSC123456788<3001019<9005178<0"
CR_MRZ = permits.td1_permit_mrz(
    "CR", "H12345678", dt.date(1985, 3, 9), "F", dt.date(2031, 6, 30), "OUYANG", "MEI LING"
)


def codes(document: Document) -> list[str]:
    return [p.code for p in document.problems]


def mrz(text: str) -> Document:
    document = parse_permit_mrz(text, today=TODAY)
    assert document is not None
    return document


def number(text: str, kind: str | None = None) -> Document:
    document = parse_permit_number(text, kind)
    assert document is not None
    return document


# --- registration ----------------------------------------------------------------


def test_registers_five_kinds(pm: pluggy.PluginManager) -> None:
    types = document_types(pm)
    assert set(types) >= KINDS
    assert types[RESIDENCE_PERMIT].inputs == frozenset({"number"})
    for kind in MRZ_KINDS:
        assert types[kind].inputs == frozenset({"number", "mrz", "image"})
        assert types[kind].name_zh and types[kind].name_en


def test_parse_hook_is_tryfirst(pm: pluggy.PluginManager) -> None:
    impls = pm.hook.healthcode_parse_document.get_hookimpls()
    ours = [impl for impl in impls if impl.plugin is hkmo_permit]
    assert len(ours) == 1 and ours[0].tryfirst


# --- typed numbers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "birth", "region"),
    [
        ("810000199408230021", dt.date(1994, 8, 23), "HK"),
        ("830000199201300022", dt.date(1992, 1, 30), "TW"),
    ],
)
def test_published_residence_permit_samples(text: str, birth: dt.date, region: str) -> None:
    document = number(text)
    assert document.kind == RESIDENCE_PERMIT
    assert document.problems == ()
    assert document.birth_date == birth
    assert document.sex == "F"  # sequence 002: even
    assert document.extra["region"] == region


@pytest.mark.parametrize(
    ("text", "kind", "extra"),
    [
        ("H12345678", HOME_RETURN_PERMIT, {"region": "HK", "non_chinese_national": False}),
        ("M1234567803", HOME_RETURN_PERMIT, {"region": "MO", "renewal_count": 3}),
        ("HA1234567", HOME_RETURN_PERMIT, {"region": "HK", "non_chinese_national": True}),
        ("MA7654321", HOME_RETURN_PERMIT, {"region": "MO", "non_chinese_national": True}),
        ("12345678", TW_COMPATRIOT_PERMIT, {}),
        ("0561682001", TW_COMPATRIOT_PERMIT, {"issue_count": 1}),
        ("0561682001D", TW_COMPATRIOT_PERMIT, {"issue_count": 1, "issuing_office_code": "D"}),
        ("C12345678", HK_MO_EXIT_ENTRY_PERMIT, {}),
        ("CA0000001", HK_MO_EXIT_ENTRY_PERMIT, {}),
        ("L12345678", TW_EXIT_ENTRY_PERMIT, {}),
    ],
)
def test_valid_numbers_are_detected(text: str, kind: str, extra: dict[str, object]) -> None:
    for named in (None, kind):
        document = number(text, named)
        assert document.kind == kind
        assert document.number == text
        assert document.problems == ()
        assert document.issuing_state == "CHN"
        assert extra.items() <= document.extra.items()


def test_taiwan_digit_office_code_only_with_kind() -> None:
    assert parse_permit_number("05616820011") is None
    assert number("05616820011", TW_COMPATRIOT_PERMIT).extra["issuing_office_code"] == "1"


def test_c_series_never_uses_i_or_o() -> None:
    for text in ("CI1234567", "CO1234567"):
        document = number(text)
        assert codes(document) == ["invalid_number_series"]
        assert document.problems[0].details == {"position": 1}


def test_residence_permit_each_wrong_check_char() -> None:
    body = "81000019940823002"
    right = gb11643_check_char(body)
    for wrong in sorted(set("0123456789X") - {right}):
        document = number(body + wrong)
        assert codes(document) == ["check_digit_mismatch"]
        assert document.problems[0].details == {"expected": right, "found": wrong, "position": 17}


def test_residence_permit_lower_case_x_via_core() -> None:
    body = next(
        f"8200001990010100{i}"
        for i in range(10)
        if gb11643_check_char(f"8200001990010100{i}") == "X"
    )
    sub, _ = make_submission(number=body + "x")
    document = parse_permit(sub)
    assert document is not None and document.problems == () and document.number.endswith("X")


def test_residence_permit_unknown_region_code() -> None:
    body = "81010019940823002"
    text = body + gb11643_check_char(body)
    assert codes(number(text)) == ["unknown_region_code"]  # 81.. is claimed without a kind
    mainland = "11010519491231002X"  # a mainland resident ID named as a residence permit
    assert parse_permit_number(mainland) is None
    assert codes(number(mainland, RESIDENCE_PERMIT)) == ["unknown_region_code"]


def test_residence_permit_impossible_birth_date() -> None:
    body = "81000019940230002"
    document = number(body + gb11643_check_char(body))
    assert codes(document) == ["invalid_birth_date"]
    assert document.birth_date is None


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("H1234567", HOME_RETURN_PERMIT),
        ("H123456789", HOME_RETURN_PERMIT),
        ("HA12345678", HOME_RETURN_PERMIT),
        ("M123456789012", HOME_RETURN_PERMIT),
        ("H1234567X", HOME_RETURN_PERMIT),
        ("1234567", TW_COMPATRIOT_PERMIT),
        ("123456789", TW_COMPATRIOT_PERMIT),
        ("A12345678", TW_COMPATRIOT_PERMIT),
        ("81000019940823002", RESIDENCE_PERMIT),
        ("8100001994082300211", RESIDENCE_PERMIT),
        ("81000019940823002Y", RESIDENCE_PERMIT),
        ("C1234567", HK_MO_EXIT_ENTRY_PERMIT),
        ("C123456789", HK_MO_EXIT_ENTRY_PERMIT),
        ("CAB123456", HK_MO_EXIT_ENTRY_PERMIT),
        ("L12345678", HK_MO_EXIT_ENTRY_PERMIT),
        ("C12345678", TW_EXIT_ENTRY_PERMIT),
        ("L1234567", TW_EXIT_ENTRY_PERMIT),
    ],
)
def test_malformed_with_kind(text: str, kind: str) -> None:
    with pytest.raises(MalformedNumberError) as info:
        parse_permit_number(text, kind)
    error = info.value
    assert error.code == "malformed_number"
    assert error.details["kind"] == kind
    assert text not in error.message_en and text not in error.message_zh


@pytest.mark.parametrize(
    "text",
    ["H1234567", "H123456789", "HA12345678", "81000019940823002Y", "C1234567", "L123456789"],
)
def test_malformed_but_claimed_without_kind(text: str) -> None:
    with pytest.raises(MalformedNumberError):
        parse_permit_number(text)


@pytest.mark.parametrize(
    "text",
    [
        "11010519491231002X",  # mainland resident ID: id_card's
        "610104620927690",  # 15-digit legacy resident ID
        "E12345678",  # Chinese passport number
        "G12345678",
        "1234567",
        "123456789",
        "05616820011",
        "X12345678",
        "H12345",
        "C12",
    ],
)
def test_other_shapes_are_not_claimed(text: str) -> None:
    assert parse_permit_number(text) is None


def test_submission_routing() -> None:
    assert parse_permit(DocumentSubmission(kind="cn_resident_id", number="H12345678")) is None
    # A number with an issuing state is a passport number.
    assert parse_permit(DocumentSubmission(number="M12345678", issuing_state="KOR")) is None
    named = parse_permit(
        DocumentSubmission(kind=HOME_RETURN_PERMIT, number="M12345678", issuing_state="CHN")
    )
    assert named is not None and named.kind == HOME_RETURN_PERMIT
    assert parse_permit(DocumentSubmission()) is None


# --- CS / CD card line ---------------------------------------------------------------


def test_cs_card_line() -> None:
    document = mrz(CS_LINE)
    assert document.kind == HK_MO_EXIT_ENTRY_PERMIT
    assert document.problems == ()
    assert document.number == "C12345678"
    assert document.document_code == "CS"
    assert document.source == "mrz"
    assert document.expiry_date == dt.date(2030, 1, 1)
    assert document.birth_date == dt.date(1990, 5, 17)
    assert document.surname is None and document.sex is None
    assert (
        permits.card_line_mrz("CS", "C12345678", dt.date(1990, 5, 17), dt.date(2030, 1, 1))
        == CS_LINE
    )


def test_cd_card_line() -> None:
    line = permits.card_line_mrz("CD", "L12345678", dt.date(1970, 1, 2), dt.date(2029, 2, 3))
    document = mrz(line)
    assert document.kind == TW_EXIT_ENTRY_PERMIT and document.problems == ()


@pytest.mark.parametrize(
    ("position", "field"),
    [(11, "document_number"), (19, "expiry_date"), (27, "birth_date"), (29, "composite")],
)
def test_cs_each_check_digit_broken(position: int, field: str) -> None:
    right = CS_LINE[position]
    for wrong in "0123456789<A":
        if wrong == right:
            continue
        line = CS_LINE[:position] + wrong + CS_LINE[position + 1 :]
        document = mrz(line)
        mismatches = [p for p in document.problems if p.code == "check_digit_mismatch"]
        # The broken digit is reported; a field's check digit is also covered by
        # the composite, which may fail with it.
        assert field in {p.field for p in mismatches}
        assert {p.field for p in mismatches} <= {field, "composite"}
        ours = next(p for p in mismatches if p.field == field)
        assert ours.details["position"] == position and ours.details["found"] == wrong


def test_cs_three_line_chip_form_keeps_lines_2_and_3_opaque() -> None:
    chip = "\n".join((CS_LINE, "ABCDEFGHIJKLZHANG<<SAN<<<<<<<<", "<" * 30))
    document = mrz(chip)
    assert document.problems == () and document.number == "C12345678"
    assert document.surname is None


def test_cs_number_format_problems() -> None:
    bad = permits.card_line_mrz("CS", "D12345678", dt.date(1990, 1, 1), dt.date(2030, 1, 1))
    assert codes(mrz(bad)) == ["invalid_number_format"]
    series = permits.card_line_mrz("CS", "CO1234567", dt.date(1990, 1, 1), dt.date(2030, 1, 1))
    assert codes(mrz(series)) == ["invalid_number_series"]


def test_card_line_dates() -> None:
    line = permits.card_line_mrz("CS", "C12345678", dt.date(1990, 1, 1), dt.date(2030, 1, 1))
    # 2-digit years: a birth year is never in the future, an expiry is read within 50 years.
    assert mrz(line).birth_date == dt.date(1990, 1, 1)
    parts = line[:13] + "301301" + icao_check_digit("301301")
    parts += "<" + line[21:28]
    parts += "<" + icao_check_digit(parts[2:12] + parts[13:20] + parts[21:28])
    assert codes(mrz(parts)) == ["invalid_expiry_date"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (CS_LINE[:-1], "shape"),
        (CS_LINE + "<", "shape"),
        (CS_LINE + "\n" + "<" * 30, "shape"),
        (CS_LINE[:12] + "A" + CS_LINE[13:], "layout"),
        ("CS" + "<" * 9 + CS_LINE[11:], "document_number"),
        ("CSC1<345678" + CS_LINE[11:], "document_number"),
    ],
)
def test_cs_malformed(text: str, reason: str) -> None:
    with pytest.raises(MalformedMRZError) as info:
        parse_permit_mrz(text, today=TODAY)
    assert info.value.details["reason"] == reason
    assert info.value.code == "malformed_mrz"


# --- CR / CT (assumed TD1) -------------------------------------------------------------


def test_cr_td1() -> None:
    document = mrz(CR_MRZ)
    assert document.kind == HOME_RETURN_PERMIT
    assert document.problems == ()
    assert document.number == "H12345678"
    assert document.surname == "OUYANG" and document.given_names == "MEI LING"
    assert document.sex == "F" and document.nationality == "CHN"
    assert document.birth_date == dt.date(1985, 3, 9)
    assert document.expiry_date == dt.date(2031, 6, 30)
    assert document.extra == {"mrz_layout": "td1", "region": "HK"}


def test_ct_long_number_uses_td1_overflow() -> None:
    text = permits.td1_permit_mrz(
        "CT", "0561682001D", dt.date(1960, 2, 29), "M", dt.date(2030, 1, 1), "LIN", "YI"
    )
    assert text.split("\n")[0][14] == "<"
    document = mrz(text)
    assert document.kind == TW_COMPATRIOT_PERMIT
    assert document.number == "0561682001D" and document.problems == ()
    assert document.birth_date == dt.date(1960, 2, 29)


@pytest.mark.parametrize(
    ("code", "wrong", "right"),
    [
        # Digits read as look-alike letters whose check digits still hold: the
        # CT pair sums alike under 7-3-1 (O=24, S=28, B=11 for 0, 5, 8).
        ("CT", "OSB25360", "05825360"),
        ("CR", "MB4BGS7IB", "M84853715"),
        ("CR", "X12345678", "H12345678"),
        ("CR", "H1234567", "H12345678"),
    ],
)
def test_a_permit_number_of_the_wrong_shape_is_refused(code: str, wrong: str, right: str) -> None:
    # Check digits are computed over what was read, so only the shape can tell.
    args = (dt.date(1985, 3, 9), "F", dt.date(2031, 6, 30), "WONG", "KA YAN")
    assert mrz(permits.td1_permit_mrz(code, right, *args)).problems == ()
    document = mrz(permits.td1_permit_mrz(code, wrong, *args))
    assert codes(document) == ["invalid_number_format"]
    problem = document.problems[0]
    assert (problem.field, problem.severity) == ("document_number", "error")
    assert problem.message_en and problem.message_zh


@pytest.mark.parametrize(
    ("line", "position", "field"),
    [
        (0, 14, "document_number"),
        (1, 6, "birth_date"),
        (1, 14, "expiry_date"),
        (1, 29, "composite"),
    ],
)
def test_cr_each_check_digit_broken(line: int, position: int, field: str) -> None:
    lines = CR_MRZ.split("\n")
    right = lines[line][position]
    for wrong in "0123456789A":
        if wrong == right:
            continue
        changed = list(lines)
        changed[line] = lines[line][:position] + wrong + lines[line][position + 1 :]
        document = mrz("\n".join(changed))
        mismatched = {p.field for p in document.problems if p.code == "check_digit_mismatch"}
        assert field in mismatched and mismatched <= {field, "composite"}


def test_cr_composite_covers_line_2_optional_data() -> None:
    text = permits.td1_permit_mrz(
        "CR",
        "H12345678",
        dt.date(1985, 3, 9),
        "M",
        dt.date(2031, 6, 30),
        "CHAN",
        "TAI MAN",
        optional_data="A123456789B",
    )
    assert mrz(text).problems == ()
    lines = text.split("\n")
    lines[1] = lines[1][:28] + "C" + lines[1][29:]  # 'B' (11) -> 'C' (12)
    document = mrz("\n".join(lines))
    assert [(p.code, p.field) for p in document.problems] == [("check_digit_mismatch", "composite")]


def test_cr_gb2261_sex_digits_and_unknown_sex() -> None:
    def with_sex(sex: str) -> Document:
        return mrz(
            permits.td1_permit_mrz(
                "CR", "M12345678", dt.date(1985, 3, 9), sex, dt.date(2031, 6, 30), "HO", "WING"
            )
        )

    assert with_sex("1").sex == "M" and with_sex("2").sex == "F"
    assert with_sex("<").sex is None and with_sex("<").problems == ()


def test_cr_without_chn_falls_back_to_card_line() -> None:
    line = permits.card_line_mrz("CR", "H12345678", dt.date(1990, 5, 17), dt.date(2030, 1, 1))
    document = mrz("\n".join((line, "<" * 30, "CHAN<<TAI<MAN" + "<" * 17)))
    assert document.kind == HOME_RETURN_PERMIT and document.problems == ()
    assert document.extra["mrz_layout"] == "card_line"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("\n".join(CR_MRZ.split("\n")[:2]), "shape"),
        (CR_MRZ + "<", "shape"),
        ("CRXXX" + CR_MRZ[5:], "layout"),
    ],
)
def test_cr_malformed(text: str, reason: str) -> None:
    with pytest.raises(MalformedMRZError) as info:
        parse_permit_mrz(text, today=TODAY)
    assert info.value.details["reason"] == reason


# --- MRZ claims and kinds ---------------------------------------------------------------

TD3_SPECIMEN = (
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10"
)


def test_mrz_of_other_documents_is_not_claimed() -> None:
    assert parse_permit_mrz(TD3_SPECIMEN) is None
    assert parse_permit_mrz("I<UTOD231458907<<<<<<<<<<<<<<<") is None
    assert parse_permit_mrz(CS_LINE, "passport") is None


def test_mrz_with_named_kind() -> None:
    assert mrz(CS_LINE).kind == HK_MO_EXIT_ENTRY_PERMIT
    with pytest.raises(MalformedMRZError) as info:
        parse_permit_mrz(CS_LINE, TW_EXIT_ENTRY_PERMIT, today=TODAY)
    assert info.value.details == {
        "kind": TW_EXIT_ENTRY_PERMIT,
        "reason": "document_code",
        "expected": "CD",
        "found": "CS",
    }
    with pytest.raises(MalformedMRZError):
        parse_permit_mrz(TD3_SPECIMEN, HOME_RETURN_PERMIT, today=TODAY)


# --- day-dependent rules and masking --------------------------------------------------------


def test_validate_expiry_and_future_birth() -> None:
    document = Document(
        kind=HK_MO_EXIT_ENTRY_PERMIT,
        number="C12345678",
        birth_date=dt.date(2027, 1, 1),
        expiry_date=dt.date(2026, 11, 25),
    )
    found = validate_permit(document, TODAY)
    assert [p.code for p in found] == ["birth_date_in_future", "document_expired"]
    assert found[1].details == {"expired_days": 1}
    # The expiry day itself is still valid; the birth day itself is not in the future.
    assert [p.code for p in validate_permit(document, dt.date(2026, 11, 25))] == [
        "birth_date_in_future"
    ]
    assert [p.code for p in validate_permit(document, dt.date(2027, 1, 1))] == ["document_expired"]
    assert validate_permit(Document(kind="passport", number="X", expiry_date=TODAY), TODAY) == []


def test_mask() -> None:
    zh = Document(kind=RESIDENCE_PERMIT, number="810000199408230021", name_zh="欧阳修")
    assert mask_permit(zh) is not None
    masked = mask_permit(zh)
    assert masked is not None
    assert (masked.masked_name, masked.masked_number) == ("欧阳", "81**************21")
    latin = mask_permit(mrz(CR_MRZ))
    assert latin is not None and (latin.masked_name, latin.masked_number) == ("OUYANG", "H1*****78")
    bare = mask_permit(number("12345678"))
    assert bare is not None and (bare.masked_name, bare.masked_number) == ("", "12****78")
    assert mask_permit(Document(kind="cn_resident_id", number="11010519491231002X")) is None


# --- through the plugin manager -------------------------------------------------------------


def test_check_document_residence_permit(pm: pluggy.PluginManager) -> None:
    sub, warnings = make_submission(number=" ８１００００ １９９４０８２３ ００２１ ")
    result = check_document(sub, today=TODAY, warnings=warnings, pm=pm)
    assert result.document.kind == RESIDENCE_PERMIT
    assert result.is_valid and result.problems == ()
    assert result.masked is not None and result.masked.masked_number == "81**************21"


def test_check_document_expired_cs_is_still_well_formed(pm: pluggy.PluginManager) -> None:
    line = permits.card_line_mrz("CS", "CA1234567", dt.date(1990, 5, 17), dt.date(2025, 1, 1))
    sub, warnings = make_submission(mrz=line.lower())
    result = check_document(sub, today=TODAY, warnings=warnings, pm=pm)
    assert result.document.kind == HK_MO_EXIT_ENTRY_PERMIT
    assert [p.code for p in result.problems] == ["mrz_lowercase", "document_expired"]
    assert result.is_valid


def test_check_document_named_kind_and_broken_check(pm: pluggy.PluginManager) -> None:
    sub, _ = make_submission(kind=HOME_RETURN_PERMIT, mrz=CR_MRZ.replace("OUYANG", "OUYANH"))
    assert check_document(sub, today=TODAY, pm=pm).is_valid  # the name is not check-covered
    broken = CR_MRZ[:14] + str((int(CR_MRZ[14]) + 1) % 10) + CR_MRZ[15:]
    sub, _ = make_submission(mrz=broken)
    result = check_document(sub, today=TODAY, pm=pm)
    assert not result.is_valid
    assert "check_digit_mismatch" in [p.code for p in result.problems]


# --- properties -----------------------------------------------------------------------------

seeds = st.integers(min_value=0, max_value=2**32 - 1)


@settings(max_examples=60, deadline=None)
@given(seed=seeds, kind=st.sampled_from(sorted(KINDS)))
def test_generated_numbers_round_trip(seed: int, kind: str) -> None:
    text = permits.random_number(random.Random(seed), kind)
    document = number(text)
    assert (document.kind, document.number, document.problems) == (kind, text, ())
    assert number(text, kind) == document


@settings(max_examples=60, deadline=None)
@given(seed=seeds, kind=st.sampled_from(MRZ_KINDS))
def test_generated_mrzs_round_trip(seed: int, kind: str) -> None:
    sample = permits.random_mrz_sample(random.Random(seed), kind)
    document = mrz(sample.mrz)
    assert document.kind == kind and document.problems == ()
    assert document.number == sample.number
    assert (document.birth_date, document.expiry_date) == (sample.birth_date, sample.expiry_date)
    assert (document.sex, document.surname, document.given_names) == (
        sample.sex,
        sample.surname,
        sample.given_names,
    )


def _covered_positions(kind: str, text: str) -> tuple[list[tuple[int, int]], set[tuple[int, int]]]:
    """(line, column) of every check-covered character, and which are check digits."""
    if kind in (HK_MO_EXIT_ENTRY_PERMIT, TW_EXIT_ENTRY_PERMIT):
        data = [(0, c) for c in (*range(2, 11), *range(13, 19), *range(21, 27))]
        checks = {(0, 11), (0, 19), (0, 27), (0, 29)}
        return data, checks
    line1 = text.split("\n")[0]
    long_number = line1[14] == "<"
    # Line 1 columns 5-29 (number, its check, optional data) feed the composite;
    # with a long number column 14 is the overflow marker, a data character.
    data = [(0, c) for c in range(5, 30)] + [
        (1, c) for c in (*range(0, 6), *range(8, 14), *range(18, 29))
    ]
    checks = {(1, 6), (1, 14), (1, 29)}
    if long_number:
        overflow = line1[15:].split("<", 1)[0]
        checks.add((0, 15 + len(overflow) - 1))
    else:
        checks.add((0, 14))
    return [p for p in data if p not in checks], checks


@settings(max_examples=150, deadline=None)
@given(seed=seeds, kind=st.sampled_from(MRZ_KINDS), data=st.data())
def test_single_change_in_a_covered_field_is_detected(
    seed: int, kind: str, data: st.DataObject
) -> None:
    """What ICAO 7-3-1 guarantees, and no more.

    The weights 7, 3, 1 are coprime with 10, so changing one data character is
    detected exactly when its value changes modulo 10. Blind spots, by design
    of the algorithm: '<' <-> '0' and letters <-> digits of equal value mod 10
    ('A'=10 <-> '0', 'K'=20 <-> '0', 'B'=11 <-> '1', ...). Those changes are
    skipped here (assume), not asserted either way: other rules (dates, number
    format) may still catch some of them. A changed check digit itself is
    always detected: it is compared as a character.
    """
    sample = permits.random_mrz_sample(random.Random(seed), kind)
    lines = sample.mrz.split("\n")
    data_positions, check_positions = _covered_positions(kind, sample.mrz)
    position = data.draw(st.sampled_from(sorted(set(data_positions) | check_positions)))
    row, col = position
    old = lines[row][col]
    if position in check_positions:
        new = data.draw(st.sampled_from(ALNUM + "<").filter(lambda c: c != old))
    else:
        # '<' inside a number or date field is a layout error, tested elsewhere.
        new = data.draw(st.sampled_from(ALNUM).filter(lambda c: c != old))
        assume(ICAO_VALUE[new] % 10 != ICAO_VALUE[old] % 10)
    lines[row] = lines[row][:col] + new + lines[row][col + 1 :]
    try:
        document = mrz("\n".join(lines))
    except MalformedMRZError:
        return  # rejected outright (e.g. a number field that became unreadable)
    assert "check_digit_mismatch" in codes(document)


def test_icao_blind_spots_are_real() -> None:
    # In the birth date 900517 (columns 21-26), '0' at column 22 -> 'A' (10) or
    # '<' (0) keeps every check digit valid; only the date rule catches them.
    assert CS_LINE[22] == "0"
    for blind in ("A", "K", "U", "<"):
        document = mrz(CS_LINE[:22] + blind + CS_LINE[23:])
        assert codes(document) == ["invalid_birth_date"]
    # '0' -> '1' changes the value mod 10: both the field and composite checks fail.
    document = mrz(CS_LINE[:22] + "1" + CS_LINE[23:])
    assert {p.field for p in document.problems if p.code == "check_digit_mismatch"} == {
        "birth_date",
        "composite",
    }


@settings(max_examples=80, deadline=None)
@given(seed=seeds, data=st.data())
def test_residence_permit_single_substitution_always_detected(
    seed: int, data: st.DataObject
) -> None:
    """MOD 11-2: every weight is non-zero mod the prime 11, so any single
    substitution (body digit or check character) changes the check."""
    text = permits.residence_permit_number(random.Random(seed))
    position = data.draw(st.integers(min_value=0, max_value=17))
    alphabet = "0123456789X" if position == 17 else "0123456789"
    new = data.draw(st.sampled_from(alphabet).filter(lambda c: c != text[position]))
    changed = text[:position] + new + text[position + 1 :]
    document = parse_permit_number(changed, RESIDENCE_PERMIT)
    assert document is not None
    assert "check_digit_mismatch" in codes(document)
