"""Documents and device keys for enrollment tests."""

from __future__ import annotations

import datetime as dt

from healthcode.core.checkdigits import gb11643_check_char
from healthcode.testing.mrz import MRZFields, format_mrz

FAR_EXPIRY = dt.date(2034, 6, 30)
"""Far enough ahead that the real clock (liveness judges by it) never reaches it."""


def resident_id(birth: dt.date, sequence: int = 123, division: str = "110105") -> str:
    """A mainland resident ID number with a correct check character."""
    body = f"{division}{birth:%Y%m%d}{sequence:03d}"
    return body + gb11643_check_char(body)


def passport_mrz(
    number: str,
    *,
    surname: str = "QUARTERMAINE",
    given: str = "ALLAN JAMES",
    state: str = "GBR",
    expiry: dt.date = FAR_EXPIRY,
    birth: dt.date = dt.date(1971, 3, 14),
) -> str:
    """The two-line MRZ of a passport (TD3) with correct check digits."""
    return format_mrz(
        MRZFields(
            layout="TD3",
            document_code="P",
            issuing_state=state,
            nationality=state,
            surname=surname,
            given_names=given,
            number=number,
            birth_date=birth,
            sex="M",
            expiry_date=expiry,
        )
    )


def device_key() -> bytes:
    """A fresh holder device public key (P-256, PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
