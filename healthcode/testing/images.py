"""Hostile-looking but valid images for the image-intake tests and the flood
benchmark: tiny on the wire, huge once decoded."""

from __future__ import annotations

import struct
import zlib
from functools import cache


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@cache
def zero_png(width: int, height: int) -> bytes:
    """A valid all-black RGB PNG, compressed row by row (the attacker's frame:
    tiny on the wire, ``width * height * 3`` bytes once decoded)."""
    packer = zlib.compressobj(9)
    row = b"\x00" * (1 + 3 * width)  # filter byte + RGB
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )
