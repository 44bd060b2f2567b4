"""``healthcode holder``: a holder's phone, as a command-line client of the
HTTP API. Every request after enrollment is signed with the device key.

    healthcode passes device-key phone.key                # once: the device key
    healthcode holder challenge --server URL               # actions to perform
    healthcode holder enroll --server URL --key phone.key --challenge NONCE \\
        --mrz "$MRZ" --name "SURNAME GIVEN" --frames f1.jpg f2.jpg f3.jpg --capture me.jpg
    healthcode holder status --server URL --key phone.key --subject ID
    healthcode holder pass --server URL --key phone.key --subject ID --out pass.txt
    healthcode passes present - --device-key phone.key < pass.txt   # the live QR text
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from healthcode.cli.errors import EXIT_INVALID, EXIT_OK, EXIT_UNAVAILABLE, fail
from healthcode.cli.options import KeyOption, ServerOption
from healthcode.core.errors import HealthcodeError

app = typer.Typer(help="A holder's phone, as a client of the HTTP API.", no_args_is_help=True)

SubjectOption = Annotated[
    str, typer.Option("--subject", help="Your subject id (printed at enrollment).")
]
TIMEOUT_S = 60.0


def _request(method: str, url: str, **kwargs: Any) -> Any:
    import httpx

    try:
        return httpx.request(method, url, timeout=TIMEOUT_S, **kwargs)
    except httpx.HTTPError as exc:
        typer.echo(
            f"error [server_unreachable]: {type(exc).__name__}\n错误：无法连接服务器", err=True
        )
        raise typer.Exit(EXIT_UNAVAILABLE) from None


def _finish(response: Any) -> dict[str, Any]:
    """Print the JSON answer; exit non-zero with the problem's code on failure."""
    try:
        body = response.json()
    except ValueError:
        body = {"status": response.status_code, "text": response.text[:200]}
    print(json.dumps(body, ensure_ascii=False, indent=2))
    if response.status_code >= 400:
        if isinstance(body, dict) and "code" in body:
            typer.echo(
                f"error [{body['code']}]: {body.get('message_en')}\n错误：{body.get('message_zh')}",
                err=True,
            )
        raise typer.Exit(EXIT_UNAVAILABLE if response.status_code >= 500 else EXIT_INVALID)
    return body if isinstance(body, dict) else {"items": body}


def _signed(method: str, server: str, path: str, key: Path, subject: str) -> Any:
    from healthcode.core.auth import sign_request
    from healthcode.core.passes import HolderDevice

    try:
        device = HolderDevice.load(key)
    except HealthcodeError as exc:
        fail(exc, as_json=False)
    header = sign_request(device.private_key, subject, method, path)
    return _request(method, server.rstrip("/") + path, headers={"authorization": header})


@app.command("challenge")
def challenge_command(server: ServerOption) -> None:
    """Ask for a liveness challenge: the actions to perform, in order, and its nonce."""
    _finish(_request("POST", server.rstrip("/") + "/enrollments/challenges", json={}))


@app.command("enroll")
def enroll_command(
    server: ServerOption,
    key: KeyOption,
    challenge: Annotated[str, typer.Option("--challenge", help="The challenge nonce.")],
    name: Annotated[str, typer.Option("--name", help="Your name as on the document.")],
    frames: Annotated[
        list[Path], typer.Option("--frames", help="Frames answering the challenge, in order.")
    ],
    capture: Annotated[Path, typer.Option("--capture", help="A still photo of your face.")],
    number: Annotated[str | None, typer.Option("--number", help="Document number.")] = None,
    mrz: Annotated[str | None, typer.Option("--mrz", help="The document's MRZ text.")] = None,
    image: Annotated[
        Path | None, typer.Option("--image", help="A photo of the document page.")
    ] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Document kind.")] = None,
) -> None:
    """Enroll through the API; the device key's public half is bound to you."""
    from healthcode.core.passes import HolderDevice

    try:
        device = HolderDevice.load(key)
    except HealthcodeError as exc:
        fail(exc, as_json=False)
    data: dict[str, str] = {
        "challenge_nonce": challenge,
        "declared_name": name,
        "device_public_key": base64.b64encode(device.public_key_der).decode(),
    }
    for field, value in (("number", number), ("mrz", mrz), ("kind", kind)):
        if value is not None:
            data[field] = value
    files = [("frames", (p.name, p.read_bytes(), "application/octet-stream")) for p in frames]
    files.append(("capture", (capture.name, capture.read_bytes(), "application/octet-stream")))
    if image is not None:
        files.append(("document_image", (image.name, image.read_bytes(), "image/*")))
    _finish(_request("POST", server.rstrip("/") + "/enrollments", data=data, files=files))


@app.command("status")
def status_command(server: ServerOption, key: KeyOption, subject: SubjectOption) -> None:
    """Today's status (valid until 24:00 Asia/Shanghai)."""
    _finish(_signed("GET", server, "/me/status", key, subject))


@app.command("pass")
def pass_command(
    server: ServerOption,
    key: KeyOption,
    subject: SubjectOption,
    out: Annotated[Path, typer.Option("--out", help="Where to save the pass text.")],
) -> None:
    """Fetch today's signed pass and save it for `healthcode passes present`."""
    body = _finish(_signed("POST", server, "/me/passes", key, subject))
    out.write_text(body["text"] + "\n", encoding="utf-8")
    raise typer.Exit(EXIT_OK)
