"""``healthcode doctor``: check an instance and say how to fix what is wrong.

One line per check, ``ok``, ``warning`` or ``FAIL``, and under each failure the
command or step that fixes it; ``--json`` for scripts. Exit 0 when nothing
failed (warnings allowed), 1 otherwise. The checks, in order:

* face models: present and their sha256 right, as the face plugin's own
  ``healthcode models list`` reports them (reached through
  ``healthcode_register_commands``: the CLI imports no plugin);
* tesseract: the binary (``$HEALTHCODE_TESSERACT``, else ``tesseract`` on the
  PATH) and the ``eng`` language data the MRZ reader runs it with;
* the database: reachable, its schema at the newest migration; the operator
  secrets: present, private, the ones the database was set up with;
* the issuer keys (an active signing key) and the signed trust list;
* Redis, when ``$HEALTHCODE_REDIS_URL`` is set: a plain TCP ``PING``;
* the clock: the tz database knows Asia/Shanghai, and the clock is not before
  the newest time stored in the database.

Paths resolve as ``healthcode paths`` shows them, and ``--database``,
``--secrets-file``, ``--keys-dir`` and ``--trust-file`` are the options of
every other command. Nothing is created or changed: a missing database file
or trust list is reported, never made.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import json
import os
import shutil
import socket
import ssl
import subprocess
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa
import typer
from attrs import frozen
from rich.console import Console
from rich.markup import escape

from healthcode.cli.errors import EXIT_INVALID
from healthcode.cli.options import (
    DatabaseOption,
    JsonOption,
    KeysDirOption,
    SecretsOption,
    TrustFileOption,
    print_json,
    shanghai_time,
)
from healthcode.core.errors import HealthcodeError

State = Literal["ok", "warning", "fail"]

REDIS_URL_ENV: Final = "HEALTHCODE_REDIS_URL"
TESSERACT_ENV: Final = "HEALTHCODE_TESSERACT"
"""Where the MRZ reader finds tesseract (the same variable it reads)."""
TESSERACT_LANGUAGE: Final = "eng"
"""The language data the MRZ reader runs tesseract with (its default)."""
CLOCK_TOLERANCE: Final = dt.timedelta(seconds=60)
"""How far the newest stored time may be ahead of the clock (another node's skew)."""
NETWORK_TIMEOUT_S: Final = 3.0
INIT_FIX: Final = "healthcode init"

_STATE_LABEL = {"ok": "[green]ok[/]", "warning": "[yellow]warning[/]", "fail": "[bold red]FAIL[/]"}


@frozen
class Check:
    """The outcome of one check."""

    name: str
    state: State
    detail: str
    fix: str | None = None
    """The command or step that fixes a failure or a warning."""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "detail": self.detail, "fix": self.fix}


# --- face models, through the face plugin's own command ---------------------------------


def _registered_command_output(*args: str) -> str | None:
    """The stdout of a command that plugins register (``healthcode_register_commands``),
    run in this process; None when no plugin registers it."""
    from healthcode.core.plugins import get_plugin_manager

    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Commands plugins register."""

    get_plugin_manager().hook.healthcode_register_commands(app=app)
    group = typer.main.get_command(app)
    # Duck-typed: typer may bring its own copy of click's classes.
    if args[0] not in getattr(group, "commands", {}):
        return None
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        group.main(list(args), prog_name="healthcode", standalone_mode=False)
    return out.getvalue()


def check_face_models() -> Check:
    name = "face models"
    try:
        output = _registered_command_output("models", "list", "--json")
    except Exception as exc:  # a plugin's failure is a finding, not a crash
        return Check(name, "fail", f"`healthcode models list` failed: {type(exc).__name__}")
    if output is None:
        return Check(
            name,
            "warning",
            "no plugin provides face models (no `models` command); face checks are unavailable",
            "install the face plugin (it is built in: check HEALTHCODE_DISABLE_PLUGIN_AUTOLOAD)",
        )
    try:
        listing = json.loads(output)
        models = listing["models"]
    except (ValueError, KeyError, TypeError):
        return Check(name, "fail", "`healthcode models list --json` gave no readable answer")
    missing = [m["name"] for m in models if not m["present"]]
    wrong = [m["name"] for m in models if m["present"] and not m["verified"]]
    if missing or wrong:
        parts = [f"missing: {', '.join(missing)}"] if missing else []
        parts += [f"sha256 wrong: {', '.join(wrong)}"] if wrong else []
        fix = "healthcode models fetch" + (" --force" if wrong else "")
        return Check(name, "fail", f"{'; '.join(parts)} (in {listing['directory']})", fix)
    return Check(name, "ok", f"{len(models)} present, sha256 verified (in {listing['directory']})")


# --- tesseract ----------------------------------------------------------------------------


def check_tesseract() -> Check:
    name = "tesseract"
    configured = os.environ.get(TESSERACT_ENV, "").strip()
    binary = shutil.which(configured or "tesseract")
    if binary is None:
        return Check(
            name,
            "fail",
            f"{configured or 'tesseract'} not found"
            + (f" (${TESSERACT_ENV})" if configured else " on the PATH"),
            f"apt-get install tesseract-ocr (Debian), or set {TESSERACT_ENV} to the binary",
        )
    try:
        listed = subprocess.run(
            [binary, "--list-langs"], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check(name, "fail", f"{binary} does not run: {type(exc).__name__}")
    text = (listed.stdout + listed.stderr).decode("utf-8", "replace")
    languages = {line.strip() for line in text.splitlines()[1:] if line.strip()}
    if TESSERACT_LANGUAGE not in languages:
        return Check(
            name,
            "fail",
            f"{binary} has no '{TESSERACT_LANGUAGE}' language data "
            f"(found: {', '.join(sorted(languages)) or 'none'})",
            "apt-get install tesseract-ocr-eng (or unset TESSDATA_PREFIX if it points elsewhere)",
        )
    return Check(name, "ok", f"{binary}, language data '{TESSERACT_LANGUAGE}'")


# --- the database, the secrets and the clock ------------------------------------------------


def _sqlite_file_missing(database: str | None) -> Path | None:
    """The embedded database's path when that file does not exist (doctor
    must not create it, as opening it would)."""
    from healthcode.core.storage.database import database_url

    url = database_url(database)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    path = Path(url.database or "").expanduser()
    return None if path.exists() else path


def _known_revisions() -> set[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from healthcode.core.storage.database import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}


def _schema_check(where: str, current: str | None, head: str | None) -> Check:
    name = "database"
    if current == head:
        return Check(name, "ok", f"{where}, schema at {head} (newest)")
    if current is None:
        return Check(name, "fail", f"{where} is not initialised", INIT_FIX)
    if current in _known_revisions():
        return Check(
            name,
            "fail",
            f"{where}, schema at {current}; this healthcode needs {head}",
            f"{INIT_FIX} (applies the migrations; `healthcode serve` does it at start "
            "unless HEALTHCODE_MIGRATE_ON_START=0)",
        )
    return Check(
        name,
        "fail",
        f"{where}, schema at {current}, newer than this healthcode knows ({head})",
        "upgrade healthcode to the version that migrated this database",
    )


def _secrets_fix(error: HealthcodeError, secrets_file: Path | None) -> str:
    from healthcode.core.privacy import secrets_path

    path = secrets_path(secrets_file)
    return {
        "secrets_missing": f"{INIT_FIX} on a new instance; otherwise restore {path} from backup",
        "secrets_insecure": f"chmod 600 {path}",
        "secrets_mismatch": "point --secrets-file or HEALTHCODE_SECRETS_FILE at the secrets "
        "file this database was set up with",
        "schema_outdated": INIT_FIX,
    }.get(error.code, f"restore {path} from backup")


async def _secrets_check(db: Any, secrets_file: Path | None) -> Check:
    from healthcode.core.privacy import load_secrets, secrets_path

    name = "secrets"
    try:
        secrets = load_secrets(secrets_file)
        await db.check_secrets(secrets)
    except HealthcodeError as error:
        return Check(
            name, "fail", f"{error.message_en} [{error.code}]", _secrets_fix(error, secrets_file)
        )
    return Check(name, "ok", f"{secrets_path(secrets_file)}, bound to this database")


_STORED_TIMES: Final = (
    ("audit_log", "at"),
    ("subjects", "updated_at"),
    ("status_decisions", "decided_at"),
    ("passes", "issued_at"),
    ("revocations", "revoked_at"),
    ("liveness_challenges", "issued_at"),
    ("used_signatures", "used_at"),
    ("enrollment_reviews", "created_at"),
    ("api_tokens", "created_at"),
    ("peer_status_entries", "imported_at"),
)
"""Columns holding the moment something happened (never a future expiry)."""


async def _newest_stored_time(db: Any) -> tuple[dt.datetime, str] | None:
    from healthcode.core.storage import tables

    newest: tuple[dt.datetime, str] | None = None
    async with db.begin() as conn:
        for table_name, column in _STORED_TIMES:
            table = tables.metadata.tables[table_name]
            value = (await conn.execute(sa.select(sa.func.max(table.c[column])))).scalar()
            if value is not None and (newest is None or value > newest[0]):
                newest = (value, f"{table_name}.{column}")
    return newest


def _timezone_check() -> tuple[Check, Any]:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        zone = ZoneInfo("Asia/Shanghai")
    except (ZoneInfoNotFoundError, ValueError):
        fix = "apt-get install tzdata (or pip install tzdata)"
        return Check("clock", "fail", "the tz database does not know Asia/Shanghai", fix), None
    offset = dt.datetime.now(zone).utcoffset()
    if offset != dt.timedelta(hours=8):
        return Check("clock", "fail", f"Asia/Shanghai is at UTC{offset}, not +08:00"), None
    return Check("clock", "ok", "Asia/Shanghai known"), zone


async def _clock_check(db: Any | None) -> Check:
    tz_check, zone = _timezone_check()
    if zone is None:
        return tz_check
    now = dt.datetime.now(dt.UTC)
    shown = shanghai_time(now)
    newest = await _newest_stored_time(db) if db is not None else None
    if newest is None:
        return Check("clock", "ok", f"Asia/Shanghai known; now {shown}")
    moment, where = newest
    if moment > now + CLOCK_TOLERANCE:
        behind = int((moment - now).total_seconds())
        return Check(
            "clock",
            "fail",
            f"now {shown} is {behind} s before the newest stored time "
            f"({where}, {shanghai_time(moment)})",
            "set the system clock right (e.g. `timedatectl set-ntp true`), then check again",
        )
    return Check("clock", "ok", f"Asia/Shanghai known; now {shown}, after every stored time")


async def _database_state(database: str | None) -> tuple[Check, Any]:
    """The database check, and the open database when its schema is at the
    newest revision (else None; the caller disposes of it)."""
    from healthcode.core.storage.database import Database, head_revision, redacted

    try:
        missing = _sqlite_file_missing(database)
        if missing is not None:
            return Check("database", "fail", f"no database at {missing}", INIT_FIX), None
        db = Database(database)
    except HealthcodeError as error:
        fix = "set --database or HEALTHCODE_DATABASE_URL to sqlite:///PATH or postgresql://..."
        return Check("database", "fail", f"{error.message_en} [{error.code}]", fix), None
    try:
        current = await db.current_revision()
    except HealthcodeError as error:
        await db.dispose()
        fix = "start the database server, or correct --database / HEALTHCODE_DATABASE_URL"
        detail = f"{redacted(db.url)} unreachable: {error.message_en} [{error.code}]"
        return Check("database", "fail", detail, fix), None
    schema = _schema_check(redacted(db.url), current, head_revision())
    if schema.state != "ok":
        await db.dispose()
        return schema, None
    return schema, db


async def database_checks(database: str | None, secrets_file: Path | None) -> list[Check]:
    """The database, the secrets and the clock (which reads the database)."""
    schema, db = await _database_state(database)
    if db is None:
        skipped = Check("secrets", "warning", "not checked (the database is not ready)", schema.fix)
        return [schema, skipped, await _clock_check(None)]
    try:
        return [schema, await _secrets_check(db, secrets_file), await _clock_check(db)]
    finally:
        await db.dispose()


# --- issuer keys and the trust list ------------------------------------------------------


def check_keys(keys_dir: Path | None) -> Check:
    from healthcode.core.passes import KeyStore

    keys = KeyStore(keys_dir)
    if not keys.exists():
        return Check(
            "issuer keys",
            "fail",
            f"no issuer keys in {keys.path}",
            "healthcode keys init --region <GB/T 2260 code> --name <region name>",
        )
    try:
        active = keys.active()
    except HealthcodeError as error:
        fix = f"restore {keys.path} from backup, or `healthcode keys rotate` for a new key"
        return Check("issuer keys", "fail", f"{error.message_en} [{error.code}]", fix)
    detail = f"region {active.region_code}, signing key {active.kid.hex()} ({active.alg})"
    return Check("issuer keys", "ok", f"{detail} in {keys.path}")


def check_trust(keys_dir: Path | None, trust_file: Path | None) -> Check:
    from healthcode.core.passes import KeyStore, TrustStore
    from healthcode.core.passes.trust import DEFAULT_MAX_AGE, default_trust_file

    keys = KeyStore(keys_dir)
    path = trust_file or default_trust_file()
    if not keys.exists():
        return Check(
            "trust list",
            "warning",
            f"{path} not checked: it is verified with the issuer keys, and there are none",
            "healthcode keys init --region <GB/T 2260 code> --name <region name>",
        )
    if not path.exists():
        return Check(
            "trust list",
            "warning",
            f"no trust list at {path} yet (made on first use)",
            "healthcode trust list (makes it now)",
        )
    now = dt.datetime.now(dt.UTC)
    try:
        trust = TrustStore(path, keys).load(now)
    except HealthcodeError as error:
        fix = (
            f"move {path} aside, run `healthcode trust list` for a new one, then "
            "`healthcode trust add` each peer's export again"
        )
        return Check("trust list", "fail", f"{error.message_en} [{error.code}]", fix)
    days = trust.age(now).total_seconds() / 86400
    regions = ", ".join(sorted(trust.issuers))
    if trust.is_stale(now):
        limit = DEFAULT_MAX_AGE.days
        return Check(
            "trust list",
            "warning",
            f"signed {days:.1f} days ago (stale after {limit}); regions {regions}",
            "re-sign it: `healthcode keys rotate` (also starts a new signing key)",
        )
    return Check("trust list", "ok", f"{path}, signed {days:.1f} days ago; regions {regions}")


# --- Redis --------------------------------------------------------------------------------


def _resp(*parts: str) -> bytes:
    out = f"*{len(parts)}\r\n"
    for part in parts:
        out += f"${len(part.encode())}\r\n{part}\r\n"
    return out.encode()


def _redis_exchange(url: str) -> str:
    """AUTH (when the URL has a password) and PING over a plain socket; the
    reply to PING's first line."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"scheme {parts.scheme or '(none)'}: use redis:// or rediss://")
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    with socket.create_connection((host, port), timeout=NETWORK_TIMEOUT_S) as raw:
        sock: socket.socket = raw
        if parts.scheme == "rediss":
            sock = ssl.create_default_context().wrap_socket(raw, server_hostname=host)
        reader = sock.makefile("rb")
        if parts.password is not None:
            user = [unquote(parts.username)] if parts.username else []
            sock.sendall(_resp("AUTH", *user, unquote(parts.password)))
            reply = reader.readline().decode("utf-8", "replace").strip()
            if not reply.startswith("+OK"):
                return reply
        sock.sendall(_resp("PING"))
        return reader.readline().decode("utf-8", "replace").strip()


def check_redis() -> Check:
    url = os.environ.get(REDIS_URL_ENV, "").strip()
    if not url:
        return Check("redis", "ok", f"not configured (${REDIS_URL_ENV} unset): one node")
    parts = urlsplit(url)
    where = f"{parts.hostname or '127.0.0.1'}:{parts.port or 6379}"
    fix = f"start Redis at {where}, or correct ${REDIS_URL_ENV}"
    try:
        reply = _redis_exchange(url)
    except ValueError as exc:
        return Check("redis", "fail", f"${REDIS_URL_ENV}: {exc}", fix)
    except OSError as exc:
        return Check("redis", "fail", f"{where} unreachable: {type(exc).__name__}", fix)
    if reply != "+PONG":
        # The server's own words (``-NOAUTH ...``); never the password.
        return Check("redis", "fail", f"{where} answered {reply[:80]!r} to PING", fix)
    return Check("redis", "ok", f"{where} answers PING")


# --- the command ------------------------------------------------------------------------


def run_checks(
    database: str | None,
    secrets_file: Path | None,
    keys_dir: Path | None,
    trust_file: Path | None,
) -> list[Check]:
    """Every check, in the order they are printed."""
    stored = asyncio.run(database_checks(database, secrets_file))
    clock = [c for c in stored if c.name == "clock"]
    return [
        check_face_models(),
        check_tesseract(),
        *[c for c in stored if c.name != "clock"],
        check_keys(keys_dir),
        check_trust(keys_dir, trust_file),
        check_redis(),
        *clock,
    ]


def _print(checks: list[Check]) -> None:
    console = Console(highlight=False)
    width = max(len(c.name) for c in checks)
    for c in checks:
        label = _STATE_LABEL[c.state]
        pad = " " * (7 - len("FAIL" if c.state == "fail" else c.state))
        # Never wrapped: paths and commands are copied from here.
        console.print(f"{label}{pad} {c.name.ljust(width)}  {escape(c.detail)}", soft_wrap=True)
        if c.fix and c.state != "ok":
            console.print(f"{' ' * 8} {' ' * width}  fix / 修复: {escape(c.fix)}", soft_wrap=True)
    failed = sum(c.state == "fail" for c in checks)
    warned = sum(c.state == "warning" for c in checks)
    console.print(
        f"{failed} failed, {warned} warning(s) / {failed} 项失败，{warned} 项警告"
        if failed or warned
        else "all checks passed / 全部检查通过"
    )


def doctor_command(
    database: DatabaseOption = None,
    secrets_file: SecretsOption = None,
    keys_dir: KeysDirOption = None,
    trust_file: TrustFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check the face models, tesseract, the database and its migrations, the
    secrets, the issuer keys, the trust list, Redis (if configured) and the
    clock; print how to fix each failure. Exit 1 when any check fails."""
    checks = run_checks(database, secrets_file, keys_dir, trust_file)
    ok = not any(c.state == "fail" for c in checks)
    if as_json:
        print_json({"ok": ok, "checks": [c.as_dict() for c in checks]})
    else:
        _print(checks)
    if not ok:
        raise typer.Exit(EXIT_INVALID)
