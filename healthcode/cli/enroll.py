"""Enrollment commands: ``enroll challenge|submit|renew``, ``dependants add|list``,
``assist check``.

``healthcode.cli.main`` mounts ``enroll_app`` as ``healthcode enroll``,
``dependants_app`` as ``healthcode dependants`` and ``assist_app`` as
``healthcode assist``. Everything here is a thin shell over
``healthcode.core.enrollment``; images are read with the safe decoder, and
the face stack loads only inside the commands that need it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from healthcode.cli.options import (
    CONTEXT_SETTINGS,
    DatabaseOption,
    JsonOption,
    MrzOption,
    NowOption,
    SecretsOption,
    StateOption,
    make_table,
    parse_now,
    print_json,
    reflow_help,
    run_async,
    shanghai_time,
    with_database,
)
from healthcode.core.errors import HealthcodeError, InputError

T = TypeVar("T")

enroll_app = typer.Typer(
    help="Enroll with a document and a live face; renew by face alone.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)
dependants_app = typer.Typer(
    help="Dependants (他人代查): up to 4 people whose statuses a holder manages.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)
assist_app = typer.Typer(
    help="Assisted quick check (老幼助查) for people aged 16 or under or 60 or over.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)


@assist_app.callback()
def _assist_group() -> None:
    """Assisted quick check (老幼助查): masked, kept nowhere, rate-limited per operator."""
    # A callback keeps `assist` a group even with a single command, so that
    # `healthcode assist check` stays stable when commands are added.


KindOption = Annotated[str | None, typer.Option("--kind", "-k", help="Document kind.")]
NumberOption = Annotated[str | None, typer.Option("--number", "-n", help="Document number.")]
ImageOption = Annotated[
    Path | None,
    typer.Option("--image", exists=True, dir_okay=False, help="Photo of the data page."),
]
NameOption = Annotated[
    str, typer.Option("--name", help="The name as written on the document (checked against it).")
]
ChallengeOption = Annotated[
    str,
    typer.Option(
        "--challenge", help="The challenge's nonce, or the JSON file `enroll challenge` wrote."
    ),
]
FramesArgument = Annotated[
    list[Path] | None,
    typer.Argument(
        exists=True,
        dir_okay=False,
        show_default=False,
        metavar="FRAMES",
        help="Liveness frames, in the order taken, after the options (no --frames).",
    ),
]
FramesMisuseOption = Annotated[list[Path] | None, typer.Option("--frames", hidden=True)]
"""Catches ``--frames f1 f2``: the answer says to list the frames positionally."""
CaptureOption = Annotated[
    Path,
    typer.Option("--capture", exists=True, dir_okay=False, help="A still photo of the person."),
]
DeviceKeyOption = Annotated[
    Path | None,
    typer.Option(
        "--device-key",
        exists=True,
        dir_okay=False,
        help="The holder's device key: the file `passes device-key` wrote (its public "
        "half is bound), or a public key (P-256 or Ed25519, DER or PEM).",
    ),
]
PreviousKindOption = Annotated[
    str | None, typer.Option("--previous-kind", help="Kind of the document enrolled before.")
]
PreviousNumberOption = Annotated[
    str | None,
    typer.Option("--previous-number", help="A renewed document: the number enrolled before."),
]
PreviousMrzOption = Annotated[
    str | None, typer.Option("--previous-mrz", help="A renewed document: the MRZ before.")
]
PreviousStateOption = Annotated[
    str | None, typer.Option("--previous-issuing-state", help="ICAO code of the previous.")
]
SubjectOption = Annotated[str, typer.Option("--subject", help="The holder's subject id.")]
HolderOption = Annotated[str, typer.Option("--holder", help="The holder's subject id.")]


def _service_call(
    body: Callable[[Any, dt.datetime | None], Awaitable[T]],
    now: str | None,
    database: str | None,
    secrets_file: Path | None,
    *,
    as_json: bool,
) -> T:
    """``body(service, at)``: an ``EnrollmentService`` on the database, and ``--now``."""
    from healthcode.core.enrollment import EnrollmentService
    from healthcode.core.passes import KeyStore
    from healthcode.core.status.peer_tokens import configured_pair_keys

    at = parse_now(now)

    async def go(db: Any, secrets: Any) -> T:
        keys = KeyStore()
        return await body(
            EnrollmentService(db, secrets, peer_keys=lambda: configured_pair_keys(keys)), at
        )

    return run_async(with_database(database, secrets_file, go), as_json=as_json)


def _submission(
    kind: str | None,
    number: str | None,
    mrz: str | None,
    image: Path | None,
    issuing_state: str | None,
    *,
    what: str = "document",
) -> tuple[Any, list[Any]]:
    from healthcode.core.documents import make_submission

    given = [x for x in (number, mrz, image) if x is not None]
    if len(given) != 1:
        raise typer.BadParameter(
            f"give the {what} as exactly one of --number, --mrz or --image",
            param_hint="--number/--mrz/--image",
        )
    data = image.read_bytes() if image is not None else None
    return make_submission(
        kind=kind,
        number=number,
        mrz=mrz.replace("|", "\n") if mrz is not None else None,
        image=data,
        issuing_state=issuing_state,
    )


def nonce_from(value: str) -> str:
    """``--challenge``: a nonce, or the JSON file a challenge command wrote."""
    path = Path(value)
    if len(value) < 256 and path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8")[:10_000])
        except (ValueError, RecursionError):  # undecodable, malformed, too deep, huge numbers
            raise typer.BadParameter(
                "not a challenge JSON file", param_hint="--challenge"
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("nonce"), str):
            raise typer.BadParameter("the file holds no nonce", param_hint="--challenge")
        return str(data["nonce"])
    return value


def device_public_key(path: Path) -> bytes:
    """``--device-key``: the public half of the private key file `passes
    device-key` wrote, or a public key file as it is (checked by the service)."""
    data = path.read_bytes()
    if b"PRIVATE KEY-----" not in data[:100]:
        return data
    from healthcode.core.passes import HolderDevice

    return HolderDevice.load(path).public_key_der


def frames_given(command: str, frames: list[Path] | None, misused: list[Path] | None) -> list[Path]:
    """The liveness frames, given positionally; ``--frames`` is answered with what to type."""
    if misused or not frames:
        raise typer.BadParameter(
            "give the frames positionally, in order, after the options, without --frames: "
            f"`healthcode {command} ... --capture me.jpg f1.jpg f2.jpg f3.jpg` / "
            "帧图片按顺序直接列在选项之后，不要写 --frames",
            param_hint="FRAMES",
        )
    return frames


def explained(error: HealthcodeError, submission: Any, at: dt.datetime | None) -> HealthcodeError:
    """A refused document's error with each problem's message in Chinese and
    English, not only its code (the service names the codes)."""
    from healthcode.core.clock import today_shanghai
    from healthcode.core.documents import parse_document, validate_document
    from healthcode.core.enrollment.errors import DocumentNotAcceptedError

    if type(error) is not DocumentNotAcceptedError:
        return error
    try:
        found = validate_document(parse_document(submission), today_shanghai(at))
    except HealthcodeError:
        return error
    problems = [p for p in found if p.severity == "error"]
    if problems:
        error.message_en = "The document has errors: " + " ".join(
            f"{p.message_en} [{p.code}]" for p in problems
        )
        error.message_zh = "证件存在错误：" + "".join(f"{p.message_zh}[{p.code}]" for p in problems)
    return error


def _answer(challenge: str, frames: list[Path]) -> Any:
    from healthcode.core.enrollment import LivenessAnswer
    from healthcode.core.images import read_image_file

    return LivenessAnswer(nonce=nonce_from(challenge), frames=[read_image_file(p) for p in frames])


def _request(
    submission: Any,
    warnings: list[Any],
    name: str,
    challenge: str,
    frames: list[Path],
    capture: Path,
    device_key: Path | None = None,
    previous: Any = None,
) -> Any:
    from healthcode.core.enrollment import EnrollmentRequest
    from healthcode.core.images import read_image_file

    return EnrollmentRequest(
        submission=submission,
        declared_name=name,
        liveness=_answer(challenge, frames),
        capture=read_image_file(capture),
        device_public_key=device_public_key(device_key) if device_key is not None else None,
        previous=previous,
        warnings=tuple(warnings),
    )


def _status_line(payload: dict[str, Any]) -> str:
    status = payload["status"]
    return (
        f"{payload['masked_name']} {payload['masked_number']}: [bold {status['colour']}]"
        f"{status['label_zh']} / {status['label_en']}[/] "
        f"(valid until / 有效期至 {shanghai_time(status['valid_until'])})"
    )


# --- enroll -------------------------------------------------------------------------------


@enroll_app.command("challenge")
def challenge_command(
    purpose: Annotated[
        str, typer.Option("--purpose", help="enroll, renew or dependant.")
    ] = "enroll",
    length: Annotated[int, typer.Option("--length", min=1, max=5, help="Number of actions.")] = 2,
    actions: Annotated[
        str | None,
        typer.Option("--actions", hidden=True, help="Fixed comma-separated actions (tests)."),
    ] = None,
    database: DatabaseOption = None,
    secrets_file: SecretsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Issue a liveness challenge (answerable once, within 90 seconds)."""
    if purpose not in ("enroll", "renew", "dependant"):
        raise typer.BadParameter("enroll, renew or dependant", param_hint="--purpose")
    fixed = [a.strip() for a in actions.split(",")] if actions else None

    async def body(service: Any, _at: dt.datetime | None) -> Any:
        try:
            return await service.issue_challenge(purpose=purpose, length=length, actions=fixed)
        except ValueError as exc:
            raise InputError(str(exc), "挑战参数无效。", code="invalid_challenge") from None

    challenge = _service_call(body, None, database, secrets_file, as_json=as_json)
    payload = {
        "nonce": challenge.nonce,
        "purpose": purpose,
        "actions": list(challenge.actions),
        "issued_at": challenge.issued_at.isoformat(),
        "expires_at": challenge.expires_at.isoformat(),
    }
    if as_json:
        print_json(payload)
        return
    console = Console()
    console.print(f"nonce: {challenge.nonce}", highlight=False)
    console.print(f"actions / 动作: {', '.join(challenge.actions)}")
    console.print(f"expires / 过期: {shanghai_time(challenge.expires_at)}")


@enroll_app.command("submit")
def submit_command(
    name: NameOption,
    challenge: ChallengeOption,
    capture: CaptureOption,
    frames: FramesArgument = None,
    frames_misused: FramesMisuseOption = None,
    kind: KindOption = None,
    number: NumberOption = None,
    mrz: MrzOption = None,
    image: ImageOption = None,
    issuing_state: StateOption = None,
    device_key: DeviceKeyOption = None,
    previous_kind: PreviousKindOption = None,
    previous_number: PreviousNumberOption = None,
    previous_mrz: PreviousMrzOption = None,
    previous_state: PreviousStateOption = None,
    now: NowOption = None,
    database: DatabaseOption = None,
    secrets_file: SecretsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Enroll (or re-enroll) with a document, liveness FRAMES and a capture."""
    given = frames_given("enroll submit", frames, frames_misused)

    async def body(service: Any, at: dt.datetime | None) -> Any:
        submission, warnings = _submission(kind, number, mrz, image, issuing_state)
        previous = None
        if previous_number is not None or previous_mrz is not None:
            previous, _ = _submission(
                previous_kind, previous_number, previous_mrz, None, previous_state, what="previous"
            )
        request = _request(
            submission, warnings, name, challenge, given, capture, device_key, previous
        )
        try:
            return await service.enroll(request, now=at)
        except HealthcodeError as exc:
            raise explained(exc, submission, at) from None

    result = _service_call(body, now, database, secrets_file, as_json=as_json)
    payload = _enrollment_payload(result)
    if as_json:
        print_json(payload)
        return
    console = Console()
    console.print(
        f"{result.outcome} / 已登记: subject {result.subject.subject_id}", highlight=False
    )
    console.print(_status_line(payload), highlight=False, soft_wrap=True)
    _print_warnings(console, result.warnings)


def _print_warnings(console: Console, warnings: Sequence[Any]) -> None:
    """Each warning (a ``Problem``) on a line of its own, in both languages."""
    for warning in warnings:
        console.print(
            f"warning [{warning.code}]: {warning.message_en} / {warning.message_zh}",
            highlight=False,
            markup=False,
        )


def _enrollment_payload(result: Any) -> dict[str, Any]:
    """What `enroll submit --json` prints about an ``EnrollmentResult``."""
    from healthcode.core.enrollment import status_to_dict, subject_to_dict

    return {
        "ok": True,
        "outcome": result.outcome,
        **subject_to_dict(result.subject),
        "status": status_to_dict(result.status),
        "match": {
            "reference": result.reference,
            "similarity": round(result.match.similarity, 3),
            "threshold": result.match.threshold,
        },
        "device_key_registered": result.device_public_key is not None,
        "warnings": [w.as_dict() for w in result.warnings],
        "timings": dict(result.timings),
    }


@enroll_app.command("renew")
def renew_command(
    subject: SubjectOption,
    challenge: ChallengeOption,
    capture: CaptureOption,
    frames: FramesArgument = None,
    frames_misused: FramesMisuseOption = None,
    now: NowOption = None,
    database: DatabaseOption = None,
    secrets_file: SecretsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Today's status by face alone (a `--purpose renew` challenge answered)."""
    from healthcode.core.enrollment import status_to_dict, subject_to_dict

    given = frames_given("enroll renew", frames, frames_misused)

    async def body(service: Any, at: dt.datetime | None) -> Any:
        from healthcode.core.images import read_image_file

        return await service.renew(
            subject, _answer(challenge, given), read_image_file(capture), now=at
        )

    result = _service_call(body, now, database, secrets_file, as_json=as_json)
    payload = {
        "ok": True,
        **subject_to_dict(result.subject),
        "status": status_to_dict(result.status),
        "similarity": round(result.match.similarity, 3),
        "warnings": [w.as_dict() for w in result.warnings],
    }
    if as_json:
        print_json(payload)
        return
    console = Console()
    console.print(_status_line(payload), highlight=False, soft_wrap=True)
    _print_warnings(console, result.warnings)


# --- dependants ---------------------------------------------------------------------------


@dependants_app.command("add")
def dependants_add_command(
    holder: HolderOption,
    name: NameOption,
    challenge: ChallengeOption,
    capture: CaptureOption,
    frames: FramesArgument = None,
    frames_misused: FramesMisuseOption = None,
    kind: KindOption = None,
    number: NumberOption = None,
    mrz: MrzOption = None,
    image: ImageOption = None,
    issuing_state: StateOption = None,
    now: NowOption = None,
    database: DatabaseOption = None,
    secrets_file: SecretsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a dependant: their document, and a one-time face check of them
    (FRAMES and --capture show the dependant, with a `--purpose dependant` challenge)."""
    from healthcode.core.enrollment import status_to_dict

    given = frames_given("dependants add", frames, frames_misused)

    async def body(service: Any, at: dt.datetime | None) -> Any:
        submission, warnings = _submission(kind, number, mrz, image, issuing_state)
        request = _request(submission, warnings, name, challenge, given, capture)
        try:
            return await service.add_dependant(holder, request, now=at)
        except HealthcodeError as exc:
            raise explained(exc, submission, at) from None

    view = _service_call(body, now, database, secrets_file, as_json=as_json)
    payload = _dependant_payload(view, status_to_dict)
    if as_json:
        print_json({"ok": True, **payload, "warnings": [w.as_dict() for w in view.warnings]})
        return
    console = Console()
    console.print(f"slot {view.slot}: " + _status_line(payload), highlight=False, soft_wrap=True)
    _print_warnings(console, view.warnings)


def _dependant_payload(
    view: Any, status_to_dict: Callable[[Any], dict[str, Any]]
) -> dict[str, Any]:
    return {
        "slot": view.slot,
        "subject_id": view.subject_id,
        "kind": view.masked.kind,
        "masked_name": view.masked.masked_name,
        "masked_number": view.masked.masked_number,
        "status": status_to_dict(view.status),
    }


@dependants_app.command("list")
def dependants_list_command(
    holder: HolderOption,
    now: NowOption = None,
    database: DatabaseOption = None,
    secrets_file: SecretsOption = None,
    as_json: JsonOption = False,
) -> None:
    """The holder's dependants with today's status each."""
    from healthcode.core.enrollment import status_to_dict

    async def body(service: Any, at: dt.datetime | None) -> Any:
        return await service.list_dependants(holder, now=at)

    views = _service_call(body, now, database, secrets_file, as_json=as_json)
    payloads = [_dependant_payload(v, status_to_dict) for v in views]
    if as_json:
        print_json({"ok": True, "dependants": payloads})
        return
    table = make_table(
        ("slot / 序号", "name / 姓", "number / 号码", "status / 状态", "valid until / 有效期至"),
        (
            (
                str(p["slot"]),
                p["masked_name"],
                p["masked_number"],
                f"[{p['status']['colour']}]{p['status']['label_zh']} / "
                f"{p['status']['label_en']}[/]",
                shanghai_time(p["status"]["valid_until"]),
            )
            for p in payloads
        ),
        whole=("number / 号码",),
    )
    Console().print(table)


# --- assisted quick check -------------------------------------------------------------------


@assist_app.command("check")
def assist_check_command(
    operator: Annotated[str, typer.Option("--operator", help="The helper's operator id.")],
    number: Annotated[str, typer.Option("--number", "-n", help="Document number.")],
    kind: KindOption = None,
    issuing_state: StateOption = None,
    now: NowOption = None,
    database: DatabaseOption = None,
    secrets_file: SecretsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Status of a person aged <= 16 or >= 60 by document number: masked, not kept.

    Rate-limited per operator (in each worker process; a CLI run is one process,
    so the limit matters for the API, not here)."""
    from healthcode.core.enrollment import status_to_dict

    async def body(service: Any, at: dt.datetime | None) -> Any:
        submission, _warnings = _submission(kind, number, None, None, issuing_state)
        try:
            return await service.assist_check(operator, submission, now=at)
        except HealthcodeError as exc:
            raise explained(exc, submission, at) from None

    result = _service_call(body, now, database, secrets_file, as_json=as_json)
    payload = {
        "ok": True,
        "kind": result.masked.kind,
        "masked_name": result.masked.masked_name,
        "masked_number": result.masked.masked_number,
        "status": status_to_dict(result.status),
        "display_seconds": result.display_seconds,
    }
    if as_json:
        print_json(payload)
        return
    Console().print(_status_line(payload), highlight=False, soft_wrap=True)


reflow_help(enroll_app, dependants_app, assist_app)
