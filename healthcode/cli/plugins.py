"""``healthcode plugins``: what is installed and which hooks each plugin implements."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from healthcode.cli.errors import fail
from healthcode.core.errors import HealthcodeError
from healthcode.core.plugins import list_plugins

app = typer.Typer(help="Installed plugins.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@app.command("list")
def list_command(as_json: JsonOption = False) -> None:
    """List plugins with their version and the hooks they implement."""
    try:
        infos = list_plugins()
    except HealthcodeError as exc:
        fail(exc, as_json=as_json)
    if as_json:
        payload = [
            {"name": i.name, "version": i.version, "module": i.module, "hooks": list(i.hooks)}
            for i in infos
        ]
        print(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    table = Table("plugin", "version", "hooks")
    for info in infos:
        table.add_row(info.name, info.version, "\n".join(info.hooks) or "-")
    Console().print(table)
