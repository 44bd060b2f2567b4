"""Dark-text components of a reduced photo, each with its own orientation:
what both locators start from."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from attrs import frozen


@frozen
class TextLine:
    """A line (or band of lines) of text found on the image: an oriented box
    in full-size pixels."""

    cx: float
    cy: float
    length: float
    thickness: float
    angle: float
    """Radians, of the line direction (reading left to right)."""


def reduce(grey: Any, size: int) -> tuple[Any, float]:
    """The photo reduced to ``size`` px on its longer side (never enlarged), as
    float32, and the scale applied."""
    import numpy as np
    from PIL import Image as PILImage

    height, width = grey.shape
    scale = min(size / max(width, height), 1.0)
    small = np.asarray(
        PILImage.fromarray(grey).resize(
            (max(int(width * scale), 1), max(int(height * scale), 1)),
            PILImage.Resampling.BILINEAR,
        ),
        dtype=np.float32,
    )
    return small, scale


def text_mask(small: Any, floor: float, *, specks_first: bool) -> Any:
    """Where dark text is on the reduced photo: dark detail smaller than a
    character (black-hat filter) above its 90th percentile (at least
    ``floor``), with the characters of a line joined horizontally and specks
    removed (``specks_first``: before joining, so a noisy photo does not glue
    lines and specks into one blob)."""
    import numpy as np
    from scipy import ndimage as ndi  # type: ignore[import-untyped, unused-ignore]

    kernel = max(int(max(small.shape) / 90), 3)
    dark = ndi.grey_closing(small, size=(kernel, kernel)) - small
    mask = dark > max(float(np.percentile(dark, 90)), floor)
    join, specks = np.ones((1, kernel * 2)), np.ones((2, 2))
    if specks_first:
        return ndi.binary_closing(ndi.binary_opening(mask, structure=specks), structure=join)
    return ndi.binary_opening(ndi.binary_closing(mask, structure=join), structure=specks)


def connected_components(mask: Any) -> Iterator[tuple[tuple[slice, slice], Any, Any]]:
    """Each connected component of ``mask``: its window and the x and y of its pixels."""
    import numpy as np
    from scipy import ndimage as ndi  # type: ignore[import-untyped, unused-ignore]

    labels, _count = ndi.label(mask)
    for index, window in enumerate(ndi.find_objects(labels)):
        if window is None:
            continue
        ys, xs = np.nonzero(labels[window] == index + 1)
        yield window, xs + window[1].start, ys + window[0].start


def oriented_box(
    xs: Any, ys: Any, along: tuple[float, float], across: tuple[float, float]
) -> TextLine:
    """The component's box along its principal axis, in the pixels of ``xs``/``ys``.

    ``along`` and ``across``: the percentiles taken for its ends and its sides
    (a few stray pixels do not make a line longer or thicker)."""
    import numpy as np

    mx, my = float(xs.mean()), float(ys.mean())
    cov = np.cov(np.vstack([xs - mx, ys - my]))
    _values, vectors = np.linalg.eigh(cov)
    vx, vy = float(vectors[0, 1]), float(vectors[1, 1])
    if vx < 0:
        vx, vy = -vx, -vy
    along_px = (xs - mx) * vx + (ys - my) * vy
    across_px = -(xs - mx) * vy + (ys - my) * vx
    start, end = (float(np.percentile(along_px, p)) for p in along)
    side_a, side_b = (float(np.percentile(across_px, p)) for p in across)
    mid = (end + start) / 2
    mid_across = (side_b + side_a) / 2
    return TextLine(
        cx=mx + mid * vx - mid_across * vy,
        cy=my + mid * vy + mid_across * vx,
        length=end - start,
        thickness=side_b - side_a,
        angle=math.atan2(vy, vx),
    )


def scaled(line: TextLine, scale: float) -> TextLine:
    """A box found on the reduced photo, in full-size pixels."""
    return TextLine(
        cx=line.cx / scale,
        cy=line.cy / scale,
        length=line.length / scale,
        thickness=line.thickness / scale,
        angle=line.angle,
    )
