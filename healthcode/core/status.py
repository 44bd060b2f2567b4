"""The daily status: authority data import, resolution, and day rollover.

* Import: CSV (with a header) or JSON Lines rows of document kind, number and
  status (red or yellow) for one day and one source. Each number is
  normalised, canonicalised by the document plugins (so a 15-digit resident ID
  meets its 18-digit form), turned into a keyed hash and dropped. Rows stream
  in batches, so memory stays flat whatever the file size. The whole import is
  one transaction: an interrupted import leaves the previous data as it was.
  By default a file replaces what that source said for that day; importing the
  same file again changes nothing. With pair keys for peer regions, each listed
  person's daily hash for each peer is stored too (``peer_status_exports``),
  computed while the number is in hand, for ``healthcode trust export-status``
  (see ``healthcode.core.passes.sharing``). An import holds a lock on its
  (source, day) across processes: a second import of the same list while
  one runs fails at once with ``import_in_progress`` rather than silently
  replacing it. The day an operator types is checked by ``parse_import_day``:
  ``YYYY-MM-DD``, and yesterday, today or tomorrow in Asia/Shanghai unless
  any day is explicitly allowed.
* Resolution: every status source answers ``healthcode_resolve_status``; the
  most severe colour wins; every contribution is kept for audit (never shown
  to guards); nobody reporting means green 未见异常. A status is valid until
  the next 24:00 Asia/Shanghai.
* Rollover: ``purge_expired`` (the one purge, for the CLI, the API and the
  server's nightly task) deletes day-scoped rows once their day has ended in
  Shanghai, and expired passes, revocations and liveness challenges.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import attrs
import pluggy
import sqlalchemy as sa
from attrs import frozen
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from healthcode.core.clock import next_cutoff, now_utc, today_shanghai
from healthcode.core.documents import document_types
from healthcode.core.errors import HealthcodeError, PluginError
from healthcode.core.models import (
    Colour,
    Document,
    DocumentSubmission,
    Status,
    StatusContribution,
    Subject,
)
from healthcode.core.passes.sharing import (
    PeerKeys,
    fetch_peer_entries,
    peer_hashes,
    resolve_peer_keys,
)
from healthcode.core.plugins import get_plugin_manager
from healthcode.core.privacy_crypto import (
    canonical_document_key,
    document_key,
    subject_key_bytes,
)
from healthcode.core.replay import delete_expired_uses
from healthcode.core.secrets import OperatorSecrets
from healthcode.core.status_entries import AuthorityEntry, Prefetched, prefetched
from healthcode.core.storage import tables
from healthcode.core.storage.database import Database, LockBusyError, write_audit
from healthcode.core.storage.errors import ImportFormatError, StatusImportError
from healthcode.core.text import normalise_number

log = logging.getLogger(__name__)

DEFAULT_SOURCE = "authority"
BATCH_SIZE = 5_000
MAX_REPORTED_INVALID = 1_000
"""Invalid rows kept in the summary; beyond that they are only counted."""
ImportFormat = Literal["csv", "jsonl"]

_SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9_.\-]{0,63}", re.ASCII)
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_COLUMN_ALIASES = {
    "kind": "kind",
    "document_kind": "kind",
    "number": "number",
    "document_number": "number",
    "status": "status",
    "colour": "status",
    "color": "status",
    "issuing_state": "issuing_state",
}
_STATUS_VALUES = {
    "red": Colour.RED,
    "yellow": Colour.YELLOW,
    Colour.RED.label_zh: Colour.RED,
    Colour.YELLOW.label_zh: Colour.YELLOW,
}


# --- import -----------------------------------------------------------------------


class ImportDayError(StatusImportError):
    """The day given for an import is not a ``YYYY-MM-DD`` date."""

    code = "import_day_invalid"
    default_en = "The day must be a date written YYYY-MM-DD, e.g. 2026-12-01."
    default_zh = "日期须为 YYYY-MM-DD 格式，例如 2026-12-01。"


class ImportDayOutOfRangeError(ImportDayError):
    """A well-formed day that is not yesterday, today or tomorrow in Shanghai."""

    code = "import_day_out_of_range"
    default_en = (
        "A list can be imported for yesterday, today or tomorrow (Asia/Shanghai) only; "
        "for another day the operator must allow it explicitly "
        "(API: allow_any_day=true, CLI: --any-day)."
    )
    default_zh = (
        "只能导入昨天、今天或明天（北京时间）的名单；导入其他日期须由操作员明确允许"
        "（API：allow_any_day=true，命令行：--any-day）。"
    )


class ImportInProgressError(StatusImportError):
    """Another import of the same source's list for the same day is running."""

    code = "import_in_progress"
    default_en = (
        "Another import of this source's list for this day is in progress; "
        "nothing was imported. Try again when it has finished."
    )
    default_zh = "该来源当日名单正在由另一项导入处理，本次未导入任何数据，请在其完成后重试。"
    http_status = 409


def parse_import_day(
    value: str, *, now: dt.datetime | None = None, allow_any_day: bool = False
) -> dt.date:
    """The day an operator gave for an import: exactly ``YYYY-MM-DD`` (not the
    other forms ``date.fromisoformat`` takes, such as ``20261201`` or
    ``2026-W49-2``), and yesterday, today or tomorrow in Asia/Shanghai as of
    ``now`` unless ``allow_any_day``. Raises ``ImportDayError`` /
    ``ImportDayOutOfRangeError``."""
    text = value.strip()
    try:
        if not _ISO_DAY.fullmatch(text):
            raise ValueError(text)
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ImportDayError(details={"field": "day"}) from None
    if allow_any_day:
        return day
    today = today_shanghai(now)
    earliest, latest = today - dt.timedelta(days=1), today + dt.timedelta(days=1)
    if not earliest <= day <= latest:
        raise ImportDayOutOfRangeError(
            details={
                "field": "day",
                "day": day.isoformat(),
                "earliest": earliest.isoformat(),
                "latest": latest.isoformat(),
            }
        )
    return day


def import_lock_name(source: str, day: dt.date) -> str:
    """The lock an import of ``source``'s list for ``day`` holds while it runs."""
    return f"status-import.{check_source_name(source)}.{day.isoformat()}"


@asynccontextmanager
async def _import_transaction(
    db: Database, source: str, day: dt.date
) -> AsyncIterator[AsyncConnection]:
    try:
        async with db.begin_exclusive(import_lock_name(source, day)) as conn:
            yield conn
    except LockBusyError:
        raise ImportInProgressError(details={"source": source, "day": day.isoformat()}) from None


@frozen
class InvalidRow:
    """One rejected row. Says where and why, never what the number was."""

    line: int
    """1-based line of the file where the row starts."""
    code: str
    message_en: str
    message_zh: str
    field: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@frozen
class ImportSummary:
    day: dt.date
    source: str
    mode: Literal["replace", "merge"]
    rows_read: int
    rows_imported: int
    """Valid rows (duplicates included)."""
    rows_invalid: int
    entries: int
    """Entries this source now holds for the day."""
    red: int
    yellow: int
    duplicates: int | None
    """Valid rows that repeated an earlier row's person (replace mode only)."""
    invalid_rows: tuple[InvalidRow, ...]
    invalid_rows_truncated: bool
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self, recurse=True)
        data["day"] = self.day.isoformat()
        data["invalid_rows"] = [row.as_dict() for row in self.invalid_rows]
        return data


@frozen
class _RawRow:
    line: int
    fields: Mapping[str, Any] = attrs.field(repr=False)


def detect_format(path: Path, first_line: str) -> ImportFormat:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    return "jsonl" if first_line.lstrip().startswith("{") else "csv"


def _invalid(line: int, error: HealthcodeError, field: str | None) -> InvalidRow:
    return InvalidRow(line, error.code, error.message_en, error.message_zh, field)


def _iter_csv(lines: Iterable[str]) -> Iterator[_RawRow | InvalidRow]:
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        return
    columns = [_COLUMN_ALIASES.get(name.strip().lower().lstrip("\ufeff")) for name in header]
    missing = {"kind", "number", "status"} - {c for c in columns if c}
    if missing:
        raise ImportFormatError(
            f"The CSV header lacks the column(s): {', '.join(sorted(missing))}.",
            f"CSV 表头缺少列：{'、'.join(sorted(missing))}。",
            details={"missing_columns": sorted(missing)},
        )
    width = len(columns)
    ended = reader.line_num
    for record in reader:
        # A quoted field may span lines: report the line where the record starts.
        line, ended = ended + 1, reader.line_num
        if not record or (len(record) == 1 and not record[0].strip()):
            continue
        if len(record) != width:
            yield InvalidRow(
                line,
                "import_wrong_column_count",
                f"The row has {len(record)} columns; the header has {width}.",
                f"该行有 {len(record)} 列，表头为 {width} 列。",
            )
            continue
        yield _RawRow(line, {c: v for c, v in zip(columns, record, strict=True) if c is not None})


def _iter_jsonl(lines: Iterable[str]) -> Iterator[_RawRow | InvalidRow]:
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            # Not JSON; or an integer past Python's 4,300-digit limit
            # (ValueError), or nesting deeper than the parser's stack.
            obj = None
        if not isinstance(obj, dict):
            yield InvalidRow(
                line_no,
                "import_invalid_json",
                "The line is not a JSON object.",
                "该行不是 JSON 对象。",
            )
            continue
        fields = {
            _COLUMN_ALIASES[k]: v
            for k, v in obj.items()
            if isinstance(k, str) and k in _COLUMN_ALIASES
        }
        yield _RawRow(line_no, fields)


class _RowKeyer:
    """Turns one row's fields into (document key, colour, canonical key or None),
    or an InvalidRow. The canonical key (which holds the number) is returned
    only when peer hashes are wanted, and is dropped by the caller at once."""

    def __init__(
        self, secrets: OperatorSecrets, pm: pluggy.PluginManager, *, canonical: bool = False
    ) -> None:
        self._secrets = secrets
        self._canonical = canonical
        self._kinds = frozenset(document_types(pm))
        self._parse = pm.hook.healthcode_parse_document

    def __call__(self, row: _RawRow) -> tuple[bytes, Colour, bytes | None] | InvalidRow:
        fields = row.fields
        kind = fields.get("kind")
        kind = kind.strip() if isinstance(kind, str) else None
        if not kind or kind not in self._kinds:
            return InvalidRow(
                row.line,
                "import_unknown_kind",
                "The document kind is missing or unknown.",
                "证件类型缺失或无法识别。",
                "kind",
            )
        status = fields.get("status")
        colour = _STATUS_VALUES.get(status.strip().lower()) if isinstance(status, str) else None
        if colour is None:
            return InvalidRow(
                row.line,
                "import_invalid_status",
                "The status must be red or yellow (green is everyone not listed).",
                "状态必须为 red（集中观察）或 yellow（居家观察）；未列出者即为未见异常。",
                "status",
            )
        number = fields.get("number")
        state = fields.get("issuing_state")
        try:
            normalised = normalise_number(number if isinstance(number, str) else None)
            norm_state = (
                normalise_number(state) if isinstance(state, str) and state.strip() else None
            )
            # The plugin gives the canonical form (a 15-digit resident ID
            # becomes 18 digits, the issuing state is filled in), so that
            # the key equals the one enrollment derives from the same document.
            document = self._parse(
                submission=DocumentSubmission(
                    kind=kind, number=normalised, issuing_state=norm_state
                )
            )
        except HealthcodeError as error:
            return _invalid(row.line, error, "number")
        if not isinstance(document, Document):
            return InvalidRow(
                row.line,
                "import_number_not_of_kind",
                "The number does not have the shape of this document kind.",
                "号码与该证件类型的格式不符。",
                "number",
            )
        errors = [p for p in document.problems if p.severity == "error"]
        if errors:
            first = errors[0]
            return InvalidRow(row.line, first.code, first.message_en, first.message_zh, "number")
        key = document_key(self._secrets, document.kind, document.issuing_state, document.number)
        canonical = (
            canonical_document_key(document.kind, document.issuing_state, document.number)
            if self._canonical
            else None
        )
        return key, colour, canonical


def _upsert_statement(backend: str, table: sa.Table = tables.status_entries) -> Any:
    ins = sqlite_insert(table) if backend == "sqlite" else pg_insert(table)
    # A person listed twice (in one file, or by a merge) keeps the most severe.
    return ins.on_conflict_do_update(
        index_elements=list(table.primary_key.columns),
        set_={"colour": ins.excluded.colour, "severity": ins.excluded.severity},
        where=ins.excluded.severity > table.c.severity,
    )


def check_source_name(source: str) -> str:
    if not _SOURCE_NAME.fullmatch(source):
        raise StatusImportError(
            "A source name is 1-64 characters of a-z, 0-9, '_', '.', '-'.",
            "来源名称为 1-64 个字符，只能包含 a-z、0-9、“_”、“.”、“-”。",
            code="import_source_invalid",
        )
    return source


async def import_status_rows(
    db: Database,
    secrets: OperatorSecrets,
    lines: Iterable[str],
    *,
    day: dt.date,
    fmt: ImportFormat,
    source: str = DEFAULT_SOURCE,
    replace: bool = True,
    pm: pluggy.PluginManager | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
    peer_keys: PeerKeys | None = None,
) -> ImportSummary:
    """Import status rows from ``lines`` (an open text file or any iterable of lines).

    ``replace=True``: the rows are the source's whole list for ``day``; what it
    said before for that day goes. ``replace=False`` merges (most severe kept).
    ``progress(rows_read)`` is called after each batch. ``peer_keys`` (pair
    keys by peer region, e.g. ``configured_pair_keys(KeyStore())``): each
    listed person's daily hash for each peer is stored for export. Raises
    ``StatusImportError`` (or ``DatabaseUnavailableError``) with nothing changed;
    ``ImportInProgressError`` at once while another import of ``source`` for
    ``day`` runs, in any process. ``day`` is taken as given: check what an
    operator typed with ``parse_import_day``.
    """
    check_source_name(source)
    started = time.perf_counter()
    peers = dict(resolve_peer_keys(peer_keys))
    keyer = _RowKeyer(secrets, pm or get_plugin_manager(), canonical=bool(peers))
    rows = _iter_csv(lines) if fmt == "csv" else _iter_jsonl(lines)
    table = tables.status_entries
    upsert = _upsert_statement(db.backend)
    exports = tables.peer_status_exports
    export_upsert = _upsert_statement(db.backend, exports)
    rows_read = rows_imported = rows_invalid = 0
    invalid: list[InvalidRow] = []
    batch: list[dict[str, Any]] = []
    export_batch: list[dict[str, Any]] = []
    where = (table.c.day == day) & (table.c.source == source)

    def reject(row: InvalidRow) -> None:
        nonlocal rows_invalid
        rows_invalid += 1
        if len(invalid) < MAX_REPORTED_INVALID:
            invalid.append(row)

    async with _import_transaction(db, source, day) as conn:
        if replace:
            await conn.execute(table.delete().where(where))
            # The hashes exported for this source follow its list, peers or not.
            await conn.execute(
                exports.delete().where((exports.c.day == day) & (exports.c.source == source))
            )
        try:
            for raw in rows:
                rows_read += 1
                result = raw if isinstance(raw, InvalidRow) else keyer(raw)
                if isinstance(result, InvalidRow):
                    reject(result)
                    continue
                key, colour, canonical = result
                rows_imported += 1
                if canonical is not None:
                    for region, h in peer_hashes(peers, canonical, day).items():
                        export_batch.append(
                            {
                                "day": day,
                                "peer_region": region,
                                "pair_hash": h,
                                "source": source,
                                "colour": colour.value,
                                "severity": colour.severity,
                            }
                        )
                batch.append(
                    {
                        "day": day,
                        "subject_key": key,
                        "source": source,
                        "colour": colour.value,
                        "severity": colour.severity,
                    }
                )
                if len(export_batch) >= batch_size:
                    await conn.execute(export_upsert, export_batch)
                    export_batch = []
                if len(batch) >= batch_size:
                    await conn.execute(upsert, batch)
                    batch = []
                    if progress is not None:
                        progress(rows_read)
            if batch:
                await conn.execute(upsert, batch)
                batch = []
            if export_batch:
                await conn.execute(export_upsert, export_batch)
                export_batch = []
        except UnicodeDecodeError:
            raise ImportFormatError(
                "The file is not UTF-8 text; nothing was imported.",
                "文件不是 UTF-8 文本，未导入任何数据。",
                details={"reason": "not_utf8", "after_row": rows_read},
            ) from None
        except csv.Error:
            raise ImportFormatError(
                "The CSV file is malformed; nothing was imported.",
                "CSV 文件格式错误，未导入任何数据。",
                details={"reason": "csv_error", "after_row": rows_read},
            ) from None
        if progress is not None:
            progress(rows_read)
        counts = (
            await conn.execute(
                sa.select(table.c.colour, sa.func.count()).where(where).group_by(table.c.colour)
            )
        ).all()
        by_colour = {colour: int(n) for colour, n in counts}
        entries = sum(by_colour.values())
        summary = ImportSummary(
            day=day,
            source=source,
            mode="replace" if replace else "merge",
            rows_read=rows_read,
            rows_imported=rows_imported,
            rows_invalid=rows_invalid,
            entries=entries,
            red=by_colour.get("red", 0),
            yellow=by_colour.get("yellow", 0),
            duplicates=rows_imported - entries if replace else None,
            invalid_rows=tuple(invalid),
            invalid_rows_truncated=rows_invalid > len(invalid),
            seconds=round(time.perf_counter() - started, 3),
        )
        audit = summary.as_dict()
        audit.pop("invalid_rows")  # line numbers and codes only, but bulky
        audit["peers"] = sorted(peers)
        await write_audit(conn, "status_import", audit)
    log.info(
        "status import day=%s source=%s rows=%d imported=%d invalid=%d entries=%d",
        day,
        source,
        rows_read,
        rows_imported,
        rows_invalid,
        entries,
    )
    return summary


class _CountingReader(io.RawIOBase):
    """Counts the bytes handed to the text decoder, for a progress bar."""

    def __init__(self, raw: io.BufferedReader) -> None:
        self._raw = raw
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._raw.readinto(buffer)
        self.consumed += n or 0
        return n or 0


async def import_status_file(
    db: Database,
    secrets: OperatorSecrets,
    path: Path | str,
    *,
    day: dt.date,
    source: str = DEFAULT_SOURCE,
    fmt: ImportFormat | None = None,
    replace: bool = True,
    pm: pluggy.PluginManager | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int, int], None] | None = None,
    peer_keys: PeerKeys | None = None,
) -> ImportSummary:
    """``import_status_rows`` over a file; ``progress(bytes_read, bytes_total)``."""
    path = Path(path)
    try:
        total = path.stat().st_size
        raw = path.open("rb", buffering=0)
    except OSError as exc:
        raise StatusImportError(
            "The file cannot be read.",
            "无法读取该文件。",
            code="import_file_unreadable",
            details={"errno": exc.errno},
        ) from None
    counter = _CountingReader(raw)  # type: ignore[arg-type]
    with (
        raw,
        io.TextIOWrapper(
            io.BufferedReader(counter, 1 << 16), encoding="utf-8-sig", newline=""
        ) as text,
    ):
        try:
            first = text.readline()
        except UnicodeDecodeError:
            raise ImportFormatError(
                "The file is not UTF-8 text; nothing was imported.",
                "文件不是 UTF-8 文本，未导入任何数据。",
                details={"reason": "not_utf8", "after_row": 0},
            ) from None
        if fmt is None:
            fmt = detect_format(path, first)

        def lines() -> Iterator[str]:
            yield first
            yield from text

        on_batch = (lambda _rows: progress(counter.consumed, total)) if progress else None
        return await import_status_rows(
            db,
            secrets,
            lines(),
            day=day,
            fmt=fmt,
            source=source,
            replace=replace,
            pm=pm,
            batch_size=batch_size,
            progress=on_batch,
            peer_keys=peer_keys,
        )


# --- resolution ---------------------------------------------------------------------


async def fetch_authority_entries(
    conn: AsyncConnection, subject_key: bytes, day: dt.date
) -> tuple[AuthorityEntry, ...]:
    """Entries for the subject's own key and every document linked to it."""
    entries = tables.status_entries
    linked = sa.select(tables.subject_documents.c.document_key).where(
        tables.subject_documents.c.subject_key == subject_key
    )
    rows = await conn.execute(
        sa.select(entries.c.source, entries.c.colour)
        .where(entries.c.day == day)
        # IN over a UNION (not an OR) so that both backends probe the primary key.
        .where(
            entries.c.subject_key.in_(
                sa.union_all(sa.select(sa.literal(subject_key, sa.LargeBinary)), linked)
            )
        )
        .order_by(entries.c.source)
    )
    seen: dict[str, Colour] = {}
    for source, colour in rows:
        prior = seen.get(source)
        value = Colour(colour)
        if prior is None or value.severity > prior.severity:
            seen[source] = value
    return tuple(AuthorityEntry(source, colour) for source, colour in seen.items())


def _flatten(results: Iterable[object]) -> list[StatusContribution]:
    contributions: list[StatusContribution] = []
    for result in results:
        items: Iterable[object]
        if result is None:
            continue
        items = (result,) if isinstance(result, StatusContribution) else result  # type: ignore[assignment]
        if not isinstance(items, Iterable):
            items = (items,)
        for item in items:
            if not isinstance(item, StatusContribution):
                raise PluginError(
                    f"healthcode_resolve_status returned {type(item).__name__}, "
                    "expected StatusContribution.",
                    "healthcode_resolve_status 返回值类型错误。",
                )
            contributions.append(item)
    return contributions


def combine_contributions(
    contributions: Sequence[StatusContribution], valid_until: dt.datetime
) -> Status:
    """Most severe wins; every contribution becomes a reason (for audit)."""
    colour = Colour.GREEN
    for contribution in contributions:
        if contribution.colour.severity > colour.severity:
            colour = contribution.colour
    ordered = sorted(contributions, key=lambda c: (-c.colour.severity, c.source))
    return Status(
        colour=colour,
        valid_until=valid_until,
        reasons=tuple(f"{c.source}: {c.colour.value}: {c.reason}" for c in ordered),
        sources=tuple(dict.fromkeys(c.source for c in ordered)),
    )


async def resolve_status(
    db: Database,
    subject: Subject,
    *,
    now: dt.datetime | None = None,
    pm: pluggy.PluginManager | None = None,
    record: bool = True,
) -> Status:
    """Today's status (Asia/Shanghai) of ``subject``, valid until the next 24:00.

    With ``record`` the decision and all contributions are stored for audit
    (in the day-scoped ``status_decisions`` table).
    """
    now = now or now_utc()
    day = today_shanghai(now)
    valid_until = next_cutoff(now)
    key = subject_key_bytes(subject.subject_id)
    pm = pm or get_plugin_manager()
    async with db.begin() as conn:
        entries = await fetch_authority_entries(conn, key, day)
        peer_entries = await fetch_peer_entries(conn, key, day)
    token = prefetched.set(Prefetched(subject.subject_id, day, entries, peer_entries))
    try:
        results = pm.hook.healthcode_resolve_status(subject=subject, day=day)
    finally:
        prefetched.reset(token)
    contributions = _flatten(results)
    status = combine_contributions(contributions, valid_until)
    if record:
        async with db.begin() as conn:
            await conn.execute(
                tables.status_decisions.insert().values(
                    day=day,
                    subject_key=key,
                    colour=status.colour.value,
                    valid_until=valid_until,
                    contributions=[
                        {"source": c.source, "colour": c.colour.value, "reason": c.reason}
                        for c in contributions
                    ],
                    decided_at=now,
                )
            )
    return status


# --- rollover -----------------------------------------------------------------------


@frozen
class PurgeSummary:
    before: dt.date
    """Rows of days before this one (today in Asia/Shanghai) were deleted."""
    deleted: Mapping[str, int]
    """Rows deleted, by table."""

    def as_dict(self) -> dict[str, Any]:
        return {"before": self.before.isoformat(), "deleted": dict(self.deleted)}


async def purge_expired(db: Database, *, now: dt.datetime | None = None) -> PurgeSummary:
    """Delete what has expired as of ``now``: day-scoped rows whose day has
    ended (24:00 Asia/Shanghai has passed), passes and revocations whose
    passes have expired, liveness challenges past their time and used live
    codes and request signatures past their window. The one
    purge: ``healthcode purge``, ``POST /admin/purge`` and the server's
    nightly task all run this (the API through ``PassService.purge``, which
    also forgets its cached revocations)."""
    now = now or now_utc()
    today = today_shanghai(now)
    deleted: dict[str, int] = {}
    async with db.begin() as conn:
        for table in tables.DAY_SCOPED_TABLES:
            result = await conn.execute(table.delete().where(table.c.day < today))
            deleted[table.name] = int(result.rowcount or 0)
        # An expired pass fails on its own: neither it nor its revocation
        # need be kept.
        for table in (tables.passes, tables.revocations):
            result = await conn.execute(table.delete().where(table.c.valid_until <= now))
            deleted[table.name] = int(result.rowcount or 0)
        # Expired liveness challenges can no longer be answered: nothing to keep.
        challenges = tables.liveness_challenges
        result = await conn.execute(challenges.delete().where(challenges.c.expires_at < now))
        deleted[challenges.name] = int(result.rowcount or 0)
        # Used live codes and request signatures past their window (and a grace).
        deleted[tables.used_signatures.name] = await delete_expired_uses(conn, now=now)
        await write_audit(conn, "purge", {"before": today.isoformat(), "deleted": deleted})
    log.info("purge before=%s deleted=%s", today, deleted)
    return PurgeSummary(before=today, deleted=deleted)
