"""Peer tokens and daily hashes: how two regions name the same person without
either keeping a document number (the scheme is described in
:mod:`healthcode.core.status.sharing`).

* Peer token ``T = HMAC-SHA256(pair key, canonical document key)``: computed
  at enrollment for every peer with a pair key, and stored
  (``subject_peer_tokens``).
* Daily hash ``H = HMAC-SHA256(T, day)`` truncated to 16 bytes: stored per
  listed person and peer at an authority import (``peer_status_exports``),
  and matched against the peers' imported lists when a status is resolved.

Pair keys themselves live in the key store (``pair-<region>.key``); the
functions under "pair keys" below create, list and remove them for
``healthcode trust pair-key``.

Nothing here signs or verifies: the signed lists are in ``sharing``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from attrs import frozen
from sqlalchemy.ext.asyncio import AsyncConnection

from healthcode.core.models import Colour
from healthcode.core.passes.errors import KeyStoreError
from healthcode.core.status.entries import PeerEntry
from healthcode.core.storage import tables

if TYPE_CHECKING:
    from healthcode.core.passes.keys import KeyStore

HASH_LENGTH = 16
_CONTEXT = b"healthcode-status-share-v2\x00"
_TOKEN_CONTEXT = b"healthcode-peer-token-v1\x00"
_FINGERPRINT_CONTEXT = b"healthcode-pair-key-fingerprint-v1\x00"
PAIR_KEY_LENGTH = 32
PAIR_KEY_COMMAND = "healthcode trust pair-key"


class PairKeyMissingError(KeyStoreError):
    """No pair key is agreed with the peer region a list is for."""

    code = "pair_key_missing"
    default_en = (
        "No pair key is agreed with this peer region. Create one with "
        f"`{PAIR_KEY_COMMAND} create --peer REGION` (or take the peer's with "
        f"`{PAIR_KEY_COMMAND} set --peer REGION FILE`), then import the day's "
        "authority list again."
    )
    default_zh = (
        f"尚未与该地区约定配对密钥。请用 `{PAIR_KEY_COMMAND} create --peer 地区代码` 创建"
        f"（或用 `{PAIR_KEY_COMMAND} set --peer 地区代码 文件` 导入对方的密钥），"
        "然后重新导入当天的权威名单。"
    )


class PairKeyExistsError(KeyStoreError):
    """A pair key with this peer exists: replacing it is a deliberate act."""

    code = "pair_key_exists"
    default_en = (
        "A pair key with this peer region already exists. Replacing it makes the "
        "tokens of everyone enrolled so far useless for this peer: say --replace "
        "if that is meant."
    )
    default_zh = (
        "已存在与该地区的配对密钥。替换后，已登记人员的互认标记对该地区失效；"
        "确需替换请加 --replace。"
    )


class PairKeyInvalidError(KeyStoreError):
    """A pair key handed in is not 32 bytes written as 64 hex digits."""

    code = "pair_key_invalid"
    default_en = (
        "This is not a pair key: expected 64 hexadecimal characters, as written "
        f"by `{PAIR_KEY_COMMAND} create`."
    )
    default_zh = (
        f"不是有效的配对密钥：应为 64 位十六进制字符（由 `{PAIR_KEY_COMMAND} create` 生成）。"
    )


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


# --- pair keys ---------------------------------------------------------------------


@frozen
class PairKeyInfo:
    """What may be shown of a pair key: its peer and its fingerprint, never the key."""

    peer_region: str
    fingerprint: str
    """16 hex digits both operators compare out of band (the same on both sides)."""
    created_at: dt.datetime
    """When the key file was written here (UTC)."""


def pair_key_fingerprint(key: bytes) -> str:
    """A short digest of ``key`` that says nothing about it (compare it by phone)."""
    return hashlib.sha256(_FINGERPRINT_CONTEXT + key).hexdigest()[:16]


def _pair_key_path(store: KeyStore, peer_region: str) -> Path:
    return Path(store.path) / f"pair-{peer_region}.key"


def require_pair_key(store: KeyStore, peer_region: str) -> bytes:
    """The pair key agreed with ``peer_region``; ``PairKeyMissingError`` naming
    the command that makes one when there is none."""
    if not _pair_key_path(store, peer_region).exists():
        raise PairKeyMissingError(details={"peer": peer_region, "fix": PAIR_KEY_COMMAND})
    return store.pair_key(peer_region)


def parse_pair_key(text: str) -> bytes:
    """A pair key as exchanged between operators: 64 hex digits."""
    value = text.strip()
    if len(value) != 2 * PAIR_KEY_LENGTH:
        raise PairKeyInvalidError(details={"length": len(value)})
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise PairKeyInvalidError(details={"reason": "not_hex"}) from None


def store_pair_key(
    store: KeyStore, peer_region: str, key: bytes | None = None, *, replace: bool = False
) -> bytes:
    """Write the pair key with ``peer_region`` (a new random one when ``key``
    is None) and return it. Refused when the peer is this region, when the
    key store is not set up, or when a key exists and ``replace`` is not said."""
    if peer_region == store.region_code:  # also: NoActiveKeyError when not set up
        raise KeyStoreError(
            "A region shares no pair key with itself.",
            "不能与本地区约定配对密钥。",
            code="pair_key_own_region",
            details={"peer": peer_region},
        )
    if _pair_key_path(store, peer_region).exists() and not replace:
        raise PairKeyExistsError(details={"peer": peer_region})
    value = key if key is not None else secrets.token_bytes(PAIR_KEY_LENGTH)
    store.set_pair_key(peer_region, value)
    return value


def list_pair_keys(store: KeyStore) -> list[PairKeyInfo]:
    """Every pair key in ``store``, by peer region."""
    found = []
    for region, key in configured_pair_keys(store).items():
        written = _pair_key_path(store, region).stat().st_mtime
        found.append(
            PairKeyInfo(
                region, pair_key_fingerprint(key), dt.datetime.fromtimestamp(written, dt.UTC)
            )
        )
    return found


def remove_pair_key(store: KeyStore, peer_region: str) -> bool:
    """Delete the pair key with ``peer_region``; False when there was none."""
    path = _pair_key_path(store, peer_region)
    if not path.exists():
        return False
    path.unlink()
    return True


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
