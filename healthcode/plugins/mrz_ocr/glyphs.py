"""Reading a located MRZ by OCR-B glyph templates (no OCR engine).

ICAO 9303 prints the zone in one typeface (OCR-B), at one pitch (10
characters per inch), on a fixed grid of 30, 36 or 44 cells per line. So once
a line is cut out straight, every cell can be compared with the 37 glyphs of
the MRZ alphabet rendered from the font itself (normalised cross-correlation,
which ignores contrast and uneven light). Per line:

1. **Straighten** the line along its own direction and measure, on the cut,
   where the ink starts and ends and how the text band runs (the located
   angle is refined from the band's height at both ends): ``locate.zone``.
2. **Pitch from the two ends**: the first and last cell are where the ink
   starts and ends, so the pitch is (end - start) / (cells - 0.32) (OCR-B's
   side bearings); the line is cut again at exactly the template pitch.
3. **Match every cell** against the templates, letting each cell move by up
   to a third of the pitch; the shifts of the sure cells are fitted with a
   quadratic along the line (perspective makes the pitch grow or shrink
   steadily) and the cells are matched again on the fitted positions.

Steps 2 and 3 are this module's. The result is a score per cell and
character, which ``decode`` turns into text with each field's alphabet and
the check digits.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from attrs import frozen

from healthcode.core.mrz import DIGITS, FILLER, LETTERS
from healthcode.plugins.mrz_ocr.geometry import cut
from healthcode.plugins.mrz_ocr.locate.zone import Measured

ALPHABET: Final = LETTERS + DIGITS + FILLER
"""The glyphs, in the order of the score columns."""
PITCH: Final = 22
"""Template width in pixels: one character pitch."""
_FONT_DIRS: Final = (
    Path("/usr/share/fonts/opentype/ocr-b"),
    Path("/usr/share/fonts/truetype/ocr-b"),
    Path("/usr/local/share/fonts"),
)
_ADVANCE_EM: Final = 0.723
"""OCR-B's advance width, in em."""
BEARINGS: Final = 0.32
"""Pitches of a line's length that are not ink: the side bearings of the first
and last glyph (about 0.16 pitch each in OCR-B)."""
# Template window, in pitches, around the cap band (OCR-B caps are ~0.98 pitch tall).
_ABOVE: Final = 0.18
_BELOW: Final = 0.12


def font_path() -> Path | None:
    """The OCR-B font file, or None when ``fonts-ocr-b`` is not installed."""
    for folder in _FONT_DIRS:
        candidate = folder / "OCRB.otf"
        if candidate.is_file():
            return candidate
    return None


@frozen
class Templates:
    vectors: Any
    """(37, h * w) float32: each glyph, zero mean, unit norm."""
    height: int
    width: int
    cap_top: float
    """Row of the cap line in the template; the baseline is at ``cap_top + cap``."""
    cap: float


@functools.cache
def templates() -> Templates | None:
    """The 37 OCR-B glyphs at ``PITCH`` (None without the font)."""
    import numpy as np
    from PIL import Image as PILImage
    from PIL import ImageDraw, ImageFilter, ImageFont

    path = font_path()
    if path is None:
        return None
    # Rendered 4x larger and reduced: antialiased like a camera's pixels.
    size = round(4 * PITCH / _ADVANCE_EM)
    font = ImageFont.truetype(str(path), size)
    advance = float(font.getlength("H"))
    canvas_h = int(size * 1.4)

    def ink_rows(char: str) -> tuple[int, int]:
        page = PILImage.new("L", (int(advance) + 2, canvas_h), 255)
        ImageDraw.Draw(page).text((0, 0), char, fill=0, font=font)
        rows = np.nonzero((np.asarray(page) < 128).any(axis=1))[0]
        return int(rows[0]), int(rows[-1]) + 1

    cap_top, baseline = ink_rows("H")
    cap = baseline - cap_top
    top = cap_top - _ABOVE * advance
    bottom = baseline + _BELOW * advance
    scale = PITCH / advance
    height = round((bottom - top) * scale)
    glyphs = []
    for char in ALPHABET:
        page = PILImage.new("L", (round(advance), round(bottom - top)), 255)
        ImageDraw.Draw(page).text((0, -top), char, fill=0, font=font)
        small = page.resize((PITCH, height), PILImage.Resampling.BOX)
        # A little blur: photos are never as sharp as the outline.
        small = small.filter(ImageFilter.GaussianBlur(0.6))
        vector = np.asarray(small, dtype=np.float32).ravel()
        vector -= vector.mean()
        vector /= max(float(np.linalg.norm(vector)), 1e-6)
        glyphs.append(vector)
    return Templates(np.stack(glyphs), height, PITCH, (cap_top - top) * scale, cap * scale)


@frozen
class LineGeometry:
    """Where a line's cells are: the strip cut at ``PITCH`` per cell."""

    cx: float
    cy: float
    angle: float
    scale: float
    count: int


def line_geometry(measured: Measured, count: int) -> LineGeometry:
    """The cut that puts cell k's centre at ``(k + 0.5) * PITCH`` (plus margin)."""
    import numpy as np

    left, right = measured.left, measured.right
    span = float(np.hypot(*(right - left)))
    pitch = span / (count - BEARINGS)
    angle = math.atan2(float(right[1] - left[1]), float(right[0] - left[0]))
    centre = (left + right) / 2
    return LineGeometry(float(centre[0]), float(centre[1]), angle, PITCH / pitch, count)


@frozen
class LineScores:
    scores: Any
    """(cells, 37) best correlation of each cell with each glyph."""
    mean_best: float


_MARGIN: Final = PITCH  # strip margin on each side, in pixels


def _match(strip: Any, xs: Any, ys: Any, rx: int, ry: int, tpl: Templates) -> tuple[Any, Any]:
    """Scores (cells, 37) and the best shift (cells, 2) of windows at (xs, ys)
    (cell centre x, template top y), each moved by up to rx, ry pixels."""
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view

    h, w = tpl.height, tpl.width
    padded = np.pad(strip, ((ry + h, ry + h), (rx + w, rx + w)), mode="edge")
    patches = []
    for x, y in zip(xs, ys, strict=True):
        x0 = round(x - w / 2) + w
        y0 = round(y) + h
        patches.append(padded[y0 : y0 + h + 2 * ry, x0 : x0 + w + 2 * rx])
    stack = np.stack(patches)  # (n, h + 2ry, w + 2rx)
    windows = sliding_window_view(stack, (h, w), axis=(1, 2))  # (n, 2ry+1, 2rx+1, h, w)
    n, sy, sx = windows.shape[:3]
    flat = windows.reshape(n, sy * sx, h * w).astype(np.float32)
    flat = flat - flat.mean(axis=2, keepdims=True)
    norms = np.linalg.norm(flat, axis=2, keepdims=True)
    flat /= np.maximum(norms, 1e-3)
    scores = flat @ tpl.vectors.T  # (n, shifts, 37)
    best_shift = scores.max(axis=2).argmax(axis=1)
    shifts = np.stack([best_shift % sx - rx, best_shift // sx - ry], axis=1)
    return scores.max(axis=1), shifts


def read_line(grey: Any, geometry: LineGeometry, *, flip: bool = False) -> LineScores | None:
    """Scores of every cell of a line (``flip``: the line read upside down)."""
    import numpy as np

    tpl = templates()
    if tpl is None:
        return None
    count = geometry.count
    width = count * PITCH + 2 * _MARGIN
    height = int(tpl.height * 2.2)
    strip = cut(
        grey,
        geometry.cx,
        geometry.cy,
        geometry.angle + (math.pi if flip else 0.0),
        geometry.scale,
        width,
        height,
    )
    cells = np.arange(count, dtype=np.float64)
    xs = _MARGIN + (cells + 0.5) * PITCH
    # The cap band is centred on the strip's middle row.
    ys = np.full(count, height / 2 - tpl.cap / 2 - tpl.cap_top)
    rx, ry = round(PITCH * 0.3), round(PITCH * 0.18)
    scores, shifts = _match(strip, xs, ys, rx, ry, tpl)
    best = scores.max(axis=1)
    # Fit the shifts of the sure cells: quadratic along x (perspective), linear in y.
    sure = best >= max(float(np.percentile(best, 40)), 0.5)
    if sure.sum() >= 6:
        fx = np.polyfit(cells[sure], shifts[sure, 0], 2)
        fy = np.polyfit(cells[sure], shifts[sure, 1], 1)
        xs = xs + np.polyval(fx, cells)
        ys = ys + np.polyval(fy, cells)
        scores, _shifts = _match(strip, xs, ys, 2, 2, tpl)
        best = scores.max(axis=1)
    return LineScores(scores, float(best.mean()))


def read_zone_lines(
    grey: Any, measured: Sequence[Measured], count: int
) -> tuple[list[LineScores], bool] | None:
    """Scores of the zone's lines, top to bottom as printed, and whether the
    zone was read upside down (decided by which way the glyphs match better)."""
    geometries = [line_geometry(m, count) for m in measured]
    upright = [read_line(grey, g) for g in geometries[:1]]
    turned = [read_line(grey, g, flip=True) for g in geometries[:1]]
    if upright[0] is None or turned[0] is None:
        return None
    flip = turned[0].mean_best > upright[0].mean_best
    lines = [upright[0] if not flip else turned[0]]
    for geometry in geometries[1:]:
        scores = read_line(grey, geometry, flip=flip)
        if scores is None:
            return None
        lines.append(scores)
    return (lines[::-1] if flip else lines), flip
