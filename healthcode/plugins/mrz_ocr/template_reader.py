"""The cheap reader, tried first: OCR-B templates on the located zones.

Long text bands are found with specks removed first, the zone's lines are
measured around them at ICAO's line spacing (``locate.zone``), each line is
cut at exactly the template pitch and every cell is matched against the 37
glyphs rendered from the OCR-B font (``glyphs``), and the scores become text
with each field's alphabet and the check digits (``decode``). Tens of
milliseconds; quarter turns are tried only when no MRZ-like zone is seen.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any, Final

import attrs
from attrs import frozen

from healthcode.core.models import MachineZoneCandidate
from healthcode.plugins.mrz_ocr import glyphs
from healthcode.plugins.mrz_ocr.decode import TemplateReading, decode_scores
from healthcode.plugins.mrz_ocr.errors import MultipleDocumentsError
from healthcode.plugins.mrz_ocr.layouts import failing_checks, layout_for
from healthcode.plugins.mrz_ocr.locate.components import TextLine
from healthcode.plugins.mrz_ocr.locate.rectify import rectify_zone
from healthcode.plugins.mrz_ocr.locate.zone import Measured, find_seeds, find_zone
from healthcode.plugins.mrz_ocr.readings import BestZone, ZoneReading, second_document

_TEMPLATE_ORIENTATIONS: Final = (0, 1, 3)
"""Quarter turns tried (a half turn is decided per zone, by which way glyphs match)."""
_MRZ_LIKE: Final = 0.55
"""Mean glyph correlation above which a band is taken for an MRZ (noise scores ~0.3)."""
_SKEWED_LIKE: Final = 0.45
"""A zone of several lines scoring this is worth rectifying: perspective
shifts the cells of a real zone off the template grid, which lowers its
score below ``_MRZ_LIKE`` (a page of printed text scores ~0.3-0.4)."""
_UNREAD_LIKE: Final = 0.35
"""A zone scoring this may be an MRZ in another font (kept for the second engine)."""

_Ranked = tuple[float, ZoneReading, int]
"""A zone read, its rank (confidence, plus 1 when its checks hold) and its quarter turns."""


def _counts_for(lines: int) -> tuple[int, ...]:
    return (30,) if lines in (1, 3) else (44, 36)


def _span(line: Measured) -> float:
    """Length of a measured line's ink, in image pixels."""
    import numpy as np

    return float(np.hypot(*(line.right - line.left)))


def read_measured_zone(
    grey: Any, measured: Sequence[Measured]
) -> tuple[TemplateReading, ZoneReading] | None:
    """Read measured zone lines (``locate.zone.Measured``, top to bottom) by templates."""
    if not 1 <= len(measured) <= 3:
        return None
    best: tuple[float, TemplateReading, ZoneReading] | None = None
    for count in _likely_counts(measured):
        found = glyphs.read_zone_lines(grey, measured, count)
        if found is None:
            continue
        line_scores, flip = found
        reading = decode_scores([s.scores for s in line_scores])
        if reading is None:
            continue
        zone_reading = ZoneReading(
            reading.lines,
            reading.confidence,
            tuple(tuple(float(v) for v in s.scores.max(axis=1)) for s in line_scores),
            _pitch(measured, count),
            _boxes(measured, count, flip=flip),
        )
        rank = reading.confidence + (1.0 if reading.checks_passed else 0.0)
        if best is None or rank > best[0]:
            best = (rank, reading, zone_reading)
    return (best[1], best[2]) if best else None


def _likely_counts(measured: Sequence[Measured]) -> tuple[int, ...]:
    """The cell counts worth reading the lines at: for two lines, 44 or 36,
    or only one when the aspect of the ink names it clearly."""
    import numpy as np

    counts = _counts_for(len(measured))
    if len(counts) == 1:
        return counts
    span = float(np.mean([_span(m) for m in measured]))
    band = float(np.mean([m.band for m in measured]))
    # Caps are ~0.98 pitch tall: the aspect of the ink names the count.
    estimate = span / max(band / 0.98, 1.0) + glyphs.BEARINGS
    counts = tuple(sorted(counts, key=lambda n: abs(n - estimate)))
    if abs(counts[0] - estimate) < 0.25 * abs(counts[0] - counts[1]):
        counts = counts[:1]
    return counts


def _pitch(measured: Sequence[Measured], count: int) -> float:
    import numpy as np

    return float(np.mean([_span(m) for m in measured])) / (count - glyphs.BEARINGS)


def _boxes(measured: Sequence[Measured], count: int, *, flip: bool) -> tuple[TextLine, ...]:
    """The zone's lines as boxes, top to bottom as printed (for the portrait)."""
    pitch = _pitch(measured, count)
    boxes = []
    for m in measured:
        centre = (m.left + m.right) / 2
        angle = math.atan2(float(m.right[1] - m.left[1]), float(m.right[0] - m.left[0]))
        boxes.append(
            TextLine(
                float(centre[0]),
                float(centre[1]),
                pitch * count,
                m.band,
                angle + (math.pi if flip else 0.0),
            )
        )
    return tuple(boxes[::-1] if flip else boxes)


@frozen
class TemplateOutcome:
    """What the template reader found over its quarter turns."""

    best: BestZone | None
    """The zone read best (for the portrait)."""
    seen_mrz: bool
    """Whether an MRZ-like zone was seen at all."""
    unread: tuple[UnreadZone, ...] = ()
    """Zones read without their checks holding, the most MRZ-like first:
    worth rectifying (``locate.rectify``) or reading by the second engine."""


@frozen
class UnreadZone:
    orientation: int
    """Quarter turns of the image the zone was measured on."""
    lines: tuple[Measured, ...]
    confidence: float
    reading: ZoneReading


def read_by_templates(
    grey0: Any,
    candidates: list[MachineZoneCandidate],
    timings: dict[str, float],
    *,
    orientations: Sequence[int] = _TEMPLATE_ORIENTATIONS,
) -> TemplateOutcome:
    """The template reader over the located zones, in quarter turns until one
    zone's check digits all hold (appends candidates)."""
    import numpy as np

    if glyphs.templates() is None:
        return TemplateOutcome(None, False)
    best: _Ranked | None = None
    seen_mrz = False
    unread: list[UnreadZone] = []
    for orientation in orientations:
        if orientation and seen_mrz:
            break
        tic = time.perf_counter()
        grey = np.ascontiguousarray(np.rot90(grey0, orientation))
        seeds = find_seeds(grey)
        timings["locate"] += time.perf_counter() - tic
        tic = time.perf_counter()
        zones = _zones_from_seeds(grey, seeds)
        best, seen, passed = _read_zones(grey, zones, orientation, candidates, best, unread)
        timings["templates"] += time.perf_counter() - tic
        seen_mrz = seen_mrz or seen
        if passed and best is not None:
            return TemplateOutcome((best[1], best[2]), True)
    unread.sort(key=lambda zone: -zone.confidence)
    return TemplateOutcome((best[1], best[2]) if best else None, seen_mrz, tuple(unread))


def _read_zones(
    grey: Any,
    zones: Sequence[Sequence[Measured]],
    orientation: int,
    candidates: list[MachineZoneCandidate],
    best: _Ranked | None,
    unread: list[UnreadZone],
) -> tuple[_Ranked | None, bool, bool]:
    """The zones of one orientation in turn, until one's check digits all hold.
    Appends candidates (and to ``unread`` the zones of several lines read
    without their checks holding); returns the best so far, whether an
    MRZ-like zone was seen and whether one's checks held."""
    seen = False
    for index, zone in enumerate(zones):
        found = read_measured_zone(grey, zone)
        if found is None:
            continue
        reading, zone_reading = found
        seen = seen or reading.confidence >= _MRZ_LIKE
        if not reading.checks_passed and reading.confidence >= _UNREAD_LIKE:
            unread.append(UnreadZone(orientation, tuple(zone), reading.confidence, zone_reading))
        if reading.confidence < _MRZ_LIKE and not reading.checks_passed:
            continue
        candidates.append(
            MachineZoneCandidate(
                "\n".join(reading.lines),
                (f"attempt:templates_{orientation * 90}", *reading.notes)
                + (("ambiguous_repair",) if reading.ambiguous else ()),
                reading.checks_passed,
                round(reading.confidence * (1.0 if reading.checks_passed else 0.5), 4),
            )
        )
        rank = reading.confidence + (1.0 if reading.checks_passed else 0.0)
        if best is None or rank > best[0]:
            best = (rank, zone_reading, orientation)
        if reading.checks_passed:
            _refuse_second_zone(grey, zones, index, reading)
            return best, seen, True
    return best, seen, False


_RECTIFIED_TRIES: Final = 2
"""Unread zones rectified and read again, the most MRZ-like first."""


def read_rectified(
    grey0: Any,
    unread: Sequence[UnreadZone],
    candidates: list[MachineZoneCandidate],
    timings: dict[str, float],
) -> BestZone | None:
    """The unread zones rectified (``locate.rectify``) and read again by the
    templates, until one's check digits all hold (appends candidates).
    Returns that zone, placed on the zone as measured in the photo (for the
    portrait), or None."""
    import numpy as np

    skewed = [z for z in unread if len(z.lines) > 1 and z.confidence >= _SKEWED_LIKE]
    for zone in skewed[:_RECTIFIED_TRIES]:
        tic = time.perf_counter()
        grey = np.ascontiguousarray(np.rot90(grey0, zone.orientation))
        rectified = rectify_zone(grey, zone.lines)
        timings["locate"] += time.perf_counter() - tic
        if rectified is None:
            continue
        found: list[MachineZoneCandidate] = []
        outcome = read_by_templates(rectified, found, timings, orientations=(0,))
        found = [c for c in found if not overfitted(c)]
        candidates.extend(renamed_attempt(found, "rectified"))
        if outcome.best is not None and any(c.checks_passed for c in found):
            reading = outcome.best[0]
            flip = abs(math.cos(reading.zone[0].angle) + 1) < 0.5
            count = len(reading.lines[0])
            return (
                attrs.evolve(
                    reading,
                    pitch_px=_pitch(zone.lines, count),
                    zone=_boxes(zone.lines, count, flip=flip),
                ),
                zone.orientation,
            )
    return None


_MAX_CONFIRMED_PER_FIELD: Final = 1
"""A fallback reading (rectified, descreened) whose check digit "confirmed"
more changes in one field than this is dropped: with several doubtful cells
one of the variants tried holds by chance (a font the templates do not know
reads so)."""


def overfitted(candidate: MachineZoneCandidate) -> bool:
    """Whether more changes in one field were "confirmed" than a fallback may take."""
    fields = [n.split(":")[1] for n in candidate.notes if n.startswith("check_confirmed:")]
    return any(fields.count(field) > _MAX_CONFIRMED_PER_FIELD for field in set(fields))


def renamed_attempt(found: Sequence[MachineZoneCandidate], name: str) -> list[MachineZoneCandidate]:
    """``found`` with their attempt note naming the attempt as ``name``."""
    return [
        attrs.evolve(
            c, notes=tuple(f"attempt:{name}" if n.startswith("attempt:") else n for n in c.notes)
        )
        for c in found
    ]


def _zones_from_seeds(grey: Any, seeds: Sequence[TextLine]) -> list[list[Measured]]:
    """Distinct zones (measured lines, top to bottom) around the seeds."""
    import numpy as np

    zones: list[list[Measured]] = []
    for seed in seeds:
        zone = find_zone(grey, seed)
        if not zone:
            continue
        # A zone's ink is as long as its cell count says (caps ~0.98 pitch
        # tall): labels, page edges and text blocks are dropped unread.
        estimate = _span(zone[0]) / max(zone[0].band / 0.98, 1.0)
        if not any(abs(estimate + glyphs.BEARINGS - n) < 0.15 * n for n in _counts_for(len(zone))):
            continue
        start = zone[0].left
        if any(float(np.hypot(*(other[0].left - start))) < 2 * zone[0].band for other in zones):
            continue
        zones.append(zone)
    return zones


def _refuse_second_zone(
    grey: Any, zones: Sequence[Sequence[Measured]], index: int, reading: TemplateReading
) -> None:
    """Two legible zones in one photo: refuse rather than pick one silently."""
    import numpy as np

    first = zones[index]
    for other_index, zone in enumerate(zones):
        if other_index == index:
            continue
        distance = float(np.hypot(*(zone[0].left - first[0].left)))
        if distance < 4 * first[0].band * len(first):
            continue
        found = read_measured_zone(grey, zone)
        if found is None:
            continue
        other = found[0]
        spec = layout_for(other.lines)
        # Printed labels read as noise score ~0.3-0.45; only an MRZ-like zone counts.
        if spec is None or other.confidence < _MRZ_LIKE:
            continue
        failing = failing_checks(list(other.lines), spec)
        if second_document(failing) and other.lines != reading.lines:
            raise MultipleDocumentsError(details={"zones": 2})
