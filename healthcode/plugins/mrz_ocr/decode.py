"""Text from the template reader's per-cell glyph scores.

Each cell takes the best glyph its field allows (digits in dates, letters or
``<`` in names and codes); a failing check digit may take a close runner-up
only when exactly one variant makes it hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from attrs import frozen

from healthcode.core.mrz import ALPHA, DIGITS, FILLER
from healthcode.plugins.mrz_ocr.constrain import (
    LOOKALIKE,
    OTHER,
    CostFn,
    constrain,
    number_cells,
)
from healthcode.plugins.mrz_ocr.glyphs import ALPHABET
from healthcode.plugins.mrz_ocr.layouts import (
    CheckDigit,
    LayoutSpec,
    failing_checks,
    fields_to_repair,
    holds,
    layout_for,
    positions,
)
from healthcode.plugins.mrz_ocr.repair import Change, applied, variants_that_hold

_DIGITS: Final = frozenset(DIGITS)
_LETTERS_OR_FILLER: Final = frozenset(ALPHA)
_NEAR: Final = 0.1
"""A glyph scoring within this of a cell's best is a plausible alternative reading."""
_MAX_ALTERNATIVES: Final = 4
"""At most 2**4 variants of one field are tried against its check digit."""

_Ranked = dict[tuple[int, int], list[tuple[float, str]]]
"""Per position, the (score, glyph) its field allows, best first."""


def allowed_characters(
    spec: LayoutSpec, lines: Sequence[str] = ()
) -> dict[tuple[int, int], frozenset[str]]:
    """What each constrained position may hold: digits in dates, digits or a
    filler in check digits, letters or fillers in codes, states, sex and names;
    and in the number of a document whose numbers have a known shape (read
    from ``lines``' document code), what that shape allows."""
    allowed: dict[tuple[int, int], frozenset[str]] = {
        where: frozenset(alphabet) for where, alphabet in number_cells(lines).items()
    }
    for line, start, end in (*spec.letters, *spec.names):
        for col in range(start, end):
            allowed[(line, col)] = _LETTERS_OR_FILLER
    if spec.sex is not None:
        allowed[spec.sex] = _LETTERS_OR_FILLER
    for field in spec.checked:
        if field.numeric:
            for position in positions(field):
                allowed[position] = _DIGITS
        allowed[field.position] = _DIGITS | {FILLER}
    return allowed


@frozen
class TemplateReading:
    lines: tuple[str, ...]
    notes: tuple[str, ...]
    checks_passed: bool
    confidence: float
    ambiguous: bool


def decode_scores(scores: Sequence[Any]) -> TemplateReading | None:
    """Text from per-cell glyph scores: each cell's best glyph in its field's
    alphabet; where a check digit fails, the field's least certain cells take
    their next-best glyph only if exactly one such variant makes the check hold."""
    import numpy as np

    if not scores:
        return None
    raw = ["".join(ALPHABET[int(i)] for i in s.argmax(axis=1)) for s in scores]
    spec = layout_for(raw)
    if spec is None:
        return None
    lines, ranked, best_scores = _best_allowed(scores, spec, raw)
    notes = [f"layout:{spec.name}", "reader:templates"]
    lines = _name_tail_fillers(lines, ranked, spec, notes)
    ambiguous = False
    for field, places in fields_to_repair(spec):
        if holds(lines, field):
            continue
        solutions = variants_that_hold(lines, field, (), _runner_ups(ranked, places))
        if len(solutions) == 1:
            trial = applied(lines, solutions[0])
            notes.extend(_changed(field, lines, trial))
            lines = trial
        elif solutions:
            ambiguous = True
    lines, constrained = constrain(lines, _score_costs(ranked))
    notes.extend(constrained)
    failing = failing_checks(lines, spec)
    notes.extend(f"check_failed:{name}" for name in failing)
    return TemplateReading(
        tuple(lines),
        tuple(notes),
        not failing,
        round(float(np.mean(best_scores)), 4),
        ambiguous,
    )


_TAIL_FILLER_NEAR: Final = 0.15
"""In a name's filler tail a filler scoring within this of the best glyph is taken."""


def _name_tail_fillers(
    lines: list[str], ranked: _Ranked, spec: LayoutSpec, notes: list[str]
) -> list[str]:
    """After '<<<' a name holds only padding (ICAO 9303 part 3, 4.6): a cell
    there whose filler scores near its best glyph is a filler (the last cells
    of a line are the ones a slightly wrong pitch shifts most)."""
    fixed = list(lines)
    for line, start, end in spec.names:
        tail = fixed[line][start:end].find(FILLER * 3)
        if tail < 0:
            continue
        for col in range(start + tail, end):
            if fixed[line][col] == FILLER:
                continue
            options = ranked[(line, col)]
            filler = next((score for score, glyph in options if glyph == FILLER), None)
            if filler is not None and options[0][0] - filler <= _TAIL_FILLER_NEAR:
                fixed[line] = fixed[line][:col] + FILLER + fixed[line][col + 1 :]
                notes.append(f"name_filler:line{line + 1}:col{col + 1}")
    return fixed


def _best_allowed(
    scores: Sequence[Any], spec: LayoutSpec, raw: Sequence[str]
) -> tuple[list[str], _Ranked, list[float]]:
    """Each cell's best glyph among those its position allows (``raw``: each
    cell's best glyph of all, for the document code); the ranking of every
    position; and each cell's best score."""
    index = {char: i for i, char in enumerate(ALPHABET)}
    allowed = allowed_characters(spec, raw)
    ranked: _Ranked = {}
    lines: list[str] = []
    best_scores = []
    for row, cell_scores in enumerate(scores):
        text = []
        for col in range(cell_scores.shape[0]):
            chars = allowed.get((row, col), frozenset(ALPHABET))
            options = sorted(((float(cell_scores[col, index[c]]), c) for c in chars), reverse=True)
            ranked[(row, col)] = options
            text.append(options[0][1])
            best_scores.append(options[0][0])
        lines.append("".join(text))
    return lines, ranked, best_scores


def _runner_ups(ranked: _Ranked, places: Sequence[tuple[int, int]]) -> list[Change]:
    """The runner-up glyph of the least certain cells among ``places`` (at most
    ``_MAX_ALTERNATIVES``, those whose two best glyphs are closest first)."""
    doubtful = []
    for pos in places:
        options = ranked[pos]
        if len(options) > 1 and options[0][0] - options[1][0] < _NEAR:
            doubtful.append((options[0][0] - options[1][0], pos, options[1][1]))
    doubtful.sort()
    return [(row, col, char) for _margin, (row, col), char in doubtful[:_MAX_ALTERNATIVES]]


def _changed(field: CheckDigit, before: Sequence[str], after: Sequence[str]) -> list[str]:
    """A ``check_confirmed`` note for every position where ``after`` differs."""
    return [
        f"check_confirmed:{field.name}:line{row + 1}:col{col + 1}"
        for row, (old, new) in enumerate(zip(before, after, strict=True))
        for col, (a, b) in enumerate(zip(old, new, strict=True))
        if a != b
    ]


_SCORE_UNIT: Final = 0.1
"""A glyph scoring this much under a cell's best costs one look-alike slip."""


def _score_costs(ranked: _Ranked) -> CostFn:
    """Costs from the glyph scores: how far under the cell's best glyph ``char`` scored."""

    def cost(line: int, col: int, char: str) -> float:
        options = ranked[(line, col)]
        for score, glyph in options:
            if glyph == char:
                return min((options[0][0] - score) / _SCORE_UNIT * LOOKALIKE, OTHER)
        return OTHER

    return cost
