"""The daily rollover (issue 16, the operator's day): at 24:00 Asia/Shanghai
the day's purge runs and is logged once, in one summary line with counts,
however many workers run; a start after a missed 24:00 catches up and says so.

The clock is the test's own (``clock``), moved past 24:00; the server's
rollover task follows the wall clock, looked at every few milliseconds here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import time_machine
from litestar import Litestar
from litestar.testing import AsyncTestClient

import healthcode.api.app as app_module
from healthcode.api.app import create_app
from healthcode.api.settings import Settings
from healthcode.core.clock import SHANGHAI
from healthcode.core.passes import HolderDevice, KeyStore
from healthcode.core.privacy import document_key, load_secrets, subject_id_hex
from healthcode.core.status import import_status_rows
from healthcode.core.status.purge import roll_over
from healthcode.core.storage import tables
from healthcode.core.storage.database import Database, init_instance
from healthcode.testing.resident_id import random_resident_id

NUMBER = "11010519491231002X"
MIDNIGHT = dt.datetime(2026, 11, 27, 0, 0, tzinfo=SHANGHAI)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setattr(app_module, "ROLLOVER_POLL_SECONDS", 0.01)
    url = f"sqlite:///{tmp_path / 'hc.db'}"
    asyncio.run(init_instance(url, tmp_path / "secrets.json"))
    KeyStore(tmp_path / "keys").init("110000", "北京市")
    return Settings(
        database_url=url,
        secrets_file=tmp_path / "secrets.json",
        keys_dir=tmp_path / "keys",
        trust_file=tmp_path / "trust.hct",
        run_purge=True,
    )


async def _todays_data(settings: Settings, today: dt.date) -> None:
    """Two status entries for today and one holder with a pass valid until 24:00."""
    db = Database(settings.database_url)
    secrets = load_secrets(settings.secrets_file)
    try:
        await import_status_rows(
            db,
            secrets,
            [
                "kind,number,status",
                f"cn_resident_id,{NUMBER},yellow",
                f"cn_resident_id,{random_resident_id(random.Random(7))},red",
            ],
            day=today,
            fmt="csv",
        )
    finally:
        await db.dispose()


async def _issue_pass(client: AsyncTestClient[Litestar]) -> None:
    services = client.app.state.services
    key = document_key(services.secrets, "cn_resident_id", "CHN", "110101199003074477")
    now = dt.datetime.now(dt.UTC)
    async with services.db.begin() as conn:
        await conn.execute(
            tables.subjects.insert().values(
                subject_key=key,
                kind="cn_resident_id",
                masked_name="张",
                masked_number="11**************77",
                device_public_key=HolderDevice.generate("ES256").public_key_der,
                created_at=now,
                updated_at=now,
            )
        )
    await services.passes.issue(subject_id_hex(key))


def _rollover_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("day rollover:")]


async def _until(condition: Callable[[], Any], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the rollover did not happen"
        await asyncio.sleep(0.01)


@pytest.mark.anyio
async def test_24_00_is_logged_once_with_counts_by_one_of_several_workers(
    settings: Settings,
    clock: time_machine.Coordinates,
    caplog: pytest.LogCaptureFixture,
    today: dt.date,
) -> None:
    caplog.set_level(logging.INFO, logger="healthcode")
    await _todays_data(settings, today)
    async with (
        AsyncTestClient(create_app(settings)) as first,
        AsyncTestClient(create_app(settings)) as second,
    ):
        await _issue_pass(first)
        # A first start on a fresh day has nothing to say.
        assert _rollover_lines(caplog) == []
        clock.move_to(MIDNIGHT - dt.timedelta(seconds=2))
        await asyncio.sleep(0.2)
        assert _rollover_lines(caplog) == []

        clock.move_to(MIDNIGHT + dt.timedelta(seconds=1.5))
        await _until(lambda: _rollover_lines(caplog))
        await asyncio.sleep(0.3)  # the other worker has rolled over too by now
        assert second.app.state.services is not first.app.state.services

    (line,) = _rollover_lines(caplog)
    text = line.getMessage()
    assert text.startswith("day rollover: 2026-11-27 began (Asia/Shanghai); passes expired 1,")
    # Today's two list entries and the decision the pass was issued on.
    assert "day-scoped rows purged 3 (status_entries 2, status_decisions 1," in text
    assert "new day: status entries 0, passes valid 0" in text
    assert line.rollover["deleted"]["passes"] == 1  # type: ignore[attr-defined]
    assert NUMBER not in text and "张" not in text
    assert not [r for r in caplog.records if "purge before" in r.getMessage()]


@pytest.mark.anyio
async def test_a_start_after_a_missed_24_00_catches_up_and_says_so(
    settings: Settings,
    clock: time_machine.Coordinates,
    caplog: pytest.LogCaptureFixture,
    today: dt.date,
) -> None:
    caplog.set_level(logging.INFO, logger="healthcode")
    await _todays_data(settings, today)
    async with AsyncTestClient(create_app(settings)):
        pass
    clock.move_to(MIDNIGHT + dt.timedelta(hours=7))  # the service was down at 24:00
    async with AsyncTestClient(create_app(settings)):
        (line,) = _rollover_lines(caplog)
    assert "day-scoped rows purged 2" in line.getMessage()
    assert line.getMessage().endswith("(at start: the service was not running at 24:00)")
    # A later start the same day has nothing to say.
    async with AsyncTestClient(create_app(settings)):
        assert len(_rollover_lines(caplog)) == 1


@pytest.mark.anyio
async def test_each_day_is_claimed_once(settings: Settings, today: dt.date) -> None:
    db = Database(settings.database_url)
    try:
        at_ten = dt.datetime.combine(today, dt.time(10), SHANGHAI)
        first = await roll_over(db, now=at_ten)
        assert first is not None and first.day == today and not first.deleted_any
        assert await roll_over(db, now=at_ten + dt.timedelta(hours=1)) is None
        racing = await asyncio.gather(*(roll_over(db, now=MIDNIGHT) for _ in range(4)))
        assert [r is not None for r in racing].count(True) == 1
        # A clock set back does not roll over again.
        assert await roll_over(db, now=at_ten) is None
    finally:
        await db.dispose()
