"""Database URL handling, the async engine, error translation and migrations.

``HEALTHCODE_DATABASE_URL`` takes plain URLs (``sqlite:///path``,
``postgresql://user@host/db``); the async driver is chosen here (aiosqlite,
asyncpg). Without it, an embedded SQLite file in the per-user data directory
is used: zero set-up. That file, its ``-wal``/``-shm`` companions and any
directory created for it are private to the operator (0600 / 0700).

``Database.begin_exclusive`` is a transaction that also holds a named lock
against every other process: a PostgreSQL advisory lock, or on SQLite an
``flock`` on a file beside the database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import logging
import os
import re
import stat
import sys
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import Any, Literal

import platformdirs
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from attrs import frozen
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from healthcode.core.privacy import OperatorSecrets, create_secrets, load_secrets, secrets_path
from healthcode.core.storage import tables
from healthcode.core.storage.errors import (
    DatabasePoolSettingError,
    DatabaseUnavailableError,
    DatabaseURLError,
    SchemaOutdatedError,
    SecretsMismatchError,
    SecretsMissingError,
    StorageError,
)

if sys.platform != "win32":
    import fcntl

log = logging.getLogger(__name__)

DATABASE_URL_ENV = "HEALTHCODE_DATABASE_URL"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
CONNECT_TIMEOUT_S = 5.0
SQLITE_BUSY_TIMEOUT_MS = 10_000
POOL_SIZE_ENV = "HEALTHCODE_DB_POOL_SIZE"
MAX_OVERFLOW_ENV = "HEALTHCODE_DB_MAX_OVERFLOW"
DEFAULT_POOL_SIZE = 5
"""PostgreSQL connections each process (each worker) keeps open."""
DEFAULT_MAX_OVERFLOW = 10
"""Connections a process may open beyond its pool under a burst, closed after."""


def _pool_setting(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= 1000:
        raise DatabasePoolSettingError(details={"setting": name})
    return value


Backend = Literal["sqlite", "postgresql"]
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
"""Files SQLite keeps beside the database; they hold the same data."""
_LOCK_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,100}", re.ASCII)

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "postgresql+psycopg": "postgresql+psycopg",
}


def default_database_path() -> Path:
    return platformdirs.user_data_path("healthcode", appauthor=False) / "healthcode.db"


def database_url(url: str | URL | None = None) -> URL:
    """Explicit URL, else ``HEALTHCODE_DATABASE_URL``, else the embedded SQLite file;
    always with an async driver."""
    if url is None:
        url = os.environ.get(DATABASE_URL_ENV, "").strip() or None
    if url is None:
        return URL.create("sqlite+aiosqlite", database=str(default_database_path()))
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except exc.ArgumentError:
        raise DatabaseURLError(details={"reason": "unparseable"}) from None
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    if driver is None:
        raise DatabaseURLError(
            f"Unsupported database URL scheme {parsed.drivername!r}: use sqlite:/// or "
            "postgresql://.",
            f"不支持的数据库地址类型 {parsed.drivername!r}，请使用 sqlite:/// 或 postgresql://。",
            details={"scheme": parsed.drivername},
        )
    parsed = parsed.set(drivername=driver)
    if driver == "postgresql+asyncpg" and "sslmode" in parsed.query:
        # libpq spells it sslmode; asyncpg takes ssl with the same values.
        query = dict(parsed.query)
        query["ssl"] = query.pop("sslmode")
        parsed = parsed.set(query=query)
    return parsed


def redacted(url: URL) -> str:
    """The URL without its password, for messages and logs."""
    return url.render_as_string(hide_password=True)


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:")


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers keep reading the previous snapshot while an import writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def translate_error(error: BaseException, backend: str) -> StorageError | None:
    """The storage error a driver error stands for, or None when it is not one
    of ours to translate (an integrity error, a bug)."""
    if isinstance(error, exc.DBAPIError):
        text = str(error.orig).lower() if error.orig is not None else ""
        if "no such table" in text or ("relation" in text and "does not exist" in text):
            return SchemaOutdatedError(details={"backend": backend})
        if error.connection_invalidated or isinstance(
            error, exc.OperationalError | exc.InterfaceError
        ):
            return DatabaseUnavailableError(
                details={"backend": backend, "reason": type(error.orig).__name__}
            )
        if "database" in text and "does not exist" in text:
            return DatabaseUnavailableError(
                details={"backend": backend, "reason": "database_does_not_exist"}
            )
        return None
    if isinstance(error, OSError | TimeoutError) or type(error).__module__.startswith("asyncpg"):
        # Raised while connecting, before SQLAlchemy wraps anything.
        return DatabaseUnavailableError(
            details={"backend": backend, "reason": type(error).__name__}
        )
    return None


class LockBusyError(StorageError):
    """Another transaction, in this process or another, holds the named lock."""

    code = "lock_busy"
    default_en = "Another operation holds this lock; try again when it has finished."
    default_zh = "另一项操作正在进行，请在其完成后重试。"
    http_status = 409


def _make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and its missing parents 0700; existing ones are
    left as they are (the database may live in a shared directory)."""
    missing: list[Path] = []
    while not directory.exists():
        missing.append(directory)
        if directory.parent == directory:
            break
        directory = directory.parent
    for folder in reversed(missing):
        with suppress(FileExistsError):
            folder.mkdir(mode=PRIVATE_DIR_MODE)


def _make_private(path: Path) -> None:
    """Take group and other permissions off an existing database file."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            path.chmod(mode & 0o700)
            log.info("made %s private (was %s)", path.name, oct(mode))
    except FileNotFoundError:
        pass
    except OSError:
        # Not ours to change (another owner): SQLite will say if it cannot work.
        log.warning("cannot make %s private", path.name)


def _prepare_sqlite_path(path: Path) -> None:
    """Create the directory of an embedded database (0700) and the database
    file itself (0600), before SQLite would create it 0644: SQLite gives the
    ``-wal`` and ``-shm`` files the database file's mode. An existing file
    (and its companions) made readable by others is made private. Refuse
    paths that cannot work."""
    try:
        _make_private_dirs(path.parent)
    except OSError as exc:
        raise DatabaseUnavailableError(
            details={"backend": "sqlite", "reason": "directory_not_creatable", "errno": exc.errno}
        ) from None
    if path.exists() and not path.is_file():
        raise DatabaseUnavailableError(details={"backend": "sqlite", "reason": "not_a_file"})
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        for file in (path, *(path.with_name(path.name + s) for s in SQLITE_SIDE_FILES)):
            _make_private(file)
    except OSError as exc:
        raise DatabaseUnavailableError(
            details={"backend": "sqlite", "reason": "file_not_creatable", "errno": exc.errno}
        ) from None
    else:
        # An empty file is a new SQLite database.
        os.close(fd)


def advisory_key(name: str) -> int:
    """A PostgreSQL advisory lock key (bigint) for a lock name."""
    digest = hashlib.sha256(b"healthcode/lock/" + name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _try_flock(path: Path) -> int | None:
    """An open descriptor holding an exclusive ``flock`` on ``path`` (created
    0600), or None when another descriptor (any process) holds it. The holder
    removes the file before it lets go, so a lock taken on a file that is no
    longer at ``path`` is stale and taken again."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        try:
            on_disk = os.stat(path)
        except FileNotFoundError:
            on_disk = None
        held = os.fstat(fd)
        if on_disk is not None and (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino):
            return fd
        os.close(fd)


class Database:
    """One engine per process; cheap to share between tasks.

    >>> db = Database("sqlite:///tmp/hc.db")   # doctest: +SKIP
    >>> async with db.begin() as conn: ...      # doctest: +SKIP
    """

    def __init__(self, url: str | URL | None = None, *, echo: bool = False) -> None:
        self.url = database_url(url)
        self.backend: Backend = (
            "sqlite" if self.url.get_backend_name() == "sqlite" else "postgresql"
        )
        kwargs: dict[str, Any] = {
            "echo": echo,
            # Parameters are keyed hashes, but an error message is no place
            # for them either.
            "hide_parameters": True,
        }
        if self.backend == "sqlite":
            if not _is_memory(self.url):
                _prepare_sqlite_path(Path(self.url.database or "").expanduser())
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        else:
            kwargs["pool_pre_ping"] = True
            # Per process: a node with W workers holds up to
            # W x (pool size + overflow) connections (deploy/README.md).
            kwargs["pool_size"] = _pool_setting(POOL_SIZE_ENV, DEFAULT_POOL_SIZE)
            kwargs["max_overflow"] = _pool_setting(MAX_OVERFLOW_ENV, DEFAULT_MAX_OVERFLOW)
            if self.url.drivername == "postgresql+asyncpg":
                kwargs["connect_args"] = {"timeout": CONNECT_TIMEOUT_S}
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.backend == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_on_connect)
        self._held_locks: set[str] = set()
        """Locks held in this process, where no file can hold them (in-memory SQLite)."""

    def __repr__(self) -> str:
        return f"Database({redacted(self.url)!r})"

    async def dispose(self) -> None:
        await self.engine.dispose()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.dispose()

    def _translate(self, error: BaseException) -> StorageError | None:
        return translate_error(error, self.backend)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction: committed on success, rolled back on
        any exception. Driver errors become ``DatabaseUnavailableError`` /
        ``SchemaOutdatedError``; other exceptions pass through unchanged."""
        try:
            conn = await self.engine.connect()
        except Exception as error:
            if self.backend == "sqlite":
                # aiosqlite stops its worker thread asynchronously after a failed
                # connect; give it a moment so it does not outlive the loop.
                await asyncio.sleep(0.05)
            translated = self._translate(error)
            if translated is None:
                raise
            raise translated from error
        try:
            async with conn.begin():
                yield conn
        except exc.DBAPIError as error:
            translated = self._translate(error)
            if translated is None:
                raise
            raise translated from error
        finally:
            try:
                await conn.close()
            except Exception:
                log.debug("closing a failed connection raised", exc_info=True)

    @asynccontextmanager
    async def begin_exclusive(self, name: str) -> AsyncIterator[AsyncConnection]:
        """``begin()`` holding the lock ``name`` until the transaction has ended;
        ``LockBusyError`` at once, with nothing done, while another transaction
        of any process holds it. A crashed holder's lock goes with it.

        PostgreSQL: a transaction-level advisory lock. SQLite: an exclusive
        ``flock`` on ``<database>-lock-<name>`` (removed on release); an
        in-memory database: a lock within this process. ``name``: 1-100
        characters of A-Z, a-z, 0-9, ``_``, ``.``, ``-``.
        """
        if not _LOCK_NAME.fullmatch(name):
            raise ValueError(f"bad lock name {name!r}")
        if self.backend == "postgresql":
            async with self.begin() as conn:
                key = sa.literal(advisory_key(name), sa.BigInteger)
                taken = await conn.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(key)))
                if not taken:
                    raise LockBusyError(details={"lock": name})
                yield conn
            return
        with self._local_lock(name):
            async with self.begin() as conn:
                yield conn

    @contextmanager
    def _local_lock(self, name: str) -> Iterator[None]:
        path = Path(self.url.database or "").expanduser()
        if _is_memory(self.url) or sys.platform == "win32":
            if name in self._held_locks:
                raise LockBusyError(details={"lock": name})
            self._held_locks.add(name)
            try:
                yield
            finally:
                self._held_locks.discard(name)
            return
        lock_path = path.with_name(f"{path.name}-lock-{name}")
        try:
            fd = _try_flock(lock_path)
        except OSError as exc:
            raise DatabaseUnavailableError(
                details={"backend": "sqlite", "reason": "lock_file", "errno": exc.errno}
            ) from None
        if fd is None:
            raise LockBusyError(details={"lock": name})
        try:
            yield
        finally:
            # Remove, then let go: a waiter that opened this file sees it gone.
            with suppress(OSError):
                lock_path.unlink()
            os.close(fd)

    # --- migrations -------------------------------------------------------------

    async def current_revision(self) -> str | None:
        async with self.begin() as conn:
            return await conn.run_sync(_current_revision)

    async def migrate(self, target: str = "head") -> str | None:
        """Apply the shipped migrations up to ``target``; returns the revision.

        On PostgreSQL several nodes starting at once take turns through a
        transaction-level advisory lock: the first migrates, the others wait
        for its commit and then find nothing to do (DDL is transactional there)."""
        async with self.begin() as conn:
            if self.backend == "postgresql":
                key = sa.literal(advisory_key("migrate"), sa.BigInteger)
                await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
            await conn.run_sync(_upgrade, target)
        return await self.current_revision()

    async def downgrade(self, target: str) -> str | None:
        """Revert the schema to the revision ``target`` (for an operator going
        back to an older release); returns the revision. Same lock as ``migrate``."""
        async with self.begin() as conn:
            if self.backend == "postgresql":
                key = sa.literal(advisory_key("migrate"), sa.BigInteger)
                await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
            await conn.run_sync(_downgrade, target)
        return await self.current_revision()

    async def check_schema(self) -> None:
        """Raise ``SchemaOutdatedError`` unless the schema is at the newest revision."""
        current = await self.current_revision()
        if current != head_revision():
            raise SchemaOutdatedError(details={"current": current, "expected": head_revision()})

    # --- operator secrets --------------------------------------------------------

    async def stored_fingerprint(self) -> str | None:
        async with self.begin() as conn:
            return await _meta_get(conn, "secrets_fingerprint")

    async def check_secrets(self, secrets: OperatorSecrets) -> None:
        """Refuse a secrets file that is not the one this database was set up with."""
        await self.check_schema()
        stored = await self.stored_fingerprint()
        if stored is None:
            raise SchemaOutdatedError(
                "This database has not been initialised; run `healthcode init`.",
                "该数据库尚未初始化，请运行 `healthcode init`。",
                details={"reason": "not_initialised"},
            )
        if stored != secrets.fingerprint:
            raise SecretsMismatchError(details={"expected": stored, "found": secrets.fingerprint})


def _alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def head_revision() -> str | None:
    """The newest shipped migration (read once: the scripts do not change)."""
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def _current_revision(connection: Connection) -> str | None:
    """The schema's revision, read from Alembic's version table directly:
    ``MigrationContext`` would log two lines on every readiness check."""
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _upgrade(connection: Connection, target: str) -> None:
    command.upgrade(_alembic_config(connection), target)


def _downgrade(connection: Connection, target: str) -> None:
    command.downgrade(_alembic_config(connection), target)


async def _meta_get(conn: AsyncConnection, name: str) -> str | None:
    row = await conn.execute(
        sa.select(tables.operator_meta.c.value).where(tables.operator_meta.c.name == name)
    )
    return row.scalar_one_or_none()


async def write_audit(conn: AsyncConnection, action: str, details: Mapping[str, Any]) -> None:
    """Record an admin action. ``details`` must hold no personal data."""
    await conn.execute(
        tables.audit_log.insert().values(
            at=dt.datetime.now(dt.UTC), action=action, details=dict(details)
        )
    )


@frozen
class InitResult:
    database: str
    """The database URL without its password."""
    backend: str
    revision: str | None
    secrets_file: str
    secrets_created: bool
    fingerprint: str
    previous_revision: str | None = None
    """The schema's revision before this run (None: the database was empty)."""


async def init_instance(
    url: str | URL | None = None, secrets_file: Path | str | None = None
) -> InitResult:
    """``healthcode init``: create or upgrade the schema, create the secrets
    file if there is none, and bind the two together. Safe to run again.

    A database already bound to a secrets file never gets a fresh one: that
    would silently orphan every subject. Then the missing file is an error.
    """
    path = secrets_path(secrets_file)
    db = Database(url)
    try:
        previous = await db.current_revision()
        revision = await db.migrate()
        stored = await db.stored_fingerprint()
        if stored is not None and not path.exists():
            raise SecretsMissingError(
                "This database was set up with an operator secrets file that is missing; "
                "restore it (a new one would make every enrolled person unreachable).",
                "该数据库对应的运营方密钥文件缺失，请恢复该文件（新建密钥将导致已登记人员全部无法识别）。",
                details={"path": str(path)},
            )
        secrets, created = create_secrets(path) if stored is None else (load_secrets(path), False)
        if stored is not None and stored != secrets.fingerprint:
            raise SecretsMismatchError(details={"expected": stored, "found": secrets.fingerprint})
        async with db.begin() as conn:
            if stored is None:
                await conn.execute(
                    tables.operator_meta.insert().values(
                        name="secrets_fingerprint", value=secrets.fingerprint
                    )
                )
            await write_audit(
                conn,
                "init",
                {"revision": revision, "secrets_created": created, "backend": db.backend},
            )
        return InitResult(
            database=redacted(db.url),
            backend=db.backend,
            revision=revision,
            secrets_file=str(path),
            secrets_created=created,
            fingerprint=secrets.fingerprint,
            previous_revision=previous,
        )
    finally:
        await db.dispose()


async def open_database(
    url: str | URL | None = None,
    secrets_file: Path | str | None = None,
    *,
    migrate: bool = True,
) -> tuple[Database, OperatorSecrets]:
    """For services at start-up: apply pending migrations (when ``migrate``),
    load the secrets and check they belong to this database."""
    secrets = load_secrets(secrets_file)
    db = Database(url)
    try:
        if migrate:
            await db.migrate()
        await db.check_secrets(secrets)
    except BaseException:
        await db.dispose()
        raise
    return db, secrets


# --- day partitions (PostgreSQL) ----------------------------------------------------------


async def _relation_exists(conn: AsyncConnection, name: str) -> bool:
    """Whether a table ``name`` exists in the current schema, as of this
    statement: read from ``pg_class`` itself. (``to_regclass`` answers from
    the backend's catalog cache, which does not hear of a table another
    transaction just created until this one next locks a table: after
    waiting for another caller's advisory lock it would still say no.)"""
    found = await conn.scalar(
        sa.text(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = :name AND n.nspname = current_schema())"
        ),
        {"name": name},
    )
    return found is True


async def ensure_day_partitions(
    db: Database,
    day: dt.date,
    of: Iterable[sa.Table] = tables.AUTHORITY_IMPORT_TABLES,
) -> list[str]:
    """Create ``day``'s partitions of the tables ``of`` (day-partitioned ones;
    by default those an authority import fills) where missing, each in a
    short transaction of its own (PostgreSQL; nothing on SQLite). Returns the
    partitions created. Concurrent callers take turns through an advisory
    lock per table and day, so each partition is created once.

    Creating a partition locks its parent against readers for a moment, so
    it is done here, before the write that needs it, never inside the
    write's (longer) transaction. A write that then fails leaves an empty
    partition, which the next write of that day uses."""
    if db.backend != "postgresql":
        return []
    created: list[str] = []
    for table in of:
        if table not in tables.DAY_PARTITIONED_TABLES:
            raise ValueError(f"{table.name} is not partitioned by day")
        part = tables.day_partition_name(table.name, day)
        async with db.begin() as conn:
            if await _relation_exists(conn, part):
                continue
            key = sa.literal(advisory_key(f"partition.{part}"), sa.BigInteger)
            await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
            if await _relation_exists(conn, part):
                continue
            for statement in tables.day_partition_ddl(table.name, day):
                await conn.execute(sa.text(statement))
            created.append(part)
    return created


async def day_partitions(conn: AsyncConnection, table: sa.Table) -> dict[dt.date, str]:
    """The day partitions of ``table`` attached now, by day (PostgreSQL)."""
    rows = await conn.execute(
        sa.text(
            "SELECT c.relname FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = CAST(:parent AS regclass)"
        ),
        {"parent": table.name},
    )
    found: dict[dt.date, str] = {}
    for (name,) in rows:
        day = tables.partition_day(name)
        if day is not None and name == tables.day_partition_name(table.name, day):
            found[day] = name
    return found


async def drop_day_partitions_before(conn: AsyncConnection, table: sa.Table, day: dt.date) -> int:
    """Drop ``table``'s day partitions of days before ``day`` (PostgreSQL);
    returns the rows they held. The default partition's rows of those days
    are the caller's to delete."""
    dropped = 0
    for part_day, name in sorted((await day_partitions(conn, table)).items()):
        if part_day >= day:
            continue
        dropped += int(await conn.scalar(sa.text(f"SELECT count(*) FROM {name}")) or 0)
        await conn.execute(sa.text(f"DROP TABLE {name}"))
    return dropped
