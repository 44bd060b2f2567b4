"""Safe image decoding (healthcode.core.images): bad input is refused with a
stable code, odd but valid input is converted to RGB, nothing decodes more
pixels than allowed. No face model is needed here."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage
from support.data import FACES

from healthcode.core.images import (
    MAX_IMAGE_PIXELS,
    ImageCorruptError,
    ImageError,
    ImageTooLargeError,
    NotAnImageError,
    decode_image,
    image_from_array,
    read_image_file,
)


def _encode(image: PILImage.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` but carries almost no data: the
    shape of a decompression bomb, without the bomb."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "data",
    [b"", b"hello, world", b"%PDF-1.7\n", bytes(range(256)) * 4],
    ids=["empty", "text", "pdf", "binary"],
)
def test_not_an_image(data: bytes) -> None:
    with pytest.raises(NotAnImageError) as info:
        decode_image(data)
    assert info.value.code == "not_an_image"


def test_truncated_jpeg_is_corrupt() -> None:
    data = (FACES / "obama_1.jpg").read_bytes()
    with pytest.raises(ImageCorruptError) as info:
        decode_image(data[: len(data) // 2])
    assert info.value.code == "image_corrupt"


def test_too_many_bytes_refused_before_decoding() -> None:
    data = _encode(PILImage.new("RGB", (64, 64)), "PNG")
    with pytest.raises(ImageTooLargeError) as info:
        decode_image(data, max_bytes=len(data) - 1)
    assert info.value.details["size_bytes"] == len(data)


@pytest.mark.parametrize("side", [6_000, 100_000])
def test_decompression_bomb_refused_from_header(side: int) -> None:
    # 36 MP is over our cap though under Pillow's; 10 GP is over both.
    with pytest.raises(ImageTooLargeError) as info:
        decode_image(_png_header_only(side, side))
    assert info.value.code == "image_too_large"


def test_fifty_megapixel_jpeg_is_decoded_reduced() -> None:
    width, height = 8_660, 5_774  # 50.0 MP
    big = PILImage.new("RGB", (width, height), (200, 30, 40))
    image = decode_image(_encode(big, "JPEG", quality=50))
    assert image.width * image.height <= MAX_IMAGE_PIXELS
    assert image.width == width // 2 and image.height == height // 2
    assert [int(v) for v in image.pixels[10, 10]] == pytest.approx([200, 30, 40], abs=6)


def test_fifty_megapixel_png_is_refused() -> None:
    with pytest.raises(ImageTooLargeError):
        decode_image(_png_header_only(8_660, 5_774))


def test_greyscale_becomes_rgb() -> None:
    image = decode_image(_encode(PILImage.new("L", (30, 20), 77), "PNG"))
    assert image.pixels.shape == (20, 30, 3)
    assert image.pixels.dtype == np.uint8
    assert (image.pixels == 77).all()


def test_sixteen_bit_greyscale_is_scaled_not_clipped() -> None:
    values = np.tile(np.array([0, 32_768, 65_535], dtype=np.uint16), (4, 1))
    pil = PILImage.fromarray(values)
    image = decode_image(_encode(pil, "PNG"))
    row = image.pixels[0, :, 0]
    assert row[0] == 0 and row[2] == 255 and 120 <= row[1] <= 135


def test_alpha_is_composited_on_white() -> None:
    rgba = PILImage.new("RGBA", (4, 2), (255, 0, 0, 255))
    rgba.putpixel((3, 1), (0, 0, 0, 0))  # fully transparent black
    image = decode_image(_encode(rgba, "PNG"))
    assert tuple(image.pixels[0, 0]) == (255, 0, 0)
    assert tuple(image.pixels[1, 3]) == (255, 255, 255)


def test_palette_with_transparency() -> None:
    palette = PILImage.new("P", (3, 3), 0)
    palette.putpalette([0, 0, 255] + [0, 0, 0] * 255)
    image = decode_image(_encode(palette, "PNG", transparency=1))
    assert tuple(image.pixels[0, 0]) == (0, 0, 255)


def test_cmyk_jpeg() -> None:
    cyan = PILImage.new("CMYK", (16, 16), (255, 0, 0, 0))
    image = decode_image(_encode(cyan, "JPEG", quality=95))
    red, green, blue = (int(v) for v in image.pixels[8, 8])
    assert red < 40 and green > 215 and blue > 215


def test_exif_orientation_is_honoured() -> None:
    # Left half red, right half blue, 40x20; EXIF 6 = "rotate 90 degrees clockwise to view".
    pil = PILImage.new("RGB", (40, 20), (255, 0, 0))
    pil.paste((0, 0, 255), (20, 0, 40, 20))
    exif = PILImage.Exif()
    exif[0x0112] = 6
    image = decode_image(_encode(pil, "JPEG", quality=95, exif=exif.tobytes()))
    assert (image.width, image.height) == (20, 40)
    top, bottom = image.pixels[5, 10], image.pixels[35, 10]
    assert top[0] > 200 and top[2] < 60  # the left (red) half is now on top
    assert bottom[2] > 200 and bottom[0] < 60


def test_real_photo_and_file_reader() -> None:
    image = read_image_file(FACES / "obama_1.jpg")
    assert (image.width, image.height) == (910, 1137)
    assert image.pixels.flags["C_CONTIGUOUS"]


def test_image_from_array_accepts_grey_and_rgba() -> None:
    assert image_from_array(np.zeros((5, 7), np.uint8)).pixels.shape == (5, 7, 3)
    assert image_from_array(np.zeros((5, 7, 4), np.uint8)).pixels.shape == (5, 7, 3)
    with pytest.raises(NotAnImageError):
        image_from_array(np.zeros((5, 7, 2), np.uint8))


_SMALL_PNG = _encode(PILImage.new("RGB", (24, 16), (1, 2, 3)), "PNG")


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_give_an_image_or_an_image_error(data: bytes) -> None:
    try:
        image = decode_image(data)
    except ImageError:
        return
    assert image.pixels.ndim == 3 and image.pixels.shape[2] == 3


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=len(_SMALL_PNG) - 1), st.integers(0, 255))
def test_damaged_png_gives_an_image_or_an_image_error(position: int, value: int) -> None:
    data = bytearray(_SMALL_PNG)
    data[position] = value
    for candidate in (bytes(data), bytes(data[:position])):
        try:
            image = decode_image(candidate)
        except ImageError:
            continue
        assert image.pixels.shape == (image.height, image.width, 3)
