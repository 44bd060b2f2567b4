"""ICAO 9303 machine-readable zones: the one table of layouts, and the small
helpers shared by everything that reads an MRZ (the passport and hkmo_permit
parsers, OCR): check-digit findings and two-digit-year dates.

Every field position lives in ``LAYOUTS`` and nowhere else. Positions are
0-based, ``end`` exclusive; problem details add 1 where people read them.

Layouts (ICAO 9303 parts 4 to 7, and the Chinese permit cards)::

    TD3         2 x 44  passports (document code P)
    TD2         2 x 36  official travel documents (A, C, I)
    TD1         3 x 30  identity and travel cards (A, C, I)
    MRV-A       2 x 44  visas (V)
    MRV-B       2 x 36  visas (V)
    PERMIT-TD1  3 x 30  CR / CT permits: TD1 positions, issuing state CHN
    CARD        1 x 30  CS / CD permit card line (see hkmo_permit.machine_zone)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Final

from attrs import frozen

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


# --- layouts ----------------------------------------------------------------------

Span = tuple[int, int, int]
"""(line, start, end) of a run of characters: 0-based, ``end`` exclusive."""
Position = tuple[int, int]
"""(line, column) of one character, 0-based."""

DIGITS: Final = "0123456789"
LETTERS: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MRZ_ALPHABET: Final = DIGITS + LETTERS + FILLER

ALPHA: Final = LETTERS + FILLER
"""Codes, states, nationalities and names."""
NUMERIC: Final = DIGITS
"""Dates. A birth date may still hold ``<<`` for unknown parts (ICAO 9303
part 3, 4.8); the parsers read that as a finding, not as a misread."""
ALPHANUMERIC: Final = MRZ_ALPHABET
"""Document numbers and optional data."""
SEX: Final = "MFX" + FILLER
"""ICAO sex codes; ``<`` is unspecified."""
PERMIT_SEX: Final = SEX + "12"
"""CR / CT permits may code sex per GB/T 2261.1 (1 male, 2 female)."""


@frozen
class MRZField:
    """One field of a layout, on one line."""

    name: str
    """The ``Document`` / ``Problem`` field name (``document_number``, ``birth_date``...)."""
    line: int
    start: int
    end: int
    """Exclusive."""
    alphabet: str
    """The characters the layout allows in this field."""
    check: int | None = None
    """Column, on the same line, of the check digit over this field."""
    may_be_filler: bool = False
    """ICAO allows ``<`` as the check digit when the field is all filler."""

    @property
    def span(self) -> Span:
        return (self.line, self.start, self.end)

    @property
    def check_position(self) -> Position | None:
        return None if self.check is None else (self.line, self.check)

    def read(self, lines: Sequence[str]) -> str:
        """The field's characters in ``lines``."""
        return lines[self.line][self.start : self.end]

    def read_check(self, lines: Sequence[str]) -> str:
        """The field's check digit in ``lines`` (the field must have one)."""
        assert self.check is not None, f"{self.name} has no check digit"
        return lines[self.line][self.check]


@frozen
class CheckDigit:
    """What one check digit covers, and where it stands."""

    name: str
    """The field it checks, or ``composite``."""
    spans: tuple[Span, ...]
    position: Position
    numeric: bool = False
    """Every covered position must be a digit (dates)."""
    may_be_filler: bool = False

    def data(self, lines: Sequence[str]) -> str:
        """The covered characters, in order."""
        return "".join(lines[line][start:end] for line, start, end in self.spans)

    def found(self, lines: Sequence[str]) -> str:
        """The check character in ``lines``."""
        return lines[self.position[0]][self.position[1]]


@frozen
class MRZLayout:
    """The positions of every field of one MRZ layout."""

    name: str
    lines: int
    width: int
    document_codes: tuple[str, ...]
    """What the document code may start with (``P``; ``A``, ``C``, ``I``; ``CS``...)."""
    fields: tuple[MRZField, ...]
    """In reading order: line by line, left to right."""
    composite: CheckDigit | None = None
    fillers: tuple[Position, ...] = ()
    """Positions that must hold ``<`` (the permit card line)."""
    long_numbers: bool = False
    """Whether ICAO's convention for numbers over 9 characters applies: ``<`` in
    the number's check position, the rest of the number and its check digit
    opening the optional data (ICAO 9303 part 5, 4.2.4 note j)."""

    @property
    def shape(self) -> tuple[int, int]:
        """(lines, characters per line)."""
        return (self.lines, self.width)

    def has(self, name: str) -> bool:
        return any(field.name == name for field in self.fields)

    def field(self, name: str) -> MRZField:
        """The field called ``name``; ``KeyError`` when the layout has none."""
        for field in self.fields:
            if field.name == name:
                return field
        raise KeyError(f"{self.name} has no field {name!r}")

    def read(self, lines: Sequence[str], name: str) -> str:
        """The characters of field ``name`` in ``lines``."""
        return self.field(name).read(lines)

    @property
    def checks(self) -> tuple[CheckDigit, ...]:
        """Every check digit: the fields' own, in reading order, then the composite."""
        own = tuple(
            CheckDigit(
                field.name,
                (field.span,),
                (field.line, field.check),
                numeric=field.alphabet == NUMERIC,
                may_be_filler=field.may_be_filler,
            )
            for field in self.fields
            if field.check is not None
        )
        return own if self.composite is None else (*own, self.composite)


def _two_line(
    name: str, width: int, codes: tuple[str, ...], *, optional_check: bool, composite: bool
) -> MRZLayout:
    """TD3, TD2 and the MRVs: line 1 code, state, name; line 2 the rest."""
    optional_end = width - 2 if optional_check else (width - 1 if composite else width)
    return MRZLayout(
        name=name,
        lines=2,
        width=width,
        document_codes=codes,
        fields=(
            MRZField("document_code", 0, 0, 2, ALPHA),
            MRZField("issuing_state", 0, 2, 5, ALPHA),
            MRZField("name", 0, 5, width, ALPHA),
            MRZField("document_number", 1, 0, 9, ALPHANUMERIC, check=9),
            MRZField("nationality", 1, 10, 13, ALPHA),
            MRZField("birth_date", 1, 13, 19, NUMERIC, check=19),
            MRZField("sex", 1, 20, 21, SEX),
            MRZField("expiry_date", 1, 21, 27, NUMERIC, check=27),
            MRZField(
                "optional_data",
                1,
                28,
                optional_end,
                ALPHANUMERIC,
                check=width - 2 if optional_check else None,
                may_be_filler=optional_check,
            ),
        ),
        composite=(
            CheckDigit("composite", ((1, 0, 10), (1, 13, 20), (1, 21, width - 1)), (1, width - 1))
            if composite
            else None
        ),
        long_numbers=composite,  # the ICAO documents, not the visas
    )


def _td1(name: str, codes: tuple[str, ...], sex: str) -> MRZLayout:
    return MRZLayout(
        name=name,
        lines=3,
        width=30,
        document_codes=codes,
        fields=(
            MRZField("document_code", 0, 0, 2, ALPHA),
            MRZField("issuing_state", 0, 2, 5, ALPHA),
            MRZField("document_number", 0, 5, 14, ALPHANUMERIC, check=14),
            MRZField("optional_data", 0, 15, 30, ALPHANUMERIC),
            MRZField("birth_date", 1, 0, 6, NUMERIC, check=6),
            MRZField("sex", 1, 7, 8, sex),
            MRZField("expiry_date", 1, 8, 14, NUMERIC, check=14),
            MRZField("nationality", 1, 15, 18, ALPHA),
            MRZField("optional_data_2", 1, 18, 29, ALPHANUMERIC),
            MRZField("name", 2, 0, 30, ALPHA),
        ),
        composite=CheckDigit(
            "composite", ((0, 5, 30), (1, 0, 7), (1, 8, 15), (1, 18, 29)), (1, 29)
        ),
        long_numbers=True,
    )


TD3: Final = _two_line("TD3", 44, ("P",), optional_check=True, composite=True)
TD2: Final = _two_line("TD2", 36, ("A", "C", "I"), optional_check=False, composite=True)
MRV_A: Final = _two_line("MRV-A", 44, ("V",), optional_check=False, composite=False)
MRV_B: Final = _two_line("MRV-B", 36, ("V",), optional_check=False, composite=False)
TD1: Final = _td1("TD1", ("A", "C", "I"), SEX)
PERMIT_TD1: Final = _td1("PERMIT-TD1", ("CR", "CT"), PERMIT_SEX)
"""CR / CT: GA/T 704.14 confirms three lines of 30 "per ICAO Doc 9303" with
``CHN`` at 3-5; the other positions are assumed to be TD1's."""
CARD: Final = MRZLayout(
    name="CARD",
    lines=1,
    width=30,
    document_codes=("CS", "CD"),
    fields=(
        MRZField("document_code", 0, 0, 2, ALPHA),
        MRZField("document_number", 0, 2, 11, ALPHANUMERIC, check=11),
        MRZField("expiry_date", 0, 13, 19, NUMERIC, check=19),
        MRZField("birth_date", 0, 21, 27, NUMERIC, check=27),
    ),
    composite=CheckDigit("composite", ((0, 2, 12), (0, 13, 20), (0, 21, 28)), (0, 29)),
    fillers=((0, 12), (0, 20), (0, 28)),
)
"""The CS / CD permit card line (no name, no sex; confirmed positions)."""

LAYOUTS: Final[Mapping[str, MRZLayout]] = {
    layout.name: layout for layout in (TD3, TD2, TD1, MRV_A, MRV_B, PERMIT_TD1, CARD)
}
ICAO_LAYOUTS: Final = (TD3, TD2, TD1, MRV_A, MRV_B)
"""The ICAO 9303 layouts proper (what the passport plugin reads)."""
PERMIT_LAYOUTS: Final[Mapping[str, MRZLayout]] = {
    "CR": PERMIT_TD1,
    "CT": PERMIT_TD1,
    "CS": CARD,
    "CD": CARD,
}
"""Permit document code -> its layout (a CR / CT zone without ``CHN`` may
still be read as a card line; see hkmo_permit.machine_zone)."""


def layout_for(lines: Sequence[str]) -> MRZLayout | None:
    """The layout these lines have, from their shape (and ``V`` for visas).

    Three lines of 30 are ``TD1`` and one line of 30 is ``CARD``, whatever the
    document code; a reader that knows the code refines that itself
    (``PERMIT_LAYOUTS``).
    """
    if not lines or any(len(line) != len(lines[0]) for line in lines):
        return None
    shape = (len(lines), len(lines[0]))
    visa = lines[0][:1] == "V"
    if shape == (2, 44):
        return MRV_A if visa else TD3
    if shape == (2, 36):
        return MRV_B if visa else TD2
    if shape == (3, 30):
        return TD1
    if shape == (1, 30):
        return CARD
    return None
