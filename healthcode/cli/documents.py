"""``healthcode documents``: check typed numbers and MRZ texts, read document photos;
list known kinds."""

from __future__ import annotations

import datetime as dt
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.console import Console

from healthcode.cli.errors import EXIT_INVALID, EXIT_OK, EXIT_USAGE, fail
from healthcode.cli.options import (
    CONTEXT_SETTINGS,
    JsonOption,
    MrzOption,
    StateOption,
    make_table,
    or_fail,
    print_json,
    reflow_help,
)
from healthcode.core.batch import check_texts, looks_like_mrz
from healthcode.core.documents import check_document, document_types, make_submission
from healthcode.core.errors import HealthcodeError
from healthcode.core.images import MAX_IMAGE_BYTES
from healthcode.core.models import CheckResult
from healthcode.core.text import MAX_MRZ_LENGTH

app = typer.Typer(
    help="Identity documents: check numbers and MRZs, read photos, list kinds.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)

KindOption = Annotated[
    str | None,
    typer.Option("--kind", "-k", help="Document kind (see `documents kinds`); default: detect."),
]
TodayOption = Annotated[
    str | None, typer.Option("--today", help="Check as of this date (YYYY-MM-DD).", hidden=True)
]

FileOption = Annotated[
    str | None,
    typer.Option(
        "--file",
        "-f",
        metavar="FILE",
        help="Check every record of FILE (- for stdin): one number, or one MRZ with its "
        "lines joined by |, per line; prints one JSON line per record.",
    ),
]

# Reading stdin is capped: no legitimate input is anywhere near this.
_STDIN_CAP = MAX_MRZ_LENGTH * 8


def _read_stdin() -> str:
    data = sys.stdin.read(_STDIN_CAP + 1)
    return data


def _parse_today(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("use YYYY-MM-DD", param_hint="--today") from None


def _result_payload(result: CheckResult) -> dict[str, Any]:
    """What may be shown: masked identity and non-identifying facts only."""
    document = result.document
    masked = result.masked
    return {
        "ok": True,
        "valid": result.is_valid,
        "kind": document.kind,
        "source": document.source,
        "document_code": document.document_code,
        "issuing_state": document.issuing_state,
        "nationality": document.nationality,
        "sex": document.sex,
        "expiry_date": document.expiry_date.isoformat() if document.expiry_date else None,
        "masked_name": masked.masked_name if masked else None,
        "masked_number": masked.masked_number if masked else None,
        "problems": [p.as_dict() for p in result.problems],
    }


def _print_human(result: CheckResult, payload: dict[str, Any]) -> None:
    console = Console()
    kinds = document_types()
    kind = kinds.get(result.document.kind)
    verdict = (
        "[green]well-formed / 格式正确[/green]"
        if result.is_valid
        else "[red]not valid / 无效[/red]"
    )
    console.print(verdict)
    rows = [
        (
            "kind / 类型",
            f"{kind.name_zh} / {kind.name_en} ({kind.kind})" if kind else result.document.kind,
        )
    ]
    for key in (
        "masked_name",
        "masked_number",
        "document_code",
        "issuing_state",
        "nationality",
        "sex",
        "expiry_date",
    ):
        if payload[key]:
            rows.append((key, str(payload[key])))
    console.print(make_table(("", ""), rows, show_header=False, box=None))
    for problem in result.problems:
        colour = "red" if problem.severity == "error" else "yellow"
        console.print(
            f"[{colour}]{problem.severity}[/{colour}] [{problem.code}] "
            f"{problem.message_en} / {problem.message_zh}",
            highlight=False,
        )


@app.command("check")
def check_command(
    number: Annotated[
        str | None, typer.Option("--number", "-n", help="A typed document number.")
    ] = None,
    mrz: MrzOption = None,
    kind: KindOption = None,
    issuing_state: StateOption = None,
    today: TodayOption = None,
    as_json: JsonOption = False,
    records_file: FileOption = None,
) -> None:
    """Check a document number or MRZ (from the options, or from stdin), or
    every record of a file (--file).

    Exit code 0: a well-formed document of a known kind (an expired document is
    reported but still exits 0); 1: not a valid document; 2: usage error.

    With --file FILE (- for stdin): one record per line, a typed number, or an
    MRZ with its 2 or 3 lines joined by | on one line (P<UTO...|L898902C3...).
    Blank lines are skipped. Each record prints one JSON line, in input order:
    {"record": LINE, "ok": true, "kind", "valid", "masked_number", "problems":
    [{"code", "severity", "field", "message_en", "message_zh", "details"}]}, or
    for a record that cannot be read {"record": LINE, "ok": false, "kind":
    null, "valid": false, "error": {"code", "message_en", "message_zh",
    "details"}}; LINE is the record's 1-based line number. A bad record never
    stops the rest. Exit code 0: every record valid; 1: at least one is not;
    2: usage error or a file that cannot be read.
    """
    given = [name for name, value in (("--number", number), ("--mrz", mrz)) if value is not None]
    if records_file is not None:
        given.append("--file")
    if len(given) > 1:
        typer.echo(
            f"error: give one of {', '.join(given)}, not several / 只能指定一种输入", err=True
        )
        raise typer.Exit(EXIT_USAGE)
    day = _parse_today(today)
    if kind is not None:
        _require_known_kind(kind, as_json=as_json)
    if records_file is not None:
        raise typer.Exit(_check_file(records_file, kind=kind, day=day))
    if number is None and mrz is None:
        number, mrz = _number_or_mrz_from_stdin()
    result = _check(
        day, as_json=as_json, kind=kind, number=number, mrz=mrz, issuing_state=issuing_state
    )
    payload = _result_payload(result)
    if as_json:
        print_json(payload)
    else:
        _print_human(result, payload)
    raise typer.Exit(EXIT_OK if result.is_valid else EXIT_INVALID)


def _require_known_kind(kind: str, *, as_json: bool) -> None:
    """Exit with a usage error when no plugin registers ``kind``."""
    known = or_fail(document_types, as_json=as_json)
    if kind not in known:
        typer.echo(
            f"error: unknown --kind {kind!r}; known kinds: {', '.join(sorted(known))}\n"
            f"错误：未知的证件类型；可用类型见 `healthcode documents kinds`",
            err=True,
        )
        raise typer.Exit(EXIT_USAGE)


def _number_or_mrz_from_stdin() -> tuple[str | None, str | None]:
    """The piped text, as an MRZ when it looks like one, else as a number."""
    if sys.stdin.isatty():
        typer.echo("error: give --number, --mrz, or pipe the text on stdin", err=True)
        raise typer.Exit(EXIT_USAGE)
    text = _read_stdin()
    return (None, text) if looks_like_mrz(text) else (text, None)


# One record of a file is one line: a number, or an MRZ of 2 x 44 characters
# joined by '|'; a line past this is refused without being read whole.
_RECORD_CAP = MAX_MRZ_LENGTH * 8
_FLUSH_EVERY = 512


def _check_file(name: str, *, kind: str | None, day: dt.date | None) -> int:
    """Check each record of the file ``name`` (``-``: stdin), print one JSON
    line for each; the exit code (0: all valid, 1: not, 2: unreadable)."""
    try:
        handle = _open_records(name)
        try:
            return _check_records(handle, kind=kind, day=day)
        finally:
            if name == "-" and isinstance(handle, io.TextIOWrapper) and handle is not sys.stdin:
                handle.detach()  # stdin stays open for whoever owns it
            else:
                handle.close()
    except OSError as exc:
        typer.echo(
            f"error: cannot read {name}: {exc.strerror or exc}\n错误：无法读取文件 {name}", err=True
        )
        return EXIT_USAGE


def _open_records(name: str) -> IO[str]:
    """The file as text (UTF-8; an undecodable byte becomes U+FFFD, which the
    record holding it is refused for)."""
    if name == "-":
        buffer = getattr(sys.stdin, "buffer", None)
        if buffer is None:
            return sys.stdin
        return io.TextIOWrapper(buffer, encoding="utf-8-sig", errors="replace", newline=None)
    return Path(name).open(encoding="utf-8-sig", errors="replace", newline=None)


def _records(handle: IO[str]) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank line. A line over the cap is cut
    there (normalisation then refuses it as too long) and skipped to its end."""
    line_no = 0
    while line := handle.readline(_RECORD_CAP + 1):
        line_no += 1
        if len(line) > _RECORD_CAP and not line.endswith("\n"):
            while (rest := handle.readline(_RECORD_CAP)) and not rest.endswith("\n"):
                pass
        text = line.strip()
        if text:
            yield line_no, text


def _check_records(handle: IO[str], *, kind: str | None, day: dt.date | None) -> int:
    import msgspec

    encode = msgspec.json.Encoder().encode
    lines: list[bytes] = []
    out = sys.stdout
    all_valid = True
    line_no = 0

    def texts() -> Iterator[str]:
        # check_texts takes one text and answers for it before taking the
        # next, so ``line_no`` is the line of the outcome being answered.
        nonlocal line_no
        for line_no, text in _records(handle):  # noqa: B007
            yield text

    for outcome in check_texts(texts(), kind=kind, today=day):
        record = _record_payload(line_no, outcome)
        all_valid = all_valid and record["valid"]
        lines.append(encode(record))
        if len(lines) >= _FLUSH_EVERY:
            _write_lines(out, lines)
    _write_lines(out, lines)
    return EXIT_OK if all_valid else EXIT_INVALID


def _record_payload(line_no: int, outcome: CheckResult | HealthcodeError) -> dict[str, Any]:
    if isinstance(outcome, HealthcodeError):
        return {
            "record": line_no,
            "ok": False,
            "kind": None,
            "valid": False,
            "error": outcome.as_dict(),
        }
    masked = outcome.masked
    return {
        "record": line_no,
        "ok": True,
        "kind": outcome.document.kind,
        "valid": outcome.is_valid,
        "masked_number": masked.masked_number if masked else None,
        "problems": [p.as_dict() for p in outcome.problems],
    }


def _write_lines(out: IO[str], lines: list[bytes]) -> None:
    if not lines:
        return
    chunk = b"\n".join(lines) + b"\n"
    lines.clear()
    buffer = getattr(out, "buffer", None)
    if buffer is not None:
        out.flush()
        buffer.write(chunk)
    else:
        out.write(chunk.decode())


def _check(
    day: dt.date | None,
    *,
    as_json: bool,
    kind: str | None,
    number: str | None = None,
    mrz: str | None = None,
    image: bytes | None = None,
    issuing_state: str | None = None,
) -> CheckResult:
    """Check one submission through core; a refusal exits with its error's code."""
    try:
        submission, warnings = make_submission(
            kind=kind, number=number, mrz=mrz, image=image, issuing_state=issuing_state
        )
        return check_document(submission, today=day, warnings=warnings)
    except HealthcodeError as exc:
        fail(exc, as_json=as_json)


@app.command("read")
def read_command(
    image: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="Photo or scan of the document page."
        ),
    ],
    kind: KindOption = None,
    today: TodayOption = None,
    as_json: JsonOption = False,
) -> None:
    """Read a document's machine-readable zone from a photo or scan (needs tesseract).

    Shows what `check` shows (masked name and number only), plus the OCR
    confidence, the portrait area and the time taken. Exit code 0: a
    well-formed document; 1: not valid, or no zone could be read; 2: usage
    error; 3: the OCR engine is missing.
    """
    day = _parse_today(today)
    if kind is not None and kind not in document_types():
        typer.echo(f"error: unknown --kind {kind!r} / 未知的证件类型", err=True)
        raise typer.Exit(EXIT_USAGE)
    with image.open("rb") as handle:
        # The decoder refuses anything over the cap; never read more than that.
        data = handle.read(MAX_IMAGE_BYTES + 1)
    result = _check(day, as_json=as_json, kind=kind, image=data)
    payload = _image_payload(result)
    if as_json:
        print_json(payload)
    else:
        _print_human(result, payload)
        timings = payload["timings"] or {}
        Console().print(
            f"confidence / 置信度 {payload['confidence']}  ·  portrait / 人像区域 "
            f"{payload['portrait_box']}  ·  {timings.get('total', 0):.2f} s  ·  "
            f"{payload['engine']}",
            highlight=False,
        )
    raise typer.Exit(EXIT_OK if result.is_valid else EXIT_INVALID)


def _image_payload(result: CheckResult) -> dict[str, Any]:
    """``check``'s payload plus the OCR's non-personal facts."""
    payload = _result_payload(result)
    facts = dict(result.document.extra.get("image") or {})
    payload["confidence"] = facts.get("confidence")
    payload["portrait_box"] = facts.get("portrait_box")
    payload["timings"] = facts.get("timings")
    payload["engine"] = facts.get("engine")
    payload["ocr_notes"] = facts.get("notes")
    return payload


@app.command("kinds")
def kinds_command(as_json: JsonOption = False) -> None:
    """List the document kinds the installed plugins handle."""
    kinds = or_fail(document_types, as_json=as_json)
    if as_json:
        print_json(
            [
                {
                    "kind": k.kind,
                    "name_en": k.name_en,
                    "name_zh": k.name_zh,
                    "inputs": sorted(k.inputs),
                    "example": k.example,
                }
                for k in kinds.values()
            ]
        )
        return
    # The kind id is what `check --kind` takes: never cut, whatever the width.
    table = make_table(
        ("kind", "name / 名称 (inputs)", "example"),
        (
            (
                k.kind,
                f"{k.name_zh}\n{k.name_en}\n({', '.join(sorted(k.inputs))})",
                k.example or "",
            )
            for k in kinds.values()
        ),
        whole=("kind",),
    )
    Console().print(table)


reflow_help(app)
