"""Status data sharing between two independent regions, on SQLite and PostgreSQL.

Tianjin (120000) and Beijing (110000) each have their own database, operator
secrets, key directory and trust list; they share only a pair key (agreed out
of band) and Beijing trusts Tianjin's issuer keys. Tianjin imports an
authority list, which stores each listed person's daily hash for Beijing;
it exports the signed list; Beijing, where the person enrolled (through the
real enrollment service, with a stand-in face plugin that accepts everyone:
faces are not what is tested here), imports it and the person resolves red
with the source ``peer:120000``. Neither database holds the number.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
from collections.abc import Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import cbor2
import pluggy
import pytest
import sqlalchemy as sa
from attrs import define
from support.faces import GREY_PHOTO, AcceptingFaces
from typer.testing import CliRunner

import healthcode.plugins.authority_status as authority_status
import healthcode.plugins.id_card as id_card
import healthcode.plugins.peer_status as peer_status
from healthcode.cli.trust import app as trust_app
from healthcode.core import hookspecs
from healthcode.core.clock import SHANGHAI
from healthcode.core.documents import make_submission
from healthcode.core.enrollment import (
    EnrollmentRequest,
    EnrollmentResult,
    EnrollmentService,
    LivenessAnswer,
)
from healthcode.core.models import (
    Colour,
    Subject,
)
from healthcode.core.passes import KeyStore, TrustStore, export_issuer
from healthcode.core.passes.codec import unwrap, wrap
from healthcode.core.passes.errors import StatusExportError
from healthcode.core.privacy import OperatorSecrets, canonical_document_key
from healthcode.core.status import import_status_rows, purge_expired, resolve_status
from healthcode.core.status.peer_tokens import configured_pair_keys, pair_hash, peer_token
from healthcode.core.status.sharing import STATUS_PREFIX, export_for_peer, import_from_peer
from healthcode.core.storage import tables
from healthcode.core.storage.database import Database, init_instance, open_database
from healthcode.core.storage.testing import (
    PostgresUnavailable,
    create_postgres_database,
    drop_postgres_database,
    dump_tables,
    postgres_server_url,
    truncate_all,
)
from healthcode.testing.resident_id import random_resident_id

T = TypeVar("T")

NOW = dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC)
"""10:00 in Shanghai."""
DAY = dt.date(2026, 11, 26)
NEXT_DAY = dt.datetime(2026, 11, 27, 0, 30, tzinfo=SHANGHAI)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture
def pm() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(id_card, name="id_card")
    manager.register(AcceptingFaces(), name="accepting_faces")
    manager.register(authority_status, name="authority_status")
    manager.register(peer_status, name="peer_status")
    manager.check_pending()
    return manager


# --- two (or three) independent regions ----------------------------------------------


@define
class Region:
    code: str
    root: Path
    url: str
    keys: KeyStore
    trust_store: TrustStore

    @property
    def secrets_file(self) -> Path:
        return self.root / "secrets.json"

    async def open(self) -> tuple[Database, OperatorSecrets]:
        return await open_database(self.url, self.secrets_file)


REGIONS = (("120000", "天津市"), ("110000", "北京市"), ("130000", "河北省"))


def _unreachable(exc: BaseException) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required under CI and is unreachable: {exc}")


@pytest.fixture(scope="module")
def postgres_urls() -> Iterator[dict[str, str] | None]:
    """One throwaway database per region for the module (emptied per test)."""
    server = postgres_server_url()
    urls: dict[str, str] = {}
    try:
        for code, _ in REGIONS:
            urls[code] = run(create_postgres_database(server, "healthcode_share"))
    except (PostgresUnavailable, OSError, TimeoutError) as exc:
        _unreachable(exc)
        yield None
        return
    except Exception as exc:
        if not type(exc).__module__.startswith("asyncpg"):
            raise
        _unreachable(exc)
        yield None
        return
    try:
        yield urls
    finally:
        for url in urls.values():
            run(drop_postgres_database(server, url))


async def _empty(url: str) -> None:
    db = Database(url)
    try:
        await db.migrate()
        await truncate_all(db)
    finally:
        await db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def regions(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_urls: dict[str, str] | None
) -> dict[str, Region]:
    """Tianjin, Beijing and Hebei, each with its own database, secrets and keys."""
    if request.param == "postgresql" and postgres_urls is None:
        pytest.skip("PostgreSQL not reachable (set CI=true to make this a failure)")
    made: dict[str, Region] = {}
    for code, name in REGIONS:
        root = tmp_path / code
        root.mkdir()
        if postgres_urls is None or request.param == "sqlite":
            url = f"sqlite:///{root / 'hc.db'}"
        else:
            url = postgres_urls[code]
            run(_empty(url))
        run(init_instance(url, root / "secrets.json"))
        keys = KeyStore(root / "keys")
        keys.init(code, name, now=NOW)
        made[code] = Region(code, root, url, keys, TrustStore(root / "trust.hct", keys))
    # Beijing trusts Tianjin (not Hebei); the pair key is agreed out of band.
    made["110000"].trust_store.add(export_issuer(made["120000"].keys, NOW), NOW)
    pair_key = made["120000"].keys.pair_key("110000", create=True)
    made["110000"].keys.set_pair_key("120000", pair_key)
    made["120000"].keys.pair_key("130000", create=True)
    # Hebei keeps a key "for Beijing" of its own: Beijing has none with it.
    made["130000"].keys.pair_key("110000", create=True)
    return made


@pytest.fixture
def numbers() -> list[str]:
    rng = random.Random(20261127)
    return [random_resident_id(rng) for _ in range(4)]


# --- helpers ---------------------------------------------------------------------------


def csv_lines(rows: Sequence[tuple[str, str]]) -> list[str]:
    return ["kind,number,status\n", *(f"cn_resident_id,{n},{s}\n" for n, s in rows)]


async def authority_import(
    region: Region, pm: pluggy.PluginManager, rows: Sequence[tuple[str, str]]
) -> None:
    db, secrets = await region.open()
    try:
        await import_status_rows(
            db,
            secrets,
            csv_lines(rows),
            day=DAY,
            fmt="csv",
            pm=pm,
            peer_keys=lambda: configured_pair_keys(region.keys),
        )
    finally:
        await db.dispose()


async def export(region: Region, peer: str) -> str:
    db, _ = await region.open()
    try:
        result = await export_for_peer(db, region.keys.active(), peer_region=peer, day=DAY, now=NOW)
    finally:
        await db.dispose()
    return result.text


async def enroll(
    region: Region, pm: pluggy.PluginManager, number: str, *, with_peer_keys: bool = True
) -> EnrollmentResult:
    """The real enrollment service; pair keys are read from the key directory."""
    db, secrets = await region.open()
    try:
        service = EnrollmentService(
            db,
            secrets,
            pm,
            peer_keys=(lambda: configured_pair_keys(region.keys)) if with_peer_keys else None,
        )
        challenge = await service.issue_challenge(actions=["blink"], now=NOW)
        submission, warnings = make_submission(number=number)
        return await service.enroll(
            EnrollmentRequest(
                submission=submission,
                declared_name="张伟",
                liveness=LivenessAnswer(challenge.nonce, [GREY_PHOTO]),
                capture=GREY_PHOTO,
                warnings=tuple(warnings),
            ),
            now=NOW,
        )
    finally:
        await db.dispose()


async def status_of(
    region: Region, pm: pluggy.PluginManager, subject: Subject, now: dt.datetime = NOW
) -> tuple[Colour, tuple[str, ...]]:
    db, _ = await region.open()
    try:
        status = await resolve_status(db, subject, now=now, pm=pm, record=False)
    finally:
        await db.dispose()
    return status.colour, status.sources


async def peer_import(region: Region, text: str) -> dict[str, Any]:
    db, _ = await region.open()
    try:
        summary = await import_from_peer(
            db, text, region.trust_store.load(NOW), our_region=region.code, now=NOW
        )
    finally:
        await db.dispose()
    return summary.as_dict()


async def count(region: Region, table: sa.Table) -> int:
    db, _ = await region.open()
    try:
        async with db.begin() as conn:
            return int(
                (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()
            )
    finally:
        await db.dispose()


async def all_cells(region: Region) -> list[Any]:
    db, _ = await region.open()
    try:
        dump = await dump_tables(db)
    finally:
        await db.dispose()
    return [cell for rows in dump.values() for row in rows for cell in row]


def tamper(text: str) -> str:
    """The same signed list with its payload altered (one hash's colour), signature kept."""
    tag = cbor2.loads(unwrap(STATUS_PREFIX, text, max_size=1 << 24))
    protected, unprotected, payload, signature = tag.value
    body = cbor2.loads(payload)
    body[6] = [[h, "yellow"] for h, _ in body[6]]
    forged = cbor2.CBORTag(tag.tag, [protected, unprotected, cbor2.dumps(body), signature])
    return wrap(STATUS_PREFIX, cbor2.dumps(forged))


# --- tests -------------------------------------------------------------------------------


def test_a_peer_list_makes_an_enrolled_person_red_without_any_number_stored(
    regions: dict[str, Region], pm: pluggy.PluginManager, numbers: list[str]
) -> None:
    tianjin, beijing = regions["120000"], regions["110000"]
    listed, yellow, unlisted, _ = numbers
    person = run(enroll(beijing, pm, listed))
    other = run(enroll(beijing, pm, unlisted))
    assert run(count(beijing, tables.subject_peer_tokens)) == 2

    run(authority_import(tianjin, pm, [(listed, "red"), (yellow, "yellow")]))
    # One hash per listed person and per peer with a pair key (110000 and 130000).
    assert run(count(tianjin, tables.peer_status_exports)) == 4
    text = run(export(tianjin, "110000"))
    assert text.startswith(STATUS_PREFIX)

    assert run(status_of(beijing, pm, person.subject))[0] is Colour.GREEN
    summary = run(peer_import(beijing, text))
    assert summary == {
        "peer": "120000",
        "day": DAY.isoformat(),
        "red": 1,
        "yellow": 1,
        "valid_until": "2026-11-26T16:00:00+00:00",
        "matchable_documents": 2,
    }
    colour, sources = run(status_of(beijing, pm, person.subject))
    assert colour is Colour.RED
    assert sources == ("peer:120000",)
    assert run(status_of(beijing, pm, other.subject)) == (Colour.GREEN, ())

    # Importing the same list again replaces, it does not add.
    run(peer_import(beijing, text))
    assert run(count(beijing, tables.peer_status_entries)) == 2

    # Privacy by construction: no table of either region holds a number, in
    # any form (text, bytes, or the canonical key the hashes are made from).
    for region in (tianjin, beijing):
        cells = run(all_cells(region))
        for number in numbers:
            canonical = canonical_document_key("cn_resident_id", "CHN", number)
            for cell in cells:
                if isinstance(cell, bytes | bytearray | memoryview):
                    raw = bytes(cell)
                    assert number.encode() not in raw and canonical not in raw
                else:
                    assert number not in str(cell)


def test_refused_lists_change_nothing(
    regions: dict[str, Region], pm: pluggy.PluginManager, numbers: list[str]
) -> None:
    tianjin, beijing, hebei = regions["120000"], regions["110000"], regions["130000"]
    listed = numbers[0]
    person = run(enroll(beijing, pm, listed))
    run(authority_import(tianjin, pm, [(listed, "red")]))
    run(authority_import(hebei, pm, [(listed, "red")]))

    refusals = {
        # Tianjin's list for Hebei, handed to Beijing.
        "status_export_not_for_us": run(export(tianjin, "130000")),
        # Tianjin's list for Beijing with its colours altered after signing.
        "status_export_bad_signature": tamper(run(export(tianjin, "110000"))),
        # Hebei is not in Beijing's trust list.
        "status_export_untrusted_signer": run(export(hebei, "110000")),
        "status_export_invalid": STATUS_PREFIX + "garbage",
    }
    for code, text in refusals.items():
        with pytest.raises(StatusExportError) as err:
            run(peer_import(beijing, text))
        assert err.value.code == code
    assert run(count(beijing, tables.peer_status_entries)) == 0
    assert run(status_of(beijing, pm, person.subject))[0] is Colour.GREEN


def test_enrolled_before_the_pair_key_needs_a_new_enrollment(
    regions: dict[str, Region], pm: pluggy.PluginManager, numbers: list[str]
) -> None:
    """The documented limitation: no document, no token."""
    tianjin, beijing = regions["120000"], regions["110000"]
    listed = numbers[0]
    early = run(enroll(beijing, pm, listed, with_peer_keys=False))
    assert run(count(beijing, tables.subject_peer_tokens)) == 0
    run(authority_import(tianjin, pm, [(listed, "red")]))
    run(peer_import(beijing, run(export(tianjin, "110000"))))
    assert run(status_of(beijing, pm, early.subject))[0] is Colour.GREEN
    again = run(enroll(beijing, pm, listed))
    assert again.outcome == "updated"
    assert run(count(beijing, tables.subject_peer_tokens)) == 1
    assert run(status_of(beijing, pm, early.subject)) == (Colour.RED, ("peer:120000",))


def test_shared_rows_end_with_their_day(
    regions: dict[str, Region], pm: pluggy.PluginManager, numbers: list[str]
) -> None:
    tianjin, beijing = regions["120000"], regions["110000"]
    listed = numbers[0]
    person = run(enroll(beijing, pm, listed))
    run(authority_import(tianjin, pm, [(listed, "red")]))
    run(peer_import(beijing, run(export(tianjin, "110000"))))

    async def purge(region: Region) -> dict[str, int]:
        db, _ = await region.open()
        try:
            return dict((await purge_expired(db, now=NEXT_DAY)).deleted)
        finally:
            await db.dispose()

    assert run(purge(tianjin))["peer_status_exports"] == 2
    assert run(purge(beijing))["peer_status_entries"] == 1
    # The day after: green again; the stable token stays for the next list.
    assert run(status_of(beijing, pm, person.subject, NEXT_DAY))[0] is Colour.GREEN
    assert run(count(beijing, tables.subject_peer_tokens)) == 1


def test_cli_export_and_import(
    regions: dict[str, Region], pm: pluggy.PluginManager, numbers: list[str], tmp_path: Path
) -> None:
    tianjin, beijing = regions["120000"], regions["110000"]
    listed = numbers[0]
    person = run(enroll(beijing, pm, listed))
    run(authority_import(tianjin, pm, [(listed, "red")]))
    runner = CliRunner()
    out = tmp_path / "list.hcs"

    def common(region: Region) -> list[str]:
        return [
            "--keys-dir",
            str(region.keys.path),
            "--database",
            region.url,
            "--secrets-file",
            str(region.secrets_file),
            "--now",
            NOW.isoformat(),
            "--json",
        ]

    exported = runner.invoke(
        trust_app,
        [
            "export-status",
            "--peer",
            "110000",
            "--day",
            DAY.isoformat(),
            "-o",
            str(out),
            *common(tianjin),
        ],
    )
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.stdout) == {
        "ok": True,
        "peer": "110000",
        "day": DAY.isoformat(),
        "red": 1,
        "yellow": 0,
    }
    # No pair key with this region: refused rather than an empty list.
    refused = runner.invoke(trust_app, ["export-status", "--peer", "440000", *common(tianjin)])
    assert refused.exit_code != 0
    assert json.loads(refused.stdout)["error"]["code"] == "pair_key_missing"
    # The peer code names a key file: anything but a region code is a usage error.
    bad = runner.invoke(trust_app, ["export-status", "--peer", "../keys", *common(tianjin)])
    assert bad.exit_code == 2

    imported = runner.invoke(
        trust_app,
        [
            "import-status",
            str(out),
            "--trust-file",
            str(beijing.trust_store.path),
            *common(beijing),
        ],
    )
    assert imported.exit_code == 0, imported.output
    payload = json.loads(imported.stdout)
    assert (payload["peer"], payload["red"], payload["passes_revoked"]) == ("120000", 1, 0)
    assert run(status_of(beijing, pm, person.subject))[0] is Colour.RED


def test_hashes_are_per_day_and_per_pair() -> None:
    canonical = canonical_document_key("cn_resident_id", "CHN", "11010519491231002X")
    key_a, key_b = b"a" * 32, b"b" * 32
    token = peer_token(key_a, canonical)
    assert len(token) == 32 and len(pair_hash(token, DAY)) == 16
    # Stable for a pair (what enrollment stores) ...
    assert token == peer_token(key_a, canonical)
    # ... but the daily hashes of one person are unlinkable across days, and
    # another pair's hashes differ too.
    assert pair_hash(token, DAY) != pair_hash(token, DAY + dt.timedelta(days=1))
    assert pair_hash(token, DAY) != pair_hash(peer_token(key_b, canonical), DAY)
