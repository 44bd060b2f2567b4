"""Synthetic photos of identity documents with a known machine-readable zone.

For the OCR tests and benchmark. A page is drawn to scale (TD3 passport data
page 125 x 88 mm, TD2 105 x 74 mm, TD1 and the CR/CT/CS permit cards 85.6 x
54 mm) with a tinted, guilloche-like background, a few printed labels, a
portrait-like area and the MRZ in OCR-B at ICAO's 10 characters per inch
(Debian ``fonts-ocr-b``). The page then lies on a table and is "photographed":
uneven light, rotation and perspective (one homography, so the portrait box is
known exactly in the output), lower resolution, blur, sensor noise and JPEG.

Degradation levels are graded (``clean`` < ``mild`` < ``moderate`` <
``severe``); each image draws every degradation between half and all of its
level's maximum, so a level is a band, not a point. The ground truth is the MRZ
text: the fields come from ``healthcode.testing.mrz`` and
``healthcode.testing.permits`` and every check digit is right. Nothing here is
a real person's data.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final, Literal

from attrs import field, frozen

from healthcode.testing.mrz import format_mrz, random_fields

Level = Literal["clean", "mild", "moderate", "severe"]
LEVELS: Final[tuple[Level, ...]] = ("clean", "mild", "moderate", "severe")

DocumentLayout = Literal["TD1", "TD2", "TD3", "CR", "CT", "CS"]
DOCUMENT_LAYOUTS: Final[tuple[DocumentLayout, ...]] = ("TD3", "TD2", "TD1", "CR", "CT", "CS")

MrzFont = Literal["ocr-b", "dejavu-mono", "liberation-mono", "freemono"]
MRZ_FONTS: Final[tuple[MrzFont, ...]] = ("ocr-b", "dejavu-mono", "liberation-mono", "freemono")
"""Fonts the MRZ may be rendered in: OCR-B (what ICAO prescribes and the
templates come from) and monospace fonts Debian ships, so that the set does
not flatter a reader tuned to OCR-B."""
MRZ_FONT_FILES: Final[dict[MrzFont, tuple[Path, str]]] = {
    "dejavu-mono": (
        Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"),
        "fonts-dejavu-core",
    ),
    "liberation-mono": (
        Path("/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf"),
        "fonts-liberation",
    ),
    "freemono": (Path("/usr/share/fonts/truetype/freefont/FreeMonoBold.ttf"), "fonts-freefont-ttf"),
}

OCR_B_FONT_DIRS: Final = (
    Path("/usr/share/fonts/opentype/ocr-b"),
    Path("/usr/share/fonts/truetype/ocr-b"),
    Path("/usr/local/share/fonts"),
)

# Page size in millimetres per layout (ICAO 9303 parts 4-6; the permits are ID-1 cards).
_PAGE_MM: Final[dict[DocumentLayout, tuple[float, float]]] = {
    "TD3": (125.0, 88.0),
    "TD2": (105.0, 74.0),
    "TD1": (85.6, 54.0),
    "CR": (85.6, 54.0),
    "CT": (85.6, 54.0),
    "CS": (85.6, 54.0),
}
_PITCH_MM: Final = 2.54
"""ICAO 9303 part 3: 10 characters per inch."""
_LINE_PITCH_MM: Final = 4.3
_PX_PER_MM: Final = 10.0
"""Drawing resolution before the photo's own resolution is applied."""


@frozen
class Degradation:
    """Maximum strength of each degradation at one level."""

    blur_sigma: float
    """Gaussian blur, in output pixels."""
    noise_sigma: float
    """Additive Gaussian noise, in 8-bit grey levels."""
    jpeg_quality: int
    """The lowest JPEG quality drawn (the highest is 95)."""
    rotation_deg: float
    perspective: float
    """Largest corner displacement, as a share of the longer side."""
    uneven_light: float
    """Depth of the light gradient (0: even; 0.5: one corner at half brightness)."""
    resolution: float
    """Smallest output scale relative to 10 px/mm."""


DEGRADATIONS: Final[dict[Level, Degradation]] = {
    "clean": Degradation(0.0, 0.0, 95, 0.0, 0.0, 0.0, 1.0),
    "mild": Degradation(0.6, 3.0, 85, 2.0, 0.01, 0.15, 0.85),
    "moderate": Degradation(1.0, 6.0, 70, 5.0, 0.025, 0.3, 0.7),
    "severe": Degradation(1.6, 12.0, 45, 10.0, 0.05, 0.5, 0.5),
}


@frozen
class SyntheticDocument:
    """One generated photo and what it shows."""

    layout: DocumentLayout
    level: Level
    mrz: str = field(repr=False)
    """Ground truth: the MRZ text, lines joined by ``\\n``."""
    image: bytes = field(repr=False)
    """The photo, JPEG-encoded (PNG for ``clean``)."""
    width: int
    height: int
    portrait_box: tuple[int, int, int, int]
    """x, y, width, height of the portrait area in the photo."""
    params: dict[str, float] = field(factory=dict)
    """The degradations drawn for this image."""


def ocr_b_font_path() -> Path:
    """The OCR-B font file, or ``FileNotFoundError`` naming the package to install."""
    for folder in OCR_B_FONT_DIRS:
        candidate = folder / "OCRB.otf"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        "The OCR-B font was not found; install it with `apt-get install fonts-ocr-b`."
    )


def random_document_mrz(rng: random.Random, layout: DocumentLayout, *, today: dt.date) -> str:
    """A valid random MRZ of ``layout`` (ICAO layouts or the CR/CT/CS permits)."""
    if layout in ("TD1", "TD2", "TD3"):
        return format_mrz(random_fields(rng, layout, today=today, plain=True))
    # Imported here: the ICAO pages (and ``healthcode demo``) need no permit plugin.
    from healthcode.plugins.hkmo_permit.kinds import (
        HK_MO_EXIT_ENTRY_PERMIT,
        HOME_RETURN_PERMIT,
        TW_COMPATRIOT_PERMIT,
    )
    from healthcode.testing.permits import random_mrz_sample

    kind = {"CR": HOME_RETURN_PERMIT, "CT": TW_COMPATRIOT_PERMIT, "CS": HK_MO_EXIT_ENTRY_PERMIT}[
        layout
    ]
    return random_mrz_sample(rng, kind).mrz


# --- drawing ------------------------------------------------------------------------


def _fonts(size_px: float) -> tuple[Any, Any]:
    from PIL import ImageFont

    ocr_b = ImageFont.truetype(str(ocr_b_font_path()), max(round(size_px), 1))
    return ocr_b, ImageFont.load_default


def render_page(
    mrz: str | None,
    layout: DocumentLayout,
    rng: random.Random,
    *,
    portrait: Any = None,
    labels: Sequence[tuple[str, str]] | None = None,
    title: str | None = None,
    font: MrzFont = "ocr-b",
    worn: random.Random | None = None,
) -> tuple[Any, tuple[int, int, int, int]]:
    """Draw a clean data page at 10 px/mm; returns (PIL RGB image, portrait box).

    ``mrz=None`` draws the page without a machine-readable zone (for the
    "no MRZ found" case). ``portrait``: a PIL image to print in the portrait
    area (scaled to fill it, centred, cropped), instead of the drawn face.
    ``labels``: (label, value) pairs to print instead of random values;
    ``title``: the page's heading instead of a random fictitious state.
    ``font``: the MRZ's font (``MRZ_FONTS``); ``worn``: a generator for
    printing noise (characters off their cells, uneven ink)."""
    from PIL import ImageDraw

    width_mm, height_mm = _PAGE_MM[layout]
    width, height = int(width_mm * _PX_PER_MM), int(height_mm * _PX_PER_MM)
    page = _background(width, height, rng)
    draw = ImageDraw.Draw(page)
    lines = mrz.split("\n") if mrz else []
    mrz_top = height - int((len(lines) * _LINE_PITCH_MM + 4) * _PX_PER_MM) if lines else height
    box = _portrait_box(width, mrz_top)
    px, py, portrait_w, portrait_h = box
    if portrait is None:
        page.paste(_portrait(portrait_w, portrait_h, rng), (px, py))
    else:
        page.paste(_fill(portrait, portrait_w, portrait_h), (px, py))
    _draw_labels(draw, px + portrait_w + int(4 * _PX_PER_MM), mrz_top, rng, labels, title)
    if lines:
        _draw_mrz(draw, lines, width, mrz_top, font, worn)
    return page, box


def _background(width: int, height: int, rng: random.Random) -> Any:
    """A tinted page with a guilloche-like security background: thin, light sine curves."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    tint = (rng.randint(225, 250), rng.randint(228, 250), rng.randint(220, 248))
    page = PILImage.new("RGB", (width, height), tint)
    draw = ImageDraw.Draw(page)
    phase = rng.uniform(0, math.tau)
    for k in range(0, height, 9):
        points = [
            (x, k + 4 * math.sin(x / 23.0 + phase + k / 40.0)) for x in range(0, width + 10, 10)
        ]
        shade = tuple(max(c - rng.randint(12, 22), 0) for c in tint)
        draw.line(points, fill=shade, width=1)
    return page


def _portrait_box(width: int, mrz_top: int) -> tuple[int, int, int, int]:
    """The portrait area: on the left, above the MRZ (x, y, width, height)."""
    margin = int(5 * _PX_PER_MM)
    portrait_w = int(width * 0.26)
    portrait_h = min(int(portrait_w * 1.3), mrz_top - int(margin * 1.6))
    px, py = margin, max(mrz_top - portrait_h - int(2 * _PX_PER_MM), int(margin * 0.8))
    return (px, py, portrait_w, portrait_h)


def _fill(picture: Any, width: int, height: int) -> Any:
    """``picture`` scaled to cover width x height, centred and cropped."""
    from PIL import ImageOps

    return ImageOps.fit(picture.convert("RGB"), (width, height), centering=(0.5, 0.4))


_LABELS: Final = ("Surname / Nom", "Given names / Prenoms", "Date of birth", "Date of expiry")


def _draw_labels(
    draw: Any,
    x: int,
    mrz_top: int,
    rng: random.Random,
    labels: Sequence[tuple[str, str]] | None = None,
    title: str | None = None,
) -> None:
    """Printed labels and values right of the portrait (text that is not MRZ-like)."""
    from PIL import ImageFont

    label_font = ImageFont.load_default(size=max(int(2.2 * _PX_PER_MM), 8))
    value_font = ImageFont.load_default(size=max(int(3.0 * _PX_PER_MM), 8))
    y = int(4 * _PX_PER_MM)
    heading = title or rng.choice(("UTOPIA", "ATLANTIS", "ZENITH"))
    draw.text((x, y), heading, fill=(20, 20, 60), font=value_font)
    y += int(6 * _PX_PER_MM)
    given = dict(labels) if labels is not None else None
    for label in given or _LABELS:
        if y > mrz_top - int(7 * _PX_PER_MM):
            break
        draw.text((x, y), label, fill=(70, 70, 90), font=label_font)
        y += int(2.8 * _PX_PER_MM)
        # Random values are drawn only for the lines printed, as before (seeds reproduce).
        value = (
            given[label]
            if given is not None
            else "".join(rng.choice("ABCDEFGHIJKLMNOPRSTUVWY ") for _ in range(rng.randint(5, 14)))
        )
        draw.text((x + 4, y), value.strip() or "A", fill=(10, 10, 10), font=value_font)
        y += int(4.4 * _PX_PER_MM)


def _draw_mrz(
    draw: Any,
    lines: Sequence[str],
    width: int,
    mrz_top: int,
    font: MrzFont = "ocr-b",
    rng: random.Random | None = None,
) -> None:
    """The MRZ at ICAO's pitch, centred, one character per cell: in OCR-B, or
    in another monospace font scaled to the same pitch and cap height. With
    ``rng``, each character is printed a little off its cell and in uneven ink
    (a worn ribbon or laser printer)."""
    pitch = _PITCH_MM * _PX_PER_MM
    if font == "ocr-b":
        face, _ = _fonts(pitch / 0.723)  # OCR-B advances 0.723 em
    else:
        face = _mono_font(font, pitch)
    line_width = pitch * len(lines[0])
    x0 = (width - line_width) / 2
    for row, line in enumerate(lines):
        top = mrz_top + int(2 * _PX_PER_MM) + row * _LINE_PITCH_MM * _PX_PER_MM - pitch * 0.3
        for col, char in enumerate(line):
            dx = dy = 0.0
            ink = 15
            if rng is not None:
                dx, dy = rng.gauss(0, 0.04 * pitch), rng.gauss(0, 0.04 * pitch)
                ink = rng.randint(0, 70)
            draw.text((x0 + col * pitch + dx, top + dy), char, fill=(ink, ink, ink + 5), font=face)


def mrz_font_path(font: MrzFont) -> Path:
    """The file of an MRZ rendering font, or ``FileNotFoundError`` naming its Debian package."""
    if font == "ocr-b":
        return ocr_b_font_path()
    path, package = MRZ_FONT_FILES[font]
    if not path.is_file():
        raise FileNotFoundError(f"The font {font} was not found; install `{package}`.")
    return path


def available_mrz_fonts() -> tuple[MrzFont, ...]:
    """The MRZ fonts installed here (OCR-B first)."""
    found: list[MrzFont] = []
    for font in MRZ_FONTS:
        try:
            mrz_font_path(font)
        except FileNotFoundError:
            continue
        found.append(font)
    return tuple(found)


def _mono_font(font: MrzFont, pitch: float) -> Any:
    """A monospace font sized so that its advance is ``pitch`` and its capitals
    are no taller than OCR-B's (about 0.98 pitch); condensed fonts are kept
    at the cap height and printed narrower than the cell, as on real documents."""
    from PIL import ImageFont

    path = str(mrz_font_path(font))
    probe = ImageFont.truetype(path, 100)
    advance = probe.getlength("M") / 100
    _left, top, _right, bottom = probe.getbbox("H")
    cap = (bottom - top) / 100
    size = min(pitch / advance, 0.98 * pitch / cap * 0.95)
    return ImageFont.truetype(path, max(round(size), 1))


def _portrait(width: int, height: int, rng: random.Random) -> Any:
    """A face-like drawing (head, eyes, mouth, shoulders) clipped to its frame."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    portrait = PILImage.new("RGB", (width, height), (214, 222, 232))
    draw = ImageDraw.Draw(portrait)
    skin = (rng.randint(170, 230), rng.randint(140, 190), rng.randint(110, 160))
    cx = width / 2
    draw.ellipse(
        (cx - width * 0.42, height * 0.72, cx + width * 0.42, height * 1.3), fill=(60, 70, 90)
    )
    draw.ellipse((cx - width * 0.24, height * 0.18, cx + width * 0.24, height * 0.72), fill=skin)
    for side in (-1, 1):
        ex = cx + side * width * 0.09
        draw.ellipse((ex - 4, height * 0.4 - 3, ex + 4, height * 0.4 + 3), fill=(40, 40, 40))
    draw.line(
        (cx - width * 0.07, height * 0.6, cx + width * 0.07, height * 0.6),
        fill=(150, 70, 70),
        width=3,
    )
    return portrait


# --- the photo ------------------------------------------------------------------------


def _homography(src: Sequence[tuple[float, float]], dst: Sequence[tuple[float, float]]) -> Any:
    """3x3 matrix mapping the 4 ``src`` points onto the 4 ``dst`` points."""
    import numpy as np

    rows: list[list[float]] = []
    rhs: list[float] = []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend((u, v))
    solution = np.linalg.solve(np.array(rows, dtype=float), np.array(rhs, dtype=float))
    return np.append(solution, 1.0).reshape(3, 3)


def _apply(matrix: Any, x: float, y: float) -> tuple[float, float]:
    u, v, w = matrix @ (x, y, 1.0)
    return float(u / w), float(v / w)


def photograph(
    page: Any,
    portrait_box: tuple[int, int, int, int],
    level: Level,
    rng: random.Random,
    spec: Degradation | None = None,
) -> tuple[bytes, int, int, tuple[int, int, int, int], dict[str, float]]:
    """Degrade a clean page like a phone photo at ``level`` (or as ``spec`` says).

    Returns (encoded image, width, height, portrait box in the photo, the
    degradations drawn)."""
    # The draws happen in a fixed order, so that a seed gives the same photo.
    params = _draw_degradations(spec or DEGRADATIONS[level], rng)
    # The page on a table, with a border around it.
    pad = int(0.12 * max(page.size))
    table = (rng.randint(60, 140), rng.randint(50, 120), rng.randint(40, 100))
    canvas = _on_table(page, pad, table)
    if params["uneven_light"] > 0:
        canvas = _uneven_light(canvas, params["uneven_light"], rng)
    photo, forward = _tilt(canvas, params, table, rng)
    bx, by, bw, bh = portrait_box
    box = _bounding_box(
        [_apply(forward, bx + pad + dx, by + pad + dy) for dx in (0, bw) for dy in (0, bh)],
        photo.width,
        photo.height,
    )
    photo = _blur_and_noise(photo, params, rng)
    return _encode(photo, level, params), photo.width, photo.height, box, params


def _draw_degradations(spec: Degradation, rng: random.Random) -> dict[str, float]:
    """Each degradation between half and all of the level's maximum."""

    def draw_value(maximum: float) -> float:
        return rng.uniform(0.5, 1.0) * maximum

    return {
        "rotation_deg": draw_value(spec.rotation_deg) * rng.choice((-1, 1)),
        "perspective": draw_value(spec.perspective),
        "uneven_light": draw_value(spec.uneven_light),
        "resolution": rng.uniform(spec.resolution, spec.resolution + (1 - spec.resolution) * 0.3),
        "blur_sigma": draw_value(spec.blur_sigma),
        "noise_sigma": draw_value(spec.noise_sigma),
        "jpeg_quality": float(rng.randint(spec.jpeg_quality, max(spec.jpeg_quality, 95))),
    }


def _on_table(page: Any, pad: int, table: tuple[int, int, int]) -> Any:
    from PIL import Image as PILImage

    canvas = PILImage.new("RGB", (page.width + 2 * pad, page.height + 2 * pad), table)
    canvas.paste(page, (pad, pad))
    return canvas


def _uneven_light(canvas: Any, depth: float, rng: random.Random) -> Any:
    """A linear light gradient in a random direction, multiplied in."""
    import numpy as np
    from PIL import Image as PILImage

    cw, ch = canvas.size
    angle = rng.uniform(0, math.tau)
    yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
    ramp = (xx / cw - 0.5) * math.cos(angle) + (yy / ch - 0.5) * math.sin(angle)
    ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)
    gain = 1.0 - depth * ramp
    lit = np.asarray(canvas, dtype=np.float32) * gain[:, :, None]
    return PILImage.fromarray(np.clip(lit, 0, 255).astype(np.uint8))


def _tilt(
    canvas: Any, params: dict[str, float], table: tuple[int, int, int], rng: random.Random
) -> tuple[Any, Any]:
    """Rotation and perspective as one homography, at the output resolution.

    Returns the photo and the homography from canvas to photo coordinates."""
    import numpy as np
    from PIL import Image as PILImage

    cw, ch = canvas.size
    corners = [(0.0, 0.0), (float(cw), 0.0), (float(cw), float(ch)), (0.0, float(ch))]
    moved = _moved_corners(corners, params, rng)
    forward = _homography(corners, moved)
    inverse = np.linalg.inv(forward)
    coefficients = tuple(float(c) for c in (inverse / inverse[2, 2]).flatten()[:8])
    photo = canvas.transform(
        (math.ceil(max(p[0] for p in moved)), math.ceil(max(p[1] for p in moved))),
        PILImage.Transform.PERSPECTIVE,
        coefficients,
        resample=PILImage.Resampling.BICUBIC,
        fillcolor=table,
    )
    return photo, forward


def _moved_corners(
    corners: Sequence[tuple[float, float]], params: dict[str, float], rng: random.Random
) -> list[tuple[float, float]]:
    """The canvas corners rotated, jittered and scaled, shifted to start at (0, 0)."""
    scale = params["resolution"]
    theta = math.radians(params["rotation_deg"])
    cx, cy = corners[2][0] / 2, corners[2][1] / 2
    jitter = params["perspective"] * max(corners[2])
    moved = []
    for x, y in corners:
        rx = cx + (x - cx) * math.cos(theta) - (y - cy) * math.sin(theta)
        ry = cy + (x - cx) * math.sin(theta) + (y - cy) * math.cos(theta)
        moved.append(
            (
                (rx + rng.uniform(-jitter, jitter)) * scale,
                (ry + rng.uniform(-jitter, jitter)) * scale,
            )
        )
    min_x = min(p[0] for p in moved)
    min_y = min(p[1] for p in moved)
    return [(x - min_x, y - min_y) for x, y in moved]


def _bounding_box(
    points: Sequence[tuple[float, float]], width: int, height: int
) -> tuple[int, int, int, int]:
    """x, y, width, height of the points' bounding box, clipped to the image."""
    left = max(int(min(p[0] for p in points)), 0)
    top = max(int(min(p[1] for p in points)), 0)
    right = min(math.ceil(max(p[0] for p in points)), width)
    bottom = min(math.ceil(max(p[1] for p in points)), height)
    return (left, top, right - left, bottom - top)


def _blur_and_noise(photo: Any, params: dict[str, float], rng: random.Random) -> Any:
    import numpy as np
    from PIL import Image as PILImage
    from PIL import ImageFilter

    if params["blur_sigma"] > 0:
        photo = photo.filter(ImageFilter.GaussianBlur(params["blur_sigma"]))
    if params["noise_sigma"] > 0:
        noise_rng = np.random.default_rng(rng.getrandbits(32))
        noisy = np.asarray(photo, dtype=np.float32) + noise_rng.normal(
            0, params["noise_sigma"], (photo.height, photo.width, 1)
        ).astype(np.float32)
        photo = PILImage.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    return photo


def _encode(photo: Any, level: Level, params: dict[str, float]) -> bytes:
    """PNG for ``clean`` (lossless ground truth), JPEG at the drawn quality otherwise."""
    buffer = io.BytesIO()
    if level == "clean":
        photo.save(buffer, format="PNG")
    else:
        photo.save(buffer, format="JPEG", quality=int(params["jpeg_quality"]))
    return buffer.getvalue()


def synthetic_document(
    rng: random.Random,
    layout: DocumentLayout = "TD3",
    level: Level = "clean",
    *,
    today: dt.date,
    mrz: str | None = None,
) -> SyntheticDocument:
    """One photo of a generated document of ``layout`` at ``level``."""
    text = mrz if mrz is not None else random_document_mrz(rng, layout, today=today)
    page, box = render_page(text, layout, rng)
    image, width, height, photo_box, params = photograph(page, box, level, rng)
    return SyntheticDocument(layout, level, text, image, width, height, photo_box, params)


def synthetic_batch(
    seed: int,
    count: int,
    *,
    today: dt.date,
    levels: Sequence[Level] = LEVELS,
    layouts: Sequence[DocumentLayout] = DOCUMENT_LAYOUTS,
) -> Iterator[SyntheticDocument]:
    """``count`` documents, cycling through ``levels`` and ``layouts`` (reproducible)."""
    rng = random.Random(seed)
    for index in range(count):
        level = levels[index % len(levels)]
        layout = layouts[(index // len(levels)) % len(layouts)]
        yield synthetic_document(rng, layout, level, today=today)


def page_without_mrz(rng: random.Random, layout: DocumentLayout = "TD3") -> bytes:
    """A clean page with a portrait and labels but no machine-readable zone (PNG)."""
    page, box = render_page(None, layout, rng)
    image, *_ = photograph(page, box, "clean", rng)
    return image


def two_documents_photo(rng: random.Random, *, today: dt.date) -> tuple[bytes, tuple[str, str]]:
    """Two different passports side by side in one photo (PNG) and their MRZs."""
    from PIL import Image as PILImage

    first = random_document_mrz(rng, "TD3", today=today)
    second = random_document_mrz(rng, "TD3", today=today)
    page_a, _ = render_page(first, "TD3", rng)
    page_b, _ = render_page(second, "TD3", rng)
    gap = 80
    canvas = PILImage.new(
        "RGB",
        (page_a.width + page_b.width + 3 * gap, max(page_a.height, page_b.height) + 2 * gap),
        (90, 80, 70),
    )
    canvas.paste(page_a, (gap, gap))
    canvas.paste(page_b, (page_a.width + 2 * gap, gap))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue(), (first, second)


# --- a set that does not flatter --------------------------------------------------------

Hardship = Literal[
    "fonts", "worn_print", "moire", "motion_blur", "perspective", "jpeg", "small_in_frame",
    "quarter_turn", "low_contrast", "glare",
]  # fmt: skip
HARDSHIPS: Final[tuple[Hardship, ...]] = (
    "fonts", "worn_print", "moire", "motion_blur", "perspective", "jpeg", "small_in_frame",
    "quarter_turn", "low_contrast", "glare",
)  # fmt: skip
"""One hardship per image, on top of a level's photo degradations:

* ``fonts``: the MRZ in a monospace font other than OCR-B (DejaVu Sans Mono,
  Liberation Mono, FreeMono), with printing noise;
* ``worn_print``: OCR-B printed off its cells in uneven ink;
* ``moire``: a photographed screen (interference fringes, sub-pixel stripes);
* ``motion_blur``: the camera moved (a line kernel, 4-9 px, any direction);
* ``perspective``: the page at a steep angle (twice the severe level's corners);
* ``jpeg``: heavy compression (quality 20-35);
* ``small_in_frame``: the page a third of a large cluttered photo's width;
* ``quarter_turn``: the photo turned by 90, 180 or 270 degrees;
* ``low_contrast``: a dim, flat capture (grey levels squeezed to a third);
* ``glare``: a bright reflection over part of the page.
"""


def hard_document(
    rng: random.Random,
    layout: DocumentLayout,
    hardship: Hardship,
    level: Level = "moderate",
    *,
    today: dt.date,
) -> SyntheticDocument:
    """One photo of a generated ``layout`` document at ``level`` with ``hardship``."""
    import numpy as np
    from PIL import Image as PILImage

    text = random_document_mrz(rng, layout, today=today)
    font: MrzFont = "ocr-b"
    if hardship == "fonts":
        font = rng.choice([f for f in available_mrz_fonts() if f != "ocr-b"] or ["ocr-b"])
    worn = rng if hardship in ("fonts", "worn_print") else None
    page, box = render_page(text, layout, rng, font=font, worn=worn)
    spec = DEGRADATIONS[level]
    if hardship == "perspective":
        severe = DEGRADATIONS["severe"]
        spec = Degradation(
            spec.blur_sigma, spec.noise_sigma, spec.jpeg_quality, severe.rotation_deg,
            2 * severe.perspective, spec.uneven_light, spec.resolution,
        )  # fmt: skip
    image, _width, _height, photo_box, params = photograph(page, box, level, rng, spec)
    params = {**params, f"font_{font}": 1.0}
    if hardship in ("fonts", "worn_print", "perspective"):
        return SyntheticDocument(layout, level, text, image, _width, _height, photo_box, params)
    photo = np.asarray(PILImage.open(io.BytesIO(image)).convert("RGB"), dtype=np.float32)
    photo, photo_box = _HARDSHIP_STEPS[hardship](photo, photo_box, rng, params)
    out = PILImage.fromarray(np.clip(photo, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    out.save(buffer, format="JPEG", quality=int(params["jpeg_quality"]))
    return SyntheticDocument(
        layout, level, text, buffer.getvalue(), out.width, out.height, photo_box, params
    )


def hard_batch(
    seed: int,
    count: int,
    *,
    today: dt.date,
    level: Level = "moderate",
    layouts: Sequence[DocumentLayout] = DOCUMENT_LAYOUTS,
    hardships: Sequence[Hardship] = HARDSHIPS,
) -> Iterator[tuple[Hardship, SyntheticDocument]]:
    """``count`` hard photos cycling through ``hardships`` and ``layouts`` (reproducible)."""
    rng = random.Random(seed)
    for index in range(count):
        hardship = hardships[index % len(hardships)]
        layout = layouts[(index // len(hardships)) % len(layouts)]
        yield hardship, hard_document(rng, layout, hardship, level, today=today)


_Box = tuple[int, int, int, int]


def _moire(photo: Any, box: _Box, rng: random.Random, params: dict[str, float]) -> tuple[Any, _Box]:
    import numpy as np

    height, width = photo.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, math.pi)
    period = rng.uniform(3.0, 7.0)
    depth = rng.uniform(0.12, 0.22)
    params.update(moire_period=period, moire_depth=depth)
    wave = 1.0 + depth * np.sin(
        2 * math.pi * (xx * math.cos(angle) + yy * math.sin(angle)) / period
    )
    stripes = np.ones((height, width, 3), dtype=np.float32)
    for channel in range(3):
        stripes[:, channel::3, channel] = 1.12  # the screen's sub-pixels
    return photo * wave[:, :, None] * stripes * 0.9, box


def _motion_blur(
    photo: Any, box: _Box, rng: random.Random, params: dict[str, float]
) -> tuple[Any, _Box]:
    import numpy as np
    from scipy import ndimage  # type: ignore[import-untyped, unused-ignore]

    length = rng.randint(4, 9)
    angle = rng.uniform(0, 180)
    params.update(motion_px=float(length), motion_angle=angle)
    kernel = np.zeros((length, length), dtype=np.float32)
    kernel[length // 2, :] = 1.0
    kernel = ndimage.rotate(kernel, angle, reshape=False, order=1)
    kernel /= max(float(kernel.sum()), 1e-6)
    blurred = [ndimage.convolve(photo[:, :, c], kernel, mode="nearest") for c in range(3)]
    return np.stack(blurred, axis=2), box


def _jpeg(photo: Any, box: _Box, rng: random.Random, params: dict[str, float]) -> tuple[Any, _Box]:
    params["jpeg_quality"] = float(rng.randint(20, 35))
    return photo, box


def _small_in_frame(
    photo: Any, box: _Box, rng: random.Random, params: dict[str, float]
) -> tuple[Any, _Box]:
    """The photo pasted into one three times as wide, over a textured table."""
    import numpy as np

    height, width = photo.shape[:2]
    big_w, big_h = 3 * width, max(3 * height, int(3 * width * 0.75))
    noise = np.random.default_rng(rng.getrandbits(32))
    base = np.array([rng.randint(60, 160) for _ in range(3)], dtype=np.float32)
    canvas = base + noise.normal(0, 10, (big_h, big_w, 1)).astype(np.float32)
    # Text-like clutter: dark horizontal bars of random lengths (other papers).
    for _ in range(40):
        y, x = noise.integers(0, big_h - 20), noise.integers(0, big_w - 400)
        canvas[y : y + noise.integers(6, 16), x : x + noise.integers(100, 400)] *= 0.3
    x0, y0 = rng.randint(0, big_w - width), rng.randint(0, big_h - height)
    canvas[y0 : y0 + height, x0 : x0 + width] = photo
    params.update(frame_scale=3.0)
    return canvas, (box[0] + x0, box[1] + y0, box[2], box[3])


def _quarter_turn(
    photo: Any, box: _Box, rng: random.Random, params: dict[str, float]
) -> tuple[Any, _Box]:
    import numpy as np

    turns = rng.randint(1, 3)
    params["quarter_turns"] = float(turns)
    height, width = photo.shape[:2]
    x, y, w, h = box
    for _ in range(turns):  # np.rot90 turns counter-clockwise: (x, y) -> (y, W - x)
        x, y, w, h = y, width - x - w, h, w
        width, height = height, width
    return np.rot90(photo, turns), (x, y, w, h)


def _low_contrast(
    photo: Any, box: _Box, rng: random.Random, params: dict[str, float]
) -> tuple[Any, _Box]:
    low = rng.uniform(70, 110)
    span = rng.uniform(60, 85)
    params.update(contrast_low=low, contrast_span=span)
    return low + photo / 255.0 * span, box


def _glare(photo: Any, box: _Box, rng: random.Random, params: dict[str, float]) -> tuple[Any, _Box]:
    import numpy as np

    height, width = photo.shape[:2]
    cx, cy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.6) * height
    radius = rng.uniform(0.08, 0.2) * width
    strength = rng.uniform(120, 200)
    params.update(glare_radius=radius / width, glare_strength=strength)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    spot = strength * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * radius**2))
    return photo + spot[:, :, None], box


_HARDSHIP_STEPS: Final = {
    "moire": _moire,
    "motion_blur": _motion_blur,
    "jpeg": _jpeg,
    "small_in_frame": _small_in_frame,
    "quarter_turn": _quarter_turn,
    "low_contrast": _low_contrast,
    "glare": _glare,
}
