"""The portrait on a document page: where it is, and its 1:1 match with a capture.

The enrollment of a passport holder has no authority photo to compare against:
the portrait printed on the data page is the reference. Two ways lead to it,
cut out the same way (:func:`portrait_region`, one margin):

* an image reader reports the portrait's area on the page (the passport OCR
  does, from the page layout); enrollment cuts that area out through the
  ``healthcode_portrait_region`` hook and looks for the face inside it;
* :func:`find_portrait` finds it with the landmarker (the largest face on the
  page), for ``healthcode faces portrait``.
"""

from __future__ import annotations

import numpy as np
from attrs import frozen

from healthcode.core.models import Face, FaceMatch, Image, Problem
from healthcode.plugins.face.errors import FaceQualityError

PORTRAIT_MARGIN = 0.15
"""Extra space around a portrait's box on each side, as a share of the box
size: enough for the face's outline when the reported box is tight."""
MIN_PORTRAIT_SIDE = 16
"""A cut-out narrower or lower than this (pixels) is no portrait."""


@frozen
class Portrait:
    image: Image
    """The portrait cut out of the page (RGB)."""
    face: Face
    """The face, in the coordinates of ``image``."""
    box_on_page: tuple[int, int, int, int]
    """x, y, width, height of the cut-out on the page."""
    face_on_page: Face
    """The face, in the coordinates of the page."""


def region_box(
    page: Image, box: tuple[float, float, float, float]
) -> tuple[int, int, int, int] | None:
    """``box`` grown by ``PORTRAIT_MARGIN`` and clipped to the page, as
    ``left, top, right, bottom``; ``None`` when too small to be a portrait."""
    x, y, w, h = (int(v) for v in box)
    dx, dy = int(w * PORTRAIT_MARGIN), int(h * PORTRAIT_MARGIN)
    left, top = max(x - dx, 0), max(y - dy, 0)
    right, bottom = min(x + w + dx, page.width), min(y + h + dy, page.height)
    if right - left < MIN_PORTRAIT_SIDE or bottom - top < MIN_PORTRAIT_SIDE:
        return None
    return left, top, right, bottom


def _cut(page: Image, edges: tuple[int, int, int, int]) -> Image:
    left, top, right, bottom = edges
    pixels = np.ascontiguousarray(np.asarray(page.pixels)[top:bottom, left:right])
    return Image(pixels=pixels, width=right - left, height=bottom - top)


def portrait_region(page: Image, box: tuple[int, int, int, int]) -> Image | None:
    """The portrait area ``box`` of ``page`` with the margin; ``None`` when too small."""
    edges = region_box(page, box)
    return None if edges is None else _cut(page, edges)


def find_portrait(page: Image) -> Portrait:
    """The largest face on a document page, cut out with the portrait margin."""
    from healthcode.plugins.face.detect import detect_faces

    faces = detect_faces(page)
    edges = region_box(page, faces[0].box) if faces else None  # largest first
    if edges is None:
        raise FaceQualityError(
            "No portrait was found on the document.",
            "证件上未找到人像照片。",
            code="no_portrait",
            details={"problems": ["no_portrait"]},
        )
    face = faces[0]
    left, top, right, bottom = edges
    x, y, w, h = face.box
    landmarks = np.asarray(face.landmarks).copy()
    landmarks[:, 0] -= left
    landmarks[:, 1] -= top
    moved = Face(
        box=(x - left, y - top, w, h),
        score=face.score,
        landmarks=landmarks,
        measurements=face.measurements,
    )
    return Portrait(
        image=_cut(page, edges),
        face=moved,
        box_on_page=(left, top, right - left, bottom - top),
        face_on_page=face,
    )


def compare_portrait_with_capture(page: Image, capture: Image) -> tuple[FaceMatch, list[Problem]]:
    """1:1 match of the document portrait with a live capture.

    The capture must pass the quality gates (one face, in frame, sharp, lit);
    the portrait only needs to be found (printed portraits are small and
    screened). Returns the match and the portrait's quality findings, as warnings.
    The portrait is aligned from the page itself, so that the cut-out's margin
    never clips the aligned face.
    """
    from healthcode.plugins.face.detect import assess_quality, single_face
    from healthcode.plugins.face.embed import compare_embeddings, face_embedding

    portrait = find_portrait(page)
    live_face = single_face(capture)
    warnings = [
        Problem(p.code, p.message_en, p.message_zh, "warning", "portrait", p.details)
        for p in assess_quality([portrait.face])
    ]
    match = compare_embeddings(
        face_embedding(page, portrait.face_on_page), face_embedding(capture, live_face)
    )
    return match, warnings
