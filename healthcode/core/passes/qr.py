"""QR codes for passes and presentations: render with segno, read with zxing-cpp.

Base45 text fits QR's alphanumeric mode, which is why the prefix and the
encoding are upper-case only. Imports are local: a verifier that reads text
from a scanner never loads the imaging stack.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Literal

from healthcode.core.passes.errors import QRDecodeError

ERROR_LEVEL = "M"
"""15% recovery: readable from a phone screen with glare, still small."""
MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000
_PREFIXES = ("HC1:", "HCP1:")


def _make(text: str):  # type: ignore[no-untyped-def]  # segno.QRCode is untyped
    import segno

    return segno.make_qr(text, error=ERROR_LEVEL, boost_error=False)


def qr_png(text: str, *, scale: int = 4, border: int = 4) -> bytes:
    buf = io.BytesIO()
    _make(text).save(buf, kind="png", scale=scale, border=border)
    return buf.getvalue()


def qr_svg(text: str, *, scale: int = 4, border: int = 4) -> str:
    buf = io.BytesIO()
    _make(text).save(buf, kind="svg", scale=scale, border=border, xmldecl=False)
    return buf.getvalue().decode("utf-8")


def qr_terminal(text: str, *, compact: bool = True) -> str:
    """The QR as text for a terminal (half-block characters when ``compact``)."""
    buf = io.StringIO()
    _make(text).terminal(out=buf, compact=compact)
    return buf.getvalue()


def render(text: str, kind: Literal["png", "svg", "terminal"]) -> bytes | str:
    if kind == "png":
        return qr_png(text)
    if kind == "svg":
        return qr_svg(text)
    return qr_terminal(text)


def decode_qr(image: bytes | Path | str) -> str:
    """The first health-pass QR text in an image (PNG, JPEG...); refuses anything else."""
    import zxingcpp
    from PIL import Image, UnidentifiedImageError

    data = image if isinstance(image, bytes) else Path(image).read_bytes()
    if len(data) > MAX_IMAGE_BYTES:
        raise QRDecodeError(details={"reason": "image_too_large"})
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_PIXELS:
                raise QRDecodeError(details={"reason": "image_too_large"})
            results = zxingcpp.read_barcodes(
                img.convert("L"), formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
            )
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise QRDecodeError(details={"reason": "not_an_image"}) from None
    for result in results:
        if result.text.startswith(_PREFIXES):
            return str(result.text)
    raise QRDecodeError(details={"reason": "no_pass_qr", "codes_found": len(results)})
