"""Peer tokens and daily hashes: how two regions name the same person without
either keeping a document number (the scheme is described in
:mod:`healthcode.core.status.sharing`).

* Peer token ``T = HMAC-SHA256(pair key, canonical document key)``: computed
  at enrollment for every peer with a pair key, and stored
  (``subject_peer_tokens``).
* Daily hash ``H = HMAC-SHA256(T, day)`` truncated to 16 bytes: stored per
  listed person and peer at an authority import (``peer_status_exports``),
  and matched against the peers' imported lists when a status is resolved.

Nothing here signs or verifies: the signed lists are in ``sharing``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from healthcode.core.models import Colour
from healthcode.core.status.entries import PeerEntry
from healthcode.core.storage import tables

if TYPE_CHECKING:
    from healthcode.core.passes.keys import KeyStore

HASH_LENGTH = 16
_CONTEXT = b"healthcode-status-share-v2\x00"
_TOKEN_CONTEXT = b"healthcode-peer-token-v1\x00"

PeerKeys = Mapping[str, bytes] | Callable[[], Mapping[str, bytes]]
"""Pair keys by peer region, or a function that reads them when needed (so a
key configured while the service runs is picked up)."""


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


async def fetch_peer_entries(
    conn: AsyncConnection, subject_key: bytes, day: dt.date
) -> tuple[PeerEntry, ...]:
    """What the peers' lists for ``day`` say of the subject (most severe per peer).

    One indexed read of the subject's tokens; a second read only when it has any.
    """
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
