"""Cutting a straight strip out of a photo along a line, and mapping strip
points back into the photo."""

from __future__ import annotations

import math
from typing import Any


def cut_strip(
    grey: Any,
    cx: float,
    cy: float,
    angle: float,
    scale: float,
    width: int,
    height: int,
    *,
    bicubic: bool = False,
) -> Any:
    """A ``width`` x ``height`` strip (a PIL image) whose centre is image point
    (cx, cy), its x axis along ``angle``, at ``scale`` strip pixels per image
    pixel; outside the photo is white."""
    from PIL import Image as PILImage

    cos_a, sin_a = math.cos(angle), math.sin(angle)
    a, b = cos_a / scale, -sin_a / scale
    d, e = sin_a / scale, cos_a / scale
    c = cx - a * width / 2 - b * height / 2
    f = cy - d * width / 2 - e * height / 2
    resample = PILImage.Resampling.BICUBIC if bicubic else PILImage.Resampling.BILINEAR
    return PILImage.fromarray(grey).transform(
        (max(width, 1), max(height, 1)),
        PILImage.Transform.AFFINE,
        (a, b, c, d, e, f),
        resample=resample,
        fillcolor=255,
    )


def cut(
    grey: Any, cx: float, cy: float, angle: float, scale: float, width: int, height: int
) -> Any:
    """``cut_strip`` as a float32 array (bilinear)."""
    import numpy as np

    return np.asarray(cut_strip(grey, cx, cy, angle, scale, width, height), dtype=np.float32)


def strip_to_image(
    u: float, v: float, cx: float, cy: float, angle: float, scale: float, width: int, height: int
) -> tuple[float, float]:
    """Strip point (u, v) of ``cut(grey, cx, cy, angle, scale, width, height)`` in the image."""
    du, dv = (u - width / 2) / scale, (v - height / 2) / scale
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    return cx + du * cos_a - dv * sin_a, cy + du * sin_a + dv * cos_a
