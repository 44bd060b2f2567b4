"""``healthcode plugins``: what is installed and which hooks each plugin implements."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from healthcode.cli.options import JsonOption, or_fail, print_json
from healthcode.core.plugins import list_plugins

app = typer.Typer(help="Installed plugins.", no_args_is_help=True)


@app.command("list")
def list_command(as_json: JsonOption = False) -> None:
    """List plugins with their version and the hooks they implement."""
    infos = or_fail(list_plugins, as_json=as_json)
    if as_json:
        print_json(
            [
                {"name": i.name, "version": i.version, "module": i.module, "hooks": list(i.hooks)}
                for i in infos
            ]
        )
        return
    table = Table("plugin", "version", "hooks")
    for info in infos:
        table.add_row(info.name, info.version, "\n".join(info.hooks) or "-")
    Console().print(table)
