"""Reading the machine-readable zone of a document photo: the readers in turn,
the candidates ranked, and where the portrait is.

The readers, the cheap one first:

1. **OCR-B templates** (``template_reader``): tens of milliseconds.
2. **Tesseract** (``tesseract``), only when the templates found no zone whose
   check digits hold.
3. Raw ``passporteye.read_mrz``, only when no MRZ-like zone was seen at all.

Candidates whose check digits hold come first, then the order of the
attempts (each repaired reading before its raw form). The candidate texts go
back to core, which asks the document plugins to parse each (so the permits'
CR/CT/CS zones are read by their own plugin). Nothing here logs or puts into
notes any character of the zone.
"""

from __future__ import annotations

import io
import math
import re
import time
from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from healthcode.core.models import Image, MachineZoneCandidate, MachineZoneReading
from healthcode.core.mrz import MRZ_ALPHABET
from healthcode.plugins.mrz_ocr.engine import engine_version, passporteye_read, tesseract_path
from healthcode.plugins.mrz_ocr.locate.components import TextLine
from healthcode.plugins.mrz_ocr.merge import merged_candidate
from healthcode.plugins.mrz_ocr.notices import repair_problems
from healthcode.plugins.mrz_ocr.readings import BestZone
from healthcode.plugins.mrz_ocr.repair import candidates_from_lines
from healthcode.plugins.mrz_ocr.template_reader import read_by_templates
from healthcode.plugins.mrz_ocr.tesseract import read_by_tesseract


def read_machine_zone(image: Image, *, use_passporteye: bool = True) -> MachineZoneReading:
    """Read the MRZ of a document photo: candidates best first (see the module doc).

    Raises ``OcrEngineMissingError`` when tesseract is absent and
    ``MultipleDocumentsError`` when two zones with valid check digits are seen."""
    started = time.perf_counter()
    tesseract_path()
    timings = {"locate": 0.0, "templates": 0.0, "ocr": 0.0}
    grey0 = _grey(image)
    candidates: list[MachineZoneCandidate] = []
    best_zone, zone_seen = read_by_templates(grey0, candidates, timings)
    # Tesseract only where the templates failed on a zone that looks like an
    # MRZ (or found none): a photo with no text band costs nothing more.
    if not any(c.checks_passed for c in candidates):
        best_zone = read_by_tesseract(grey0, candidates, timings, best_zone)
    if use_passporteye and not zone_seen and not any(c.checks_passed for c in candidates):
        candidates.extend(_read_by_passporteye(image, timings))
    if candidates and not any(c.checks_passed for c in candidates):
        merged = merged_candidate(candidates)
        if merged is not None:
            candidates.insert(0, merged)
    # Each repair the notes record becomes a warning the person reads.
    candidates = [attrs.evolve(c, warnings=tuple(repair_problems(c.notes))) for c in candidates]
    # Check digits first; then the order of the attempts (each repaired reading
    # before its raw form).
    ranked = sorted(_unique(candidates), key=lambda c: not c.checks_passed)
    timings["total"] = time.perf_counter() - started
    return MachineZoneReading(
        candidates=tuple(ranked),
        portrait_box=_portrait(best_zone, (image.width, image.height)),
        confidence=ranked[0].confidence if ranked else 0.0,
        timings={k: round(v, 4) for k, v in timings.items()},
        engine=engine_version(),
    )


def _grey(image: Image) -> Any:
    import numpy as np

    rgb = np.asarray(image.pixels, dtype=np.float32)
    return (rgb[:, :, 0] * 0.299 + rgb[:, :, 1] * 0.587 + rgb[:, :, 2] * 0.114).astype(np.uint8)


def _unique(candidates: Sequence[MachineZoneCandidate]) -> Iterator[MachineZoneCandidate]:
    seen: set[str] = set()
    for candidate in candidates:
        if candidate.text not in seen:
            seen.add(candidate.text)
            yield candidate


# --- the last attempt ------------------------------------------------------------------


def _read_by_passporteye(image: Image, timings: dict[str, float]) -> list[MachineZoneCandidate]:
    """Raw passporteye on the photo, its text cleaned to MRZ-like lines."""
    from PIL import Image as PILImage

    tic = time.perf_counter()
    buffer = io.BytesIO()
    PILImage.fromarray(image.pixels).save(buffer, format="PNG", compress_level=1)
    text = passporteye_read(buffer.getvalue())
    timings["passporteye"] = time.perf_counter() - tic
    lines = _clean_free_text(text) if text else []
    if not lines:
        return []
    return candidates_from_lines(lines, 0.5, ["attempt:passporteye"])


def _clean_free_text(text: str) -> list[str]:
    lines = [re.sub(f"[^{MRZ_ALPHABET}]", "", line.upper()) for line in text.splitlines()]
    return [line for line in lines if len(line) >= 20]


# --- the portrait ---------------------------------------------------------------------


def _portrait(
    best_zone: BestZone | None, size: tuple[int, int]
) -> tuple[int, int, int, int] | None:
    if best_zone is None:
        return None
    zone_reading, orientation = best_zone
    return estimate_portrait_box(zone_reading.zone, zone_reading.pitch_px, orientation, size)


def estimate_portrait_box(
    zone: Sequence[TextLine], pitch_px: float, orientation: int, size: tuple[int, int]
) -> tuple[int, int, int, int] | None:
    """Where ICAO puts the portrait: left of the page, above the MRZ.

    In character pitches (2.54 mm): TD3 about 13 x 17, TD2 11 x 14, cards 9 x 11,
    starting about one pitch left of the zone and ending just above it."""
    if not zone or pitch_px <= 0:
        return None
    first = zone[0]
    chars = first.length / pitch_px
    if chars > 40:
        width_p, height_p = 13.0, 17.0
    elif chars > 33:
        width_p, height_p = 11.0, 14.0
    else:
        width_p, height_p = 9.0, 11.5
    cos_a, sin_a = math.cos(first.angle), math.sin(first.angle)
    left = -first.length / 2 - 0.8 * pitch_px
    bottom = -first.thickness * 1.3
    corners_local = [
        (left, bottom),
        (left + width_p * pitch_px, bottom),
        (left, bottom - height_p * pitch_px),
        (left + width_p * pitch_px, bottom - height_p * pitch_px),
    ]
    points = [
        (first.cx + u * cos_a - v * sin_a, first.cy + u * sin_a + v * cos_a)
        for u, v in corners_local
    ]
    # Back to the coordinates of the image as given (undo the quarter turns).
    width, height = size
    turned = [_unrotate_point(x, y, width, height, orientation) for x, y in points]
    xs = [max(min(p[0], width), 0) for p in turned]
    ys = [max(min(p[1], height), 0) for p in turned]
    box = (int(min(xs)), int(min(ys)), int(max(xs) - min(xs)), int(max(ys) - min(ys)))
    return box if box[2] > 4 and box[3] > 4 else None


def _unrotate_point(
    x: float, y: float, width: int, height: int, quarter_turns: int
) -> tuple[float, float]:
    """A point of ``np.rot90(img, k)`` back in ``img`` (``width`` x ``height``)."""
    k = quarter_turns % 4
    if k == 1:  # rot90 k=1: new (r, c) = (W-1-c_old, r_old) -> old (x, y) = (W-1-y, x)
        return width - 1 - y, x
    if k == 2:
        return width - 1 - x, height - 1 - y
    if k == 3:
        return y, height - 1 - x
    return x, y
