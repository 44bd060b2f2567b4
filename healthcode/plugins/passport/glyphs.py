"""Reading a located MRZ by OCR-B glyph templates (no OCR engine).

ICAO 9303 prints the zone in one typeface (OCR-B), at one pitch (10
characters per inch), on a fixed grid of 30, 36 or 44 cells per line. So once
a line is cut out straight, every cell can be compared with the 37 glyphs of
the MRZ alphabet rendered from the font itself (normalised cross-correlation,
which ignores contrast and uneven light). What this module does per line:

1. **Straighten** the line along its own direction and measure, on the cut,
   where the ink starts and ends and how the text band runs (the located
   angle is refined from the band's height at both ends).
2. **Pitch from the two ends**: the first and last cell are where the ink
   starts and ends, so the pitch is (end - start) / (cells - 0.32) (OCR-B's
   side bearings); the line is cut again at exactly the template pitch.
3. **Match every cell** against the templates, letting each cell move by up
   to a third of the pitch; the shifts of the sure cells are fitted with a
   quadratic along the line (perspective makes the pitch grow or shrink
   steadily) and the cells are matched again on the fitted positions.

The result is a score per cell and character; ``ocr`` turns it into text
with each field's alphabet and the check digits.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from attrs import frozen

ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<"
PITCH: Final = 22
"""Template width in pixels: one character pitch."""
_FONT_DIRS: Final = (
    Path("/usr/share/fonts/opentype/ocr-b"),
    Path("/usr/share/fonts/truetype/ocr-b"),
    Path("/usr/local/share/fonts"),
)
_ADVANCE_EM: Final = 0.723
"""OCR-B's advance width, in em."""
_BEARINGS: Final = 0.32
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


def cut(
    grey: Any, cx: float, cy: float, angle: float, scale: float, width: int, height: int
) -> Any:
    """A ``width`` x ``height`` float strip whose centre is image point (cx, cy),
    its x axis along ``angle``, at ``scale`` strip pixels per image pixel."""
    import numpy as np
    from PIL import Image as PILImage

    cos_a, sin_a = math.cos(angle), math.sin(angle)
    a, b = cos_a / scale, -sin_a / scale
    d, e = sin_a / scale, cos_a / scale
    c = cx - a * width / 2 - b * height / 2
    f = cy - d * width / 2 - e * height / 2
    strip = PILImage.fromarray(grey).transform(
        (max(width, 1), max(height, 1)),
        PILImage.Transform.AFFINE,
        (a, b, c, d, e, f),
        resample=PILImage.Resampling.BILINEAR,
        fillcolor=255,
    )
    return np.asarray(strip, dtype=np.float32)


def _to_image(
    u: float, v: float, cx: float, cy: float, angle: float, scale: float, width: int, height: int
) -> tuple[float, float]:
    """Strip point (u, v) of ``cut(grey, cx, cy, angle, scale, width, height)`` in the image."""
    du, dv = (u - width / 2) / scale, (v - height / 2) / scale
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    return cx + du * cos_a - dv * sin_a, cy + du * sin_a + dv * cos_a


def _ink(strip: Any) -> Any:
    """Dark-text mask of a strip, robust to a light gradient along it."""
    import numpy as np
    from scipy import ndimage as ndi  # type: ignore[import-untyped, unused-ignore]

    background = ndi.maximum_filter(strip, size=(max(strip.shape[0] // 2, 3), 15))
    darkness = background - strip
    level = max(float(np.percentile(darkness, 97)) * 0.45, 18.0)
    return darkness > level


@frozen
class LineGeometry:
    """Where a line's cells are: the strip cut at ``PITCH`` per cell."""

    cx: float
    cy: float
    angle: float
    scale: float
    count: int


@frozen
class Measured:
    """A line measured on a first cut: its ink extent and text band."""

    left: Any
    """(x, y) image point of the start of the ink, on the band's centre line."""
    right: Any
    band: float
    """Cap height in image pixels."""


def measure_line(
    grey: Any, cx: float, cy: float, angle: float, length: float, thickness: float
) -> Measured | None:
    """Ink extent and band of a located line (its box is only approximate)."""
    import numpy as np

    scale = min(30.0 / max(thickness, 1.0), 4.0)
    width = int((length * 1.15 + 2 * thickness) * scale)
    height = int(2.2 * thickness * scale)
    strip = cut(grey, cx, cy, angle, scale, width, height)
    ink = _ink(strip)
    rows = ink.sum(axis=1).astype(np.float64)
    if rows.max() <= 0:
        return None
    # The band: the run of busy rows around the middle (not a neighbouring line).
    busy = rows > 0.3 * rows.max()
    middle = height // 2
    centre = int(np.argmax(busy[max(middle - height // 4, 0) : middle + height // 4 + 1]))
    centre += max(middle - height // 4, 0)
    if not busy[centre]:
        return None
    top = centre
    while top > 0 and busy[top - 1]:
        top -= 1
    bottom = centre
    while bottom < height - 1 and busy[bottom + 1]:
        bottom += 1
    band_h = bottom - top + 1
    if band_h < 4:
        return None
    margin = max(int(band_h * 0.25), 1)
    band = ink[max(top - margin, 0) : bottom + margin + 1]
    columns = band.sum(axis=0) >= 1
    xs = np.nonzero(columns)[0]
    if len(xs) < 10:
        return None
    # The line's ink: the longest cluster of columns with gaps under ~1.3 caps.
    gaps = np.diff(xs)
    splits = np.nonzero(gaps > 1.3 * band_h)[0]
    starts = np.concatenate(([0], splits + 1))
    ends = np.concatenate((splits, [len(xs) - 1]))
    spans = [(int(xs[s]), int(xs[e])) for s, e in zip(starts, ends, strict=True)]
    left, right = max(spans, key=lambda span: span[1] - span[0])
    if right - left < 8 * band_h:
        return None

    # Band centre at both ends: corrects the located angle.
    def centre_row(x0: int, x1: int) -> float:
        part = band[:, x0:x1]
        ys = np.nonzero(part)[0]
        return float(ys.mean()) + max(top - margin, 0) if len(ys) else (top + bottom) / 2

    quarter = (right - left) // 5
    left_v = centre_row(left, left + quarter)
    right_v = centre_row(right - quarter, right + 1)
    geometry = (cx, cy, angle, scale, width, height)
    return Measured(
        np.asarray(_to_image(left, left_v, *geometry)),
        np.asarray(_to_image(right, right_v, *geometry)),
        band_h / scale,
    )


def line_geometry(measured: Measured, count: int) -> LineGeometry:
    """The cut that puts cell k's centre at ``(k + 0.5) * PITCH`` (plus margin)."""
    import numpy as np

    left, right = measured.left, measured.right
    span = float(np.hypot(*(right - left)))
    pitch = span / (count - _BEARINGS)
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


_LINE_SPACING: Final = 4.3 / 2.54
"""ICAO line spacing (about 4.3 mm) in character pitches (2.54 mm)."""


def find_zone(
    grey: Any, cx: float, cy: float, angle: float, length: float, thickness: float
) -> list[Measured] | None:
    """The MRZ lines around a located text line, top to bottom.

    A located component can be two lines run together or a line broken in
    two; so the seed is only measured, and its neighbours are looked for
    where the ICAO line spacing puts them: parallel lines whose ink starts
    and ends where the seed's does."""
    import numpy as np

    seed = measure_line(grey, cx, cy, angle, length, thickness)
    if seed is None:
        return None
    direction = seed.right - seed.left
    span = float(np.hypot(*direction))
    unit = direction / max(span, 1e-6)
    normal = np.array([-unit[1], unit[0]])
    line_angle = math.atan2(float(unit[1]), float(unit[0]))
    pitch = seed.band / 0.98
    step = _LINE_SPACING * pitch
    middle = (seed.left + seed.right) / 2
    found: dict[int, Measured] = {0: seed}
    for sign in (-1, 1):
        for k in (1, 2):
            centre = middle + sign * k * step * normal
            other = measure_line(
                grey, float(centre[0]), float(centre[1]), line_angle, span, seed.band
            )
            if other is None:
                break
            other_span = float(np.hypot(*(other.right - other.left)))
            offset = other.left - seed.left
            along = float(offset @ unit)
            across = float(offset @ normal)
            if (
                abs(other_span / span - 1) > 0.08
                or abs(along) > 1.2 * pitch
                or abs(abs(across) - k * step) > 0.35 * step
                or abs(other.band / seed.band - 1) > 0.35
            ):
                break
            found[sign * k] = other
    ordered = [found[k] for k in sorted(found)]
    if len(ordered) > 3:
        return None
    return ordered


@frozen
class Seed:
    """A long dark-text component: where to look for an MRZ line (full-size pixels)."""

    cx: float
    cy: float
    length: float
    thickness: float
    angle: float


def find_seeds(grey: Any, *, size: int = 900, limit: int = 6) -> list[Seed]:
    """Long text-like components, longest first. Noise specks are removed
    before lines are joined, so a noisy photo does not glue the zone's lines
    and the page's specks into one blob; blobs of several lines are kept
    (``find_zone`` takes the lines apart)."""
    import numpy as np
    from PIL import Image as PILImage
    from scipy import ndimage as ndi  # type: ignore[import-untyped, unused-ignore]

    height, width = grey.shape
    scale = min(size / max(width, height), 1.0)
    small = np.asarray(
        PILImage.fromarray(grey).resize(
            (max(int(width * scale), 1), max(int(height * scale), 1)),
            PILImage.Resampling.BILINEAR,
        ),
        dtype=np.float32,
    )
    small = ndi.gaussian_filter(small, 1.0)
    kernel = max(int(max(small.shape) / 90), 3)
    blackhat = ndi.grey_closing(small, size=(kernel, kernel)) - small
    threshold = max(float(np.percentile(blackhat, 90)), 14.0)
    mask = blackhat > threshold
    mask = ndi.binary_opening(mask, structure=np.ones((2, 2)))
    mask = ndi.binary_closing(mask, structure=np.ones((1, kernel * 2)))
    labels, _count = ndi.label(mask)
    seeds = []
    minimum = 0.2 * max(small.shape)
    for index, window in enumerate(ndi.find_objects(labels)):
        if window is None:
            continue
        if max(window[0].stop - window[0].start, window[1].stop - window[1].start) < minimum:
            continue
        ys, xs = np.nonzero(labels[window] == index + 1)
        xs = xs + window[1].start
        ys = ys + window[0].start
        mx, my = float(xs.mean()), float(ys.mean())
        cov = np.cov(np.vstack([xs - mx, ys - my]))
        _values, vectors = np.linalg.eigh(cov)
        vx, vy = float(vectors[0, 1]), float(vectors[1, 1])
        if vx < 0:
            vx, vy = -vx, -vy
        along = (xs - mx) * vx + (ys - my) * vy
        across = -(xs - mx) * vy + (ys - my) * vx
        length = float(np.percentile(along, 99.5) - np.percentile(along, 0.5))
        thickness = float(np.percentile(across, 95) - np.percentile(across, 5))
        if length < minimum or thickness < 2 or length / thickness < 3:
            continue
        mid = float(np.percentile(along, 99.5) + np.percentile(along, 0.5)) / 2
        mid_across = float(np.percentile(across, 95) + np.percentile(across, 5)) / 2
        seeds.append(
            Seed(
                (mx + mid * vx - mid_across * vy) / scale,
                (my + mid * vy + mid_across * vx) / scale,
                length / scale,
                thickness / scale,
                math.atan2(vy, vx),
            )
        )
    seeds.sort(key=lambda seed: -seed.length)
    return seeds[:limit]
