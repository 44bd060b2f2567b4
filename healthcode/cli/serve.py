"""``healthcode serve``: the HTTP service (Litestar under uvicorn).

Quiet by design: a first start says what it created and where, a later start
says one line ("serving on ..."); everything after is the log, in one format
(``healthcode.logs``: text, or JSON lines with ``--log-format json``).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from healthcode.cli.errors import fail
from healthcode.cli.options import DatabaseUrlOption, SecretsOption
from healthcode.core.errors import HealthcodeError
from healthcode.logs import LOG_FORMAT_ENV, SETUP_LOGGER, configure_logging

if TYPE_CHECKING:
    from healthcode.core.storage.database import InitResult

log = logging.getLogger(SETUP_LOGGER)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client's multiprocess directory (see ``healthcode.api.metrics``)."""


class LogFormatName(enum.StrEnum):
    text = "text"
    json = "json"


class LogLevelName(enum.StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


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
    log_level: Annotated[
        LogLevelName, typer.Option(case_sensitive=False, help="Log level, for every logger.")
    ] = LogLevelName.info,
    log_format: Annotated[
        LogFormatName,
        typer.Option(
            envvar=LOG_FORMAT_ENV,
            case_sensitive=False,
            help="Log format: text (UTC time, level, logger, message) or json (one object a line).",
        ),
    ] = LogFormatName.text,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Accept `healthcode demo` enrollments (synthetic documents). Never on an "
            "instance that serves people.",
        ),
    ] = False,
    redis_url: Annotated[
        str | None,
        typer.Option(
            envvar="HEALTHCODE_REDIS_URL",
            help="Redis shared by several nodes (redis://127.0.0.1:6379/0): rate limits, "
            "used live codes and signed requests, revocation fan-out. Without it: one node.",
            show_envvar=True,
        ),
    ] = None,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="Reverse proxies (comma-separated addresses, e.g. 127.0.0.1 for nginx on "
            "this machine) whose X-Forwarded-For gives the client address; from anyone "
            "else the header is ignored. Without it: the connection's address.",
        ),
    ] = None,
) -> None:
    """Set up the database and secrets if needed, then serve the API.

    Every worker reads its settings from the environment, so they all use the
    same database; migrations run once here, before the workers start.
    """
    import uvicorn

    log_config = configure_logging(log_format.value, log_level.value)
    os.environ[LOG_FORMAT_ENV] = log_format.value
    if database_url:
        os.environ["HEALTHCODE_DATABASE_URL"] = database_url
    if secrets_file:
        os.environ["HEALTHCODE_SECRETS_FILE"] = str(secrets_file)
    if demo:
        os.environ["HEALTHCODE_DEMO"] = "1"
    if redis_url:
        os.environ["HEALTHCODE_REDIS_URL"] = redis_url
    result = _set_up(database_url, secrets_file, region, region_name)
    metrics_dir = _metrics_directory(workers)
    log.info(
        "serving on http://%s:%d (API docs: /schema); %s database %s (schema %s)%s",
        host,
        port,
        result.backend,
        _where(result),
        result.revision,
        f"; {workers} workers" if workers > 1 else "",
    )
    if redis_url:
        log.info("shared state in Redis / 共享状态使用 Redis: %s", _without_password(redis_url))
    # Workers migrate nothing: set-up just did it.
    os.environ.setdefault("HEALTHCODE_MIGRATE_ON_START", "0")
    try:
        uvicorn.run(
            "healthcode.api.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level.value,
            log_config=log_config,
            # The client address (rate limits) from the proxy only when the
            # request comes from it.
            proxy_headers=bool(forwarded_allow_ips),
            forwarded_allow_ips=forwarded_allow_ips or "",
            timeout_keep_alive=5,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _metrics_directory(workers: int) -> Path | None:
    """With several workers, a fresh directory they all count metrics into
    (prometheus-client's multiprocess mode): the operator's
    ``PROMETHEUS_MULTIPROC_DIR``, emptied of a previous run's files, or a new
    temporary one (returned, to be removed at the end)."""
    given = os.environ.get(MULTIPROC_ENV, "").strip()
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
        return None
    if workers == 1:
        return None
    created = Path(tempfile.mkdtemp(prefix="healthcode-metrics-"))
    os.environ[MULTIPROC_ENV] = str(created)
    return created


def _set_up(
    database_url: str | None, secrets_file: Path | None, region: str, region_name: str
) -> InitResult:
    """Create or migrate the database and the secrets; on first start, an issuer
    key for this region, so passes can be signed (`healthcode keys init` does
    the same with more choices). Says what it created or changed, and where."""
    from healthcode.core.passes import KeyStore
    from healthcode.core.storage.database import init_instance

    try:
        result = asyncio.run(init_instance(database_url, secrets_file))
        _report_database(result)
        keys = KeyStore()
        if not keys.exists():
            keys.init(region, region_name)
            log.info(
                "created the issuer key for region %s (%s) / 已创建签发密钥: %s",
                region,
                region_name,
                keys.path,
            )
    except HealthcodeError as exc:
        fail(exc, as_json=False)
    return result


def _report_database(result: InitResult) -> None:
    if result.previous_revision is None:
        log.info(
            "created the %s database / 已创建数据库: %s (schema %s)",
            result.backend,
            _where(result),
            result.revision,
        )
    elif result.previous_revision != result.revision:
        log.info(
            "migrated the database from schema %s to %s / 数据库已升级: %s",
            result.previous_revision,
            result.revision,
            _where(result),
        )
    if result.secrets_created:
        log.info(
            "created the operator secrets / 已创建运营方密钥: %s (back it up apart from the "
            "database: without it no enrolled person can be found / 请与数据库分开备份)",
            result.secrets_file,
        )


def _without_password(url: str) -> str:
    """A Redis URL fit for a log line."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _where(result: InitResult) -> str:
    """The database file, or the URL without its password."""
    if result.backend == "sqlite":
        return result.database.split(":///", 1)[-1]
    return result.database
