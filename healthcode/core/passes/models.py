"""Domain values of the pass layer (attrs, frozen)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import attrs
from attrs import frozen

from healthcode.core.errors import HealthcodeError
from healthcode.core.models import Colour, MaskedDocument
from healthcode.core.passes.codec import Algorithm, PublicKey


def _utc(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


@frozen
class PassClaims:
    """Everything a pass says, and nothing more: no health details, no full name
    or number."""

    issuer: str
    """GB/T 2260 code of the issuing region (CWT ``iss``)."""
    issued_at: int
    """Seconds since the epoch (CWT ``iat``)."""
    expires_at: int
    """The next 24:00 Asia/Shanghai after issuance, in seconds (CWT ``exp``)."""
    colour: Colour
    document_kind: str
    masked_name: str = attrs.field(repr=False)
    masked_number: str = attrs.field(repr=False)
    pass_id: bytes
    """Opaque random 16 bytes (CWT ``cti``); says nothing about the holder."""
    holder_key: PublicKey = attrs.field(repr=False, eq=False)
    """The holder device's public key (CWT ``cnf``, RFC 8747)."""

    @property
    def masked(self) -> MaskedDocument:
        return MaskedDocument(self.document_kind, self.masked_name, self.masked_number)

    @property
    def valid_until(self) -> dt.datetime:
        return _utc(self.expires_at)


@frozen
class IssuedPass:
    """A freshly signed pass: the text the QR code carries, and what it says."""

    text: str = attrs.field(repr=False)
    """``HC1:`` + base45(zlib(COSE_Sign1))."""
    claims: PassClaims
    kid: bytes


@frozen
class IssuerKeyInfo:
    """Public facts about one issuer key (never the private part)."""

    kid: bytes
    alg: Algorithm
    public_key_der: bytes = attrs.field(repr=False)
    region_code: str
    created_at: dt.datetime
    retired_at: dt.datetime | None = None
    """When rotation stopped this key from signing; None while it signs."""
    verify_until: dt.datetime | None = None
    """After rotation: passes it signed may still be shown until this time."""

    @property
    def kid_hex(self) -> str:
        return self.kid.hex()

    @property
    def active(self) -> bool:
        return self.retired_at is None


@frozen
class Notice:
    """A warning a verifier shows next to its answer (clock, stale lists)."""

    code: str
    message_en: str
    message_zh: str
    details: Mapping[str, Any] = attrs.field(factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message_en": self.message_en,
            "message_zh": self.message_zh,
            "details": dict(self.details),
        }


ADMIT_ZH, ADMIT_EN = "通行", "Admit"
DO_NOT_ADMIT_ZH, DO_NOT_ADMIT_EN = "禁止通行", "Do not admit"
"""What a guard is told first: the decision, then why."""


@frozen
class Verdict:
    """The answer to one scan: accepted with what may be shown, or refused with a code."""

    ok: bool
    code: str
    """``accepted`` or a refusal code (``bad_signature``, ``stale_presentation``...)."""
    message_en: str
    message_zh: str
    colour: Colour | None = None
    masked: MaskedDocument | None = attrs.field(default=None, repr=False)
    issuer: str | None = None
    issuer_name: str | None = None
    valid_until: dt.datetime | None = None
    kid: bytes | None = None
    pass_id: bytes | None = attrs.field(default=None, repr=False)
    """The opaque pass id, for the issuer's online revocation check."""
    presentation_age_s: int | None = None
    revocation_list_age_s: int | None = None
    """Age of the newest revocation list consulted (offline); None when none."""
    notices: tuple[Notice, ...] = ()
    details: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def admit(self) -> bool:
        """May this person go in: only a genuine, current pass (``ok``) that is
        green. Yellow and red passes are genuine and still do not admit."""
        return self.ok and self.colour is Colour.GREEN

    @property
    def decision_zh(self) -> str:
        return ADMIT_ZH if self.admit else DO_NOT_ADMIT_ZH

    @property
    def decision_en(self) -> str:
        return ADMIT_EN if self.admit else DO_NOT_ADMIT_EN

    @classmethod
    def refusal(cls, error: HealthcodeError, *, notices: tuple[Notice, ...] = ()) -> Verdict:
        """A refusal for ``error``: its code, messages and details."""
        return cls(
            ok=False,
            code=error.code,
            message_en=error.message_en,
            message_zh=error.message_zh,
            notices=notices,
            details=error.details,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "admit": self.admit,
            "decision_zh": self.decision_zh,
            "decision_en": self.decision_en,
            "ok": self.ok,
            "code": self.code,
            "message_en": self.message_en,
            "message_zh": self.message_zh,
            "colour": self.colour.value if self.colour else None,
            "label_zh": self.colour.label_zh if self.colour else None,
            "label_en": self.colour.label_en if self.colour else None,
            "masked_name": self.masked.masked_name if self.masked else None,
            "masked_number": self.masked.masked_number if self.masked else None,
            "document_kind": self.masked.kind if self.masked else None,
            "issuer": self.issuer,
            "issuer_name": self.issuer_name,
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "kid": self.kid.hex() if self.kid else None,
            "presentation_age_s": self.presentation_age_s,
            "revocation_list_age_s": self.revocation_list_age_s,
            "notices": [n.as_dict() for n in self.notices],
            "details": dict(self.details),
        }
