"""The operator's CLI, friction by friction (issue 16, "CLI that fits its
users"): peer sharing set-up, tables at 80 columns, help that reads, errors
that say what is wrong, times in Asia/Shanghai, progress that stays quiet
where nobody watches. Everything through the real ``healthcode`` app."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
import time_machine
import typer
from rich.console import Console
from support.backends import Backend
from support.data import CLOCK_START
from typer.testing import CliRunner, Result

from healthcode.cli.main import app
from healthcode.cli.options import work_progress
from healthcode.core.documents import document_types
from healthcode.core.enrollment.challenges import DEFAULT_CHALLENGE_LENGTH
from healthcode.core.passes import KeyStore, export_issuer
from healthcode.plugins.face import modelstore

runner = CliRunner()
NARROW = {"COLUMNS": "80"}
SHANGHAI_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+08:00")


def cli(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
    return runner.invoke(app, list(args), env=env, input=stdin)


def region(root: Path, code: str, name: str) -> KeyStore:
    keys = KeyStore(root / code / "keys")
    keys.init(code, name)
    return keys


def db_args(backend: Backend) -> list[str]:
    return ["--database", backend.url, "--secrets-file", str(backend.secrets_file)]


# --- peer sharing set-up -------------------------------------------------------------


def test_pair_keys_are_made_listed_and_removed_by_command(tmp_path: Path) -> None:
    tianjin = region(tmp_path, "120000", "天津市")
    beijing = region(tmp_path, "110000", "北京市")
    tj, bj = ["--keys-dir", str(tianjin.path)], ["--keys-dir", str(beijing.path)]

    missing = cli("trust", "export-status", "--peer", "110000", *tj, "--json")
    assert missing.exit_code == 1
    error = json.loads(missing.stdout)["error"]
    assert error["code"] == "pair_key_missing"
    assert "healthcode trust pair-key create --peer" in error["message_en"]
    assert "healthcode trust pair-key create" in missing.stderr

    created = cli("trust", "pair-key", "create", "--peer", "110000", *tj)
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", secret)
    fingerprint = re.search(r"fingerprint ([0-9a-f]{16})", created.stderr)
    assert fingerprint and "pair-key set --peer 120000" in created.stderr

    # The peer stores the same key, from a file or stdin, and sees the same fingerprint.
    stored = cli("trust", "pair-key", "set", "--peer", "120000", "-", *bj, "--json", stdin=secret)
    assert stored.exit_code == 0, stored.output
    assert json.loads(stored.stdout)["fingerprint"] == fingerprint[1]
    assert beijing.pair_key("120000") == tianjin.pair_key("110000") == bytes.fromhex(secret)

    listed = cli("trust", "pair-key", "list", *tj, env=NARROW)
    assert listed.exit_code == 0
    assert "110000" in listed.stdout and fingerprint[1] in listed.stdout
    assert secret not in listed.stdout and SHANGHAI_TIME.search(listed.stdout)

    # A second key would orphan every token made with the first: only when asked.
    again = cli("trust", "pair-key", "create", "--peer", "110000", *tj, "--json")
    assert again.exit_code == 1
    assert json.loads(again.stdout)["error"]["code"] == "pair_key_exists"
    assert secret not in again.output
    replaced = cli("trust", "pair-key", "create", "--peer", "110000", "--replace", *tj, "--json")
    assert replaced.exit_code == 0
    assert json.loads(replaced.stdout)["pair_key"] != secret

    assert cli("trust", "pair-key", "remove", "--peer", "110000", *tj).exit_code == 0
    assert json.loads(cli("trust", "pair-key", "list", *tj, "--json").stdout)["pair_keys"] == []
    assert cli("trust", "pair-key", "remove", "--peer", "110000", *tj).exit_code == 1


def test_pair_key_commands_refuse_what_they_cannot_use(tmp_path: Path) -> None:
    tianjin = region(tmp_path, "120000", "天津市")
    tj = ["--keys-dir", str(tianjin.path)]
    # The peer code names a file: nothing but a region code gets through.
    assert cli("trust", "pair-key", "create", "--peer", "../keys", *tj).exit_code == 2
    own = cli("trust", "pair-key", "create", "--peer", "120000", *tj, "--json")
    assert json.loads(own.stdout)["error"]["code"] == "pair_key_own_region"
    short = cli("trust", "pair-key", "set", "--peer", "110000", "-", *tj, "--json", stdin="abcd")
    assert short.exit_code == 1
    assert json.loads(short.stdout)["error"]["code"] == "pair_key_invalid"
    assert "abcd" not in short.output
    written = tmp_path / "for-beijing.key"
    to_file = cli("trust", "pair-key", "create", "--peer", "110000", "-o", str(written), *tj)
    assert to_file.exit_code == 0 and to_file.stdout == ""
    assert written.stat().st_mode & 0o077 == 0
    assert bytes.fromhex(written.read_text().strip()) == tianjin.pair_key("110000")


def test_export_status_works_once_a_pair_key_is_made(tmp_path: Path, backend: Backend) -> None:
    tianjin = region(tmp_path, "120000", "天津市")
    tj = ["--keys-dir", str(tianjin.path), *db_args(backend)]
    assert cli("trust", "pair-key", "create", "--peer", "110000", *tj[:2]).exit_code == 0
    exported = cli("trust", "export-status", "--peer", "110000", *tj, "--json")
    assert exported.exit_code == 0, exported.output
    payload = json.loads(exported.stdout)
    assert payload["day"] == "2026-11-26" and payload["list"].startswith("HCS1:")


# --- tables at 80 columns ------------------------------------------------------------


def test_tables_keep_whole_what_is_typed_next_at_80_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kinds = cli("documents", "kinds", env=NARROW)
    assert kinds.exit_code == 0
    for kind in document_types():
        assert re.search(rf"│ {re.escape(kind)} +│", kinds.stdout), kind
    assert "…" not in kinds.stdout

    keys = region(tmp_path, "110000", "北京市")
    listed = cli("keys", "list", "--keys-dir", str(keys.path), env=NARROW)
    assert keys.active().kid.hex() in listed.stdout
    assert "2026-11-26 10:00:00 +08:00" in listed.stdout

    trust = cli(
        "trust",
        "list",
        "--keys-dir",
        str(keys.path),
        "--trust-file",
        str(tmp_path / "trust.hct"),
        env=NARROW,
    )
    assert trust.exit_code == 0, trust.output
    assert keys.active().kid.hex() in trust.stdout and "…" not in trust.stdout
    assert "signed 2026-11-26 10:00:" in trust.stdout

    monkeypatch.setenv("HEALTHCODE_MODEL_DIR", str(tmp_path / "models"))
    models = cli("models", "list", env=NARROW)
    assert models.exit_code == 0
    for spec in modelstore.MODELS:
        assert spec.name in models.stdout and spec.sha256 in models.stdout
    assert "…" not in models.stdout
    assert max(len(line) for line in models.stdout.splitlines()) <= 80


def test_tokens_list_shows_whole_ids_and_shanghai_times(backend: Backend) -> None:
    created = cli("tokens", "create", "--role", "guard", "--label", "gate 3", *db_args(backend))
    token_id = created.stdout.strip().split(".")[0].rsplit("_", 1)[1]
    listed = cli("tokens", "list", *db_args(backend), env=NARROW)
    assert listed.exit_code == 0
    assert token_id in listed.stdout
    assert "2026-11-26" in listed.stdout and "10:00:" in listed.stdout
    assert "+08:00" in listed.stdout and "+00:00" not in listed.stdout


# --- help text -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["faces", "liveness"],
        ["status", "import"],
        ["trust", "export-status"],
        ["documents", "check"],
        ["tokens", "revoke"],
        ["serve"],
    ],
)
def test_help_reads_as_words(command: list[str]) -> None:
    result = cli(*command, "--help", env=NARROW)
    assert result.exit_code == 0
    for label in ("<bool>", "<list[", "<str>", "<Path>"):
        assert label not in result.stdout
    # One name for the database everywhere; the old one is accepted, not shown.
    assert "--database-url" not in result.stdout


def test_serve_takes_database_like_every_other_command() -> None:
    assert "--database " in cli("serve", "--help", env={"COLUMNS": "200"}).stdout


def _commands(group: typer.Typer) -> list[tuple[str, str | None]]:
    """(command path, help) for every command of ``group`` and its sub-apps."""

    def walk(command: Any, path: str) -> list[tuple[str, str | None]]:
        found = [(path, command.help)]
        for name, sub in getattr(command, "commands", {}).items():
            found += walk(sub, f"{path} {name}")
        return found

    return walk(typer.main.get_command(group), "healthcode")


MY_GROUPS = ("trust", "tokens", "keys", "documents", "status", "faces", "models")
MY_COMMANDS = ("init", "purge", "paths")


def test_help_paragraphs_are_not_broken_mid_sentence() -> None:
    broken = [
        path
        for path, text in _commands(app)
        if text
        and (path.split()[1:2] and path.split()[1] in MY_GROUPS + MY_COMMANDS)
        and any("\n" in paragraph for paragraph in text.split("\n\n"))
    ]
    assert broken == []
    listing = cli("trust", "--help", env={"COLUMNS": "200"}).stdout
    assert "Sign a day's red/yellow list for one peer region (HCS1:...)." in listing
    wide = cli("status", "import", "--help", env={"COLUMNS": "400"}).stdout
    assert "While another import of the same source for the same day runs, it stops at once" in wide


def test_database_url_is_a_hidden_alias(backend: Backend, tmp_path: Path) -> None:
    listed = cli(
        "tokens",
        "list",
        "--database-url",
        backend.url,
        "--secrets-file",
        str(backend.secrets_file),
        "--json",
    )
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout) == []
    csv = tmp_path / "list.csv"
    csv.write_text("kind,number,status,issuing_state\ncn_resident_id,11010519491231002X,red,\n")
    imported = cli(
        "status",
        "import",
        str(csv),
        f"--database-url={backend.url}",
        "--secrets-file",
        str(backend.secrets_file),
        "--json",
    )
    assert imported.exit_code == 0, imported.output


def test_import_and_export_days_default_to_today_in_shanghai(
    backend: Backend, tmp_path: Path, clock: time_machine.Coordinates
) -> None:
    for command in (["status", "import"], ["trust", "export-status"]):
        shown = cli(*command, "--help", env={"COLUMNS": "200"}).stdout
        assert "default: today in Asia/Shanghai" in shown
    csv = tmp_path / "list.csv"
    # The column order --help gives.
    shown = cli("status", "import", "--help", env={"COLUMNS": "200"}).stdout
    header = re.search(r"header line ([a-z_,]+)", shown)
    assert header and header[1] == "kind,number,status,issuing_state"
    csv.write_text(f"{header[1]}\ncn_resident_id,11010519491231002X,red,\n")
    keys = region(tmp_path, "120000", "天津市")
    tj = ["--keys-dir", str(keys.path)]
    assert cli("trust", "pair-key", "create", "--peer", "110000", *tj).exit_code == 0

    def days() -> tuple[str, dict[str, object]]:
        imported = cli("status", "import", str(csv), *tj, *db_args(backend), "--json")
        assert imported.exit_code == 0, imported.output
        exported = cli(
            "trust", "export-status", "--peer", "110000", *tj, *db_args(backend), "--json"
        )
        assert exported.exit_code == 0, exported.output
        return json.loads(imported.stdout)["day"], json.loads(exported.stdout)

    day, exported = days()
    assert (day, exported["day"], exported["red"]) == ("2026-11-26", "2026-11-26", 1)
    # 17:00 UTC is 01:00 the next morning in Shanghai.
    clock.move_to(CLOCK_START + dt.timedelta(hours=15))
    day, exported = days()
    assert (day, exported["day"], exported["red"]) == ("2026-11-27", "2026-11-27", 1)


def test_faces_challenge_has_the_service_length() -> None:
    drawn = cli("faces", "challenge")
    assert drawn.exit_code == 0, drawn.output
    assert len(json.loads(drawn.stdout)["actions"]) == DEFAULT_CHALLENGE_LENGTH
    assert f"[default: {DEFAULT_CHALLENGE_LENGTH}]" in cli("faces", "challenge", "--help").stdout


# --- errors that say what is wrong --------------------------------------------------


def test_trust_add_says_the_file_is_not_a_peer_export(tmp_path: Path) -> None:
    beijing = region(tmp_path, "110000", "北京市")
    common = ["--keys-dir", str(beijing.path), "--trust-file", str(tmp_path / "trust.hct")]
    assert cli("trust", "list", *common).exit_code == 0
    before = (tmp_path / "trust.hct").read_text()
    trust_list = tmp_path / "trust-list.hct"
    trust_list.write_text(before)  # the trust list itself, not an export
    binary = tmp_path / "photo.jpg"
    binary.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)))
    text = tmp_path / "notes.txt"
    text.write_text("HCK1:this is not base45 at all\n")
    for garbage in (trust_list, binary, text):
        result = cli("trust", "add", str(garbage), *common, "--json")
        assert result.exit_code == 1, result.output
        error = json.loads(result.stdout)["error"]
        assert error["code"] == "issuer_export_invalid"
        assert "keys export" in error["message_en"] and "damaged" not in error["message_en"][:40]
        assert "trust list is damaged" not in result.stderr
    assert (tmp_path / "trust.hct").read_text() == before
    # A real export still goes in.
    tianjin = region(tmp_path, "120000", "天津市")
    export = tmp_path / "tianjin.hck"
    export.write_text(export_issuer(tianjin))
    assert cli("trust", "add", str(export), *common).exit_code == 0


def test_tokens_revoke_never_prints_the_secret_and_says_what_it_revoked(
    backend: Backend,
) -> None:
    created = cli("tokens", "create", "--role", "guard", "--label", "gate 3", *db_args(backend))
    token = created.stdout.strip()
    secret = token.split(".", 1)[1]
    token_id = token.split(".")[0].rsplit("_", 1)[1]

    revoked = cli("tokens", "revoke", token, *db_args(backend))
    assert revoked.exit_code == 0, revoked.output
    assert secret not in revoked.output
    assert token_id in revoked.stdout and "guard" in revoked.stdout and "gate 3" in revoked.stdout
    assert "2026-11-26 10:00:" in revoked.stdout and "+08:00" in revoked.stdout

    again = cli("tokens", "revoke", token, *db_args(backend), "--json")
    assert again.exit_code == 1
    assert json.loads(again.stdout) == {"ok": False, "token_id": token_id}
    assert secret not in again.output
    # Whatever follows the id is never printed, whether or not it is the secret.
    mistyped = cli("tokens", "revoke", token[:-3] + "!!!", *db_args(backend))
    assert mistyped.exit_code == 1
    assert secret[:20] not in mistyped.output and token_id in mistyped.stdout
    garbage = cli("tokens", "revoke", "s3cret-not-an-id", *db_args(backend))
    assert garbage.exit_code == 2 and "s3cret" not in garbage.output


def test_status_show_gives_its_time_in_shanghai(backend: Backend, tmp_path: Path) -> None:
    csv = tmp_path / "list.csv"
    csv.write_text("kind,number,status,issuing_state\ncn_resident_id,11010519491231002X,red,\n")
    assert cli("status", "import", str(csv), *db_args(backend)).exit_code == 0
    shown = cli(
        "status", "show", "-k", "cn_resident_id", "-n", "11010519491231002X", *db_args(backend)
    )
    assert shown.exit_code == 0, shown.output
    assert "valid until 2026-11-27 00:00:00 +08:00" in shown.stdout
    assert "11010519491231002X" not in shown.stdout


# --- long work ---------------------------------------------------------------------


def test_progress_counts_rows_with_rate_and_time_left() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, color_system=None, width=120)
    with work_progress("importing / 导入中", "rows", console=console, enabled=True) as bar:
        task = bar.add_task("import", total=20_000)
        bar.update(task, completed=1_000)
        bar.update(task, completed=5_000)
        bar.refresh()
    shown = screen.getvalue()
    assert "5000/20000 rows" in shown
    assert re.search(r"[\d,.]+ rows/s", shown) and re.search(r"left / 剩余 \d+:\d\d:\d\d", shown)
    assert "bytes" not in shown and "MB" not in shown

    quiet = io.StringIO()
    console = Console(file=quiet, force_terminal=True, width=120)
    with work_progress("importing", "rows", console=console, enabled=False) as bar:
        bar.update(bar.add_task("import", total=10), completed=5)
    assert quiet.getvalue() == ""


def test_import_is_quiet_off_a_terminal(backend: Backend, tmp_path: Path) -> None:
    csv = tmp_path / "list.csv"
    rows = "cn_resident_id,11010519491231002X,red,\n" * 3
    csv.write_text("kind,number,status,issuing_state\n" + rows)
    result = cli("status", "import", str(csv), *db_args(backend))
    assert result.exit_code == 0, result.output
    assert "importing" not in result.stderr and "rows/s" not in result.output
