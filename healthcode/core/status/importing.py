"""Importing an authority's red and yellow list for one day and one source.

Rows stream in batches (see :mod:`healthcode.core.status.rows` for how each
is read and keyed), so memory stays flat whatever the file size. The whole
import is one transaction: an interrupted import leaves the previous data as
it was. By default a file replaces what that source said for that day;
importing the same file again changes nothing. With pair keys for peer
regions, each listed person's daily hash for each peer is stored too
(``peer_status_exports``), computed while the number is in hand, for
``healthcode trust export-status``. An import holds a lock on its (source,
day) across processes: a second import of the same list while one runs fails
at once with ``import_in_progress`` rather than silently replacing it.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import itertools
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from secrets import token_hex
from typing import Any, Literal

import attrs
import pluggy
import sqlalchemy as sa
from attrs import define, frozen
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from healthcode.core.clock import today_shanghai
from healthcode.core.models import Colour
from healthcode.core.plugins import get_plugin_manager
from healthcode.core.privacy import OperatorSecrets
from healthcode.core.status.peer_tokens import PeerKeys, peer_hashes, resolve_peer_keys
from healthcode.core.status.rows import (
    BatchKeyer,
    ImportFormat,
    InvalidRow,
    KeyedBatch,
    Record,
    detect_format,
    read_records,
)
from healthcode.core.storage import tables
from healthcode.core.storage.database import (
    Database,
    LockBusyError,
    advisory_key,
    ensure_day_partitions,
    write_audit,
)
from healthcode.core.storage.errors import ImportFormatError, StatusImportError

log = logging.getLogger("healthcode.core.status")

DEFAULT_SOURCE = "authority"
BATCH_SIZE = 5_000
MAX_REPORTED_INVALID = 1_000
"""Invalid rows kept in the summary; beyond that they are only counted."""

_SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9_.\-]{0,63}", re.ASCII)
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


# --- refusals and the checks of what an operator typed ---------------------------------


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


class ImportSwapBusyError(StatusImportError):
    """The new list could not take the old one's place: readers held the
    day's partition through every attempt."""

    code = "import_swap_busy"
    default_en = (
        "The new list could not replace the current one because the day's status "
        "table stayed busy; nothing was imported and the current list still applies. "
        "Try again in a minute."
    )
    default_zh = (
        "当日状态表持续繁忙，新名单未能替换现有名单；"
        "本次未导入任何数据，现有名单仍然有效。请稍后重试。"
    )
    http_status = 503


def _not_utf8(after_row: int) -> ImportFormatError:
    return ImportFormatError(
        "The file is not UTF-8 text; nothing was imported.",
        "文件不是 UTF-8 文本，未导入任何数据。",
        details={"reason": "not_utf8", "after_row": after_row},
    )


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


def check_source_name(source: str) -> str:
    if not _SOURCE_NAME.fullmatch(source):
        raise StatusImportError(
            "A source name is 1-64 characters of a-z, 0-9, '_', '.', '-'.",
            "来源名称为 1-64 个字符，只能包含 a-z、0-9、“_”、“.”、“-”。",
            code="import_source_invalid",
        )
    return source


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


# --- the summary ------------------------------------------------------------------------


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


@define
class _Tally:
    """What the rows of one import came to so far."""

    rows_read: int = 0
    rows_imported: int = 0
    rows_invalid: int = 0
    invalid: list[InvalidRow] = attrs.field(factory=list)
    """The first ``MAX_REPORTED_INVALID`` invalid rows."""
    red: int = 0
    yellow: int = 0
    """Valid rows by colour (duplicates included; the copy path counts them)."""

    def add(self, batch: KeyedBatch) -> None:
        self.rows_read += batch.rows
        self.rows_imported += len(batch.keys)
        self.rows_invalid += len(batch.invalid)
        room = MAX_REPORTED_INVALID - len(self.invalid)
        if room > 0:
            self.invalid.extend(batch.invalid[:room])
        red = batch.colours.count(Colour.RED)
        self.red += red
        self.yellow += len(batch.colours) - red


# --- writing ----------------------------------------------------------------------------


def _upsert_statement(backend: str, table: sa.Table) -> Any:
    ins = sqlite_insert(table) if backend == "sqlite" else pg_insert(table)
    # A person listed twice (in one file, or by a merge) keeps the most severe.
    return ins.on_conflict_do_update(
        index_elements=list(table.primary_key.columns),
        set_={"colour": ins.excluded.colour, "severity": ins.excluded.severity},
        where=ins.excluded.severity > table.c.severity,
    )


class _BatchWriter:
    """Upserts one source's entries for one day (and their peer hashes) in batches."""

    def __init__(
        self,
        conn: AsyncConnection,
        backend: str,
        *,
        day: dt.date,
        source: str,
        peers: dict[str, bytes],
        batch_size: int,
    ) -> None:
        self._conn = conn
        self._day = day
        self._source = source
        self._peers = peers
        self._batch_size = batch_size
        self._upsert = _upsert_statement(backend, tables.status_entries)
        self._export_upsert = _upsert_statement(backend, tables.peer_status_exports)
        self._entries: list[dict[str, Any]] = []
        self._exports: list[dict[str, Any]] = []

    async def forget_previous(self) -> None:
        """Delete what the source said for the day, and the hashes exported for
        it (they follow its list, peers configured or not)."""
        entries, exports = tables.status_entries, tables.peer_status_exports
        day, source = self._day, self._source
        await self._conn.execute(
            entries.delete().where((entries.c.day == day) & (entries.c.source == source))
        )
        await self._conn.execute(
            exports.delete().where((exports.c.day == day) & (exports.c.source == source))
        )

    async def add(self, batch: KeyedBatch) -> None:
        """Queue a keyed batch; write whenever a full batch of rows is queued."""
        day, source = self._day, self._source
        for key, colour in zip(batch.keys, batch.colours, strict=True):
            self._entries.append(
                {
                    "day": day,
                    "subject_key": key,
                    "source": source,
                    "colour": colour.value,
                    "severity": colour.severity,
                }
            )
        for canonical, colour in zip(batch.canonicals or (), batch.colours, strict=False):
            for region, h in peer_hashes(self._peers, canonical, day).items():
                self._exports.append(
                    {
                        "day": day,
                        "peer_region": region,
                        "pair_hash": h,
                        "source": source,
                        "colour": colour.value,
                        "severity": colour.severity,
                    }
                )
        if len(self._exports) >= self._batch_size:
            await self._flush_exports()
        if len(self._entries) >= self._batch_size:
            await self._flush_entries()

    async def flush(self) -> None:
        await self._flush_entries()
        await self._flush_exports()

    async def _flush_entries(self) -> None:
        if self._entries:
            await self._conn.execute(self._upsert, self._entries)
            self._entries = []

    async def _flush_exports(self) -> None:
        if self._exports:
            await self._conn.execute(self._export_upsert, self._exports)
            self._exports = []


def _read_chunk(records: Iterator[Record | InvalidRow], size: int, tally: _Tally) -> list[Any]:
    """The next ``size`` records. A file that turns out unreadable part-way is
    an ``ImportFormatError`` (the caller's transaction then changes nothing)."""
    chunk: list[Record | InvalidRow] = []
    try:
        chunk.extend(itertools.islice(records, size))
    except UnicodeDecodeError:
        raise _not_utf8(tally.rows_read + len(chunk)) from None
    except csv.Error:
        raise ImportFormatError(
            "The CSV file is malformed; nothing was imported.",
            "CSV 文件格式错误，未导入任何数据。",
            details={"reason": "csv_error", "after_row": tally.rows_read + len(chunk)},
        ) from None
    return chunk


async def _give_sort_memory(conn: AsyncConnection) -> None:
    """For the rest of the import's transaction, let the primary keys' sorts
    use up to INDEX_SORT_MEMORY_MB (a city's list is about 1.3 GB of sort
    tuples; with the server's usual 64 MB the sort spills to disk), never
    less than the server's own setting."""
    configured = await conn.scalar(
        sa.text(
            "SELECT setting::bigint * 1024 / (1024 * 1024) FROM pg_settings "
            "WHERE name = 'maintenance_work_mem'"
        )
    )
    if int(configured or 0) < INDEX_SORT_MEMORY_MB:
        await conn.execute(sa.text(f"SET LOCAL maintenance_work_mem = '{INDEX_SORT_MEMORY_MB}MB'"))


def _keyed_batches(
    records: Iterator[Record | InvalidRow], keyer: BatchKeyer, tally: _Tally, size: int
) -> Callable[[], KeyedBatch | None]:
    """A function giving the next keyed batch (counted in ``tally``), None at the end."""

    def next_batch() -> KeyedBatch | None:
        chunk = _read_chunk(records, size, tally)
        if not chunk:
            return None
        batch = keyer(chunk)
        tally.add(batch)
        return batch

    return next_batch


async def _write_rows(
    next_batch: Callable[[], KeyedBatch | None],
    writer: _BatchWriter,
    tally: _Tally,
    progress: Callable[[int], None] | None,
) -> None:
    """Key and write every row."""
    while (batch := next_batch()) is not None:
        await writer.add(batch)
        if progress is not None:
            progress(tally.rows_read)
    await writer.flush()
    if progress is not None:
        progress(tally.rows_read)


# --- PostgreSQL: COPY into a table off to the side, then swap it in ------------------------

INDEX_SORT_MEMORY_MB = 512
"""Memory PostgreSQL may use to build a copied list's primary key (per import)."""
COPY_BATCH_SIZE = 50_000
"""Rows keyed per batch (in a thread) while the previous batch is copied."""
_ENTRY_COLUMNS = ("subject_key", "colour", "severity")
_EXPORT_COLUMNS = ("peer_region", "pair_hash", "colour", "severity")
"""What is copied per row; the day and the source are the new table's defaults."""
_COPIED_VALUE = {colour: colour.value for colour in Colour}.__getitem__
_COPIED_SEVERITY = {colour: colour.severity for colour in Colour}.__getitem__


class _PartSwap:
    """One (day, source) part of a day-partitioned table, built by ``COPY``
    into a new table that no reader sees, then swapped for the part in place
    in the import's transaction: readers see the previous list until it commits,
    and a crash or kill before that leaves no trace (the new table is rolled back)."""

    def __init__(
        self, conn: AsyncConnection, table: sa.Table, *, day: dt.date, source: str
    ) -> None:
        self._conn = conn
        self._table = table
        self._day = day
        self._source = source
        self.day_part = tables.day_partition_name(table.name, day)
        self.final = tables.source_partition_name(table.name, day, source)
        self.staging = f"{self.final}_n{token_hex(4)}"
        self._columns = [c.name for c in table.primary_key.columns]

    async def create(self) -> None:
        # The CHECK mirrors the partition bound, so ATTACH need not scan the rows.
        await self._conn.execute(
            sa.text(
                f"CREATE TABLE {self.staging} (LIKE {self._table.name} "
                "INCLUDING DEFAULTS INCLUDING CONSTRAINTS, "
                f"CHECK (day = DATE '{self._day.isoformat()}' AND source = '{self._source}'))"
            )
        )
        await self._conn.execute(
            sa.text(
                f"ALTER TABLE {self.staging} "
                f"ALTER COLUMN day SET DEFAULT DATE '{self._day.isoformat()}', "
                f"ALTER COLUMN source SET DEFAULT '{self._source}'"
            )
        )

    async def copy(self, records: list[tuple[Any, ...]], columns: tuple[str, ...]) -> None:
        if not records:
            return
        raw = (await self._conn.get_raw_connection()).driver_connection
        assert raw is not None
        await raw.copy_records_to_table(self.staging, records=records, columns=columns)

    async def index(self) -> bool:
        """Add the primary key; a list naming a person twice keeps the most
        severe row. True when there were such duplicates."""
        add_key = sa.text(
            f"ALTER TABLE {self.staging} ADD PRIMARY KEY ({', '.join(self._columns)})"
        )
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(add_key)
            return False
        except sa.exc.IntegrityError:
            pass
        same = " AND ".join(f"a.{c} = b.{c}" for c in self._columns)
        await self._conn.execute(
            sa.text(
                f"DELETE FROM {self.staging} a USING {self.staging} b WHERE {same} "
                "AND (a.severity, a.ctid) < (b.severity, b.ctid)"
            )
        )
        await self._conn.execute(add_key)
        return True

    async def counts(self) -> dict[str, int]:
        rows = await self._conn.execute(
            sa.text(f"SELECT colour, count(*) FROM {self.staging} GROUP BY colour")
        )
        return {str(colour): int(n) for colour, n in rows}

    async def swap(self) -> None:
        """Replace the source's part of the day by the new table."""
        conn, source = self._conn, self._source
        await conn.execute(
            sa.text(f"DELETE FROM {self.day_part}_default WHERE source = :s"), {"s": source}
        )
        if await conn.scalar(sa.select(sa.func.to_regclass(self.final).is_not(None))):
            await conn.execute(
                sa.text(f"ALTER TABLE {self.day_part} DETACH PARTITION {self.final}")
            )
            await conn.execute(sa.text(f"DROP TABLE {self.final}"))
        await conn.execute(
            sa.text(
                f"ALTER TABLE {self.staging} "
                "ALTER COLUMN day DROP DEFAULT, ALTER COLUMN source DROP DEFAULT"
            )
        )
        await conn.execute(
            sa.text(
                f"ALTER TABLE {self.day_part} ATTACH PARTITION {self.staging} "
                f"FOR VALUES IN ('{source}')"
            )
        )
        await conn.execute(sa.text(f"ALTER TABLE {self.staging} RENAME TO {self.final}"))


def _copy_records(
    next_batch: Callable[[], KeyedBatch | None], peers: Mapping[str, bytes], day: dt.date
) -> Callable[[], tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]] | None]:
    """A function giving the next batch as (entry, export) records to copy."""
    value, severity = _COPIED_VALUE, _COPIED_SEVERITY

    def next_records() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]] | None:
        batch = next_batch()
        if batch is None:
            return None
        colours = batch.colours
        entries = list(zip(batch.keys, map(value, colours), map(severity, colours), strict=True))
        exports = [
            (region, h, value(colour), severity(colour))
            for canonical, colour in zip(batch.canonicals or (), batch.colours, strict=False)
            for region, h in peer_hashes(peers, canonical, day).items()
        ]
        return entries, exports

    return next_records


async def _copy_rows(
    next_records: Callable[[], tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]] | None],
    entries: _PartSwap,
    exports: _PartSwap,
    tally: _Tally,
    progress: Callable[[int], None] | None,
) -> None:
    """Copy every batch; the next one is read and keyed in a thread while
    the server takes the previous one."""
    loop = asyncio.get_running_loop()
    pending = loop.run_in_executor(None, next_records)
    try:
        while (batch := await pending) is not None:
            pending = loop.run_in_executor(None, next_records)
            await entries.copy(batch[0], _ENTRY_COLUMNS)
            await exports.copy(batch[1], _EXPORT_COLUMNS)
            if progress is not None:
                progress(tally.rows_read)
    finally:
        # Never leave the reader running past this import (on an error above).
        with suppress(BaseException):
            await pending
    if progress is not None:
        progress(tally.rows_read)


SWAP_LOCK_TIMEOUT_MS = 2_000
"""How long the swap waits for the day's partition before it steps back."""
SWAP_ATTEMPTS = 5
_LOCK_NOT_AVAILABLE = "55P03"


async def _swap_when_free(
    conn: AsyncConnection, parts: Iterable[_PartSwap], *, day: dt.date, source: str
) -> None:
    """Swap the new tables in. Detaching a partition waits for every reader
    of the day's partition, and every reader that comes after waits behind
    it: so each attempt waits at most ``SWAP_LOCK_TIMEOUT_MS`` for its locks,
    steps back (the readers go on with the previous list) and tries again a
    little later, ``SWAP_ATTEMPTS`` times, then gives up with nothing changed."""
    for attempt in range(1, SWAP_ATTEMPTS + 1):
        try:
            async with conn.begin_nested():
                await conn.execute(sa.text(f"SET LOCAL lock_timeout = {SWAP_LOCK_TIMEOUT_MS}"))
                for part in parts:
                    await part.swap()
            return
        except sa.exc.DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
                raise
            log.warning("status import swap waited too long for readers (attempt %d)", attempt)
        await asyncio.sleep(0.5 * attempt)
    raise ImportSwapBusyError(
        details={"source": source, "day": day.isoformat(), "attempts": SWAP_ATTEMPTS}
    )


async def _copy_and_swap(
    conn: AsyncConnection,
    next_batch: Callable[[], KeyedBatch | None],
    tally: _Tally,
    *,
    day: dt.date,
    source: str,
    peers: Mapping[str, bytes],
    progress: Callable[[int], None] | None,
    started: float,
) -> ImportSummary:
    """The replace import on PostgreSQL, inside the import's transaction."""
    entries = _PartSwap(conn, tables.status_entries, day=day, source=source)
    exports = _PartSwap(conn, tables.peer_status_exports, day=day, source=source)
    await entries.create()
    await exports.create()
    await _copy_rows(_copy_records(next_batch, peers, day), entries, exports, tally, progress)
    copied = time.perf_counter()
    by_colour = {"red": tally.red, "yellow": tally.yellow}
    await _give_sort_memory(conn)
    if await entries.index():
        by_colour = await entries.counts()
    await exports.index()
    indexed = time.perf_counter()
    # Imports of other sources for the day swap in turn: each swap locks the
    # day's partition and its default part, and two at once could deadlock.
    swap_lock = sa.literal(advisory_key(f"status-swap.{day.isoformat()}"), sa.BigInteger)
    await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(swap_lock)))
    await _swap_when_free(conn, (entries, exports), day=day, source=source)
    log.info(
        "status import stages day=%s source=%s rows=%d read_key_copy_s=%.1f index_s=%.1f "
        "swap_s=%.1f",
        day,
        source,
        tally.rows_read,
        copied - started,
        indexed - copied,
        time.perf_counter() - indexed,
    )
    return _summary(tally, by_colour, day=day, source=source, replace=True, started=started)


async def _summarise(
    conn: AsyncConnection,
    tally: _Tally,
    *,
    day: dt.date,
    source: str,
    replace: bool,
    started: float,
) -> ImportSummary:
    table = tables.status_entries
    counts = (
        await conn.execute(
            sa.select(table.c.colour, sa.func.count())
            .where((table.c.day == day) & (table.c.source == source))
            .group_by(table.c.colour)
        )
    ).all()
    by_colour = {colour: int(n) for colour, n in counts}
    return _summary(tally, by_colour, day=day, source=source, replace=replace, started=started)


def _summary(
    tally: _Tally,
    by_colour: Mapping[str, int],
    *,
    day: dt.date,
    source: str,
    replace: bool,
    started: float,
) -> ImportSummary:
    """The import's summary from its tally and the entries it left by colour."""
    entries = sum(by_colour.values())
    return ImportSummary(
        day=day,
        source=source,
        mode="replace" if replace else "merge",
        rows_read=tally.rows_read,
        rows_imported=tally.rows_imported,
        rows_invalid=tally.rows_invalid,
        entries=entries,
        red=by_colour.get("red", 0),
        yellow=by_colour.get("yellow", 0),
        duplicates=tally.rows_imported - entries if replace else None,
        invalid_rows=tuple(tally.invalid),
        invalid_rows_truncated=tally.rows_invalid > len(tally.invalid),
        seconds=round(time.perf_counter() - started, 3),
    )


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
    batch_size: int | None = None,
    progress: Callable[[int], None] | None = None,
    peer_keys: PeerKeys | None = None,
    insert_only: bool = False,
) -> ImportSummary:
    """Import status rows from ``lines`` (an open text file or any iterable of lines).

    ``replace=True``: the rows are the source's whole list for ``day``; what it
    said before for that day goes. ``replace=False`` merges (most severe kept).
    ``progress(rows_read)`` is called after each batch (``batch_size`` rows;
    by default 5,000 inserted or 50,000 copied at a time). ``peer_keys`` (pair
    keys by peer region, e.g. ``configured_pair_keys(KeyStore())``): each
    listed person's daily hash for each peer is stored for export. Raises
    ``StatusImportError`` (or ``DatabaseUnavailableError``) with nothing changed;
    ``ImportInProgressError`` at once while another import of ``source`` for
    ``day`` runs, in any process. ``day`` is taken as given: check what an
    operator typed with ``parse_import_day``.

    On PostgreSQL a replacing import ``COPY``s the rows into a new table and
    swaps it for the source's part of the day's partition when it commits;
    ``insert_only=True`` takes the batched ``INSERT`` path instead (merges
    and SQLite always do), kept as the benchmarks' baseline.
    """
    check_source_name(source)
    started = time.perf_counter()
    peers = dict(resolve_peer_keys(peer_keys))
    keyer = BatchKeyer(secrets, pm or get_plugin_manager(), canonical=bool(peers))
    copying = db.backend == "postgresql" and replace and not insert_only
    tally = _Tally()
    next_batch = _keyed_batches(
        read_records(lines, fmt),
        keyer,
        tally,
        batch_size or (COPY_BATCH_SIZE if copying else BATCH_SIZE),
    )
    if db.backend == "postgresql":
        await ensure_day_partitions(db, day)
    async with _import_transaction(db, source, day) as conn:
        if copying:
            summary = await _copy_and_swap(
                conn,
                next_batch,
                tally,
                day=day,
                source=source,
                peers=peers,
                progress=progress,
                started=started,
            )
        else:
            writer = _BatchWriter(
                conn,
                db.backend,
                day=day,
                source=source,
                peers=peers,
                batch_size=batch_size or BATCH_SIZE,
            )
            if replace:
                await writer.forget_previous()
            await _write_rows(next_batch, writer, tally, progress)
            summary = await _summarise(
                conn, tally, day=day, source=source, replace=replace, started=started
            )
        await write_audit(conn, "status_import", _audit_details(summary, peers))
    _log_import(summary)
    return summary


def _log_import(summary: ImportSummary) -> None:
    log.info(
        "status import day=%s source=%s rows=%d imported=%d invalid=%d entries=%d",
        summary.day,
        summary.source,
        summary.rows_read,
        summary.rows_imported,
        summary.rows_invalid,
        summary.entries,
    )


def _audit_details(summary: ImportSummary, peers: Mapping[str, bytes]) -> dict[str, Any]:
    audit = summary.as_dict()
    audit.pop("invalid_rows")  # line numbers and codes only, but bulky
    audit["peers"] = sorted(peers)
    return audit


# --- from a file ------------------------------------------------------------------------


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


@contextmanager
def _counted_text(path: Path) -> Iterator[tuple[io.TextIOWrapper, _CountingReader, int]]:
    """The file as UTF-8 text, the reader counting its bytes, and its size."""
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
        yield text, counter, total


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
    batch_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    peer_keys: PeerKeys | None = None,
    insert_only: bool = False,
) -> ImportSummary:
    """``import_status_rows`` over a file; ``progress(bytes_read, bytes_total)``."""
    path = Path(path)
    with _counted_text(path) as (text, counter, total):
        try:
            first = text.readline()
        except UnicodeDecodeError:
            raise _not_utf8(0) from None
        on_batch = (lambda _rows: progress(counter.consumed, total)) if progress else None
        return await import_status_rows(
            db,
            secrets,
            itertools.chain((first,), text),
            day=day,
            fmt=fmt or detect_format(path, first),
            source=source,
            replace=replace,
            pm=pm,
            batch_size=batch_size,
            progress=on_batch,
            peer_keys=peer_keys,
            insert_only=insert_only,
        )
