"""Options and small helpers shared by several commands, declared once.

Each option is an ``Annotated`` alias: a command takes ``as_json: JsonOption =
False`` and gets the same flag, help text and environment variable as every
other command that has it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import json
import re
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.cells import cell_len
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column, Table
from rich.text import Text

from healthcode.cli.errors import fail
from healthcode.core.errors import HealthcodeError

if TYPE_CHECKING:
    from healthcode.core.passes import KeyStore, TrustStore
    from healthcode.core.passes.codec import Algorithm
    from healthcode.core.privacy import OperatorSecrets
    from healthcode.core.storage.database import Database

T = TypeVar("T")

# --- how the CLI reads --------------------------------------------------------------

_OPTION_ALIASES = {"database-url": "database"}
"""Old option names still accepted, never shown: ``--database-url`` was
``serve``'s name for ``--database``."""


def normalize_option(name: str) -> str:
    """Click's ``token_normalize_func``: an old option name becomes its new one."""
    return _OPTION_ALIASES.get(name, name)


CONTEXT_SETTINGS: dict[str, Any] = {"token_normalize_func": normalize_option}
"""Context settings for every sub-app (the root app passes them on to its own
commands): the hidden aliases in :data:`_OPTION_ALIASES`."""

_TYPE_WORDS = {"str": "text", "int": "integer", "float": "number", "Path": "path"}
_LIST_LABEL = re.compile(r"<list\[(\w+)\]>")


def _type_in_words(label: str) -> str:
    """``<str>`` as ``<text>``, ``<list[Path]>`` as ``<paths>``."""
    listed = _LIST_LABEL.fullmatch(label)
    if listed:
        return f"<{_TYPE_WORDS.get(listed[1], listed[1]).lower()}s>"
    bare = label[1:-1] if label.startswith("<") and label.endswith(">") else ""
    first, _, rest = bare.partition(" ")  # "int range"
    if first in _TYPE_WORDS:
        return f"<{' '.join(filter(None, (_TYPE_WORDS[first], rest)))}>"
    return label


def _readable_help_types() -> None:
    """Typer's help labels each option with its Python type: ``<bool>`` after
    a flag (which takes no value) and ``<list[Path]>`` after a list of files.
    Flags get no label here, and the other labels read as words. Applied once,
    to the classes Typer builds its options from; a Typer without them keeps
    its own labels."""
    from typer import core

    for cls in (getattr(core, "TyperOption", None), getattr(core, "TyperArgument", None)):
        original = getattr(cls, "display_type_rich", None)
        if cls is None or original is None or getattr(original, "in_words", False):
            continue

        def display_type_rich(
            self: Any, ctx: Any, _original: Callable[..., str | None] = original
        ) -> str | None:
            if getattr(self, "is_flag", False) and self.metavar is None:
                return None
            label = _original(self, ctx)
            if not label or self.metavar is not None:
                return label
            suffix = "..." if label.endswith("...") else ""
            return _type_in_words(label.removesuffix("...")) + suffix

        display_type_rich.in_words = True  # type: ignore[attr-defined]
        cls.display_type_rich = display_type_rich


_readable_help_types()


def _one_line_paragraphs(text: str) -> str:
    """``text`` with each paragraph on one line, so that help wraps it to the
    terminal instead of breaking where the source did (lists keep their lines)."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(
        p
        if p.startswith("\b") or re.search(r"^\s*[-*] ", p, re.MULTILINE)
        else " ".join(p.split("\n"))
        for p in paragraphs
    )


def reflow_help(*targets: typer.Typer | Callable[..., Any]) -> None:
    """Reflow the docstrings of commands (functions, or every command of a
    Typer app and its sub-apps): Typer keeps a docstring's line breaks, which
    in help (and in the list of commands) fall in the middle of sentences."""
    for target in targets:
        if isinstance(target, typer.Typer):
            reflow_help(*(c.callback for c in target.registered_commands if c.callback))
            reflow_help(*(g.typer_instance for g in target.registered_groups if g.typer_instance))
        elif target.__doc__:
            target.__doc__ = _one_line_paragraphs(target.__doc__)


def make_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    whole: Iterable[str] = (),
    **table_options: Any,
) -> Table:
    """A table that never cuts a value short: a long cell wraps (folds) rather
    than ending in an ellipsis, and the ``whole`` columns (what a person types
    next: ids, kinds, file names) are never broken at all."""
    rows = [list(row) for row in rows]
    keep = set(whole)
    columns = []
    for index, header in enumerate(headers):
        if header in keep:
            width = max(
                [cell_len(line) for row in rows for line in row[index].splitlines() or [""]]
                + [cell_len(header)]
            )
            columns.append(Column(header, no_wrap=True, min_width=width, overflow="fold"))
        else:
            columns.append(Column(header, overflow="fold"))
    table = Table(*columns, **table_options)
    for row in rows:
        table.add_row(*row)
    return table


def shanghai_time(value: object, *, empty: str = "-") -> str:
    """A time (a datetime or its ISO text) as a person reads it: Asia/Shanghai,
    to the second, with its offset; ``empty`` for None."""
    from healthcode.core.clock import SHANGHAI

    if value is None or value == "":
        return empty
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)  # stored times are UTC
    local = moment.astimezone(SHANGHAI)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S} {offset[:3]}:{offset[3:]}"


def today_in_shanghai(value: str | None, now: dt.datetime | None = None) -> dt.date:
    """``--day``: a YYYY-MM-DD date, or today in Asia/Shanghai when not given."""
    from healthcode.core.clock import today_shanghai

    if value is None:
        return today_shanghai(now)
    try:
        if not re.fullmatch(r"\d{4}-\d\d-\d\d", value.strip()):
            raise ValueError(value)
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter("use YYYY-MM-DD", param_hint="--day") from None


class _RateColumn(ProgressColumn):
    """Items a second, in the unit of the bar (``rows/s``, ``files/s``)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        shown = "-" if speed is None else f"{speed:,.0f}" if speed >= 10 else f"{speed:.1f}"
        return Text(f"{shown} {self.unit}/s", style="progress.data.speed")


def work_progress(label: str, unit: str, *, console: Console, enabled: bool) -> Progress:
    """A bar for long work, counted in ``unit`` (rows, files): done of total,
    rate, time taken and time left. Shown on ``console`` (stderr) only when
    ``enabled`` and that is a terminal: never in tests, pipes or ``--json``."""
    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        _RateColumn(unit),
        TimeElapsedColumn(),
        TextColumn("left / 剩余"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        disable=not (enabled and console.is_terminal),
    )


# --- options ---------------------------------------------------------------------------

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
DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        envvar="HEALTHCODE_DATABASE_URL",
        help="Database URL (sqlite:///path or postgresql://...); default: "
        "the embedded SQLite file.",
        show_default=False,
    ),
]
"""``serve``'s :data:`DatabaseOption`, which it hands to its workers (the
same name; ``--database-url`` is still accepted, see :data:`CONTEXT_SETTINGS`)."""
DayOption = Annotated[
    str | None,
    typer.Option(
        "--day",
        help="The day (YYYY-MM-DD); default: today in Asia/Shanghai.",
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

KeysDirOption = Annotated[
    Path | None,
    typer.Option("--keys-dir", envvar="HEALTHCODE_KEYS_DIR", help="Issuer key directory."),
]
TrustFileOption = Annotated[
    Path | None,
    typer.Option("--trust-file", envvar="HEALTHCODE_TRUST_FILE", help="Signed trust list file."),
]

ServerOption = Annotated[
    str, typer.Option("--server", help="Base URL of the service.", envvar="HEALTHCODE_SERVER")
]
KeyOption = Annotated[Path, typer.Option("--key", help="The device key file (PEM).")]
"""A holder's device key (``healthcode passes device-key``)."""

OutputOption = Annotated[Path | None, typer.Option("--output", "-o", help="File (default stdout).")]
MrzOption = Annotated[
    str | None,
    typer.Option("--mrz", "-m", help="MRZ text; separate lines with a newline or '|'."),
]
StateOption = Annotated[
    str | None, typer.Option("--issuing-state", help="ICAO code, for typed passport numbers.")
]


def now_from(value: str | None) -> dt.datetime:
    """``--now`` as an aware datetime (UTC when it names no offset), else now."""
    if value is None:
        return dt.datetime.now(dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("use ISO 8601", param_hint="--now") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def parse_now(value: str | None) -> dt.datetime | None:
    """``--now`` for the database commands: an ISO datetime with a UTC offset, else None."""
    if value is None:
        return None
    try:
        now = dt.datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("use an ISO datetime with offset", param_hint="--now") from None
    if now.tzinfo is None:
        raise typer.BadParameter("the datetime needs a UTC offset", param_hint="--now")
    return now


def or_fail(call: Callable[[], T], *, as_json: bool) -> T:
    """``call()``; a domain error exits through :func:`fail`."""
    try:
        return call()
    except HealthcodeError as exc:
        fail(exc, as_json=as_json)


def run_async(coro: Coroutine[Any, Any, T], *, as_json: bool) -> T:
    """Run a command's coroutine; a domain error exits through :func:`fail`."""
    return or_fail(lambda: asyncio.run(coro), as_json=as_json)


async def with_database(
    database: str | None,
    secrets_file: Path | None,
    body: Callable[[Database, OperatorSecrets], Awaitable[T]],
) -> T:
    """``body(db, secrets)`` on the opened (and migrated) database, disposed after."""
    from healthcode.core.storage.database import open_database

    db, secrets = await open_database(database, secrets_file)
    try:
        return await body(db, secrets)
    finally:
        await db.dispose()


def print_json(payload: Any) -> None:
    print(json.dumps(payload, ensure_ascii=False, indent=2))


def emit(payload: dict[str, Any], as_json: bool, human: str) -> None:
    """One line of ``{"ok": true, ...}`` for scripts, or ``human`` for people."""
    if as_json:
        print(json.dumps({"ok": True, **payload}, ensure_ascii=False))
    else:
        Console().print(human)


def algorithm(value: str) -> Algorithm:
    """``--alg``: a signing algorithm for issuer and device keys."""
    if value not in ("ES256", "EdDSA"):
        raise typer.BadParameter("ES256 or EdDSA", param_hint="--alg")
    return value  # type: ignore[return-value]


def stores(keys_dir: Path | None, trust_file: Path | None) -> tuple[KeyStore, TrustStore]:
    """This region's key store and its trust list (``--keys-dir``, ``--trust-file``)."""
    from healthcode.core.passes import KeyStore, TrustStore
    from healthcode.core.passes.trust import default_trust_file

    keys = KeyStore(keys_dir)
    return keys, TrustStore(trust_file or default_trust_file(), keys)


__all__ = [
    "CONTEXT_SETTINGS",
    "DatabaseOption",
    "DatabaseUrlOption",
    "DayOption",
    "JsonOption",
    "KeyOption",
    "KeysDirOption",
    "MrzOption",
    "NowOption",
    "OutputOption",
    "SecretsOption",
    "ServerOption",
    "StateOption",
    "TrustFileOption",
    "algorithm",
    "emit",
    "make_table",
    "normalize_option",
    "now_from",
    "or_fail",
    "parse_now",
    "print_json",
    "reflow_help",
    "run_async",
    "shanghai_time",
    "stores",
    "today_in_shanghai",
    "with_database",
    "work_progress",
]
