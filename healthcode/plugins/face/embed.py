"""Alignment, SFace embeddings (OpenCV's DNN module) and 1:1 comparison.

A face is aligned from five mediapipe landmarks (eye centres, nose tip, mouth
corners) onto the 112x112 five-point template SFace was trained with (the same
template OpenCV's ``FaceRecognizerSF.alignCrop`` uses), by a least-squares
similarity transform. The 128-d output is L2-normalised, so the cosine
similarity is a dot product.

The embedding runs the pinned SFace file through OpenCV's DNN module
(``cv2.dnn``, installed with mediapipe), which fuses each convolution with its
batch norm and PReLU. onnxruntime, even at its highest graph optimisation
level, leaves this graph's 27 PReLU activations as separate nodes after the 27
convolutions (its Conv activation fusion does not cover PRelu), one more pass
over every activation map: issue 17 measured 17.0 ms against 6.6 ms on a quiet
machine; bench/bench_faces.py compares both in one run. The onnxruntime path
stays callable (``runtime="onnxruntime"``, or
``HEALTHCODE_FACE_RUNTIME=onnxruntime``); tests check that both give the same
embeddings (cosine > 0.999). Batching does not pay here: a batch of four costs
four single runs in cv2.dnn, and the export fixes onnxruntime's batch at one.

Templates are bytes: a 4-byte tag (``HCF1``: format and model version) and
128 little-endian float32. ``compare_templates`` returns ``None`` for bytes
that do not carry that tag (another plugin's templates).
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from healthcode.core.models import Face, FaceMatch, Image
from healthcode.plugins.face.errors import ModelMissingError
from healthcode.plugins.face.memo import memo
from healthcode.plugins.face.modelstore import FETCH_COMMAND, MODELS, SFACE, require_model
from healthcode.plugins.face.onnxwire import constant_initializers
from healthcode.plugins.face.quiet import quiet_native_logs

Runtime = Literal["opencv", "onnxruntime"]
RUNTIME_ENV = "HEALTHCODE_FACE_RUNTIME"
RUNTIMES: tuple[Runtime, ...] = ("opencv", "onnxruntime")

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


def eye_centres(
    points: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The centres of the eye on the image's left and of the other, in pixels,
    from the landmarks' x and y (the mean of each eye's two corners)."""
    return points[list(_LEFT_EYE)].mean(axis=0), points[list(_RIGHT_EYE)].mean(axis=0)


def five_points(face: Face) -> npt.NDArray[np.float64]:
    """Eye centres, nose tip and mouth corners in pixels, from 478 landmarks."""
    points = np.asarray(face.landmarks, dtype=np.float64)[:, :2]
    return np.array(
        [
            *eye_centres(points),
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


def configured_runtime(environ: dict[str, str] | None = None) -> Runtime:
    """The embedding runtime: ``opencv`` unless ``HEALTHCODE_FACE_RUNTIME`` says otherwise."""
    env = os.environ if environ is None else environ
    value = env.get(RUNTIME_ENV, "").strip().lower() or "opencv"
    return "onnxruntime" if value == "onnxruntime" else "opencv"


def _model_bytes() -> bytes:
    """The SFace file's bytes, checked against the pinned sha256 as read (the
    file could change between ``require_model``'s check and this read)."""
    path = require_model(SFACE)
    data = path.read_bytes()
    pinned = next(m.sha256 for m in MODELS if m.name == SFACE)
    if hashlib.sha256(data).hexdigest() != pinned:
        raise ModelMissingError(
            f"The face model {SFACE} does not match its pinned sha256. "
            f"Run `{FETCH_COMMAND} --force`.",
            f"人脸模型 {SFACE} 的 sha256 校验失败。请运行 `{FETCH_COMMAND} --force`。",
            details={"model": SFACE, "path": str(path), "fix": f"{FETCH_COMMAND} --force"},
        )
    return data


@functools.cache
def _session() -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    # One thread measured faster than two on the 2-core machine (27 vs 44 ms per
    # face): the graph is small and threads contend with mediapipe's. A server
    # scales by running more workers.
    options.intra_op_num_threads = int(os.environ.get("HEALTHCODE_ORT_THREADS", "1"))
    # The export lists its weights as graph inputs too, which blocks constant
    # folding and Conv+BatchNorm fusion; drop those entries in memory (about 20% faster here).
    model = constant_initializers(_model_bytes())
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


@functools.cache
def _net() -> Any:
    import cv2

    buffer = np.frombuffer(_model_bytes(), dtype=np.uint8)
    with quiet_native_logs():
        return cv2.dnn.readNetFromONNX(buffer)


def warm_up(runtime: Runtime | None = None) -> None:
    if (runtime or configured_runtime()) == "onnxruntime":
        _session()
    else:
        _net()


def _blob(aligned: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """SFace takes RGB, 0..255, NCHW, no mean or scale (as OpenCV feeds it)."""
    return np.ascontiguousarray(aligned.astype(np.float32).transpose(2, 0, 1)[None])


def raw_embedding(
    aligned: npt.NDArray[np.uint8], runtime: Runtime | None = None
) -> npt.NDArray[np.float32]:
    """SFace's 128 outputs for an aligned crop, not normalised."""
    blob = _blob(aligned)
    if (runtime or configured_runtime()) == "onnxruntime":
        session = _session()
        with _lock:
            (output,) = session.run(None, {"data": blob})
    else:
        net = _net()
        with _lock:  # a cv2.dnn.Net holds its input: one forward at a time
            net.setInput(blob)
            output = net.forward()
    return np.asarray(output, dtype=np.float32).reshape(-1)


def embed(
    aligned: npt.NDArray[np.uint8], runtime: Runtime | None = None
) -> npt.NDArray[np.float32]:
    """L2-normalised 128-d embedding of an aligned RGB 112x112 crop."""
    vector = raw_embedding(aligned, runtime)
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm > 0 else vector).astype(np.float32)


def face_embedding(image: Image, face: Face) -> npt.NDArray[np.float32]:
    """The embedding of ``face`` in ``image``; once per face that ``detect_faces``
    returned for a live image (:mod:`healthcode.plugins.face.memo`)."""
    remembered = memo.embedding(image, face)
    if remembered is not None:
        return remembered
    vector = embed(align(image, face))
    vector.flags.writeable = False  # shared by every later look at this face
    memo.remember_embedding(image, face, vector)
    return vector


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
