"""``healthcode verify``: a guard's device checking a live code, offline (the
signed trust and revocation lists) or online (``--online``: the service's
``/guard/verifications`` with a guard token)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from healthcode.cli.client import (
    OptionalServerOption,
    answer,
    build,
    localised,
    read_text_file,
    report,
    send,
)
from healthcode.cli.errors import EXIT_DO_NOT_ADMIT, EXIT_INVALID, EXIT_OK, fail
from healthcode.cli.options import (
    JsonOption,
    KeysDirOption,
    NowOption,
    TrustFileOption,
    now_from,
    reflow_help,
    shanghai_time,
    stores,
)
from healthcode.cli.profile import ProfileOption, holder_settings
from healthcode.core.errors import HealthcodeError, InputError
from healthcode.core.passes import (
    RevocationList,
    TrustList,
    Verdict,
    Verifier,
    load_revocation_list,
)

CodeArgument = Annotated[
    str,
    typer.Argument(help="HCP1:... text, a text file holding it, a QR image file, or - for stdin."),
]
OnlineOption = Annotated[
    bool,
    typer.Option(
        "--online/--offline",
        help="Ask the service (--server, a guard --token): revocations and replays "
        "across every guard's screen.",
    ),
]
GUARD_TOKEN_ENV = "HEALTHCODE_GUARD_TOKEN"
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar=GUARD_TOKEN_ENV,
        help="--online: a guard token (`healthcode tokens create --role guard`).",
        show_default=False,
    ),
]
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


class OnlineUnavailableError(InputError):
    code = "online_unavailable"
    default_en = (
        "Online verification needs the service's address: give --server URL "
        "(or HEALTHCODE_SERVER, or a holder profile's server)."
    )
    default_zh = "在线核验需要服务地址：请使用 --server URL（或 HEALTHCODE_SERVER 环境变量）。"


class GuardTokenMissingError(InputError):
    code = "guard_token_missing"
    default_en = (
        "Online verification needs a guard token: give --token (or HEALTHCODE_GUARD_TOKEN), "
        "from `healthcode tokens create --role guard`."
    )
    default_zh = (
        "在线核验需要核验员令牌：请使用 --token（或 HEALTHCODE_GUARD_TOKEN 环境变量），"
        "令牌由 `healthcode tokens create --role guard` 生成。"
    )


def verify_command(
    code: CodeArgument,
    online: OnlineOption = False,
    server: OptionalServerOption = None,
    token: TokenOption = None,
    profile: ProfileOption = "default",
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

    Online (--online --server URL --token TOKEN), the service answers: it
    knows every revocation and every code any guard of the node accepted.
    Same exit codes; 69 when the service cannot be reached.
    """
    from healthcode.core.replay import SeenList, default_seen_file

    text = _read_code(code, as_json=as_json)
    if online:
        _verify_online(text, server, token, profile, as_json=as_json)
    trust, lists = _load_lists(keys_dir, trust_file, revocation_list or [], as_json=as_json)
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
        print(json.dumps(localised(verdict.as_dict()), ensure_ascii=False))
    else:
        _print_verdict(verdict)
    raise typer.Exit(_exit_code(verdict))


def _verify_online(
    text: str, server: str | None, token: str | None, profile: str, *, as_json: bool
) -> NoReturn:
    """Ask the service's /guard/verifications; print its answer as offline; exit."""
    try:
        base = holder_settings(profile, server, None, None).server
        if not base:
            raise OnlineUnavailableError()
        if not token:
            raise GuardTokenMissingError()
        base = base.rstrip("/")
        request = build(
            "POST",
            base + "/guard/verifications",
            json={"presentation": text.strip()},
            headers={"authorization": f"Bearer {token.strip()}"},
        )
        verdict = answer(send(request, base))
    except HealthcodeError as exc:
        report(exc, as_json=as_json)
    if as_json:
        print(json.dumps(localised(verdict), ensure_ascii=False))
    else:
        _print_online(verdict)
    if verdict.get("admit"):
        raise typer.Exit(EXIT_OK)
    raise typer.Exit(EXIT_DO_NOT_ADMIT if verdict.get("ok") else EXIT_INVALID)


def _print_online(verdict: dict[str, Any]) -> None:
    """The service's answer, for the guard: the decision first."""
    console = Console(stderr=not verdict.get("ok"), highlight=False, soft_wrap=True)
    mark = "✔" if verdict.get("admit") else "✘"
    console.print(
        f"{mark} {verdict.get('decision_zh')} {str(verdict.get('decision_en')).upper()}",
        markup=False,
        style="bold",
    )
    if verdict.get("ok"):
        console.print(f"{verdict.get('label_zh')} {verdict.get('label_en')}", markup=False)
        console.print(f"{verdict.get('masked_name')} {verdict.get('masked_number')}", markup=False)
        until = verdict.get("valid_until")  # the service's UTC time
        console.print(
            f"{verdict.get('issuer')}  valid until / 有效期至 {shanghai_time(until)}",
            markup=False,
        )
    else:
        console.print(
            f"refused [{verdict.get('code')}]: {verdict.get('message_en')}\n"
            f"拒绝：{verdict.get('message_zh')}",
            markup=False,
        )
    for notice in verdict.get("notices") or []:
        Console(stderr=True).print(f"notice [{notice}]", markup=False)


def _exit_code(verdict: Verdict) -> int:
    """0 admit; 4 genuine but not green (do not admit); 1 refused."""
    if verdict.admit:
        return EXIT_OK
    return EXIT_DO_NOT_ADMIT if verdict.ok else EXIT_INVALID


def _read_code(code: str, *, as_json: bool) -> str:
    """The live code's text: as given, from stdin (``-``), or read from a QR image."""
    if code == "-":
        return sys.stdin.read(8192)
    if code.startswith(("HC1:", "HCP1:")) or len(code) > 4096 or not Path(code).is_file():
        return code
    text = read_text_file(Path(code))  # `passes present ... > shown.txt`
    if text is not None:
        return text
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
    console = Console(stderr=not verdict.ok, soft_wrap=True)
    # The decision first, in words, whatever the terminal's colours.
    mark = "✔" if verdict.admit else "✘"
    console.print(
        f"{mark} {verdict.decision_zh} {verdict.decision_en.upper()}", markup=False, style="bold"
    )
    if verdict.ok and verdict.colour and verdict.masked:
        style = {"green": "green", "yellow": "yellow", "red": "red"}[verdict.colour.value]
        console.print(f"[{style}]{verdict.colour.label_zh} {verdict.colour.label_en}[/{style}]")
        console.print(f"{verdict.masked.masked_name} {verdict.masked.masked_number}")
        until = shanghai_time(verdict.valid_until)
        console.print(f"{verdict.issuer} {verdict.issuer_name}  valid until / 有效期至 {until}")
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


reflow_help(verify_command)
