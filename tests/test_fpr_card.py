"""The Foreign Permanent Resident ID Card (外国人永久居留身份证) plugin.

Vectors are derived from the National Immigration Administration's rules
(see ``healthcode/plugins/fpr_card/README.md``): the two numbers published
with them (``932682198501010017``, 2023 version; ``KAZ110090123105``, 2017
version), numbers built field by field from the rules with the check
character computed here from the GB 11643 formula (independently of the code
under test), and each rule broken once.
"""

from __future__ import annotations

import datetime as dt
import json

import pluggy
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from healthcode.cli.main import app
from healthcode.core.documents import check_document, make_submission, parse_document
from healthcode.core.enrollment.document import read_document
from healthcode.core.enrollment.errors import DocumentNotAcceptedError
from healthcode.core.errors import MalformedNumberError, UnknownDocumentKindError
from healthcode.core.models import DocumentSubmission
from healthcode.core.plugins import new_plugin_manager
from healthcode.core.privacy import document_key, generate_secrets
from healthcode.core.status.rows import InvalidRow, KeyedRow, RawRow, RowKeyer
from healthcode.plugins import fpr_card
from healthcode.plugins.fpr_card.numbers import PROVINCE_CODES, countries

KIND = "cn_foreign_permanent_resident_id"
PUBLISHED_2023 = "932682198501010017"
PUBLISHED_2017 = "KAZ110090123105"
runner = CliRunner()


def check_char(body: str) -> str:
    """ISO 7064 MOD 11-2 as GB 11643 writes it: weights 2^(i-1) mod 11, right to left."""
    total = sum(int(d) * pow(2, 17 - i, 11) for i, d in enumerate(body))
    return "10X98765432"[total % 11]


def number_2023(
    province: str = "11", nationality: str = "840", birth: str = "19900101", seq: str = "123"
) -> str:
    body = f"9{province}{nationality}{birth}{seq}"
    return body + check_char(body)


def codes(number: str, pm: pluggy.PluginManager, kind: str | None = None) -> set[str]:
    submission, _ = make_submission(kind=kind, number=number)
    result = check_document(submission, pm=pm)
    return {p.code for p in result.problems if p.severity == "error"}


# --- the published numbers ----------------------------------------------------------


def test_independent_check_character_agrees_with_the_published_specimen() -> None:
    assert check_char(PUBLISHED_2023[:17]) == PUBLISHED_2023[17]
    assert check_char("11010519491231002") == "X"  # GB 11643's own example


@pytest.mark.parametrize("kind", [None, KIND])
def test_published_2023_number(pm: pluggy.PluginManager, kind: str | None) -> None:
    submission, _ = make_submission(kind=kind, number=PUBLISHED_2023)
    result = check_document(submission, pm=pm)
    document = result.document
    assert result.is_valid and not result.problems
    assert document.kind == KIND
    assert document.nationality == "SAU"  # 682, ISO 3166-1 numeric
    assert document.birth_date == dt.date(1985, 1, 1)
    assert document.issuing_state == "CHN"
    assert document.extra == {"card_version": "2023", "province_code": "32"}
    assert result.masked is not None
    assert result.masked.masked_number == "93**************17"


@pytest.mark.parametrize("kind", [None, KIND])
def test_published_2017_number(pm: pluggy.PluginManager, kind: str | None) -> None:
    result = check_document(make_submission(kind=kind, number=PUBLISHED_2017)[0], pm=pm)
    assert result.is_valid and not result.problems
    assert result.document.kind == KIND
    assert result.document.nationality == "KAZ"
    assert result.document.birth_date == dt.date(1990, 12, 31)
    assert result.document.extra == {"card_version": "2017", "province_code": "11"}
    assert result.masked is not None and result.masked.masked_number == "KA***********05"


def test_lower_case_and_spaced_input_is_normalised(pm: pluggy.PluginManager) -> None:
    spaced = "kaz 1100 901231 05"
    assert parse_document(make_submission(number=spaced)[0], pm).number == PUBLISHED_2017
    x_number = next(n for seq in range(1000) if (n := number_2023(seq=f"{seq:03d}")).endswith("X"))
    lower = parse_document(make_submission(number=x_number.lower())[0], pm)
    assert lower.number == x_number and lower.is_valid


# --- each rule broken once -------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (number_2023(province="99"), "unknown_province_code"),
        (number_2023(province="71"), "unknown_province_code"),  # Taiwan: not issued there
        (number_2023(nationality="000"), "unknown_nationality_code"),
        (number_2023(birth="19850230"), "invalid_birth_date"),
        (number_2023(birth="20270101"), "birth_date_in_future"),
        (number_2023()[:17] + ("0" if number_2023()[17] != "0" else "1"), "check_digit_mismatch"),
        ("ZZZ110090123105", "unknown_nationality_code"),
        ("KAZ990090123105", "unknown_province_code"),
        ("KAZ110090023105", "invalid_birth_date"),
    ],
)
def test_each_rule_broken_once(pm: pluggy.PluginManager, number: str, expected: str) -> None:
    assert codes(number, pm) == {expected}
    assert codes(number, pm, KIND) == {expected}


@pytest.mark.parametrize(
    "number",
    [
        "93268219850101001",  # 17 digits
        "9326821985010100171",  # 19 digits
        "932682198501010",  # 15 digits, as long as a 2017 number
        "932682198501010X17",  # X not at the end
    ],
)
def test_digit_strings_beginning_with_9_of_a_wrong_length_name_this_card(
    pm: pluggy.PluginManager, number: str
) -> None:
    for kind in (None, KIND):
        with pytest.raises(MalformedNumberError) as caught:
            parse_document(make_submission(kind=kind, number=number)[0], pm)
        assert "Foreign Permanent Resident ID Card" in caught.value.message_en
        assert "外国人永久居留身份证" in caught.value.message_zh
        assert number not in str(caught.value) and "resident ID number" not in str(caught.value)


@pytest.mark.parametrize("number", ["KA1110090123105", "KAZ11009012310", "KAZ1100901231055"])
def test_2017_shape_broken(pm: pluggy.PluginManager, number: str) -> None:
    with pytest.raises(MalformedNumberError) as caught:
        parse_document(make_submission(kind=KIND, number=number)[0], pm)
    assert caught.value.details["length"] == len(number)
    with pytest.raises(UnknownDocumentKindError):
        parse_document(make_submission(number=number)[0], pm)


def test_2017_two_digit_years_are_never_in_the_future(pm: pluggy.PluginManager) -> None:
    # The clock stands at 2026-11-26.
    assert parse_document(make_submission(number="KAZ110020010105")[0], pm).birth_date == (
        dt.date(2020, 1, 1)
    )
    assert parse_document(make_submission(number="KAZ110030010105")[0], pm).birth_date == (
        dt.date(1930, 1, 1)
    )


# --- never a malformed resident ID -------------------------------------------------------


def test_a_number_beginning_with_9_named_a_resident_id_names_this_card(
    pm: pluggy.PluginManager,
) -> None:
    assert codes(PUBLISHED_2023, pm, "cn_resident_id") == {"foreign_permanent_resident_number"}
    result = check_document(make_submission(kind="cn_resident_id", number=PUBLISHED_2023)[0], pm=pm)
    (problem,) = result.problems
    assert "Foreign Permanent Resident ID Card" in problem.message_en
    assert "外国人永久居留身份证" in problem.message_zh
    with pytest.raises(MalformedNumberError) as caught:
        parse_document(make_submission(kind="cn_resident_id", number="93268219850101001")[0], pm)
    assert "Foreign Permanent Resident ID Card" in caught.value.message_en


@pytest.fixture(scope="module")
def module_pm() -> pluggy.PluginManager:
    return new_plugin_manager(autoload=False)


@given(digits=st.text(alphabet="0123456789", min_size=16, max_size=16))
def test_any_18_digits_beginning_with_9_are_this_card(
    module_pm: pluggy.PluginManager, digits: str
) -> None:
    for number in ("9" + digits + check_char("9" + digits), "9" + digits + "0"):
        document = parse_document(make_submission(number=number)[0], module_pm)
        assert document.kind == KIND
        assert not any(p.code == "unknown_division_code" for p in document.problems)


# --- properties ------------------------------------------------------------------------

_VALID_PARTS = st.tuples(
    st.sampled_from(sorted(PROVINCE_CODES)),
    st.sampled_from(sorted(code for code in countries() if code.isdigit())),
    st.dates(dt.date(1900, 1, 1), dt.date(2026, 11, 26)),
    st.integers(0, 999),
)


@given(parts=_VALID_PARTS)
def test_numbers_built_by_the_rules_are_valid(parts: tuple[str, str, dt.date, int]) -> None:
    province, nationality, birth, seq = parts
    number = number_2023(province, nationality, f"{birth:%Y%m%d}", f"{seq:03d}")
    document = fpr_card.parse_permanent_resident_id(number)
    assert document is not None and document.is_valid
    assert document.birth_date == birth
    assert document.nationality == countries()[nationality]
    masked = fpr_card.numbers.mask_permanent_resident_id(document)
    assert masked is not None and masked.masked_number == number[:2] + "*" * 14 + number[-2:]


@given(parts=_VALID_PARTS, position=st.integers(1, 16), shift=st.integers(1, 9))
def test_any_one_digit_mistyped_is_caught(
    parts: tuple[str, str, dt.date, int], position: int, shift: int
) -> None:
    province, nationality, birth, seq = parts
    number = number_2023(province, nationality, f"{birth:%Y%m%d}", f"{seq:03d}")
    digit = str((int(number[position]) + shift) % 10)
    typo = number[:position] + digit + number[position + 1 :]
    document = fpr_card.parse_permanent_resident_id(typo)
    assert document is not None
    assert "check_digit_mismatch" in {p.code for p in document.problems}


@given(parts=_VALID_PARTS, position=st.integers(1, 15))
def test_any_two_neighbours_swapped_are_caught(
    parts: tuple[str, str, dt.date, int], position: int
) -> None:
    province, nationality, birth, seq = parts
    number = number_2023(province, nationality, f"{birth:%Y%m%d}", f"{seq:03d}")
    if number[position] == number[position + 1]:
        return
    swapped = number[:position] + number[position + 1] + number[position] + number[position + 2 :]
    document = fpr_card.parse_permanent_resident_id(swapped)
    assert document is not None and not document.is_valid


# --- the rest of the service -----------------------------------------------------------


def test_documents_check_in_the_cli_masks_the_number() -> None:
    result = runner.invoke(
        app, ["documents", "check", "--number", PUBLISHED_2023, "--today", "2026-11-26", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["kind"] == KIND and out["valid"] is True
    assert out["masked_number"] == "93**************17"
    assert PUBLISHED_2023 not in result.output


def test_documents_kinds_lists_the_card() -> None:
    result = runner.invoke(app, ["documents", "kinds", "--json"])
    assert result.exit_code == 0, result.output
    assert KIND in result.stdout and "外国人永久居留身份证" in result.stdout


@pytest.mark.parametrize("number", [PUBLISHED_2023, PUBLISHED_2017])
def test_status_import_rows_key_like_enrollment(pm: pluggy.PluginManager, number: str) -> None:
    secrets = generate_secrets()
    keyer = RowKeyer(secrets, pm)
    row = keyer(RawRow(1, {"kind": KIND, "number": number.lower(), "status": "red"}))
    assert isinstance(row, KeyedRow)
    document = parse_document(DocumentSubmission(kind=KIND, number=number), pm)
    assert row.key == document_key(secrets, KIND, document.issuing_state, document.number)
    bad_number = number_2023(province="99")
    broken = keyer(RawRow(2, {"kind": KIND, "number": bad_number, "status": "red"}))
    assert isinstance(broken, InvalidRow) and broken.code == "unknown_province_code"
    assert bad_number not in repr(broken) + broken.message_en + broken.message_zh


@pytest.mark.parametrize("number", [PUBLISHED_2023, PUBLISHED_2017])
def test_enrollment_reads_and_masks_the_card(
    pm: pluggy.PluginManager, today: dt.date, number: str
) -> None:
    submission, warnings = make_submission(kind=KIND, number=number)
    document, masked, kept = read_document(pm, submission, "ABERNATHY, JOHN", today, warnings)
    assert document.kind == KIND
    assert masked.masked_name == "ABERNATHY"
    assert masked.masked_number == number[:2] + "*" * (len(number) - 4) + number[-2:]
    assert [p.code for p in kept] == ["name_not_verified"]
    broken = number_2023()[:17] + ("0" if number_2023()[17] != "0" else "1")
    with pytest.raises(DocumentNotAcceptedError) as refused:
        read_document(pm, make_submission(kind=KIND, number=broken)[0], "ABERNATHY", today)
    assert refused.value.details["problems"] == ["check_digit_mismatch"]
    assert broken not in str(refused.value)
