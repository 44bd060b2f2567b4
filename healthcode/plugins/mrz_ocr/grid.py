"""The fixed-pitch grid of a line read by tesseract.

OCR-B in an MRZ is printed at 10 characters per inch, so the glyph centres of
a line lie on a regular grid. The grid gives the number of characters (30, 36
or 44: the layout) and the cell of every character tesseract returns, so
insertions and deletions cannot shift a field. A filler chevron is recognised
from its shape (ink at the left only in the middle rows; a ``K`` has a stem);
tesseract decides the rest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from attrs import frozen

from healthcode.plugins.mrz_ocr.engine import OcrChar
from healthcode.plugins.mrz_ocr.geometry import cut_strip
from healthcode.plugins.mrz_ocr.layouts import LINE_LENGTHS
from healthcode.plugins.mrz_ocr.locate.components import TextLine

# --- straightening -------------------------------------------------------------------


def straighten(grey: Any, line: TextLine, *, char_height: int, flip: bool = False) -> Any:
    """The line cut out along its own direction, at ``char_height`` px per character."""
    import numpy as np

    scale = min(char_height / max(line.thickness, 1.0), 6.0)
    out_w = int((line.length + 1.6 * line.thickness) * scale)
    out_h = int(2.0 * line.thickness * scale)
    angle = line.angle + (math.pi if flip else 0.0)
    strip = cut_strip(grey, line.cx, line.cy, angle, scale, out_w, out_h, bicubic=True)
    return np.asarray(strip)


def stretch(strip: Any) -> Any:
    """Contrast stretched between the 2nd and 98th percentile."""
    import numpy as np

    low, high = np.percentile(strip, (2, 98))
    if high - low < 10:
        return strip
    return np.clip((strip.astype(np.float32) - low) * (255.0 / (high - low)), 0, 255).astype(
        np.uint8
    )


def _otsu(values: Any) -> float:
    import numpy as np

    hist = np.bincount(values.ravel(), minlength=256).astype(np.float64)
    total = hist.sum()
    if total == 0:
        return 128.0
    levels = np.arange(256)
    weight = np.cumsum(hist)
    mean = np.cumsum(hist * levels)
    between = (mean[-1] * weight / total - mean) ** 2 / np.maximum(weight * (total - weight), 1)
    return float(np.argmax(between))


def binarise(strip: Any) -> Any:
    """Black text on white (0 / 255), after a wide background is subtracted."""
    import numpy as np
    from scipy import ndimage as ndi  # type: ignore[import-untyped, unused-ignore]

    # Light falls off across a photo: subtract a wide background before Otsu.
    background = ndi.grey_closing(strip, size=(1, max(strip.shape[0] // 2, 3)))
    flat = np.clip(255 - (background.astype(np.int16) - strip.astype(np.int16)), 0, 255).astype(
        np.uint8
    )
    return np.where(flat > _otsu(flat), 255, 0).astype(np.uint8)


# --- the grid ---------------------------------------------------------------------------


@frozen
class Grid:
    """Character cells of one straightened line: centre of cell k = x0 + pitch * k."""

    x0: float
    pitch: float
    count: int
    top: int
    bottom: int


def _runs(columns: Any) -> list[tuple[int, int]]:
    """(start, end) of each run of True in a boolean row, end exclusive."""
    import numpy as np

    runs = []
    start = None
    for x, on in enumerate(np.append(columns, False)):
        if on and start is None:
            start = x
        elif not on and start is not None:
            runs.append((start, x))
            start = None
    return runs


def fit_grid(ink: Any, count: int | None = None) -> Grid | None:
    """Fit the fixed-pitch grid to a binary strip (True = ink); None if no grid fits.

    ``count``: the number of cells the line must have (the zone's other lines
    say so); the grid then spans the same first and last glyph at the pitch
    that gives ``count`` cells (glyphs of fonts other than OCR-B touch or
    split, which throws the median spacing, not the line's two ends)."""
    import numpy as np

    rows = ink.sum(axis=1)
    if rows.max() == 0:
        return None
    text_rows = np.nonzero(rows > 0.25 * rows.max())[0]
    top, bottom = int(text_rows.min()), int(text_rows.max()) + 1
    centres = _glyph_centres(ink[top:bottom])
    if len(centres) < 8:
        return None
    fitted = _fit_pitch(np.asarray(centres))
    if fitted is None:
        return None
    x0, pitch, fitted_count = fitted
    if count is not None and count != fitted_count:
        x0, pitch, fitted_count = centres[0], (centres[-1] - centres[0]) / (count - 1), count
    return Grid(x0=x0, pitch=pitch, count=fitted_count, top=top, bottom=bottom)


def _glyph_centres(band: Any) -> list[float]:
    """Centres of the glyph-like runs of ink columns in a line's text band:
    tall enough (specks are not), not wider than 2 glyphs."""
    import numpy as np

    band_height = band.shape[0]
    columns = band.sum(axis=0) >= max(1, band_height // 12)
    glyphs = []
    for a, b in _runs(columns):
        column_rows = np.nonzero(band[:, a:b].any(axis=1))[0]
        if len(column_rows) == 0 or column_rows[-1] - column_rows[0] < 0.45 * band_height:
            continue
        glyphs.append((a + b) / 2)
    return glyphs


def _fit_pitch(centres: Any) -> tuple[float, float, int] | None:
    """(x0, pitch, count) of the regular grid through the glyph centres."""
    import numpy as np

    pitch = float(np.median(np.diff(centres)))
    if pitch <= 2:
        return None
    centres_first = float(centres[0])
    for _ in range(3):
        cells = np.round((centres - centres[0]) / pitch)
        keep = np.abs((centres - centres[0]) / pitch - cells) < 0.35
        if keep.sum() < 8:
            return None
        slope, intercept = np.polyfit(cells[keep], centres[keep], 1)
        pitch = float(slope)
        centres_first = float(intercept)
        cells = np.round((centres - centres_first) / pitch)
        # Runs off the grid at either end (a border, a shadow) are dropped.
        keep = np.abs((centres - centres_first) / pitch - cells) < 0.35
        centres = centres[keep]
    first = float(np.min(np.round((centres - centres_first) / pitch)))
    last = float(np.max(np.round((centres - centres_first) / pitch)))
    count = int(last - first) + 1
    return centres_first + first * pitch, pitch, count


# --- the filler chevron -------------------------------------------------------------------


def is_chevron(cell: Any) -> bool:
    """Whether a binary glyph cell holds a filler ``<``: ink reaches the left
    edge only in the middle rows, along two straight strokes (K, E, L have a
    stem at the left; X and S reach it at the top and bottom; C and O curve
    out to it well above the middle)."""
    glyph = _central_glyph(cell)
    if glyph is None:
        return False
    top, quarter, middle, three_quarters, bottom = (
        _leftmost(glyph, share) for share in (0.06, 0.27, 0.5, 0.73, 0.94)
    )
    return (
        top >= 0.5
        and bottom >= 0.5
        and quarter >= 0.12
        and three_quarters >= 0.12
        and middle <= 0.2
        and _right_extent(glyph) <= 0.7
    )


def _central_glyph(cell: Any) -> Any | None:
    """The cell's glyph cut to its ink: the run of ink columns nearest the cell
    centre (not a neighbour's edge), its rows from the first ink to the last;
    None when too little ink for a glyph."""
    import numpy as np

    columns = cell.any(axis=0)
    if not columns.any():
        return None
    centre = cell.shape[1] / 2
    a, b = min(
        _runs(columns),
        key=lambda r: 0 if r[0] <= centre < r[1] else min(abs(r[0] - centre), abs(r[1] - centre)),
    )
    cell = cell[:, a:b]
    ys, xs = np.nonzero(cell)
    if len(xs) < 6:
        return None
    y_min, y_max = int(ys.min()), int(ys.max())
    if b - a < 3 or y_max - y_min + 1 < 6:
        return None
    return cell[y_min : y_max + 1]


def _leftmost(glyph: Any, share: float) -> float:
    """Leftmost ink around the row at ``share`` of the glyph's height, in widths."""
    import numpy as np

    height, width = int(glyph.shape[0]), int(glyph.shape[1])
    row = min(int(share * (height - 1)), height - 1)
    rows = glyph[max(row - 1, 0) : row + 2]
    found = [int(np.argmax(r)) for r in rows if r.any()]
    return min(found) / width if found else 1.0


def _right_extent(glyph: Any) -> float:
    """Rightmost ink of the middle rows, in widths (a chevron's tip is at the left)."""
    import numpy as np

    height, width = int(glyph.shape[0]), int(glyph.shape[1])
    mid_rows = glyph[int(height * 0.42) : int(height * 0.58) + 1]
    if not mid_rows.any():
        return 1.0
    return max((width - 1 - int(np.argmax(row[::-1]))) / width for row in mid_rows if row.any())


# --- decoding a line ------------------------------------------------------------------------


@frozen
class LineReading:
    text: str
    confidence: float
    cell_confidences: tuple[float, ...]
    pitch_px: float
    """Character pitch in image pixels (for the portrait estimate)."""


def decode_line(
    binary: Any, chars: Sequence[OcrChar], *, y_offset: float, count: int | None = None
) -> LineReading | None:
    """Characters of one strip placed on its grid (of ``count`` cells when
    given); ``None`` when no grid fits."""
    ink = binary < 128
    grid = fit_grid(ink, count)
    if grid is None or grid.count not in LINE_LENGTHS:
        return None
    cells: list[list[OcrChar]] = [[] for _ in range(grid.count)]
    for char in chars:
        if not y_offset <= char.y < y_offset + binary.shape[0]:
            continue
        k = round((char.x - grid.x0) / grid.pitch)
        if 0 <= k < grid.count:
            cells[k].append(char)
    text: list[str] = []
    confidences: list[float] = []
    half = grid.pitch / 2
    for k, found in enumerate(cells):
        left = max(int(grid.x0 + k * grid.pitch - half), 0)
        right = int(grid.x0 + k * grid.pitch + half)
        chevron = is_chevron(ink[grid.top : grid.bottom, left:right])
        cell_char, confidence = _cell_reading(found, chevron=chevron)
        text.append(cell_char)
        confidences.append(confidence)
    return LineReading(
        "".join(text), sum(confidences) / len(confidences), tuple(confidences), grid.pitch
    )


def _cell_reading(found: Sequence[OcrChar], *, chevron: bool) -> tuple[str, float]:
    """A cell's character and confidence: the chevron shape wins, then tesseract's
    surest character; a cell tesseract saw nothing in and that is no chevron is
    unknown (a filler at confidence 0)."""
    best = max(found, key=lambda c: c.confidence) if found else None
    if chevron:
        return "<", max(best.confidence if best else 0.9, 0.9)
    if best is not None:
        return best.char, best.confidence
    return "<", 0.0
