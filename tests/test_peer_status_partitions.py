"""Peers' shared lists on PostgreSQL: partitioned by day (migration 0008), a
list written to its day's partition and replaced all or nothing, the purge
dropping past days' partitions, migration 0008 up and down on a populated
database. On SQLite nothing is partitioned (tests/test_sharing.py runs the
same writer there).

Lists are real signed ``HCS1:`` lists from two peer regions that Beijing
trusts; their daily hashes are random bytes, except where a test reads a
subject's entry back through its peer token.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets as _random
from collections.abc import Iterable

import pytest
import sqlalchemy as sa
from attrs import frozen
from support.audit import audit_rows
from support.pg import emptied_postgres, opened

from healthcode.core.clock import SHANGHAI
from healthcode.core.models import Colour
from healthcode.core.passes import KeyStore, TrustStore, export_issuer
from healthcode.core.passes.trust import TrustList
from healthcode.core.status import purge_expired, sharing
from healthcode.core.status.entries import PeerEntry
from healthcode.core.status.peer_tokens import fetch_peer_entries, pair_hash
from healthcode.core.status.sharing import export_status_list, import_from_peer
from healthcode.core.storage import tables
from healthcode.core.storage.database import (
    Database,
    drop_day_partitions_before,
    ensure_day_partitions,
    head_revision,
)
from healthcode.core.storage.testing import (
    create_postgres_database,
    drop_postgres_database,
    postgres_server_url,
)

NOW = dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC)
"""10:00 in Shanghai."""
DAY = dt.date(2026, 11, 26)
NEXT_DAY = DAY + dt.timedelta(days=1)
US = "110000"
TIANJIN, HEBEI = "120000", "130000"
ENTRIES = tables.peer_status_entries


@frozen
class Peers:
    """Two peer regions' signing keys, and our trust list holding both."""

    keys: dict[str, KeyStore]
    trust: TrustList

    def signed(
        self,
        peer: str,
        hashes: Iterable[bytes],
        colour: Colour = Colour.RED,
        day: dt.date = DAY,
    ) -> str:
        return export_status_list(
            self.keys[peer].active(),
            to_region=US,
            day=day,
            entries=[(h, colour) for h in hashes],
            now=NOW,
        )


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Peers:
    root = tmp_path_factory.mktemp("peers")
    ours = KeyStore(root / US)
    ours.init(US, "北京市", now=NOW)
    store = TrustStore(root / "trust.hct", ours)
    keys: dict[str, KeyStore] = {}
    for code, name in ((TIANJIN, "天津市"), (HEBEI, "河北省")):
        keys[code] = KeyStore(root / code)
        keys[code].init(code, name, now=NOW)
        store.add(export_issuer(keys[code], NOW), NOW)
    return Peers(keys, store.load(NOW))


@pytest.fixture
def pg(postgres_url: str | None) -> str:
    """The module's database at head, emptied, with no day partition of the
    peers' lists left by an earlier test."""
    return emptied_postgres(
        postgres_url, tidy=lambda conn: drop_day_partitions_before(conn, ENTRIES, dt.date.max)
    )


def _hashes(count: int) -> list[bytes]:
    return [_random.token_bytes(16) for _ in range(count)]


async def _import(db: Database, peers: Peers, text: str) -> sharing.PeerImportSummary:
    return await import_from_peer(db, text, peers.trust, our_region=US, now=NOW)


async def _relkind(db: Database, name: str) -> str | None:
    async with db.begin() as conn:
        kind = await conn.scalar(
            sa.text("SELECT relkind::text FROM pg_class WHERE oid = to_regclass(:n)"), {"n": name}
        )
        return None if kind is None else str(kind)


async def _rows_in(db: Database, relation: str) -> set[tuple[str, bytes, str]]:
    """(peer, hash, colour) of the rows stored in one table or partition."""
    async with db.begin() as conn:
        rows = await conn.execute(sa.text(f"SELECT peer_region, pair_hash, colour FROM {relation}"))
        return {(str(peer), bytes(h), str(colour)) for peer, h, colour in rows}


def _listed(peer: str, hashes: Iterable[bytes], colour: str = "red") -> set[tuple[str, bytes, str]]:
    return {(peer, h, colour) for h in hashes}


async def _insert_red(db: Database, rows: Iterable[tuple[dt.date, str, bytes]]) -> None:
    """(day, peer, hash) rows written straight into the peer lists, red: rows
    as an earlier schema, or a day without its partition, left them."""
    async with db.begin() as conn:
        await conn.execute(
            ENTRIES.insert(),
            [
                {
                    "day": day,
                    "peer_region": peer,
                    "pair_hash": h,
                    "colour": "red",
                    "severity": Colour.RED.severity,
                    "imported_at": NOW,
                }
                for day, peer, h in rows
            ],
        )


# --- the writer -------------------------------------------------------------------------------


def test_a_list_lands_in_its_days_partition_and_replaces_only_its_peers(
    pg: str, peers: Peers
) -> None:
    tianjin, hebei, again = _hashes(3), _hashes(2), _hashes(2)
    part = tables.day_partition_name(ENTRIES.name, DAY)

    async def go() -> None:
        async with opened(pg) as db:
            assert await _relkind(db, ENTRIES.name) == "p"
            assert await _relkind(db, part) is None
            summary = await _import(db, peers, peers.signed(TIANJIN, tianjin))
            assert (summary.red, summary.yellow) == (3, 0)
            # A plain table: a day's partition is not split by peer.
            assert await _relkind(db, part) == "r"
            await _import(db, peers, peers.signed(HEBEI, hebei, Colour.YELLOW))
            assert await _rows_in(db, part) == _listed(TIANJIN, tianjin) | _listed(
                HEBEI, hebei, "yellow"
            )
            assert await _rows_in(db, f"{ENTRIES.name}_default") == set()
            # Tianjin's next list replaces Tianjin's, and only Tianjin's.
            await _import(db, peers, peers.signed(TIANJIN, again, Colour.YELLOW))
            assert await _rows_in(db, ENTRIES.name) == _listed(TIANJIN, again, "yellow") | _listed(
                HEBEI, hebei, "yellow"
            )

    asyncio.run(go())


def test_a_subjects_entry_is_read_back_from_the_partition(pg: str, peers: Peers) -> None:
    """The verification's read (``fetch_peer_entries``) through the partitioned table."""
    subject_key, token = _random.token_bytes(32), _random.token_bytes(32)
    mine = pair_hash(token, DAY)

    async def go() -> None:
        async with opened(pg) as db:
            async with db.begin() as conn:
                await conn.execute(
                    tables.subjects.insert().values(
                        subject_key=subject_key,
                        kind="cn_resident_id",
                        masked_name="张",
                        masked_number="11**34",
                        created_at=NOW,
                        updated_at=NOW,
                    )
                )
                await conn.execute(
                    tables.subject_peer_tokens.insert().values(
                        document_key=subject_key,
                        peer_region=TIANJIN,
                        subject_key=subject_key,
                        token=token,
                        created_at=NOW,
                    )
                )
            await _import(db, peers, peers.signed(TIANJIN, [mine, *_hashes(5)]))
            # The same 16 bytes in Hebei's list are not Tianjin's word.
            await _import(db, peers, peers.signed(HEBEI, [mine], Colour.YELLOW))
            async with db.begin() as conn:
                assert await fetch_peer_entries(conn, subject_key, DAY) == (
                    PeerEntry(TIANJIN, Colour.RED),
                )
                assert await fetch_peer_entries(conn, subject_key, NEXT_DAY) == ()

    asyncio.run(go())


def test_a_failed_write_keeps_the_previous_list(
    pg: str, peers: Peers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All or nothing: a failure after the new rows were written (here while
    the summary is counted) rolls the replacement back. The day's partition,
    made before in a transaction of its own, stays, empty for a new day."""
    old, new = _hashes(4), _hashes(7)

    async def broken(_conn: object, _peer: str) -> int:
        raise OSError("the connection went away")

    async def go() -> None:
        async with opened(pg) as db:
            await _import(db, peers, peers.signed(TIANJIN, old))
            monkeypatch.setattr(sharing, "IMPORT_BATCH", 3)  # several INSERTs
            monkeypatch.setattr(sharing, "_matchable_documents", broken)
            with pytest.raises(OSError, match="went away"):
                await _import(db, peers, peers.signed(TIANJIN, new, Colour.YELLOW))
            assert await _rows_in(db, ENTRIES.name) == _listed(TIANJIN, old)
            with pytest.raises(OSError, match="went away"):
                await _import(db, peers, peers.signed(TIANJIN, new, day=NEXT_DAY))
            next_part = tables.day_partition_name(ENTRIES.name, NEXT_DAY)
            assert await _relkind(db, next_part) == "r"
            assert await _rows_in(db, next_part) == set()
            assert len(await audit_rows(db, "status_share_import")) == 1

    asyncio.run(go())


def test_rows_of_a_day_without_a_partition_move_into_it(pg: str, peers: Peers) -> None:
    """Rows written while the day had no partition (the default part takes
    them) move into the partition when it is made; the writer then replaces
    its peer's rows only."""
    stray, hebei, tianjin = _hashes(2), _hashes(3), _hashes(2)
    part = tables.day_partition_name(ENTRIES.name, DAY)

    async def go() -> None:
        async with opened(pg) as db:
            await _insert_red(
                db,
                [
                    (DAY, peer, h)
                    for peer, hashes in ((TIANJIN, stray), (HEBEI, hebei))
                    for h in hashes
                ],
            )
            assert await _rows_in(db, f"{ENTRIES.name}_default") == _listed(
                TIANJIN, stray
            ) | _listed(HEBEI, hebei)
            await _import(db, peers, peers.signed(TIANJIN, tianjin, Colour.YELLOW))
            assert await _rows_in(db, f"{ENTRIES.name}_default") == set()
            assert await _rows_in(db, part) == _listed(TIANJIN, tianjin, "yellow") | _listed(
                HEBEI, hebei
            )

    asyncio.run(go())


def test_two_peers_writing_a_new_day_at_once(pg: str, peers: Peers) -> None:
    """Both lists are stored; the day's partition is made once."""
    lists = {TIANJIN: _hashes(40), HEBEI: _hashes(30)}

    async def go() -> None:
        async with opened(pg) as one, opened(pg) as two:
            await asyncio.gather(
                _import(one, peers, peers.signed(TIANJIN, lists[TIANJIN], day=NEXT_DAY)),
                _import(two, peers, peers.signed(HEBEI, lists[HEBEI], day=NEXT_DAY)),
            )
            part = tables.day_partition_name(ENTRIES.name, NEXT_DAY)
            assert await _rows_in(one, part) == _listed(TIANJIN, lists[TIANJIN]) | _listed(
                HEBEI, lists[HEBEI]
            )
            # Made already: nothing more to create, for either caller.
            assert await ensure_day_partitions(one, NEXT_DAY, (ENTRIES,)) == []

    asyncio.run(go())


def test_partitions_are_made_only_for_the_tables_asked(pg: str) -> None:
    """The authority import's call (the default) leaves the peers' lists alone;
    a table not partitioned by day is refused."""
    day = DAY + dt.timedelta(days=5)

    async def go() -> None:
        async with opened(pg) as db:
            made = await ensure_day_partitions(db, day)
            assert made == [
                tables.day_partition_name(t.name, day) for t in tables.AUTHORITY_IMPORT_TABLES
            ]
            assert await _relkind(db, tables.day_partition_name(ENTRIES.name, day)) is None
            assert await ensure_day_partitions(db, day, (ENTRIES,)) == [
                tables.day_partition_name(ENTRIES.name, day)
            ]
            with pytest.raises(ValueError, match="not partitioned"):
                await ensure_day_partitions(db, day, (tables.passes,))
            # Cleaned up here: the other tests' fixture only empties the peers' lists.
            async with db.begin() as conn:
                for table in tables.AUTHORITY_IMPORT_TABLES:
                    await drop_day_partitions_before(conn, table, dt.date.max)

    asyncio.run(go())


def test_partition_names_of_the_peers_lists() -> None:
    part = tables.day_partition_name(ENTRIES.name, DAY)
    assert part == "peer_status_entries_p20261126"
    assert tables.partition_day(part) == DAY
    assert tables.is_partition_name(part)
    assert tables.is_partition_name("peer_status_entries_default")
    assert tables.partition_day("peer_status_entries_default") is None
    assert not tables.is_partition_name(ENTRIES.name)
    assert not tables.is_partition_name("subject_peer_tokens_p20261126")


# --- the purge --------------------------------------------------------------------------------


def test_the_purge_drops_past_days_partitions_of_the_peers_lists(pg: str, peers: Peers) -> None:
    today, tomorrow, stray = _hashes(6), _hashes(2), _random.token_bytes(16)
    earlier = DAY - dt.timedelta(days=3)

    async def go() -> None:
        async with opened(pg) as db:
            await _import(db, peers, peers.signed(TIANJIN, today))
            await _import(db, peers, peers.signed(HEBEI, tomorrow, day=NEXT_DAY))
            # An earlier day's row without a partition (the default part holds it).
            async with db.begin() as conn:
                await conn.execute(
                    ENTRIES.insert().values(
                        day=earlier,
                        peer_region=HEBEI,
                        pair_hash=stray,
                        colour="yellow",
                        severity=Colour.YELLOW.severity,
                        imported_at=NOW,
                    )
                )
            summary = await purge_expired(db, now=dt.datetime(2026, 11, 27, 9, tzinfo=SHANGHAI))
            assert summary.deleted[ENTRIES.name] == 6 + 1
            assert await _relkind(db, tables.day_partition_name(ENTRIES.name, DAY)) is None
            next_part = tables.day_partition_name(ENTRIES.name, NEXT_DAY)
            assert await _relkind(db, next_part) == "r"
            assert await _rows_in(db, ENTRIES.name) == _listed(HEBEI, tomorrow)
            assert await _rows_in(db, f"{ENTRIES.name}_default") == set()

    asyncio.run(go())


# --- migration 0008 ---------------------------------------------------------------------------


def test_migration_0008_partitions_a_populated_database_and_reverts(
    postgres_url: str | None, peers: Peers
) -> None:
    if postgres_url is None:
        pytest.skip("PostgreSQL not reachable (set CI=true to make this a failure)")
    server = postgres_server_url()
    held = {day: _hashes(3) for day in (DAY, NEXT_DAY)}
    replacement = _hashes(2)
    rows_sql = f"SELECT * FROM {ENTRIES.name} ORDER BY day, pair_hash, peer_region"

    async def rows(db: Database) -> list[tuple[object, ...]]:
        async with db.begin() as conn:
            return [tuple(r) for r in await conn.execute(sa.text(rows_sql))]

    async def go() -> None:
        url = await create_postgres_database(server, "healthcode_mig8")
        try:
            async with opened(url) as db:
                assert await db.migrate("0007") == "0007"
                assert await _relkind(db, ENTRIES.name) == "r"
                await _insert_red(
                    db,
                    [
                        (day, peer, h)
                        for day, hashes in held.items()
                        for peer in (TIANJIN, HEBEI)
                        for h in hashes
                    ],
                )
                before = await rows(db)
                assert len(before) == 12

                assert await db.migrate() == head_revision()
                assert await _relkind(db, ENTRIES.name) == "p"
                assert await _relkind(db, f"{ENTRIES.name}_default") == "r"
                for day, hashes in held.items():
                    part = tables.day_partition_name(ENTRIES.name, day)
                    assert await _relkind(db, part) == "r"
                    assert await _rows_in(db, part) == _listed(TIANJIN, hashes) | _listed(
                        HEBEI, hashes
                    )
                assert await rows(db) == before
                # 0007's tables are left as they were.
                assert await _relkind(db, "status_entries") == "p"
                # A list on top replaces the migrated rows of its peer and day.
                await _import(db, peers, peers.signed(TIANJIN, replacement, Colour.YELLOW))
                after_import = await rows(db)
                assert len(after_import) == 12 - 3 + 2

                assert await db.downgrade("0007") == "0007"
                assert await _relkind(db, ENTRIES.name) == "r"
                assert await _relkind(db, f"{ENTRIES.name}_default") is None
                assert await _relkind(db, tables.day_partition_name(ENTRIES.name, DAY)) is None
                assert await _relkind(db, "status_entries") == "p"
                assert await rows(db) == after_import
                # The plain table takes rows (and refuses a second copy) as before.
                async with db.begin() as conn:
                    pk = await conn.scalar(
                        sa.text(
                            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                            "WHERE conname = 'pk_peer_status_entries'"
                        )
                    )
                assert pk == "PRIMARY KEY (day, pair_hash, peer_region)"

                assert await db.migrate() == head_revision()
                assert await rows(db) == after_import
        finally:
            await drop_postgres_database(server, url)

    asyncio.run(go())
