"""``healthcode trust``: the trust list of peer regions whose passes verify
here, and the red/yellow lists shared with them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from healthcode.cli.errors import EXIT_INVALID
from healthcode.cli.options import (
    DatabaseOption,
    JsonOption,
    KeysDirOption,
    NowOption,
    OutputOption,
    SecretsOption,
    TrustFileOption,
    emit,
    now_from,
    or_fail,
    run_async,
    stores,
    with_database,
)
from healthcode.core.passes import KeyStore

if TYPE_CHECKING:
    from healthcode.core.status import ListImport
    from healthcode.core.status.sharing import PeerExport, PeerImportSummary

app = typer.Typer(help="Trust list: peer regions whose passes verify here.", no_args_is_help=True)


@app.command("add")
def trust_add(
    export_file: Annotated[Path, typer.Argument(help="A peer's `keys export` output.")],
    keys_dir: KeysDirOption = None,
    trust_file: TrustFileOption = None,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Trust a peer region's keys (compare the fingerprints with the peer first)."""

    def add() -> Any:
        _, trust = stores(keys_dir, trust_file)
        return trust.add(export_file.read_text(encoding="ascii"), now_from(now))

    try:
        issuer = or_fail(add, as_json=as_json)
    except OSError:
        raise typer.BadParameter("cannot read the file", param_hint="EXPORT_FILE") from None
    kids = [k.kid.hex() for k in issuer.keys]
    emit(
        {"region": issuer.region_code, "name": issuer.name, "kids": kids},
        as_json,
        f"trusted {issuer.region_code} {issuer.name}: keys {', '.join(kids)}",
    )


@app.command("list")
def trust_list(
    keys_dir: KeysDirOption = None,
    trust_file: TrustFileOption = None,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the trusted regions and keys, and the list's age."""
    trust = or_fail(lambda: stores(keys_dir, trust_file)[1].load(now_from(now)), as_json=as_json)
    moment = now_from(now)
    rows = [
        {
            "region": i.region_code,
            "name": i.name,
            "kid": k.kid.hex(),
            "alg": k.alg,
            "valid_from": k.valid_from.isoformat(),
            "valid_until": k.valid_until.isoformat() if k.valid_until else None,
            "revoked": k.revoked,
        }
        for i in trust.issuers.values()
        for k in i.keys
    ]
    age = int(trust.age(moment).total_seconds())
    if as_json:
        print(json.dumps({"ok": True, "age_s": age, "stale": trust.is_stale(moment), "keys": rows}))
        return
    table = Table("region", "name", "kid", "alg", "valid until", "revoked")
    for r in rows:
        table.add_row(
            *(
                str(r[c] if r[c] is not None else "-")
                for c in ("region", "name", "kid", "alg", "valid_until", "revoked")
            )
        )
    Console().print(table)
    Console().print(
        f"signed {age} s ago" + (" [red](stale)[/red]" if trust.is_stale(moment) else "")
    )


@app.command("remove")
def trust_remove(
    region: Annotated[str, typer.Argument(help="Peer region code.")],
    kid: Annotated[str | None, typer.Option("--kid", help="Remove only this key (hex).")] = None,
    revoke: Annotated[
        bool, typer.Option("--revoke", help="Keep the key, marked withdrawn.")
    ] = False,
    keys_dir: KeysDirOption = None,
    trust_file: TrustFileOption = None,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stop trusting a peer region, or one of its keys."""
    try:
        kid_bytes = bytes.fromhex(kid) if kid else None
    except ValueError:
        raise typer.BadParameter("hex key id", param_hint="--kid") from None

    def change() -> bool:
        _, trust = stores(keys_dir, trust_file)
        if revoke:
            if kid_bytes is None:
                raise typer.BadParameter("--revoke needs --kid")
            return trust.revoke_key(kid_bytes, now_from(now))
        return trust.remove(region, kid=kid_bytes, now=now_from(now))

    done = or_fail(change, as_json=as_json)
    emit({"changed": done}, as_json, "removed" if done else "nothing matched")
    if not done:
        raise typer.Exit(EXIT_INVALID)


@app.command("export")
def trust_export(keys_dir: KeysDirOption = None, trust_file: TrustFileOption = None) -> None:
    """Print the signed trust list (HCT1:...) for this region's verifier devices."""
    print(or_fail(lambda: stores(keys_dir, trust_file)[1].load(), as_json=False).text)


# --- status sharing between regions ------------------------------------------------


PeerOption = Annotated[
    str, typer.Option("--peer", help="Peer region the list is for, e.g. 110000.")
]
ExportDayOption = Annotated[
    str | None, typer.Option("--day", help="YYYY-MM-DD; default: today in Asia/Shanghai.")
]


@app.command("export-status")
def trust_export_status(
    peer: PeerOption,
    day: ExportDayOption = None,
    output: OutputOption = None,
    keys_dir: KeysDirOption = None,
    database: DatabaseOption = None,
    secrets_file: SecretsOption = None,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Sign today's red/yellow list for one peer region, hashed with the pair key
    (HCS1:...). Hashes are made at `status import` time, for every peer with a
    pair key then: import the authority list after agreeing the key."""
    from healthcode.core.clock import today_shanghai

    if not (len(peer) == 6 and peer.isascii() and peer.isdigit()):
        # It names a key file too: nothing but a GB/T 2260 code gets that far.
        raise typer.BadParameter("a 6-digit region code", param_hint="--peer")
    moment = now_from(now)
    try:
        the_day = dt.date.fromisoformat(day) if day else today_shanghai(moment)
    except ValueError:
        raise typer.BadParameter("use YYYY-MM-DD", param_hint="--day") from None
    export = _export_status(KeyStore(keys_dir), peer, the_day, moment, database, secrets_file)
    result = run_async(export, as_json=as_json)
    if output is not None:
        output.write_text(result.text + "\n", encoding="ascii")
    summary = result.as_dict()
    if as_json:
        print(json.dumps({"ok": True, **summary, **({} if output else {"list": result.text})}))
        return
    if output is None:
        print(result.text)
    Console(stderr=True).print(
        f"list for {peer} on {summary['day']}: {result.red} red, {result.yellow} yellow"
    )


async def _export_status(
    keys: KeyStore,
    peer: str,
    day: dt.date,
    moment: dt.datetime,
    database: str | None,
    secrets_file: Path | None,
) -> PeerExport:
    from healthcode.core.status.sharing import export_for_peer, signing_key_for_peer

    signing = signing_key_for_peer(keys, peer)
    return await with_database(
        database,
        secrets_file,
        lambda db, _secrets: export_for_peer(db, signing, peer_region=peer, day=day, now=moment),
    )


@app.command("import-status")
def trust_import_status(
    list_file: Annotated[Path, typer.Argument(help="A peer's `trust export-status` output.")],
    keys_dir: KeysDirOption = None,
    trust_file: TrustFileOption = None,
    database: DatabaseOption = None,
    secrets_file: SecretsOption = None,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import a peer region's shared red/yellow list (verified against the trust
    list) as a status source for its day; passes of holders it worsens are revoked."""
    moment = now_from(now)
    try:
        text = list_file.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        raise typer.BadParameter("cannot read the file", param_hint="LIST_FILE") from None
    result = run_async(
        _import_status(text, keys_dir, trust_file, moment, database, secrets_file),
        as_json=as_json,
    )
    summary = result.summary
    emit(
        result.as_dict(),
        as_json,
        f"imported {summary.peer_region}'s list for {summary.day.isoformat()}: "
        f"{summary.red} red, {summary.yellow} yellow; {summary.matchable_documents} enrolled "
        f"documents can be matched; {result.passes_revoked} passes revoked",
    )


async def _import_status(
    text: str,
    keys_dir: Path | None,
    trust_file: Path | None,
    moment: dt.datetime,
    database: str | None,
    secrets_file: Path | None,
) -> ListImport[PeerImportSummary]:
    from healthcode.core.passes.service import PassService
    from healthcode.core.status import StatusImportService

    keys, store = stores(keys_dir, trust_file)
    trust = store.load(moment)

    async def body(db: Any, secrets: Any) -> ListImport[PeerImportSummary]:
        imports = StatusImportService(db, secrets, PassService(db, keys))
        return await imports.import_peer_list(text, trust, our_region=keys.region_code, now=moment)

    return await with_database(database, secrets_file, body)
