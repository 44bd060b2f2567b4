"""Signed documents (trust lists, issuer exports, revocation lists, shared
status lists): a CBOR body in a COSE_Sign1, as ``PREFIX:`` text, and the
times their bodies carry as whole seconds since the epoch."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import cbor2

from healthcode.core.passes.codec import (
    MAX_LIST_SIZE,
    Sign1,
    cbor_loads,
    parse_sign1,
    sign1,
    unwrap,
    verify_raw,
    wrap,
)
from healthcode.core.passes.errors import MalformedPassError, PassError
from healthcode.core.passes.keys import SigningKey

if TYPE_CHECKING:
    from healthcode.core.passes.trust import TrustedKey


def to_timestamp(moment: dt.datetime | None) -> int | None:
    """A body's time: whole seconds since the epoch (``None`` stays ``None``)."""
    return None if moment is None else int(moment.timestamp())


def from_timestamp(value: Any) -> dt.datetime | None:
    """A body's time back as UTC; ``MalformedPassError`` (time) when it is not one."""
    if value is None:
        return None
    if type(value) is not int or not 0 <= value < 2**37:
        raise MalformedPassError(details={"reason": "time"})
    return dt.datetime.fromtimestamp(value, dt.UTC)


def sign_document(key: SigningKey, prefix: str, body: Any) -> str:
    return wrap(prefix, sign1(key.private_key, key.kid, cbor2.dumps(body)))


def open_document(text: str, prefix: str, error: type[PassError]) -> tuple[Sign1, Any]:
    """Decode a signed document; the caller checks the signature's key."""
    try:
        raw = unwrap(prefix, text.strip(), error=error, max_size=MAX_LIST_SIZE)
        sign = parse_sign1(cbor_loads(raw))
        return sign, cbor_loads(sign.payload)
    except PassError as exc:
        if isinstance(exc, error):
            raise
        raise error(details={"reason": exc.code, **exc.details}) from None


def check_signature(sign: Sign1, key: TrustedKey, error: type[PassError]) -> None:
    if (
        key.revoked
        or sign.alg != key.alg
        or not verify_raw(key.public_key, sign.signature, sign.to_be_signed())
    ):
        raise error(details={"reason": "signature"})
