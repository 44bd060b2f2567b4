"""The tesseract reader, run only when the template reader fails.

Each located line is straightened on its own (perspective tilts lines
differently) into a strip at a fixed character height, and the strips are
stacked into one image: one tesseract run reads the whole zone, restricted to
the MRZ alphabet, with per-character boxes (hOCR). The fixed-pitch grid of
each line (``grid``) places every character in its cell, and the check digits
confirm repairs (``repair``). Attempts stop at the first whose check digits
all hold: contrast stretch, then binarised and larger, then the zone turned
180 degrees.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any, Final

from attrs import frozen

from healthcode.core.models import MachineZoneCandidate
from healthcode.plugins.mrz_ocr import ppocr
from healthcode.plugins.mrz_ocr.engine import OcrChar, run_tesseract
from healthcode.plugins.mrz_ocr.errors import MultipleDocumentsError
from healthcode.plugins.mrz_ocr.grid import LineReading, binarise, decode_line, straighten, stretch
from healthcode.plugins.mrz_ocr.layouts import failing_checks, layout_for
from healthcode.plugins.mrz_ocr.locate.components import TextLine
from healthcode.plugins.mrz_ocr.locate.lines import find_text_lines, group_zones
from healthcode.plugins.mrz_ocr.readings import BestZone, ZoneReading, second_document
from healthcode.plugins.mrz_ocr.repair import candidates_from_lines, repair

CHAR_HEIGHT_PX: Final = 34
"""Character height of the strips handed to tesseract (its LSTM likes 25-40)."""


@frozen
class Attempt:
    name: str
    orientation: int
    """Quarter turns applied to the image before locating (0-3)."""
    zone: int
    """Which group of lines (0: the most MRZ-like)."""
    binarised: bool
    flip: bool
    char_height: int
    engine: str = "tesseract"
    """``tesseract`` or ``ppocr`` (the second engine, ``ppocr``)."""


ATTEMPTS: Final = (
    Attempt("direct", 0, 0, False, False, CHAR_HEIGHT_PX),
    Attempt("ppocr", 0, 0, False, False, CHAR_HEIGHT_PX, "ppocr"),
    Attempt("binarised", 0, 0, True, False, 40),
    Attempt("rotated_180", 0, 0, False, True, CHAR_HEIGHT_PX),
)
"""Tesseract attempts run after the template reader fails, in order."""

_Located = dict[int, tuple[Any, list[list[TextLine]]]]
"""Per quarter turns: the turned image and its groups of lines."""


def read_by_tesseract(
    grey0: Any,
    candidates: list[MachineZoneCandidate],
    timings: dict[str, float],
    best: BestZone | None,
) -> BestZone | None:
    """The attempts in order until one's check digits all hold. Appends
    candidates; returns the zone read best (``best`` unless a zone read here
    is better or it is None)."""
    located: _Located = {}
    for attempt in ATTEMPTS:
        if attempt.engine == "ppocr" and not ppocr.available():
            continue
        grey, zones = _located(grey0, attempt.orientation, located, timings)
        if attempt.zone >= len(zones):
            continue
        tic = time.perf_counter()
        zone_reading = read_zone(grey, zones[attempt.zone], attempt)
        timings["ocr"] += time.perf_counter() - tic
        if zone_reading is None:
            continue
        found = candidates_from_lines(
            zone_reading.lines,
            zone_reading.confidence,
            [f"attempt:{attempt.name}"],
            zone_reading.confidences,
        )
        candidates.extend(found)
        if best is None or found[0].checks_passed:
            best = (zone_reading, attempt.orientation)
        if found[0].checks_passed:
            _refuse_second_document(grey, zones, attempt, zone_reading, found[0].text, timings)
            break
    return best


def _located(
    grey0: Any, orientation: int, located: _Located, timings: dict[str, float]
) -> tuple[Any, list[list[TextLine]]]:
    """The image turned by ``orientation`` quarter turns and its groups of
    lines, located once per orientation."""
    import numpy as np

    if orientation not in located:
        tic = time.perf_counter()
        grey = np.ascontiguousarray(np.rot90(grey0, orientation))
        located[orientation] = (grey, group_zones(find_text_lines(grey)))
        timings["locate"] += time.perf_counter() - tic
    return located[orientation]


def read_zone(grey: Any, zone: Sequence[TextLine], attempt: Attempt) -> ZoneReading | None:
    """OCR one group of lines: straighten, stack, one tesseract run, grid decoding."""
    ordered = list(zone)[::-1] if attempt.flip else list(zone)
    strips = [
        stretch(straighten(grey, line, char_height=attempt.char_height, flip=attempt.flip))
        for line in ordered
    ]
    binaries = [binarise(strip) for strip in strips]
    gap = attempt.char_height
    stack, offsets = _stacked(binaries if attempt.binarised else strips, gap)
    if attempt.engine == "ppocr":
        chars = ppocr.recognise(strips, offsets, gap)
    else:
        chars = run_tesseract(stack)
    shifted = [OcrChar(c.char, c.x - gap, c.y, c.confidence) for c in chars]
    readings = _decoded(binaries, offsets, ordered, shifted, attempt, None)
    lengths = [len(r.text) for r, _ in readings]
    if len(readings) != len(ordered) or len(set(lengths)) != 1:
        # The lines disagree on their length (touching or split glyphs):
        # the zone's shape says what it must be.
        count = _zone_count(lengths, len(ordered))
        # Only lines whose own grids come near that (not printed labels).
        if not lengths or any(abs(n - count) > _COUNT_SLACK * count for n in lengths):
            return None
        readings = _decoded(binaries, offsets, ordered, shifted, attempt, count)
        if len(readings) != len(ordered):
            return None
    confidence = sum(r.confidence for r, _ in readings) / len(readings)
    pitch = sum(r.pitch_px / s for r, s in readings) / len(readings)
    return ZoneReading(
        tuple(r.text for r, _ in readings),
        confidence,
        tuple(r.cell_confidences for r, _ in readings),
        pitch,
        tuple(ordered),
    )


def _decoded(
    binaries: Sequence[Any],
    offsets: Sequence[int],
    ordered: Sequence[TextLine],
    chars: Sequence[OcrChar],
    attempt: Attempt,
    count: int | None,
) -> list[tuple[LineReading, float]]:
    """Each line's characters on its grid, with the strip's scale; stops at
    the first line no grid fits."""
    readings: list[tuple[LineReading, float]] = []
    for binary, offset, line in zip(binaries, offsets, ordered, strict=True):
        reading = decode_line(binary, chars, y_offset=offset, count=count)
        if reading is None:
            break
        scale = min(attempt.char_height / max(line.thickness, 1.0), 6.0)
        readings.append((reading, scale))
    return readings


_COUNT_SLACK: Final = 0.15
"""A line's own grid may miss its zone's character count by this share."""


def _zone_count(lengths: Sequence[int], lines: int) -> int:
    """Characters per line of a zone of ``lines`` lines: 30 for one or three
    lines; for two, 36 or 44, whichever the lines' own grids come nearer."""
    if lines != 2:
        return 30
    found = sorted(lengths) or [40]
    middle = found[len(found) // 2]
    return 36 if abs(middle - 36) < abs(middle - 44) else 44


def _stacked(strips: Sequence[Any], gap: int) -> tuple[Any, list[int]]:
    """The strips stacked into one white image, ``gap`` px apart and from the
    edges; and the top row of each."""
    import numpy as np

    width = max(s.shape[1] for s in strips) + 2 * gap
    height = sum(s.shape[0] for s in strips) + gap * (len(strips) + 1)
    stack = np.full((height, width), 255, dtype=np.uint8)
    offsets = []
    y = gap
    for strip in strips:
        stack[y : y + strip.shape[0], gap : gap + strip.shape[1]] = strip
        offsets.append(y)
        y += strip.shape[0] + gap
    return stack, offsets


def _refuse_second_document(
    grey: Any,
    zones: Sequence[Sequence[TextLine]],
    attempt: Attempt,
    reading: ZoneReading,
    text: str,
    timings: dict[str, float],
) -> None:
    """Two legible zones in one photo: refuse rather than pick one silently.

    Only groups as long as the zone just read, and far from it, are read."""
    first = reading.zone[0]
    for index, zone in enumerate(zones):
        if index == attempt.zone or not zone:
            continue
        line = zone[0]
        if line.length < 0.7 * first.length:
            continue
        if math.hypot(line.cx - first.cx, line.cy - first.cy) < 4 * first.thickness * len(
            reading.lines
        ):
            continue
        tic = time.perf_counter()
        other = read_zone(
            grey,
            zone,
            Attempt("second_document", attempt.orientation, index, False, False, CHAR_HEIGHT_PX),
        )
        timings["ocr"] += time.perf_counter() - tic
        if other is None:
            continue
        spec = layout_for(other.lines)
        if spec is None:
            continue
        fixed, _notes, _ambiguous = repair(other.lines, spec, other.confidences)
        if second_document(failing_checks(fixed, spec)) and "\n".join(fixed) != text:
            raise MultipleDocumentsError(details={"zones": 2})
