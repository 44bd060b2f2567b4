"""``healthcode holder``: a holder's phone, as a command-line client of the
HTTP API. Every request after enrollment is signed with the device key.

    healthcode passes device-key phone.key                 # once: the device key
    healthcode holder challenge --server URL                # actions to perform
    healthcode holder enroll --server URL --key phone.key --challenge NONCE \\
        --image passport-page.jpg --name "SURNAME GIVEN" --capture me.jpg f1.jpg f2.jpg f3.jpg
    healthcode holder status                                # the profile remembers the rest
    healthcode holder pass --out pass.txt
    healthcode passes present pass.txt --watch              # the live QR, renewed every 5 s
    healthcode holder challenge --purpose renew
    healthcode holder renew --challenge NONCE --capture me.jpg f1.jpg f2.jpg f3.jpg
    healthcode holder dependants list

Enrollment saves a holder profile (:mod:`healthcode.cli.profile`): the server,
the subject id and the device key's path, so that later commands need none of
them. A problem is printed once: on stderr, or as JSON on stdout with --json.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from healthcode.cli.client import (
    OptionalServerOption,
    answer,
    build,
    print_json,
    report,
    send,
)
from healthcode.cli.enroll import frames_given, nonce_from
from healthcode.cli.options import CONTEXT_SETTINGS, JsonOption, reflow_help, shanghai_time
from healthcode.cli.profile import (
    ProfileOption,
    holder_settings,
    load_device,
    load_profile,
    profile_path,
    remember,
)
from healthcode.core.errors import HealthcodeError

app = typer.Typer(
    help="A holder's phone, as a client of the HTTP API.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)
dependants_app = typer.Typer(
    help="Dependants (他人代查): people whose statuses you manage.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)
profile_app = typer.Typer(
    help="The holder profile: server, subject id and device key remembered.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)
app.add_typer(dependants_app, name="dependants")
app.add_typer(profile_app, name="profile")

KeyOption = Annotated[
    Path | None,
    typer.Option(
        "--key",
        dir_okay=False,
        help="The device key file `passes device-key` wrote (default: the profile's).",
        show_default=False,
    ),
]
SubjectOption = Annotated[
    str | None,
    typer.Option(
        "--subject",
        help="Your subject id, printed at enrollment (default: the profile's).",
        show_default=False,
    ),
]
ChallengeOption = Annotated[
    str,
    typer.Option(
        "--challenge", help="The challenge's nonce, or the JSON file `holder challenge` wrote."
    ),
]
FramesArgument = Annotated[
    list[Path] | None,
    typer.Argument(
        exists=True,
        dir_okay=False,
        show_default=False,
        metavar="FRAMES",
        help="Liveness frames answering the challenge, in order, after the options.",
    ),
]
FramesMisuseOption = Annotated[list[Path] | None, typer.Option("--frames", hidden=True)]
CaptureOption = Annotated[
    Path,
    typer.Option("--capture", exists=True, dir_okay=False, help="A still photo of the face."),
]
NameOption = Annotated[str, typer.Option("--name", help="The name as on the document.")]
NumberOption = Annotated[str | None, typer.Option("--number", help="Document number.")]
MrzOption = Annotated[str | None, typer.Option("--mrz", help="The document's MRZ text.")]
ImageOption = Annotated[
    Path | None,
    typer.Option("--image", exists=True, dir_okay=False, help="A photo of the document page."),
]
KindOption = Annotated[str | None, typer.Option("--kind", help="Document kind.")]
StateOption = Annotated[
    str | None, typer.Option("--issuing-state", help="ICAO code, for typed passport numbers.")
]


def _say(line: str) -> None:
    """One line for a person (no markup, no wrapping: ids must stay whole)."""
    print(line)


def _run(as_json: bool, body: Callable[[], None]) -> None:
    try:
        body()
    except HealthcodeError as exc:
        report(exc, as_json=as_json)


def _status_line(status: dict[str, Any]) -> str:
    return (
        f"{status['label_zh']} / {status['label_en']} ({status['colour']}), "
        f"valid until / 有效期至 {shanghai_time(status['valid_until'])}"
    )


def _subject_line(subject: dict[str, Any]) -> str:
    return f"{subject['masked_name']} {subject['masked_number']} ({subject['kind']})"


def _files(frames: list[Path], capture: Path, image: Path | None = None) -> list[Any]:
    files: list[Any] = [
        ("frames", (p.name, p.read_bytes(), "application/octet-stream")) for p in frames
    ]
    files.append(("capture", (capture.name, capture.read_bytes(), "application/octet-stream")))
    if image is not None:
        files.append(("document_image", (image.name, image.read_bytes(), "image/*")))
    return files


def _document_fields(
    number: str | None, mrz: str | None, kind: str | None, issuing_state: str | None
) -> dict[str, str]:
    fields = {"number": number, "mrz": mrz, "kind": kind, "issuing_state": issuing_state}
    return {k: v.replace("|", "\n") if k == "mrz" else v for k, v in fields.items() if v}


def _signed(
    profile: str,
    server: str | None,
    key: Path | None,
    subject: str | None,
    method: str,
    path: str,
    **kwargs: Any,
) -> Any:
    """A request signed with the device key (HC-Device), and its JSON answer."""
    from healthcode.core.auth import sign_request

    settings = holder_settings(profile, server, key, subject)
    base = settings.need_server()
    device = load_device(settings.need_key())
    subject_id = settings.need_subject()
    request = build(method, base + path, **kwargs)
    body = request.read()
    target = request.url.raw_path.decode("ascii")  # the path and query exactly as sent
    request.headers["authorization"] = sign_request(
        device.private_key, subject_id, method, target, body
    )
    return answer(send(request, base))


@app.command("challenge")
def challenge_command(
    server: OptionalServerOption = None,
    purpose: Annotated[
        str, typer.Option("--purpose", help="enroll, renew or dependant.")
    ] = "enroll",
    out: Annotated[
        Path | None, typer.Option("--out", help="Also save the challenge (JSON) here.")
    ] = None,
    profile: ProfileOption = "default",
    as_json: JsonOption = False,
) -> None:
    """Ask for a liveness challenge: the actions to perform, in order, and its nonce."""
    import json

    if purpose not in ("enroll", "renew", "dependant"):
        raise typer.BadParameter("enroll, renew or dependant", param_hint="--purpose")

    def body() -> None:
        base = holder_settings(profile, server, None, None).need_server()
        url = base + "/enrollments/challenges"
        got = answer(send(build("POST", url, json={"purpose": purpose}), base))
        if out is not None:
            out.write_text(json.dumps(got) + "\n", encoding="utf-8")
        if as_json:
            print_json(got)
            return
        _say(f"nonce: {got['nonce']}")
        _say(f"actions / 动作: {', '.join(got['actions'])}")
        _say(f"expires / 过期: {shanghai_time(got['expires_at'])}")

    _run(as_json, body)


@app.command("enroll")
def enroll_command(
    challenge: ChallengeOption,
    name: NameOption,
    capture: CaptureOption,
    frames: FramesArgument = None,
    server: OptionalServerOption = None,
    key: KeyOption = None,
    number: NumberOption = None,
    mrz: MrzOption = None,
    image: ImageOption = None,
    kind: KindOption = None,
    issuing_state: StateOption = None,
    frames_misused: FramesMisuseOption = None,
    profile: ProfileOption = "default",
    as_json: JsonOption = False,
) -> None:
    """Enroll through the API with a document, FRAMES answering the challenge and
    a capture; the device key is bound to you, and the profile remembers the
    server, your subject id and the key."""
    given = frames_given("holder enroll", frames, frames_misused)

    def body() -> None:
        settings = holder_settings(profile, server, key, None)
        base = settings.need_server()
        key_file = settings.need_key()
        device = load_device(key_file)
        data = {
            "challenge_nonce": nonce_from(challenge),
            "declared_name": name,
            "device_public_key": base64.b64encode(device.public_key_der).decode(),
            **_document_fields(number, mrz, kind, issuing_state),
        }
        request = build(
            "POST", base + "/enrollments", data=data, files=_files(given, capture, image)
        )
        got = answer(send(request, base))
        saved = remember(
            profile, server=base, subject_id=got["subject"]["subject_id"], device_key=key_file
        )
        if as_json:
            print_json({**got, "profile": {"name": profile, "path": str(saved)}})
            return
        _say(f"enrolled / 已登记 ({got['outcome']}): {_subject_line(got['subject'])}")
        _say(f"subject id / 主体编号: {got['subject']['subject_id']}")
        _say(_status_line(got["status"]))
        _say_warnings(got)
        _say(f"profile '{profile}' saved / 已保存配置: {saved}")

    _run(as_json, body)


@app.command("status")
def status_command(
    server: OptionalServerOption = None,
    key: KeyOption = None,
    subject: SubjectOption = None,
    profile: ProfileOption = "default",
    as_json: JsonOption = False,
) -> None:
    """Today's status (valid until 24:00 Asia/Shanghai)."""

    def body() -> None:
        got = _signed(profile, server, key, subject, "GET", "/me/status")
        if as_json:
            print_json(got)
        else:
            _say(_status_line(got))

    _run(as_json, body)


@app.command("pass")
def pass_command(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Where to save the pass text (default: print it)."),
    ] = None,
    server: OptionalServerOption = None,
    key: KeyOption = None,
    subject: SubjectOption = None,
    profile: ProfileOption = "default",
    as_json: JsonOption = False,
) -> None:
    """Fetch today's signed pass, for `healthcode passes present`."""

    def body() -> None:
        got = _signed(profile, server, key, subject, "POST", "/me/passes")
        if out is not None:
            out.write_text(got["text"] + "\n", encoding="utf-8")
        if as_json:
            print_json(got)
        elif out is None:
            print(got["text"])
        else:
            _say(f"pass saved / 通行码已保存: {out}")
            _say(_status_line(got["status"]))
            _say(f"show it / 出示: healthcode passes present {out} --watch")

    _run(as_json, body)


@app.command("renew")
def renew_command(
    challenge: ChallengeOption,
    capture: CaptureOption,
    frames: FramesArgument = None,
    server: OptionalServerOption = None,
    key: KeyOption = None,
    subject: SubjectOption = None,
    frames_misused: FramesMisuseOption = None,
    profile: ProfileOption = "default",
    as_json: JsonOption = False,
) -> None:
    """Today's status by face alone: FRAMES answering a `--purpose renew` challenge."""
    given = frames_given("holder renew", frames, frames_misused)

    def body() -> None:
        data = {"challenge_nonce": nonce_from(challenge)}
        got = _signed(
            profile,
            server,
            key,
            subject,
            "POST",
            "/me/renewals",
            data=data,
            files=_files(given, capture),
        )
        if as_json:
            print_json(got)
            return
        _say(f"renewed / 已更新: {_subject_line(got['subject'])}")
        _say(_status_line(got["status"]))
        _say_warnings(got)

    _run(as_json, body)


def _say_warnings(answer: dict[str, Any]) -> None:
    """The warnings of the server's answer, each in both languages."""
    for w in answer.get("warnings", []):
        _say(f"warning [{w['code']}]: {w['message_en']} / {w['message_zh']}")


# --- dependants -------------------------------------------------------------------------


@dependants_app.command("list")
def dependants_list_command(
    server: OptionalServerOption = None,
    key: KeyOption = None,
    subject: SubjectOption = None,
    profile: ProfileOption = "default",
    as_json: JsonOption = False,
) -> None:
    """Your dependants, each with today's status."""

    def body() -> None:
        got = _signed(profile, server, key, subject, "GET", "/me/dependants")
        if as_json:
            print_json({"ok": True, "dependants": got})
            return
        if not got:
            _say("no dependants / 暂无被代查人")
        for item in got:
            _say(
                f"{item['slot']}. {_subject_line(item['subject'])}: {_status_line(item['status'])}"
            )

    _run(as_json, body)


@dependants_app.command("add")
def dependants_add_command(
    challenge: ChallengeOption,
    name: NameOption,
    capture: CaptureOption,
    frames: FramesArgument = None,
    number: NumberOption = None,
    mrz: MrzOption = None,
    image: ImageOption = None,
    kind: KindOption = None,
    issuing_state: StateOption = None,
    server: OptionalServerOption = None,
    key: KeyOption = None,
    subject: SubjectOption = None,
    frames_misused: FramesMisuseOption = None,
    profile: ProfileOption = "default",
    as_json: JsonOption = False,
) -> None:
    """Add a dependant: their document, and FRAMES and --capture of THEIR face
    answering a `--purpose dependant` challenge."""
    given = frames_given("holder dependants add", frames, frames_misused)

    def body() -> None:
        data = {
            "challenge_nonce": nonce_from(challenge),
            "declared_name": name,
            **_document_fields(number, mrz, kind, issuing_state),
        }
        got = _signed(
            profile,
            server,
            key,
            subject,
            "POST",
            "/me/dependant-enrollments",
            data=data,
            files=_files(given, capture, image),
        )
        if as_json:
            print_json(got)
            return
        _say(f"{got['slot']}. {_subject_line(got['subject'])}: {_status_line(got['status'])}")

    _run(as_json, body)


# --- the profile ------------------------------------------------------------------------


@profile_app.command("show")
def profile_show_command(profile: ProfileOption = "default", as_json: JsonOption = False) -> None:
    """What the profile remembers, and where it is kept."""

    def body() -> None:
        saved = load_profile(profile)
        path = profile_path(profile)
        payload = {"name": profile, "path": str(path), "exists": path.is_file(), **saved.as_dict()}
        if as_json:
            print_json(payload)
            return
        for field in ("name", "path", "server", "subject_id", "device_key"):
            _say(f"{field}: {payload[field] or '-'}")

    _run(as_json, body)


@profile_app.command("save")
def profile_save_command(
    server: OptionalServerOption = None,
    key: KeyOption = None,
    subject: SubjectOption = None,
    profile: ProfileOption = "default",
    as_json: JsonOption = False,
) -> None:
    """Remember a server, device key or subject id given here (e.g. after
    enrolling elsewhere); values not given are kept."""

    def body() -> None:
        from healthcode.cli.profile import ProfileInvalidError

        if subject is not None and not (
            len(subject) == 64 and all(c in "0123456789abcdef" for c in subject)
        ):
            raise ProfileInvalidError(
                "A subject id is 64 lower-case hex characters, as printed at enrollment.",
                "主体编号为 64 位小写十六进制字符，登记时已显示。",
                details={"reason": "subject_id"},
            )
        path = remember(
            profile,
            server=server.rstrip("/") if server else None,
            subject_id=subject,
            device_key=key,
        )
        if as_json:
            print_json({"ok": True, "name": profile, "path": str(path)})
        else:
            _say(f"profile '{profile}' saved / 已保存配置: {path}")

    _run(as_json, body)


reflow_help(app)
