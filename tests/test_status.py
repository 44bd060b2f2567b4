"""Authority status import, resolution and day rollover, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import logging
import random
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pluggy
import pytest
import time_machine
import typer
from support.backends import Backend
from typer.testing import CliRunner

import healthcode.plugins.authority_status as authority_status
from healthcode.cli.admin import init_command, purge_command, status_app
from healthcode.core.clock import SHANGHAI, next_cutoff
from healthcode.core.errors import PluginError
from healthcode.core.hookspecs import hookimpl
from healthcode.core.models import (
    Colour,
    MaskedDocument,
    Status,
    StatusContribution,
    Subject,
)
from healthcode.core.plugins import get_plugin_manager, new_plugin_manager
from healthcode.core.privacy import SECRETS_ENV, OperatorSecrets, document_key, subject_id_hex
from healthcode.core.status import (
    ImportSummary,
    import_status_file,
    import_status_rows,
    purge_expired,
    resolve_status,
)
from healthcode.core.storage import tables
from healthcode.core.storage.database import (
    DATABASE_URL_ENV,
    Database,
    open_database,
)
from healthcode.core.storage.errors import ImportFormatError, StatusImportError
from healthcode.core.storage.testing import (
    dump_tables,
)
from healthcode.plugins.id_card import convert_legacy_number
from healthcode.testing.resident_id import random_legacy_resident_id, random_resident_id

DAY = dt.date(2026, 11, 26)
NOON = dt.datetime(2026, 11, 26, 12, tzinfo=SHANGHAI)
KIND = "cn_resident_id"


@pytest.fixture
def status_pm() -> pluggy.PluginManager:
    """Built-ins plus the authority_status plugin (registered here until its
    entry point is declared)."""
    pm = new_plugin_manager(autoload=False)
    if not pm.is_registered(authority_status):
        pm.register(authority_status, name="authority_status")
    return pm


@pytest.fixture
def numbers() -> list[str]:
    rng = random.Random(20261126)
    return [random_resident_id(rng) for _ in range(40)]


# --- helpers ------------------------------------------------------------------------------


def csv_lines(rows: Sequence[tuple[str, str, str]]) -> list[str]:
    return ["kind,number,status\n", *(f"{k},{n},{s}\n" for k, n, s in rows)]


def subject_for(secrets: OperatorSecrets, number: str, kind: str = KIND) -> Subject:
    key = document_key(secrets, kind, "CHN", number)
    return Subject(subject_id=subject_id_hex(key), masked=MaskedDocument(kind, "张", "11**"))


async def _import(
    backend: Backend,
    pm: pluggy.PluginManager,
    lines: Any,
    *,
    day: dt.date = DAY,
    **kwargs: Any,
) -> ImportSummary:
    db, secrets = await open_database(backend.url, backend.secrets_file)
    try:
        return await import_status_rows(
            db, secrets, lines, day=day, fmt=kwargs.pop("fmt", "csv"), pm=pm, **kwargs
        )
    finally:
        await db.dispose()


def run_import(
    backend: Backend, pm: pluggy.PluginManager, lines: Any, **kwargs: Any
) -> ImportSummary:
    return asyncio.run(_import(backend, pm, lines, **kwargs))


def resolve(
    backend: Backend,
    pm: pluggy.PluginManager,
    number: str,
    now: dt.datetime = NOON,
    **kwargs: Any,
) -> Status:
    async def go() -> Status:
        db, secrets = await open_database(backend.url, backend.secrets_file)
        try:
            return await resolve_status(db, subject_for(secrets, number), now=now, pm=pm, **kwargs)
        finally:
            await db.dispose()

    return asyncio.run(go())


def snapshot(backend: Backend, *names: str) -> dict[str, list[tuple[Any, ...]]]:
    async def go() -> dict[str, list[tuple[Any, ...]]]:
        db = Database(backend.url)
        try:
            dump = await dump_tables(db)
        finally:
            await db.dispose()
        return {n: dump[n] for n in names} if names else dump

    return asyncio.run(go())


def secrets_of(backend: Backend) -> OperatorSecrets:
    from healthcode.core.privacy import load_secrets

    return load_secrets(backend.secrets_file)


# --- import ---------------------------------------------------------------------------------


def test_import_then_resolve(
    backend: Backend, status_pm: pluggy.PluginManager, numbers: list[str]
) -> None:
    red, yellow, green = numbers[0], numbers[1], numbers[2]
    summary = run_import(
        backend, status_pm, csv_lines([(KIND, red, "red"), (KIND, yellow, "YELLOW")])
    )
    assert (summary.rows_read, summary.rows_imported, summary.rows_invalid) == (2, 2, 0)
    assert (summary.entries, summary.red, summary.yellow, summary.duplicates) == (2, 1, 1, 0)

    status = resolve(backend, status_pm, red)
    assert status.colour is Colour.RED and status.colour.label_zh == "集中观察"
    assert status.valid_until == dt.datetime(2026, 11, 27, tzinfo=SHANGHAI)
    assert resolve(backend, status_pm, yellow).colour is Colour.YELLOW
    nothing = resolve(backend, status_pm, green)
    assert nothing.colour is Colour.GREEN and nothing.colour.label_zh == "未见异常"
    assert nothing.reasons == () and nothing.sources == ()
    # Another day's list says nothing about today.
    tomorrow = NOON + dt.timedelta(days=1)
    assert resolve(backend, status_pm, red, now=tomorrow).colour is Colour.GREEN


def test_json_lines_with_chinese_labels_and_legacy_numbers(
    backend: Backend, status_pm: pluggy.PluginManager, tmp_path: Path
) -> None:
    rng = random.Random(7)
    legacy = random_legacy_resident_id(rng)
    modern = random_resident_id(rng)
    path = tmp_path / "list.jsonl"
    path.write_text(
        json.dumps({"document_kind": KIND, "document_number": legacy, "status": "居家观察"})
        + "\n\n"
        + json.dumps(
            {"kind": KIND, "number": f" {modern[:6]} {modern[6:]} ".lower(), "colour": "集中观察"}
        )
        + "\n",
        encoding="utf-8",
    )
    seen: list[tuple[int, int]] = []

    async def go() -> ImportSummary:
        db, secrets = await open_database(backend.url, backend.secrets_file)
        try:
            return await import_status_file(
                db, secrets, path, day=DAY, pm=status_pm, progress=lambda d, t: seen.append((d, t))
            )
        finally:
            await db.dispose()

    summary = asyncio.run(go())
    assert (summary.rows_imported, summary.rows_invalid) == (2, 0)
    assert seen and seen[-1] == (path.stat().st_size, path.stat().st_size)
    # The 15-digit number was listed; the person enrolls with the 18-digit form.
    assert resolve(backend, status_pm, convert_legacy_number(legacy)).colour is Colour.YELLOW
    assert resolve(backend, status_pm, modern).colour is Colour.RED


def test_reimport_changes_nothing(
    backend: Backend, status_pm: pluggy.PluginManager, numbers: list[str]
) -> None:
    lines = csv_lines([(KIND, n, "red" if i % 3 else "yellow") for i, n in enumerate(numbers)])
    first = run_import(backend, status_pm, lines, batch_size=7)
    before = snapshot(backend, "status_entries")
    second = run_import(backend, status_pm, lines, batch_size=7)
    assert snapshot(backend, "status_entries") == before
    assert (first.entries, first.red, first.yellow) == (second.entries, second.red, second.yellow)
    # Merging the same file on top changes nothing either.
    run_import(backend, status_pm, lines, replace=False)
    assert snapshot(backend, "status_entries") == before
    # A new file for the same source and day replaces the old list.
    replaced = run_import(backend, status_pm, csv_lines([(KIND, numbers[0], "yellow")]))
    assert (replaced.entries, replaced.yellow) == (1, 1)
    assert resolve(backend, status_pm, numbers[1]).colour is Colour.GREEN


def test_duplicate_rows_keep_the_most_severe(
    backend: Backend, status_pm: pluggy.PluginManager, numbers: list[str]
) -> None:
    n = numbers[0]
    rows = [(KIND, n, "yellow"), (KIND, n, "red"), (KIND, n, "yellow")]
    summary = run_import(backend, status_pm, csv_lines(rows), batch_size=1)
    assert (summary.rows_imported, summary.entries, summary.duplicates) == (3, 1, 2)
    assert resolve(backend, status_pm, n).colour is Colour.RED


def test_invalid_rows_are_reported_by_line_and_valid_rows_imported(
    backend: Backend, status_pm: pluggy.PluginManager, numbers: list[str]
) -> None:
    good = numbers[0]
    bad_check = good[:-1] + ("0" if good[-1] != "0" else "1")
    lines = [
        "kind,number,status\n",  # line 1
        f"{KIND},{good},red\n",  # 2
        f"{KIND},{bad_check},red\n",  # 3: check character wrong
        f"{KIND},12345,red\n",  # 4: wrong length
        f"no_such_kind,{numbers[1]},red\n",  # 5
        f"{KIND},{numbers[2]},green\n",  # 6: green is not listed
        f"{KIND},{numbers[3]}\n",  # 7: a column short
        "\n",  # 8: blank, ignored
        f'{KIND},"{numbers[4][:9]}\n#{numbers[4][9:]}",red\n',  # 9-10: quoted, 2 lines
        f"{KIND},,yellow\n",  # 11: empty number
        f"{KIND},{numbers[5]},yellow\n",  # 12
    ]
    # As a file reads: one physical line at a time.
    summary = run_import(backend, status_pm, io.StringIO("".join(lines)))
    assert (summary.rows_imported, summary.entries) == (2, 2)
    got = [(row.line, row.code) for row in summary.invalid_rows]
    assert got == [
        (3, "check_digit_mismatch"),
        (4, "malformed_number"),
        (5, "import_unknown_kind"),
        (6, "import_invalid_status"),
        (7, "import_wrong_column_count"),
        (9, "invalid_characters"),
        (11, "empty_input"),
    ], got
    assert summary.rows_invalid == 7
    text = json.dumps(summary.as_dict(), ensure_ascii=False)
    for n in numbers[:6]:
        assert n not in text and n[:9] not in text


def test_jsonl_invalid_lines(
    backend: Backend, status_pm: pluggy.PluginManager, numbers: list[str]
) -> None:
    lines = [
        json.dumps({"kind": KIND, "number": numbers[0], "status": "red"}) + "\n",
        "{not json\n",
        "[1, 2]\n",
        json.dumps({"kind": KIND, "number": 12, "status": "red"}) + "\n",
    ]
    summary = run_import(backend, status_pm, lines, fmt="jsonl")
    assert [(r.line, r.code) for r in summary.invalid_rows] == [
        (2, "import_invalid_json"),
        (3, "import_invalid_json"),
        (4, "empty_input"),
    ]
    assert summary.entries == 1


def test_bad_files_and_sources_are_refused(
    backend: Backend, status_pm: pluggy.PluginManager, tmp_path: Path
) -> None:
    with pytest.raises(ImportFormatError):
        run_import(backend, status_pm, ["name,id\n", "a,b\n"])
    with pytest.raises(StatusImportError) as info:
        run_import(backend, status_pm, csv_lines([]), source="Bad Source!")
    assert info.value.code == "import_source_invalid"
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(b"kind,number,status\n" + f"{KIND},\xe9,red\n".encode("latin-1"))

    async def go() -> None:
        db, secrets = await open_database(backend.url, backend.secrets_file)
        try:
            await import_status_file(db, secrets, latin1, day=DAY, pm=status_pm)
        finally:
            await db.dispose()

    with pytest.raises(ImportFormatError) as fmt_info:
        asyncio.run(go())
    assert fmt_info.value.details["reason"] == "not_utf8"


class _Interrupted(OSError):
    pass


def test_interrupted_import_leaves_previous_data(
    backend: Backend, status_pm: pluggy.PluginManager, numbers: list[str]
) -> None:
    run_import(backend, status_pm, csv_lines([(KIND, n, "yellow") for n in numbers[:10]]))
    run_import(backend, status_pm, csv_lines([(KIND, numbers[0], "red")]), source="peer")
    before = snapshot(backend, "status_entries", "audit_log")

    def stream() -> Iterator[str]:
        # A new list for the same day that dies after several batches went in.
        yield from csv_lines([(KIND, n, "red") for n in numbers[10:30]])
        raise _Interrupted("connection to the file share lost")

    with pytest.raises(_Interrupted):
        run_import(backend, status_pm, stream(), batch_size=4)
    assert snapshot(backend, "status_entries", "audit_log") == before
    assert resolve(backend, status_pm, numbers[1]).colour is Colour.YELLOW
    assert resolve(backend, status_pm, numbers[15]).colour is Colour.GREEN


# --- resolution ------------------------------------------------------------------------------


def test_two_sources_disagree_most_severe_wins_and_both_are_recorded(
    backend: Backend, status_pm: pluggy.PluginManager, numbers: list[str]
) -> None:
    n = numbers[0]
    run_import(backend, status_pm, csv_lines([(KIND, n, "yellow")]), source="cdc")
    run_import(backend, status_pm, csv_lines([(KIND, n, "red")]), source="tianjin")
    status = resolve(backend, status_pm, n)
    assert status.colour is Colour.RED
    assert status.sources == ("tianjin", "cdc")
    assert [r.split(":")[0] for r in status.reasons] == ["tianjin", "cdc"]
    decisions = snapshot(backend, "status_decisions")["status_decisions"]
    assert len(decisions) == 1
    recorded = decisions[0][5]
    recorded = json.loads(recorded) if isinstance(recorded, str) else recorded
    assert {(c["source"], c["colour"]) for c in recorded} == {("cdc", "yellow"), ("tianjin", "red")}


class _CheckpointSource:
    """A third-party source that puts everyone it is told about in yellow.

    Written for 0.1: without the ``entries`` argument (added in 0.2), it is
    still called."""

    def __init__(self, subject_ids: set[str]) -> None:
        self.subject_ids = subject_ids

    @hookimpl
    def healthcode_resolve_status(
        self, subject: Subject, day: dt.date
    ) -> StatusContribution | None:
        if subject.subject_id in self.subject_ids:
            return StatusContribution("checkpoint", Colour.YELLOW, "self-declared travel")
        return None


def test_plugins_and_imported_lists_combine(
    backend: Backend, status_pm: pluggy.PluginManager, numbers: list[str]
) -> None:
    secrets = secrets_of(backend)
    listed, declared = numbers[0], numbers[1]
    run_import(backend, status_pm, csv_lines([(KIND, listed, "red")]))
    ids = {subject_for(secrets, listed).subject_id, subject_for(secrets, declared).subject_id}
    status_pm.register(_CheckpointSource(ids), name="checkpoint")
    both = resolve(backend, status_pm, listed)
    assert both.colour is Colour.RED and set(both.sources) == {"authority", "checkpoint"}
    only = resolve(backend, status_pm, declared, record=False)
    assert only.colour is Colour.YELLOW and only.sources == ("checkpoint",)


def test_a_broken_source_is_a_plugin_error(
    backend: Backend, status_pm: pluggy.PluginManager
) -> None:
    class Broken:
        @hookimpl
        def healthcode_resolve_status(self, subject: Subject, day: dt.date) -> object:
            return "red"

    status_pm.register(Broken(), name="broken")
    with pytest.raises(PluginError):
        resolve(backend, status_pm, random_resident_id(random.Random(1)))


def test_linked_documents_share_a_status(
    backend: Backend, status_pm: pluggy.PluginManager, numbers: list[str]
) -> None:
    """A subject who re-enrolled with a renewed document is found by either key."""
    secrets = secrets_of(backend)
    old, new = numbers[0], numbers[1]
    run_import(backend, status_pm, csv_lines([(KIND, new, "red")]))
    subject = subject_for(secrets, old)
    now = dt.datetime.now(dt.UTC)

    async def go() -> Status:
        db = Database(backend.url)
        try:
            async with db.begin() as conn:
                await conn.execute(
                    tables.subjects.insert().values(
                        subject_key=bytes.fromhex(subject.subject_id),
                        kind=KIND,
                        masked_name="张",
                        masked_number="11**",
                        created_at=now,
                        updated_at=now,
                    )
                )
                await conn.execute(
                    tables.subject_documents.insert().values(
                        document_key=document_key(secrets, KIND, "CHN", new),
                        subject_key=bytes.fromhex(subject.subject_id),
                        kind=KIND,
                        created_at=now,
                    )
                )
            return await resolve_status(db, subject, now=NOON, pm=status_pm)
        finally:
            await db.dispose()

    assert asyncio.run(go()).colour is Colour.RED


# --- the daily cut-off, with the server's clock elsewhere -------------------------------------


@pytest.fixture
def new_york_tz(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        yield
    finally:
        monkeypatch.undo()
        time.tzset()


def test_cutoff_boundaries_in_shanghai(
    backend: Backend, status_pm: pluggy.PluginManager, numbers: list[str], new_york_tz: None
) -> None:
    n = numbers[0]
    yesterday = DAY - dt.timedelta(days=1)
    run_import(backend, status_pm, csv_lines([(KIND, n, "red")]))
    run_import(backend, status_pm, csv_lines([(KIND, numbers[1], "red")]), day=yesterday)
    last_moment = dt.datetime(2026, 11, 26, 23, 59, 59, 999000, tzinfo=SHANGHAI)
    midnight = dt.datetime(2026, 11, 27, 0, 0, 0, tzinfo=SHANGHAI)
    # In New York these are 10:59:59.999 and 11:00 on the 26th: same local day.
    assert last_moment.astimezone().date() == midnight.astimezone().date()

    late = resolve(backend, status_pm, n, now=last_moment.astimezone(dt.UTC))
    assert late.colour is Colour.RED
    assert late.valid_until == midnight
    early = resolve(backend, status_pm, n, now=midnight.astimezone(dt.UTC))
    assert early.colour is Colour.GREEN
    assert early.valid_until == dt.datetime(2026, 11, 28, tzinfo=SHANGHAI)

    async def purge(now: dt.datetime) -> dict[str, int]:
        db = Database(backend.url)
        try:
            return dict((await purge_expired(db, now=now)).deleted)
        finally:
            await db.dispose()

    # One moment before midnight only yesterday's rows go.
    assert asyncio.run(purge(last_moment))["status_entries"] == 1
    assert resolve(backend, status_pm, n, now=last_moment, record=False).colour is Colour.RED
    # At midnight the 26th's rows and its decision go; the decision made at
    # 00:00:00 belongs to the 27th and stays.
    deleted = asyncio.run(purge(midnight))
    assert deleted == {
        "status_entries": 1,
        "status_decisions": 1,
        # Day-scoped too (status sharing between regions, see test_sharing.py).
        "peer_status_exports": 0,
        "peer_status_entries": 0,
        # The one purge also takes expired passes (see test_hardening_input.py).
        "passes": 0,
        "revocations": 0,
        "liveness_challenges": 0,
        "used_signatures": 0,
        # Faces kept for confirmed reviews whose window passed (test_reviews.py).
        "review_faces": 0,
    }
    assert snapshot(backend, "status_entries")["status_entries"] == []


# --- privacy ----------------------------------------------------------------------------------


def test_no_raw_number_anywhere_in_tables_or_logs(
    backend: Backend,
    status_pm: pluggy.PluginManager,
    numbers: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    rng = random.Random(99)
    legacy = random_legacy_resident_id(rng)
    listed = numbers[:20]
    caplog.set_level(logging.DEBUG)
    # SQL statements and their parameters, as an operator with echo on would see them.
    logging.getLogger("sqlalchemy.engine").setLevel(logging.DEBUG)
    try:
        rows = [(KIND, n, "red") for n in listed] + [(KIND, legacy, "yellow")]
        rows.append((KIND, listed[0][:-1] + "Q", "red"))  # invalid: its message must not echo it
        run_import(backend, status_pm, csv_lines(rows))
        for n in listed[:3]:
            resolve(backend, status_pm, n)
        runner_out = _cli(
            backend, ["status", "show", "--kind", KIND, "--number", listed[3], "--json"]
        )
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    assert json.loads(runner_out.stdout)["colour"] == "red"
    dump = snapshot(backend)
    assert dump["status_entries"] and dump["status_decisions"] and dump["audit_log"]
    haystack_text = repr(dump)
    haystack_bytes = b"".join(
        value if isinstance(value, bytes) else str(value).encode()
        for rows_ in dump.values()
        for row in rows_
        for value in row
    )
    logs = caplog.text + runner_out.stdout + runner_out.stderr
    assert "status_entries" in caplog.text  # the SQL log was captured (PostgreSQL: COPY)
    secrets = secrets_of(backend)
    forbidden = [*listed, legacy, convert_legacy_number(legacy), listed[0][:-1] + "Q"]
    for number in forbidden:
        for needle in (number, number[2:-2]):
            assert needle not in haystack_text and needle.encode() not in haystack_bytes
            assert needle not in logs
    assert (
        secrets.subject_hmac_key.hex() not in logs
        and secrets.subject_hmac_key not in haystack_bytes
    )


def test_status_show_follows_the_clock_across_midnight(
    backend: Backend,
    status_pm: pluggy.PluginManager,
    numbers: list[str],
    clock: time_machine.Coordinates,
) -> None:
    """``status show`` asks about "today" in Asia/Shanghai: a list imported for
    the day holds until 24:00 and not a second longer."""
    clock.move_to(dt.datetime.combine(DAY, dt.time(9), SHANGHAI))
    run_import(backend, status_pm, csv_lines([(KIND, numbers[0], "red")]))
    show = ["status", "show", "--kind", KIND, "--number", numbers[0], "--json"]
    assert json.loads(_cli(backend, show).stdout)["colour"] == "red"
    midnight = next_cutoff(dt.datetime.combine(DAY, dt.time(9), SHANGHAI))
    clock.move_to(midnight - dt.timedelta(seconds=1))
    assert json.loads(_cli(backend, show).stdout)["colour"] == "red"
    clock.move_to(midnight)
    assert json.loads(_cli(backend, show).stdout)["colour"] == "green"


# --- CLI -------------------------------------------------------------------------------------


def _cli(backend: Backend, args: list[str]) -> Any:
    # The entry point is not declared yet: give the cached manager the plugin.
    pm = get_plugin_manager()
    if not pm.is_registered(authority_status):
        pm.register(authority_status, name="authority_status")
    app = typer.Typer()
    app.command("init")(init_command)
    app.command("purge")(purge_command)
    app.add_typer(status_app, name="status")
    env = {DATABASE_URL_ENV: backend.url, SECRETS_ENV: str(backend.secrets_file)}
    return CliRunner().invoke(app, args, env=env)


def test_cli_import_show_purge(backend: Backend, tmp_path: Path, numbers: list[str]) -> None:
    path = tmp_path / "list.csv"
    path.write_text(
        "".join(csv_lines([(KIND, numbers[0], "red"), (KIND, "123", "red")])), encoding="utf-8"
    )
    init = _cli(backend, ["init", "--json"])
    assert init.exit_code == 0, init.output
    assert json.loads(init.stdout)["secrets_created"] is False

    # The day is checked against the clock: act as of noon on DAY.
    at = ["--now", NOON.isoformat()]
    result = _cli(backend, ["status", "import", str(path), "--day", DAY.isoformat(), *at, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["entries"], summary["rows_invalid"]) == (1, 1)
    assert summary["invalid_rows"][0]["line"] == 3
    strict = _cli(
        backend,
        [
            "status",
            "import",
            str(path),
            "--day",
            DAY.isoformat(),
            *at,
            "--fail-on-invalid",
            "--json",
        ],
    )
    assert strict.exit_code == 1

    shown = _cli(
        backend,
        [
            "status",
            "show",
            "-k",
            KIND,
            "-n",
            numbers[0],
            "--now",
            NOON.isoformat(),
            "--json",
            "--reasons",
        ],
    )
    assert shown.exit_code == 0, shown.output
    payload = json.loads(shown.stdout)
    assert payload["colour"] == "red" and payload["label_zh"] == "集中观察"
    assert payload["valid_until"] == "2026-11-26T16:00:00+00:00"
    assert payload["masked_number"] == numbers[0][:2] + "*" * 14 + numbers[0][-2:]
    assert numbers[0] not in shown.stdout

    bad_day = _cli(backend, ["status", "import", str(path), "--day", "26/11/2026"])
    assert bad_day.exit_code == 2

    purged = _cli(backend, ["purge", "--now", "2026-11-27T00:00:00+08:00", "--json"])
    assert purged.exit_code == 0, purged.output
    assert json.loads(purged.stdout)["deleted"]["status_entries"] == 1
