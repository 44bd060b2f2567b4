"""Engines as each other's evidence: where no single reading's check digits
all hold, the readings of the same zone by the other engines and attempts
(templates, tesseract, PP-OCR) say which characters are in doubt.

The reading with the fewest failing checks is the base. In each failing
field, the positions where another reading has another character are the
only ones changed, to what the other reading saw; a change is kept only when
exactly one combination (at most ``_MAX_DOUBTS`` positions, the most disputed
first) makes the field's check digit hold, or exactly one single change
does. This is the check-digit rule of ``repair`` with disagreement between
independent engines, not one engine's own confidence, marking the doubtful
characters: a font the template reader does not know, or one where ``0``
and ``O`` look alike to tesseract, is read where each engine alone fails.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Final

from healthcode.core.models import MachineZoneCandidate
from healthcode.plugins.mrz_ocr.constrain import constrain, implausible
from healthcode.plugins.mrz_ocr.layouts import (
    LayoutSpec,
    failing_checks,
    fields_to_repair,
    holds,
    layout_for,
    malformed,
)
from healthcode.plugins.mrz_ocr.repair import Change, applied, variants_that_hold

_MAX_DOUBTS: Final = 4
"""At most 2**4 variants of one field are tried against its check digit."""
_MAX_FAILING: Final = 2
"""A base with more failing checks than this is too far gone to repair."""
_FAR: Final = 6
"""A reading differing from the base in over 1/_FAR of its characters is garbled."""


def merged_candidate(candidates: Sequence[MachineZoneCandidate]) -> MachineZoneCandidate | None:
    """One reading whose check digits hold, made from several that fail (see
    the module doc); None when the readings do not agree enough."""
    readings = [c for c in candidates if layout_for(c.text.split("\n")) is not None]
    if len(readings) < 2:
        return None
    base_text = _base(readings)
    if base_text is None:
        return None
    base = base_text.split("\n")
    spec = layout_for(base)
    assert spec is not None
    others = [c.text.split("\n") for c in readings if c.text != base_text]
    # Readings of the same zone only, and not garbled ones (a zone read upside down).
    others = [o for o in others if _near(o, base)]
    if not others:
        return None
    fixed, notes = _repaired(base, others, spec)
    if failing_checks(fixed, spec) or malformed(fixed, spec) or implausible(fixed):
        return None
    fixed, constrained = constrain(fixed)
    confidence = max(c.confidence for c in readings)
    return MachineZoneCandidate(
        "\n".join(fixed),
        ("attempt:merged", f"layout:{spec.name}", *notes, *constrained),
        True,
        round(confidence * 0.9, 4),
    )


def _base(readings: Sequence[MachineZoneCandidate]) -> str | None:
    """The reading with the fewest failing checks (then the surest), among
    those that could be a document at all; None when none is near enough."""
    scored = []
    for candidate in readings:
        if "check_failed:unknown_cells" in candidate.notes:
            continue  # cells the engine saw nothing in make a poor base
        lines = candidate.text.split("\n")
        spec = layout_for(lines)
        if spec is None or malformed(lines, spec) or implausible(lines):
            continue
        scored.append((len(failing_checks(lines, spec)), -candidate.confidence, candidate.text))
    if not scored or min(scored)[0] > _MAX_FAILING:
        return None
    return min(scored)[2]


def _repaired(
    base: list[str], others: Sequence[list[str]], spec: LayoutSpec
) -> tuple[list[str], list[str]]:
    fixed = list(base)
    notes: list[str] = []
    for field, places in fields_to_repair(spec):
        if holds(fixed, field):
            continue
        solutions = variants_that_hold(fixed, field, (), _doubts(fixed, others, places))
        singles = [changes for changes in solutions if len(changes) == 1]
        if len(singles) == 1:
            # One disputed character explains the failing check: more than one
            # engine wrong in one field is the less likely reading.
            solutions = singles
        if len(solutions) != 1:
            continue
        fixed = applied(fixed, solutions[0])
        notes.extend(
            f"check_confirmed:{field.name}:line{line + 1}:col{col + 1}"
            for line, col, _char in solutions[0]
        )
    return fixed, notes


def _near(other: Sequence[str], base: Sequence[str]) -> bool:
    """Whether ``other`` has ``base``'s shape and differs in at most a sixth of its characters."""
    if [len(line) for line in other] != [len(line) for line in base]:
        return False
    differ = sum(
        a != b
        for o, b_line in zip(other, base, strict=True)
        for a, b in zip(o, b_line, strict=True)
    )
    return differ <= sum(len(line) for line in base) // _FAR


def _doubts(
    lines: Sequence[str], others: Sequence[Sequence[str]], places: Sequence[tuple[int, int]]
) -> list[Change]:
    """The positions among ``places`` where other readings disagree, each
    with the character they saw most often, the most disputed first."""
    disputed = []
    for line, col in places:
        seen = Counter(o[line][col] for o in others if o[line][col] != lines[line][col])
        if seen:
            char, count = seen.most_common(1)[0]
            disputed.append((-count, line, col, char))
    disputed.sort()
    return [(line, col, char) for _count, line, col, char in disputed[:_MAX_DOUBTS]]
