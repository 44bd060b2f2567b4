"""Mainland resident identity card numbers (居民身份证号码, GB 11643-1999).

An 18-character number reads::

    440524 18800101 001 4
    |      |        |   `-- check character, ISO 7064 MOD 11-2 (0-9 or X)
    |      |        `------ sequence: odd for men, even for women
    |      `--------------- birth date, YYYYMMDD
    `---------------------- administrative division code (GB/T 2260) in force
                            when the number was issued

Old 15-digit numbers (issued before 1999: YYMMDD with an implied "19", no check
character) are accepted, converted to the 18-character form, and reported with
the warning ``legacy_15_digit_number``. The converted number is
``Document.number``; the 15 digits as typed stay in ``Document.raw``.

Numbers whose division code starts with 81, 82 or 83 belong to residence
permits for Hong Kong, Macao and Taiwan residents (港澳台居民居住证): the
``hkmo_permit`` plugin owns them. This plugin returns ``None`` for them when no
kind is named, and reports ``residence_permit_number`` when asked to read one
as a resident ID.

Numbers beginning with 9 belong to the Foreign Permanent Resident ID Card
(外国人永久居留身份证, 2023 version): no resident ID begins with 9, since no
province-level code does. This plugin returns ``None`` for them when no kind
is named, so that the plugin of that card reads them; asked to read one as a
resident ID, it reports ``foreign_permanent_resident_number`` (right shape) or
raises ``MalformedNumberError`` naming that card (wrong shape), never a
malformed resident ID.

Problem codes (stable):

* ``check_digit_mismatch`` -- the 18th character is not the MOD 11-2 check
  character of the first 17 digits (the same code the MRZ plugins use for their
  check digits, so that scripts need to know one name);
* ``invalid_birth_date`` -- the birth date is not a calendar date;
* ``birth_date_in_future`` -- after ``today`` (from the validate hook);
* ``unknown_division_code`` -- not in GB/T 2260, current or abolished;
* ``residence_permit_number`` -- an 81/82/83 code, read as a resident ID;
* ``foreign_permanent_resident_number`` -- a number beginning with 9 (a
  Foreign Permanent Resident ID Card's), read as a resident ID;
* ``legacy_15_digit_number`` (warning) -- an old 15-digit number, converted;
* ``division_code_abolished_before_birth`` (warning) -- the division code had
  been abolished before the birth year, so it cannot have been assigned at
  birth; kept a warning because the table's years are coarse.

A number of the wrong length or shape raises ``MalformedNumberError`` when the
kind ``cn_resident_id`` is named; without a kind, such input is left to other
plugins (``None``).

Division codes
--------------

``data/gbt2260.tsv`` lists every GB/T 2260 code with the years each name was in
force, abolished codes included: a number keeps the code in force when it was
issued (``440401``, Zhuhai's 市辖区 since 1984, is as valid as any current code).
The table is generated from ``stdnum/cn/loc.dat`` of python-stdnum (its
maintainers refresh it in their releases from the zh.wikipedia transcription of
the published GB/T 2260 lists with history; the TSV header names the version).
To refresh it::

    pip install python-stdnum==X.Y && python scripts/refresh_divisions.py

then review the diff of the TSV and commit it. It is read once, lazily, on the
first lookup.

For speed, ``parse_resident_id`` and ``is_valid_resident_id`` are plain
functions that the hooks call and a benchmark can time directly.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.resources
import itertools
import re
from collections.abc import Mapping, Sequence

import attrs
from attrs import frozen

from healthcode.core.checkdigits import gb11643_check_char
from healthcode.core.clock import today_shanghai
from healthcode.core.errors import MalformedNumberError
from healthcode.core.hookspecs import hookimpl
from healthcode.core.models import (
    Document,
    DocumentSubmission,
    DocumentType,
    MaskedDocument,
    Problem,
    Sex,
)
from healthcode.core.privacy import chinese_surname, mask_number

__all__ = [
    "DOCUMENT_TYPE",
    "FOREIGN_PERMANENT_RESIDENT_PREFIX",
    "KIND",
    "RESIDENCE_PERMIT_PREFIXES",
    "Division",
    "convert_legacy_number",
    "divisions",
    "is_valid_resident_id",
    "mask_resident_id",
    "parse_resident_id",
    "validate_resident_id",
]

KIND = "cn_resident_id"

DOCUMENT_TYPE = DocumentType(
    kind=KIND,
    name_en="Resident Identity Card",
    name_zh="居民身份证",
    inputs=frozenset({"number"}),
    example="11010519491231002X",
)

RESIDENCE_PERMIT_PREFIXES = frozenset({"81", "82", "83"})
"""Division prefixes of the HK / Macao / Taiwan residence permits (810000, 820000, 830000)."""

FOREIGN_PERMANENT_RESIDENT_PREFIX = "9"
"""First digit of the Foreign Permanent Resident ID Card's numbers (2023 version)."""

# ASCII only: ``\d`` would also match other scripts' digits.
_SHAPE_18 = re.compile(r"[0-9]{17}[0-9X]", re.ASCII)
_SHAPE_15 = re.compile(r"[0-9]{15}", re.ASCII)

# Names of grouping rows of GB/T 2260 that say nothing about a place.
_PLACEHOLDER_NAMES = frozenset({"市辖区", "县"})


# --- division table -------------------------------------------------------------


@frozen
class Division:
    """One GB/T 2260 code, with its latest name and whether it is still in force."""

    code: str
    name: str
    """The latest name under this code (codes are sometimes renamed)."""
    province: str
    prefecture: str | None
    """Name of the prefecture-level unit above a county-level code, when meaningful."""
    first_year: int | None
    """First year of the latest name; None: in force since the first edition."""
    last_year: int | None
    """Last year in force; None while the code is current."""
    earliest_year: int | None
    """First year the code was in force under any name; None: since the first edition."""
    periods: tuple[tuple[int | None, int | None], ...] = ()
    """(first year, last year) of each name, oldest first; there may be gaps between."""

    @property
    def abolished(self) -> bool:
        return self.last_year is not None


_DATA_FILE = "gbt2260.tsv"


@functools.cache
def divisions() -> Mapping[str, Division]:
    """All GB/T 2260 codes, current and abolished, by 6-digit code (read once)."""
    text = (
        importlib.resources.files(__name__).joinpath("data", _DATA_FILE).read_text(encoding="utf-8")
    )
    periods: dict[str, list[tuple[str, str, int | None, int | None]]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        code, name, province, first_text, last_text = line.split("\t")
        periods.setdefault(code, []).append(
            (
                name,
                province,
                int(first_text) if first_text else None,
                int(last_text) if last_text else None,
            )
        )
    table: dict[str, Division] = {}
    for code, rows in periods.items():
        rows.sort(key=lambda row: row[2] or 0)
        name, province, first, last = rows[-1]  # the latest name
        table[code] = Division(
            code=code,
            name=name,
            province=province,
            prefecture=None,
            first_year=first,
            last_year=last,
            earliest_year=rows[0][2],
            periods=tuple((row[2], row[3]) for row in rows),
        )
    for code, division in list(table.items()):
        if code[2:] == "0000" or code[4:] == "00":
            continue
        above = table.get(code[:4] + "00")
        if (
            above is not None
            and above.name not in _PLACEHOLDER_NAMES
            and "直辖" not in above.name
            and above.name != division.name
        ):
            table[code] = attrs.evolve(division, prefecture=above.name)
    return table


# --- parsing --------------------------------------------------------------------


def convert_legacy_number(number: str) -> str:
    """The 18-character form of a 15-digit number: insert "19", append the check.

    >>> convert_legacy_number("610104620927690")
    '610104196209276908'
    """
    if not _SHAPE_15.fullmatch(number):
        raise ValueError("a legacy resident ID number has 15 digits")
    body = number[:6] + "19" + number[6:]
    return body + gb11643_check_char(body)


def _malformed(number: str) -> MalformedNumberError:
    length = len(number)
    details: dict[str, object] = {"expected_length": 18, "length": length}
    if length in (15, 18):
        # Right length, wrong characters: say where, never what.
        allowed_x = length - 1 if length == 18 else -1
        details["positions"] = [
            i + 1
            for i, c in enumerate(number)
            if not ("0" <= c <= "9" or (c == "X" and i == allowed_x))
        ]
        return MalformedNumberError(
            "A resident ID number holds only digits; only its 18th character may be X.",
            "居民身份证号码只能由数字组成，仅第 18 位可以是 X。",
            details=details,
        )
    return MalformedNumberError(
        f"A resident ID number has 18 characters (or 15 digits for an old-style number); "
        f"this one has {length}.",
        f"居民身份证号码应为 18 位（旧版为 15 位数字），当前输入为 {length} 位。",
        details=details,
    )


def _foreign_number(number: str) -> MalformedNumberError:
    """Refusal of a number beginning with 9 and of another shape: it names the card."""
    return MalformedNumberError(
        "Numbers beginning with 9 belong to the Foreign Permanent Resident ID Card, not to "
        "a resident ID card, and this one does not have that card's shape either: check it "
        "as a Foreign Permanent Resident ID Card.",
        "以 9 开头的号码属于外国人永久居留身份证，不是居民身份证，且该号码也不符合永居证格式，"
        "请按外国人永久居留身份证核验。",
        details={"length": len(number), "first_digit": FOREIGN_PERMANENT_RESIDENT_PREFIX},
    )


def parse_resident_id(number: str, *, explicit: bool = True) -> Document | None:
    """Read a resident ID number (18 characters, or 15 digits for an old one).

    ``number`` is normalised already (``healthcode.core.text.normalise_number``);
    a lower-case final ``x`` is accepted as well. ``explicit`` says the person
    named this kind: then a wrong shape raises ``MalformedNumberError``, and a
    residence-permit code (81/82/83) is a problem. Without it, input of another
    shape, or with such a code, returns ``None`` for other plugins to read.

    Rule violations become ``Document.problems``; the birth date in the future
    is checked by ``validate_resident_id``, which needs today's date.
    """
    foreign = number.startswith(FOREIGN_PERMANENT_RESIDENT_PREFIX)
    if foreign and not explicit:
        return None  # the Foreign Permanent Resident ID Card's plugin reads it
    try:
        canonical = _canonical_number(number, explicit=explicit)
    except MalformedNumberError:
        if foreign:
            raise _foreign_number(number) from None
        raise
    if canonical is None:
        return None
    full, legacy = canonical
    problems: list[Problem] = [_LEGACY_WARNING] if legacy else []
    prefix = full[:2]
    permit_code = prefix in RESIDENCE_PERMIT_PREFIXES or foreign
    if permit_code:
        if not explicit:
            return None
        problems.append(_FOREIGN_PROBLEM if foreign else _residence_permit_problem(prefix))
    if not legacy:
        expected = gb11643_check_char(full[:17])
        if full[17] != expected:
            problems.append(_check_problem(expected, full[17]))
    birth_date = _birth_date(full, problems)
    extra: dict[str, object] = {"division_code": full[:6]}
    if legacy:
        extra["legacy_15_digit"] = True
    if not permit_code:
        extra.update(_division_facts(full[:6], birth_date, problems))
    sex: Sex = "M" if int(full[16]) % 2 else "F"
    return Document(
        kind=KIND,
        number=full,
        source="number",
        issuing_state="CHN",
        nationality="CHN",
        birth_date=birth_date,
        sex=sex,
        extra=extra,
        problems=tuple(problems),
        raw=number,
    )


def _canonical_number(number: str, *, explicit: bool) -> tuple[str, bool] | None:
    """The 18-character number, and whether it was a legacy 15-digit one.

    ``None`` (or ``MalformedNumberError`` when ``explicit``) for another shape.
    """
    if len(number) == 18:
        if number[17] == "x":
            number = number[:17] + "X"
        if _SHAPE_18.fullmatch(number):
            return number, False
    elif len(number) == 15 and _SHAPE_15.fullmatch(number):
        return convert_legacy_number(number), True
    if explicit:
        raise _malformed(number)
    return None


def _birth_date(number: str, problems: list[Problem]) -> dt.date | None:
    try:
        return dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        problems.append(_BIRTH_DATE_PROBLEM)
        return None


def _division_facts(
    code: str, birth_date: dt.date | None, problems: list[Problem]
) -> dict[str, object]:
    """``Document.extra`` entries for the division a number names (none when unknown)."""
    division = divisions().get(code)
    if division is None:
        problems.append(_UNKNOWN_DIVISION_PROBLEM)
        return {}
    facts: dict[str, object] = {
        "division_name": division.name,
        "division_province": division.province,
    }
    if division.prefecture is not None:
        facts["division_prefecture"] = division.prefecture
    facts["division_abolished"] = division.abolished
    last_year = division.last_year
    if last_year is not None:
        facts["division_last_year"] = last_year
        if birth_date is not None and last_year < birth_date.year:
            problems.append(_abolished_before_birth_problem(last_year))
    return facts


def is_valid_resident_id(number: str, today: dt.date | None = None) -> bool:
    """Fast verdict: True when ``parse_resident_id`` + ``validate_resident_id``
    would find no error (warnings allowed) for an 18- or 15-character number.

    Builds no ``Document``; for bulk checks, pass ``today`` to avoid reading
    the clock per call.
    """
    length = len(number)
    if length == 18:
        if number[17] == "x":
            number = number[:17] + "X"
        if not _SHAPE_18.fullmatch(number) or gb11643_check_char(number[:17]) != number[17]:
            return False
        year = int(number[6:10])
    elif length == 15:
        if not _SHAPE_15.fullmatch(number):
            return False
        year = 1900 + int(number[6:8])
        number = number[:6] + "19" + number[6:]
    else:
        return False
    if number[:2] in RESIDENCE_PERMIT_PREFIXES or number[:6] not in divisions():
        return False
    try:
        birth_date = dt.date(year, int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return birth_date <= (today or today_shanghai())


def validate_resident_id(document: Document, today: dt.date) -> list[Problem]:
    """Day-dependent rules: the birth date must not be after ``today``."""
    if document.kind != KIND:
        return []
    if document.birth_date is not None and document.birth_date > today:
        return [_BIRTH_DATE_IN_FUTURE_PROBLEM]
    return []


def mask_resident_id(document: Document) -> MaskedDocument | None:
    """Surname (from the Chinese name, when one was given) and number ends."""
    if document.kind != KIND:
        return None
    if document.name_zh:
        masked_name = chinese_surname(document.name_zh)
    elif document.surname:
        masked_name = document.surname
    else:
        # The number alone carries no name.
        masked_name = ""
    return MaskedDocument(
        kind=KIND, masked_name=masked_name, masked_number=mask_number(document.number)
    )


# --- problems (built once: they hold no personal data) ---------------------------

_LEGACY_WARNING = Problem(
    code="legacy_15_digit_number",
    severity="warning",
    field="number",
    message_en=(
        "This is an old 15-digit number (issued before 1999); "
        "it was converted to the 18-character number and checked as such."
    ),
    message_zh="这是 1999 年以前签发的旧版 15 位号码，已转换为 18 位号码并按其核验。",
    details={"length": 15, "converted_length": 18},
)

_BIRTH_DATE_PROBLEM = Problem(
    code="invalid_birth_date",
    field="birth_date",
    message_en="The birth date in the number (characters 7 to 14) is not a real date.",
    message_zh="号码中的出生日期（第 7 至 14 位）不是有效日期。",
    details={"positions": [7, 14]},
)

_BIRTH_DATE_IN_FUTURE_PROBLEM = Problem(
    code="birth_date_in_future",
    field="birth_date",
    message_en="The birth date in the number is in the future.",
    message_zh="号码中的出生日期晚于今天。",
)

_FOREIGN_PROBLEM = Problem(
    code="foreign_permanent_resident_number",
    field="number",
    message_en=(
        "Numbers beginning with 9 belong to the Foreign Permanent Resident ID Card, not to "
        "a resident ID card: check it as a Foreign Permanent Resident ID Card."
    ),
    message_zh=(
        "以 9 开头的号码属于外国人永久居留身份证，不是居民身份证，请按外国人永久居留身份证核验。"
    ),
    details={"first_digit": FOREIGN_PERMANENT_RESIDENT_PREFIX},
)

_UNKNOWN_DIVISION_PROBLEM = Problem(
    code="unknown_division_code",
    field="number",
    message_en=(
        "The first 6 digits are not an administrative division code (GB/T 2260), "
        "current or abolished."
    ),
    message_zh="前 6 位不是有效的行政区划代码（GB/T 2260，含已撤销的代码）。",
    details={"positions": [1, 6]},
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


def _residence_permit_problem(prefix: str) -> Problem:
    return Problem(
        code="residence_permit_number",
        field="number",
        message_en=(
            "Numbers starting with 81, 82 or 83 belong to residence permits for Hong Kong, "
            "Macao and Taiwan residents, not to a resident ID card: check it as a "
            "residence permit."
        ),
        message_zh="以 81、82、83 开头的号码属于港澳台居民居住证，不是居民身份证，请按居住证核验。",
        details={"division_prefix": prefix},
    )


def _abolished_before_birth_problem(last_year: int) -> Problem:
    return Problem(
        code="division_code_abolished_before_birth",
        severity="warning",
        field="number",
        message_en=(
            "The division code had been abolished before the birth year in the number; "
            "check the first 6 digits and the birth date."
        ),
        message_zh="号码中的行政区划代码在出生年份之前已撤销，请核对前 6 位和出生日期。",
        details={"division_last_year": last_year},
    )


# --- hooks ----------------------------------------------------------------------


@hookimpl
def healthcode_document_types() -> Sequence[DocumentType]:
    return [DOCUMENT_TYPE]


@hookimpl
def healthcode_parse_document(submission: DocumentSubmission) -> Document | None:
    if submission.kind not in (None, KIND) or submission.number is None:
        return None
    return parse_resident_id(submission.number, explicit=submission.kind == KIND)


@hookimpl
def healthcode_canonical_numbers(
    kind: str, numbers: Sequence[str]
) -> Sequence[tuple[str | None, str] | None] | None:
    if kind != KIND:
        return None
    # numpy only for bulk checks: `healthcode documents` stays light.
    from healthcode.plugins.id_card.bulk import valid_resident_ids

    verdicts = valid_resident_ids(numbers)
    canonical = zip(itertools.repeat("CHN"), numbers)  # tuples made in C: a city's list is long
    if all(verdicts):
        return list(canonical)
    return [pair if good else None for pair, good in zip(canonical, verdicts, strict=False)]


@hookimpl
def healthcode_validate_document(document: Document, today: dt.date) -> Sequence[Problem]:
    return validate_resident_id(document, today)


@hookimpl
def healthcode_mask_document(document: Document) -> MaskedDocument | None:
    return mask_resident_id(document)
