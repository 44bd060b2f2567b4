"""Compact signed revocation lists, partitioned by issuer key (as EU DCC does).

When a holder's status becomes more severe before 24:00, the issuing region
revokes their pass. Online verifiers ask the service; offline verifiers
download, every so often, one small signed list per region: for each of the
region's keys, a Bloom filter over the revoked pass ids. A region can revoke
only passes signed by its own keys; the verifier checks that.

A Bloom filter has no false negatives, and a false-positive rate chosen at
build time (default 1e-6): at that rate a genuine pass is wrongly refused
about once per million scans, and an online check clears it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
from attrs import frozen

from healthcode.core.passes.codec import KID_LENGTH
from healthcode.core.passes.errors import MalformedPassError, RevocationListError
from healthcode.core.passes.keys import SigningKey
from healthcode.core.passes.signed import (
    check_signature,
    from_timestamp,
    open_document,
    sign_document,
    to_timestamp,
)
from healthcode.core.passes.trust import TrustList

REVOCATION_PREFIX = "HCR1:"
DEFAULT_FALSE_POSITIVE_RATE = 1e-6
DEFAULT_MAX_AGE = dt.timedelta(hours=6)
_MAX_BITS = 8 * 1024 * 1024 * 8  # 8 MiB per partition: far above a city's daily revocations
_MAX_HASHES = 32


def _positions(kid: bytes, pass_id: bytes, m: int, k: int) -> list[int]:
    # Double hashing (Kirsch & Mitzenmacher): two 64-bit halves of one SHA-256.
    digest = hashlib.sha256(kid + pass_id).digest()
    h1 = int.from_bytes(digest[:8], "big")
    h2 = int.from_bytes(digest[8:16], "big") | 1
    return [(h1 + i * h2) % m for i in range(k)]


@frozen
class BloomFilter:
    bits: int
    """Number of bits, m."""
    hashes: int
    """Number of hash functions, k."""
    data: bytes = attrs.field(repr=False)

    @classmethod
    def build(
        cls, kid: bytes, pass_ids: Iterable[bytes], rate: float = DEFAULT_FALSE_POSITIVE_RATE
    ) -> BloomFilter:
        ids = list(pass_ids)
        n = max(len(ids), 1)
        m = max(64, math.ceil(-n * math.log(rate) / (math.log(2) ** 2)))
        m = (m + 7) // 8 * 8
        k = max(1, min(_MAX_HASHES, round(m / n * math.log(2))))
        data = bytearray(m // 8)
        for pass_id in ids:
            for p in _positions(kid, pass_id, m, k):
                data[p >> 3] |= 1 << (p & 7)
        return cls(m, k, bytes(data))

    def contains(self, kid: bytes, pass_id: bytes) -> bool:
        data = self.data
        return all(
            data[p >> 3] & (1 << (p & 7)) for p in _positions(kid, pass_id, self.bits, self.hashes)
        )


@frozen
class RevocationList:
    region_code: str
    issued_at: dt.datetime
    partitions: Mapping[bytes, BloomFilter]
    """kid -> filter of revoked pass ids signed by that key."""
    text: str = attrs.field(repr=False)

    def is_revoked(self, kid: bytes, pass_id: bytes) -> bool:
        bloom = self.partitions.get(kid)
        return bloom is not None and bloom.contains(kid, pass_id)

    def age(self, now: dt.datetime) -> dt.timedelta:
        return now - self.issued_at

    @property
    def size_bytes(self) -> int:
        return len(self.text)


def build_revocation_list(
    key: SigningKey,
    revoked: Iterable[tuple[bytes, bytes]],
    now: dt.datetime,
    *,
    kids: Iterable[bytes] = (),
    rate: float = DEFAULT_FALSE_POSITIVE_RATE,
) -> str:
    """Sign a list of revoked ``(kid, pass id)`` pairs as ``HCR1:`` text.

    ``kids`` names keys to include with an empty partition, so that verifiers
    know the list covers them. Expired passes need not be listed.
    """
    by_kid: dict[bytes, list[bytes]] = {kid: [] for kid in kids}
    for kid, pass_id in revoked:
        by_kid.setdefault(kid, []).append(pass_id)
    partitions = {
        kid: [b.bits, b.hashes, b.data]
        for kid, ids in sorted(by_kid.items())
        for b in [BloomFilter.build(kid, ids, rate)]
    }
    body = {1: key.region_code, 2: to_timestamp(now), 3: partitions}
    return sign_document(key, REVOCATION_PREFIX, body)


def _partition(kid: Any, item: Any) -> BloomFilter:
    if not isinstance(kid, bytes) or len(kid) != KID_LENGTH:
        raise MalformedPassError(details={"reason": "partition_kid"})
    if not isinstance(item, list) or len(item) != 3:
        raise MalformedPassError(details={"reason": "partition"})
    m, k, data = item
    if (
        type(m) is not int
        or type(k) is not int
        or not isinstance(data, bytes)
        or not 8 <= m <= _MAX_BITS
        or m % 8
        or not 1 <= k <= _MAX_HASHES
        or len(data) * 8 != m
    ):
        raise MalformedPassError(details={"reason": "partition"})
    return BloomFilter(m, k, data)


def load_revocation_list(text: str, trust: TrustList) -> RevocationList:
    """Verify a region's list against the trust list; refuse partitions for others' keys."""
    sign, body = open_document(text, REVOCATION_PREFIX, RevocationListError)
    try:
        if not isinstance(body, dict) or set(body) != {1, 2, 3} or not isinstance(body[3], dict):
            raise MalformedPassError(details={"reason": "revocation_list"})
        issued_at = from_timestamp(body[2])
        partitions = {kid: _partition(kid, item) for kid, item in body[3].items()}
    except MalformedPassError as exc:
        raise RevocationListError(details=exc.details) from None
    found = trust.by_kid.get(sign.kid)
    if found is None or found[0].region_code != body[1] or issued_at is None:
        raise RevocationListError(details={"reason": "unknown_signer"})
    check_signature(sign, found[1], RevocationListError)
    for kid in partitions:
        owner = trust.by_kid.get(kid)
        if owner is not None and owner[0].region_code != body[1]:
            # A region may only revoke passes signed by its own keys.
            raise RevocationListError(details={"reason": "foreign_partition"})
    return RevocationList(body[1], issued_at, partitions, text.strip())
