"""Keyed hashing of document keys and encryption of face templates at rest.

* Subject key: HMAC-SHA256(operator secret, canonical document key), where the
  canonical key is the document kind, its issuing state and its normalised
  number. Without the operator secret a key cannot be tested against a guessed
  number (a plain hash of an 18-digit ID number could be brute-forced).
* Face templates: AES-256-GCM with a fresh 96-bit nonce, the subject's key as
  associated data (a template copied onto another subject's row fails to
  decrypt), and the key id in the clear so keys can rotate.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from healthcode.core.models import Document
from healthcode.core.secrets import OperatorSecrets
from healthcode.core.storage.errors import TemplateDecryptionError

SUBJECT_KEY_BYTES = 32
_SEPARATOR = "\x1f"  # ASCII unit separator: cannot occur in a kind, a state or a number
_TEMPLATE_VERSION = 1
_NONCE_BYTES = 12
_AAD_PREFIX = b"healthcode/template/v1/"


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


def encrypt_template(secrets: OperatorSecrets, template: bytes, *, subject_key: bytes) -> bytes:
    """``version || len(kid) || kid || nonce || ciphertext+tag``."""
    kid = secrets.current_template_key_id.encode("ascii")
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(secrets.current_template_key).encrypt(
        nonce, template, _AAD_PREFIX + subject_key
    )
    return bytes((_TEMPLATE_VERSION, len(kid))) + kid + nonce + sealed


def decrypt_template(secrets: OperatorSecrets, blob: bytes, *, subject_key: bytes) -> bytes:
    if len(blob) < 2 or blob[0] != _TEMPLATE_VERSION:
        raise TemplateDecryptionError(details={"reason": "unknown_format"})
    kid_end = 2 + blob[1]
    kid = blob[2:kid_end].decode("ascii", errors="replace")
    key = secrets.template_keys.get(kid)
    if key is None:
        raise TemplateDecryptionError(details={"reason": "unknown_key_id", "key_id": kid})
    nonce = blob[kid_end : kid_end + _NONCE_BYTES]
    try:
        return AESGCM(key).decrypt(nonce, blob[kid_end + _NONCE_BYTES :], _AAD_PREFIX + subject_key)
    except InvalidTag:
        raise TemplateDecryptionError(details={"reason": "authentication_failed"}) from None
