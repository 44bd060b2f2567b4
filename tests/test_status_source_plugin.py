"""Built-in status sources are not privileged: a plugin written from the README
alone (``example_status_source``), registered on a fresh manager in place of
``authority_status`` and ``peer_status``, sees the same imported lists and peer
matches through the arguments of ``healthcode_resolve_status``."""

from __future__ import annotations

import asyncio
import datetime as dt
import random

import example_status_source
import pluggy
import pytest
from support.backends import Backend

import healthcode.plugins.authority_status as authority_status
import healthcode.plugins.peer_status as peer_status
from healthcode.core.clock import SHANGHAI
from healthcode.core.models import Colour, MaskedDocument, Status, Subject
from healthcode.core.plugins import new_plugin_manager
from healthcode.core.privacy import (
    canonical_document_key,
    document_key,
    load_secrets,
    subject_id_hex,
)
from healthcode.core.status import (
    AuthorityEntry,
    PeerEntry,
    StatusEntries,
    import_status_rows,
    resolve_status,
)
from healthcode.core.status.peer_tokens import pair_hash, peer_token, store_peer_tokens
from healthcode.core.storage import tables
from healthcode.core.storage.database import open_database
from healthcode.testing.resident_id import random_resident_id

DAY = dt.date(2026, 11, 26)
NOON = dt.datetime(2026, 11, 26, 12, tzinfo=SHANGHAI)
KIND = "cn_resident_id"
PEER = "110000"
PAIR_KEY = b"k" * 32


@pytest.fixture
def builtin_pm() -> pluggy.PluginManager:
    return new_plugin_manager(autoload=False)


@pytest.fixture
def outside_pm() -> pluggy.PluginManager:
    """A fresh manager: the document plugins, and the example in place of the
    built-in status sources."""
    pm = new_plugin_manager(autoload=False)
    for name in ("authority_status", "peer_status"):
        if pm.has_plugin(name):
            pm.unregister(name=name)
    pm.register(example_status_source, name="example_status_source")
    return pm


def subject_of(backend: Backend, number: str) -> Subject:
    key = document_key(load_secrets(backend.secrets_file), KIND, "CHN", number)
    return Subject(subject_id=subject_id_hex(key), masked=MaskedDocument(KIND, "张", "11**"))


async def _store_lists(backend: Backend, pm: pluggy.PluginManager, listed: dict[str, str]) -> None:
    """Import an authority list, and a peer's list naming the first person."""
    db, secrets = await open_database(backend.url, backend.secrets_file)
    rows = ["kind,number,status\n", *(f"{KIND},{n},{c}\n" for n, c in listed.items())]
    try:
        await import_status_rows(db, secrets, rows, day=DAY, fmt="csv", pm=pm)
        number = next(iter(listed))
        canonical = canonical_document_key(KIND, "CHN", number)
        key = document_key(secrets, KIND, "CHN", number)
        async with db.begin() as conn:
            await conn.execute(  # enrolled: the only moment a peer token is made
                tables.subjects.insert().values(
                    subject_key=key,
                    kind=KIND,
                    masked_name="张",
                    masked_number="11**",
                    created_at=NOON,
                    updated_at=NOON,
                )
            )
            await store_peer_tokens(
                conn,
                subject_key=key,
                document_key=key,
                canonical_key=canonical,
                peer_keys={PEER: PAIR_KEY},
                now=NOON,
            )
            await conn.execute(
                tables.peer_status_entries.insert().values(
                    day=DAY,
                    peer_region=PEER,
                    pair_hash=pair_hash(peer_token(PAIR_KEY, canonical), DAY),
                    colour="yellow",
                    severity=Colour.YELLOW.severity,
                    imported_at=NOON,
                )
            )
    finally:
        await db.dispose()


async def _resolve(backend: Backend, pm: pluggy.PluginManager, subject: Subject) -> Status:
    db, _ = await open_database(backend.url, backend.secrets_file)
    try:
        return await resolve_status(db, subject, now=NOON, pm=pm, record=False)
    finally:
        await db.dispose()


def test_an_outside_source_sees_what_the_built_ins_see(
    backend: Backend, builtin_pm: pluggy.PluginManager, outside_pm: pluggy.PluginManager
) -> None:
    assert not outside_pm.is_registered(authority_status)
    assert not outside_pm.is_registered(peer_status)
    rng = random.Random(20261126)
    red, yellow, unlisted = (random_resident_id(rng) for _ in range(3))
    asyncio.run(_store_lists(backend, outside_pm, {red: "red", yellow: "yellow"}))
    for number, colour in ((red, Colour.RED), (yellow, Colour.YELLOW), (unlisted, Colour.GREEN)):
        subject = subject_of(backend, number)
        builtin = asyncio.run(_resolve(backend, builtin_pm, subject))
        outside = asyncio.run(_resolve(backend, outside_pm, subject))
        assert builtin.colour is outside.colour is colour
        assert [s.replace("peer:", "example-peer:") for s in builtin.sources] == list(
            outside.sources
        )
    peer_listed = asyncio.run(_resolve(backend, outside_pm, subject_of(backend, red)))
    assert peer_listed.sources == ("authority", f"example-peer:{PEER}")


def test_built_in_sources_answer_from_their_arguments_alone() -> None:
    """No hidden channel: called directly, outside any resolution, they answer."""
    subject = Subject(subject_id="ab" * 32, masked=MaskedDocument(KIND, "张", "11**"))
    entries = StatusEntries(
        authority=(AuthorityEntry("cdc", Colour.RED),), peers=(PeerEntry(PEER, Colour.YELLOW),)
    )
    (listed,) = authority_status.healthcode_resolve_status(subject, DAY, entries) or []
    assert (listed.source, listed.colour) == ("cdc", Colour.RED)
    (shared,) = peer_status.healthcode_resolve_status(subject, DAY, entries) or []
    assert (shared.source, shared.colour) == (f"peer:{PEER}", Colour.YELLOW)
    assert authority_status.healthcode_resolve_status(subject, DAY, StatusEntries()) is None
    assert peer_status.healthcode_resolve_status(subject, DAY, StatusEntries()) is None
