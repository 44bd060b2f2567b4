"""The CLI as a client of the HTTP API: requests, problems and times.

Used by ``healthcode holder`` (a holder's phone) and ``healthcode verify
--online`` (a guard's device). A problem is reported once: on stderr for a
person, or as JSON on stdout with ``--json``. Times a person reads are shown
in Asia/Shanghai, with the zone named.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from healthcode.cli.errors import EXIT_INVALID, EXIT_UNAVAILABLE, exit_code_for
from healthcode.core.clock import SHANGHAI
from healthcode.core.errors import HealthcodeError

if TYPE_CHECKING:
    import httpx

TIMEOUT_S = 60.0
SERVER_ENV = "HEALTHCODE_SERVER"
_TIME_FIELDS = frozenset({"valid_until", "expires_at", "issued_at", "created_at", "checked_at"})

OptionalServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar=SERVER_ENV,
        help="Base URL of the service (default: the holder profile's).",
        show_default=False,
    ),
]


class ServerUnreachableError(HealthcodeError):
    code = "server_unreachable"
    default_en = "The server cannot be reached."
    default_zh = "无法连接服务器。"


class ServerAnswerError(HealthcodeError):
    code = "server_answer_invalid"
    default_en = "The server's answer could not be read."
    default_zh = "无法读取服务器的响应。"


def unreachable(url: str, reason: str) -> ServerUnreachableError:
    return ServerUnreachableError(
        f"Cannot reach the server at {url}: is it running, and is the address right?",
        f"无法连接服务器 {url}：请确认服务已启动、地址无误。",
        details={"url": url, "reason": reason},
    )


def send(request: httpx.Request, base: str) -> httpx.Response:
    """Send ``request``; a network failure becomes :class:`ServerUnreachableError`."""
    import httpx

    try:
        with httpx.Client(timeout=TIMEOUT_S) as client:
            return client.send(request)
    except httpx.TransportError as exc:
        raise unreachable(base, type(exc).__name__) from None


def build(method: str, url: str, **kwargs: Any) -> httpx.Request:
    """An ``httpx.Request``; a URL that is no URL is reported as unreachable."""
    import httpx

    try:
        return httpx.Request(method, url, **kwargs)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise unreachable(url, type(exc).__name__) from None


def answer(response: httpx.Response) -> Any:
    """The JSON body of a successful answer; a problem document raised as an error."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code < 400:
        if body is None:
            raise ServerAnswerError(details={"status": response.status_code})
        return body
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        raise HealthcodeError(
            str(body.get("message_en") or body.get("detail") or body["code"]),
            str(body.get("message_zh") or body.get("message_en") or body["code"]),
            code=body["code"],
            details={"status": response.status_code},
        )
    raise ServerAnswerError(details={"status": response.status_code})


def exit_code(error: HealthcodeError) -> int:
    """69 when the service cannot be reached or fails; else as everywhere else."""
    status = error.details.get("status")
    if isinstance(error, ServerUnreachableError) or (isinstance(status, int) and status >= 500):
        return EXIT_UNAVAILABLE
    if type(error) is HealthcodeError or isinstance(error, ServerAnswerError):
        return EXIT_INVALID  # a problem the server reported
    return exit_code_for(error)


def report(error: HealthcodeError, *, as_json: bool) -> NoReturn:
    """Say what went wrong once (stderr, or JSON on stdout with ``--json``), and exit."""
    if as_json:
        print(json.dumps({"ok": False, "error": error.as_dict()}, ensure_ascii=False))
    else:
        print(
            f"error [{error.code}]: {error.message_en}\n错误：{error.message_zh}", file=sys.stderr
        )
    raise SystemExit(exit_code(error))


def localised(payload: Any) -> Any:
    """``payload`` with its ISO times re-expressed at +08:00 (Asia/Shanghai)."""
    if isinstance(payload, list):
        return [localised(item) for item in payload]
    if not isinstance(payload, dict):
        return payload
    out: dict[str, Any] = {}
    for key, value in payload.items():
        if key in _TIME_FIELDS and isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = dt.datetime.fromisoformat(value).astimezone(SHANGHAI).isoformat()
        out[key] = localised(value)
    return out


def print_json(payload: Any) -> None:
    print(json.dumps(localised(payload), ensure_ascii=False, indent=2))


def read_text_file(path: Path, limit: int = 8192) -> str | None:
    """The text of a small file holding an ``HC1:``/``HCP1:`` code; None otherwise."""
    try:
        with path.open("rb") as fh:
            head = fh.read(limit + 1)
    except OSError:
        return None
    if len(head) > limit:
        return None
    try:
        text = head.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        return None
    return text if text.startswith(("HC1:", "HCP1:")) else None


def code_text(value: str, *, limit: int = 8192) -> str:
    """A pass or live code given as text, ``-`` (stdin) or a text file holding it."""
    if value == "-":
        return sys.stdin.read(limit).strip()
    if value.startswith(("HC1:", "HCP1:")) or len(value) > 4096:
        return value.strip()
    path = Path(value)
    if path.is_file():
        text = read_text_file(path, limit)
        if text is not None:
            return text
    return value.strip()
