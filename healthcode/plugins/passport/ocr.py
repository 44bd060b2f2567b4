"""Reading machine-readable zones from document photos.

Two readers, the cheap one first:

* **OCR-B templates** (``glyphs``; ``_read_by_templates``): long text bands
  are found with specks removed first, the zone's lines are measured around
  them at ICAO's line spacing, each line is cut at exactly the template pitch
  (pitch from the line's two ends, so perspective does not shift cells), and
  every cell is matched against the 37 glyphs rendered from the OCR-B font.
  Each position takes the best glyph its field allows (digits in dates,
  letters or ``<`` in names and codes); a failing check digit may take a
  close runner-up only when exactly one variant makes it hold. Tens of
  milliseconds; quarter turns are tried only when no MRZ-like zone is seen.
* **Tesseract**, described below, only when the templates found no zone whose
  check digits hold (its first three attempts), and raw passporteye only when
  no MRZ-like zone was seen at all.

Raw ``passporteye.read_mrz`` finds the zone with a morphological filter and
hands the whole crop to tesseract. On OCR-B, tesseract's English LSTM model
reads the filler ``<`` as ``K`` (or splits one chevron into two characters),
so lines come out too long and fields shift. This reader keeps tesseract for
the letters and digits and adds what an MRZ's geometry gives for free:

1. **Locate** the zone's text lines (black-hat filter, horizontal closing,
   connected components with their own orientation), on the image as given
   and, failing that, turned by 90 and 270 degrees. The MRZ is the group of 1
   to 3 long, parallel, evenly spaced lines of equal length.
2. **Straighten** each line on its own (perspective tilts lines differently)
   into a strip at a fixed character height, and stack the strips into one
   image: one tesseract run reads the whole zone, restricted to the MRZ
   alphabet, with per-character boxes (hOCR).
3. **Fixed pitch**: OCR-B in an MRZ is printed at 10 characters per inch, so
   the glyph centres of a line lie on a regular grid. The grid gives the
   number of characters (30, 36 or 44: the layout) and the cell of every
   character tesseract returns, so insertions and deletions cannot shift a
   field. A filler chevron is recognised from its shape (ink at the left
   only in the middle rows; a ``K`` has a stem); tesseract decides the rest.
4. **Repairs the check digits confirm**: letters read in numeric fields
   (``O``/``0``, ``I``/``1``, ``B``/``8``, ``S``/``5``, ``Z``/``2``) and the
   same pairs in alphanumeric check-covered fields are changed only when the
   field's check digit then holds (and, for several possible changes, only
   one does). Letters-only fields (document code, states, names) take the
   letter for a digit; a lone ``K``, ``X`` or ``S`` in a name's filler tail
   becomes ``<``. Nothing check-covered is changed otherwise: a zone whose
   check digits fail is returned as read, and the parser reports it.
5. **Several attempts**, stopping at the first whose check digits all hold:
   two pre-processings (contrast stretch, then binarised and larger), the
   zone turned 180 degrees, the image turned 90/270, the next group of lines,
   and finally raw ``passporteye.read_mrz`` itself.

The candidate texts go back to core, which asks the document plugins to parse
each (so the permits' CR/CT/CS zones are read by their own plugin). Nothing
here logs or puts into notes any character of the zone.
"""

from __future__ import annotations

import functools
import html
import io
import itertools
import math
import os
import re
import shutil
import subprocess
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, Final

from attrs import frozen

from healthcode.core.checkdigits import icao_check_digit
from healthcode.core.errors import DocumentError, PluginError
from healthcode.core.models import Image, MachineZoneCandidate, MachineZoneReading

MRZ_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<"
LINE_LENGTHS: Final = (30, 36, 44)
CHAR_HEIGHT_PX: Final = 34
"""Character height of the strips handed to tesseract (its LSTM likes 25-40)."""
TESSERACT_TIMEOUT_S: Final = 20.0
LOCATE_SIZE: Final = 900
"""Longer side of the reduced image the lines are located on."""
MAX_ATTEMPTS: Final = 8
TESSERACT_FALLBACK_ATTEMPTS: Final = 3
"""Tesseract attempts run after the template reader fails (direct, binarised, 180)."""

# Confusions OCR makes between OCR-B letters and digits (ICAO 9303 part 3 notes
# the same pairs); used only where a check digit confirms, or for letter-only fields.
_TO_DIGIT: Final = {
    "O": "0",
    "Q": "0",
    "D": "0",
    "I": "1",
    "L": "1",
    "Z": "2",
    "S": "5",
    "B": "8",
    "G": "6",
}
_TO_LETTER: Final = {"0": "O", "1": "I", "2": "Z", "5": "S", "8": "B", "6": "G", "4": "A"}
_SWAP: Final = {
    "O": "0",
    "0": "O",
    "I": "1",
    "1": "I",
    "B": "8",
    "8": "B",
    "S": "5",
    "5": "S",
    "Z": "2",
    "2": "Z",
}
_FILLER_LOOKALIKES: Final = frozenset("KXSCEL")
_MAX_SWAPS: Final = 3
"""At most 2**3 variants of one field are tried: more would "confirm" noise."""
_UNSURE: Final = 0.93
"""Engine confidence under which a look-alike character may be swapped."""

_CINFO = re.compile(
    r"<span class='ocrx_cinfo' title='x_bboxes (\d+) (\d+) (\d+) (\d+); "
    r"x_conf ([\d.]+)'>([^<]*)</span>"
)


class OcrEngineMissingError(PluginError):
    """The OCR engine (the tesseract binary) is not installed."""

    code = "ocr_engine_missing"
    default_en = (
        "The OCR engine `tesseract` was not found. Install it (Debian/Ubuntu: "
        "`apt-get install tesseract-ocr`) or set HEALTHCODE_TESSERACT to its path."
    )
    default_zh = (
        "未找到 OCR 引擎 tesseract。请安装（Debian/Ubuntu：apt-get install tesseract-ocr）"
        "或设置 HEALTHCODE_TESSERACT。"
    )


class OcrEngineError(PluginError):
    """The OCR engine failed (crashed or timed out)."""

    code = "ocr_engine_failed"
    default_en = "The OCR engine failed on this image."
    default_zh = "OCR 引擎处理该图片失败。"


class MultipleDocumentsError(DocumentError):
    """More than one machine-readable zone is legible in the photo."""

    code = "multiple_documents"
    default_en = "The photo shows more than one document; photograph one document at a time."
    default_zh = "照片中有多份证件，请一次只拍摄一份证件。"


# --- the engine ------------------------------------------------------------------


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
    chars = []
    for match in _CINFO.finditer(done.stdout.decode("utf-8", "replace")):
        x0, y0, x1, y1 = (int(v) for v in match.groups()[:4])
        text = html.unescape(match.group(6)).strip()
        if len(text) != 1 or text not in MRZ_ALPHABET:
            continue
        chars.append(OcrChar(text, (x0 + x1) / 2, (y0 + y1) / 2, float(match.group(5)) / 100))
    return chars


# --- locating the zone -------------------------------------------------------------


@frozen
class TextLine:
    """A line of text found on the image: an oriented box in full-size pixels."""

    cx: float
    cy: float
    length: float
    thickness: float
    angle: float
    """Radians, of the line direction (reading left to right)."""


def _grey(image: Image) -> Any:
    import numpy as np

    rgb = np.asarray(image.pixels, dtype=np.float32)
    return (rgb[:, :, 0] * 0.299 + rgb[:, :, 1] * 0.587 + rgb[:, :, 2] * 0.114).astype(np.uint8)


def find_text_lines(grey: Any) -> list[TextLine]:
    """Long, thin dark-text components, longest first."""
    import numpy as np
    from PIL import Image as PILImage
    from scipy import ndimage as ndi  # type: ignore[import-untyped, unused-ignore]

    height, width = grey.shape
    scale = min(LOCATE_SIZE / max(width, height), 1.0)
    small = np.asarray(
        PILImage.fromarray(grey).resize(
            (max(int(width * scale), 1), max(int(height * scale), 1)), PILImage.Resampling.BILINEAR
        ),
        dtype=np.float32,
    )
    kernel = max(int(max(small.shape) / 90), 3)
    blackhat = ndi.grey_closing(small, size=(kernel, kernel)) - small
    threshold = max(float(np.percentile(blackhat, 90)), 12.0)
    mask = blackhat > threshold
    mask = ndi.binary_closing(mask, structure=np.ones((1, kernel * 2)))
    mask = ndi.binary_opening(mask, structure=np.ones((2, 2)))
    labels, _count = ndi.label(mask)
    lines = []
    for index, window in enumerate(ndi.find_objects(labels)):
        if window is None:
            continue
        ys, xs = np.nonzero(labels[window] == index + 1)
        if len(xs) < 40:
            continue
        xs = xs + window[1].start
        ys = ys + window[0].start
        mx, my = float(xs.mean()), float(ys.mean())
        cov = np.cov(np.vstack([xs - mx, ys - my]))
        _values, vectors = np.linalg.eigh(cov)
        vx, vy = float(vectors[0, 1]), float(vectors[1, 1])
        if vx < 0:
            vx, vy = -vx, -vy
        along = (xs - mx) * vx + (ys - my) * vy
        across = -(xs - mx) * vy + (ys - my) * vx
        length = float(along.max() - along.min())
        thickness = float(np.percentile(across, 97) - np.percentile(across, 3))
        if thickness < 3 or not 10 <= length / thickness <= 120:
            continue
        mid = float(along.max() + along.min()) / 2
        mid_across = float(np.percentile(across, 97) + np.percentile(across, 3)) / 2
        lines.append(
            TextLine(
                cx=(mx + mid * vx - mid_across * vy) / scale,
                cy=(my + mid * vy + mid_across * vx) / scale,
                length=length / scale,
                thickness=thickness / scale,
                angle=math.atan2(vy, vx),
            )
        )
    lines.sort(key=lambda line: -line.length)
    return lines


def group_zones(lines: Sequence[TextLine], limit: int = 3) -> list[list[TextLine]]:
    """Groups of 1-3 parallel, evenly spaced lines of equal length, top to bottom."""
    groups: list[list[TextLine]] = []
    used: set[int] = set()
    for seed_index, seed in enumerate(lines):
        if seed_index in used or seed.length / seed.thickness < 16:
            continue
        cos_a, sin_a = math.cos(seed.angle), math.sin(seed.angle)
        members = []
        for index, line in enumerate(lines):
            if index in used:
                continue
            if abs(line.angle - seed.angle) > math.radians(4):
                continue
            if not 0.85 <= line.length / seed.length <= 1.18:
                continue
            dx, dy = line.cx - seed.cx, line.cy - seed.cy
            along = dx * cos_a + dy * sin_a
            across = -dx * sin_a + dy * cos_a
            if abs(along) > 0.12 * seed.length or abs(across) > 7 * seed.thickness:
                continue
            members.append((across, index, line))
        members.sort()
        # Keep the run of evenly spaced lines that contains the seed.
        chosen = [m for m in members if m[1] == seed_index]
        position = members.index(chosen[0])
        run = [members[position]]
        for step in (-1, 1):
            cursor = position
            while len(run) < 3 and 0 <= cursor + step < len(members):
                nxt = members[cursor + step]
                gap = abs(nxt[0] - members[cursor][0])
                if not 1.2 * seed.thickness <= gap <= 3.6 * seed.thickness:
                    break
                run.append(nxt)
                cursor += step
        run.sort()
        for _across, index, _line in run:
            used.add(index)
        groups.append([line for _across, _index, line in run])
        if len(groups) >= limit:
            break
    return groups


# --- straightening and the fixed-pitch grid ------------------------------------------


def straighten(grey: Any, line: TextLine, *, char_height: int, flip: bool = False) -> Any:
    """The line cut out along its own direction, at ``char_height`` px per character."""
    import numpy as np
    from PIL import Image as PILImage

    scale = min(char_height / max(line.thickness, 1.0), 6.0)
    out_w = int((line.length + 1.6 * line.thickness) * scale)
    out_h = int(2.0 * line.thickness * scale)
    angle = line.angle + (math.pi if flip else 0.0)
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    a, b = cos_a / scale, -sin_a / scale
    d, e = sin_a / scale, cos_a / scale
    c = line.cx - a * out_w / 2 - b * out_h / 2
    f = line.cy - d * out_w / 2 - e * out_h / 2
    strip = PILImage.fromarray(grey).transform(
        (max(out_w, 1), max(out_h, 1)),
        PILImage.Transform.AFFINE,
        (a, b, c, d, e, f),
        resample=PILImage.Resampling.BICUBIC,
        fillcolor=255,
    )
    return np.asarray(strip)


def _stretch(strip: Any) -> Any:
    import numpy as np

    low, high = np.percentile(strip, (2, 98))
    if high - low < 10:
        return strip
    return np.clip((strip.astype(np.float32) - low) * (255.0 / (high - low)), 0, 255).astype(
        np.uint8
    )


def _otsu(values: Any) -> float:
    import numpy as np

    hist = np.bincount(values.ravel(), minlength=256).astype(np.float64)
    total = hist.sum()
    if total == 0:
        return 128.0
    levels = np.arange(256)
    weight = np.cumsum(hist)
    mean = np.cumsum(hist * levels)
    between = (mean[-1] * weight / total - mean) ** 2 / np.maximum(weight * (total - weight), 1)
    return float(np.argmax(between))


def _binarise(strip: Any) -> Any:
    import numpy as np
    from scipy import ndimage as ndi  # type: ignore[import-untyped, unused-ignore]

    # Light falls off across a photo: subtract a wide background before Otsu.
    background = ndi.grey_closing(strip, size=(1, max(strip.shape[0] // 2, 3)))
    flat = np.clip(255 - (background.astype(np.int16) - strip.astype(np.int16)), 0, 255).astype(
        np.uint8
    )
    return np.where(flat > _otsu(flat), 255, 0).astype(np.uint8)


@frozen
class Grid:
    """Character cells of one straightened line: centre of cell k = x0 + pitch * k."""

    x0: float
    pitch: float
    count: int
    top: int
    bottom: int


def fit_grid(ink: Any) -> Grid | None:
    """Fit the fixed-pitch grid to a binary strip (True = ink); None if no grid fits."""
    import numpy as np

    rows = ink.sum(axis=1)
    if rows.max() == 0:
        return None
    text_rows = np.nonzero(rows > 0.25 * rows.max())[0]
    top, bottom = int(text_rows.min()), int(text_rows.max()) + 1
    band = ink[top:bottom]
    band_height = bottom - top
    columns = band.sum(axis=0) >= max(1, band_height // 12)
    runs = []
    start = None
    for x, on in enumerate(np.append(columns, False)):
        if on and start is None:
            start = x
        elif not on and start is not None:
            runs.append((start, x))
            start = None
    # Keep glyph-like runs: tall enough (specks are not), not wider than 2 glyphs.
    glyphs = []
    for a, b in runs:
        column_rows = np.nonzero(band[:, a:b].any(axis=1))[0]
        if len(column_rows) == 0 or column_rows[-1] - column_rows[0] < 0.45 * band_height:
            continue
        glyphs.append((a + b) / 2)
    if len(glyphs) < 8:
        return None
    centres = np.asarray(glyphs)
    diffs = np.diff(centres)
    pitch = float(np.median(diffs))
    if pitch <= 2:
        return None
    for _ in range(3):
        cells = np.round((centres - centres[0]) / pitch)
        keep = np.abs((centres - centres[0]) / pitch - cells) < 0.35
        if keep.sum() < 8:
            return None
        slope, intercept = np.polyfit(cells[keep], centres[keep], 1)
        pitch = float(slope)
        centres_first = float(intercept)
        cells = np.round((centres - centres_first) / pitch)
        # Runs off the grid at either end (a border, a shadow) are dropped.
        keep = np.abs((centres - centres_first) / pitch - cells) < 0.35
        centres = centres[keep]
    first = float(np.min(np.round((centres - centres_first) / pitch)))
    last = float(np.max(np.round((centres - centres_first) / pitch)))
    count = int(last - first) + 1
    x0 = centres_first + first * pitch
    return Grid(x0=x0, pitch=pitch, count=count, top=top, bottom=bottom)


def is_chevron(cell: Any) -> bool:
    """Whether a binary glyph cell holds a filler ``<``: ink reaches the left
    edge only in the middle rows, along two straight strokes (K, E, L have a
    stem at the left; X and S reach it at the top and bottom; C and O curve
    out to it well above the middle)."""
    import numpy as np

    columns = cell.any(axis=0)
    if not columns.any():
        return False
    # Keep the run of ink columns nearest the cell centre (not a neighbour's edge).
    runs = []
    start = None
    for x, on in enumerate(np.append(columns, False)):
        if on and start is None:
            start = x
        elif not on and start is not None:
            runs.append((start, x))
            start = None
    centre = cell.shape[1] / 2
    a, b = min(
        runs,
        key=lambda r: 0 if r[0] <= centre < r[1] else min(abs(r[0] - centre), abs(r[1] - centre)),
    )
    cell = cell[:, a:b]
    ys, xs = np.nonzero(cell)
    if len(xs) < 6:
        return False
    y_min, y_max = int(ys.min()), int(ys.max())
    width, height = b - a, y_max - y_min + 1
    if width < 3 or height < 6:
        return False
    glyph = cell[y_min : y_max + 1]

    def leftmost(share: float) -> float:
        row = min(int(share * (height - 1)), height - 1)
        rows = glyph[max(row - 1, 0) : row + 2]
        found = [int(np.argmax(r)) for r in rows if r.any()]
        return min(found) / width if found else 1.0

    top, quarter, middle, three_quarters, bottom = (
        leftmost(share) for share in (0.06, 0.27, 0.5, 0.73, 0.94)
    )
    mid_rows = glyph[int(height * 0.42) : int(height * 0.58) + 1]
    right_extent = (
        max((width - 1 - int(np.argmax(row[::-1]))) / width for row in mid_rows if row.any())
        if mid_rows.any()
        else 1.0
    )
    return (
        top >= 0.5
        and bottom >= 0.5
        and quarter >= 0.12
        and three_quarters >= 0.12
        and middle <= 0.2
        and right_extent <= 0.7
    )


@frozen
class LineReading:
    text: str
    confidence: float
    cell_confidences: tuple[float, ...]
    pitch_px: float
    """Character pitch in image pixels (for the portrait estimate)."""


def decode_line(binary: Any, chars: Sequence[OcrChar], *, y_offset: float) -> LineReading | None:
    """Characters of one strip placed on its grid; ``None`` when no grid fits."""
    ink = binary < 128
    grid = fit_grid(ink)
    if grid is None or grid.count not in LINE_LENGTHS:
        return None
    cells: list[list[OcrChar]] = [[] for _ in range(grid.count)]
    for char in chars:
        if not y_offset <= char.y < y_offset + binary.shape[0]:
            continue
        k = round((char.x - grid.x0) / grid.pitch)
        if 0 <= k < grid.count:
            cells[k].append(char)
    text = []
    confidences = []
    half = grid.pitch / 2
    for k, found in enumerate(cells):
        left = max(int(grid.x0 + k * grid.pitch - half), 0)
        right = int(grid.x0 + k * grid.pitch + half)
        chevron = is_chevron(ink[grid.top : grid.bottom, left:right])
        best = max(found, key=lambda c: c.confidence) if found else None
        if chevron:
            text.append("<")
            confidences.append(max(best.confidence if best else 0.9, 0.9))
        elif best is not None:
            text.append(best.char)
            confidences.append(best.confidence)
        else:
            # Tesseract saw nothing here and the cell is no chevron: unknown.
            text.append("<")
            confidences.append(0.0)
    return LineReading(
        "".join(text), sum(confidences) / len(confidences), tuple(confidences), grid.pitch
    )


# --- layouts, check digits and confirmed repairs ------------------------------------

# (line, start, end) of the fields, 0-based, end exclusive.
Span = tuple[int, int, int]


@frozen
class Checked:
    """A field covered by a check digit."""

    name: str
    spans: tuple[Span, ...]
    check: tuple[int, int]
    numeric: bool
    """Every data position must be a digit (dates)."""
    optional: bool = False
    """A ``<`` check over an all-filler field is allowed (TD3 personal number)."""


@frozen
class LayoutSpec:
    name: str
    shape: tuple[int, int]
    checked: tuple[Checked, ...]
    letters: tuple[Span, ...]
    """Fields that hold letters and fillers only (codes, states, sex, names)."""
    names: tuple[Span, ...]


def _date(name: str, line: int, start: int) -> Checked:
    return Checked(name, ((line, start, start + 6),), (line, start + 6), True)


LAYOUT_SPECS: Final[dict[str, LayoutSpec]] = {
    "TD3": LayoutSpec(
        "TD3",
        (2, 44),
        (
            Checked("number", ((1, 0, 9),), (1, 9), False),
            _date("birth_date", 1, 13),
            _date("expiry_date", 1, 21),
            Checked("optional", ((1, 28, 42),), (1, 42), False, optional=True),
            Checked("composite", ((1, 0, 10), (1, 13, 20), (1, 21, 43)), (1, 43), False),
        ),
        ((0, 0, 1), (0, 2, 5), (1, 10, 13)),
        ((0, 5, 44),),
    ),
    "MRV-A": LayoutSpec(
        "MRV-A",
        (2, 44),
        (
            Checked("number", ((1, 0, 9),), (1, 9), False),
            _date("birth_date", 1, 13),
            _date("expiry_date", 1, 21),
        ),
        ((0, 0, 1), (0, 2, 5), (1, 10, 13)),
        ((0, 5, 44),),
    ),
    "TD2": LayoutSpec(
        "TD2",
        (2, 36),
        (
            Checked("number", ((1, 0, 9),), (1, 9), False),
            _date("birth_date", 1, 13),
            _date("expiry_date", 1, 21),
            Checked("composite", ((1, 0, 10), (1, 13, 20), (1, 21, 35)), (1, 35), False),
        ),
        ((0, 0, 1), (0, 2, 5), (1, 10, 13)),
        ((0, 5, 36),),
    ),
    "MRV-B": LayoutSpec(
        "MRV-B",
        (2, 36),
        (
            Checked("number", ((1, 0, 9),), (1, 9), False),
            _date("birth_date", 1, 13),
            _date("expiry_date", 1, 21),
        ),
        ((0, 0, 1), (0, 2, 5), (1, 10, 13)),
        ((0, 5, 36),),
    ),
    # TD1, and the CR/CT permit cards that follow it (see hkmo_permit.machine_zone).
    "TD1": LayoutSpec(
        "TD1",
        (3, 30),
        (
            Checked("number", ((0, 5, 14),), (0, 14), False),
            _date("birth_date", 1, 0),
            _date("expiry_date", 1, 8),
            Checked("composite", ((0, 5, 30), (1, 0, 7), (1, 8, 15), (1, 18, 29)), (1, 29), False),
        ),
        ((0, 0, 2), (0, 2, 5), (1, 15, 18)),
        ((2, 0, 30),),
    ),
    # The CS/CD exit-entry permit card line.
    "CARD": LayoutSpec(
        "CARD",
        (1, 30),
        (
            Checked("number", ((0, 2, 11),), (0, 11), False),
            _date("expiry_date", 0, 13),
            _date("birth_date", 0, 21),
            Checked("composite", ((0, 2, 12), (0, 13, 20), (0, 21, 28)), (0, 29), False),
        ),
        ((0, 0, 2),),
        (),
    ),
}


def layout_for(lines: Sequence[str]) -> LayoutSpec | None:
    """The layout of a reading from its shape (and ``V`` for visas)."""
    if not lines or any(len(line) != len(lines[0]) for line in lines):
        return None
    shape = (len(lines), len(lines[0]))
    visa = lines[0][:1] == "V"
    name = {
        (1, 30): "CARD",
        (3, 30): "TD1",
        (2, 44): "MRV-A" if visa else "TD3",
        (2, 36): "MRV-B" if visa else "TD2",
    }.get(shape)
    return LAYOUT_SPECS[name] if name else None


def _field_data(lines: Sequence[str], spans: Sequence[Span]) -> str:
    return "".join(lines[line][start:end] for line, start, end in spans)


def _holds(lines: Sequence[str], field: Checked) -> bool:
    data = _field_data(lines, field.spans)
    check = lines[field.check[0]][field.check[1]]
    if any(c not in MRZ_ALPHABET for c in data):
        return False
    if field.name == "number" and check == "<" and data.isalnum():
        # Long-number convention: the check digit is in the optional data,
        # covered by the composite check.
        return True
    if check == "<":
        return field.optional and not data.strip("<")
    return check.isdigit() and icao_check_digit(data) == check


def failing_checks(lines: Sequence[str], spec: LayoutSpec) -> list[str]:
    return [field.name for field in spec.checked if not _holds(lines, field)]


def _set(lines: list[str], line: int, column: int, char: str) -> None:
    text = lines[line]
    lines[line] = text[:column] + char + text[column + 1 :]


def _positions(field: Checked) -> list[tuple[int, int]]:
    return [(line, col) for line, start, end in field.spans for col in range(start, end)]


def repair(
    lines: Sequence[str],
    spec: LayoutSpec,
    confidences: Sequence[Sequence[float]] | None = None,
) -> tuple[list[str], list[str], bool]:
    """Letters-only fields take letters, names lose lone filler look-alikes, and
    check-covered fields take a changed character only where their check digit
    confirms it. Returns (lines, notes, ambiguous)."""
    fixed = list(lines)
    notes: list[str] = []
    for line, start, end in spec.letters:
        for col in range(start, end):
            char = fixed[line][col]
            if char in _TO_LETTER:
                _set(fixed, line, col, _TO_LETTER[char])
                notes.append(f"letter_field:line{line + 1}:col{col + 1}")
    for line, start, end in spec.names:
        segment = fixed[line][start:end]
        for col in range(start, end):
            char = fixed[line][col]
            if char in _TO_LETTER:
                _set(fixed, line, col, _TO_LETTER[char])
                notes.append(f"name_digit:line{line + 1}:col{col + 1}")
        # In the filler tail (after '<<<'), a lone K/X/S/... between fillers is a misread '<'.
        segment = fixed[line][start:end]
        tail = segment.find("<<<")
        if tail >= 0:
            for offset in range(tail, len(segment)):
                col = start + offset
                char = fixed[line][col]
                before = fixed[line][col - 1] if col > start else "<"
                after = fixed[line][col + 1] if col + 1 < end else "<"
                # After '<<<' only padding may follow (ICAO 9303 part 3, 4.6).
                del before, after
                if char in _FILLER_LOOKALIKES:
                    _set(fixed, line, col, "<")
                    notes.append(f"name_filler:line{line + 1}:col{col + 1}")
    ambiguous = False
    for field in spec.checked:
        if field.name == "composite" or _holds(fixed, field):
            continue
        changes = _confirmed_variants(fixed, field, confidences)
        if changes is None:
            ambiguous = True
            continue
        for line, col, char in changes:
            _set(fixed, line, col, char)
            notes.append(f"check_confirmed:{field.name}:line{line + 1}:col{col + 1}")
    composite = next((f for f in spec.checked if f.name == "composite"), None)
    if composite is not None and not _holds(fixed, composite):
        changes = _confirmed_variants(fixed, composite, confidences, exclude=spec)
        if changes is None:
            ambiguous = True
        else:
            for line, col, char in changes:
                _set(fixed, line, col, char)
                notes.append(f"check_confirmed:composite:line{line + 1}:col{col + 1}")
    return fixed, notes, ambiguous


def _confirmed_variants(
    lines: Sequence[str],
    field: Checked,
    confidences: Sequence[Sequence[float]] | None,
    exclude: LayoutSpec | None = None,
) -> list[tuple[int, int, str]] | None:
    """The one set of changes after which ``field``'s check holds, or None.

    Letters in numeric positions (dates, check digits) can only be digits and
    are always mapped. Look-alike pairs in alphanumeric positions are tried
    only where the engine was unsure (at most 3 positions, the least sure
    first), so that a mod-10 check is not "confirmed" by trying many variants;
    and only a unique solution is accepted. ``exclude``: positions of these
    other checked fields are left alone (for the composite check)."""
    positions = [*_positions(field), field.check]
    if exclude is not None:
        covered = {
            pos
            for other in exclude.checked
            if other.name != "composite"
            for pos in [*_positions(other), other.check]
        }
        positions = [pos for pos in positions if pos not in covered]
    forced: list[tuple[int, int, str]] = []
    free: list[tuple[float, int, int]] = []
    for line, col in positions:
        char = lines[line][col]
        if field.numeric or (line, col) == field.check:
            if char in _TO_DIGIT:
                forced.append((line, col, _TO_DIGIT[char]))
        elif char in _SWAP:
            sure = confidences[line][col] if confidences is not None else 0.0
            if sure < _UNSURE:
                free.append((sure, line, col))
    free.sort()
    if confidences is None and len(free) > _MAX_SWAPS:
        return None
    free = free[:_MAX_SWAPS]
    solutions = []
    for mask in itertools.product((False, True), repeat=len(free)):
        changes = list(forced) + [
            (line, col, _SWAP[lines[line][col]])
            for flip, (_sure, line, col) in zip(mask, free, strict=True)
            if flip
        ]
        if not changes:
            continue
        trial = list(lines)
        for line, col, char in changes:
            _set(trial, line, col, char)
        if _holds(trial, field):
            solutions.append(changes)
    return solutions[0] if len(solutions) == 1 else None


# --- reading ---------------------------------------------------------------------------


@frozen
class Attempt:
    name: str
    orientation: int
    """Quarter turns applied to the image before locating (0-3)."""
    zone: int
    """Which group of lines (0: the most MRZ-like)."""
    binarised: bool
    flip: bool
    char_height: int


ATTEMPTS: Final = (
    Attempt("direct", 0, 0, False, False, CHAR_HEIGHT_PX),
    Attempt("binarised", 0, 0, True, False, 40),
    Attempt("rotated_180", 0, 0, False, True, CHAR_HEIGHT_PX),
    Attempt("second_zone", 0, 1, False, False, CHAR_HEIGHT_PX),
    Attempt("rotated_90", 1, 0, False, False, CHAR_HEIGHT_PX),
    Attempt("rotated_270", 3, 0, False, False, CHAR_HEIGHT_PX),
    Attempt("rotated_90_flip", 1, 0, False, True, CHAR_HEIGHT_PX),
    Attempt("rotated_270_flip", 3, 0, False, True, CHAR_HEIGHT_PX),
)


@frozen
class ZoneReading:
    lines: tuple[str, ...]
    confidence: float
    confidences: tuple[tuple[float, ...], ...]
    pitch_px: float
    zone: tuple[TextLine, ...]


def read_zone(grey: Any, zone: Sequence[TextLine], attempt: Attempt) -> ZoneReading | None:
    """OCR one group of lines: straighten, stack, one tesseract run, grid decoding."""
    import numpy as np

    ordered = list(zone)[::-1] if attempt.flip else list(zone)
    strips = []
    for line in ordered:
        strip = _stretch(straighten(grey, line, char_height=attempt.char_height, flip=attempt.flip))
        strips.append(strip)
    binaries = [_binarise(strip) for strip in strips]
    shown = binaries if attempt.binarised else strips
    gap = attempt.char_height
    width = max(s.shape[1] for s in shown) + 2 * gap
    height = sum(s.shape[0] for s in shown) + gap * (len(shown) + 1)
    stack = np.full((height, width), 255, dtype=np.uint8)
    offsets = []
    y = gap
    for strip in shown:
        stack[y : y + strip.shape[0], gap : gap + strip.shape[1]] = strip
        offsets.append(y)
        y += strip.shape[0] + gap
    chars = run_tesseract(stack)
    shifted = [OcrChar(c.char, c.x - gap, c.y, c.confidence) for c in chars]
    readings = []
    for binary, offset, line in zip(binaries, offsets, ordered, strict=True):
        reading = decode_line(binary, shifted, y_offset=offset)
        if reading is None:
            return None
        scale = min(attempt.char_height / max(line.thickness, 1.0), 6.0)
        readings.append((reading, scale))
    lengths = {r.text.__len__() for r, _ in readings}
    if len(lengths) != 1:
        return None
    confidence = sum(r.confidence for r, _ in readings) / len(readings)
    pitch = sum(r.pitch_px / s for r, s in readings) / len(readings)
    return ZoneReading(
        tuple(r.text for r, _ in readings),
        confidence,
        tuple(r.cell_confidences for r, _ in readings),
        pitch,
        tuple(ordered),
    )


def candidates_from_lines(
    lines: Sequence[str],
    confidence: float,
    notes: Sequence[str],
    confidences: Sequence[Sequence[float]] | None = None,
) -> list[MachineZoneCandidate]:
    """The repaired reading first (when repairs were confirmed), then the raw one."""
    spec = layout_for(lines)
    if spec is None:
        return [MachineZoneCandidate("\n".join(lines), tuple(notes), False, confidence * 0.3)]
    fixed, repairs, ambiguous = repair(lines, spec, confidences)
    failing = failing_checks(fixed, spec)
    extra = [f"layout:{spec.name}"] + ([f"check_failed:{name}" for name in failing])
    if ambiguous:
        extra.append("ambiguous_repair")
    penalty = 0.5 if failing else (0.8 if ambiguous else 1.0)
    penalty *= 0.98 ** len(repairs)
    found = [
        MachineZoneCandidate(
            "\n".join(fixed), tuple(notes) + tuple(extra) + tuple(repairs), not failing,
            round(confidence * penalty, 4),
        )
    ]  # fmt: skip
    if list(fixed) != list(lines):
        raw_failing = failing_checks(lines, spec)
        found.append(
            MachineZoneCandidate(
                "\n".join(lines),
                (*tuple(notes), f"layout:{spec.name}", "unrepaired"),
                not raw_failing,
                round(confidence * (0.5 if raw_failing else 1.0), 4),
            )
        )
    return found


def estimate_portrait_box(
    zone: Sequence[TextLine], pitch_px: float, orientation: int, size: tuple[int, int]
) -> tuple[int, int, int, int] | None:
    """Where ICAO puts the portrait: left of the page, above the MRZ.

    In character pitches (2.54 mm): TD3 about 13 x 17, TD2 11 x 14, cards 9 x 11,
    starting about one pitch left of the zone and ending just above it."""
    if not zone or pitch_px <= 0:
        return None
    first = zone[0]
    chars = first.length / pitch_px
    if chars > 40:
        width_p, height_p = 13.0, 17.0
    elif chars > 33:
        width_p, height_p = 11.0, 14.0
    else:
        width_p, height_p = 9.0, 11.5
    cos_a, sin_a = math.cos(first.angle), math.sin(first.angle)
    left = -first.length / 2 - 0.8 * pitch_px
    bottom = -first.thickness * 1.3
    corners_local = [
        (left, bottom),
        (left + width_p * pitch_px, bottom),
        (left, bottom - height_p * pitch_px),
        (left + width_p * pitch_px, bottom - height_p * pitch_px),
    ]
    points = [
        (first.cx + u * cos_a - v * sin_a, first.cy + u * sin_a + v * cos_a)
        for u, v in corners_local
    ]
    # Back to the coordinates of the image as given (undo the quarter turns).
    width, height = size
    turned = [_unrotate_point(x, y, width, height, orientation) for x, y in points]
    xs = [max(min(p[0], width), 0) for p in turned]
    ys = [max(min(p[1], height), 0) for p in turned]
    box = (int(min(xs)), int(min(ys)), int(max(xs) - min(xs)), int(max(ys) - min(ys)))
    return box if box[2] > 4 and box[3] > 4 else None


def _unrotate_point(
    x: float, y: float, width: int, height: int, quarter_turns: int
) -> tuple[float, float]:
    """A point of ``np.rot90(img, k)`` back in ``img`` (``width`` x ``height``)."""
    k = quarter_turns % 4
    if k == 1:  # rot90 k=1: new (r, c) = (W-1-c_old, r_old) -> old (x, y) = (W-1-y, x)
        return width - 1 - y, x
    if k == 2:
        return width - 1 - x, height - 1 - y
    if k == 3:
        return y, height - 1 - x
    return x, y


def _passporteye_text(image: Image) -> str | None:
    """Raw passporteye, the last attempt (and the benchmark's peer)."""
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.fromarray(image.pixels).save(buffer, format="PNG", compress_level=1)
    return passporteye_read(buffer.getvalue())


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


def _clean_free_text(text: str) -> list[str]:
    lines = [re.sub(f"[^{MRZ_ALPHABET}]", "", line.upper()) for line in text.splitlines()]
    return [line for line in lines if len(line) >= 20]


def read_machine_zone(image: Image, *, use_passporteye: bool = True) -> MachineZoneReading:
    """Read the MRZ of a document photo: candidates best first (see the module doc).

    Raises ``OcrEngineMissingError`` when tesseract is absent and
    ``MultipleDocumentsError`` when two zones with valid check digits are seen."""
    import numpy as np

    started = time.perf_counter()
    tesseract_path()
    timings = {"locate": 0.0, "templates": 0.0, "ocr": 0.0}
    grey0 = _grey(image)
    located: dict[int, tuple[Any, list[list[TextLine]]]] = {}
    candidates: list[MachineZoneCandidate] = []
    best_zone: tuple[ZoneReading, int] | None = None
    size = (image.width, image.height)
    # The cheap reader first: OCR-B templates on the zone (tens of milliseconds).
    template_best, zone_seen = _read_by_templates(grey0, candidates, timings)
    if template_best is not None:
        best_zone = template_best
    passed = any(c.checks_passed for c in candidates)
    # Tesseract only where the templates failed on a zone that looks like an
    # MRZ (or found none): a photo with no text band costs nothing more.
    attempts = () if passed else ATTEMPTS[:TESSERACT_FALLBACK_ATTEMPTS]
    for attempt in attempts:
        if attempt.orientation not in located:
            tic = time.perf_counter()
            grey = np.ascontiguousarray(np.rot90(grey0, attempt.orientation))
            located[attempt.orientation] = (grey, group_zones(find_text_lines(grey)))
            timings["locate"] += time.perf_counter() - tic
        grey, zones = located[attempt.orientation]
        if attempt.zone >= len(zones):
            continue
        tic = time.perf_counter()
        zone_reading = read_zone(grey, zones[attempt.zone], attempt)
        timings["ocr"] += time.perf_counter() - tic
        if zone_reading is None:
            continue
        found = candidates_from_lines(
            zone_reading.lines,
            zone_reading.confidence,
            [f"attempt:{attempt.name}"],
            zone_reading.confidences,
        )
        candidates.extend(found)
        if best_zone is None or found[0].checks_passed:
            best_zone = (zone_reading, attempt.orientation)
        if found[0].checks_passed:
            _refuse_second_document(grey, zones, attempt, zone_reading, found[0].text, timings)
            break
    if use_passporteye and not zone_seen and not any(c.checks_passed for c in candidates):
        tic = time.perf_counter()
        text = _passporteye_text(image)
        timings["passporteye"] = time.perf_counter() - tic
        if text:
            lines = _clean_free_text(text)
            if lines:
                candidates.extend(candidates_from_lines(lines, 0.5, ["attempt:passporteye"]))
    # Check digits first; then the order of the attempts (each repaired reading
    # before its raw form).
    ranked = sorted(_unique(candidates), key=lambda c: not c.checks_passed)
    portrait = None
    if best_zone is not None:
        zone_reading, orientation = best_zone
        portrait = estimate_portrait_box(
            zone_reading.zone, zone_reading.pitch_px, orientation, size
        )
    timings["total"] = time.perf_counter() - started
    return MachineZoneReading(
        candidates=tuple(ranked),
        portrait_box=portrait,
        confidence=ranked[0].confidence if ranked else 0.0,
        timings={k: round(v, 4) for k, v in timings.items()},
        engine=engine_version(),
    )


def _unique(candidates: Sequence[MachineZoneCandidate]) -> Iterator[MachineZoneCandidate]:
    seen: set[str] = set()
    for candidate in candidates:
        if candidate.text not in seen:
            seen.add(candidate.text)
            yield candidate


def _refuse_second_document(
    grey: Any,
    zones: Sequence[Sequence[TextLine]],
    attempt: Attempt,
    reading: ZoneReading,
    text: str,
    timings: dict[str, float],
) -> None:
    """Two legible zones in one photo: refuse rather than pick one silently.

    Only groups as long as the zone just read, and far from it, are read."""
    first = reading.zone[0]
    for index, zone in enumerate(zones):
        if index == attempt.zone or not zone:
            continue
        line = zone[0]
        if line.length < 0.7 * first.length:
            continue
        if math.hypot(line.cx - first.cx, line.cy - first.cy) < 4 * first.thickness * len(
            reading.lines
        ):
            continue
        tic = time.perf_counter()
        other = read_zone(
            grey,
            zone,
            Attempt("second_document", attempt.orientation, index, False, False, CHAR_HEIGHT_PX),
        )
        timings["ocr"] += time.perf_counter() - tic
        if other is None:
            continue
        spec = layout_for(other.lines)
        if spec is None:
            continue
        fixed, _notes, _ambiguous = repair(other.lines, spec, other.confidences)
        failing = failing_checks(fixed, spec)
        # Both date checks holding by chance is a 1 in 100 event: that is a
        # second document, even if other fields of it are misread.
        if (
            "birth_date" not in failing
            and "expiry_date" not in failing
            and "\n".join(fixed) != text
        ):
            raise MultipleDocumentsError(details={"zones": 2})


# --- reading by OCR-B templates ------------------------------------------------------------

_DIGITS: Final = frozenset("0123456789")
_LETTERS_OR_FILLER: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ<")
_SEX_POSITION: Final = {"TD3": (1, 20), "MRV-A": (1, 20), "TD2": (1, 20), "MRV-B": (1, 20)}
_SEX_POSITION_TD1: Final = (1, 7)
_NEAR: Final = 0.1
"""A glyph scoring within this of a cell's best is a plausible alternative reading."""
_MAX_ALTERNATIVES: Final = 4
"""At most 2**4 variants of one field are tried against its check digit."""


def allowed_characters(spec: LayoutSpec) -> dict[tuple[int, int], frozenset[str]]:
    """What each constrained position may hold: digits in dates, digits or a
    filler in check digits, letters or fillers in codes, states, sex and names."""
    allowed: dict[tuple[int, int], frozenset[str]] = {}
    for line, start, end in (*spec.letters, *spec.names):
        for col in range(start, end):
            allowed[(line, col)] = _LETTERS_OR_FILLER
    sex = _SEX_POSITION_TD1 if spec.name == "TD1" else _SEX_POSITION.get(spec.name)
    if sex is not None:
        allowed[sex] = _LETTERS_OR_FILLER
    for field in spec.checked:
        if field.numeric:
            for position in _positions(field):
                allowed[position] = _DIGITS
        allowed[field.check] = _DIGITS | {"<"}
    return allowed


@frozen
class TemplateReading:
    lines: tuple[str, ...]
    notes: tuple[str, ...]
    checks_passed: bool
    confidence: float
    ambiguous: bool


def decode_scores(scores: Sequence[Any]) -> TemplateReading | None:
    """Text from per-cell glyph scores: each cell's best glyph in its field's
    alphabet; where a check digit fails, the field's least certain cells take
    their next-best glyph only if exactly one such variant makes the check hold."""
    import numpy as np

    from healthcode.plugins.passport.glyphs import ALPHABET

    if not scores:
        return None
    index = {char: i for i, char in enumerate(ALPHABET)}
    raw = ["".join(ALPHABET[int(i)] for i in s.argmax(axis=1)) for s in scores]
    spec = layout_for(raw)
    if spec is None:
        return None
    allowed = allowed_characters(spec)
    ranked: dict[tuple[int, int], list[tuple[float, str]]] = {}
    lines: list[str] = []
    best_scores = []
    for row, cell_scores in enumerate(scores):
        text = []
        for col in range(cell_scores.shape[0]):
            chars = allowed.get((row, col), frozenset(ALPHABET))
            options = sorted(((float(cell_scores[col, index[c]]), c) for c in chars), reverse=True)
            ranked[(row, col)] = options
            text.append(options[0][1])
            best_scores.append(options[0][0])
        lines.append("".join(text))
    notes = [f"layout:{spec.name}", "reader:templates"]
    ambiguous = False
    ordered = sorted(spec.checked, key=lambda f: f.name == "composite")
    covered = {
        pos for f in spec.checked if f.name != "composite" for pos in [*_positions(f), f.check]
    }
    for field in ordered:
        if _holds(lines, field):
            continue
        positions = [*_positions(field), field.check]
        if field.name == "composite":
            positions = [pos for pos in positions if pos not in covered]
        doubtful = []
        for pos in positions:
            options = ranked[pos]
            if len(options) > 1 and options[0][0] - options[1][0] < _NEAR:
                doubtful.append((options[0][0] - options[1][0], pos, options[1][1]))
        doubtful.sort()
        doubtful = doubtful[:_MAX_ALTERNATIVES]
        solutions = []
        for mask in itertools.product((False, True), repeat=len(doubtful)):
            if not any(mask):
                continue
            trial = list(lines)
            for flip, (_margin, (row, col), char) in zip(mask, doubtful, strict=True):
                if flip:
                    _set(trial, row, col, char)
            if _holds(trial, field):
                solutions.append(trial)
        if len(solutions) == 1:
            for row, (before, after) in enumerate(zip(lines, solutions[0], strict=True)):
                for col, (a, b) in enumerate(zip(before, after, strict=True)):
                    if a != b:
                        notes.append(f"check_confirmed:{field.name}:line{row + 1}:col{col + 1}")
            lines = solutions[0]
        elif solutions:
            ambiguous = True
    failing = failing_checks(lines, spec)
    notes.extend(f"check_failed:{name}" for name in failing)
    return TemplateReading(
        tuple(lines),
        tuple(notes),
        not failing,
        round(float(np.mean(best_scores)), 4),
        ambiguous,
    )


def _counts_for(lines: int) -> tuple[int, ...]:
    return (30,) if lines in (1, 3) else (44, 36)


def read_zone_templates(
    grey: Any, zone: Sequence[TextLine]
) -> tuple[TemplateReading, ZoneReading] | None:
    """Read a located zone by OCR-B templates (None without the font or when
    the lines cannot be measured)."""

    from healthcode.plugins.passport import glyphs

    if glyphs.templates() is None or not 1 <= len(zone) <= 3:
        return None
    measured = []
    for line in zone:
        m = glyphs.measure_line(grey, line.cx, line.cy, line.angle, line.length, line.thickness)
        if m is None:
            return None
        measured.append(m)
    return read_measured_zone(grey, measured)


def read_measured_zone(
    grey: Any, measured: Sequence[Any]
) -> tuple[TemplateReading, ZoneReading] | None:
    """Read measured zone lines (``glyphs.Measured``, top to bottom) by templates."""
    import numpy as np

    from healthcode.plugins.passport import glyphs

    if not 1 <= len(measured) <= 3:
        return None
    span = float(np.mean([np.hypot(*(m.right - m.left)) for m in measured]))
    band = float(np.mean([m.band for m in measured]))
    counts = _counts_for(len(measured))
    if len(counts) > 1:
        # Caps are ~0.98 pitch tall: the aspect of the ink names the count.
        estimate = span / max(band / 0.98, 1.0) + 0.32
        counts = tuple(sorted(counts, key=lambda n: abs(n - estimate)))
        if abs(counts[0] - estimate) < 0.25 * abs(counts[0] - counts[1]):
            counts = counts[:1]
    best: tuple[float, TemplateReading, ZoneReading] | None = None
    for count in counts:
        found = glyphs.read_zone_lines(grey, measured, count)
        if found is None:
            continue
        line_scores, flip = found
        reading = decode_scores([s.scores for s in line_scores])
        if reading is None:
            continue
        pitch = float(np.mean([np.hypot(*(m.right - m.left)) for m in measured])) / (count - 0.32)
        boxes = []
        for m in measured:
            centre = (m.left + m.right) / 2
            angle = math.atan2(float(m.right[1] - m.left[1]), float(m.right[0] - m.left[0]))
            boxes.append(
                TextLine(
                    float(centre[0]),
                    float(centre[1]),
                    pitch * count,
                    m.band,
                    angle + (math.pi if flip else 0.0),
                )
            )
        if flip:
            boxes = boxes[::-1]
        zone_reading = ZoneReading(
            reading.lines,
            reading.confidence,
            tuple(tuple(float(v) for v in s.scores.max(axis=1)) for s in line_scores),
            pitch,
            tuple(boxes),
        )
        rank = reading.confidence + (1.0 if reading.checks_passed else 0.0)
        if best is None or rank > best[0]:
            best = (rank, reading, zone_reading)
    return (best[1], best[2]) if best else None


_TEMPLATE_ORIENTATIONS: Final = (0, 1, 3)
"""Quarter turns tried (a half turn is decided per zone, by which way glyphs match)."""
_MRZ_LIKE: Final = 0.55
"""Mean glyph correlation above which a band is taken for an MRZ (noise scores ~0.3)."""


def _read_by_templates(
    grey0: Any, candidates: list[MachineZoneCandidate], timings: dict[str, float]
) -> tuple[tuple[ZoneReading, int] | None, bool]:
    """The template reader over the located zones, in quarter turns until one
    zone's check digits all hold. Appends candidates; returns the zone read
    best (for the portrait) and whether an MRZ-like zone was seen at all."""
    import numpy as np

    from healthcode.plugins.passport import glyphs

    if glyphs.templates() is None:
        return None, False
    best: tuple[float, ZoneReading, int] | None = None
    seen_mrz = False
    for orientation in _TEMPLATE_ORIENTATIONS:
        if orientation and seen_mrz:
            break
        tic = time.perf_counter()
        grey = np.ascontiguousarray(np.rot90(grey0, orientation))
        seeds = glyphs.find_seeds(grey)
        timings["locate"] += time.perf_counter() - tic
        tic = time.perf_counter()
        zones = _zones_from_seeds(grey, seeds)
        for index, zone in enumerate(zones):
            found = read_measured_zone(grey, zone)
            if found is None:
                continue
            reading, zone_reading = found
            seen_mrz = seen_mrz or reading.confidence >= _MRZ_LIKE
            if reading.confidence < _MRZ_LIKE and not reading.checks_passed:
                continue
            candidates.append(
                MachineZoneCandidate(
                    "\n".join(reading.lines),
                    (f"attempt:templates_{orientation * 90}", *reading.notes)
                    + (("ambiguous_repair",) if reading.ambiguous else ()),
                    reading.checks_passed,
                    round(reading.confidence * (1.0 if reading.checks_passed else 0.5), 4),
                )
            )
            rank = reading.confidence + (1.0 if reading.checks_passed else 0.0)
            if best is None or rank > best[0]:
                best = (rank, zone_reading, orientation)
            if reading.checks_passed:
                _refuse_second_zone(grey, zones, index, reading)
                timings["templates"] += time.perf_counter() - tic
                return (best[1], best[2]), True
        timings["templates"] += time.perf_counter() - tic
    return ((best[1], best[2]) if best else None), seen_mrz


def _zones_from_seeds(grey: Any, seeds: Sequence[Any]) -> list[list[Any]]:
    """Distinct zones (measured lines, top to bottom) around the seeds."""
    import numpy as np

    from healthcode.plugins.passport import glyphs

    zones: list[list[Any]] = []
    for seed in seeds:
        zone = glyphs.find_zone(grey, seed.cx, seed.cy, seed.angle, seed.length, seed.thickness)
        if not zone:
            continue
        # A zone's ink is as long as its cell count says (caps ~0.98 pitch
        # tall): labels, page edges and text blocks are dropped unread.
        estimate = float(np.hypot(*(zone[0].right - zone[0].left))) / max(zone[0].band / 0.98, 1.0)
        if not any(abs(estimate + 0.32 - n) < 0.15 * n for n in _counts_for(len(zone))):
            continue
        start = zone[0].left
        if any(float(np.hypot(*(other[0].left - start))) < 2 * zone[0].band for other in zones):
            continue
        zones.append(zone)
    return zones


def _refuse_second_zone(
    grey: Any, zones: Sequence[Sequence[Any]], index: int, reading: TemplateReading
) -> None:
    """Two legible zones in one photo: refuse rather than pick one silently."""
    import numpy as np

    first = zones[index]
    for other_index, zone in enumerate(zones):
        if other_index == index:
            continue
        distance = float(np.hypot(*(zone[0].left - first[0].left)))
        if distance < 4 * first[0].band * len(first):
            continue
        found = read_measured_zone(grey, zone)
        if found is None:
            continue
        other = found[0]
        spec = layout_for(other.lines)
        # Printed labels read as noise score ~0.3-0.45; only an MRZ-like zone counts.
        if spec is None or other.confidence < _MRZ_LIKE:
            continue
        failing = failing_checks(list(other.lines), spec)
        # Both date checks holding by chance is a 1 in 100 event: that is a
        # second document, even if other fields of it are misread.
        if (
            "birth_date" not in failing
            and "expiry_date" not in failing
            and other.lines != reading.lines
        ):
            raise MultipleDocumentsError(details={"zones": 2})
