"""The portrait on a document page, compared with a live capture.

The enrollment of a passport holder has no authority photo to compare against:
the portrait printed on the data page is the reference. We find it with the same
landmarker (the largest face on the page), cut it out with a margin so that
later steps see a portrait-sized image, and compare it 1:1 with the capture.
"""

from __future__ import annotations

import numpy as np
from attrs import frozen

from healthcode.core.models import Face, FaceMatch, Image, Problem
from healthcode.plugins.face.errors import FaceQualityError

PORTRAIT_MARGIN = 0.5
"""Extra space around the face box on each side, as a share of the box size."""


@frozen
class Portrait:
    image: Image
    """The portrait cut out of the page (RGB)."""
    face: Face
    """The face, in the coordinates of ``image``."""
    box_on_page: tuple[int, int, int, int]
    """x, y, width, height of the cut-out on the page."""


def find_portrait(page: Image) -> Portrait:
    """The largest face on a document page, cut out with a margin."""
    from healthcode.plugins.face.detect import detect_faces

    faces = detect_faces(page)
    if not faces:
        raise FaceQualityError(
            "No portrait was found on the document.",
            "证件上未找到人像照片。",
            code="no_portrait",
            details={"problems": ["no_portrait"]},
        )
    face = faces[0]  # largest first; a ghost image is smaller
    x, y, w, h = face.box
    left = max(int(x - w * PORTRAIT_MARGIN), 0)
    top = max(int(y - h * PORTRAIT_MARGIN), 0)
    right = min(int(x + w * (1 + PORTRAIT_MARGIN)), page.width)
    bottom = min(int(y + h * (1 + PORTRAIT_MARGIN)), page.height)
    pixels = np.ascontiguousarray(np.asarray(page.pixels)[top:bottom, left:right])
    crop = Image(pixels=pixels, width=right - left, height=bottom - top)
    landmarks = np.asarray(face.landmarks).copy()
    landmarks[:, 0] -= left
    landmarks[:, 1] -= top
    moved = Face(
        box=(x - left, y - top, w, h),
        score=face.score,
        landmarks=landmarks,
        measurements=face.measurements,
    )
    return Portrait(image=crop, face=moved, box_on_page=(left, top, right - left, bottom - top))


def compare_portrait_with_capture(page: Image, capture: Image) -> tuple[FaceMatch, list[Problem]]:
    """1:1 match of the document portrait with a live capture.

    The capture must pass the quality gates (one face, in frame, sharp, lit);
    the portrait only needs to be found (printed portraits are small and
    screened). Returns the match and the portrait's quality findings, as warnings.
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
        face_embedding(portrait.image, portrait.face), face_embedding(capture, live_face)
    )
    return match, warnings
