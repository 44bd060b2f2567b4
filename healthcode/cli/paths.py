"""``healthcode paths``: where this instance keeps its state, and the
environment variable that moves each piece (in the manner of ``llm logs path``)."""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console

from healthcode.cli.options import JsonOption, make_table, print_json, reflow_help
from healthcode.cli.profile import PROFILE_DIR_ENV, profile_dir
from healthcode.core.passes.keys import KEYS_DIR_ENV, default_keys_dir
from healthcode.core.passes.trust import TRUST_FILE_ENV, default_trust_file
from healthcode.core.privacy.secrets import SECRETS_ENV, secrets_path
from healthcode.core.replay import SEEN_FILE_ENV, default_seen_file
from healthcode.core.storage.database import DATABASE_URL_ENV, database_url, redacted

MODEL_DIR_ENV = "HEALTHCODE_MODEL_DIR"


def _state() -> list[dict[str, str | bool | None]]:
    url = database_url()
    database = url.database if url.get_backend_name() == "sqlite" else None
    rows: list[tuple[str, str, str, Path | None]] = [
        (
            "database",
            database or redacted(url),
            DATABASE_URL_ENV,
            Path(database) if database else None,
        ),
        ("secrets", str(secrets_path()), SECRETS_ENV, secrets_path()),
        ("keys", str(default_keys_dir()), KEYS_DIR_ENV, default_keys_dir()),
        ("trust list", str(default_trust_file()), TRUST_FILE_ENV, default_trust_file()),
        ("seen live codes", str(default_seen_file()), SEEN_FILE_ENV, default_seen_file()),
        ("holder profiles", str(profile_dir()), PROFILE_DIR_ENV, profile_dir()),
    ]
    found: list[dict[str, str | bool | None]] = [
        {
            "what": what,
            "where": where,
            "env": env,
            "set_by_env": bool(os.environ.get(env, "").strip()),
            "exists": path.exists() if path is not None else None,
        }
        for what, where, env, path in rows
    ]
    found.append(
        {
            "what": "face models",
            "where": os.environ.get(MODEL_DIR_ENV) or "see `healthcode models list`",
            "env": MODEL_DIR_ENV,
            "set_by_env": bool(os.environ.get(MODEL_DIR_ENV, "").strip()),
            "exists": None,
        }
    )
    return found


def paths_command(as_json: JsonOption = False) -> None:
    """Where the database, secrets, keys, trust list and caches live."""
    rows = _state()
    if as_json:
        print_json({"paths": rows})
        return
    # Paths wrap rather than lose characters: they are what a person copies next.
    table = make_table(
        ("what", "where", "moved by", "exists"),
        (
            (
                str(row["what"]),
                str(row["where"]),
                f"{row['env']}{' (set)' if row['set_by_env'] else ''}".replace(" ", "\n"),
                {True: "yes", False: "not yet", None: ""}[row["exists"]],  # type: ignore[index]
            )
            for row in rows
        ),
        whole=("moved by",),
    )
    Console().print(table)


reflow_help(paths_command)
