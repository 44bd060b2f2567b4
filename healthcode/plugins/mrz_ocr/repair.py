"""Repairs the check digits confirm, on a zone read by tesseract.

Letters read in numeric fields (``O``/``0``, ``I``/``1``, ``B``/``8``,
``S``/``5``, ``Z``/``2``) and the same pairs in alphanumeric check-covered
fields are changed only when the field's check digit then holds (and, for
several possible changes, only one does). Letters-only fields (document code,
states, names) take the letter for a digit; a lone ``K``, ``X`` or ``S`` in a
name's filler tail becomes ``<``. Nothing check-covered is changed otherwise.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Final

from healthcode.core.models import MachineZoneCandidate
from healthcode.plugins.mrz_ocr.constrain import (
    constrain,
    constrain_number,
    implausible,
    reading_costs,
)
from healthcode.plugins.mrz_ocr.layouts import (
    CheckDigit,
    LayoutSpec,
    Position,
    Span,
    failing_checks,
    fields_to_repair,
    holds,
    layout_for,
    malformed,
    set_char,
)

Change = tuple[int, int, str]
"""(line, column, new character)."""

# Confusions OCR makes between OCR-B letters and digits (ICAO 9303 part 3 notes
# the same pairs); used only where a check digit confirms, or for letter-only fields.
_TO_DIGIT: Final = {
    "O": "0",
    "Q": "0",
    "D": "0",
    "I": "1",
    "L": "1",
    "Z": "2",
    "S": "5",
    "B": "8",
    "G": "6",
}
_TO_LETTER: Final = {"0": "O", "1": "I", "2": "Z", "5": "S", "8": "B", "6": "G", "4": "A"}
_SWAP: Final = {
    "O": "0",
    "0": "O",
    "I": "1",
    "1": "I",
    "B": "8",
    "8": "B",
    "S": "5",
    "5": "S",
    "Z": "2",
    "2": "Z",
}
_FILLER_LOOKALIKES: Final = frozenset("KXSCEL")
_MAX_SWAPS: Final = 3
"""At most 2**3 variants of one field are tried: more would "confirm" noise."""
_UNSURE: Final = 0.93
"""Engine confidence under which a look-alike character may be swapped."""


def variants_that_hold(
    lines: Sequence[str], field: CheckDigit, forced: Sequence[Change], optional: Sequence[Change]
) -> list[list[Change]]:
    """Every set of changes (all of ``forced``, any of ``optional``, at least
    one change) after which ``field``'s check digit holds."""
    solutions = []
    for mask in itertools.product((False, True), repeat=len(optional)):
        changes = list(forced) + [
            change for flip, change in zip(mask, optional, strict=True) if flip
        ]
        if changes and holds(applied(lines, changes), field):
            solutions.append(changes)
    return solutions


def applied(lines: Sequence[str], changes: Sequence[Change]) -> list[str]:
    """``lines`` with ``changes`` made."""
    changed = list(lines)
    for line, col, char in changes:
        set_char(changed, line, col, char)
    return changed


def repair(
    lines: Sequence[str],
    spec: LayoutSpec,
    confidences: Sequence[Sequence[float]] | None = None,
) -> tuple[list[str], list[str], bool]:
    """Letters-only fields take letters, names lose lone filler look-alikes, and
    check-covered fields take a changed character only where their check digit
    confirms it. Returns (lines, notes, ambiguous)."""
    fixed = list(lines)
    notes: list[str] = []
    _letters_for_digits(fixed, spec.letters, "letter_field", notes)
    # Before the check digits: they are then checked over digits.
    constrain_number(fixed, reading_costs(lines), notes)
    for span in spec.names:
        _letters_for_digits(fixed, (span,), "name_digit", notes)
        _fillers_in_name_tail(fixed, span, notes)
    ambiguous = False
    for field, places in fields_to_repair(spec):
        if holds(fixed, field):
            continue
        changes = _confirmed_variants(fixed, field, places, confidences)
        if changes is None:
            ambiguous = True
            continue
        for line, col, char in changes:
            set_char(fixed, line, col, char)
            notes.append(f"check_confirmed:{field.name}:line{line + 1}:col{col + 1}")
    return fixed, notes, ambiguous


def _letters_for_digits(
    fixed: list[str], spans: Sequence[Span], note: str, notes: list[str]
) -> None:
    """A digit read in a letters-only field is the letter it looks like."""
    for line, start, end in spans:
        for col in range(start, end):
            char = fixed[line][col]
            if char in _TO_LETTER:
                set_char(fixed, line, col, _TO_LETTER[char])
                notes.append(f"{note}:line{line + 1}:col{col + 1}")


def _fillers_in_name_tail(fixed: list[str], span: Span, notes: list[str]) -> None:
    """In a name's filler tail (after '<<<'), a lone K/X/S/... is a misread '<':
    after '<<<' only padding may follow (ICAO 9303 part 3, 4.6)."""
    line, start, end = span
    tail = fixed[line][start:end].find("<<<")
    if tail < 0:
        return
    for col in range(start + tail, end):
        if fixed[line][col] in _FILLER_LOOKALIKES:
            set_char(fixed, line, col, "<")
            notes.append(f"name_filler:line{line + 1}:col{col + 1}")


def _confirmed_variants(
    lines: Sequence[str],
    field: CheckDigit,
    places: Sequence[Position],
    confidences: Sequence[Sequence[float]] | None,
) -> list[Change] | None:
    """The one set of changes after which ``field``'s check holds, or None.

    Letters in numeric positions (dates, check digits) can only be digits and
    are always mapped. Look-alike pairs in alphanumeric positions are tried
    only where the engine was unsure (at most 3 positions, the least sure
    first), so that a mod-10 check is not "confirmed" by trying many variants;
    and only a unique solution is accepted. Only ``places`` may change
    (``fields_to_repair``: the composite leaves the other fields alone)."""
    forced: list[Change] = []
    free: list[tuple[float, int, int]] = []
    for line, col in places:
        char = lines[line][col]
        if field.numeric or (line, col) == field.position:
            if char in _TO_DIGIT:
                forced.append((line, col, _TO_DIGIT[char]))
        elif char in _SWAP:
            sure = confidences[line][col] if confidences is not None else 0.0
            if sure < _UNSURE:
                free.append((sure, line, col))
    free.sort()
    if confidences is None and len(free) > _MAX_SWAPS:
        return None
    optional = [(line, col, _SWAP[lines[line][col]]) for _sure, line, col in free[:_MAX_SWAPS]]
    solutions = variants_that_hold(lines, field, forced, optional)
    return solutions[0] if len(solutions) == 1 else None


def _unknown_cells(spec: LayoutSpec, confidences: Sequence[Sequence[float]] | None) -> bool:
    """Whether a cell outside the names was seen empty by the engine (confidence 0)."""
    if confidences is None:
        return False
    names = {(line, col) for line, start, end in spec.names for col in range(start, end)}
    return any(
        sure <= 0.0 and (line, col) not in names
        for line, row in enumerate(confidences)
        for col, sure in enumerate(row)
    )


def candidates_from_lines(
    lines: Sequence[str],
    confidence: float,
    notes: Sequence[str],
    confidences: Sequence[Sequence[float]] | None = None,
) -> list[MachineZoneCandidate]:
    """The repaired reading first (when repairs were confirmed), then the raw one."""
    spec = layout_for(lines)
    if spec is None:
        return [MachineZoneCandidate("\n".join(lines), tuple(notes), False, confidence * 0.3)]
    fixed, repairs, ambiguous = repair(lines, spec, confidences)
    fixed, constrained = constrain(fixed)
    repairs += constrained
    failing = failing_checks(fixed, spec)
    if malformed(fixed, spec) or implausible(fixed):
        failing.append("malformed")
    if _unknown_cells(spec, confidences):
        # A cell the engine saw nothing in, read as a filler: check digits
        # that hold over it hold by chance (1 in 10), so they prove nothing.
        failing.append("unknown_cells")
    extra = [f"layout:{spec.name}"] + ([f"check_failed:{name}" for name in failing])
    if ambiguous:
        extra.append("ambiguous_repair")
    penalty = 0.5 if failing else (0.8 if ambiguous else 1.0)
    penalty *= 0.98 ** len(repairs)
    found = [
        MachineZoneCandidate(
            "\n".join(fixed), tuple(notes) + tuple(extra) + tuple(repairs), not failing,
            round(confidence * penalty, 4),
        )
    ]  # fmt: skip
    if list(fixed) != list(lines):
        raw_failing = failing_checks(lines, spec) + failing[-1:] * ("unknown_cells" in failing)
        raw_failing += ["malformed"] * (malformed(lines, spec) or implausible(lines))
        found.append(
            MachineZoneCandidate(
                "\n".join(lines),
                (*tuple(notes), f"layout:{spec.name}", "unrepaired"),
                not raw_failing,
                round(confidence * (0.5 if raw_failing else 1.0), 4),
            )
        )
    return found
