"""What either reader hands back for a zone it read: the text, its
confidences and where the zone lies (for the portrait estimate)."""

from __future__ import annotations

from collections.abc import Sequence

from attrs import frozen

from healthcode.plugins.mrz_ocr.locate.components import TextLine


@frozen
class ZoneReading:
    lines: tuple[str, ...]
    confidence: float
    confidences: tuple[tuple[float, ...], ...]
    """Per line, per character, 0..1."""
    pitch_px: float
    """Character pitch in image pixels."""
    zone: tuple[TextLine, ...]
    """The zone's lines, top to bottom as printed, in the pixels of the image read."""


BestZone = tuple[ZoneReading, int]
"""The zone read best and the quarter turns applied to the image before reading it."""


def second_document(failing: Sequence[str]) -> bool:
    """Whether another zone, with these checks failing, is a second document:
    both date checks holding by chance is a 1 in 100 event, so it is, even
    if other fields of it are misread."""
    return "birth_date" not in failing and "expiry_date" not in failing
