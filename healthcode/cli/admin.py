"""Operator commands: ``init`` (database + secrets), ``status import|show|purge|recheck``.

``healthcode.cli.main`` mounts ``init_command`` as ``healthcode init``,
``status_app`` as ``healthcode status`` and ``purge_command`` as ``healthcode purge``.
Everything here is a thin shell over ``healthcode.core.status`` and
``healthcode.core.storage.database``.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import attrs
import typer
from rich.console import Console
from rich.progress import Progress

from healthcode.cli.errors import EXIT_INVALID, EXIT_USAGE
from healthcode.cli.options import (
    CONTEXT_SETTINGS,
    DatabaseOption,
    JsonOption,
    KeysDirOption,
    NowOption,
    SecretsOption,
    make_table,
    parse_now,
    print_json,
    reflow_help,
    run_async,
    shanghai_time,
    with_database,
    work_progress,
)

if TYPE_CHECKING:
    from healthcode.core.models import Status, Subject
    from healthcode.core.status import ImportSummary, ListImport

status_app = typer.Typer(
    help="Daily statuses: import authority data, show, purge, ask the sources again.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)


def _parse_import_day(
    value: str | None, *, now: dt.datetime | None, any_day: bool, as_json: bool
) -> dt.date:
    """``--day`` by the core rule (``parse_import_day``), today in Asia/Shanghai
    when not given; a day refused is a usage error (exit 2) that still carries
    its code and both messages."""
    from healthcode.core.clock import today_shanghai
    from healthcode.core.status import ImportDayError, parse_import_day

    if value is None:
        return today_shanghai(now)
    try:
        return parse_import_day(value, now=now, allow_any_day=any_day)
    except ImportDayError as exc:
        if as_json:
            print_json({"ok": False, "error": exc.as_dict()})
        print(f"error [{exc.code}]: {exc.message_en}\n错误：{exc.message_zh}", file=sys.stderr)
        raise typer.Exit(EXIT_USAGE) from None


# --- init -------------------------------------------------------------------------


def init_command(
    database: DatabaseOption = None, secrets_file: SecretsOption = None, as_json: JsonOption = False
) -> None:
    """Create or upgrade the database and create the operator secrets (safe to rerun)."""
    from healthcode.core.storage.database import init_instance

    result = run_async(init_instance(database, secrets_file), as_json=as_json)
    payload = {"ok": True, **attrs.asdict(result)}
    if as_json:
        print_json(payload)
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


IMPORT_COLUMNS = "kind,number,status,issuing_state"
"""The columns of an authority list, in the order the help and the README show."""
ImportFileArgument = Annotated[
    Path,
    typer.Argument(
        help=f"CSV with a header line {IMPORT_COLUMNS} (issuing_state may be empty; "
        "for passports typed without an MRZ), or JSON Lines with the same keys. "
        "status: red or yellow (or 集中观察, 居家观察).",
        show_default=False,
    ),
]
ImportDayOption = Annotated[
    str | None,
    typer.Option(
        "--day",
        help="The day the list is for (YYYY-MM-DD): yesterday, today or tomorrow "
        "in Asia/Shanghai, unless --any-day; default: today in Asia/Shanghai.",
        show_default=False,
    ),
]
SourceOption = Annotated[
    str, typer.Option("--source", help="Name of the authority or peer that sent the list.")
]
MergeOption = Annotated[
    bool,
    typer.Option("--merge", help="Add to this source's list for the day instead of replacing it."),
]
FormatOption = Annotated[
    str | None, typer.Option("--format", help="csv or jsonl; default: from the file.")
]
FailOnInvalidOption = Annotated[
    bool, typer.Option("--fail-on-invalid", help="Exit 1 when any row was invalid.")
]
AnyDayOption = Annotated[
    bool,
    typer.Option(
        "--any-day",
        help="Allow a day other than yesterday, today or tomorrow (a correction, a test).",
    ),
]


@status_app.command("import")
def import_command(
    file: ImportFileArgument,
    day: ImportDayOption = None,
    source: SourceOption = "authority",
    merge: MergeOption = False,
    fmt: FormatOption = None,
    fail_on_invalid: FailOnInvalidOption = False,
    any_day: AnyDayOption = False,
    now: NowOption = None,
    keys_dir: KeysDirOption = None,
    database: DatabaseOption = None,
    secrets_file: SecretsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import one day's red/yellow list; numbers are hashed and never stored.

    Columns (CSV header, or JSON Lines keys): kind,number,status,issuing_state.
    Invalid rows are reported with their line numbers; valid rows are imported.
    The import is one transaction: if it fails, the previous data is unchanged.
    While another import of the same source for the same day runs, it stops
    at once with import_in_progress (exit 1). Each row is also hashed for
    every peer region with a pair key in the key directory (`trust pair-key`).
    """
    the_day = _parse_import_day(day, now=parse_now(now), any_day=any_day, as_json=as_json)
    if fmt not in (None, "csv", "jsonl"):
        raise typer.BadParameter("csv or jsonl", param_hint="--format")
    err = Console(stderr=True)
    request = _FileImport(file, the_day, source, fmt, replace=not merge, keys_dir=keys_dir)
    result = run_async(_import_file(request, database, secrets_file, err, as_json), as_json=as_json)
    if as_json:
        print_json({"ok": True, **result.as_dict()})
    else:
        _print_import(result, err)
    if fail_on_invalid and result.summary.rows_invalid:
        raise typer.Exit(EXIT_INVALID)


@attrs.frozen
class _FileImport:
    """What ``status import`` was asked to import."""

    file: Path
    day: dt.date
    source: str
    fmt: str | None
    replace: bool
    keys_dir: Path | None = None
    """The key store: its issuer key revokes passes, its pair keys hash for peers."""


async def _import_file(
    request: _FileImport,
    database: str | None,
    secrets_file: Path | None,
    err: Console,
    as_json: bool,
) -> ListImport[ImportSummary]:
    """The import (then the revocation of passes it makes stale), with a
    progress bar on a terminal."""
    from healthcode.core.passes import KeyStore
    from healthcode.core.passes.service import PassService
    from healthcode.core.status import StatusImportService
    from healthcode.core.status.peer_tokens import configured_pair_keys

    async def body(db: Any, secrets: Any) -> ListImport[ImportSummary]:
        imports = StatusImportService(
            db,
            secrets,
            PassService(db, KeyStore(request.keys_dir)),
            # Hashed per peer that shares status lists with us.
            peer_keys=lambda: configured_pair_keys(KeyStore(request.keys_dir)),
        )
        with work_progress("importing / 导入中", "rows", console=err, enabled=not as_json) as bar:
            rows = _RowCount(request, bar)
            return await imports.import_authority_file(
                request.file,
                day=request.day,
                source=request.source,
                fmt=request.fmt,  # type: ignore[arg-type]
                replace=request.replace,
                progress=rows.update,
            )

    return await with_database(database, secrets_file, body)


class _RowCount:
    """Drives the bar in rows: the file's rows are counted once (only when the
    bar is shown), and the bytes the import has read say how many are done."""

    def __init__(self, request: _FileImport, bar: Progress) -> None:
        self.bar = bar
        jsonl = request.fmt == "jsonl" or request.file.suffix.lower() == ".jsonl"
        self.total = _count_rows(request.file, header=not jsonl) if not bar.disable else None
        self.task = bar.add_task("import", total=self.total)

    def update(self, bytes_read: int, bytes_total: int) -> None:
        if self.total is None:
            return
        share = bytes_read / bytes_total if bytes_total else 1.0
        self.bar.update(self.task, completed=round(self.total * min(share, 1.0)))


def _count_rows(file: Path, *, header: bool) -> int:
    """Lines that hold data (the CSV header and blank lines aside, near enough)."""
    lines = 0
    last = b"\n"
    with file.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    lines += last != b"\n"
    return max(lines - header, 0)


def _print_import(result: ListImport[ImportSummary], err: Console) -> None:
    summary = result.summary
    rows = []
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
        ("passes revoked / 已吊销通行码", result.passes_revoked),
    ):
        rows.append((label, str(value)))
    Console().print(make_table(("", ""), rows, show_header=False, box=None))
    for row in summary.invalid_rows:
        err.print(
            f"line {row.line}: [{row.code}] {row.message_en} / {row.message_zh}",
            highlight=False,
            markup=False,
        )
    if summary.invalid_rows_truncated:
        err.print(f"... {summary.rows_invalid - len(summary.invalid_rows)} more invalid rows")


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
    from healthcode.core.enrollment import status_to_dict

    at = parse_now(now)
    document = (kind, number, issuing_state)
    subject, status = run_async(_show(document, at, database, secrets_file), as_json=as_json)
    masked = subject.masked
    payload: dict[str, Any] = {
        "ok": True,
        "kind": masked.kind,
        "masked_name": masked.masked_name,
        "masked_number": masked.masked_number,
        **status_to_dict(status, with_reasons=reasons),
    }
    if as_json:
        print_json(payload)
        return
    console = Console()
    console.print(
        f"{masked.masked_number}: [bold {status.colour.value}]{status.colour.label_zh} / "
        f"{status.colour.label_en}[/] (valid until {shanghai_time(status.valid_until)} / "
        "有效期至)",
        soft_wrap=True,  # one line: the terminal wraps it, never inside the time
    )
    for reason in payload.get("reasons", ()):
        console.print(f"  {reason}", highlight=False, markup=False)


async def _show(
    document: tuple[str, str, str | None],
    at: dt.datetime | None,
    database: str | None,
    secrets_file: Path | None,
) -> tuple[Subject, Status]:
    """The subject a document (kind, number, issuing state) names, and its status."""
    from healthcode.core.documents import make_submission, parse_document
    from healthcode.core.status import resolve_document_status

    kind, number, issuing_state = document
    submission, _ = make_submission(kind=kind, number=number, issuing_state=issuing_state)
    parsed = parse_document(submission)
    return await with_database(
        database,
        secrets_file,
        lambda db, secrets: resolve_document_status(db, secrets, parsed, now=at),
    )


def purge_command(
    now: NowOption = None, database: DatabaseOption = None, as_json: JsonOption = False
) -> None:
    """Delete expired data: rows of days that have ended, expired passes.

    Day-scoped rows (statuses, decisions) of days that have ended, expired
    passes and their revocations, old liveness challenges.
    """
    from healthcode.core.status import purge_expired
    from healthcode.core.storage.database import Database

    at = parse_now(now)

    async def go() -> Any:
        db = Database(database)
        try:
            await db.check_schema()
            return await purge_expired(db, now=at)
        finally:
            await db.dispose()

    summary = run_async(go(), as_json=as_json)
    if as_json:
        print_json({"ok": True, **summary.as_dict()})
        return
    total = sum(summary.deleted.values())
    print(
        f"purged {total} rows of days before {summary.before.isoformat()} (Asia/Shanghai) "
        f"/ 已清除 {total} 行"
    )
    for name, count in summary.deleted.items():
        print(f"  {name}: {count}", file=sys.stdout)


status_app.command("purge")(purge_command)


@status_app.command("recheck")
def recheck_command(
    now: NowOption = None,
    keys_dir: KeysDirOption = None,
    database: DatabaseOption = None,
    secrets_file: SecretsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ask every status source again, with no list to import.

    For a status source plugin that reads data of its own: run it when that
    data changes. Holders' next look-ups ask the sources again at every
    worker, and unexpired passes whose holder's status is now more severe
    are revoked, as after an import. Audited.
    """
    from healthcode.core.passes import KeyStore
    from healthcode.core.passes.service import PassService
    from healthcode.core.status import AuditNote, Recheck, StatusImportService

    at = parse_now(now)

    async def body(db: Any, secrets: Any) -> Recheck:
        service = StatusImportService(db, secrets, PassService(db, KeyStore(keys_dir)))
        return await service.recheck(audit=AuditNote("status_recheck", {}), now=at)

    result = run_async(with_database(database, secrets_file, body), as_json=as_json)
    if as_json:
        print_json({"ok": True, **result.as_dict()})
        return
    print(
        f"status sources asked again / 已重新判定: {result.passes_checked} passes checked "
        f"/ 已检查通行码, {result.passes_revoked} revoked / 已吊销"
    )


reflow_help(status_app, init_command, purge_command)
