"""Options and small helpers shared by several commands, declared once.

Each option is an ``Annotated`` alias: a command takes ``as_json: JsonOption =
False`` and gets the same flag, help text and environment variable as every
other command that has it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from healthcode.cli.errors import fail
from healthcode.core.errors import HealthcodeError

if TYPE_CHECKING:
    from healthcode.core.passes import KeyStore, TrustStore
    from healthcode.core.passes.codec import Algorithm
    from healthcode.core.privacy import OperatorSecrets
    from healthcode.core.storage.database import Database

T = TypeVar("T")

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="Database URL (sqlite:///path or postgresql://...); default: "
        "$HEALTHCODE_DATABASE_URL, else an embedded SQLite file.",
        show_default=False,
    ),
]
DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="HEALTHCODE_DATABASE_URL",
        help="sqlite:///path or postgresql://...; default: the embedded SQLite file.",
    ),
]
"""``serve``'s spelling of :data:`DatabaseOption`, which it hands to its workers."""
SecretsOption = Annotated[
    Path | None,
    typer.Option(
        "--secrets-file",
        help="Operator secrets file; default: $HEALTHCODE_SECRETS_FILE, else the user config dir.",
        show_default=False,
    ),
]

NowOption = Annotated[
    str | None, typer.Option("--now", help="Act as of this ISO datetime (tests).", hidden=True)
]

KeysDirOption = Annotated[
    Path | None,
    typer.Option("--keys-dir", envvar="HEALTHCODE_KEYS_DIR", help="Issuer key directory."),
]
TrustFileOption = Annotated[
    Path | None,
    typer.Option("--trust-file", envvar="HEALTHCODE_TRUST_FILE", help="Signed trust list file."),
]

ServerOption = Annotated[
    str, typer.Option("--server", help="Base URL of the service.", envvar="HEALTHCODE_SERVER")
]
KeyOption = Annotated[Path, typer.Option("--key", help="The device key file (PEM).")]
"""A holder's device key (``healthcode passes device-key``)."""

OutputOption = Annotated[Path | None, typer.Option("--output", "-o", help="File (default stdout).")]
MrzOption = Annotated[
    str | None,
    typer.Option("--mrz", "-m", help="MRZ text; separate lines with a newline or '|'."),
]
StateOption = Annotated[
    str | None, typer.Option("--issuing-state", help="ICAO code, for typed passport numbers.")
]


def now_from(value: str | None) -> dt.datetime:
    """``--now`` as an aware datetime (UTC when it names no offset), else now."""
    if value is None:
        return dt.datetime.now(dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("use ISO 8601", param_hint="--now") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def parse_now(value: str | None) -> dt.datetime | None:
    """``--now`` for the database commands: an ISO datetime with a UTC offset, else None."""
    if value is None:
        return None
    try:
        now = dt.datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("use an ISO datetime with offset", param_hint="--now") from None
    if now.tzinfo is None:
        raise typer.BadParameter("the datetime needs a UTC offset", param_hint="--now")
    return now


def or_fail(call: Callable[[], T], *, as_json: bool) -> T:
    """``call()``; a domain error exits through :func:`fail`."""
    try:
        return call()
    except HealthcodeError as exc:
        fail(exc, as_json=as_json)


def run_async(coro: Coroutine[Any, Any, T], *, as_json: bool) -> T:
    """Run a command's coroutine; a domain error exits through :func:`fail`."""
    return or_fail(lambda: asyncio.run(coro), as_json=as_json)


async def with_database(
    database: str | None,
    secrets_file: Path | None,
    body: Callable[[Database, OperatorSecrets], Awaitable[T]],
) -> T:
    """``body(db, secrets)`` on the opened (and migrated) database, disposed after."""
    from healthcode.core.storage.database import open_database

    db, secrets = await open_database(database, secrets_file)
    try:
        return await body(db, secrets)
    finally:
        await db.dispose()


def print_json(payload: Any) -> None:
    print(json.dumps(payload, ensure_ascii=False, indent=2))


def emit(payload: dict[str, Any], as_json: bool, human: str) -> None:
    """One line of ``{"ok": true, ...}`` for scripts, or ``human`` for people."""
    if as_json:
        print(json.dumps({"ok": True, **payload}, ensure_ascii=False))
    else:
        Console().print(human)


def algorithm(value: str) -> Algorithm:
    """``--alg``: a signing algorithm for issuer and device keys."""
    if value not in ("ES256", "EdDSA"):
        raise typer.BadParameter("ES256 or EdDSA", param_hint="--alg")
    return value  # type: ignore[return-value]


def stores(keys_dir: Path | None, trust_file: Path | None) -> tuple[KeyStore, TrustStore]:
    """This region's key store and its trust list (``--keys-dir``, ``--trust-file``)."""
    from healthcode.core.passes import KeyStore, TrustStore
    from healthcode.core.passes.trust import default_trust_file

    keys = KeyStore(keys_dir)
    return keys, TrustStore(trust_file or default_trust_file(), keys)


__all__ = [
    "DatabaseOption",
    "DatabaseUrlOption",
    "JsonOption",
    "KeyOption",
    "KeysDirOption",
    "MrzOption",
    "NowOption",
    "OutputOption",
    "SecretsOption",
    "ServerOption",
    "StateOption",
    "TrustFileOption",
    "algorithm",
    "emit",
    "now_from",
    "or_fail",
    "parse_now",
    "print_json",
    "run_async",
    "stores",
    "with_database",
]
