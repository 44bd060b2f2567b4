"""``healthcode serve``: the HTTP service (Litestar under uvicorn)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from healthcode.cli.errors import fail
from healthcode.cli.options import DatabaseUrlOption, SecretsOption
from healthcode.core.errors import HealthcodeError

if TYPE_CHECKING:
    from healthcode.core.storage.database import InitResult


def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1, max=64)] = 1,
    database_url: DatabaseUrlOption = None,
    secrets_file: SecretsOption = None,
    region: Annotated[
        str, typer.Option(help="Region code (GB/T 2260) for a new issuer key store.")
    ] = "110000",
    region_name: Annotated[str, typer.Option(help="Region name for a new key store.")] = "北京市",
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Set up the database and secrets if needed, then serve the API.

    Every worker reads its settings from the environment, so they all use the
    same database; migrations run once here, before the workers start.
    """
    import uvicorn

    if database_url:
        os.environ["HEALTHCODE_DATABASE_URL"] = database_url
    if secrets_file:
        os.environ["HEALTHCODE_SECRETS_FILE"] = str(secrets_file)
    result = _set_up(database_url, secrets_file, region, region_name)
    typer.echo(
        f"healthcode: {result.backend} database ready (schema {result.revision}); "
        f"serving on http://{host}:{port} (API docs: /schema)",
        err=True,
    )
    # Workers migrate nothing: set-up just did it.
    os.environ.setdefault("HEALTHCODE_MIGRATE_ON_START", "0")
    uvicorn.run(
        "healthcode.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        proxy_headers=False,
        timeout_keep_alive=5,
    )


def _set_up(
    database_url: str | None, secrets_file: Path | None, region: str, region_name: str
) -> InitResult:
    """Create or migrate the database and the secrets; on first start, an issuer
    key for this region, so passes can be signed (`healthcode keys init` does
    the same with more choices)."""
    from healthcode.core.passes import KeyStore
    from healthcode.core.storage.database import init_instance

    try:
        result = asyncio.run(init_instance(database_url, secrets_file))
        keys = KeyStore()
        if not keys.exists():
            keys.init(region, region_name)
            typer.echo(f"healthcode: issuer key created for region {region}", err=True)
    except HealthcodeError as exc:
        fail(exc, as_json=False)
    return result
