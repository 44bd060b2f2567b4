"""Constrained decoding of the fields no check digit covers.

The document code, the issuing state, the nationality and the sex carry no
check digit, so a misread letter there (``NLO`` for ``NLD``, ``SI<`` for
``SVN``) passes every check and still makes a wrong document. What these
fields may hold is known, though:

* the states: an ICAO 9303 code (ISO 3166-1 alpha-3 plus ICAO's own: ``D``,
  ``GBD``..., ``UNO``, ``XXA``...; the table of the passport plugin);
* the sex: ``M``, ``F``, ``X`` or ``<`` (the permits also ``1`` and ``2``);
* the document code's first letter: what the layout allows (``P`` on a
  passport, ``A``/``C``/``I`` on TD1 and TD2 cards);
* the document number of a CR / CT permit: covered by a check digit, but two
  letters read for digits may keep its sum (``O``, ``S``, ``B`` for ``0``,
  ``5``, ``8``); these numbers are digits after their letter (the permit
  plugin's ``TD1_NUMBER_CELLS``), so a letter there is the digit it looks like.

A field whose reading is not one of its values takes the nearest value that
is, by OCR-confusion costs (``0``/``O``/``D``/``Q``, ``1``/``I``/``L``,
``5``/``S``, ``8``/``B``, ``2``/``Z``, ``K``/``<``...: one unit; any other
substitution: three), and only when that value is clearly nearer than the
next one. The issuing state and the nationality are evidence for each other:
most documents carry the same code in both, so a state that is no code takes
the other field's code when it differs from it in at most two positions.

A field that reads as a valid value is never changed, and every change is a
note ``constrained:<field>:line<n>:col<m>`` that core reports as a warning
(``notices.repair_problems``). Nothing here logs a character of the zone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from healthcode.core import mrz
from healthcode.core.mrz import FILLER, MRZLayout
from healthcode.plugins.mrz_ocr.layouts import set_char

CostFn = Callable[[int, int, str], float]
"""Cost of ``char`` being the true character at (line, column) of a reading."""

LOOKALIKE: Final = 1.0
OTHER: Final = 3.0
_LOOKALIKE_PAIRS: Final = (
    "0O", "0D", "0Q", "OD", "OQ", "DQ", "OC", "CG", "G6", "OU", "UV", "VY",
    "1I", "1L", "IL", "IT", "1T", "IJ", "5S", "8B", "2Z", "4A", "7T",
    "EF", "FP", "PR", "BR", "MN", "NH", "HM", "KX", "XY",
    "K<", "C<", "L<", "E<",
)  # fmt: skip
"""OCR-B characters engines take for one another (ICAO 9303 part 3 notes most)."""

_MAX_COST: Final = 2.0 * LOOKALIKE
"""A value further than two look-alike slips from the reading is not taken."""
_MARGIN: Final = 1.0
"""The nearest value must be this much nearer than the next one."""
_AGREEING_POSITIONS: Final = 1
"""State from the other state field: at least this many positions already agree."""


@functools.cache
def _lookalikes() -> frozenset[tuple[str, str]]:
    return frozenset((a, b) for a, b in _LOOKALIKE_PAIRS) | frozenset(
        (b, a) for a, b in _LOOKALIKE_PAIRS
    )


def confusion_cost(seen: str, true: str) -> float:
    """Cost of an engine reading ``seen`` where ``true`` is printed."""
    if seen == true:
        return 0.0
    return LOOKALIKE if (seen, true) in _lookalikes() else OTHER


def reading_costs(lines: Sequence[str]) -> CostFn:
    """Confusion costs against what was read (the tesseract path)."""

    def cost(line: int, col: int, char: str) -> float:
        return confusion_cost(lines[line][col], char)

    return cost


@functools.cache
def state_codes() -> frozenset[str]:
    """Every ICAO 9303 state code, padded with fillers to three characters."""
    # The code table lives with the passport plugin, which parses these fields.
    from healthcode.plugins.passport.countries import ICAO_CODES

    return frozenset(code.ljust(3, FILLER) for code in ICAO_CODES)


@functools.cache
def _permit_number_cells() -> Mapping[str, tuple[str, ...]]:
    # The numbers' shapes live with the permit plugin, which parses them.
    from healthcode.plugins.hkmo_permit.machine_zone import TD1_NUMBER_CELLS

    return TD1_NUMBER_CELLS


def number_cells(lines: Sequence[str]) -> dict[tuple[int, int], str]:
    """What each cell of the document number may hold where the document's
    numbers have a known shape (the CR / CT permits: digits after the letter),
    by (line, column); empty for every other zone."""
    if mrz.layout_for(lines) is not mrz.TD1:
        return {}
    cells = _permit_number_cells().get(lines[0][:2])
    if cells is None:
        return {}
    field = mrz.PERMIT_TD1.field("document_number")
    return {(field.line, field.start + i): alphabet for i, alphabet in enumerate(cells)}


def constrain_number(fixed: list[str], costs: CostFn, notes: list[str]) -> None:
    """A character a number's shape excludes takes the nearest it allows (a
    letter read for the digit it looks like), when clearly nearest. The
    number's check digit still has to hold: the note is ``number_digit``, a
    repair the check digits confirm (``notices``)."""
    for (line, col), alphabet in number_cells(fixed).items():
        if fixed[line][col] in alphabet:
            continue
        choice = _nearest([(char,) for char in alphabet], [(line, col)], costs)
        if choice is not None:
            set_char(fixed, line, col, choice[0])
            notes.append(f"number_digit:line{line + 1}:col{col + 1}")


def constrain(lines: Sequence[str], cost: CostFn | None = None) -> tuple[list[str], list[str]]:
    """``lines`` with the fields no check digit covers set to the nearest
    value they may hold (see the module doc); returns (lines, notes)."""
    layout = _layout(lines)
    fixed = list(lines)
    notes: list[str] = []
    if layout is None:
        return fixed, notes
    costs = cost or reading_costs(lines)
    _constrain_document_code(fixed, layout, costs, notes)
    constrain_number(fixed, costs, notes)
    if layout.has("issuing_state") and layout.has("nationality"):
        _constrain_states(fixed, layout, costs, notes)
    if layout.has("sex"):
        sex = layout.field("sex")
        _take_nearest(fixed, "sex", (sex.line, sex.start), sex.alphabet, costs, notes)
    return fixed, notes


def _layout(lines: Sequence[str]) -> MRZLayout | None:
    layout = mrz.layout_for(lines)
    if layout is None:
        return None
    return mrz.PERMIT_LAYOUTS.get(lines[0][:2], layout) if layout.lines != 2 else layout


def _constrain_document_code(
    fixed: list[str], layout: MRZLayout, costs: CostFn, notes: list[str]
) -> None:
    """The code's first letter among those the layout allows (``P`` for TD3)."""
    firsts = "".join(sorted({code[0] for code in layout.document_codes}))
    if len(firsts) == 1:
        # Only one letter fits the shape (``V`` is told apart before): any other is a misread.
        if fixed[0][0] != firsts:
            _set(fixed, "document_code", (0, 0), firsts, notes)
        return
    _take_nearest(fixed, "document_code", (0, 0), firsts, costs, notes)


def _take_nearest(
    fixed: list[str],
    name: str,
    where: tuple[int, int],
    alphabet: str,
    costs: CostFn,
    notes: list[str],
) -> None:
    line, col = where
    if fixed[line][col] in alphabet:
        return
    choice = _nearest([(char,) for char in alphabet], [where], costs)
    if choice is not None:
        _set(fixed, name, where, choice[0], notes)


def _nearest(
    values: Sequence[Sequence[str]], places: Sequence[tuple[int, int]], costs: CostFn
) -> Sequence[str] | None:
    """The value nearest to the reading at ``places``, when it is near enough
    and clearly nearer than the next one."""
    scored = sorted(
        (sum(costs(line, col, char) for (line, col), char in zip(places, value, strict=True)), i)
        for i, value in enumerate(values)
    )
    if not scored or scored[0][0] > _MAX_COST:
        return None
    if len(scored) > 1 and scored[1][0] - scored[0][0] < _MARGIN:
        return None
    return values[scored[0][1]]


def _constrain_states(fixed: list[str], layout: MRZLayout, costs: CostFn, notes: list[str]) -> None:
    codes = state_codes()
    fields = [layout.field("issuing_state"), layout.field("nationality")]
    texts = [field.read(fixed) for field in fields]
    valid = [text in codes or text == FILLER * 3 for text in texts]
    for index, field in enumerate(fields):
        if valid[index]:
            continue
        places = [(field.line, col) for col in range(field.start, field.end)]
        other = texts[1 - index]
        if valid[1 - index] and _agrees(texts[index], other):
            value: Sequence[str] | None = other
        else:
            value = _nearest(sorted(codes), places, costs)
        if value is None:
            continue
        for (line, col), char in zip(places, value, strict=True):
            if fixed[line][col] != char:
                _set(fixed, field.name, (line, col), char, notes)
        texts[index] = field.read(fixed)


def _agrees(text: str, other: str) -> bool:
    """Whether ``text`` is ``other`` with at most two positions misread."""
    same = sum(a == b for a, b in zip(text, other, strict=True))
    return same >= _AGREEING_POSITIONS and same >= len(text) - 2


def _set(fixed: list[str], name: str, where: tuple[int, int], char: str, notes: list[str]) -> None:
    line, col = where
    set_char(fixed, line, col, char)
    notes.append(f"constrained:{name}:line{line + 1}:col{col + 1}")


def implausible(lines: Sequence[str]) -> bool:
    """Whether a reading cannot be a document even with its check digits
    holding: a document code opening with a filler, or a state that is no
    ICAO code (letters read as chevrons, a garbled line)."""
    layout = _layout(lines)
    if layout is None:
        return False
    if lines[0][0] == FILLER:
        return True
    if any(lines[line][col] not in allowed for (line, col), allowed in number_cells(lines).items()):
        return True
    codes = state_codes()
    for name in ("issuing_state", "nationality"):
        if layout.has(name):
            text = layout.read(lines, name)
            if text not in codes and text != FILLER * 3:
                return True
    return False
