"""Reading the machine-readable zone of a document photo: the readers in turn,
the candidates ranked, and where the portrait is.

The readers, the cheap one first:

1. **OCR-B templates** (``template_reader``): tens of milliseconds; a zone
   they see but cannot read (perspective, a small zone, low contrast) is
   rectified (``locate.rectify``) and read again.
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
from typing import Any, Final

import attrs

from healthcode.core.models import Image, MachineZoneCandidate, MachineZoneReading
from healthcode.core.mrz import FILLER, MRZ_ALPHABET
from healthcode.plugins.mrz_ocr import ppocr
from healthcode.plugins.mrz_ocr.engine import engine_version, passporteye_read, tesseract_path
from healthcode.plugins.mrz_ocr.layouts import checked_positions, layout_for, set_char
from healthcode.plugins.mrz_ocr.locate.components import TextLine
from healthcode.plugins.mrz_ocr.merge import merged_candidate
from healthcode.plugins.mrz_ocr.notices import repair_problems
from healthcode.plugins.mrz_ocr.readings import BestZone
from healthcode.plugins.mrz_ocr.repair import candidates_from_lines
from healthcode.plugins.mrz_ocr.template_reader import (
    overfitted,
    read_by_templates,
    read_rectified,
    renamed_attempt,
)
from healthcode.plugins.mrz_ocr.tesseract import (
    CHAR_HEIGHT_PX,
    Attempt,
    read_by_tesseract,
    read_zone,
)


def read_machine_zone(image: Image, *, use_passporteye: bool = True) -> MachineZoneReading:
    """Read the MRZ of a document photo: candidates best first (see the module doc).

    Raises ``OcrEngineMissingError`` when tesseract is absent and
    ``MultipleDocumentsError`` when two zones with valid check digits are seen."""
    started = time.perf_counter()
    tesseract_path()
    timings = {"locate": 0.0, "templates": 0.0, "ocr": 0.0}
    grey0 = _grey(image)
    candidates: list[MachineZoneCandidate] = []
    best_zone, zone_seen = _read_by_templates(grey0, candidates, timings)
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


def _read_by_templates(
    grey0: Any, candidates: list[MachineZoneCandidate], timings: dict[str, float]
) -> tuple[BestZone | None, bool]:
    """The template reader on the photo, then on the zones it saw rectified,
    then on the photo descreened; where it reads unsurely, PP-OCR confirms.
    Appends candidates; returns the zone read best and whether an MRZ-like
    zone was seen."""
    outcome = read_by_templates(grey0, candidates, timings)
    best_zone, zone_seen = outcome.best, outcome.seen_mrz
    if not _passed(candidates) and outcome.unread:
        # A zone seen at an angle: rectified, it reads like a flat one.
        best_zone = read_rectified(grey0, outcome.unread, candidates, timings) or best_zone
        zone_seen = zone_seen or best_zone is not None
    if not _passed(candidates):
        # A photographed screen: its moire fringes break the glyphs and the
        # ink extents; a slight blur takes them out and keeps the OCR-B strokes.
        found: list[MachineZoneCandidate] = []
        descreened = read_by_templates(_descreened(grey0), found, timings)
        found = [c for c in found if not overfitted(c)]
        candidates.extend(renamed_attempt(found, "descreened"))
        best_zone = descreened.best if _passed(found) else best_zone or descreened.best
        zone_seen = zone_seen or descreened.seen_mrz
    if not _passed(candidates) and outcome.unread:
        # Another font: the zone the templates saw, read by the second engine.
        unread = outcome.unread[0]
        found = read_by_second_engine(
            grey0, (unread.reading, unread.orientation), timings, others=candidates
        )
        candidates.extend(found)
        if _passed(found):
            best_zone, zone_seen = (unread.reading, unread.orientation), True
    elif best_zone is not None and _unsure_template_pass(candidates):
        # Another font, or a blur: letters no check digit covers are in doubt.
        confirmed = confirm_by_second_engine(grey0, best_zone, timings)
        first = [c for c in confirmed if differs_unchecked(c, candidates)]
        candidates.extend(c for c in confirmed if c not in first)
        candidates[:0] = first
    return best_zone, zone_seen


def _passed(candidates: Sequence[MachineZoneCandidate]) -> bool:
    return any(c.checks_passed for c in candidates)


_SURE_TEMPLATES: Final = 0.85
"""Mean glyph correlation of a template reading in the OCR-B font; under it the
print is another font (or blurred), and letters no check digit covers may be
misread even where every check holds."""


def _unsure_template_pass(candidates: Sequence[MachineZoneCandidate]) -> bool:
    """Whether the passing readings are all the templates' own on the photo
    as given (not rectified), and all unsure."""
    passed = [c for c in candidates if c.checks_passed]
    return bool(passed) and all(
        c.confidence < _SURE_TEMPLATES and any(n.startswith("attempt:templates_") for n in c.notes)
        for c in passed
    )


def differs_unchecked(
    confirmed: MachineZoneCandidate, candidates: Sequence[MachineZoneCandidate]
) -> bool:
    """Whether the second engine's reading differs from the passing template
    reading where no check digit looks (names, sex, codes). Where they differ
    only under check digits both of which hold (``G`` and ``6`` weigh alike),
    the digits cannot tell them apart, and the template reading stays first."""
    template = next((c for c in candidates if c.checks_passed), None)
    if template is None:
        return True
    ours, theirs = template.text.split("\n"), confirmed.text.split("\n")
    spec = layout_for(ours)
    if spec is None or [len(line) for line in ours] != [len(line) for line in theirs]:
        return True
    checked = {pos for field in spec.checked for pos in checked_positions(field)}
    # A filler where the templates saw a letter is the second engine unsure
    # (its CTC decoding drops a faint glyph), not evidence.
    return any(
        a != b and b != FILLER and (line, col) not in checked
        for line, (mine, other) in enumerate(zip(ours, theirs, strict=True))
        for col, (a, b) in enumerate(zip(mine, other, strict=True))
    )


def confirm_by_second_engine(
    grey0: Any, best_zone: BestZone, timings: dict[str, float]
) -> list[MachineZoneCandidate]:
    """PP-OCR's reading of the zone the templates read unsurely. It knows
    many fonts: the candidates returned are its readings whose own check
    digits all hold (the caller puts one before the template reading where
    they differ outside the check digits' fields)."""
    return [c for c in read_by_second_engine(grey0, best_zone, timings) if c.checks_passed]


def read_by_second_engine(
    grey0: Any,
    best_zone: BestZone,
    timings: dict[str, float],
    *,
    others: Sequence[MachineZoneCandidate] = (),
) -> list[MachineZoneCandidate]:
    """PP-OCR's readings of a zone the templates located (``attempt:ppocr_confirm``).
    ``others``: the templates' readings of the zone, for the name cells PP-OCR
    saw nothing in (``names_seen_by_others``)."""
    import numpy as np

    if not ppocr.available():
        return []
    zone_reading, orientation = best_zone
    tic = time.perf_counter()
    grey = np.ascontiguousarray(np.rot90(grey0, orientation))
    attempt = Attempt("ppocr_confirm", orientation, 0, False, False, CHAR_HEIGHT_PX, "ppocr")
    found = read_zone(grey, zone_reading.zone, attempt)
    timings["ocr"] += time.perf_counter() - tic
    if found is None:
        return []
    lines, notes = names_seen_by_others(found.lines, found.confidences, others)
    return candidates_from_lines(
        lines, found.confidence, [f"attempt:{attempt.name}", *notes], found.confidences
    )


_AGREEING_READINGS: Final = 2
"""Other readings that must agree on a name cell the second engine missed."""
_UNSURE_FILLER: Final = 0.6
"""A filler the second engine is less sure of than this is no evidence (its
fillers read from ink run at 0.85 and more)."""


def names_seen_by_others(
    lines: Sequence[str],
    confidences: Sequence[Sequence[float]] | None,
    others: Sequence[MachineZoneCandidate],
) -> tuple[list[str], list[str]]:
    """``lines`` with the name cells the second engine saw nothing in, or only
    an unsure filler (its CTC decoding drops faint glyphs: a name of one letter
    and fillers), taken from
    the other readings of the zone, where at least ``_AGREEING_READINGS`` of
    them agree on a letter there. No check digit covers a name, so each cell
    taken is a ``constrained:name`` note (a warning the person reads)."""
    fixed = list(lines)
    spec = layout_for(fixed)
    shape = [len(line) for line in fixed]
    texts = [c.text.split("\n") for c in others]
    texts = [text for text in texts if [len(line) for line in text] == shape]
    if spec is None or confidences is None or len(texts) < _AGREEING_READINGS:
        return fixed, []
    notes: list[str] = []
    for line, start, end in spec.names:
        for col in range(start, end):
            if fixed[line][col] != FILLER or confidences[line][col] >= _UNSURE_FILLER:
                continue
            seen = {text[line][col] for text in texts}
            if len(seen) == 1 and (char := seen.pop()) != FILLER:
                set_char(fixed, line, col, char)
                notes.append(f"constrained:name:line{line + 1}:col{col + 1}")
    return fixed, notes


def _descreened(grey: Any) -> Any:
    import cv2

    return cv2.GaussianBlur(grey, (3, 3), 0)


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
