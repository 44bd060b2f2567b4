"""Status sharing between regions: red and yellow lists, hashed per peer pair.

Privacy by construction: neither region keeps a raw document number, so the
hash a list carries must be computable from what each side does keep.

* Peer token: ``T = HMAC-SHA256(pair key, canonical document key)`` (32
  bytes). The importing region B computes it at enrollment, while the
  document is in hand, for every peer it shares a pair key with, and stores
  it (``subject_peer_tokens``); the exporting region A computes it at its
  authority import, while the number is in hand.
* Daily hash: ``H = HMAC-SHA256(T, day)`` truncated to 16 bytes. A stores the
  H of each listed person per peer in a day-scoped table and exports from it;
  B matches H against ``HMAC(T, day)`` of its subjects' tokens.

Only A and B know the pair key, so nobody else can test a document number
against a list; the day in H makes lists of different days unlinkable to
anyone without the tokens. The peer holding the pair key can still test
candidate numbers: the key protects against everybody else.

A list is signed with A's issuer key (text ``HCS1:``), addressed to one peer,
and verified by B against its trust list. The canonical document key is
:func:`healthcode.core.privacy.canonical_document_key` of a parsed
document (kind, issuing state, canonical number): both regions derive it the
same way through the document plugins.

Limitation: a subject enrolled before a pair key with a peer was configured
has no token for that peer, so that peer's lists cannot name them until they
enroll again with their document.

The tokens and daily hashes themselves, and the reads and writes of the
subject's tokens, are in :mod:`healthcode.core.status.peer_tokens`; this
module signs, verifies, exports and imports the lists.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import sqlalchemy as sa
from attrs import frozen
from sqlalchemy.ext.asyncio import AsyncConnection

from healthcode.core.clock import next_cutoff
from healthcode.core.models import Colour
from healthcode.core.passes.errors import MalformedPassError, StatusExportError
from healthcode.core.passes.keys import KeyStore, SigningKey
from healthcode.core.passes.signed import (
    check_signature,
    from_timestamp,
    open_document,
    sign_document,
    to_timestamp,
)
from healthcode.core.passes.trust import TrustList
from healthcode.core.status.peer_tokens import HASH_LENGTH, pair_hash
from healthcode.core.storage import tables
from healthcode.core.storage.database import Database, ensure_day_partitions, write_audit

STATUS_PREFIX = "HCS1:"
IMPORT_BATCH = 5_000
_SHARED = {Colour.RED.value: Colour.RED, Colour.YELLOW.value: Colour.YELLOW}
_BY_SEVERITY = {c.severity: c for c in _SHARED.values()}


# --- refusals (stable codes; a subclass each, so callers may catch the family) ----


class StatusExportSignerError(StatusExportError):
    code = "status_export_untrusted_signer"
    default_en = "The shared status list is not signed by a trusted peer region."
    default_zh = "共享状态列表并非由受信任的地区签发。"


class StatusExportSignatureError(StatusExportError):
    code = "status_export_bad_signature"
    default_en = "The shared status list's signature does not match: it was altered."
    default_zh = "共享状态列表签名不符，内容已被篡改。"


class StatusExportNotForUsError(StatusExportError):
    code = "status_export_not_for_us"
    default_en = "The shared status list is addressed to another region."
    default_zh = "该共享状态列表的接收地区不是本地区。"


class StatusExportExpiredError(StatusExportError):
    code = "status_export_expired"
    default_en = "The shared status list's day has ended."
    default_zh = "该共享状态列表所属日期已结束。"


# --- the signed list --------------------------------------------------------------


@frozen
class SharedStatusList:
    """A peer's red and yellow list for one day, verified."""

    from_region: str
    to_region: str
    day: dt.date
    issued_at: dt.datetime
    valid_until: dt.datetime
    entries: Mapping[bytes, Colour] = attrs.field(repr=False)

    def colour_of(self, token: bytes) -> Colour | None:
        """The shared colour for one of our subjects' tokens, None when not listed."""
        return self.entries.get(pair_hash(token, self.day))


def export_status_list(
    key: SigningKey,
    *,
    to_region: str,
    day: dt.date,
    entries: Iterable[tuple[bytes, Colour]],
    now: dt.datetime,
) -> str:
    """Sign the hashed red/yellow list of ``day`` for ``to_region``.

    ``entries`` are daily hashes (:func:`pair_hash`) with their colour; green
    is never sent; a hash listed twice keeps the most severe colour.
    """
    hashed: dict[bytes, str] = {}
    for h, colour in entries:
        if colour is Colour.GREEN:
            continue
        if len(h) != HASH_LENGTH:
            raise ValueError("a shared hash is 16 bytes")
        if h not in hashed or colour.severity > _SHARED[hashed[h]].severity:
            hashed[h] = colour.value
    valid_until = next_cutoff(dt.datetime.combine(day, dt.time(12), dt.UTC))
    body = {
        1: key.region_code,
        2: to_region,
        3: day.isoformat(),
        4: to_timestamp(now),
        5: to_timestamp(valid_until),
        # Sorted by hash: the order of the source lists is not revealed.
        6: [[h, c] for h, c in sorted(hashed.items())],
    }
    return sign_document(key, STATUS_PREFIX, body)


def parse_status_export(
    text: str, trust: TrustList, *, our_region: str, now: dt.datetime
) -> SharedStatusList:
    """Verify a peer's export (signer in our trust list, addressed to us, not expired)."""
    sign, body = open_document(text, STATUS_PREFIX, StatusExportError)
    # The signature first: any altered byte is reported as such, whatever it broke.
    found = trust.by_kid.get(sign.kid)
    if found is None:
        raise StatusExportSignerError(details={"reason": "unknown_signer"})
    check_signature(sign, found[1], StatusExportSignatureError)
    from_region, to_region, day, issued_at, valid_until, entries = _read_body(body)
    if found[0].region_code != from_region:
        # A trusted key speaking for a region it does not belong to.
        raise StatusExportSignerError(details={"reason": "region_mismatch"})
    if issued_at is None or valid_until is None:
        raise StatusExportError(details={"reason": "structure"})
    if to_region != our_region:
        raise StatusExportNotForUsError(details={"reason": "addressed_to_other_region"})
    if now >= valid_until:
        raise StatusExportExpiredError(details={"reason": "expired"})
    return SharedStatusList(from_region, to_region, day, issued_at, valid_until, entries)


_Body = tuple[str, str, dt.date, dt.datetime | None, dt.datetime | None, dict[bytes, Colour]]


def _read_body(body: Any) -> _Body:
    """From, to, day, issued at, valid until and entries of a signed list's
    body; ``StatusExportError`` (structure) when it is not one."""
    try:
        if (
            not isinstance(body, dict)
            or set(body) != {1, 2, 3, 4, 5, 6}
            or not all(isinstance(body[field], str) for field in (1, 2, 3))
            or not isinstance(body[6], list)
        ):
            raise MalformedPassError(details={"reason": "status_export"})
        day = dt.date.fromisoformat(body[3])
        issued_at, valid_until = from_timestamp(body[4]), from_timestamp(body[5])
        entries = dict(_read_entry(item) for item in body[6])
    except (MalformedPassError, ValueError, TypeError):
        raise StatusExportError(details={"reason": "structure"}) from None
    return body[1], body[2], day, issued_at, valid_until, entries


def _read_entry(item: Any) -> tuple[bytes, Colour]:
    if (
        not isinstance(item, list)
        or len(item) != 2
        or not isinstance(item[0], bytes)
        or len(item[0]) != HASH_LENGTH
        or item[1] not in _SHARED
    ):
        raise MalformedPassError(details={"reason": "status_entry"})
    return item[0], _SHARED[item[1]]


# --- export and import (storage) -----------------------------------------------


@frozen(kw_only=True)
class PeerListCounts:
    """What a shared list holds (counts only)."""

    peer_region: str
    """The peer the list is for (export) or from (import)."""
    day: dt.date
    red: int
    yellow: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "peer": self.peer_region,
            "day": self.day.isoformat(),
            "red": self.red,
            "yellow": self.yellow,
        }


@frozen(kw_only=True)
class PeerExport(PeerListCounts):
    """A signed list ready to send, and what it holds."""

    text: str = attrs.field(repr=False)


def signing_key_for_peer(keys: KeyStore, peer_region: str) -> SigningKey:
    """The key to sign a list for ``peer_region`` with. Refused (the key
    store's error for a missing pair key) when no pair key with that peer is
    configured: no hashes were made for it at import, and an empty list
    would say that nobody is listed."""
    keys.pair_key(peer_region)
    return keys.active()


async def export_for_peer(
    db: Database, key: SigningKey, *, peer_region: str, day: dt.date, now: dt.datetime
) -> PeerExport:
    """Sign ``day``'s hashes stored for ``peer_region`` by the authority imports.

    Every source's entries count; a person listed by several keeps the most
    severe colour. Only this region's own authority data is exported: lists
    imported from peers are never passed on.
    """
    table = tables.peer_status_exports
    async with db.begin() as conn:
        rows = (
            await conn.execute(
                sa.select(table.c.pair_hash, sa.func.max(table.c.severity))
                .where(table.c.day == day, table.c.peer_region == peer_region)
                .group_by(table.c.pair_hash)
            )
        ).all()
        entries = [(bytes(h), _BY_SEVERITY[int(s)]) for h, s in rows]
        text = export_status_list(key, to_region=peer_region, day=day, entries=entries, now=now)
        red = sum(1 for _, c in entries if c is Colour.RED)
        result = PeerExport(
            text=text, peer_region=peer_region, day=day, red=red, yellow=len(entries) - red
        )
        await write_audit(conn, "status_share_export", result.as_dict())
    return result


@frozen(kw_only=True)
class PeerImportSummary(PeerListCounts):
    """A peer's list imported, and what it holds."""

    valid_until: dt.datetime
    matchable_documents: int
    """Enrolled documents holding a token for this peer (those the list can name)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            **super().as_dict(),
            "valid_until": self.valid_until.isoformat(),
            "matchable_documents": self.matchable_documents,
        }


async def import_from_peer(
    db: Database, text: str, trust: TrustList, *, our_region: str, now: dt.datetime
) -> PeerImportSummary:
    """Verify a peer's ``HCS1:`` list and make it a status source for its day.

    The list replaces what that peer said for that day, in one transaction.
    Raises a ``StatusExportError`` (stable code per reason) with nothing changed.
    On PostgreSQL the day's partition of the peers' lists is made first if
    missing, in a short transaction of its own: creating it locks the table
    against readers for a moment, which the replacing transaction must not do.
    """
    shared = parse_status_export(text, trust, our_region=our_region, now=now)
    await ensure_day_partitions(db, shared.day, (tables.peer_status_entries,))
    async with db.begin() as conn:
        await _replace_peer_list(conn, shared, now)
        red = sum(1 for c in shared.entries.values() if c is Colour.RED)
        summary = PeerImportSummary(
            peer_region=shared.from_region,
            day=shared.day,
            red=red,
            yellow=len(shared.entries) - red,
            valid_until=shared.valid_until,
            matchable_documents=await _matchable_documents(conn, shared.from_region),
        )
        await write_audit(conn, "status_share_import", summary.as_dict())
    return summary


async def _replace_peer_list(
    conn: AsyncConnection, shared: SharedStatusList, now: dt.datetime
) -> None:
    """Store ``shared`` in place of what its peer said before for its day.

    A DELETE and INSERTs in the caller's transaction: readers see the previous
    list until it commits, and a failure leaves it in place. (Other peers'
    lists share the day's partition; they are not touched.)"""
    table = tables.peer_status_entries
    await conn.execute(
        table.delete().where(table.c.day == shared.day, table.c.peer_region == shared.from_region)
    )
    rows = [
        {
            "day": shared.day,
            "peer_region": shared.from_region,
            "pair_hash": h,
            "colour": colour.value,
            "severity": colour.severity,
            "imported_at": now,
        }
        for h, colour in shared.entries.items()
    ]
    for start in range(0, len(rows), IMPORT_BATCH):
        await conn.execute(table.insert(), rows[start : start + IMPORT_BATCH])


async def _matchable_documents(conn: AsyncConnection, peer_region: str) -> int:
    tokens = tables.subject_peer_tokens
    count = await conn.execute(
        sa.select(sa.func.count()).where(tokens.c.peer_region == peer_region)
    )
    return int(count.scalar_one())
