"""Small ICAO 9303 helpers shared by the plugins that read MRZs (passport,
hkmo_permit): check-digit findings and two-digit-year dates.

The layouts themselves (TD1/TD2/TD3/MRV, CR/CT/CS) live in the plugins.
"""

from __future__ import annotations

import datetime as dt

from healthcode.core.checkdigits import icao_check_digit
from healthcode.core.models import Problem

FILLER = "<"


def check_digit_problem(
    field: str, data: str, check: str, *, may_be_filler: bool = False, start: int | None = None
) -> Problem | None:
    """A ``check_digit_mismatch`` problem when ``check`` does not cover ``data``.

    ``may_be_filler``: ICAO allows ``<`` as the check digit of an optional-data
    field that is entirely filler. ``start`` is the 0-based position of the
    field in its line, reported to help people find the typo.
    """
    if may_be_filler and check == FILLER and set(data) <= {FILLER}:
        return None
    expected = icao_check_digit(data)
    if check == expected:
        return None
    return Problem(
        code="check_digit_mismatch",
        field=field,
        message_en=f"The check digit of the {field.replace('_', ' ')} does not match.",
        message_zh=f"{_FIELD_ZH.get(field, field)}的校验位不符。",
        details={"expected": expected, "found": check, "position": start},
    )


_FIELD_ZH = {
    "document_number": "证件号码",
    "birth_date": "出生日期",
    "expiry_date": "有效期",
    "optional_data": "可选数据",
    "composite": "综合校验",
}


def parse_yymmdd(text: str) -> tuple[int, int, int] | None:
    """``(yy, mm, dd)`` when ``text`` is 6 digits, else ``None``."""
    if len(text) != 6 or not text.isascii() or not text.isdigit():
        return None
    return int(text[:2]), int(text[2:4]), int(text[4:])


def resolve_birth_date(text: str, today: dt.date) -> dt.date | None:
    """A YYMMDD birth date: the most recent century that is not in the future.

    Returns ``None`` when the text is not a real calendar date.
    ``today`` anchors the century window (a person born in 1925 and one born
    in 2025 cannot be told apart in a MRZ; we choose the one not in the future).
    """
    parts = parse_yymmdd(text)
    if parts is None:
        return None
    yy, mm, dd = parts
    century = today.year // 100 * 100
    for year in (century + yy, century - 100 + yy):
        try:
            candidate = dt.date(year, mm, dd)
        except ValueError:
            return None
        if candidate <= today:
            return candidate
    return None


def resolve_expiry_date(text: str, today: dt.date) -> dt.date | None:
    """A YYMMDD expiry date, read within [today - 50 years, today + 50 years)."""
    parts = parse_yymmdd(text)
    if parts is None:
        return None
    yy, mm, dd = parts
    century = today.year // 100 * 100
    year = century + yy
    if year >= today.year + 50:
        year -= 100
    elif year < today.year - 50:
        year += 100
    try:
        return dt.date(year, mm, dd)
    except ValueError:
        return None
