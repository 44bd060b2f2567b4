"""The second recognition engine: PP-OCRv4's text-line recogniser on onnxruntime.

Used only where tesseract is unsure (its first attempt's check digits fail):
an independent engine (a CRNN/SVTR network, not an LSTM over tesseract's
features) trained on many fonts, so it reads MRZs printed in fonts other than
OCR-B. Only the recogniser runs, on the strips the reader has already cut
and straightened; its output classes are restricted to the MRZ alphabet, and
each character's CTC frame gives its position on the strip, so the
fixed-pitch grid (``grid.decode_line``) places it in its cell as it does
tesseract's characters (CTC merges repeated fillers; the grid restores them).

The model is pinned like the face models: the file
``ch_PP-OCRv4_rec_infer.onnx`` inside the ``rapidocr-onnxruntime`` 1.4.4
wheel (Apache-2.0, PaddleOCR's model converted by RapidAI), checked by
sha256, in ``$HEALTHCODE_MODEL_DIR`` (default: the user cache's
``healthcode/models``). The package itself is never installed (it requires
opencv-python, a second OpenCV beside mediapipe's); nothing is downloaded at
run time, and without the file this engine is skipped.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from healthcode.core.mrz import MRZ_ALPHABET
from healthcode.plugins.mrz_ocr.engine import OcrChar

MODEL_NAME: Final = "ch_PP-OCRv4_rec_infer.onnx"
MODEL_SHA256: Final = "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b"
MODEL_SIZE: Final = 10_857_958
WHEEL: Final = "rapidocr-onnxruntime==1.4.4"
WHEEL_SHA256: Final = "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf"
WHEEL_MEMBER: Final = "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx"
INPUT_HEIGHT: Final = 48
_PAD_X: Final = 16
_LOCK = threading.Lock()


def model_path() -> Path:
    """Where the pinned model file is looked for."""
    configured = os.environ.get("HEALTHCODE_MODEL_DIR", "").strip()
    if configured:
        return Path(configured).expanduser() / MODEL_NAME
    import platformdirs

    return Path(platformdirs.user_cache_dir("healthcode", appauthor=False)) / "models" / MODEL_NAME


@functools.cache
def _verified(path: Path, size: int) -> bool:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return size == MODEL_SIZE and digest == MODEL_SHA256


@functools.cache
def _session(path: Path) -> tuple[Any, Any, list[str]] | None:
    """The onnxruntime session, the allowed-class mask and the class characters."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    characters = session.get_modelmeta().custom_metadata_map.get("character", "").splitlines()
    if not characters:
        return None
    classes = ["", *characters, " "]  # CTC blank first, space last (PaddleOCR's convention)
    allowed = np.array([c in MRZ_ALPHABET and len(c) == 1 for c in classes])
    allowed[0] = True
    return session, allowed, classes


def available() -> bool:
    """Whether the pinned model file is present and verified."""
    path = model_path()
    return path.is_file() and _verified(path, path.stat().st_size)


def recognise(strips: Sequence[Any], offsets: Sequence[int], gap: int) -> list[OcrChar]:
    """The MRZ characters of each straightened strip (greyscale ``uint8``), in
    the coordinates of the stacked image (``offsets``: each strip's top row;
    ``gap``: its left margin), as ``run_tesseract`` returns them."""
    loaded = _session(model_path()) if available() else None
    if loaded is None:
        return []
    chars: list[OcrChar] = []
    for strip, offset in zip(strips, offsets, strict=True):
        for char, x, confidence in _line(loaded, strip):
            chars.append(OcrChar(char, x + gap, offset + strip.shape[0] / 2, confidence))
    return chars


def _line(loaded: tuple[Any, Any, list[str]], strip: Any) -> list[tuple[str, float, float]]:
    """(character, x on the strip, probability) of one strip, greedy CTC."""
    import numpy as np
    from PIL import Image as PILImage

    session, allowed, classes = loaded
    padded = np.pad(strip, ((8, 8), (_PAD_X, _PAD_X)), constant_values=255)
    height, width = padded.shape
    scale = INPUT_HEIGHT / height
    new_width = max(round(width * scale), INPUT_HEIGHT)
    resized = PILImage.fromarray(padded).resize(
        (new_width, INPUT_HEIGHT), PILImage.Resampling.BILINEAR
    )
    pixels = (np.asarray(resized, dtype=np.float32) / 255.0 - 0.5) / 0.5
    batch = np.repeat(pixels[None, None], 3, axis=1)
    with _LOCK:
        probabilities = session.run(None, {session.get_inputs()[0].name: batch})[0][0]
    probabilities = np.where(allowed[None, :], probabilities, 0.0)
    best = probabilities.argmax(axis=1)
    frame = new_width / probabilities.shape[0] / scale
    found: list[tuple[str, float, float]] = []
    previous = 0
    for t, index in enumerate(best):
        if index != 0 and index != previous:
            x = (t + 0.5) * frame - _PAD_X
            found.append((classes[int(index)], x, float(probabilities[t, index])))
        previous = int(index)
    return found
