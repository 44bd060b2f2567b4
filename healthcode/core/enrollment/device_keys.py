"""The holder's device key, as enrollment accepts it."""

from __future__ import annotations

from typing import Any

from healthcode.core.enrollment.errors import DeviceKeyInvalidError


def normalise_device_key(data: bytes) -> bytes:
    """DER SubjectPublicKeyInfo of a P-256 or Ed25519 public key given as DER or PEM."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    key: Any
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(data)
        else:
            key = serialization.load_der_public_key(data)
    except (ValueError, TypeError):
        raise DeviceKeyInvalidError(details={"reason": "unreadable"}) from None
    ok = isinstance(key, ed25519.Ed25519PublicKey) or (
        isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)
    )
    if not ok:
        raise DeviceKeyInvalidError(details={"reason": "unsupported_key_type"})
    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
