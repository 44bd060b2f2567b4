"""A holder's status look-up (``GET /me/status``) reuses the day's decision
that its worker made earlier, through the real API (AsyncTestClient): the
decision is asked of the status sources once, an authority import is seen by
the very next look-up (at this worker and at another worker sharing the
database), a document linked at enrollment is seen too, and a decision never
outlives its day (24:00 Asia/Shanghai, on the test clock).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pluggy
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from support.instances import sqlite_instance

from healthcode.api.app import create_app
from healthcode.api.settings import Settings
from healthcode.core.auth import create_token, sign_request
from healthcode.core.clock import SHANGHAI
from healthcode.core.hookspecs import hookimpl
from healthcode.core.models import StatusContribution, Subject
from healthcode.core.passes import HolderDevice
from healthcode.core.privacy import document_key, load_secrets, subject_id_hex
from healthcode.core.status import StatusEntries
from healthcode.core.storage import tables
from healthcode.core.storage.database import Database

NUMBER = "Q7654321"
OTHER_NUMBER = "Q7650001"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class CountingSource:
    """A status source that reports nothing and counts how often it is asked."""

    def __init__(self) -> None:
        self.asked = 0

    @hookimpl
    def healthcode_resolve_status(
        self, subject: Subject, day: dt.date, entries: StatusEntries
    ) -> StatusContribution | None:
        self.asked += 1
        return None


@pytest.fixture
def counting(pm: pluggy.PluginManager) -> Iterator[CountingSource]:
    source = CountingSource()
    pm.register(source, name="counting_source")
    yield source
    pm.unregister(source)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return sqlite_instance(tmp_path)


class Node:
    """What a test does against the service: one or more workers (apps) sharing
    one database, a holder written through storage, an admin token."""

    def __init__(self, settings: Settings, workers: list[AsyncTestClient[Litestar]]) -> None:
        self.settings = settings
        self.workers = workers
        self.device = HolderDevice.generate("ES256")
        self.secrets = load_secrets(settings.secrets_file)
        self.key = document_key(self.secrets, "passport", "GBR", NUMBER)
        self.subject_id = subject_id_hex(self.key)
        self.admin = ""

    async def setup(self) -> None:
        db = Database(self.settings.database_url)
        try:
            now = dt.datetime.now(dt.UTC)
            async with db.begin() as conn:
                await conn.execute(
                    tables.subjects.insert().values(
                        subject_key=self.key,
                        kind="passport",
                        masked_name="QUARTERMAINE",
                        masked_number="Q7****21",
                        device_public_key=self.device.public_key_der,
                        created_at=now,
                        updated_at=now,
                    )
                )
                await conn.execute(
                    tables.subject_documents.insert().values(
                        document_key=self.key, subject_key=self.key, kind="passport", created_at=now
                    )
                )
            self.admin = await create_token(db, "admin", "operator")
        finally:
            await db.dispose()

    async def colour(self, worker: int = 0) -> dict[str, Any]:
        header = sign_request(self.device.private_key, self.subject_id, "GET", "/me/status")
        response = await self.workers[worker].get("/me/status", headers={"authorization": header})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def import_list(self, rows: str, *, day: dt.date, worker: int = 0) -> None:
        listing = f"kind,number,issuing_state,status\n{rows}".encode()
        response = await self.workers[worker].post(
            "/admin/status-imports",
            data={"day": day.isoformat()},
            files=[("file", ("list.csv", listing, "text/csv"))],
            headers={"authorization": f"Bearer {self.admin}"},
        )
        assert response.status_code == 201, response.text

    async def link_listed_document(self) -> None:
        """What a re-enrollment with a second passport writes: the document is
        linked to the subject and the subject row updated."""
        db = Database(self.settings.database_url)
        other = document_key(self.secrets, "passport", "GBR", OTHER_NUMBER)
        try:
            now = dt.datetime.now(dt.UTC)
            async with db.begin() as conn:
                await conn.execute(
                    tables.subject_documents.insert().values(
                        document_key=other, subject_key=self.key, kind="passport", created_at=now
                    )
                )
                await conn.execute(
                    tables.subjects.update()
                    .where(tables.subjects.c.subject_key == self.key)
                    .values(updated_at=now)
                )
        finally:
            await db.dispose()


def shanghai_day() -> dt.date:
    return dt.datetime.now(dt.UTC).astimezone(SHANGHAI).date()


async def _node(settings: Settings, pm: pluggy.PluginManager, workers: int) -> AsyncIterator[Node]:
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                AsyncTestClient(create_app(settings, plugin_manager=pm))
            )
            for _ in range(workers)
        ]
        node = Node(settings, clients)
        await node.setup()
        yield node


@pytest.fixture
async def node(settings: Settings, pm: pluggy.PluginManager) -> AsyncIterator[Node]:
    async for n in _node(settings, pm, 1):
        yield n


@pytest.fixture
async def two_workers(settings: Settings, pm: pluggy.PluginManager) -> AsyncIterator[Node]:
    async for n in _node(settings, pm, 2):
        yield n


@pytest.mark.anyio
async def test_repeated_lookups_ask_the_status_sources_once(
    node: Node, counting: CountingSource
) -> None:
    for _ in range(3):
        assert (await node.colour())["colour"] == "green"
    assert counting.asked == 1


@pytest.mark.anyio
async def test_an_import_is_seen_by_the_next_lookup(node: Node, counting: CountingSource) -> None:
    assert (await node.colour())["colour"] == "green"
    await node.import_list(f"passport,{NUMBER},GBR,red\n", day=shanghai_day())
    assert (await node.colour())["colour"] == "red"
    assert counting.asked == 2
    # A list that no longer names the holder (the source's list is replaced).
    await node.import_list(f"passport,{OTHER_NUMBER},GBR,yellow\n", day=shanghai_day())
    assert (await node.colour())["colour"] == "green"
    assert counting.asked == 3


@pytest.mark.anyio
async def test_an_import_at_one_worker_is_seen_by_the_other_at_once(two_workers: Node) -> None:
    # Both workers have decided "green" for today.
    assert (await two_workers.colour(0))["colour"] == "green"
    assert (await two_workers.colour(1))["colour"] == "green"
    await two_workers.import_list(f"passport,{NUMBER},GBR,yellow\n", day=shanghai_day(), worker=0)
    assert (await two_workers.colour(1))["colour"] == "yellow"
    assert (await two_workers.colour(0))["colour"] == "yellow"


@pytest.mark.anyio
async def test_a_document_linked_later_is_seen_by_the_next_lookup(node: Node) -> None:
    # The second passport is listed before its holder links it.
    await node.import_list(f"passport,{OTHER_NUMBER},GBR,red\n", day=shanghai_day())
    assert (await node.colour())["colour"] == "green"
    await node.link_listed_document()
    assert (await node.colour())["colour"] == "red"


@pytest.mark.anyio
async def test_a_cached_decision_never_outlives_its_day(
    node: Node, counting: CountingSource, clock: Any
) -> None:
    today = shanghai_day()
    tomorrow = today + dt.timedelta(days=1)
    # Tomorrow's list names the holder; today's does not.
    await node.import_list(f"passport,{NUMBER},GBR,red\n", day=tomorrow)
    clock.move_to(dt.datetime.combine(today, dt.time(23, 59, 50), tzinfo=SHANGHAI))
    before = await node.colour()
    assert before["colour"] == "green"
    assert dt.datetime.fromisoformat(before["valid_until"]) == dt.datetime.combine(
        tomorrow, dt.time(0, 0), tzinfo=SHANGHAI
    )
    assert (await node.colour())["colour"] == "green"
    asked = counting.asked
    # Past 24:00 Shanghai, with no import in between: the next look-up decides afresh.
    clock.move_to(dt.datetime.combine(tomorrow, dt.time(0, 0, 5), tzinfo=SHANGHAI))
    after = await node.colour()
    assert after["colour"] == "red"
    assert dt.datetime.fromisoformat(after["valid_until"]) == dt.datetime.combine(
        tomorrow + dt.timedelta(days=1), dt.time(0, 0), tzinfo=SHANGHAI
    )
    assert counting.asked == asked + 1
