"""``healthcode verify``: a guard's device checking a live code offline."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from healthcode.cli.errors import EXIT_DO_NOT_ADMIT, EXIT_INVALID, EXIT_OK, fail
from healthcode.cli.options import (
    JsonOption,
    KeysDirOption,
    NowOption,
    TrustFileOption,
    now_from,
    stores,
)
from healthcode.core.errors import HealthcodeError
from healthcode.core.passes import (
    RevocationList,
    TrustList,
    Verdict,
    Verifier,
    load_revocation_list,
)

CodeArgument = Annotated[
    str, typer.Argument(help="HCP1:... text, a QR image file, or - for stdin.")
]
OnlineOption = Annotated[bool, typer.Option("--online/--offline", help="Also ask for revocations.")]
RevocationListOption = Annotated[
    list[Path] | None, typer.Option("--revocation-list", help="HCR1 file(s) for offline use.")
]
WindowOption = Annotated[int, typer.Option("--window", help="Seconds a live code stays valid.")]
RequireRevocationListOption = Annotated[
    bool,
    typer.Option(
        "--require-revocation-list",
        help="Refuse (revocation_list_missing) a pass whose region has no --revocation-list; "
        "without it such a pass is accepted with the notice revocations_not_checked.",
    ),
]
SeenFileOption = Annotated[
    Path | None,
    typer.Option(
        "--seen-file",
        envvar="HEALTHCODE_SEEN_FILE",
        help="Where accepted live codes are remembered until they expire "
        "(default: seen-live-codes.json in the user's state directory).",
    ),
]
SeenListOption = Annotated[
    bool,
    typer.Option(
        "--seen-list/--no-seen-list",
        help="Refuse a live code this device already accepted (presentation_replayed).",
    ),
]

ONLINE_UNAVAILABLE = HealthcodeError(
    "Online revocation needs the status service, which is not configured.",
    "在线撤销查询需要状态服务，目前尚未配置。",
    code="online_unavailable",
)


def verify_command(
    code: CodeArgument,
    online: OnlineOption = False,
    revocation_list: RevocationListOption = None,
    keys_dir: KeysDirOption = None,
    trust_file: TrustFileOption = None,
    window: WindowOption = 30,
    require_revocation_list: RequireRevocationListOption = False,
    seen_file: SeenFileOption = None,
    seen_list: SeenListOption = True,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Verify a live code: admit (通行) or do not admit (禁止通行) first, then the
    colour, masked identity, issuer and valid-until, or why not.

    Only a genuine, current, green pass admits. Exit codes: 0 admit; 4 genuine
    and current but yellow or red (do not admit); 1 refused (forged, expired,
    replayed, revoked, unknown issuer, ...).

    Each live code is accepted once on this device: accepted codes are kept in
    a seen-list file until they expire, and a second showing is refused
    (presentation_replayed). Without a revocation list for the pass's region,
    revocations are not checked, and the answer says so.
    """
    from healthcode.core.replay import SeenList, default_seen_file

    text = _read_code(code, as_json=as_json)
    trust, lists = _load_lists(keys_dir, trust_file, revocation_list or [], as_json=as_json)
    if online:
        # The live revocation query belongs to the status service (not wired yet).
        fail(ONLINE_UNAVAILABLE, as_json=as_json)
    at = now_from(now)
    verifier = Verifier(
        trust,
        revocation_lists=lists,
        window=dt.timedelta(seconds=window),
        clock=lambda: at,
        missing_revocation_list="refuse" if require_revocation_list else "notice",
        seen=SeenList(seen_file or default_seen_file()).first_use if seen_list else None,
    )
    try:
        verdict = verifier.verify(text)
    except HealthcodeError as exc:  # the seen-list file, never the code itself
        fail(exc, as_json=as_json)
    if as_json:
        print(json.dumps(verdict.as_dict(), ensure_ascii=False))
    else:
        _print_verdict(verdict)
    raise typer.Exit(_exit_code(verdict))


def _exit_code(verdict: Verdict) -> int:
    """0 admit; 4 genuine but not green (do not admit); 1 refused."""
    if verdict.admit:
        return EXIT_OK
    return EXIT_DO_NOT_ADMIT if verdict.ok else EXIT_INVALID


def _read_code(code: str, *, as_json: bool) -> str:
    """The live code's text: as given, from stdin (``-``), or read from a QR image."""
    if code == "-":
        return sys.stdin.read(8192)
    if code.startswith(("HC1:", "HCP1:")) or not Path(code).is_file():
        return code
    from healthcode.core.passes.qr import decode_qr

    try:
        return decode_qr(Path(code))
    except HealthcodeError as exc:
        fail(exc, as_json=as_json)


def _load_lists(
    keys_dir: Path | None, trust_file: Path | None, revocation_files: list[Path], *, as_json: bool
) -> tuple[TrustList, list[RevocationList]]:
    """The signed trust list, and the revocation lists checked against it."""
    try:
        _, store = stores(keys_dir, trust_file)
        trust = store.load()
        lists = [
            load_revocation_list(p.read_text(encoding="ascii"), trust) for p in revocation_files
        ]
    except HealthcodeError as exc:
        fail(exc, as_json=as_json)
    return trust, lists


def _print_verdict(verdict: Verdict) -> None:
    """For the guard: the colour, masked identity and issuer; or why not (stderr)."""
    console = Console(stderr=not verdict.ok)
    # The decision first, in words, whatever the terminal's colours.
    mark = "✔" if verdict.admit else "✘"
    console.print(
        f"{mark} {verdict.decision_zh} {verdict.decision_en.upper()}", markup=False, style="bold"
    )
    if verdict.ok and verdict.colour and verdict.masked:
        style = {"green": "green", "yellow": "yellow", "red": "red"}[verdict.colour.value]
        console.print(f"[{style}]{verdict.colour.label_zh} {verdict.colour.label_en}[/{style}]")
        console.print(f"{verdict.masked.masked_name} {verdict.masked.masked_number}")
        console.print(f"{verdict.issuer} {verdict.issuer_name}  valid until {verdict.valid_until}")
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
