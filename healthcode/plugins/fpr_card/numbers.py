"""Reading Foreign Permanent Resident ID Card numbers (外国人永久居留身份证号码).

Two versions are in use side by side (the rules, with their sources, are in
this plugin's ``README.md``):

2023 version (issued from 2023-12-01), 18 characters::

    9 32 682 19850101 001 7
    | |  |   |        |   `-- check character, ISO 7064 MOD 11-2 as in GB 11643 (0-9 or X)
    | |  |   |        `------ sequence
    | |  |   `--------------- birth date, YYYYMMDD
    | |  `------------------- nationality, ISO 3166-1 numeric (GB/T 2659)
    | `---------------------- province-level code (GB/T 2260) of the accepting authority
    `------------------------ 9: the foreigner's identity code (resident IDs begin 1-8)

2017 version (and the earlier cards, whose numbers it kept), 15 characters::

    KAZ 1100 901231 05
    |   |    |      `-- sequence
    |   |    `--------- birth date, YYMMDD
    |   `-------------- accepting authority: province-level code (GB/T 2260) and 2 digits
    `------------------ nationality, ISO 3166-1 alpha-3 (GB/T 2659)

The 2017 number carries no check character that the published rules define,
so none is checked. Its two-digit birth year is read in the latest century
that does not put the birth after today (Asia/Shanghai).

Plain functions, so that the hooks and a benchmark call the same code.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.resources
import re
from collections.abc import Mapping

from healthcode.core.checkdigits import gb11643_check_char
from healthcode.core.clock import today_shanghai
from healthcode.core.errors import MalformedNumberError
from healthcode.core.models import Document, MaskedDocument, Problem
from healthcode.core.privacy import latin_surname, mask_number

__all__ = [
    "DOCUMENT_TYPE_EXAMPLE",
    "KIND",
    "NAME_EN",
    "NAME_ZH",
    "PROVINCE_CODES",
    "countries",
    "mask_permanent_resident_id",
    "parse_permanent_resident_id",
    "validate_permanent_resident_id",
]

KIND = "cn_foreign_permanent_resident_id"
NAME_EN = "Foreign Permanent Resident ID Card"
NAME_ZH = "外国人永久居留身份证"
DOCUMENT_TYPE_EXAMPLE = "932682198501010017"
"""The 2023-version specimen published with the adaptation notes (see README)."""

# fmt: off
PROVINCE_CODES: frozenset[str] = frozenset((
    "11", "12", "13", "14", "15",  # 华北 North
    "21", "22", "23",  # 东北 Northeast
    "31", "32", "33", "34", "35", "36", "37",  # 华东 East
    "41", "42", "43", "44", "45", "46",  # 中南 South Central
    "50", "51", "52", "53", "54",  # 西南 Southwest
    "61", "62", "63", "64", "65",  # 西北 Northwest
))
# fmt: on
"""Province-level GB/T 2260 codes of the mainland, where the cards are issued."""

# ASCII only: ``\d`` would also match other scripts' digits.
_SHAPE_2023 = re.compile(r"9[0-9]{16}[0-9X]", re.ASCII)
_SHAPE_2017 = re.compile(r"[A-Z]{3}[0-9]{12}", re.ASCII)
# Strings of digits (and X) beginning with 9, 14 to 19 long: ours, but mistyped.
_NEAR_2023 = re.compile(r"9[0-9X]{13,18}", re.ASCII)

_DATA_FILE = "iso3166.tsv"


@functools.cache
def countries() -> Mapping[str, str]:
    """ISO 3166-1 codes: numeric code -> alpha-3, and alpha-3 -> alpha-3 (read once)."""
    text = (
        importlib.resources.files(__package__ or __name__)
        .joinpath("data", _DATA_FILE)
        .read_text(encoding="utf-8")
    )
    table: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        numeric, alpha3, _name = line.split("\t", 2)
        table[numeric] = alpha3
        table[alpha3] = alpha3
    return table


def _malformed(number: str) -> MalformedNumberError:
    # Say how long and where, never which characters.
    return MalformedNumberError(
        "A Foreign Permanent Resident ID Card number has 18 characters beginning with 9 "
        "(2023 version) or 3 Latin letters followed by 12 digits (2017 version); "
        f"this one has {len(number)} characters of another shape.",
        "外国人永久居留身份证号码应为以 9 开头的 18 位（2023 版），或 3 位拉丁字母加 12 位数字"
        f"（2017 版）；当前输入为 {len(number)} 位，格式不符。",
        details={"expected_lengths": [18, 15], "length": len(number)},
    )


def parse_permanent_resident_id(number: str, *, explicit: bool = True) -> Document | None:
    """Read a card number of either version.

    ``number`` is normalised already (upper-case ASCII, no spaces); a final
    lower-case ``x`` is accepted too. ``explicit`` says the person named this
    kind: then another shape raises ``MalformedNumberError``. Without it, only
    a digit string beginning with 9 of nearly the 2023 length is refused (it
    can be no other document); any other shape returns ``None``.
    """
    if len(number) == 18 and number.endswith("x"):
        number = number[:17] + "X"
    if _SHAPE_2023.fullmatch(number):
        return _parse_2023(number)
    if _SHAPE_2017.fullmatch(number):
        return _parse_2017(number)
    if explicit or _NEAR_2023.fullmatch(number):
        raise _malformed(number)
    return None


def _parse_2023(number: str) -> Document:
    problems: list[Problem] = []
    province, nationality_code = number[1:3], number[3:6]
    if province not in PROVINCE_CODES:
        problems.append(_province_problem([2, 3]))
    nationality = countries().get(nationality_code)
    if nationality is None:
        problems.append(_nationality_problem([4, 6]))
    expected = gb11643_check_char(number[:17])
    if number[17] != expected:
        problems.append(_check_problem(expected, number[17]))
    birth_date = _date(int(number[6:10]), number[10:12], number[12:14], [7, 14], problems)
    return _document(number, "2023", province, nationality, birth_date, problems)


def _parse_2017(number: str) -> Document:
    problems: list[Problem] = []
    nationality = countries().get(number[:3])
    if nationality is None:
        problems.append(_nationality_problem([1, 3]))
    province = number[3:5]
    if province not in PROVINCE_CODES:
        problems.append(_province_problem([4, 5]))
    year = int(number[7:9])
    this_year = today_shanghai().year
    century = this_year - this_year % 100
    full_year = century + year if century + year <= this_year else century - 100 + year
    birth_date = _date(full_year, number[9:11], number[11:13], [8, 13], problems)
    return _document(number, "2017", province, nationality, birth_date, problems)


def _date(
    year: int, month: str, day: str, positions: list[int], problems: list[Problem]
) -> dt.date | None:
    try:
        return dt.date(year, int(month), int(day))
    except ValueError:
        problems.append(_birth_date_problem(positions))
        return None


def _document(
    number: str,
    version: str,
    province: str,
    nationality: str | None,
    birth_date: dt.date | None,
    problems: list[Problem],
) -> Document:
    return Document(
        kind=KIND,
        number=number,
        source="number",
        issuing_state="CHN",
        issuing_authority="国家移民管理局",
        nationality=nationality,
        birth_date=birth_date,
        extra={"card_version": version, "province_code": province},
        problems=tuple(problems),
        raw=number,
    )


def validate_permanent_resident_id(document: Document, today: dt.date) -> list[Problem]:
    """Day-dependent rules: the birth date must not be after ``today``."""
    if document.kind != KIND:
        return []
    if document.birth_date is not None and document.birth_date > today:
        return [_BIRTH_DATE_IN_FUTURE]
    return []


def mask_permanent_resident_id(document: Document) -> MaskedDocument | None:
    """The Latin surname (when one was given) and the number's first and last 2."""
    if document.kind != KIND:
        return None
    masked_name = latin_surname(document.surname) if document.surname else ""
    return MaskedDocument(
        kind=KIND, masked_name=masked_name, masked_number=mask_number(document.number)
    )


# --- problems (no personal data in any of them) --------------------------------

_BIRTH_DATE_IN_FUTURE = Problem(
    code="birth_date_in_future",
    field="birth_date",
    message_en="The birth date in the number is in the future.",
    message_zh="号码中的出生日期晚于今天。",
)


def _province_problem(positions: list[int]) -> Problem:
    return Problem(
        code="unknown_province_code",
        field="number",
        message_en=(
            "The accepting authority's province code in a Foreign Permanent Resident "
            "ID Card number is not a mainland province-level code (GB/T 2260)."
        ),
        message_zh="外国人永久居留身份证号码中的受理地代码不是内地省级行政区划代码（GB/T 2260）。",
        details={"positions": positions},
    )


def _nationality_problem(positions: list[int]) -> Problem:
    return Problem(
        code="unknown_nationality_code",
        field="number",
        message_en=(
            "The nationality code in a Foreign Permanent Resident ID Card number is not "
            "a country code of ISO 3166-1 (GB/T 2659)."
        ),
        message_zh="外国人永久居留身份证号码中的国籍代码不是 ISO 3166-1（GB/T 2659）国家代码。",
        details={"positions": positions},
    )


def _birth_date_problem(positions: list[int]) -> Problem:
    return Problem(
        code="invalid_birth_date",
        field="birth_date",
        message_en=(
            f"The birth date in the number (characters {positions[0]} to {positions[1]}) "
            "is not a real date."
        ),
        message_zh=f"号码中的出生日期（第 {positions[0]} 至 {positions[1]} 位）不是有效日期。",
        details={"positions": positions},
    )


def _check_problem(expected: str, actual: str) -> Problem:
    return Problem(
        code="check_digit_mismatch",
        field="number",
        message_en=(
            "The last character does not match the check character computed from the "
            "first 17 digits: a digit was probably mistyped."
        ),
        message_zh="最后一位校验码与前 17 位计算结果不符，可能有数字输入错误。",
        details={"position": 18, "expected": expected, "actual": actual},
    )
