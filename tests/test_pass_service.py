"""The pass service's online revocation view: an in-memory set of revoked pass
ids, brought up to date incrementally (every worker within a second); and the
online verification built on it."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from support.passes import Instance, at

from healthcode.core.passes import HolderDevice, KeyStore
from healthcode.core.passes import service as pass_service
from healthcode.core.passes.service import PassService
from healthcode.core.passes.verification import VerificationService
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


def test_online_verification_refuses_own_revocations_and_a_second_showing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service's verdict: the offline checks, then this region's own
    revocations, then one use per live code (``VerificationService``)."""
    url = f"sqlite:///{tmp_path / 'hc.db'}"
    asyncio.run(init_instance(url, tmp_path / "secrets.json"))
    beijing = Instance.create(tmp_path, "110000", "北京市")
    device = HolderDevice.generate()
    issued = beijing.issue(device)
    monkeypatch.setattr(pass_service, "REVOCATION_REFRESH_S", 0.0)

    async def go() -> None:
        db = Database(url)
        try:
            online = VerificationService(
                db, beijing.keys, beijing.trust_store, PassService(db, beijing.keys)
            )
            shown = device.present(issued.text, at(1))
            accepted = await online.verify(shown, now=at(2))
            assert accepted.ok and accepted.issuer == "110000"
            again = await online.verify(shown, now=at(3))
            assert (again.ok, again.code) == (False, "presentation_replayed")
            assert (await online.verify("HCP1:nonsense", now=at(3))).code == "malformed_pass"
            await _revoke(db, issued.claims.pass_id, at(4))
            refused = await online.verify(device.present(issued.text, at(5)), now=at(6))
            assert (refused.ok, refused.code) == (False, "revoked")
        finally:
            await db.dispose()

    asyncio.run(go())
