"""Safe decoding of untrusted image bytes into ``healthcode.core.models.Image``.

Every image a person uploads (a selfie, a liveness frame, a document page) goes
through :func:`decode_image`. It refuses, with a stable code, what must not be
decoded, and it never decodes more pixels than it has allowed:

* ``not_an_image``   -- empty input, or no supported image format;
* ``image_too_large`` -- too many bytes, or too many pixels (a decompression
  bomb is caught from the header, before any pixel is decoded);
* ``image_corrupt``  -- a supported format whose data is broken (truncated).

Large JPEGs are not refused outright: libjpeg can decode them at 1/2, 1/4 or
1/8 scale, which costs memory only for the reduced image, so a 50-megapixel
photo from a phone still works. Other formats above the pixel cap are refused.

The result is always RGB ``uint8`` (greyscale, palette, CMYK, 16-bit and alpha
images are converted; transparency is composited on white) with the EXIF
orientation applied, so what a detector sees is what a person saw.

:func:`read_image_header` applies the same checks from the header alone and
says how many pixels :func:`decode_image` would produce, so a request carrying
many images can be refused (``image_budget_exceeded``, :func:`check_pixel_budget`)
before any of them is decoded.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

from attrs import frozen

from healthcode.core.errors import InputError
from healthcode.core.models import Image

MAX_IMAGE_BYTES = 20 * 1024 * 1024
"""Upload size cap: a phone photo is well under this."""
MAX_IMAGE_PIXELS = 24_000_000
"""Decoded pixel cap (about 72 MB of RGB): enough for any face or document page."""
MAX_HEADER_PIXELS = 400_000_000
"""Above this, even a JPEG reduced 1/8 is refused without decoding."""

# Formats we accept; PIL tries no other decoder (smaller attack surface).
ACCEPTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")


class ImageError(InputError):
    """The bytes cannot be used as an image."""

    code = "invalid_image"
    default_en = "The image could not be read."
    default_zh = "无法读取图片。"


class NotAnImageError(ImageError):
    code = "not_an_image"
    default_en = "The file is not an image in a supported format (JPEG, PNG, WebP, BMP, TIFF, GIF)."
    default_zh = "文件不是受支持格式（JPEG、PNG、WebP、BMP、TIFF、GIF）的图片。"


class ImageTooLargeError(ImageError):
    code = "image_too_large"
    default_en = "The image is too large."
    default_zh = "图片过大。"


class ImageCorruptError(ImageError):
    code = "image_corrupt"
    default_en = "The image is damaged or incomplete."
    default_zh = "图片已损坏或不完整。"


class ImageBudgetExceededError(ImageError):
    """The images of one request together hold more pixels than it may decode."""

    code = "image_budget_exceeded"
    default_en = "The images of this request are too large together; send fewer or smaller ones."
    default_zh = "本次请求的图片总像素过多，请减少图片数量或缩小尺寸。"
    http_status: ClassVar[int] = 413


@frozen
class ImageHeader:
    """What an image's header says, read without decoding a pixel."""

    format: str
    width: int
    """As stored (before EXIF orientation)."""
    height: int
    decoded_pixels: int
    """Pixels :func:`decode_image` produces with the same ``max_pixels``: fewer
    than ``width * height`` for a large JPEG, which is decoded at reduced scale."""


def decode_image(
    data: bytes,
    *,
    max_bytes: int = MAX_IMAGE_BYTES,
    max_pixels: int = MAX_IMAGE_PIXELS,
) -> Image:
    """Decode untrusted bytes into an RGB ``Image``, or raise an ``ImageError``.

    >>> decode_image(b"")
    Traceback (most recent call last):
    ...
    healthcode.core.images.NotAnImageError: [not_an_image] ...
    """
    # Pillow and numpy load lazily: `healthcode documents ...` never pays for them.
    import numpy as np
    from PIL import Image as PILImage
    from PIL import ImageOps

    pil, details = _open_checked(data, max_bytes=max_bytes, max_pixels=max_pixels)
    with pil:
        try:
            pil.load()
            oriented = ImageOps.exif_transpose(pil)
            rgb = _to_rgb(oriented)
        except PILImage.DecompressionBombError as exc:
            raise ImageTooLargeError(details=details) from exc
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            # Pillow reports a truncated file as OSError("image file is truncated").
            raise ImageCorruptError(details={"stage": "pixels", "format": pil.format}) from exc
        array = np.asarray(rgb, dtype=np.uint8)
    if array.ndim != 3 or array.shape[2] != 3:  # pragma: no cover - _to_rgb guarantees it
        raise ImageCorruptError(details={"stage": "convert"})
    array = np.ascontiguousarray(array)
    return Image(pixels=array, width=int(array.shape[1]), height=int(array.shape[0]))


def read_image_header(
    data: bytes,
    *,
    max_bytes: int = MAX_IMAGE_BYTES,
    max_pixels: int = MAX_IMAGE_PIXELS,
) -> ImageHeader:
    """The header of untrusted bytes, with every check :func:`decode_image`
    makes before decoding (same errors), and no pixel decoded.

    >>> read_image_header(b"not an image")
    Traceback (most recent call last):
    ...
    healthcode.core.images.NotAnImageError: [not_an_image] ...
    """
    pil, details = _open_checked(data, max_bytes=max_bytes, max_pixels=max_pixels)
    with pil:
        # After a JPEG's reduced-scale draft, pil.size is the size it decodes to.
        decoded_width, decoded_height = pil.size
        return ImageHeader(
            format=str(pil.format),
            width=int(details["width"]),
            height=int(details["height"]),
            decoded_pixels=int(decoded_width * decoded_height),
        )


def check_pixel_budget(headers: Sequence[ImageHeader], budget: int) -> int:
    """The pixels that decoding ``headers`` would produce; ``ImageBudgetExceededError``
    when that is over ``budget``."""
    total = sum(h.decoded_pixels for h in headers)
    if total > budget:
        raise ImageBudgetExceededError(
            f"These {len(headers)} images hold {total} pixels; at most {budget} "
            "are accepted in one request.",
            f"这 {len(headers)} 张图片共 {total} 像素，单次请求最多接受 {budget} 像素。",
            details={"images": len(headers), "pixels": total, "max_pixels": budget},
        )
    return total


def _open_checked(data: bytes, *, max_bytes: int, max_pixels: int) -> tuple[Any, dict[str, Any]]:
    """Open ``data`` from its header, refuse what must not be decoded and, for a
    JPEG over ``max_pixels``, set the reduced decoding scale. No pixel is
    decoded; the caller closes the returned Pillow image."""
    _check_file_size(data, max_bytes)
    pil = _open_header(data)
    try:
        details = _limit_pixels(pil, max_pixels)
    except BaseException:
        pil.close()
        raise
    return pil, details


def _check_file_size(data: bytes, max_bytes: int) -> None:
    if not data:
        raise NotAnImageError("The file is empty.", "文件为空。", details={"size_bytes": 0})
    if len(data) > max_bytes:
        raise ImageTooLargeError(
            f"The image file is larger than {max_bytes // (1024 * 1024)} MiB.",
            f"图片文件超过 {max_bytes // (1024 * 1024)} MiB。",
            details={"size_bytes": len(data), "max_bytes": max_bytes},
        )


def _open_header(data: bytes) -> Any:
    """A Pillow image of ``data`` with only its header read."""
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Pillow warns (DecompressionBombWarning) between its own limits;
            # we apply ours below, from the header, before decoding.
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            return PILImage.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except PILImage.DecompressionBombError as exc:
        raise ImageTooLargeError(details={"reason": "pixel_count"}) from exc
    except UnidentifiedImageError as exc:
        raise NotAnImageError(details={"size_bytes": len(data)}) from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageCorruptError(details={"stage": "header"}) from exc


def _limit_pixels(pil: Any, max_pixels: int) -> dict[str, Any]:
    """Refuse an image over ``max_pixels``, or for a JPEG have libjpeg decode it
    at 1/2, 1/4 or 1/8 scale (for the price of the reduced image) to fit."""
    width, height = pil.size
    pixels = width * height
    details: dict[str, Any] = {"width": width, "height": height, "max_pixels": max_pixels}
    if width <= 0 or height <= 0:
        raise ImageCorruptError(details=details)
    if pixels <= max_pixels:
        return details
    if pil.format != "JPEG" or pixels > MAX_HEADER_PIXELS:
        raise ImageTooLargeError(
            f"The image has {pixels} pixels; at most {max_pixels} are accepted.",
            f"图片像素数为 {pixels}，最多接受 {max_pixels}。",
            details=details,
        )
    scale = 1
    while scale < 8 and -(-width // scale) * -(-height // scale) > max_pixels:
        scale *= 2
    pil.draft("RGB", (-(-width // scale), -(-height // scale)))
    if pil.size[0] * pil.size[1] > max_pixels:
        raise ImageTooLargeError(details=details)
    return details


def _to_rgb(pil: Any) -> Any:
    """Any Pillow mode to RGB; transparency is composited on white."""
    from PIL import Image as PILImage

    mode = pil.mode
    if mode == "RGB":
        return pil
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale to 8 bits instead of clipping to white.
        import numpy as np

        values = np.asarray(pil, dtype=np.float64)
        top = float(values.max()) if values.size else 0.0
        if top > 255.0:
            values = values * (255.0 / top)
        return PILImage.fromarray(np.clip(values, 0, 255).astype(np.uint8), "L").convert("RGB")
    if mode == "P" and "transparency" in pil.info:
        pil = pil.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = pil.convert("RGBA")
        background = PILImage.new("RGBA", rgba.size, (255, 255, 255, 255))
        return PILImage.alpha_composite(background, rgba).convert("RGB")
    # L, 1, P, CMYK, YCbCr, LAB, HSV, F: Pillow converts these to RGB itself
    # (CMYK JPEGs, including Adobe's inverted ones, are handled by the decoder).
    return pil.convert("RGB")


def image_from_array(pixels: Any) -> Image:
    """Wrap an RGB ``uint8`` array (H, W, 3) that is already in memory."""
    import numpy as np

    array = np.ascontiguousarray(np.asarray(pixels, dtype=np.uint8))
    if array.ndim == 2:
        array = np.ascontiguousarray(np.repeat(array[:, :, None], 3, axis=2))
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise NotAnImageError(details={"shape": list(array.shape)})
    if array.shape[2] == 4:
        array = np.ascontiguousarray(array[:, :, :3])
    return Image(pixels=array, width=int(array.shape[1]), height=int(array.shape[0]))


def read_image_file(path: str | Any, *, max_bytes: int = MAX_IMAGE_BYTES) -> Image:
    """Read and decode an image file, never reading more than ``max_bytes + 1`` bytes."""
    with open(path, "rb") as handle:
        data = handle.read(max_bytes + 1)
    return decode_image(data, max_bytes=max_bytes)
