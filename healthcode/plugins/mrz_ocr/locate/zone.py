"""Locating the zone for the template reader: long text components are seeds;
each is measured on a straight cut (where its ink starts and ends, how its
text band runs), and its neighbours are looked for where ICAO's line spacing
puts them."""

from __future__ import annotations

import math
from typing import Any, Final

from attrs import frozen

from healthcode.plugins.mrz_ocr.geometry import cut, strip_to_image
from healthcode.plugins.mrz_ocr.locate.components import (
    TextLine,
    connected_components,
    oriented_box,
    reduce,
    scaled,
    text_mask,
)

_LINE_SPACING: Final = 4.3 / 2.54
"""ICAO line spacing (about 4.3 mm) in character pitches (2.54 mm)."""


@frozen
class Measured:
    """A line measured on a first cut: its ink extent and text band."""

    left: Any
    """(x, y) image point of the start of the ink, on the band's centre line."""
    right: Any
    band: float
    """Cap height in image pixels."""


def find_seeds(grey: Any, *, size: int = 900, limit: int = 6) -> list[TextLine]:
    """Long text-like components, longest first. Noise specks are removed
    before lines are joined, so a noisy photo does not glue the zone's lines
    and the page's specks into one blob; blobs of several lines are kept
    (``find_zone`` takes the lines apart)."""
    from scipy import ndimage as ndi  # type: ignore[import-untyped, unused-ignore]

    small, scale = reduce(grey, size)
    mask = text_mask(ndi.gaussian_filter(small, 1.0), 14.0, specks_first=True)
    seeds = []
    minimum = 0.2 * max(small.shape)
    for window, xs, ys in connected_components(mask):
        if max(window[0].stop - window[0].start, window[1].stop - window[1].start) < minimum:
            continue
        box = oriented_box(xs, ys, along=(0.5, 99.5), across=(5, 95))
        if box.length < minimum or box.thickness < 2 or box.length / box.thickness < 3:
            continue
        seeds.append(scaled(box, scale))
    seeds.sort(key=lambda seed: -seed.length)
    return seeds[:limit]


def _ink(strip: Any) -> Any:
    """Dark-text mask of a strip, robust to a light gradient along it."""
    import numpy as np
    from scipy import ndimage as ndi  # type: ignore[import-untyped, unused-ignore]

    background = ndi.maximum_filter(strip, size=(max(strip.shape[0] // 2, 3), 15))
    darkness = background - strip
    level = max(float(np.percentile(darkness, 97)) * 0.45, 18.0)
    return darkness > level


def measure_line(
    grey: Any, cx: float, cy: float, angle: float, length: float, thickness: float
) -> Measured | None:
    """Ink extent and band of a located line (its box is only approximate)."""
    import numpy as np

    scale = min(30.0 / max(thickness, 1.0), 4.0)
    width = int((length * 1.15 + 2 * thickness) * scale)
    height = int(2.2 * thickness * scale)
    ink = _ink(cut(grey, cx, cy, angle, scale, width, height))
    rows = _text_band(ink, height)
    if rows is None:
        return None
    top, bottom = rows
    band_h = bottom - top + 1
    margin = max(int(band_h * 0.25), 1)
    band_top = max(top - margin, 0)
    band = ink[band_top : bottom + margin + 1]
    extent = _ink_extent(band, band_h)
    if extent is None:
        return None
    left, right = extent
    # Band centre at both ends: corrects the located angle.
    quarter = (right - left) // 5
    middle = (top + bottom) / 2
    left_v = _centre_row(band, left, left + quarter, band_top, middle)
    right_v = _centre_row(band, right - quarter, right + 1, band_top, middle)
    geometry = (cx, cy, angle, scale, width, height)
    return Measured(
        np.asarray(strip_to_image(left, left_v, *geometry)),
        np.asarray(strip_to_image(right, right_v, *geometry)),
        band_h / scale,
    )


def _text_band(ink: Any, height: int) -> tuple[int, int] | None:
    """First and last row of the run of busy rows around the middle of the cut
    (not a neighbouring line); None when there is no band at least 4 rows high."""
    import numpy as np

    rows = ink.sum(axis=1).astype(np.float64)
    if rows.max() <= 0:
        return None
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
    if bottom - top + 1 < 4:
        return None
    return top, bottom


def _ink_extent(band: Any, band_h: int) -> tuple[int, int] | None:
    """First and last column of the line's ink: the longest cluster of columns
    with gaps under ~1.3 caps, at least 8 caps long."""
    import numpy as np

    columns = band.sum(axis=0) >= 1
    xs = np.nonzero(columns)[0]
    if len(xs) < 10:
        return None
    gaps = np.diff(xs)
    splits = np.nonzero(gaps > 1.3 * band_h)[0]
    starts = np.concatenate(([0], splits + 1))
    ends = np.concatenate((splits, [len(xs) - 1]))
    spans = [(int(xs[s]), int(xs[e])) for s, e in zip(starts, ends, strict=True)]
    left, right = max(spans, key=lambda span: span[1] - span[0])
    if right - left < 8 * band_h:
        return None
    return left, right


def _centre_row(band: Any, x0: int, x1: int, offset: int, fallback: float) -> float:
    """Mean ink row of the band between columns x0 and x1, in rows of the cut."""
    import numpy as np

    ys = np.nonzero(band[:, x0:x1])[0]
    return float(ys.mean()) + offset if len(ys) else fallback


def find_zone(grey: Any, seed_line: TextLine) -> list[Measured] | None:
    """The MRZ lines around a located text line, top to bottom.

    A located component can be two lines run together or a line broken in
    two; so the seed is only measured, and its neighbours are looked for
    where the ICAO line spacing puts them: parallel lines whose ink starts
    and ends where the seed's does."""
    seed = measure_line(
        grey, seed_line.cx, seed_line.cy, seed_line.angle, seed_line.length, seed_line.thickness
    )
    if seed is None:
        return None
    found: dict[int, Measured] = {0: seed}
    for sign in (-1, 1):
        for k in (1, 2):
            other = _neighbour(grey, seed, sign, k)
            if other is None:
                break
            found[sign * k] = other
    ordered = [found[k] for k in sorted(found)]
    if len(ordered) > 3:
        return None
    return ordered


def _neighbour(grey: Any, seed: Measured, sign: int, k: int) -> Measured | None:
    """The line ``k`` line spacings from the seed (``sign``: above or below),
    when one is there: as long as the seed, starting where it does, with a
    band of its height."""
    import numpy as np

    direction = seed.right - seed.left
    span = float(np.hypot(*direction))
    unit = direction / max(span, 1e-6)
    normal = np.array([-unit[1], unit[0]])
    pitch = seed.band / 0.98
    step = _LINE_SPACING * pitch
    centre = (seed.left + seed.right) / 2 + sign * k * step * normal
    line_angle = math.atan2(float(unit[1]), float(unit[0]))
    other = measure_line(grey, float(centre[0]), float(centre[1]), line_angle, span, seed.band)
    if other is None:
        return None
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
        return None
    return other
