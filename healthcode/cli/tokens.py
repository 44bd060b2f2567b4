"""``healthcode tokens``: API tokens for guards and admins (shown once)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from healthcode.cli.errors import EXIT_INVALID
from healthcode.cli.options import (
    DatabaseOption,
    JsonOption,
    SecretsOption,
    print_json,
    run_async,
    with_database,
)

T = TypeVar("T")

app = typer.Typer(help="API tokens for guards and admins.", no_args_is_help=True)


def _with_db(
    database: str | None,
    secrets_file: Path | None,
    body: Callable[[Any], Awaitable[T]],
    *,
    as_json: bool,
) -> T:
    """``body(db)``; a domain error exits through ``fail``."""
    return run_async(
        with_database(database, secrets_file, lambda db, _secrets: body(db)), as_json=as_json
    )


@app.command("create")
def create_command(
    role: Annotated[str, typer.Option("--role", help="guard or admin.")],
    label: Annotated[str, typer.Option("--label", help="Who or where, e.g. 'gate 3'.")],
    database: DatabaseOption = None,
    secrets_file: SecretsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a token; it is printed once and stored only as a hash."""
    from healthcode.core.auth import ROLES, create_token

    if role not in ROLES:
        raise typer.BadParameter(f"one of {', '.join(ROLES)}", param_hint="--role")
    token = _with_db(
        database, secrets_file, lambda db: create_token(db, role, label), as_json=as_json
    )
    if as_json:
        print(json.dumps({"ok": True, "role": role, "token": token}))
    else:
        print(token)
        Console(stderr=True).print(
            "Keep this token secret; it is not shown again. / 请妥善保管此令牌，它不会再次显示。"
        )


@app.command("list")
def list_command(
    database: DatabaseOption = None, secrets_file: SecretsOption = None, as_json: JsonOption = False
) -> None:
    """List tokens (ids, roles, labels; never the secrets)."""
    from healthcode.core.auth import list_tokens

    tokens = _with_db(database, secrets_file, list_tokens, as_json=as_json)
    if as_json:
        print_json(tokens)
        return
    table = Table("token id", "role", "label", "created", "revoked")
    for t in tokens:
        table.add_row(
            *(str(t[k] or "") for k in ("token_id", "role", "label", "created_at", "revoked_at"))
        )
    Console().print(table)


@app.command("revoke")
def revoke_command(
    token_id: Annotated[str, typer.Argument(help="The token id (from `tokens list`).")],
    database: DatabaseOption = None,
    secrets_file: SecretsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke a token at once."""
    from healthcode.core.auth import revoke_token

    changed = _with_db(
        database, secrets_file, lambda db: revoke_token(db, token_id), as_json=as_json
    )
    if as_json:
        print(json.dumps({"ok": changed, "token_id": token_id}))
    elif not changed:
        print(f"no active token {token_id} / 未找到有效令牌", flush=True)
    if not changed:
        raise typer.Exit(EXIT_INVALID)
