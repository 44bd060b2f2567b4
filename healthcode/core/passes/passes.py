"""Issuing passes and building presentations: pure functions over keys and values.

A **pass** is a CWT (RFC 8392) signed as COSE_Sign1 by the region's issuer key,
shown as ``HC1:`` + base45(zlib(COSE)). Its claims are exactly:

=====================  ==========  ====================================
claim                  key         value
=====================  ==========  ====================================
issuer (``iss``)       1           region code, text (``110000``)
expiry (``exp``)       4           next 24:00 Asia/Shanghai, seconds
issued-at (``iat``)    6           seconds
pass id (``cti``)      7           16 random bytes
holder key (``cnf``)   8           ``{1: COSE_Key}`` (RFC 8747)
colour                 -65537      ``green`` / ``yellow`` / ``red``
document kind          -65538      text (``cn_resident_id``)
masked name            -65539      surname only
masked number          -65540      first 2 + last 2 characters
=====================  ==========  ====================================

A **presentation** is what the holder's phone shows, renewed every few
seconds: ``HCP1:`` + base45(zlib(CBOR [pass COSE bytes, time in ms, device
signature])). The device signs ``b"HCP1" || pass id || time`` with the key
named in the pass, so a screenshot dies with its window and a copied pass is
useless without the phone.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import struct
from typing import Any

import cbor2

from healthcode.core.clock import next_cutoff
from healthcode.core.models import Colour, MaskedDocument
from healthcode.core.passes.codec import (
    PrivateKey,
    PublicKey,
    Sign1,
    cbor_loads,
    cose_key_of,
    load_public_der,
    parse_sign1,
    public_key_from_cose,
    sign1,
    sign_raw,
    unwrap,
    wrap,
)
from healthcode.core.passes.errors import (
    MalformedPassError,
    PassError,
    PresentationRequiredError,
)
from healthcode.core.passes.models import IssuedPass, PassClaims

PASS_PREFIX = "HC1:"
PRESENTATION_PREFIX = "HCP1:"
PASS_ID_LENGTH = 16

CLAIM_ISS = 1
CLAIM_EXP = 4
CLAIM_IAT = 6
CLAIM_CTI = 7
CLAIM_CNF = 8
CLAIM_COLOUR = -65537
CLAIM_KIND = -65538
CLAIM_MASKED_NAME = -65539
CLAIM_MASKED_NUMBER = -65540
_CLAIM_KEYS = frozenset(
    {
        CLAIM_ISS,
        CLAIM_EXP,
        CLAIM_IAT,
        CLAIM_CTI,
        CLAIM_CNF,
        CLAIM_COLOUR,
        CLAIM_KIND,
        CLAIM_MASKED_NAME,
        CLAIM_MASKED_NUMBER,
    }
)
_COLOURS = {c.value: c for c in Colour}
_REGION = re.compile(r"[1-9]\d{5}")
_MAX_TEXT_CLAIM = 64
_DEVICE_CONTEXT = b"HCP1"


class UnmaskedIdentityError(PassError):
    code = "unmasked_identity"
    default_en = "A pass may carry only the masked name and number."
    default_zh = "通行码只能包含脱敏后的姓名与证件号码。"


def _seconds(moment: dt.datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return int(moment.timestamp())


def _millis(moment: dt.datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return int(moment.timestamp() * 1000)


def new_pass_id() -> bytes:
    return os.urandom(PASS_ID_LENGTH)


def issue_pass(
    key: PrivateKey,
    kid: bytes,
    *,
    region_code: str,
    colour: Colour,
    masked: MaskedDocument,
    holder_key: PublicKey | bytes,
    now: dt.datetime,
    pass_id: bytes | None = None,
) -> IssuedPass:
    """Sign a pass valid until the next 24:00 Asia/Shanghai after ``now``.

    ``holder_key`` is the device public key (object or DER). The caller (the
    status service) decides the colour; this function only refuses contents
    that must never be on a pass: an unmasked number, a long name.
    """
    if not _REGION.fullmatch(region_code):
        raise ValueError("region_code must be a 6-digit GB/T 2260 code")
    if "*" not in masked.masked_number or len(masked.masked_name) > 16:
        raise UnmaskedIdentityError(details={"field": "masked"})
    if isinstance(holder_key, bytes):
        holder_key = load_public_der(holder_key)
    pass_id = pass_id if pass_id is not None else new_pass_id()
    if len(pass_id) != PASS_ID_LENGTH:
        raise ValueError("pass_id must be 16 bytes")
    claims = PassClaims(
        issuer=region_code,
        issued_at=_seconds(now),
        expires_at=_seconds(next_cutoff(now)),
        colour=colour,
        document_kind=masked.kind,
        masked_name=masked.masked_name,
        masked_number=masked.masked_number,
        pass_id=pass_id,
        holder_key=holder_key,
    )
    cose = sign1(key, kid, encode_claims(claims))
    return IssuedPass(text=wrap(PASS_PREFIX, cose), claims=claims, kid=kid)


def encode_claims(claims: PassClaims) -> bytes:
    """The CWT payload of a pass (CBOR map, integer and private-use labels)."""
    return cbor2.dumps(
        {
            CLAIM_ISS: claims.issuer,
            CLAIM_IAT: claims.issued_at,
            CLAIM_EXP: claims.expires_at,
            CLAIM_CTI: claims.pass_id,
            CLAIM_CNF: {1: cose_key_of(claims.holder_key)},
            CLAIM_COLOUR: claims.colour.value,
            CLAIM_KIND: claims.document_kind,
            CLAIM_MASKED_NAME: claims.masked_name,
            CLAIM_MASKED_NUMBER: claims.masked_number,
        }
    )


# --- decoding ------------------------------------------------------------------------


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value or len(value) > _MAX_TEXT_CLAIM:
        raise MalformedPassError(details={"reason": "claim_type", "claim": name})
    return value


def _int(value: Any, name: str) -> int:
    # bool is an int in Python; CBOR true is not a time.
    if type(value) is not int or not 0 <= value < 2**37:
        raise MalformedPassError(details={"reason": "claim_type", "claim": name})
    return value


def parse_claims(payload: bytes) -> PassClaims:
    """Check and convert the claims of a (verified or not) pass, strictly."""
    claims = cbor_loads(payload)
    if not isinstance(claims, dict) or set(claims) != _CLAIM_KEYS:
        raise MalformedPassError(details={"reason": "claims_set"})
    issuer = _text(claims[CLAIM_ISS], "iss")
    if not _REGION.fullmatch(issuer):
        raise MalformedPassError(details={"reason": "claim_type", "claim": "iss"})
    colour = _COLOURS.get(claims[CLAIM_COLOUR]) if isinstance(claims[CLAIM_COLOUR], str) else None
    if colour is None:
        raise MalformedPassError(details={"reason": "claim_type", "claim": "colour"})
    pass_id = claims[CLAIM_CTI]
    if not isinstance(pass_id, bytes) or len(pass_id) != PASS_ID_LENGTH:
        raise MalformedPassError(details={"reason": "claim_type", "claim": "cti"})
    cnf = claims[CLAIM_CNF]
    if not isinstance(cnf, dict) or set(cnf) != {1}:
        raise MalformedPassError(details={"reason": "claim_type", "claim": "cnf"})
    issued_at = _int(claims[CLAIM_IAT], "iat")
    expires_at = _int(claims[CLAIM_EXP], "exp")
    if expires_at <= issued_at:
        raise MalformedPassError(details={"reason": "exp_before_iat"})
    return PassClaims(
        issuer=issuer,
        issued_at=issued_at,
        expires_at=expires_at,
        colour=colour,
        document_kind=_text(claims[CLAIM_KIND], "kind"),
        masked_name=_text(claims[CLAIM_MASKED_NAME], "masked_name"),
        masked_number=_text(claims[CLAIM_MASKED_NUMBER], "masked_number"),
        pass_id=pass_id,
        holder_key=public_key_from_cose(cnf[1]),
    )


def pass_cose_from_text(text: str) -> bytes:
    """The COSE bytes inside ``HC1:`` text (structure not yet checked)."""
    if text.startswith(PRESENTATION_PREFIX):
        raise MalformedPassError(details={"reason": "presentation_not_pass"})
    return unwrap(PASS_PREFIX, text)


def parse_pass_cose(cose: bytes) -> tuple[Sign1, PassClaims]:
    """Structure and claims of a pass; the signature is NOT checked here."""
    sign = parse_sign1(cbor_loads(cose))
    return sign, parse_claims(sign.payload)


def read_pass(text: str) -> tuple[Sign1, PassClaims]:
    """Decode ``HC1:`` text without verifying it (holder side, admin display)."""
    return parse_pass_cose(pass_cose_from_text(text.strip()))


# --- presentations ------------------------------------------------------------------


def device_message(pass_id: bytes, time_ms: int) -> bytes:
    """What the holder device signs: context, pass id, time (big-endian ms)."""
    return _DEVICE_CONTEXT + pass_id + struct.pack(">q", time_ms)


def make_presentation(pass_text: str, device_key: PrivateKey, now: dt.datetime) -> str:
    """Wrap ``pass_text`` with a fresh device signature over (pass id, now)."""
    cose = pass_cose_from_text(pass_text.strip())
    _, claims = parse_pass_cose(cose)
    time_ms = _millis(now)
    signature = sign_raw(device_key, device_message(claims.pass_id, time_ms))
    return wrap(PRESENTATION_PREFIX, cbor2.dumps([cose, time_ms, signature]))


def split_presentation(text: str) -> tuple[bytes, int, bytes]:
    """(pass COSE bytes, device time in ms, device signature), shape-checked only."""
    text = text.strip()
    if text.startswith(PASS_PREFIX):
        raise PresentationRequiredError()
    item = cbor_loads(unwrap(PRESENTATION_PREFIX, text))
    if not isinstance(item, list) or len(item) != 3:
        raise MalformedPassError(details={"reason": "presentation_structure"})
    cose, time_ms, signature = item
    if (
        not isinstance(cose, bytes)
        or type(time_ms) is not int
        or not 0 <= time_ms < 2**50
        or not isinstance(signature, bytes)
        or len(signature) != 64
    ):
        raise MalformedPassError(details={"reason": "presentation_types"})
    return cose, time_ms, signature
