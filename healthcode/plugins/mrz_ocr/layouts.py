"""What the reader takes from the MRZ layout table (``healthcode.core.mrz``):
the line shapes, which fields a check digit covers, and which fields hold
letters only.

The reader uses this to pick each position's alphabet and to accept a change
only where a check digit confirms it; parsing the text into a document is the
document plugins' job. No position is written here: every span comes from
the shared table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import attrs
from attrs import frozen

from healthcode.core import mrz
from healthcode.core.checkdigits import icao_check_digit
from healthcode.core.mrz import ALPHA, FILLER, MRZ_ALPHABET, CheckDigit, MRZLayout, Position, Span

__all__ = [
    "LAYOUT_SPECS",
    "LINE_LENGTHS",
    "MRZ_ALPHABET",
    "CheckDigit",
    "LayoutSpec",
    "Position",
    "Span",
    "checked_positions",
    "covered_by_own_checks",
    "failing_checks",
    "fields_to_repair",
    "holds",
    "layout_for",
    "malformed",
    "positions",
    "set_char",
]

LINE_LENGTHS: Final = tuple(sorted({layout.width for layout in mrz.LAYOUTS.values()}))
"""Characters per line of every layout (30, 36, 44): a line of another length is no MRZ line."""

_NOTE_NAMES: Final = {"document_number": "number", "optional_data": "optional"}
"""The short names the reader's notes give these checks (``check_failed:number``)."""


@frozen
class LayoutSpec:
    """One layout of the table as the reader uses it."""

    name: str
    shape: tuple[int, int]
    checked: tuple[CheckDigit, ...]
    """Every check digit, the fields' own in reading order, then the composite."""
    letters: tuple[Span, ...]
    """Fields that hold letters and fillers only (document code, states), names aside."""
    names: tuple[Span, ...]
    sex: Position | None
    """Where the sex is (the reader allows any letter or a filler there)."""


def _spec(layout: MRZLayout) -> LayoutSpec:
    return LayoutSpec(
        name=layout.name,
        shape=layout.shape,
        checked=tuple(
            attrs.evolve(check, name=_NOTE_NAMES.get(check.name, check.name))
            for check in layout.checks
        ),
        letters=tuple(f.span for f in layout.fields if f.alphabet == ALPHA and f.name != "name"),
        names=tuple(f.span for f in layout.fields if f.name == "name"),
        sex=(layout.field("sex").line, layout.field("sex").start) if layout.has("sex") else None,
    )


LAYOUT_SPECS: Final[Mapping[str, LayoutSpec]] = {
    name: _spec(layout) for name, layout in mrz.LAYOUTS.items()
}


def layout_for(lines: Sequence[str]) -> LayoutSpec | None:
    """The layout of a reading from its shape (and ``V`` for visas)."""
    layout = mrz.layout_for(lines)
    return None if layout is None else LAYOUT_SPECS[layout.name]


def holds(lines: Sequence[str], field: CheckDigit) -> bool:
    """Whether ``field``'s check digit covers its data in ``lines``."""
    data = field.data(lines)
    check = field.found(lines)
    if any(c not in MRZ_ALPHABET for c in data):
        return False
    if field.name == "number" and check == FILLER and data.isalnum():
        # Long-number convention: the check digit is in the optional data,
        # covered by the composite check.
        return True
    if check == FILLER:
        return field.may_be_filler and not data.strip(FILLER)
    return check.isdigit() and icao_check_digit(data) == check


def failing_checks(lines: Sequence[str], spec: LayoutSpec) -> list[str]:
    return [field.name for field in spec.checked if not holds(lines, field)]


def set_char(lines: list[str], line: int, column: int, char: str) -> None:
    text = lines[line]
    lines[line] = text[:column] + char + text[column + 1 :]


def positions(field: CheckDigit) -> list[Position]:
    """The (line, column) of every data position of ``field`` (not its check digit)."""
    return [(line, col) for line, start, end in field.spans for col in range(start, end)]


def checked_positions(field: CheckDigit) -> list[Position]:
    """The data positions of ``field`` and its check digit."""
    return [*positions(field), field.position]


def covered_by_own_checks(spec: LayoutSpec) -> set[Position]:
    """Positions (and check digits) of the fields other than the composite:
    the composite check does not change them, their own checks do."""
    return {
        pos
        for field in spec.checked
        if field.name != "composite"
        for pos in checked_positions(field)
    }


def fields_to_repair(spec: LayoutSpec) -> list[tuple[CheckDigit, list[Position]]]:
    """The check-digit fields in the order a repair takes them, the composite
    last (it covers the others, which their own checks repair), each with the
    positions a repair may change: the field's data and check digit, and for
    the composite only those no other check covers."""
    covered = covered_by_own_checks(spec)
    ordered = sorted(spec.checked, key=lambda field: field.name == "composite")
    return [
        (
            field,
            [pos for pos in checked_positions(field) if pos not in covered]
            if field.name == "composite"
            else checked_positions(field),
        )
        for field in ordered
    ]


def malformed(lines: Sequence[str], spec: LayoutSpec) -> bool:
    """Whether the document number has a filler before other characters: numbers
    are left-aligned (ICAO 9303 part 3, 4.2.2), so a reading with one (letters
    taken for chevrons) is wrong even when its check digits hold by chance."""
    for field in spec.checked:
        if field.name == "number":
            data = field.data(lines)
            if FILLER in data.rstrip(FILLER):
                return True
    return False
