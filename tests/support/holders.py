"""Holder-signed requests through a test client, as a phone sends them."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from healthcode.core.auth import sign_request
from healthcode.core.passes import HolderDevice


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
