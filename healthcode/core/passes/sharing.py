"""Status data sharing between regions: red and yellow lists, hashed per peer pair.

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
:func:`healthcode.core.privacy_crypto.canonical_document_key` of a parsed
document (kind, issuing state, canonical number): both regions derive it the
same way through the document plugins.

Limitation: a subject enrolled before a pair key with a peer was configured
has no token for that peer, so that peer's lists cannot name them until they
enroll again with their document.

The database side (tokens, export and import tables) is here too, with its
imports inside the functions: this module is loaded by every ``passes``
import (the verifier CLI among them), which must not pay for the database stack.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from attrs import frozen

from healthcode.core.clock import next_cutoff
from healthcode.core.models import Colour
from healthcode.core.passes.errors import MalformedPassError, StatusExportError
from healthcode.core.passes.keys import KeyStore, SigningKey
from healthcode.core.passes.trust import (
    TrustList,
    _dt,
    _ts,
    check_signature,
    open_document,
    sign_document,
)
from healthcode.core.status_entries import PeerEntry

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from healthcode.core.storage.database import Database

STATUS_PREFIX = "HCS1:"
HASH_LENGTH = 16
TOKEN_LENGTH = 32
_CONTEXT = b"healthcode-status-share-v2\x00"
_TOKEN_CONTEXT = b"healthcode-peer-token-v1\x00"
_SHARED = {Colour.RED.value: Colour.RED, Colour.YELLOW.value: Colour.YELLOW}

PeerKeys = Mapping[str, bytes] | Callable[[], Mapping[str, bytes]]
"""Pair keys by peer region, or a function that reads them when needed (so a
key configured while the service runs is picked up)."""


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


# --- hashing ----------------------------------------------------------------------


def peer_token(pair_key: bytes, canonical_key: bytes) -> bytes:
    """The stable token of one document for one peer pair (32 bytes)."""
    return hmac.digest(pair_key, _TOKEN_CONTEXT + canonical_key, hashlib.sha256)


def pair_hash(token: bytes, day: dt.date) -> bytes:
    """The keyed hash both peers compute for one person on one day: ``HMAC(T, day)``."""
    message = _CONTEXT + day.isoformat().encode("ascii")
    return hmac.digest(token, message, hashlib.sha256)[:HASH_LENGTH]


def configured_pair_keys(store: KeyStore) -> dict[str, bytes]:
    """Every pair key in ``store`` (files ``pair-<region>.key``), by peer region."""
    keys: dict[str, bytes] = {}
    for path in sorted(Path(store.path).glob("pair-*.key")):
        region = path.name[len("pair-") : -len(".key")]
        if region:
            keys[region] = store.pair_key(region)
    return keys


def resolve_peer_keys(peer_keys: PeerKeys | None) -> Mapping[str, bytes]:
    if peer_keys is None:
        return {}
    return peer_keys() if callable(peer_keys) else peer_keys


def peer_hashes(
    peer_keys: Mapping[str, bytes], canonical_key: bytes, day: dt.date
) -> dict[str, bytes]:
    """What an authority import at the exporting side stores per peer for one row."""
    return {
        region: pair_hash(peer_token(key, canonical_key), day) for region, key in peer_keys.items()
    }


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
    # The signature first: any altered byte is reported as such, whatever it broke.
    found = trust.by_kid.get(sign.kid)
    if found is None:
        raise StatusExportSignerError(details={"reason": "unknown_signer"})
    check_signature(sign, found[1], StatusExportSignatureError)
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
    if found[0].region_code != body[1]:
        # A trusted key speaking for a region it does not belong to.
        raise StatusExportSignerError(details={"reason": "region_mismatch"})
    if issued_at is None or valid_until is None:
        raise StatusExportError(details={"reason": "structure"})
    if body[2] != our_region:
        raise StatusExportNotForUsError(details={"reason": "addressed_to_other_region"})
    if now >= valid_until:
        raise StatusExportExpiredError(details={"reason": "expired"})
    return SharedStatusList(body[1], body[2], day, issued_at, valid_until, entries)


# --- storage (database imports inside the functions: see the module docstring) ------


async def store_peer_tokens(
    conn: AsyncConnection,
    *,
    subject_key: bytes,
    document_key: bytes,
    canonical_key: bytes,
    peer_keys: Mapping[str, bytes],
    now: dt.datetime,
) -> int:
    """Store (or replace) the document's token for every peer in ``peer_keys``.

    Called by enrollment, the only moment this region holds the document;
    ``canonical_key`` is used here and not kept. Returns the number of tokens.
    """
    if not peer_keys:
        return 0
    from healthcode.core.storage import tables

    table = tables.subject_peer_tokens
    await conn.execute(
        table.delete().where(
            table.c.document_key == document_key, table.c.peer_region.in_(sorted(peer_keys))
        )
    )
    await conn.execute(
        table.insert(),
        [
            {
                "document_key": document_key,
                "peer_region": region,
                "subject_key": subject_key,
                "token": peer_token(key, canonical_key),
                "created_at": now,
            }
            for region, key in sorted(peer_keys.items())
        ],
    )
    return len(peer_keys)


_BY_SEVERITY = {c.severity: c for c in _SHARED.values()}


async def fetch_peer_entries(
    conn: AsyncConnection, subject_key: bytes, day: dt.date
) -> tuple[PeerEntry, ...]:
    """What the peers' lists for ``day`` say of the subject (most severe per peer).

    One indexed read of the subject's tokens; a second read only when it has any.
    """
    import sqlalchemy as sa

    from healthcode.core.storage import tables

    tokens = tables.subject_peer_tokens
    rows = (
        await conn.execute(
            sa.select(tokens.c.peer_region, tokens.c.token).where(
                tokens.c.subject_key == subject_key
            )
        )
    ).all()
    if not rows:
        return ()
    wanted = {(str(region), pair_hash(bytes(token), day)) for region, token in rows}
    entries = tables.peer_status_entries
    found = await conn.execute(
        sa.select(entries.c.peer_region, entries.c.pair_hash, entries.c.colour)
        .where(entries.c.day == day)
        .where(entries.c.pair_hash.in_(sorted({h for _, h in wanted})))
    )
    seen: dict[str, Colour] = {}
    for region, h, colour in found:
        if (region, bytes(h)) not in wanted:
            continue  # the same 16 bytes in another peer's list: not ours to match
        value = Colour(colour)
        prior = seen.get(region)
        if prior is None or value.severity > prior.severity:
            seen[region] = value
    return tuple(PeerEntry(region, seen[region]) for region in sorted(seen))


@frozen
class PeerExport:
    """A signed list ready to send, and what it holds (counts only)."""

    text: str = attrs.field(repr=False)
    peer_region: str
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


async def export_for_peer(
    db: Database, key: SigningKey, *, peer_region: str, day: dt.date, now: dt.datetime
) -> PeerExport:
    """Sign ``day``'s hashes stored for ``peer_region`` by the authority imports.

    Every source's entries count; a person listed by several keeps the most
    severe colour. Only this region's own authority data is exported: lists
    imported from peers are never passed on.
    """
    import sqlalchemy as sa

    from healthcode.core.storage import tables
    from healthcode.core.storage.database import write_audit

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
        result = PeerExport(text, peer_region, day, red, len(entries) - red)
        await write_audit(conn, "status_share_export", result.as_dict())
    return result


@frozen
class PeerImportSummary:
    peer_region: str
    day: dt.date
    red: int
    yellow: int
    valid_until: dt.datetime
    matchable_documents: int
    """Enrolled documents holding a token for this peer (those the list can name)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "peer": self.peer_region,
            "day": self.day.isoformat(),
            "red": self.red,
            "yellow": self.yellow,
            "valid_until": self.valid_until.isoformat(),
            "matchable_documents": self.matchable_documents,
        }


IMPORT_BATCH = 5_000


async def import_from_peer(
    db: Database, text: str, trust: TrustList, *, our_region: str, now: dt.datetime
) -> PeerImportSummary:
    """Verify a peer's ``HCS1:`` list and make it a status source for its day.

    The list replaces what that peer said for that day, in one transaction.
    Raises a ``StatusExportError`` (stable code per reason) with nothing changed.
    """
    import sqlalchemy as sa

    from healthcode.core.storage import tables
    from healthcode.core.storage.database import write_audit

    shared = parse_status_export(text, trust, our_region=our_region, now=now)
    table = tables.peer_status_entries
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
    tokens = tables.subject_peer_tokens
    async with db.begin() as conn:
        await conn.execute(
            table.delete().where(
                table.c.day == shared.day, table.c.peer_region == shared.from_region
            )
        )
        for start in range(0, len(rows), IMPORT_BATCH):
            await conn.execute(table.insert(), rows[start : start + IMPORT_BATCH])
        matchable = (
            await conn.execute(
                sa.select(sa.func.count()).where(tokens.c.peer_region == shared.from_region)
            )
        ).scalar_one()
        red = sum(1 for c in shared.entries.values() if c is Colour.RED)
        summary = PeerImportSummary(
            peer_region=shared.from_region,
            day=shared.day,
            red=red,
            yellow=len(shared.entries) - red,
            valid_until=shared.valid_until,
            matchable_documents=int(matchable),
        )
        await write_audit(conn, "status_share_import", summary.as_dict())
    return summary
