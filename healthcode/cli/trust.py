"""``healthcode trust``: the trust list of peer regions whose passes verify
here, and the red/yellow lists shared with them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from healthcode.cli.errors import EXIT_INVALID
from healthcode.cli.options import (
    CONTEXT_SETTINGS,
    DatabaseOption,
    DayOption,
    JsonOption,
    KeysDirOption,
    NowOption,
    OutputOption,
    SecretsOption,
    TrustFileOption,
    emit,
    make_table,
    now_from,
    or_fail,
    reflow_help,
    run_async,
    shanghai_time,
    stores,
    today_in_shanghai,
    with_database,
)
from healthcode.core.passes import KeyStore

if TYPE_CHECKING:
    from healthcode.core.status import ListImport
    from healthcode.core.status.sharing import PeerExport, PeerImportSummary

app = typer.Typer(
    help="Trust list: peer regions whose passes verify here, and the lists shared with them.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)


@app.command("add")
def trust_add(
    export_file: Annotated[Path, typer.Argument(help="A peer's `keys export` output.")],
    keys_dir: KeysDirOption = None,
    trust_file: TrustFileOption = None,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Trust a peer region's keys (compare the fingerprints with the peer first)."""
    text = or_fail(lambda: _read_export(export_file), as_json=as_json)

    def add() -> Any:
        _, trust = stores(keys_dir, trust_file)
        return trust.add(text, now_from(now))

    issuer = or_fail(add, as_json=as_json)
    kids = [k.kid.hex() for k in issuer.keys]
    emit(
        {"region": issuer.region_code, "name": issuer.name, "kids": kids},
        as_json,
        f"trusted {issuer.region_code} {issuer.name}: keys {', '.join(kids)} / 已信任",
    )


def _read_export(path: Path) -> str:
    """A peer's export as text; a file that cannot be one is refused as such."""
    from healthcode.core.passes.trust import IssuerExportInvalidError

    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_EXPORT_BYTES + 1)
    except OSError:
        raise typer.BadParameter("cannot read the file", param_hint="EXPORT_FILE") from None
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise IssuerExportInvalidError(details={"reason": "not_text"}) from None


_MAX_EXPORT_BYTES = 1 << 20
"""An export names at most 64 keys: far below this."""


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
    table = make_table(
        ("region", "name", "kid", "alg", "valid until", "state"),
        (
            (
                str(r["region"]),
                str(r["name"]),
                str(r["kid"]),
                str(r["alg"]),
                shanghai_time(r["valid_until"], empty="-"),
                "withdrawn / 已撤销" if r["revoked"] else "trusted / 有效",
            )
            for r in rows
        ),
        whole=("region", "kid"),
    )
    console = Console()
    console.print(table)
    stale = " [red](stale / 已过期)[/red]" if trust.is_stale(moment) else ""
    console.print(
        f"signed {shanghai_time(trust.issued_at)} ({age} s ago) / 签发时间{stale}",
        highlight=False,
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
    emit(
        {"changed": done},
        as_json,
        "removed / 已删除" if done else "nothing matched / 没有匹配项",
    )
    if not done:
        raise typer.Exit(EXIT_INVALID)


@app.command("export")
def trust_export(keys_dir: KeysDirOption = None, trust_file: TrustFileOption = None) -> None:
    """Print the signed trust list (HCT1:...) for this region's verifier devices."""
    print(or_fail(lambda: stores(keys_dir, trust_file)[1].load(), as_json=False).text)


# --- status sharing between regions ------------------------------------------------


def _peer_region(value: str) -> str:
    if not (len(value) == 6 and value.isascii() and value.isdigit()):
        # It names a key file too: nothing but a GB/T 2260 code gets that far.
        raise typer.BadParameter("a 6-digit region code, e.g. 120000")
    return value


PeerOption = Annotated[
    str,
    typer.Option(
        "--peer", callback=_peer_region, help="The peer region (GB/T 2260 code), e.g. 120000."
    ),
]


@app.command("export-status")
def trust_export_status(
    peer: PeerOption,
    day: DayOption = None,
    output: OutputOption = None,
    keys_dir: KeysDirOption = None,
    database: DatabaseOption = None,
    secrets_file: SecretsOption = None,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Sign a day's red/yellow list for one peer region (HCS1:...).

    The list holds hashes made with the pair key agreed with the peer (`trust
    pair-key`), at the time of each `status import`: import the authority
    list again after agreeing a key.
    """
    from healthcode.core.status.peer_tokens import require_pair_key

    moment = now_from(now)
    the_day = today_in_shanghai(day, moment)
    keys = KeyStore(keys_dir)
    or_fail(lambda: require_pair_key(keys, peer), as_json=as_json)
    export = _export_status(keys, peer, the_day, moment, database, secrets_file)
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
        f"list for {peer} on {summary['day']}: {result.red} red, {result.yellow} yellow / "
        f"已签发：集中观察 {result.red}，居家观察 {result.yellow}",
        highlight=False,
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
    """Import a peer region's red/yellow list (`trust export-status` there).

    The list is checked against the trust list and becomes the status source
    peer:<region> for its day; passes of holders it worsens are revoked.
    """
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


# --- pair keys: the secret two regions agree before they share lists ----------------

pair_app = typer.Typer(
    help="Pair keys: the secret agreed with one peer region for sharing lists.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)
app.add_typer(pair_app, name="pair-key")

_PAIR_KEY_NOTE = (
    "Lists for this peer hold the people of authority lists imported from now "
    "on (import today's again); a person is matched here once enrolled with "
    "the document after this. / 此后导入的权威名单才包含该地区的哈希（请重新导入当天名单）；"
    "此后登记的人员才能被匹配。"
)


@pair_app.command("create")
def pair_key_create(
    peer: PeerOption,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the key to this new file (mode 0600)."),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace the pair key this peer already has.")
    ] = False,
    keys_dir: KeysDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a pair key with a peer region and print it once, for its operator.

    Hand the key to the peer's operator by a safe channel; they run `trust
    pair-key set --peer <this region> FILE`. Compare the fingerprints by phone.
    """
    from healthcode.core.status.peer_tokens import pair_key_fingerprint, store_pair_key

    keys = KeyStore(keys_dir)
    key = or_fail(lambda: store_pair_key(keys, peer, replace=replace), as_json=as_json)
    fingerprint = pair_key_fingerprint(key)
    if output is not None:
        _write_secret(output, key.hex())
    if as_json:
        secret = {} if output else {"pair_key": key.hex()}
        print(json.dumps({"ok": True, "peer": peer, "fingerprint": fingerprint, **secret}))
        return
    if output is None:
        print(key.hex())
    err = Console(stderr=True)
    err.print(
        f"pair key with {peer} created, fingerprint {fingerprint}"
        + (f", written to {output}" if output else "")
        + f". Give it to {peer}'s operator for `healthcode trust pair-key set --peer "
        f"{keys.region_code} FILE`; it is not shown again. / 配对密钥已创建，请安全交给对方运营方，"
        "不会再次显示。",
        highlight=False,
        markup=False,
    )
    err.print(_PAIR_KEY_NOTE, highlight=False, markup=False)


def _write_secret(path: Path, text: str) -> None:
    import os

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot create the file ({exc.strerror})", param_hint="-o"
        ) from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text + "\n")


@pair_app.command("set")
def pair_key_set(
    peer: PeerOption,
    key_file: Annotated[
        str, typer.Argument(help="File with the key the peer created, or - for stdin.")
    ],
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace the pair key this peer already has.")
    ] = False,
    keys_dir: KeysDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Store the pair key a peer region created (`trust pair-key create` there)."""
    import sys

    from healthcode.core.status.peer_tokens import (
        pair_key_fingerprint,
        parse_pair_key,
        store_pair_key,
    )

    try:
        text = sys.stdin.read(1024) if key_file == "-" else Path(key_file).read_text("ascii")[:1024]
    except (OSError, UnicodeDecodeError):
        raise typer.BadParameter("cannot read the file", param_hint="KEY_FILE") from None
    keys = KeyStore(keys_dir)
    key = or_fail(lambda: parse_pair_key(text), as_json=as_json)
    or_fail(lambda: store_pair_key(keys, peer, key, replace=replace), as_json=as_json)
    fingerprint = pair_key_fingerprint(key)
    emit(
        {"peer": peer, "fingerprint": fingerprint},
        as_json,
        f"pair key with {peer} stored, fingerprint {fingerprint} (compare it with {peer}'s "
        "operator) / 配对密钥已保存，请与对方核对指纹",
    )
    if not as_json:
        Console(stderr=True).print(_PAIR_KEY_NOTE, highlight=False, markup=False)


@pair_app.command("list")
def pair_key_list(keys_dir: KeysDirOption = None, as_json: JsonOption = False) -> None:
    """List the peer regions with a pair key, and each key's fingerprint (never the key)."""
    from healthcode.core.status.peer_tokens import list_pair_keys

    found = or_fail(lambda: list_pair_keys(KeyStore(keys_dir)), as_json=as_json)
    if as_json:
        rows = [
            {"peer": p.peer_region, "fingerprint": p.fingerprint, "created_at": p.created_at}
            for p in found
        ]
        print(json.dumps({"ok": True, "pair_keys": rows}, default=dt.datetime.isoformat))
        return
    if not found:
        Console().print(
            "no pair keys; `healthcode trust pair-key create --peer REGION` makes one "
            "/ 尚无配对密钥",
            highlight=False,
        )
        return
    table = make_table(
        ("peer", "fingerprint", "created"),
        ((p.peer_region, p.fingerprint, shanghai_time(p.created_at)) for p in found),
        whole=("peer", "fingerprint"),
    )
    Console().print(table)


@pair_app.command("remove")
def pair_key_remove(
    peer: PeerOption, keys_dir: KeysDirOption = None, as_json: JsonOption = False
) -> None:
    """Delete the pair key with a peer region: no more lists for it, none matched from it."""
    from healthcode.core.status.peer_tokens import remove_pair_key

    done = or_fail(lambda: remove_pair_key(KeyStore(keys_dir), peer), as_json=as_json)
    emit(
        {"peer": peer, "changed": done},
        as_json,
        f"pair key with {peer} removed / 已删除配对密钥"
        if done
        else f"no pair key with {peer} / 没有与该地区的配对密钥",
    )
    if not done:
        raise typer.Exit(EXIT_INVALID)


reflow_help(app)
