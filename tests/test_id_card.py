"""The id_card plugin: mainland resident ID numbers (GB 11643-1999)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import random
import sys
from pathlib import Path
from types import ModuleType

import attrs
import pluggy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.data import ROOT, TODAY

from healthcode.core.checkdigits import gb11643_check_char
from healthcode.core.documents import check_document, make_submission
from healthcode.core.errors import MalformedNumberError, UnknownDocumentKindError
from healthcode.core.models import Document, DocumentSubmission
from healthcode.core.plugins import new_plugin_manager
from healthcode.plugins import id_card
from healthcode.plugins.id_card import (
    KIND,
    convert_legacy_number,
    divisions,
    is_valid_resident_id,
    mask_resident_id,
    parse_resident_id,
    validate_resident_id,
)
from healthcode.testing.resident_id import (
    random_legacy_resident_id,
    random_resident_id,
    random_resident_ids,
)


def codes(document: Document) -> list[str]:
    return [p.code for p in document.problems]


def parse(number: str, *, explicit: bool = True) -> Document:
    document = parse_resident_id(number, explicit=explicit)
    assert document is not None
    return document


def with_check(body: str) -> str:
    return body + gb11643_check_char(body)


@pytest.fixture(scope="module")
def pm() -> pluggy.PluginManager:
    return new_plugin_manager(autoload=False)


# --- the standard's examples and the basic rules ---------------------------------


@pytest.mark.parametrize(
    ("number", "birth", "sex", "division"),
    [
        ("11010519491231002X", dt.date(1949, 12, 31), "F", "朝阳区"),
        ("440524188001010014", dt.date(1880, 1, 1), "M", "潮阳县"),
    ],
)
def test_standard_examples(number: str, birth: dt.date, sex: str, division: str) -> None:
    document = parse(number)
    assert document.problems == ()
    assert document.is_valid
    assert document.kind == KIND
    assert document.number == number
    assert document.raw == number
    assert document.birth_date == birth
    assert document.sex == sex
    assert document.issuing_state == document.nationality == "CHN"
    assert document.extra["division_code"] == number[:6]
    assert document.extra["division_name"] == division
    assert is_valid_resident_id(number, TODAY)


def test_lower_case_x_is_accepted() -> None:
    document = parse("11010519491231002x")
    assert document.number == "11010519491231002X"
    assert document.problems == ()
    assert is_valid_resident_id("11010519491231002x", TODAY)


def test_sex_follows_sequence_parity() -> None:
    assert parse(with_check("11010519900101001")).sex == "M"
    assert parse(with_check("11010519900101002")).sex == "F"
    assert parse(with_check("11010519900101999")).sex == "M"
    assert parse(with_check("11010519900101000")).sex == "F"


@pytest.mark.parametrize("wrong", ["0", "1", "2", "9"])
def test_wrong_check_character(wrong: str) -> None:
    number = "1101051949123100" + "2" + wrong
    document = parse(number)
    assert codes(document) == ["check_digit_mismatch"]
    problem = document.problems[0]
    assert problem.severity == "error"
    assert problem.field == "number"
    assert problem.details == {"position": 18, "expected": "X", "actual": wrong}
    assert number not in problem.message_en + problem.message_zh
    assert not is_valid_resident_id(number, TODAY)


@pytest.mark.parametrize("date", ["19490230", "19491301", "19490001", "19490100", "19000229"])
def test_impossible_birth_date(date: str) -> None:
    number = with_check("110105" + date + "002")
    document = parse(number)
    assert codes(document) == ["invalid_birth_date"]
    assert document.birth_date is None
    assert document.problems[0].field == "birth_date"
    assert not is_valid_resident_id(number, TODAY)


def test_leap_day_is_a_real_date() -> None:
    document = parse(with_check("11010520000229002"))
    assert document.problems == ()
    assert document.birth_date == dt.date(2000, 2, 29)


def test_birth_date_in_future_is_a_validate_problem() -> None:
    tomorrow = TODAY + dt.timedelta(days=1)
    number = with_check(f"110105{tomorrow:%Y%m%d}002")
    document = parse(number)
    assert document.problems == ()  # parsing does not know the day
    problems = validate_resident_id(document, TODAY)
    assert [p.code for p in problems] == ["birth_date_in_future"]
    assert not is_valid_resident_id(number, TODAY)
    # Born today is fine.
    born_today = parse(with_check(f"110105{TODAY:%Y%m%d}002"))
    assert validate_resident_id(born_today, TODAY) == []


def test_validate_ignores_other_kinds() -> None:
    other = Document(kind="xx_card", number="X", birth_date=dt.date(2999, 1, 1))
    assert validate_resident_id(other, TODAY) == []


@pytest.mark.parametrize("code", ["000000", "779999", "110199", "449999"])
def test_unknown_division_code(code: str) -> None:
    number = with_check(code + "19900101002")
    document = parse(number)
    assert codes(document) == ["unknown_division_code"]
    assert "division_name" not in document.extra
    assert not is_valid_resident_id(number, TODAY)


def test_abolished_division_codes_are_accepted() -> None:
    # 440401 (Zhuhai, 市辖区) as named in issue 2; 440524 (潮阳县) was abolished in 1993.
    zhuhai = parse(with_check("44040119900101002"))
    assert zhuhai.problems == ()
    assert zhuhai.extra["division_province"] == "广东省"
    assert zhuhai.extra["division_prefecture"] == "珠海市"
    chaoyang = parse(with_check("44052419800101002"))
    assert chaoyang.problems == ()
    assert chaoyang.extra["division_abolished"] is True
    assert chaoyang.extra["division_last_year"] == 1993
    assert divisions()["440524"].abolished
    assert not divisions()["110105"].abolished


def test_code_abolished_before_birth_is_a_warning() -> None:
    # 潮阳县 was abolished in 1993: a child born in 2000 cannot have got its code.
    document = parse(with_check("44052420000101002"))
    assert codes(document) == ["division_code_abolished_before_birth"]
    assert document.problems[0].severity == "warning"
    assert document.problems[0].details == {"division_last_year": 1993}
    assert document.is_valid
    assert is_valid_resident_id(document.number, TODAY)


def test_renamed_code_keeps_every_period() -> None:
    # 120110: 东郊区 until 1991, 东丽区 from 1992.
    division = divisions()["120110"]
    assert division.name == "东丽区"
    assert division.periods == ((None, 1991), (1992, None))
    assert not division.abolished


# --- 15-digit legacy numbers -------------------------------------------------------


def test_legacy_number_is_converted() -> None:
    assert convert_legacy_number("610104620927690") == "610104196209276908"
    document = parse("610104620927690")
    assert document.number == "610104196209276908"
    assert document.raw == "610104620927690"
    assert document.birth_date == dt.date(1962, 9, 27)
    assert document.sex == "F"
    assert document.extra["legacy_15_digit"] is True
    assert codes(document) == ["legacy_15_digit_number"]
    assert document.problems[0].severity == "warning"
    assert document.is_valid
    assert is_valid_resident_id("610104620927690", TODAY)


def test_legacy_number_with_impossible_date() -> None:
    document = parse("610104621327690")
    assert codes(document) == ["legacy_15_digit_number", "invalid_birth_date"]
    assert not is_valid_resident_id("610104621327690", TODAY)


def test_convert_legacy_number_refuses_other_shapes() -> None:
    with pytest.raises(ValueError):
        convert_legacy_number("61010462092769")
    with pytest.raises(ValueError):
        convert_legacy_number("61010462092769X")


# --- residence permits (81 / 82 / 83) belong to hkmo_permit ----------------------


@pytest.mark.parametrize("number", ["810000199408230021", "830000199201300022"])
def test_residence_permit_numbers_are_not_ours(number: str) -> None:
    assert parse_resident_id(number, explicit=False) is None
    assert not is_valid_resident_id(number, TODAY)
    document = parse(number, explicit=True)
    assert codes(document) == ["residence_permit_number"]
    problem = document.problems[0]
    assert problem.details == {"division_prefix": number[:2]}
    assert "residence permit" in problem.message_en
    assert "居住证" in problem.message_zh
    assert not document.is_valid


def test_residence_permit_prefix_on_legacy_shape_is_not_ours() -> None:
    assert parse_resident_id("820000940823002", explicit=False) is None


# --- shapes that are not resident ID numbers --------------------------------------


@pytest.mark.parametrize(
    "number",
    ["11010519491231002", "11010519491231002XX", "1101051949123", "H12345678", "E12345678"],
)
def test_wrong_length(number: str) -> None:
    assert parse_resident_id(number, explicit=False) is None
    assert not is_valid_resident_id(number, TODAY)
    with pytest.raises(MalformedNumberError) as info:
        parse_resident_id(number, explicit=True)
    assert info.value.code == "malformed_number"
    assert info.value.details == {"expected_length": 18, "length": len(number)}
    assert "18" in info.value.message_en and "18" in info.value.message_zh


@pytest.mark.parametrize(
    ("number", "positions"),
    [
        ("1101051949123100X2", [17]),
        ("A1010519491231002X", [1]),
        ("61010462092769X", [15]),
        ("H10105620927690", [1]),
    ],
)
def test_wrong_characters(number: str, positions: list[int]) -> None:
    assert parse_resident_id(number, explicit=False) is None
    assert not is_valid_resident_id(number, TODAY)
    with pytest.raises(MalformedNumberError) as info:
        parse_resident_id(number, explicit=True)
    assert info.value.details == {
        "expected_length": 18,
        "length": len(number),
        "positions": positions,
    }
    assert number not in str(info.value)


# --- hooks -----------------------------------------------------------------------


def test_document_type_record() -> None:
    (record,) = id_card.healthcode_document_types()
    assert record.kind == KIND
    assert record.name_zh == "居民身份证"
    assert record.name_en == "Resident Identity Card"
    assert record.inputs == frozenset({"number"})
    assert record.example == "11010519491231002X"


def test_parse_hook_leaves_other_kinds_and_inputs_alone() -> None:
    number = "11010519491231002X"
    assert (
        id_card.healthcode_parse_document(DocumentSubmission(kind="passport", number=number))
        is None
    )
    assert id_card.healthcode_parse_document(DocumentSubmission(mrz="P<UTO")) is None
    assert id_card.healthcode_parse_document(DocumentSubmission(kind=KIND, mrz="P<UTO")) is None
    document = id_card.healthcode_parse_document(DocumentSubmission(number=number))
    assert document is not None and document.number == number


def test_mask_number_only() -> None:
    masked = mask_resident_id(parse("11010519491231002X"))
    assert masked is not None
    assert masked.kind == KIND
    assert masked.masked_name == ""
    assert masked.masked_number == "11**************2X"


@pytest.mark.parametrize(
    ("name", "surname"), [("张三", "张"), ("欧阳修", "欧阳"), ("诸葛亮", "诸葛")]
)
def test_mask_with_chinese_name(name: str, surname: str) -> None:
    document = attrs.evolve(parse("11010519491231002X"), name_zh=name)
    masked = id_card.healthcode_mask_document(document)
    assert masked is not None
    assert masked.masked_name == surname
    assert masked.masked_number == "11**************2X"


def test_mask_legacy_shows_converted_number() -> None:
    masked = mask_resident_id(parse("610104620927690"))
    assert masked is not None and masked.masked_number == "61**************08"


def test_mask_ignores_other_kinds() -> None:
    assert mask_resident_id(Document(kind="xx_card", number="ABC12345")) is None


# --- through core, with the real plugin manager ----------------------------------


def test_check_document_valid(pm: pluggy.PluginManager) -> None:
    sub, warnings = make_submission(number=" １１０１０５ １９４９１２３１ ００２ｘ ")
    result = check_document(sub, today=TODAY, warnings=warnings, pm=pm)
    assert result.is_valid
    assert result.problems == ()
    assert result.document.kind == KIND
    assert result.document.number == "11010519491231002X"
    assert result.masked is not None
    assert result.masked.masked_number == "11**************2X"
    assert result.masked.masked_name == ""


def test_check_document_legacy(pm: pluggy.PluginManager) -> None:
    sub, warnings = make_submission(number="610104-620927-690")
    result = check_document(sub, today=TODAY, warnings=warnings, pm=pm)
    assert result.is_valid
    assert [p.code for p in result.problems] == ["legacy_15_digit_number"]
    assert result.document.number == "610104196209276908"


def test_check_document_reports_every_problem(pm: pluggy.PluginManager) -> None:
    body = "77999920991231002"  # unknown code, born in 2099
    wrong = "0" if gb11643_check_char(body) != "0" else "1"
    future = body + wrong
    sub, warnings = make_submission(kind=KIND, number=future)
    result = check_document(sub, today=TODAY, warnings=warnings, pm=pm)
    assert not result.is_valid
    assert sorted(p.code for p in result.problems) == [
        "birth_date_in_future",
        "check_digit_mismatch",
        "unknown_division_code",
    ]


def test_check_document_explicit_kind_malformed(pm: pluggy.PluginManager) -> None:
    sub, warnings = make_submission(kind=KIND, number="1101051949")
    with pytest.raises(MalformedNumberError) as info:
        check_document(sub, today=TODAY, warnings=warnings, pm=pm)
    assert info.value.details == {"expected_length": 18, "length": 10}


def test_check_document_residence_permit_not_read_as_resident_id(
    pm: pluggy.PluginManager,
) -> None:
    sub, warnings = make_submission(number="810000199408230021")
    try:
        result = check_document(sub, today=TODAY, warnings=warnings, pm=pm)
    except UnknownDocumentKindError:
        return  # hkmo_permit not (yet) able to read it: still not ours
    assert result.document.kind != KIND


# --- division table and its refresh script ---------------------------------------


def test_division_table_is_loaded_once() -> None:
    assert divisions() is divisions()
    table = divisions()
    assert len(table) > 6000
    assert table["110105"].province == "北京市"


def _load_refresh_script() -> ModuleType:
    path = ROOT / "scripts" / "refresh_divisions.py"
    spec = importlib.util.spec_from_file_location("refresh_divisions", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("refresh_divisions", module)
    spec.loader.exec_module(module)
    return module


def test_refresh_script_parses_loc_dat_periods() -> None:
    script = _load_refresh_script()
    lines = [
        "# header",
        '12 province="天津市"',
        '  0000 county="天津市"',
        '  0110 county="[-1991]东郊区,[1992-]东丽区"',
        '  0204 county="[1983-1994]东矿区"',
    ]
    rows = list(script.parse_loc_dat(lines))
    assert [tuple(r) for r in rows] == [
        ("120000", "天津市", "天津市", None, None),
        ("120110", "东郊区", "天津市", None, 1991),
        ("120110", "东丽区", "天津市", 1992, None),
        ("120204", "东矿区", "天津市", 1983, 1994),
    ]
    with pytest.raises(ValueError):
        list(script.parse_loc_dat(['  0110 county="orphan"']))


def test_committed_table_matches_installed_stdnum(tmp_path: Path) -> None:
    stdnum = pytest.importorskip("stdnum")
    committed = (ROOT / "healthcode/plugins/id_card/data/gbt2260.tsv").read_text(encoding="utf-8")
    if f"(python-stdnum {stdnum.__version__})" not in committed:
        pytest.skip("the installed python-stdnum is not the version the table came from")
    output = tmp_path / "gbt2260.tsv"
    assert _load_refresh_script().main(["--output", str(output)]) == 0
    assert output.read_text(encoding="utf-8") == committed


# --- generator and property tests -------------------------------------------------


def test_generator_is_reproducible_and_valid() -> None:
    first = random_resident_ids(random.Random(42), 200, legacy_share=0.2)
    assert first == random_resident_ids(random.Random(42), 200, legacy_share=0.2)
    assert {len(n) for n in first} == {15, 18}
    assert all(is_valid_resident_id(n, TODAY) for n in first)
    for number in first:
        problems = parse(number).problems
        assert all(p.severity == "warning" for p in problems)


def test_generator_sex() -> None:
    rng = random.Random(3)
    assert all(parse(random_resident_id(rng, sex="F")).sex == "F" for _ in range(50))
    assert all(parse(random_legacy_resident_id(rng, sex="M")).sex == "M" for _ in range(50))


SETTINGS = settings(max_examples=150, deadline=None)


@SETTINGS
@given(st.randoms(use_true_random=False))
def test_generated_numbers_round_trip(rng: random.Random) -> None:
    number = random_resident_id(rng)
    document = parse(number, explicit=False)
    assert document.problems == ()
    assert document.number == number
    assert document.birth_date is not None
    assert f"{document.birth_date:%Y%m%d}" == number[6:14]
    assert document.sex == ("M" if int(number[16]) % 2 else "F")
    assert validate_resident_id(document, TODAY) == []
    assert is_valid_resident_id(number, TODAY)
    assert is_valid_resident_id(number.replace("X", "x"), TODAY)


@SETTINGS
@given(st.randoms(use_true_random=False))
def test_generated_legacy_numbers_round_trip(rng: random.Random) -> None:
    legacy = random_legacy_resident_id(rng)
    document = parse(legacy, explicit=False)
    assert codes(document) == ["legacy_15_digit_number"]
    converted = document.number
    # Dropping "19" and the check character gives the legacy number back.
    assert converted[:6] + converted[8:17] == legacy
    assert parse(converted).problems == ()
    assert parse(converted).birth_date == document.birth_date


@SETTINGS
@given(
    st.randoms(use_true_random=False),
    st.integers(0, 16),
    st.integers(1, 9),
)
def test_any_single_substitution_in_the_body_is_detected(
    rng: random.Random, position: int, delta: int
) -> None:
    # MOD 11-2: the weight of every body position is a power of 2, never 0 mod 11,
    # and two digits differ by 1..9, never 0 mod 11: every substitution changes
    # the sum mod 11, so the check character no longer fits.
    number = random_resident_id(rng)
    digit = (int(number[position]) + delta) % 10
    changed = number[:position] + str(digit) + number[position + 1 :]
    assert gb11643_check_char(changed[:17]) != changed[17]
    assert "check_digit_mismatch" in codes(parse(changed))
    assert not is_valid_resident_id(changed, TODAY)


@SETTINGS
@given(st.randoms(use_true_random=False), st.sampled_from("0123456789X"))
def test_any_change_of_the_check_character_is_detected(rng: random.Random, check: str) -> None:
    number = random_resident_id(rng)
    changed = number[:17] + check
    if check == number[17]:
        assert parse(changed).problems == ()
    else:
        assert codes(parse(changed)) == ["check_digit_mismatch"]


@SETTINGS
@given(st.randoms(use_true_random=False), st.integers(0, 15))
def test_any_adjacent_transposition_in_the_body_is_detected(
    rng: random.Random, position: int
) -> None:
    # Adjacent weights are w and 2w (mod 11): swapping digits a != b changes the
    # sum by (a - b) * w, which is not 0 mod 11.
    number = random_resident_id(rng)
    a, b = number[position], number[position + 1]
    changed = number[:position] + b + a + number[position + 2 :]
    if a == b:
        assert changed == number
        return
    assert "check_digit_mismatch" in codes(parse(changed))


@SETTINGS
@given(st.randoms(use_true_random=False), st.integers(0, 6))
def test_transposition_ten_apart_is_not_detected(rng: random.Random, position: int) -> None:
    # What the check cannot see: 2 has order 10 modulo 11, so positions ten apart
    # carry the same weight and swapping their digits keeps the check character.
    number = random_resident_id(rng)
    a, b = number[position], number[position + 10]
    changed = number[:position] + b + number[position + 1 : position + 10] + a
    changed += number[position + 11 :]
    assert gb11643_check_char(changed[:17]) == number[17]


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text("0123456789", min_size=15, max_size=15),
        st.text("0123456789", min_size=17, max_size=17).map(with_check),
        st.text("0123456789X", min_size=18, max_size=18),
        st.randoms(use_true_random=False).map(random_resident_id),
    )
)
def test_fast_verdict_agrees_with_parse_and_validate(number: str) -> None:
    document = parse_resident_id(number, explicit=False)
    if document is None:
        assert not is_valid_resident_id(number, TODAY)
        return
    problems = list(document.problems) + validate_resident_id(document, TODAY)
    expected = not any(p.severity == "error" for p in problems)
    assert is_valid_resident_id(number, TODAY) == expected


# --- numbers beginning with 9: the Foreign Permanent Resident ID Card's -------------


def test_numbers_beginning_with_9_are_left_to_their_card_without_a_kind() -> None:
    number = with_check("93268219850101001")
    assert parse_resident_id(number, explicit=False) is None
    assert parse_resident_id("932682198501010", explicit=False) is None
    assert not is_valid_resident_id(number, TODAY)


def test_numbers_beginning_with_9_read_as_a_resident_id_name_the_card() -> None:
    document = parse(with_check("93268219850101001"))
    assert codes(document) == ["foreign_permanent_resident_number"]
    (problem,) = document.problems
    assert "Foreign Permanent Resident ID Card" in problem.message_en
    assert "外国人永久居留身份证" in problem.message_zh
    assert "division_name" not in document.extra
    for wrong_shape in ("9326821985010100", "93268219850101001A", "9326821985010100171"):
        with pytest.raises(MalformedNumberError) as info:
            parse(wrong_shape)
        assert "Foreign Permanent Resident ID Card" in info.value.message_en
        assert "外国人永久居留身份证" in info.value.message_zh
        assert wrong_shape not in str(info.value)
