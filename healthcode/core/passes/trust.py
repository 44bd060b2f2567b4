"""Trust lists: which issuers (regions and keys) a verifier accepts.

A trust list is a signed document (COSE_Sign1 over CBOR, text ``HCT1:``)
made by one instance, naming peer regions with their keys and each key's
validity window; the instance's own keys are always in it. A region hands its
public keys to peers as an *issuer export* (``HCK1:``), signed with its
current key; the receiving operator compares the printed fingerprints out of
band, then ``trust add`` puts the keys into the local list, which is re-signed.

A verifier warns when its list is older than a configured age, instead of
silently going on with keys that may have been withdrawn.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
from attrs import frozen

from healthcode.core.clock import now_utc
from healthcode.core.models import Issuer
from healthcode.core.passes.codec import (
    ALGORITHM_BY_ID,
    ALGORITHMS,
    Algorithm,
    PublicKey,
    algorithm_of,
    kid_for,
    load_public_der,
)
from healthcode.core.passes.errors import MalformedPassError, PassError, TrustListError
from healthcode.core.passes.keys import KeyStore, SigningKey
from healthcode.core.passes.models import IssuerKeyInfo
from healthcode.core.passes.signed import (
    check_signature,
    from_timestamp,
    open_document,
    sign_document,
    to_timestamp,
)

TRUST_PREFIX = "HCT1:"
ISSUER_EXPORT_PREFIX = "HCK1:"
TRUST_FILE_ENV = "HEALTHCODE_TRUST_FILE"
DEFAULT_MAX_AGE = dt.timedelta(days=7)


class IssuerExportInvalidError(TrustListError):
    """What was handed to ``trust add`` is not a peer's issuer export (or it
    was damaged on the way): not the local trust list's fault."""

    code = "issuer_export_invalid"
    default_en = (
        "This is not a peer region's key export (HCK1:..., made by `healthcode keys "
        "export`), or it was damaged on the way. Ask the peer for its export again."
    )
    default_zh = (
        "该文件不是互认地区的公钥导出文件（HCK1:...，由 `healthcode keys export` 生成），"
        "或已在传递中损坏。请向对方重新索取。"
    )


@frozen
class TrustedKey:
    kid: bytes
    alg: Algorithm
    public_key: PublicKey = attrs.field(repr=False, eq=False)
    public_key_der: bytes = attrs.field(repr=False)
    valid_from: dt.datetime
    """Passes issued before this are refused (minus clock skew)."""
    sign_until: dt.datetime | None = None
    """Set after rotation: passes issued after this are refused."""
    valid_until: dt.datetime | None = None
    """Passes are not accepted after this, whatever their own expiry."""
    revoked: bool = False
    """Withdrawn: nothing it signed is accepted any more."""

    @property
    def fingerprint(self) -> str:
        return self.kid.hex()


@frozen
class TrustedIssuer:
    region_code: str
    name: str
    keys: tuple[TrustedKey, ...]


def _key_to_cbor(key: TrustedKey) -> dict[int, Any]:
    return {
        1: key.kid,
        2: ALGORITHMS[key.alg],
        3: key.public_key_der,
        4: to_timestamp(key.valid_from),
        5: to_timestamp(key.sign_until),
        6: to_timestamp(key.valid_until),
        7: key.revoked,
    }


def _key_from_cbor(item: Any) -> TrustedKey:
    if not isinstance(item, dict) or set(item) != {1, 2, 3, 4, 5, 6, 7}:
        raise MalformedPassError(details={"reason": "trusted_key"})
    der, alg_id, revoked = item[3], item[2], item[7]
    if not isinstance(der, bytes) or not isinstance(revoked, bool):
        raise MalformedPassError(details={"reason": "trusted_key"})
    alg = ALGORITHM_BY_ID.get(alg_id) if type(alg_id) is int else None
    public = load_public_der(der)
    valid_from = from_timestamp(item[4])
    if alg is None or valid_from is None or item[1] != kid_for(public):
        raise MalformedPassError(details={"reason": "trusted_key"})
    return TrustedKey(
        kid=item[1],
        alg=alg,
        public_key=public,
        public_key_der=der,
        valid_from=valid_from,
        sign_until=from_timestamp(item[5]),
        valid_until=from_timestamp(item[6]),
        revoked=revoked,
    )


def trusted_key_from_info(info: IssuerKeyInfo) -> TrustedKey:
    return TrustedKey(
        kid=info.kid,
        alg=info.alg,
        public_key=load_public_der(info.public_key_der),
        public_key_der=info.public_key_der,
        valid_from=info.created_at,
        sign_until=info.retired_at,
        valid_until=info.verify_until,
    )


def _issuer_to_cbor(issuer: TrustedIssuer) -> dict[int, Any]:
    return {1: issuer.region_code, 2: issuer.name, 3: [_key_to_cbor(k) for k in issuer.keys]}


def _issuer_from_cbor(item: Any) -> TrustedIssuer:
    if (
        not isinstance(item, dict)
        or set(item) != {1, 2, 3}
        or not isinstance(item[1], str)
        or not isinstance(item[2], str)
        or not isinstance(item[3], list)
        or len(item[3]) > 64
    ):
        raise MalformedPassError(details={"reason": "trusted_issuer"})
    return TrustedIssuer(item[1], item[2], tuple(_key_from_cbor(k) for k in item[3]))


# --- issuer exports (what a region hands to its peers) ---------------------------


def export_issuer(store: KeyStore, now: dt.datetime | None = None) -> str:
    """``HCK1:`` text with this region's verification keys, signed by its active key."""
    now = now or now_utc()
    issuer = TrustedIssuer(
        store.region_code,
        store.name,
        tuple(trusted_key_from_info(k) for k in store.verification_keys(now)),
    )
    body = {1: _issuer_to_cbor(issuer), 2: to_timestamp(now)}
    return sign_document(store.active(), ISSUER_EXPORT_PREFIX, body)


def read_issuer_export(text: str) -> tuple[TrustedIssuer, dt.datetime]:
    """Parse a peer's export; it must be signed by one of the keys it names.

    Anything else is refused with ``IssuerExportInvalidError`` (a
    ``TrustListError``), whose details say why.
    """
    sign, body = open_document(text, ISSUER_EXPORT_PREFIX, IssuerExportInvalidError)
    try:
        if not isinstance(body, dict) or set(body) != {1, 2}:
            raise MalformedPassError(details={"reason": "issuer_export"})
        issuer = _issuer_from_cbor(body[1])
        exported_at = from_timestamp(body[2])
    except PassError as exc:  # malformed, or a key of an unknown type
        raise IssuerExportInvalidError(details={"reason": exc.code, **exc.details}) from None
    signer = next((k for k in issuer.keys if k.kid == sign.kid), None)
    if signer is None or exported_at is None:
        raise IssuerExportInvalidError(details={"reason": "self_signature"})
    check_signature(sign, signer, IssuerExportInvalidError)
    return issuer, exported_at


# --- the trust list ------------------------------------------------------------------


@frozen
class TrustList:
    """A verified trust list, indexed by key id for the verifier's hot path."""

    owner: str
    """Region code of the instance that signed the list."""
    issued_at: dt.datetime
    issuers: Mapping[str, TrustedIssuer]
    text: str = attrs.field(repr=False)
    by_kid: Mapping[bytes, tuple[TrustedIssuer, TrustedKey]] = attrs.field(
        init=False, repr=False, eq=False
    )

    @by_kid.default
    def _index(self) -> dict[bytes, tuple[TrustedIssuer, TrustedKey]]:
        return {k.kid: (i, k) for i in self.issuers.values() for k in i.keys}

    def age(self, now: dt.datetime) -> dt.timedelta:
        return now - self.issued_at

    def is_stale(self, now: dt.datetime, max_age: dt.timedelta = DEFAULT_MAX_AGE) -> bool:
        return self.age(now) > max_age


def build_trust_list(
    key: SigningKey, issuers: Iterable[TrustedIssuer], now: dt.datetime
) -> TrustList:
    ordered = sorted(issuers, key=lambda i: i.region_code)
    body = {1: key.region_code, 2: to_timestamp(now), 3: [_issuer_to_cbor(i) for i in ordered]}
    text = sign_document(key, TRUST_PREFIX, body)
    return TrustList(
        owner=key.region_code,
        issued_at=dt.datetime.fromtimestamp(int(now.timestamp()), dt.UTC),
        issuers={i.region_code: i for i in ordered},
        text=text,
    )


def load_trust_list(text: str, anchors: Iterable[TrustedKey]) -> TrustList:
    """Verify a trust list against the signer's keys (the *anchors*) and index it."""
    sign, body = open_document(text, TRUST_PREFIX, TrustListError)
    try:
        if (
            not isinstance(body, dict)
            or set(body) != {1, 2, 3}
            or not isinstance(body[1], str)
            or not isinstance(body[3], list)
        ):
            raise MalformedPassError(details={"reason": "trust_list"})
        issued_at = from_timestamp(body[2])
        issuers = [_issuer_from_cbor(i) for i in body[3]]
    except MalformedPassError as exc:
        raise TrustListError(details=exc.details) from None
    anchor = next((k for k in anchors if k.kid == sign.kid), None)
    if anchor is None or issued_at is None:
        raise TrustListError(details={"reason": "unknown_signer"})
    check_signature(sign, anchor, TrustListError)
    return TrustList(
        owner=body[1],
        issued_at=issued_at,
        issuers={i.region_code: i for i in issuers},
        text=text.strip(),
    )


class TrustStore:
    """The trust list file of one instance, re-signed on every change."""

    def __init__(self, path: Path | str, keys: KeyStore) -> None:
        self.path = Path(path)
        self.keys = keys

    def _anchors(self) -> list[TrustedKey]:
        return [trusted_key_from_info(k) for k in self.keys.list_keys()]

    def _own(self, now: dt.datetime) -> TrustedIssuer:
        return TrustedIssuer(
            self.keys.region_code,
            self.keys.name,
            tuple(trusted_key_from_info(k) for k in self.keys.verification_keys(now)),
        )

    def load(self, now: dt.datetime | None = None) -> TrustList:
        """The current list; a fresh one with our own keys if none exists yet."""
        if not self.path.exists():
            return self.save([], now or now_utc())
        return load_trust_list(self.path.read_text(encoding="ascii"), self._anchors())

    def save(self, peers: Iterable[TrustedIssuer], now: dt.datetime) -> TrustList:
        own_region = self.keys.region_code
        issuers = [i for i in peers if i.region_code != own_region] + [self._own(now)]
        trust = build_trust_list(self.keys.active(), issuers, now)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(trust.text, encoding="ascii")
        tmp.replace(self.path)
        return trust

    def refresh(self, now: dt.datetime | None = None) -> TrustList:
        """Re-sign (after a key rotation, or to reset the list's age)."""
        now = now or now_utc()
        return self.save(self.load(now).issuers.values(), now)

    def add(self, export_text: str, now: dt.datetime | None = None) -> TrustedIssuer:
        """Add or replace a peer from its ``HCK1:`` export."""
        now = now or now_utc()
        issuer, _ = read_issuer_export(export_text)
        if issuer.region_code == self.keys.region_code:
            raise TrustListError(
                "An instance does not add its own region as a peer.",
                "不能将本地区添加为互认地区。",
                code="trust_own_region",
            )
        peers = dict(self.load(now).issuers)
        peers[issuer.region_code] = issuer
        self.save(peers.values(), now)
        return issuer

    def remove(
        self, region_code: str, *, kid: bytes | None = None, now: dt.datetime | None = None
    ) -> bool:
        """Remove a peer, or only one of its keys; False when nothing matched."""
        now = now or now_utc()
        peers = dict(self.load(now).issuers)
        issuer = peers.get(region_code)
        if issuer is None or region_code == self.keys.region_code:
            return False
        if kid is None:
            del peers[region_code]
        else:
            keys = tuple(k for k in issuer.keys if k.kid != kid)
            if len(keys) == len(issuer.keys):
                return False
            peers[region_code] = attrs.evolve(issuer, keys=keys)
        self.save(peers.values(), now)
        return True

    def revoke_key(self, kid: bytes, now: dt.datetime | None = None) -> bool:
        """Mark a peer key withdrawn (kept in the list, so refusals say why)."""
        now = now or now_utc()
        peers = dict(self.load(now).issuers)
        for region, issuer in peers.items():
            if region == self.keys.region_code:
                continue
            if any(k.kid == kid for k in issuer.keys):
                keys = tuple(
                    attrs.evolve(k, revoked=True) if k.kid == kid else k for k in issuer.keys
                )
                peers[region] = attrs.evolve(issuer, keys=keys)
                self.save(peers.values(), now)
                return True
        return False


def default_trust_file() -> Path:
    import os

    configured = os.environ.get(TRUST_FILE_ENV)
    if configured:
        return Path(configured)
    import platformdirs

    return platformdirs.user_data_path("healthcode") / "trust.hct"


def with_plugin_issuers(trust: TrustList, issuers: Iterable[Issuer]) -> TrustList:
    """``trust`` plus the peer issuers that plugins name through
    ``healthcode_trusted_issuers`` (an operator trusts what it installs).

    A plugin's key whose kid is not the one derived from it is ignored: the
    kid is how a pass names its key, and a mismatch would let one key stand in
    for another.
    """
    merged = dict(trust.issuers)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    for issuer in issuers:
        keys = list(merged[issuer.region_code].keys) if issuer.region_code in merged else []
        for kid_hex, der in issuer.public_keys.items():
            try:
                kid, public = bytes.fromhex(kid_hex), load_public_der(der)
            except (ValueError, PassError):
                continue
            if kid_for(public) != kid or any(k.kid == kid for k in keys):
                continue
            keys.append(
                TrustedKey(
                    kid=kid,
                    alg=algorithm_of(public),
                    public_key=public,
                    public_key_der=der,
                    valid_from=issuer.valid_from or epoch,
                    valid_until=issuer.valid_until,
                )
            )
        merged[issuer.region_code] = TrustedIssuer(issuer.region_code, issuer.name, tuple(keys))
    return TrustList(owner=trust.owner, issued_at=trust.issued_at, issuers=merged, text=trust.text)
