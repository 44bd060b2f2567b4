"""Face templates encrypted at rest: AES-256-GCM with a fresh 96-bit nonce,
the subject's key as associated data (a template copied onto another
subject's row fails to decrypt), and the key id in the clear so keys can
rotate.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from healthcode.core.privacy.secrets import OperatorSecrets
from healthcode.core.storage.errors import TemplateDecryptionError

_TEMPLATE_VERSION = 1
_NONCE_BYTES = 12
_AAD_PREFIX = b"healthcode/template/v1/"


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
