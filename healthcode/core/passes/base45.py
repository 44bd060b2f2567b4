"""Base45 (RFC 9285): bytes as text that QR codes store in alphanumeric mode.

Written here rather than imported: it is a few lines, and the decoder must
refuse every malformed input with our own error, fast.
"""

from __future__ import annotations

import functools
from typing import Any

from healthcode.core.passes.errors import MalformedPassError

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
# Lookup by code point, so decoding is one translate and integer arithmetic.
_TRANSLATE = bytes(_VALUE.get(chr(i), 255) for i in range(256))


@functools.cache
def _numpy() -> tuple[Any, Any]:
    """numpy and the group weights, imported on first decode: commands that
    never decode a pass (``healthcode documents ...``) must start fast."""
    import numpy as np

    return np, np.array([1, 45, 2025], dtype=np.uint32)


def b45encode(data: bytes) -> str:
    """Encode ``data``: each 2 bytes become 3 characters, a last odd byte 2.

    >>> b45encode(b"AB"), b45encode(b"ietf!")
    ('BB8', 'QED8WEX0')
    """
    out: list[str] = []
    append = out.append
    alphabet = ALPHABET
    for i in range(0, len(data) - 1, 2):
        n = data[i] * 256 + data[i + 1]
        n, c = divmod(n, 45)
        e, d = divmod(n, 45)
        append(alphabet[c] + alphabet[d] + alphabet[e])
    if len(data) % 2:
        d, c = divmod(data[-1], 45)
        append(alphabet[c] + alphabet[d])
    return "".join(out)


def b45decode(text: str) -> bytes:
    """Decode base45 text; refuse any character or group RFC 9285 forbids.

    >>> b45decode("QED8WEX0")
    b'ietf!'
    """
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise MalformedPassError(details={"reason": "base45_character"}) from None
    values = raw.translate(_TRANSLATE)
    if 255 in values:
        raise MalformedPassError(details={"reason": "base45_character"})
    size = len(values)
    if size % 3 == 1:
        raise MalformedPassError(details={"reason": "base45_length"})
    full = size - size % 3
    np, weights = _numpy()
    # Vectorised: a guard's device reads a code a second, a gate server
    # thousands; numpy (already a dependency) is 4x faster than a Python loop.
    groups = np.frombuffer(values, dtype=np.uint8, count=full).reshape(-1, 3).astype(np.uint32)
    groups = groups @ weights
    if groups.size and int(groups.max()) > 0xFFFF:
        raise MalformedPassError(details={"reason": "base45_group"})
    out: bytes = groups.astype(">u2").tobytes()
    if size % 3 == 2:
        n = values[full] + values[full + 1] * 45
        if n > 0xFF:
            raise MalformedPassError(details={"reason": "base45_group"})
        out += bytes((n,))
    return out
