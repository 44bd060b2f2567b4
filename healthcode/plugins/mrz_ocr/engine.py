"""The OCR engines the reader calls out to: the tesseract binary (letters and
digits with per-character boxes) and raw ``passporteye.read_mrz`` (the last
attempt, and the benchmark's peer)."""

from __future__ import annotations

import functools
import html
import io
import os
import re
import shutil
import subprocess
import warnings
from typing import Any, Final

from attrs import frozen

from healthcode.core.mrz import MRZ_ALPHABET
from healthcode.plugins.mrz_ocr.errors import OcrEngineError, OcrEngineMissingError

TESSERACT_TIMEOUT_S: Final = 20.0

_CINFO = re.compile(
    r"<span class='ocrx_cinfo' title='x_bboxes (\d+) (\d+) (\d+) (\d+); "
    r"x_conf ([\d.]+)'>([^<]*)</span>"
)


def tesseract_path() -> str:
    """Path of the tesseract binary, or ``OcrEngineMissingError``."""
    configured = os.environ.get("HEALTHCODE_TESSERACT")
    found = shutil.which(configured or "tesseract")
    if found is None:
        raise OcrEngineMissingError(details={"binary": configured or "tesseract"})
    return found


@functools.cache
def _engine_version(path: str) -> str:
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, timeout=10, check=False
        ).stdout.decode("utf-8", "replace")
    except (OSError, subprocess.TimeoutExpired):
        return "tesseract"
    first = out.strip().splitlines()[0] if out.strip() else "tesseract"
    return first.strip()


def engine_version() -> str:
    """``tesseract X.Y.Z`` of the installed engine."""
    return _engine_version(tesseract_path())


@frozen
class OcrChar:
    char: str
    x: float
    """Centre, in the pixels of the image given to tesseract."""
    y: float
    confidence: float
    """0..1."""


def run_tesseract(pixels: Any, *, psm: int = 6) -> list[OcrChar]:
    """OCR a greyscale ``uint8`` array restricted to the MRZ alphabet; per-character boxes."""
    from PIL import Image as PILImage

    path = tesseract_path()
    buffer = io.BytesIO()
    PILImage.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    command = [
        path, "-", "-", "--psm", str(psm),
        "-c", f"tessedit_char_whitelist={MRZ_ALPHABET}",
        "-c", "load_system_dawg=0", "-c", "load_freq_dawg=0",
        "-c", "hocr_char_boxes=1", "hocr",
    ]  # fmt: skip
    # One thread per run: OpenMP only slows tesseract down on small images.
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        done = subprocess.run(
            command,
            input=buffer.getvalue(),
            capture_output=True,
            timeout=TESSERACT_TIMEOUT_S,
            env=env,
            check=False,
        )
    except FileNotFoundError as exc:
        raise OcrEngineMissingError(details={"binary": path}) from exc
    except subprocess.TimeoutExpired as exc:
        raise OcrEngineError(details={"reason": "timeout"}) from exc
    if done.returncode != 0:
        raise OcrEngineError(details={"reason": "exit_status", "status": done.returncode})
    return _parse_hocr(done.stdout.decode("utf-8", "replace"))


def _parse_hocr(hocr: str) -> list[OcrChar]:
    """The MRZ-alphabet characters of tesseract's hOCR output, with their box centres."""
    chars = []
    for match in _CINFO.finditer(hocr):
        x0, y0, x1, y1 = (int(v) for v in match.groups()[:4])
        text = html.unescape(match.group(6)).strip()
        if len(text) != 1 or text not in MRZ_ALPHABET:
            continue
        chars.append(OcrChar(text, (x0 + x1) / 2, (y0 + y1) / 2, float(match.group(5)) / 100))
    return chars


def passporteye_read(data: bytes) -> str | None:
    """``passporteye.read_mrz`` on encoded image bytes; its raw MRZ text or None."""
    tesseract_path()
    with warnings.catch_warnings():
        # scikit-image (< 0.27, pinned for passporteye) warns about deprecated
        # arguments passporteye uses; only here, not globally.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        from passporteye import read_mrz

        try:
            mrz = read_mrz(io.BytesIO(data))
        except Exception:
            return None
    if mrz is None:
        return None
    text = str(mrz.aux.get("text", "")).replace(" ", "")
    return "\n".join(line for line in text.splitlines() if line.strip()) or None
