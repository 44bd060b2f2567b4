"""Holder-signed requests through a test client, as a phone sends them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from healthcode.core.auth import sign_request
from healthcode.core.passes import HolderDevice
from healthcode.core.storage import tables
from healthcode.core.storage.database import Database


async def signed_multipart(
    client: AsyncTestClient[Litestar],
    device: HolderDevice,
    subject_id: str,
    path: str,
    data: dict[str, str],
    files: list[Any],
) -> Any:
    """A holder-signed multipart POST: the signature covers the exact body."""
    request = client.build_request("POST", path, data=data, files=files)
    body = request.read()
    request.headers["authorization"] = sign_request(
        device.private_key, subject_id, "POST", path, body
    )
    return await client.send(request)


async def insert_subject(
    db: Database,
    key: bytes,
    device: HolderDevice,
    *,
    kind: str = "passport",
    masked_name: str = "QUARTERMAINE",
    masked_number: str = "Q7****21",
) -> None:
    """A subject bound to ``device``, written straight into the database: for
    tests of what comes after enrollment (the face work of enrollment is
    covered by tests/test_api_flows.py)."""
    now = dt.datetime.now(dt.UTC)
    async with db.begin() as conn:
        await conn.execute(
            tables.subjects.insert().values(
                subject_key=key,
                kind=kind,
                masked_name=masked_name,
                masked_number=masked_number,
                device_public_key=device.public_key_der,
                created_at=now,
                updated_at=now,
            )
        )
