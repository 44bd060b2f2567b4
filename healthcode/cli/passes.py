"""``healthcode passes``: issue (admin and testing), present, render and show passes.

``passes device-key`` writes the holder's PRIVATE device key (PEM, 0600): the
one file a holder gives to ``--key``, ``--device-key`` and ``enroll submit
--device-key`` (which binds its public half). ``passes present --watch`` shows
the live code as a terminal QR renewed every 5 s, as the phone does.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from healthcode.cli.client import code_text, localised
from healthcode.cli.errors import fail
from healthcode.cli.options import (
    CONTEXT_SETTINGS,
    JsonOption,
    KeysDirOption,
    NowOption,
    algorithm,
    now_from,
    reflow_help,
    shanghai_time,
)
from healthcode.cli.profile import ProfileOption, holder_settings, load_device
from healthcode.core.errors import HealthcodeError
from healthcode.core.models import Colour, MaskedDocument
from healthcode.core.passes import HolderDevice, KeyStore, issue_pass, read_pass

app = typer.Typer(
    help="Passes: issue (admin/testing), render QR, present.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)


@app.command("device-key")
def passes_device_key(
    output: Annotated[Path, typer.Argument(help="Where to write the holder key (PEM, 0600).")],
    alg: Annotated[str, typer.Option("--alg")] = "ES256",
) -> None:
    """Create a holder device key: a PRIVATE key file (0600) to keep on this
    device and to give as it is to --key and --device-key (testing: a phone
    keeps its own)."""
    HolderDevice.generate(algorithm(alg)).save(output)
    print(output)
    print(
        "private device key (keep it secret, on this device); give this file to "
        "`holder enroll --key` and `passes present --device-key`.\n"
        "设备私钥（请妥善保管，勿外传）；`holder enroll --key` 和 `passes present "
        "--device-key` 均使用此文件。",
        file=sys.stderr,
    )


@app.command("issue")
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
            now=now_from(now),
        )
    except HealthcodeError as exc:
        fail(exc, as_json=as_json)
    if as_json:
        print(
            json.dumps(
                localised(
                    {
                        "ok": True,
                        "pass": issued.text,
                        "pass_id": issued.claims.pass_id.hex(),
                        "valid_until": issued.claims.valid_until.isoformat(),
                    }
                )
            )
        )
    else:
        print(issued.text)


DeviceKeyOption = Annotated[
    Path | None,
    typer.Option(
        "--device-key",
        "--key",
        dir_okay=False,
        help="The device key file `passes device-key` wrote (default: the holder profile's).",
        show_default=False,
    ),
]


@app.command("present")
def passes_present(
    pass_text: Annotated[
        str, typer.Argument(help="HC1:... text, a file holding it (holder pass --out), or -.")
    ],
    device_key: DeviceKeyOption = None,
    watch: Annotated[
        bool, typer.Option("--watch", help="Show a terminal QR, renewed until Ctrl-C.")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.0, help="--watch: seconds between codes.")
    ] = 5.0,
    count: Annotated[
        int, typer.Option("--count", min=0, help="--watch: stop after this many codes (0: never).")
    ] = 0,
    profile: ProfileOption = "default",
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make a live code (HCP1:...) with the holder key: what the phone shows."""
    text = code_text(pass_text)
    try:
        device = load_device(holder_settings(profile, None, device_key, None).need_key())
        if not watch:
            shown = device.present(text, now_from(now))
        else:
            _watch(device, text, interval=interval, count=count, now=now)
            return
    except HealthcodeError as exc:
        fail(exc, as_json=as_json)
    print(json.dumps({"ok": True, "presentation": shown}) if as_json else shown)


def _watch(
    device: HolderDevice, text: str, *, interval: float, count: int, now: str | None
) -> None:
    """Print a fresh live code as a terminal QR every ``interval`` seconds."""
    from healthcode.core.passes.errors import PassExpiredError
    from healthcode.core.passes.qr import qr_terminal

    _, claims = read_pass(text)
    start = time.monotonic()
    base = now_from(now) if now is not None else None
    shown_count = 0
    try:
        while count == 0 or shown_count < count:
            elapsed = dt.timedelta(seconds=time.monotonic() - start)
            at = base + elapsed if base is not None else now_from(None)
            if at >= claims.valid_until:
                raise PassExpiredError(details={"valid_until": claims.valid_until.isoformat()})
            shown = device.present(text, at)
            if sys.stdout.isatty():
                print("\x1b[2J\x1b[H", end="")  # a clean screen for each code
            print(qr_terminal(shown))
            print(shown)
            print(
                f"shown at / 生成于 {shanghai_time(at)}; pass valid until / 通行码有效期至 "
                f"{shanghai_time(claims.valid_until)}; a new code every {interval:g} s, "
                "Ctrl-C to stop / 定时更新，按 Ctrl-C 停止",
                flush=True,
            )
            shown_count += 1
            if count == 0 or shown_count < count:
                time.sleep(interval)
    except KeyboardInterrupt:
        print("stopped / 已停止", file=sys.stderr)


@app.command("qr")
def passes_qr(
    text: Annotated[
        str, typer.Argument(help="HC1:/HCP1: text, a file holding it, or - for stdin.")
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help=".png or .svg; default: terminal.")
    ] = None,
) -> None:
    """Render a pass or live code as a QR code (PNG, SVG or terminal)."""
    from healthcode.core.passes.qr import qr_png, qr_svg, qr_terminal

    value = code_text(text)
    if output is None:
        print(qr_terminal(value))
    elif output.suffix.lower() == ".svg":
        output.write_text(qr_svg(value), encoding="utf-8")
    else:
        output.write_bytes(qr_png(value))


@app.command("show")
def passes_show(
    text: Annotated[str, typer.Argument(help="HC1:... text, a file holding it, or - for stdin.")],
) -> None:
    """Decode a pass WITHOUT verifying it (what it claims, for support staff)."""
    try:
        _, claims = read_pass(code_text(text))
    except HealthcodeError as exc:
        fail(exc, as_json=True)
    payload = {
        "issuer": claims.issuer,
        "colour": claims.colour.value,
        "document_kind": claims.document_kind,
        "masked_name": claims.masked_name,
        "masked_number": claims.masked_number,
        "valid_until": claims.valid_until.isoformat(),
        "verified": False,
    }
    print(json.dumps(localised(payload), ensure_ascii=False))


reflow_help(app)
