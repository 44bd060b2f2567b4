"""``healthcode --version`` and ``healthcode paths``: a newcomer finds where
the instance keeps its state without reading the source."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import healthcode
from healthcode.cli.main import app

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"healthcode {healthcode.__version__}"


def test_paths_follow_the_environment(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    env = {
        "HEALTHCODE_DATABASE_URL": f"sqlite:///{tmp_path / 'hc.db'}",
        "HEALTHCODE_SECRETS_FILE": str(tmp_path / "secrets.json"),
        "HEALTHCODE_KEYS_DIR": str(tmp_path / "keys"),
        "HEALTHCODE_TRUST_FILE": str(tmp_path / "trust.hct"),
        "HEALTHCODE_SEEN_FILE": str(tmp_path / "seen.json"),
    }
    result = runner.invoke(app, ["paths", "--json"], env=env)
    assert result.exit_code == 0, result.output
    rows = {row["what"]: row for row in json.loads(result.stdout)["paths"]}
    assert rows["database"]["where"] == str(tmp_path / "hc.db")
    assert rows["keys"] == {
        "what": "keys",
        "where": str(tmp_path / "keys"),
        "env": "HEALTHCODE_KEYS_DIR",
        "set_by_env": True,
        "exists": True,
    }
    assert rows["secrets"]["exists"] is False
    assert {"trust list", "seen live codes", "face models"} <= set(rows)


def test_paths_hide_a_database_password() -> None:
    env = {"HEALTHCODE_DATABASE_URL": "postgresql://hc:s3cret@db.example/hc"}
    result = runner.invoke(app, ["paths"], env=env)
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.stdout and "db.example" in result.stdout
