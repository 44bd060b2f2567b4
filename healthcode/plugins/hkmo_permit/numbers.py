"""Typed document numbers of the permits for HK, Macao and Taiwan.

What each rule rests on (the ones marked *assumed* could not be confirmed
from a public primary source when this was written):

* Home Return Permit (港澳居民来往内地通行证):
  - ``H``/``M`` + 8-digit lifelong number, optionally + a 2-digit renewal
    count (00 on first issue): Ministry of Public Security, 《港澳居民来往内地
    通行证号码规则》 (published 2010-03-10). The 2013 card prints the 9-character
    number and shows the renewal count in a separate field; people still type
    the 11-character form, so both are accepted.
  - ``HA``/``MA`` + 7 digits (9 characters in all) for non-Chinese permanent
    residents, issued since 2024-07-10: National Immigration Administration
    notice on the 港澳居民来往内地通行证(非中国籍) card.
* Taiwan compatriot permit (台湾居民来往大陆通行证): 8-digit lifelong number
  since 2008-09-25 (one person, one number); before that 8 digits + 2-digit
  issue count + an issuing-office code in brackets, a letter (A/B/D/...) or a
  digit, which Fujian, Jiangsu and Shanghai dropped from 2006-06 (China News
  Service, 2008-09-11). Brackets cannot be typed here, so ``0561682001D`` is the
  typed form. A digit office code makes 11 digits, which is accepted only when
  the kind is named, because the shape is otherwise too ambiguous.
* Residence permit (港澳台居民居住证): 18 characters in the layout of GB 11643
  with division code 810000 (HK), 820000 (Macao) or 830000 (Taiwan) and the
  ISO 7064 MOD 11-2 check character; published samples 810000199408230021 and
  830000199201300022. Sequence parity gives the sex as in GB 11643.
* Exit-Entry Permit for HK and Macao (往来港澳通行证, 2014 card): ``C`` + 8
  digits; from 2018-12 the second character is a letter used in order, I and O
  excluded, so ``C`` + letter + 7 digits (first number CA0000001): National
  Immigration Administration notice 2018-12-10.
* Exit-Entry Permit for Taiwan (往来台湾通行证, card): ``L`` + 8 digits is
  *assumed* (widely described, not confirmed here). The second character may
  also be a letter, by analogy with the C series, so that a real card in a
  later series is not refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from healthcode.core.checkdigits import gb11643_check_char
from healthcode.core.errors import MalformedNumberError
from healthcode.core.models import Document, Problem
from healthcode.plugins.hkmo_permit.kinds import (
    HK_MO_EXIT_ENTRY_PERMIT,
    HOME_RETURN_PERMIT,
    NAMES,
    RESIDENCE_PERMIT,
    TW_COMPATRIOT_PERMIT,
    TW_EXIT_ENTRY_PERMIT,
    invalid_date_problem,
    permit_document,
    problem,
    yyyymmdd,
)

# --- exact shapes -----------------------------------------------------------------

_HRP = re.compile(r"([HM])(A?)(\d+)")
_TW_COMPATRIOT = re.compile(r"(\d{8})(?:(\d{2})([A-Z0-9])?)?")
_RESIDENCE = re.compile(r"\d{17}[\dX]")
_EXIT_ENTRY = re.compile(r"([CL])([0-9A-Z])(\d{7})")

# --- shapes claimed when no kind is named (wider than the exact shapes, so that a
# mistyped permit number gets a permit-specific message) ---------------------------

_CLAIM_HRP = re.compile(r"[HM]A?\d{6,11}")
_CLAIM_EXIT_ENTRY = re.compile(r"[CL][0-9A-Z]\d{5,9}")

RESIDENCE_REGIONS: Final = {"810000": "HK", "820000": "MO", "830000": "TW"}
"""Division codes of residence permits -> region (GB/T 2260 codes 81, 82, 71 are
the regions themselves; 830000 is used for Taiwan residents' permits)."""


def claimed_kind(number: str) -> str | None:
    """The permit kind a number looks like when no kind was named, else ``None``.

    Fast: one dispatch on the first character and at most one regex match.
    """
    first = number[:1]
    if first in ("H", "M"):
        return HOME_RETURN_PERMIT if _CLAIM_HRP.fullmatch(number) else None
    if first == "C":
        return HK_MO_EXIT_ENTRY_PERMIT if _CLAIM_EXIT_ENTRY.fullmatch(number) else None
    if first == "L":
        return TW_EXIT_ENTRY_PERMIT if _CLAIM_EXIT_ENTRY.fullmatch(number) else None
    if first == "8" and len(number) == 18 and number[1] in "123":
        return RESIDENCE_PERMIT
    n = len(number)
    if (n in (8, 10) and number.isdigit()) or (
        n == 11 and number[:10].isdigit() and "A" <= number[10] <= "Z"
    ):
        return TW_COMPATRIOT_PERMIT
    return None


def parse_permit_number(number: str, kind: str | None = None) -> Document | None:
    """Parse a normalised typed number (upper-case A-Z0-9) of a permit kind.

    ``kind=None``: return ``None`` unless the number has the shape of one of
    this plugin's kinds. A named kind that the number does not fit raises
    ``MalformedNumberError``; rule violations become ``Document.problems``.
    """
    if kind is None:
        kind = claimed_kind(number)
        if kind is None:
            return None
    parser = _PARSERS.get(kind)
    if parser is None:
        return None
    return parser(number)


def _malformed(kind: str, en: str, zh: str, number: str, **details: Any) -> MalformedNumberError:
    name_en, name_zh = NAMES[kind]
    return MalformedNumberError(
        f"This is not a valid {name_en} number: {en}",
        f"不是有效的{name_zh}号码：{zh}",
        details={"kind": kind, "length": len(number), **details},
    )


def _document(
    kind: str, number: str, problems: list[Problem], extra: dict[str, Any], **fields: Any
) -> Document:
    return permit_document(
        kind, number, source="number", raw=number, problems=problems, extra=extra, **fields
    )


def _home_return_permit(number: str) -> Document:
    m = _HRP.fullmatch(number)
    digits = m.group(3) if m else ""
    non_chinese = bool(m and m.group(2))
    if (
        m is None
        or (non_chinese and len(digits) != 7)
        or (not non_chinese and len(digits) not in (8, 10))
    ):
        raise _malformed(
            HOME_RETURN_PERMIT,
            "expected H or M + 8 digits (optionally + a 2-digit renewal count), "
            "or HA or MA + 7 digits.",
            "应为 H 或 M 加 8 位数字（可再加 2 位换证次数），或 HA、MA 加 7 位数字。",
            number,
        )
    region = "HK" if m.group(1) == "H" else "MO"
    extra: dict[str, Any] = {"region": region, "non_chinese_national": non_chinese}
    if not non_chinese and len(digits) == 10:
        extra["renewal_count"] = int(digits[8:])
    return _document(HOME_RETURN_PERMIT, number, [], extra)


def _tw_compatriot_permit(number: str) -> Document:
    m = _TW_COMPATRIOT.fullmatch(number)
    if m is None:
        raise _malformed(
            TW_COMPATRIOT_PERMIT,
            "expected 8 digits, or on older permits 10 digits optionally followed "
            "by the issuing office's letter.",
            "应为 8 位数字；旧版为 10 位数字，其后可有签发机关字母。",
            number,
        )
    extra: dict[str, Any] = {}
    if m.group(2) is not None:
        extra["issue_count"] = int(m.group(2))
    if m.group(3) is not None:
        extra["issuing_office_code"] = m.group(3)
    return _document(TW_COMPATRIOT_PERMIT, number, [], extra)


def _residence_permit(number: str) -> Document:
    if not _RESIDENCE.fullmatch(number):
        raise _malformed(
            RESIDENCE_PERMIT,
            "expected 17 digits and a check character (a digit or X).",
            "应为 17 位数字加 1 位校验码（数字或 X）。",
            number,
        )
    problems: list[Problem] = []
    division = number[:6]
    region = RESIDENCE_REGIONS.get(division)
    if region is None:
        problems.append(
            problem(
                "unknown_region_code",
                "number",
                "A residence permit for HK, Macao or Taiwan residents starts with "
                "810000, 820000 or 830000.",
                "港澳台居民居住证号码应以 810000、820000 或 830000 开头。",
                position=0,
            )
        )
    birth = yyyymmdd(number[6:14])
    if birth is None:
        problems.append(invalid_date_problem("birth_date"))
    expected = gb11643_check_char(number[:17])
    if expected != number[17]:
        problems.append(
            problem(
                "check_digit_mismatch",
                "number",
                "The check character (the last one) does not match the number.",
                "校验码（最后一位）与号码不符。",
                expected=expected,
                found=number[17],
                position=17,
            )
        )
    extra: dict[str, Any] = {"division_code": division}
    if region is not None:
        extra["region"] = region
    return _document(
        RESIDENCE_PERMIT,
        number,
        problems,
        extra,
        birth_date=birth,
        sex="M" if int(number[16]) % 2 else "F",
    )


def _exit_entry_permit(number: str, kind: str) -> Document:
    prefix = "C" if kind == HK_MO_EXIT_ENTRY_PERMIT else "L"
    m = _EXIT_ENTRY.fullmatch(number)
    if m is None or m.group(1) != prefix:
        raise _malformed(
            kind,
            f"expected {prefix} + 8 digits, or {prefix} + a letter + 7 digits.",
            f"应为 {prefix} 加 8 位数字，或 {prefix} 加 1 个字母和 7 位数字。",
            number,
        )
    return _document(kind, number, series_problems(number, kind), {})


def series_problems(number: str, kind: str) -> list[Problem]:
    """Rules on the number series: C + I or O never issued (NIA, 2018-12-10)."""
    if kind == HK_MO_EXIT_ENTRY_PERMIT and number[1:2] in ("I", "O"):
        return [
            problem(
                "invalid_number_series",
                "number",
                "Exit-Entry Permit numbers never use I or O as the second character.",
                "往来港澳通行证号码第二位不使用字母 I 和 O。",
                position=1,
            )
        ]
    return []


def exit_entry_number_ok(number: str, kind: str) -> bool:
    """True when ``number`` has the typed shape of an exit-entry permit of ``kind``."""
    m = _EXIT_ENTRY.fullmatch(number)
    return m is not None and m.group(1) == ("C" if kind == HK_MO_EXIT_ENTRY_PERMIT else "L")


def number_shape_problem(number: str, kind: str) -> Problem | None:
    """``invalid_number_format`` when ``number`` (read from a machine-readable
    zone) does not have the shape of ``kind``'s numbers, the same shapes a typed
    number must have (H/M + 8 digits for a Home Return Permit, 8 digits for a
    Taiwan compatriot permit...); None when it has."""
    try:
        _PARSERS[kind](number)
    except MalformedNumberError as exc:
        return problem("invalid_number_format", "document_number", exc.message_en, exc.message_zh)
    return None


# 11 digits (10 + a digit office code) fit _TW_COMPATRIOT but are not claimed
# by claimed_kind(): they are read only when the kind is named.
_PARSERS: Final[dict[str, Callable[[str], Document]]] = {
    HOME_RETURN_PERMIT: _home_return_permit,
    TW_COMPATRIOT_PERMIT: _tw_compatriot_permit,
    RESIDENCE_PERMIT: _residence_permit,
    HK_MO_EXIT_ENTRY_PERMIT: lambda n: _exit_entry_permit(n, HK_MO_EXIT_ENTRY_PERMIT),
    TW_EXIT_ENTRY_PERMIT: lambda n: _exit_entry_permit(n, TW_EXIT_ENTRY_PERMIT),
}
