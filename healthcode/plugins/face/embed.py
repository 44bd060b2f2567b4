"""Alignment, SFace embeddings (onnxruntime) and 1:1 comparison.

A face is aligned from five mediapipe landmarks (eye centres, nose tip, mouth
corners) onto the 112x112 five-point template SFace was trained with (the same
template OpenCV's ``FaceRecognizerSF.alignCrop`` uses), by a least-squares
similarity transform. The 128-d output is L2-normalised, so the cosine
similarity is a dot product.

Templates are bytes: a 4-byte tag (``HCF1``: format and model version) and
128 little-endian float32. ``compare_templates`` returns ``None`` for bytes
that do not carry that tag (another plugin's templates).
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from healthcode.core.models import Face, FaceMatch, Image
from healthcode.plugins.face.modelstore import SFACE, require_model
from healthcode.plugins.face.onnxwire import constant_initializers

TEMPLATE_TAG = b"HCF1"
EMBEDDING_SIZE = 128
TEMPLATE_SIZE = len(TEMPLATE_TAG) + 4 * EMBEDDING_SIZE

MATCH_THRESHOLD = 0.40
"""Cosine similarity at or above which two templates are the same person.

Chosen from measurements on the project's test photos, skimage's astronaut and
the insightface 2.1 sample images (bench/README.md, "Faces"): 4 genuine pairs
0.655-0.770, 74 impostor pairs -0.134-0.360. OpenCV documents 0.363 for this
model on LFW (it accepted one impostor pair here); we sit higher, above the
highest impostor seen, because a false accept hands someone else's health pass
to a stranger while a false reject costs a retry."""

# The five-point template (x, y) in a 112x112 crop: the image's left eye,
# right eye, nose tip, left and right mouth corners.
REFERENCE_POINTS = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)

# mediapipe face-mesh indices: eye corners (both eyes), nose tip, mouth corners.
_LEFT_EYE = (33, 133)  # on the image's left (the person's right eye)
_RIGHT_EYE = (362, 263)
_NOSE_TIP = 4
_MOUTH_LEFT = 78
_MOUTH_RIGHT = 308

_lock = threading.Lock()


def five_points(face: Face) -> npt.NDArray[np.float64]:
    """Eye centres, nose tip and mouth corners in pixels, from 478 landmarks."""
    points = np.asarray(face.landmarks, dtype=np.float64)[:, :2]
    return np.array(
        [
            points[list(_LEFT_EYE)].mean(axis=0),
            points[list(_RIGHT_EYE)].mean(axis=0),
            points[_NOSE_TIP],
            points[_MOUTH_LEFT],
            points[_MOUTH_RIGHT],
        ]
    )


def similarity_transform(
    source: npt.NDArray[np.float64], target: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """2x3 matrix of the least-squares similarity (Umeyama) mapping source to target."""
    src_mean, dst_mean = source.mean(axis=0), target.mean(axis=0)
    src, dst = source - src_mean, target - dst_mean
    covariance = dst.T @ src / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1.0
    rotation = u @ sign @ vt
    variance = (src**2).sum() / len(source)
    scale = float(np.trace(np.diag(singular) @ sign) / variance) if variance > 0 else 1.0
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


def align(image: Image, face: Face) -> npt.NDArray[np.uint8]:
    """The 112x112 RGB crop SFace expects."""
    import cv2

    matrix = similarity_transform(five_points(face), REFERENCE_POINTS)
    pixels = np.asarray(image.pixels)
    return np.asarray(
        cv2.warpAffine(pixels, matrix, (112, 112), flags=cv2.INTER_LINEAR, borderValue=0),
        dtype=np.uint8,
    )


@functools.cache
def _session() -> Any:
    import onnxruntime as ort

    path = require_model(SFACE)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # One thread measured faster than two on the 2-core machine (27 vs 44 ms per
    # face): the graph is small and threads contend with mediapipe's. A server
    # scales by running more workers.
    options.intra_op_num_threads = int(os.environ.get("HEALTHCODE_ORT_THREADS", "1"))
    # The export lists its weights as graph inputs too, which blocks constant
    # folding and Conv+BatchNorm fusion; drop those entries in memory (about 20% faster here).
    model = constant_initializers(path.read_bytes())
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def warm_up() -> None:
    _session()


def embed(aligned: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """L2-normalised 128-d embedding of an aligned RGB 112x112 crop."""
    # SFace takes RGB, 0..255, NCHW, no mean or scale (as OpenCV feeds it).
    blob = np.ascontiguousarray(aligned.astype(np.float32).transpose(2, 0, 1)[None])
    session = _session()
    with _lock:
        (output,) = session.run(None, {"data": blob})
    vector = np.asarray(output, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm > 0 else vector).astype(np.float32)


def face_embedding(image: Image, face: Face) -> npt.NDArray[np.float32]:
    return embed(align(image, face))


def to_template(embedding: npt.NDArray[np.float32]) -> bytes:
    return TEMPLATE_TAG + np.asarray(embedding, dtype="<f4").reshape(-1).tobytes()


def from_template(template: bytes) -> npt.NDArray[np.float32] | None:
    """The embedding in ``template``, or ``None`` when it is not one of ours."""
    if len(template) != TEMPLATE_SIZE or not template.startswith(TEMPLATE_TAG):
        return None
    vector = np.frombuffer(template, dtype="<f4", offset=len(TEMPLATE_TAG)).astype(np.float32)
    if not np.all(np.isfinite(vector)):
        return None
    return vector


def cosine(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / norm) if norm > 0 else 0.0


def compare_embeddings(
    a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], threshold: float = MATCH_THRESHOLD
) -> FaceMatch:
    similarity = cosine(a, b)
    return FaceMatch(similarity=similarity, threshold=threshold, is_match=similarity >= threshold)


def compare_templates(a: bytes, b: bytes) -> FaceMatch | None:
    first, second = from_template(a), from_template(b)
    if first is None or second is None:
        return None
    return compare_embeddings(first, second)
