"""The pass service's online revocation view: an in-memory set of revoked pass
ids, brought up to date incrementally (every worker within a second)."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from healthcode.core import pass_service
from healthcode.core.pass_service import PassService
from healthcode.core.passes import KeyStore
from healthcode.core.storage import tables
from healthcode.core.storage.database import Database, init_instance

NOW = dt.datetime(2026, 11, 26, 4, 0, tzinfo=dt.UTC)


async def _revoke(db: Database, pass_id: bytes, at: dt.datetime) -> None:
    async with db.begin() as conn:
        await conn.execute(
            tables.revocations.insert().values(
                pass_id=pass_id,
                issuer_kid=b"k" * 8,
                reason="status_worsened",
                revoked_at=at,
                valid_until=at + dt.timedelta(hours=12),
            )
        )


def test_revocations_reach_another_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'hc.db'}"
    asyncio.run(init_instance(url, tmp_path / "secrets.json"))
    keys = KeyStore(tmp_path / "keys")
    first, second, third = b"\x01" * 16, b"\x02" * 16, b"\x03" * 16

    async def go() -> None:
        db = Database(url)
        try:
            await _revoke(db, first, NOW)
            worker = PassService(db, keys)  # another worker's view
            assert await worker.is_revoked(first)
            assert not await worker.is_revoked(second)
            await _revoke(db, second, NOW + dt.timedelta(seconds=5))
            # Within the refresh interval the view may be stale...
            monkeypatch.setattr(pass_service, "REVOCATION_REFRESH_S", 3600.0)
            assert not await worker.is_revoked(second)
            # ...and once it has passed, the new revocation is seen.
            monkeypatch.setattr(pass_service, "REVOCATION_REFRESH_S", 0.0)
            assert await worker.is_revoked(second)
            assert not await worker.is_revoked(third)
            # Expired passes leave the view with the purge.
            deleted = await worker.purge(now=NOW + dt.timedelta(days=1))
            assert deleted["revocations"] == 2
            assert not await worker.is_revoked(first)
        finally:
            await db.dispose()

    asyncio.run(go())
