"""``healthcode tokens``: API tokens for guards and admins (shown once)."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from healthcode.cli.errors import EXIT_INVALID
from healthcode.cli.options import (
    CONTEXT_SETTINGS,
    DatabaseOption,
    JsonOption,
    SecretsOption,
    make_table,
    print_json,
    reflow_help,
    run_async,
    shanghai_time,
    with_database,
)

T = TypeVar("T")

app = typer.Typer(
    help="API tokens for guards and admins.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)


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
    table = make_table(
        ("token id", "role", "label", "created", "revoked"),
        (
            (
                str(t["token_id"]),
                str(t["role"]),
                str(t["label"]),
                shanghai_time(t["created_at"]),
                shanghai_time(t["revoked_at"], empty=""),
            )
            for t in tokens
        ),
        whole=("token id",),
    )
    Console().print(table)


_TOKEN_ID = re.compile(r"(?:hc_(?:admin|guard)_)?([0-9a-f]{16})(?:\..*)?", re.DOTALL)
"""A token id, or a whole token (``hc_<role>_<id>.<secret>``): only the id is kept."""


def _token_id(value: str) -> str:
    """The id in ``value``; anything else is refused without echoing it (it
    may be a mistyped secret)."""
    match = _TOKEN_ID.fullmatch(value.strip())
    if match is None:
        raise typer.BadParameter(
            "not a token id (16 hex digits, see `healthcode tokens list`) nor a token",
            param_hint="TOKEN_ID",
        )
    return match[1]


@app.command("revoke")
def revoke_command(
    token: Annotated[
        str, typer.Argument(help="The token id (from `tokens list`), or the token itself.")
    ],
    database: DatabaseOption = None,
    secrets_file: SecretsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke a token at once (its secret is never printed)."""
    token_id = _token_id(token)
    revoked = _with_db(database, secrets_file, lambda db: _revoke(db, token_id), as_json=as_json)
    if as_json:
        print(json.dumps({"ok": revoked is not None, "token_id": token_id, **(revoked or {})}))
    elif revoked is None:
        print(f"no active token {token_id} / 未找到有效令牌 {token_id}", flush=True)
    else:
        Console().print(
            f"revoked token {token_id} ({revoked['role']}, {revoked['label']!r}) at "
            f"{shanghai_time(revoked['revoked_at'])} / 已吊销",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    if revoked is None:
        raise typer.Exit(EXIT_INVALID)


async def _revoke(db: Any, token_id: str) -> dict[str, str | None] | None:
    """Revoke ``token_id``; what was revoked (role, label, when), or None when
    no active token has that id."""
    from healthcode.core.auth import list_tokens, revoke_token

    if not await revoke_token(db, token_id):
        return None
    found = next(t for t in await list_tokens(db) if t["token_id"] == token_id)
    return {k: found[k] for k in ("role", "label", "revoked_at")}


reflow_help(app)
