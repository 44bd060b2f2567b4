"""Keyed hashes of documents and the subject ids derived from them.

Subject key: HMAC-SHA256(operator secret, canonical document key), where the
canonical key is the document kind, its issuing state and its normalised
number. Without the operator secret a key cannot be tested against a guessed
number (a plain hash of an 18-digit ID number could be brute-forced).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from healthcode.core.models import Document
from healthcode.core.privacy.secrets import OperatorSecrets

SUBJECT_KEY_BYTES = 32
_SEPARATOR = "\x1f"  # ASCII unit separator: cannot occur in a kind, a state or a number


def canonical_document_key(kind: str, issuing_state: str | None, number: str) -> bytes:
    """The bytes that identify one document, e.g. ``cn_resident_id␟CHN␟1101...``.

    ``number`` must already be normalised (``healthcode.core.text``) and, for
    kinds with a canonical form (15-digit resident IDs become 18), canonical:
    derive it from a parsed ``Document`` so enrollment and import agree.
    """
    return _SEPARATOR.join((kind, (issuing_state or "").upper(), number)).encode("utf-8")


def document_key(
    secrets: OperatorSecrets, kind: str, issuing_state: str | None, number: str
) -> bytes:
    """HMAC-SHA256 of the canonical document key: 32 bytes."""
    return hmac.digest(
        secrets.subject_hmac_key,
        canonical_document_key(kind, issuing_state, number),
        hashlib.sha256,
    )


class DocumentKeyer:
    """``document_key`` for many numbers: the HMAC's inner and outer hash
    states are computed once from the secret and copied per number (RFC 2104),
    which costs less than half of a fresh ``hmac.digest`` each time. Gives the
    same bytes as ``document_key``."""

    _BLOCK = 64  # SHA-256's block size in bytes

    def __init__(self, secrets: OperatorSecrets) -> None:
        key = secrets.subject_hmac_key
        if len(key) > self._BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(self._BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def keys(self, kind: str, issuing_state: str | None, numbers: Iterable[str]) -> list[bytes]:
        """The subject key of each normalised, canonical ``number`` of ``kind``."""
        prefix = canonical_document_key(kind, issuing_state, "")
        inner, outer = self._inner.copy, self._outer.copy
        keys: list[bytes] = []
        append = keys.append
        for number in numbers:
            h = inner()
            h.update(prefix)
            h.update(number.encode())
            o = outer()
            o.update(h.digest())
            append(o.digest())
        return keys


def document_key_for(secrets: OperatorSecrets, document: Document) -> bytes:
    return document_key(secrets, document.kind, document.issuing_state, document.number)


def subject_id_hex(key: bytes) -> str:
    """The hex form used in ``Subject.subject_id``."""
    return key.hex()


def subject_key_bytes(subject_id: str) -> bytes:
    """Inverse of ``subject_id_hex``; raises ``ValueError`` for a malformed id."""
    key = bytes.fromhex(subject_id)
    if len(key) != SUBJECT_KEY_BYTES:
        raise ValueError("a subject id is 64 hexadecimal characters")
    return key
