"""``healthcode passes``: issue (admin and testing), present, render and show passes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from healthcode.cli.errors import fail
from healthcode.cli.options import (
    JsonOption,
    KeysDirOption,
    NowOption,
    algorithm,
    now_from,
)
from healthcode.core.errors import HealthcodeError
from healthcode.core.models import Colour, MaskedDocument
from healthcode.core.passes import HolderDevice, KeyStore, issue_pass, read_pass

app = typer.Typer(help="Passes: issue (admin/testing), render QR, present.", no_args_is_help=True)


@app.command("device-key")
def passes_device_key(
    output: Annotated[Path, typer.Argument(help="Where to write the holder key (PEM, 0600).")],
    alg: Annotated[str, typer.Option("--alg")] = "ES256",
) -> None:
    """Create a holder device key (testing: a phone keeps its own)."""
    HolderDevice.generate(algorithm(alg)).save(output)
    print(output)


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


@app.command("present")
def passes_present(
    pass_text: Annotated[str, typer.Argument(help="HC1:... text, or - for stdin.")],
    device_key: Annotated[Path, typer.Option("--device-key")],
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make a live code (HCP1:...) with the holder key: what the phone shows."""
    text = sys.stdin.read(8192) if pass_text == "-" else pass_text
    try:
        shown = HolderDevice.load(device_key).present(text, now_from(now))
    except HealthcodeError as exc:
        fail(exc, as_json=as_json)
    print(json.dumps({"ok": True, "presentation": shown}) if as_json else shown)


@app.command("qr")
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


@app.command("show")
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
