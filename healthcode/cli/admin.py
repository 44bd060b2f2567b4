"""Operator commands: ``init`` (database + secrets), ``status import|show|purge``.

The lead's ``main.py`` mounts ``init_command`` as ``healthcode init``,
``status_app`` as ``healthcode status`` and ``purge_command`` as ``healthcode purge``.
Everything here is a thin shell over ``healthcode.core.status`` and
``healthcode.core.storage.database``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import attrs
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from healthcode.cli.errors import EXIT_INVALID, EXIT_USAGE, fail
from healthcode.core.errors import HealthcodeError

T = TypeVar("T")

status_app = typer.Typer(
    help="Daily statuses: import authority data, show, purge.", no_args_is_help=True
)

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="Database URL (sqlite:///path or postgresql://...); default: "
        "$HEALTHCODE_DATABASE_URL, else an embedded SQLite file.",
        show_default=False,
    ),
]
SecretsOption = Annotated[
    Path | None,
    typer.Option(
        "--secrets-file",
        help="Operator secrets file; default: $HEALTHCODE_SECRETS_FILE, else the user config dir.",
        show_default=False,
    ),
]
NowOption = Annotated[
    str | None, typer.Option("--now", help="Act as of this ISO datetime (tests).", hidden=True)
]


def _run(coro: Coroutine[Any, Any, T], *, as_json: bool) -> T:
    try:
        return asyncio.run(coro)
    except HealthcodeError as exc:
        fail(exc, as_json=as_json)


def _parse_import_day(
    value: str, *, now: dt.datetime | None, any_day: bool, as_json: bool
) -> dt.date:
    """``--day`` by the core rule (``parse_import_day``); a day refused is a
    usage error (exit 2) that still carries its code and both messages."""
    from healthcode.core.status import ImportDayError, parse_import_day

    try:
        return parse_import_day(value, now=now, allow_any_day=any_day)
    except ImportDayError as exc:
        if as_json:
            _print_json({"ok": False, "error": exc.as_dict()})
        print(f"error [{exc.code}]: {exc.message_en}\n错误：{exc.message_zh}", file=sys.stderr)
        raise typer.Exit(EXIT_USAGE) from None


def _parse_now(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        now = dt.datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("use an ISO datetime with offset", param_hint="--now") from None
    if now.tzinfo is None:
        raise typer.BadParameter("the datetime needs a UTC offset", param_hint="--now")
    return now


def _print_json(payload: Any) -> None:
    print(json.dumps(payload, ensure_ascii=False, indent=2))


# --- init -------------------------------------------------------------------------


def init_command(
    database: DatabaseOption = None, secrets_file: SecretsOption = None, as_json: JsonOption = False
) -> None:
    """Create or upgrade the database and create the operator secrets (safe to rerun)."""
    from healthcode.core.storage.database import init_instance

    result = _run(init_instance(database, secrets_file), as_json=as_json)
    payload = {"ok": True, **attrs.asdict(result)}
    if as_json:
        _print_json(payload)
        return
    console = Console()
    console.print(f"database / 数据库: {result.database} (schema {result.revision})")
    verb = "created / 已创建" if result.secrets_created else "kept / 已存在"
    console.print(f"secrets / 运营方密钥: {result.secrets_file} ({verb})")
    if result.secrets_created:
        console.print(
            "[yellow]Back up the secrets file apart from the database: without it no enrolled "
            "person can be found. / "
            "请将密钥文件与数据库分开备份，丢失后已登记人员将无法识别。[/yellow]"
        )


# --- status -----------------------------------------------------------------------


@status_app.command("import")
def import_command(
    file: Annotated[
        Path, typer.Argument(help="CSV (kind,number,status[,issuing_state]) or JSON Lines.")
    ],
    day: Annotated[
        str,
        typer.Option(
            "--day",
            help="The day the list is for (YYYY-MM-DD): yesterday, today or tomorrow "
            "in Asia/Shanghai, unless --any-day.",
        ),
    ],
    source: Annotated[
        str, typer.Option("--source", help="Name of the authority or peer that sent the list.")
    ] = "authority",
    merge: Annotated[
        bool,
        typer.Option(
            "--merge", help="Add to this source's list for the day instead of replacing it."
        ),
    ] = False,
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv or jsonl; default: from the file.")
    ] = None,
    fail_on_invalid: Annotated[
        bool, typer.Option("--fail-on-invalid", help="Exit 1 when any row was invalid.")
    ] = False,
    any_day: Annotated[
        bool,
        typer.Option(
            "--any-day",
            help="Allow a day other than yesterday, today or tomorrow (a correction, a test).",
        ),
    ] = False,
    now: NowOption = None,
    database: DatabaseOption = None,
    secrets_file: SecretsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import one day's red/yellow list; numbers are hashed and never stored.

    Invalid rows are reported with their line numbers; valid rows are imported.
    The import is one transaction: if it fails, the previous data is unchanged.
    While another import of the same source for the same day runs, it stops
    at once with import_in_progress (exit 1).
    """
    from healthcode.core.pass_service import PassService
    from healthcode.core.passes import KeyStore
    from healthcode.core.passes.sharing import configured_pair_keys
    from healthcode.core.status import import_status_file
    from healthcode.core.storage.database import open_database

    the_day = _parse_import_day(day, now=_parse_now(now), any_day=any_day, as_json=as_json)
    if fmt not in (None, "csv", "jsonl"):
        raise typer.BadParameter("csv or jsonl", param_hint="--format")
    err = Console(stderr=True)

    async def go() -> Any:
        db, secrets = await open_database(database, secrets_file)
        try:
            with Progress(
                TextColumn("[bold]importing / 导入中"),
                BarColumn(),
                DownloadColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=err,
                transient=as_json,
                disable=not err.is_terminal,
            ) as bar:
                task = bar.add_task("import", total=None)

                def progress(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                summary = await import_status_file(
                    db,
                    secrets,
                    file,
                    day=the_day,
                    source=source,
                    fmt=fmt,  # type: ignore[arg-type]
                    replace=not merge,
                    progress=progress,
                    # Hashed per peer that shares status lists with us.
                    peer_keys=lambda: configured_pair_keys(KeyStore()),
                )
            # Passes issued earlier today to people now listed are revoked at once.
            revoked = await PassService(db, KeyStore()).revoke_worsened()
            return summary, revoked
        finally:
            await db.dispose()

    summary, revoked = _run(go(), as_json=as_json)
    if as_json:
        _print_json(
            {
                "ok": True,
                **summary.as_dict(),
                "passes_checked": revoked.checked,
                "passes_revoked": revoked.revoked,
            }
        )
    else:
        console = Console()
        table = Table(show_header=False, box=None)
        for label, value in (
            ("day / 日期", summary.day.isoformat()),
            ("source / 来源", summary.source),
            ("mode / 方式", summary.mode),
            ("rows read / 读取行数", summary.rows_read),
            ("imported / 已导入", summary.rows_imported),
            ("invalid / 无效", summary.rows_invalid),
            ("duplicates / 重复", summary.duplicates if summary.duplicates is not None else "-"),
            ("red / 集中观察", summary.red),
            ("yellow / 居家观察", summary.yellow),
            ("seconds / 耗时", summary.seconds),
            ("passes revoked / 已吊销通行码", revoked.revoked),
        ):
            table.add_row(label, str(value))
        console.print(table)
        for row in summary.invalid_rows:
            err.print(
                f"line {row.line}: [{row.code}] {row.message_en} / {row.message_zh}",
                highlight=False,
                markup=False,
            )
        if summary.invalid_rows_truncated:
            err.print(f"... {summary.rows_invalid - len(summary.invalid_rows)} more invalid rows")
    if fail_on_invalid and summary.rows_invalid:
        raise typer.Exit(EXIT_INVALID)


@status_app.command("show")
def show_command(
    kind: Annotated[str, typer.Option("--kind", "-k", help="Document kind.")],
    number: Annotated[str, typer.Option("--number", "-n", help="Document number.")],
    issuing_state: Annotated[
        str | None, typer.Option("--issuing-state", help="ICAO code, for passports.")
    ] = None,
    reasons: Annotated[
        bool, typer.Option("--reasons", help="Also print the audit reasons (operator only).")
    ] = False,
    now: NowOption = None,
    database: DatabaseOption = None,
    secrets_file: SecretsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Today's status of one document (the lookup is recorded for audit)."""
    from healthcode.core.documents import make_submission, mask_document, parse_document
    from healthcode.core.models import Subject
    from healthcode.core.privacy_crypto import document_key_for, subject_id_hex
    from healthcode.core.status import resolve_status
    from healthcode.core.storage.database import open_database

    at = _parse_now(now)

    async def go() -> Any:
        submission, _ = make_submission(kind=kind, number=number, issuing_state=issuing_state)
        document = parse_document(submission)
        db, secrets = await open_database(database, secrets_file)
        try:
            subject = Subject(
                subject_id=subject_id_hex(document_key_for(secrets, document)),
                masked=mask_document(document),
            )
            return subject, await resolve_status(db, subject, now=at)
        finally:
            await db.dispose()

    subject, status = _run(go(), as_json=as_json)
    payload: dict[str, Any] = {
        "ok": True,
        "kind": subject.masked.kind,
        "masked_name": subject.masked.masked_name,
        "masked_number": subject.masked.masked_number,
        "colour": status.colour.value,
        "label_zh": status.colour.label_zh,
        "label_en": status.colour.label_en,
        "valid_until": status.valid_until.isoformat(),
    }
    if reasons:
        payload["reasons"] = list(status.reasons)
        payload["sources"] = list(status.sources)
    if as_json:
        _print_json(payload)
        return
    console = Console()
    console.print(
        f"{subject.masked.masked_number}: [bold {status.colour.value}]{status.colour.label_zh} / "
        f"{status.colour.label_en}[/] (valid until {status.valid_until.isoformat()})"
    )
    for reason in payload.get("reasons", ()):
        console.print(f"  {reason}", highlight=False, markup=False)


def purge_command(
    now: NowOption = None, database: DatabaseOption = None, as_json: JsonOption = False
) -> None:
    """Delete expired data: day-scoped rows (statuses, decisions) of days that have
    ended, expired passes and their revocations, old liveness challenges."""
    from healthcode.core.status import purge_expired
    from healthcode.core.storage.database import Database

    at = _parse_now(now)

    async def go() -> Any:
        db = Database(database)
        try:
            await db.check_schema()
            return await purge_expired(db, now=at)
        finally:
            await db.dispose()

    summary = _run(go(), as_json=as_json)
    if as_json:
        _print_json({"ok": True, **summary.as_dict()})
        return
    total = sum(summary.deleted.values())
    print(f"purged {total} rows of days before {summary.before.isoformat()} / 已清除 {total} 行")
    for name, count in summary.deleted.items():
        print(f"  {name}: {count}", file=sys.stdout)


status_app.command("purge")(purge_command)
