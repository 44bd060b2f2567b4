"""Status data sharing between regions: red and yellow lists, hashed per peer pair.

Region A exports, for one day, the people on its red and yellow lists as
HMAC-SHA256(pair key, day || canonical document key), truncated to 16 bytes,
signed with A's issuer key (text ``HCS1:``) and addressed to one peer B. Only
A and B know the pair key, so nobody else can test a document number against
the list; the day in the hash makes lists of different days unlinkable.
B verifies the signature against its trust list and looks its own subjects up
by computing the same hash (see :func:`pair_hash`).

The canonical document key is what core's subject id is computed from (kind
and normalised number, e.g. ``cn_resident_id:11010519491231002X``): both
regions must derive it the same way. Note: the peer holding the pair key can
still test candidate numbers; the key protects against everybody else.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable, Mapping

import attrs
from attrs import frozen

from healthcode.core.clock import next_cutoff
from healthcode.core.models import Colour
from healthcode.core.passes.errors import MalformedPassError, StatusExportError
from healthcode.core.passes.keys import SigningKey
from healthcode.core.passes.trust import (
    TrustList,
    _dt,
    _ts,
    check_signature,
    open_document,
    sign_document,
)

STATUS_PREFIX = "HCS1:"
HASH_LENGTH = 16
_CONTEXT = b"healthcode-status-share-v1\x00"
_SHARED = {Colour.RED.value: Colour.RED, Colour.YELLOW.value: Colour.YELLOW}


def pair_hash(pair_key: bytes, canonical_key: str, day: dt.date) -> bytes:
    """The keyed hash both peers compute for one person on one day."""
    message = _CONTEXT + day.isoformat().encode("ascii") + b"\x00" + canonical_key.encode("utf-8")
    return hmac.new(pair_key, message, hashlib.sha256).digest()[:HASH_LENGTH]


@frozen
class SharedStatusList:
    """A peer's red and yellow list for one day, verified."""

    from_region: str
    to_region: str
    day: dt.date
    issued_at: dt.datetime
    valid_until: dt.datetime
    entries: Mapping[bytes, Colour] = attrs.field(repr=False)

    def colour_of(self, pair_key: bytes, canonical_key: str) -> Colour | None:
        """The shared colour for one of our subjects, None when not listed."""
        return self.entries.get(pair_hash(pair_key, canonical_key, self.day))


def export_status_list(
    key: SigningKey,
    *,
    to_region: str,
    pair_key: bytes,
    day: dt.date,
    entries: Iterable[tuple[str, Colour]],
    now: dt.datetime,
) -> str:
    """Sign the hashed red/yellow list of ``day`` for ``to_region`` (green is never sent)."""
    hashed: dict[bytes, str] = {}
    for canonical_key, colour in entries:
        if colour is Colour.GREEN:
            continue
        h = pair_hash(pair_key, canonical_key, day)
        # Most severe wins when one person appears on both lists.
        if h not in hashed or colour.severity > _SHARED[hashed[h]].severity:
            hashed[h] = colour.value
    valid_until = next_cutoff(dt.datetime.combine(day, dt.time(12), dt.UTC))
    body = {
        1: key.region_code,
        2: to_region,
        3: day.isoformat(),
        4: _ts(now),
        5: _ts(valid_until),
        # Sorted by hash: the order of the source lists is not revealed.
        6: [[h, c] for h, c in sorted(hashed.items())],
    }
    return sign_document(key, STATUS_PREFIX, body)


def parse_status_export(
    text: str, trust: TrustList, *, our_region: str, now: dt.datetime
) -> SharedStatusList:
    """Verify a peer's export (signer in our trust list, addressed to us, not expired)."""
    sign, body = open_document(text, STATUS_PREFIX, StatusExportError)
    try:
        if (
            not isinstance(body, dict)
            or set(body) != {1, 2, 3, 4, 5, 6}
            or not isinstance(body[1], str)
            or not isinstance(body[2], str)
            or not isinstance(body[3], str)
            or not isinstance(body[6], list)
        ):
            raise MalformedPassError(details={"reason": "status_export"})
        day = dt.date.fromisoformat(body[3])
        issued_at, valid_until = _dt(body[4]), _dt(body[5])
        entries: dict[bytes, Colour] = {}
        for item in body[6]:
            if (
                not isinstance(item, list)
                or len(item) != 2
                or not isinstance(item[0], bytes)
                or len(item[0]) != HASH_LENGTH
                or item[1] not in _SHARED
            ):
                raise MalformedPassError(details={"reason": "status_entry"})
            entries[item[0]] = _SHARED[item[1]]
    except (MalformedPassError, ValueError, TypeError):
        raise StatusExportError(details={"reason": "structure"}) from None
    found = trust.by_kid.get(sign.kid)
    if found is None or found[0].region_code != body[1] or issued_at is None:
        raise StatusExportError(details={"reason": "unknown_signer"})
    check_signature(sign, found[1], StatusExportError)
    if body[2] != our_region:
        raise StatusExportError(details={"reason": "addressed_to_other_region"})
    if valid_until is None or now >= valid_until:
        raise StatusExportError(details={"reason": "expired"})
    return SharedStatusList(body[1], body[2], day, issued_at, valid_until, entries)
