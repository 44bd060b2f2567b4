"""``healthcode keys``: this region's issuer keys (create, rotate, list, export)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console

from healthcode.cli.options import (
    CONTEXT_SETTINGS,
    JsonOption,
    KeysDirOption,
    NowOption,
    OutputOption,
    TrustFileOption,
    algorithm,
    emit,
    make_table,
    now_from,
    or_fail,
    reflow_help,
    shanghai_time,
    stores,
)
from healthcode.core.passes import KeyStore, export_issuer

app = typer.Typer(
    help="Issuer keys: create, rotate, list, export.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)


@app.command("init")
def keys_init(
    region: Annotated[str, typer.Option("--region", help="GB/T 2260 region code, e.g. 110000.")],
    name: Annotated[str, typer.Option("--name", help="Region name shown to guards.")],
    alg: Annotated[str, typer.Option("--alg", help="ES256 (default) or EdDSA.")] = "ES256",
    keys_dir: KeysDirOption = None,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create this region's key directory and first signing key."""
    info = or_fail(
        lambda: KeyStore(keys_dir).init(region, name, alg=algorithm(alg), now=now_from(now)),
        as_json=as_json,
    )
    emit(
        {"kid": info.kid_hex, "alg": info.alg}, as_json, f"created key {info.kid_hex} ({info.alg})"
    )


@app.command("rotate")
def keys_rotate(
    alg: Annotated[str | None, typer.Option("--alg", help="Algorithm of the new key.")] = None,
    keys_dir: KeysDirOption = None,
    trust_file: TrustFileOption = None,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Sign with a new key; the old one verifies until its passes have expired."""

    def rotate() -> Any:
        keys, trust = stores(keys_dir, trust_file)
        info = keys.rotate(alg=algorithm(alg) if alg else None, now=now_from(now))
        trust.refresh(now_from(now))
        return info

    info = or_fail(rotate, as_json=as_json)
    emit({"kid": info.kid_hex, "alg": info.alg}, as_json, f"now signing with {info.kid_hex}")


@app.command("list")
def keys_list(keys_dir: KeysDirOption = None, as_json: JsonOption = False) -> None:
    """List keys: active, or retired with the time until which they still verify."""
    rows = [
        {
            "kid": k.kid_hex,
            "alg": k.alg,
            "region": k.region_code,
            "created_at": k.created_at.isoformat(),
            "retired_at": k.retired_at.isoformat() if k.retired_at else None,
            "verify_until": k.verify_until.isoformat() if k.verify_until else None,
            "active": k.active,
        }
        for k in or_fail(KeyStore(keys_dir).list_keys, as_json=as_json)
    ]
    if as_json:
        print(json.dumps({"ok": True, "keys": rows}, ensure_ascii=False))
        return
    table = make_table(
        ("kid", "alg", "created", "state"),
        (
            (
                str(r["kid"]),
                str(r["alg"]),
                shanghai_time(r["created_at"]),
                "active / 使用中"
                if r["active"]
                else f"verifies until {shanghai_time(r['verify_until'])} / 仅用于核验",
            )
            for r in rows
        ),
        whole=("kid",),
    )
    Console().print(table)


@app.command("export")
def keys_export(
    output: OutputOption = None,
    keys_dir: KeysDirOption = None,
    now: NowOption = None,
) -> None:
    """Print this region's public keys (HCK1:...) for peers to `trust add`."""
    text = or_fail(lambda: export_issuer(KeyStore(keys_dir), now_from(now)), as_json=False)
    if output:
        output.write_text(text + "\n", encoding="ascii")
    else:
        print(text)


reflow_help(app)
