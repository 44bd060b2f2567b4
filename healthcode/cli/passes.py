"""``healthcode keys|trust|passes`` and ``healthcode verify``.

Sub-apps for the lead to wire into ``healthcode.cli.main``::

    app.add_typer(passes.keys_app, name="keys")
    app.add_typer(passes.trust_app, name="trust")
    app.add_typer(passes.passes_app, name="passes")
    app.command("verify")(passes.verify_command)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from healthcode.cli.admin import DatabaseOption, SecretsOption
from healthcode.cli.errors import EXIT_INVALID, EXIT_OK, fail
from healthcode.core.errors import HealthcodeError
from healthcode.core.models import Colour, MaskedDocument
from healthcode.core.passes import (
    HolderDevice,
    KeyStore,
    TrustStore,
    Verifier,
    export_issuer,
    issue_pass,
    load_revocation_list,
    read_issuer_export,
    read_pass,
)
from healthcode.core.passes.codec import Algorithm
from healthcode.core.passes.trust import default_trust_file

keys_app = typer.Typer(help="Issuer keys: create, rotate, list, export.", no_args_is_help=True)
trust_app = typer.Typer(
    help="Trust list: peer regions whose passes verify here.", no_args_is_help=True
)
passes_app = typer.Typer(
    help="Passes: issue (admin/testing), render QR, present.", no_args_is_help=True
)

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
KeysDirOption = Annotated[
    Path | None,
    typer.Option("--keys-dir", envvar="HEALTHCODE_KEYS_DIR", help="Issuer key directory."),
]
TrustFileOption = Annotated[
    Path | None,
    typer.Option("--trust-file", envvar="HEALTHCODE_TRUST_FILE", help="Signed trust list file."),
]
NowOption = Annotated[
    str | None, typer.Option("--now", help="Pretend time (ISO 8601, for testing).", hidden=True)
]


def _now(value: str | None) -> dt.datetime:
    if value is None:
        return dt.datetime.now(dt.UTC)
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("use ISO 8601", param_hint="--now") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _emit(payload: dict[str, Any], as_json: bool, human: str) -> None:
    if as_json:
        print(json.dumps({"ok": True, **payload}, ensure_ascii=False))
    else:
        Console().print(human)


def _stores(keys_dir: Path | None, trust_file: Path | None) -> tuple[KeyStore, TrustStore]:
    keys = KeyStore(keys_dir)
    return keys, TrustStore(trust_file or default_trust_file(), keys)


# --- keys ------------------------------------------------------------------------


@keys_app.command("init")
def keys_init(
    region: Annotated[str, typer.Option("--region", help="GB/T 2260 region code, e.g. 110000.")],
    name: Annotated[str, typer.Option("--name", help="Region name shown to guards.")],
    alg: Annotated[str, typer.Option("--alg", help="ES256 (default) or EdDSA.")] = "ES256",
    keys_dir: KeysDirOption = None,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create this region's key directory and first signing key."""
    try:
        info = KeyStore(keys_dir).init(region, name, alg=_alg(alg), now=_now(now))
    except HealthcodeError as exc:
        fail(exc, as_json=as_json)
    _emit(
        {"kid": info.kid_hex, "alg": info.alg}, as_json, f"created key {info.kid_hex} ({info.alg})"
    )


def _alg(value: str) -> Algorithm:
    if value not in ("ES256", "EdDSA"):
        raise typer.BadParameter("ES256 or EdDSA", param_hint="--alg")
    return value  # type: ignore[return-value]


@keys_app.command("rotate")
def keys_rotate(
    alg: Annotated[str | None, typer.Option("--alg", help="Algorithm of the new key.")] = None,
    keys_dir: KeysDirOption = None,
    trust_file: TrustFileOption = None,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Sign with a new key; the old one verifies until its passes have expired."""
    try:
        keys, trust = _stores(keys_dir, trust_file)
        info = keys.rotate(alg=_alg(alg) if alg else None, now=_now(now))
        trust.refresh(_now(now))
    except HealthcodeError as exc:
        fail(exc, as_json=as_json)
    _emit({"kid": info.kid_hex, "alg": info.alg}, as_json, f"now signing with {info.kid_hex}")


@keys_app.command("list")
def keys_list(keys_dir: KeysDirOption = None, as_json: JsonOption = False) -> None:
    """List keys: active, or retired with the time until which they still verify."""
    try:
        store = KeyStore(keys_dir)
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
            for k in store.list_keys()
        ]
    except HealthcodeError as exc:
        fail(exc, as_json=as_json)
    if as_json:
        print(json.dumps({"ok": True, "keys": rows}, ensure_ascii=False))
        return
    table = Table("kid", "alg", "created", "state")
    for r in rows:
        state = "active / 使用中" if r["active"] else f"verifies until {r['verify_until']}"
        table.add_row(str(r["kid"]), str(r["alg"]), str(r["created_at"]), state)
    Console().print(table)


@keys_app.command("export")
def keys_export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default stdout).")
    ] = None,
    keys_dir: KeysDirOption = None,
    now: NowOption = None,
) -> None:
    """Print this region's public keys (HCK1:...) for peers to `trust add`."""
    try:
        text = export_issuer(KeyStore(keys_dir), _now(now))
    except HealthcodeError as exc:
        fail(exc, as_json=False)
    if output:
        output.write_text(text + "\n", encoding="ascii")
    else:
        print(text)


# --- trust -----------------------------------------------------------------------


@trust_app.command("add")
def trust_add(
    export_file: Annotated[Path, typer.Argument(help="A peer's `keys export` output.")],
    keys_dir: KeysDirOption = None,
    trust_file: TrustFileOption = None,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Trust a peer region's keys (compare the fingerprints with the peer first)."""
    try:
        _, trust = _stores(keys_dir, trust_file)
        issuer = trust.add(export_file.read_text(encoding="ascii"), _now(now))
    except OSError:
        raise typer.BadParameter("cannot read the file", param_hint="EXPORT_FILE") from None
    except HealthcodeError as exc:
        fail(exc, as_json=as_json)
    kids = [k.kid.hex() for k in issuer.keys]
    _emit(
        {"region": issuer.region_code, "name": issuer.name, "kids": kids},
        as_json,
        f"trusted {issuer.region_code} {issuer.name}: keys {', '.join(kids)}",
    )


@trust_app.command("list")
def trust_list(
    keys_dir: KeysDirOption = None,
    trust_file: TrustFileOption = None,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the trusted regions and keys, and the list's age."""
    try:
        _, store = _stores(keys_dir, trust_file)
        trust = store.load(_now(now))
    except HealthcodeError as exc:
        fail(exc, as_json=as_json)
    moment = _now(now)
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


@trust_app.command("remove")
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
    try:
        _, trust = _stores(keys_dir, trust_file)
        if revoke:
            if kid_bytes is None:
                raise typer.BadParameter("--revoke needs --kid")
            done = trust.revoke_key(kid_bytes, _now(now))
        else:
            done = trust.remove(region, kid=kid_bytes, now=_now(now))
    except HealthcodeError as exc:
        fail(exc, as_json=as_json)
    _emit({"changed": done}, as_json, "removed" if done else "nothing matched")
    if not done:
        raise typer.Exit(EXIT_INVALID)


@trust_app.command("export")
def trust_export(keys_dir: KeysDirOption = None, trust_file: TrustFileOption = None) -> None:
    """Print the signed trust list (HCT1:...) for this region's verifier devices."""
    try:
        _, trust = _stores(keys_dir, trust_file)
        print(trust.load().text)
    except HealthcodeError as exc:
        fail(exc, as_json=False)


# --- status sharing between regions ------------------------------------------------


def _run_db(coro: Coroutine[Any, Any, Any], *, as_json: bool) -> Any:
    try:
        return asyncio.run(coro)
    except HealthcodeError as exc:
        fail(exc, as_json=as_json)


@trust_app.command("export-status")
def trust_export_status(
    peer: Annotated[str, typer.Option("--peer", help="Peer region the list is for, e.g. 110000.")],
    day: Annotated[
        str | None, typer.Option("--day", help="YYYY-MM-DD; default: today in Asia/Shanghai.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default stdout).")
    ] = None,
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
    from healthcode.core.passes.sharing import export_for_peer
    from healthcode.core.storage.database import open_database

    if not (len(peer) == 6 and peer.isascii() and peer.isdigit()):
        # It names a key file too: nothing but a GB/T 2260 code gets that far.
        raise typer.BadParameter("a 6-digit region code", param_hint="--peer")
    moment = _now(now)
    try:
        the_day = dt.date.fromisoformat(day) if day else today_shanghai(moment)
    except ValueError:
        raise typer.BadParameter("use YYYY-MM-DD", param_hint="--day") from None

    async def go() -> Any:
        keys = KeyStore(keys_dir)
        keys.pair_key(peer)  # no pair key, no hashes: refuse rather than send an empty list
        signing = keys.active()
        db, _secrets = await open_database(database, secrets_file)
        try:
            return await export_for_peer(db, signing, peer_region=peer, day=the_day, now=moment)
        finally:
            await db.dispose()

    result = _run_db(go(), as_json=as_json)
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


@trust_app.command("import-status")
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
    from healthcode.core.pass_service import PassService
    from healthcode.core.passes.sharing import import_from_peer
    from healthcode.core.storage.database import open_database

    moment = _now(now)
    try:
        text = list_file.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        raise typer.BadParameter("cannot read the file", param_hint="LIST_FILE") from None

    async def go() -> Any:
        keys, store = _stores(keys_dir, trust_file)
        trust = store.load(moment)
        db, _secrets = await open_database(database, secrets_file)
        try:
            summary = await import_from_peer(
                db, text, trust, our_region=keys.region_code, now=moment
            )
            revoked = await PassService(db, keys).revoke_worsened(now=moment)
            return summary, revoked
        finally:
            await db.dispose()

    summary, revoked = _run_db(go(), as_json=as_json)
    payload = {
        **summary.as_dict(),
        "passes_checked": revoked.checked,
        "passes_revoked": revoked.revoked,
    }
    _emit(
        payload,
        as_json,
        f"imported {summary.peer_region}'s list for {payload['day']}: {summary.red} red, "
        f"{summary.yellow} yellow; {summary.matchable_documents} enrolled documents can be "
        f"matched; {revoked.revoked} passes revoked",
    )


# --- passes ----------------------------------------------------------------------


@passes_app.command("device-key")
def passes_device_key(
    output: Annotated[Path, typer.Argument(help="Where to write the holder key (PEM, 0600).")],
    alg: Annotated[str, typer.Option("--alg")] = "ES256",
) -> None:
    """Create a holder device key (testing: a phone keeps its own)."""
    HolderDevice.generate(_alg(alg)).save(output)
    print(output)


@passes_app.command("issue")
def passes_issue(
    device_key: Annotated[
        Path, typer.Option("--device-key", help="Holder key PEM (its public part is bound).")
    ],
    colour: Annotated[Colour, typer.Option("--colour")],
    kind: Annotated[str, typer.Option("--kind", help="Document kind.")],
    masked_name: Annotated[str, typer.Option("--masked-name", help="Surname only.")],
    masked_number: Annotated[str, typer.Option("--masked-number", help="e.g. 11**************2X")],
    keys_dir: KeysDirOption = None,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Issue a pass from explicit, already masked values (admin and testing)."""
    try:
        keys = KeyStore(keys_dir)
        key = keys.active()
        issued = issue_pass(
            key.private_key,
            key.kid,
            region_code=key.region_code,
            colour=colour,
            masked=MaskedDocument(kind, masked_name, masked_number),
            holder_key=HolderDevice.load(device_key).public_key,
            now=_now(now),
        )
    except HealthcodeError as exc:
        fail(exc, as_json=as_json)
    if as_json:
        print(
            json.dumps(
                {
                    "ok": True,
                    "pass": issued.text,
                    "pass_id": issued.claims.pass_id.hex(),
                    "valid_until": issued.claims.valid_until.isoformat(),
                }
            )
        )
    else:
        print(issued.text)


@passes_app.command("present")
def passes_present(
    pass_text: Annotated[str, typer.Argument(help="HC1:... text, or - for stdin.")],
    device_key: Annotated[Path, typer.Option("--device-key")],
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make a live code (HCP1:...) with the holder key: what the phone shows."""
    text = sys.stdin.read(8192) if pass_text == "-" else pass_text
    try:
        shown = HolderDevice.load(device_key).present(text, _now(now))
    except HealthcodeError as exc:
        fail(exc, as_json=as_json)
    print(json.dumps({"ok": True, "presentation": shown}) if as_json else shown)


@passes_app.command("qr")
def passes_qr(
    text: Annotated[str, typer.Argument(help="HC1:/HCP1: text, or - for stdin.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help=".png or .svg; default: terminal.")
    ] = None,
) -> None:
    """Render a pass or live code as a QR code (PNG, SVG or terminal)."""
    from healthcode.core.passes.qr import qr_png, qr_svg, qr_terminal

    value = (sys.stdin.read(8192) if text == "-" else text).strip()
    if output is None:
        print(qr_terminal(value))
    elif output.suffix.lower() == ".svg":
        output.write_text(qr_svg(value), encoding="utf-8")
    else:
        output.write_bytes(qr_png(value))


@passes_app.command("show")
def passes_show(text: Annotated[str, typer.Argument(help="HC1:... text.")]) -> None:
    """Decode a pass WITHOUT verifying it (what it claims, for support staff)."""
    try:
        _, claims = read_pass(text)
    except HealthcodeError as exc:
        fail(exc, as_json=True)
    print(
        json.dumps(
            {
                "issuer": claims.issuer,
                "colour": claims.colour.value,
                "document_kind": claims.document_kind,
                "masked_name": claims.masked_name,
                "masked_number": claims.masked_number,
                "valid_until": claims.valid_until.isoformat(),
                "verified": False,
            },
            ensure_ascii=False,
        )
    )


# --- verify ----------------------------------------------------------------------


def verify_command(
    code: Annotated[str, typer.Argument(help="HCP1:... text, a QR image file, or - for stdin.")],
    online: Annotated[
        bool, typer.Option("--online/--offline", help="Also ask for revocations.")
    ] = False,
    revocation_list: Annotated[
        list[Path] | None, typer.Option("--revocation-list", help="HCR1 file(s) for offline use.")
    ] = None,
    keys_dir: KeysDirOption = None,
    trust_file: TrustFileOption = None,
    window: Annotated[int, typer.Option("--window", help="Seconds a live code stays valid.")] = 30,
    require_revocation_list: Annotated[
        bool,
        typer.Option(
            "--require-revocation-list",
            help="Refuse (revocation_list_missing) a pass whose region has no --revocation-list; "
            "without it such a pass is accepted with the notice revocations_not_checked.",
        ),
    ] = False,
    seen_file: Annotated[
        Path | None,
        typer.Option(
            "--seen-file",
            envvar="HEALTHCODE_SEEN_FILE",
            help="Where accepted live codes are remembered until they expire "
            "(default: seen-live-codes.json in the user's state directory).",
        ),
    ] = None,
    seen_list: Annotated[
        bool,
        typer.Option(
            "--seen-list/--no-seen-list",
            help="Refuse a live code this device already accepted (presentation_replayed).",
        ),
    ] = True,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Verify a live code: colour, masked identity, issuer, valid-until, or why not.

    Each live code is accepted once on this device: accepted codes are kept in
    a seen-list file until they expire, and a second showing is refused
    (presentation_replayed). Without a revocation list for the pass's region,
    revocations are not checked, and the answer says so.
    """
    if code == "-":
        code = sys.stdin.read(8192)
    elif not code.startswith(("HC1:", "HCP1:")) and Path(code).is_file():
        from healthcode.core.passes.qr import decode_qr

        try:
            code = decode_qr(Path(code))
        except HealthcodeError as exc:
            fail(exc, as_json=as_json)
    try:
        _, store = _stores(keys_dir, trust_file)
        trust = store.load()
        lists = [
            load_revocation_list(p.read_text(encoding="ascii"), trust)
            for p in revocation_list or []
        ]
    except HealthcodeError as exc:
        fail(exc, as_json=as_json)
    if online:
        # The live revocation query belongs to the status service (not wired yet).
        fail(
            HealthcodeError(
                "Online revocation needs the status service, which is not configured.",
                "在线撤销查询需要状态服务，目前尚未配置。",
                code="online_unavailable",
            ),
            as_json=as_json,
        )
    from healthcode.core.replay import SeenList, default_seen_file

    moment = _now(now)
    verifier = Verifier(
        trust,
        revocation_lists=lists,
        window=dt.timedelta(seconds=window),
        clock=lambda: moment,
        missing_revocation_list="refuse" if require_revocation_list else "notice",
        seen=SeenList(seen_file or default_seen_file()).first_use if seen_list else None,
    )
    try:
        verdict = verifier.verify(code)
    except HealthcodeError as exc:  # the seen-list file, never the code itself
        fail(exc, as_json=as_json)
    if as_json:
        print(json.dumps(verdict.as_dict(), ensure_ascii=False))
    else:
        console = Console(stderr=not verdict.ok)
        if verdict.ok and verdict.colour and verdict.masked:
            style = {"green": "green", "yellow": "yellow", "red": "red"}[verdict.colour.value]
            console.print(f"[{style}]{verdict.colour.label_zh} {verdict.colour.label_en}[/{style}]")
            console.print(f"{verdict.masked.masked_name} {verdict.masked.masked_number}")
            console.print(
                f"{verdict.issuer} {verdict.issuer_name}  valid until {verdict.valid_until}"
            )
        else:
            # markup=False: "[code]" is text here, not a Rich style tag.
            console.print(
                f"refused [{verdict.code}]: {verdict.message_en}\n拒绝：{verdict.message_zh}",
                markup=False,
            )
        for n in verdict.notices:
            Console(stderr=True).print(
                f"warning [{n.code}]: {n.message_en}\n警告：{n.message_zh}", markup=False
            )
    raise typer.Exit(EXIT_OK if verdict.ok else EXIT_INVALID)


__all__ = ["keys_app", "passes_app", "read_issuer_export", "trust_app", "verify_command"]
