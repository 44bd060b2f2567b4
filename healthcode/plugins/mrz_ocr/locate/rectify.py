"""Rectifying a zone seen at an angle: the photo warped so that the zone's
lines are straight, level and evenly pitched.

A document photographed at an angle (a card held in the hand, a page not
facing the camera) shows its zone as a quadrilateral, not a rectangle: the
pitch grows along a line and the lines are not parallel. The first and last
measured lines of a zone give that quadrilateral's four corners (where their
ink starts and ends, on their band's centre line); since every line of a
zone has the same number of cells, those corners are the same cell edges on
the printed page, and the homography that maps them onto a rectangle undoes
the perspective. The zone is also brought to one character height, so a
small zone in a large photo is read at the size the readers like, and its
contrast is evened out (CLAHE), which lifts a faint print or one under glare
or a coloured highlight.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from healthcode.plugins.mrz_ocr.locate.zone import Measured

CAP_PX: Final = 26.0
"""Cap height of the rectified zone, in pixels."""
_MARGIN_CAPS: Final = 2.5
"""Context kept around the zone, in cap heights (the locators need some page)."""
_MAX_SCALE: Final = 6.0
"""A zone is not enlarged more than this (there is nothing more to read)."""


def rectify_zone(grey: Any, zone: Sequence[Measured]) -> Any | None:
    """The zone of ``grey`` (greyscale ``uint8``) warped onto a rectangle, with
    a margin of page around it; None for a zone of one line (its quadrilateral
    is unknown) or a degenerate one."""
    import cv2
    import numpy as np

    if len(zone) < 2:
        return None
    first, last = zone[0], zone[-1]
    spans = [float(np.hypot(*(m.right - m.left))) for m in (first, last)]
    distance = float(np.hypot(*((first.left + first.right - last.left - last.right) / 2)))
    band = float(np.mean([m.band for m in zone]))
    if min(spans) < 8 * band or distance < band:
        return None
    scale = min(CAP_PX / max(band, 1.0), _MAX_SCALE)
    width, height = scale * sum(spans) / 2, scale * distance
    margin = _MARGIN_CAPS * CAP_PX
    source = np.array([first.left, first.right, last.right, last.left], dtype=np.float32)
    target = np.array(
        [
            [margin, margin],
            [margin + width, margin],
            [margin + width, margin + height],
            [margin, margin + height],
        ],
        dtype=np.float32,
    )
    homography = cv2.getPerspectiveTransform(source, target)
    size = (int(width + 2 * margin), int(height + 2 * margin))
    warped = cv2.warpPerspective(
        grey, homography, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 2))
    return np.ascontiguousarray(clahe.apply(warped))
