"""Machine-readable zones of the Chinese permit cards (codes CS, CD, CR, CT).

None of these layouts is openly published. What is known, position by position
(1-based positions as printed; "confirmed" names its source, "assumed" says why
we read it so). Every check digit we read is validated with ICAO 9303 7-3-1.

**CS / CD card line (往来港澳通行证 / 往来台湾通行证), one line of 30.**
Positions confirmed by two independent third-party readers that agree field by
field: the Android/iOS ``EepMrzParser`` and its ``EepConstants`` (public GitHub
code for reading these cards, 2026), which also name ``CD`` as the code of the
Taiwan permit; the layout in issue 2 says the same.

====== ======================================================= =========
pos    field                                                   status
====== ======================================================= =========
1-2    document code ``CS`` / ``CD``                           confirmed
3-11   document number, ``<``-padded                           confirmed
12     check digit over 3-11                                   confirmed
13     filler ``<``                                            confirmed
14-19  expiry date YYMMDD                                      confirmed
20     check digit over 14-19                                  confirmed
21     filler ``<``                                            confirmed
22-27  birth date YYMMDD                                       confirmed
28     check digit over 22-27                                  confirmed
29     filler ``<``                                            confirmed
30     composite check over 3-12, 14-20 and 22-28              confirmed
====== ======================================================= =========

The card line carries no name and no sex. The chip's data group 1 holds the
same line followed by two more lines (an encoded Chinese name and the Latin
name; endorsement data): a 3-line paste is accepted, its lines 2 and 3 are
kept opaque (not read, no rule applied).

**CR / CT (港澳居民来往内地通行证 / 台湾居民来往大陆通行证), three lines of 30.**
Confirmed from GA/T 704.14-2015 (出入境管理信息代码 第14部分：港澳居民来往内地
通行证机读码顺序标识, published excerpt): three lines of 30 characters, built
"per ICAO Doc 9303"; line 1 positions 1-2 are the document code and positions
3-5 the issuing state ``CHN``; check digits follow the ICAO algorithm; sex is
coded per GB/T 2261.1; names may be GB 2312/GBK-derived. The excerpt stops
there. The rest is **assumed** to be the ICAO 9303 part 5 TD1 layout that the
standard says it follows:

======= ===================================================== =========
pos     field                                                 status
======= ===================================================== =========
L1 1-2  document code ``CR`` / ``CT``                         confirmed
L1 3-5  issuing state ``CHN``                                 confirmed
L1 6-14 document number                                       assumed
L1 15   check digit over 6-14 (``<`` + overflow, TD1 rule)    assumed
L1 16-30 optional data                                        opaque
L2 1-6  birth date YYMMDD, 7 its check digit                  assumed
L2 8    sex (M/F/X/<; GB/T 2261.1 digits 1/2 read as M/F)     assumed
L2 9-14 expiry date YYMMDD, 15 its check digit                assumed
L2 16-18 nationality                                          assumed
L2 19-29 optional data                                        opaque
L2 30   composite check (TD1: L1 6-30, L2 1-7, 9-15, 19-29)   assumed
L3      name: primary << secondary identifier                 assumed
======= ===================================================== =========

A CR/CT zone whose line 1 does not show ``CHN`` at 3-5 is read with the card
line layout above when its line 1 fits that layout exactly (assumed, by analogy
with CS/CD); otherwise it is refused as an unrecognised layout rather than
guessed at.

The positions themselves are ``CARD`` and ``PERMIT_TD1`` in ``healthcode.core.mrz``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Final

from healthcode.core.clock import today_shanghai
from healthcode.core.errors import MalformedMRZError
from healthcode.core.models import Document, Problem, Sex
from healthcode.core.mrz import (
    CARD,
    DIGITS,
    FILLER,
    LETTERS,
    MRZ_ALPHABET,
    PERMIT_LAYOUTS,
    PERMIT_TD1,
    MRZLayout,
    check_digit_problem,
    resolve_birth_date,
    resolve_expiry_date,
)
from healthcode.plugins.hkmo_permit.kinds import (
    HK_MO_EXIT_ENTRY_PERMIT,
    HOME_RETURN_PERMIT,
    ISSUING_STATE,
    KIND_BY_MRZ_CODE,
    KINDS,
    MRZ_CODE_BY_KIND,
    NAMES,
    TW_COMPATRIOT_PERMIT,
    invalid_date_problem,
    permit_document,
    problem,
)
from healthcode.plugins.hkmo_permit.numbers import (
    exit_entry_number_ok,
    number_shape_problem,
    series_problems,
)

LINE_LENGTH: Final = CARD.width
_SEX: Final[dict[str, Sex]] = {"M": "M", "F": "F", "X": "X", "1": "M", "2": "F"}


def is_permit_mrz(mrz: str) -> bool:
    """True when the MRZ starts with one of this plugin's document codes."""
    return mrz[:2] in KIND_BY_MRZ_CODE


def parse_permit_mrz(
    mrz: str, kind: str | None = None, *, today: dt.date | None = None
) -> Document | None:
    """Parse a normalised MRZ (upper-case, lines joined by ``\\n``).

    Returns ``None`` when the MRZ is not a permit's and ``kind`` is not one of
    this plugin's kinds. ``today`` anchors two-digit years (default: today in
    Asia/Shanghai).
    """
    code = mrz[:2]
    mrz_kind = _kind_of(code, kind)
    if mrz_kind is None:
        return None
    today = today or today_shanghai()
    lines = mrz.split("\n")
    if _layout_of(mrz_kind, code, lines) is CARD:
        return _card_line(mrz_kind, code, lines[0], mrz, today)
    return _td1(mrz_kind, code, lines, mrz, today)


def _kind_of(code: str, kind: str | None) -> str | None:
    """The permit kind of an MRZ with document code ``code``, when it is this
    plugin's to read; raises when it contradicts the ``kind`` the person named."""
    mrz_kind = KIND_BY_MRZ_CODE.get(code)
    if kind is not None and kind not in MRZ_CODE_BY_KIND:
        return None  # another plugin's kind, or one of ours that carries no MRZ
    if mrz_kind is None:
        if kind is None:
            return None
        raise _malformed(
            kind,
            f"it does not start with the document code {MRZ_CODE_BY_KIND[kind]}.",
            f"开头不是证件代码 {MRZ_CODE_BY_KIND[kind]}。",
            reason="document_code",
            expected=MRZ_CODE_BY_KIND[kind],
        )
    if kind is not None and kind != mrz_kind:
        if kind not in KINDS:
            return None
        raise _malformed(
            kind,
            f"its document code {code} belongs to another kind ({NAMES[mrz_kind][0]}).",
            f"证件代码 {code} 属于另一种证件（{NAMES[mrz_kind][1]}）。",
            reason="document_code",
            expected=MRZ_CODE_BY_KIND[kind],
            found=code,
        )
    return mrz_kind


def _layout_of(kind: str, code: str, lines: Sequence[str]) -> MRZLayout:
    """``CARD`` or ``PERMIT_TD1``; raises when the lines have neither shape."""
    lengths = [len(line) for line in lines]
    if PERMIT_LAYOUTS[code] is CARD:
        if len(lines) not in (1, 3) or any(n != LINE_LENGTH for n in lengths):
            raise _malformed(
                kind,
                "expected one line of 30 characters (or the three lines of 30 read from the chip).",
                "应为 1 行 30 个字符（或从芯片读出的 3 行、每行 30 个字符）。",
                reason="shape",
                line_lengths=lengths,
            )
        return CARD
    if len(lines) != PERMIT_TD1.lines or any(n != PERMIT_TD1.width for n in lengths):
        raise _malformed(
            kind,
            "expected three lines of 30 characters.",
            "应为 3 行、每行 30 个字符。",
            reason="shape",
            line_lengths=lengths,
        )
    if PERMIT_TD1.read(lines, "issuing_state") == ISSUING_STATE:
        return PERMIT_TD1
    if _fits_card_line(lines[0]):
        return CARD
    raise _malformed(
        kind,
        "its first line has neither the issuing state CHN at positions 3-5 nor "
        "the layout of the permit card line.",
        "第一行第 3-5 位不是签发国代码 CHN，也不符合通行证机读码的格式。",
        reason="layout",
    )


def _fits_card_line(line: str) -> bool:
    """A ``C`` + letter code, MRZ characters only and the fillers in their places."""
    return (
        len(line) == CARD.width
        and line[0] == "C"
        and line[1] in LETTERS
        and all(char in MRZ_ALPHABET for char in line)
        and all(line[column] == "<" for _, column in CARD.fillers)
    )


def _malformed(kind: str, en: str, zh: str, **details: Any) -> MalformedMRZError:
    name_en, name_zh = NAMES[kind]
    return MalformedMRZError(
        f"This is not a readable {name_en} machine-readable zone: {en}",
        f"无法读取该{name_zh}机读码：{zh}",
        details={"kind": kind, **details},
    )


def _dates(
    layout: MRZLayout, lines: Sequence[str], today: dt.date, problems: list[Problem]
) -> tuple[dt.date | None, dt.date | None]:
    birth_date = resolve_birth_date(layout.read(lines, "birth_date"), today)
    if birth_date is None:
        problems.append(invalid_date_problem("birth_date"))
    expiry_date = resolve_expiry_date(layout.read(lines, "expiry_date"), today)
    if expiry_date is None:
        problems.append(invalid_date_problem("expiry_date"))
    return birth_date, expiry_date


def _check_problems(
    layout: MRZLayout, lines: Sequence[str], *, skip: str | None = None
) -> list[Problem]:
    """Findings of the layout's check digits, in order (``skip``: one read apart)."""
    found = (
        check_digit_problem(
            check.name, check.data(lines), check.found(lines), start=check.position[1]
        )
        for check in layout.checks
        if check.name != skip
    )
    return [problem for problem in found if problem is not None]


TD1_NUMBER_CELLS: Final[Mapping[str, tuple[str, ...]]] = {
    # H/M, then a digit or the A of the non-Chinese series, then digits;
    # fillers after a number shorter than the field.
    "CR": ("HM", DIGITS + "A", *(DIGITS + FILLER,) * 7),
    "CT": (DIGITS, *(DIGITS + FILLER,) * 8),
}
"""What each cell of the document number field (line 1, positions 6-14) of a
CR / CT zone may hold, from the numbers' confirmed shapes (numbers.py): for
readers, which may take a letter there for the digit it looks like. The
parser itself checks the whole number (``invalid_number_format``)."""


def _number_problems(number: str, kind: str) -> list[Problem]:
    # The Home Return and Taiwan compatriot permits' numbers have confirmed
    # shapes (numbers.py), whatever the zone's layout: a zone whose number does
    # not fit (letters read for digits, by OCR or by hand) names no such permit.
    if kind in (HOME_RETURN_PERMIT, TW_COMPATRIOT_PERMIT):
        shape = number_shape_problem(number, kind)
        return [] if shape is None else [shape]
    # Of the card numbers only the CS number's shape is confirmed (C +
    # letter/digit + 7 digits).
    if kind != HK_MO_EXIT_ENTRY_PERMIT:
        return []
    if not exit_entry_number_ok(number, kind):
        return [
            problem(
                "invalid_number_format",
                "document_number",
                "The document number is not C + 8 digits or C + a letter + 7 digits.",
                "证件号码不是 C 加 8 位数字或 C 加 1 个字母和 7 位数字。",
            )
        ]
    return series_problems(number, kind)


def _number_from_field(field: str, kind: str) -> str:
    number = field.rstrip("<")
    if not number or "<" in number:
        raise _malformed(
            kind,
            "the document number field is empty or has a filler inside it.",
            "证件号码字段为空或中间含有填充符。",
            reason="document_number",
        )
    return number


def _card_line(kind: str, code: str, line: str, raw: str, today: dt.date) -> Document:
    if any(line[column] != "<" for _, column in CARD.fillers):
        raise _malformed(
            kind,
            "positions 13, 21 and 29 must be the filler '<'.",
            "第 13、21、29 位应为填充符“<”。",
            reason="layout",
        )
    lines = [line]
    problems = _check_problems(CARD, lines)
    number = _number_from_field(CARD.read(lines, "document_number"), kind)
    problems.extend(_number_problems(number, kind))
    birth_date, expiry_date = _dates(CARD, lines, today, problems)
    return _document(
        kind,
        code,
        number,
        raw,
        problems,
        extra={"mrz_layout": "card_line"},
        birth_date=birth_date,
        expiry_date=expiry_date,
    )


def _document(
    kind: str, code: str, number: str, raw: str, problems: list[Problem], **fields: Any
) -> Document:
    """A permit read from its MRZ; ``fields``: what the layout holds."""
    return permit_document(
        kind, number, source="mrz", raw=raw, problems=problems, document_code=code, **fields
    )


def _td1_number(lines: Sequence[str]) -> tuple[str, str, int]:
    """The number field's data, its check digit and the check's column.

    ICAO 9303-5: a number longer than 9 characters continues in the optional
    data, its check digit last, and '<' stands in the check position.
    """
    field = PERMIT_TD1.field("document_number")
    optional = PERMIT_TD1.field("optional_data")
    data, check = field.read(lines), field.read_check(lines)
    rest = optional.read(lines)
    if check == "<" and rest[0] != "<":
        overflow = rest.split("<", 1)[0]
        return data + overflow[:-1], overflow[-1], optional.start + len(overflow) - 1
    assert field.check is not None
    return data, check, field.check


def _td1(kind: str, code: str, lines: list[str], raw: str, today: dt.date) -> Document:
    layout = PERMIT_TD1
    field, check, start = _td1_number(lines)
    problems: list[Problem] = []
    number_problem = check_digit_problem("document_number", field, check, start=start)
    if number_problem is not None:
        problems.append(number_problem)
    problems.extend(_check_problems(layout, lines, skip="document_number"))
    number = _number_from_field(field, kind)
    problems.extend(_number_problems(number, kind))
    birth_date, expiry_date = _dates(layout, lines, today, problems)
    surname, _, given = layout.read(lines, "name").partition("<<")
    extra: dict[str, Any] = {"mrz_layout": "td1"}
    if kind == HOME_RETURN_PERMIT and number[:1] in ("H", "M"):
        extra["region"] = "HK" if number[0] == "H" else "MO"
    nationality = layout.read(lines, "nationality").rstrip("<")
    return _document(
        kind,
        code,
        number,
        raw,
        problems,
        surname=" ".join(surname.replace("<", " ").split()) or None,
        given_names=" ".join(given.replace("<", " ").split()) or None,
        nationality=nationality or None,
        birth_date=birth_date,
        sex=_SEX.get(layout.read(lines, "sex")),
        expiry_date=expiry_date,
        extra=extra,
    )
