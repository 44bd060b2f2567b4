"""``healthcode plugins``: what is installed and which hooks each plugin
implements (``list``), and a new plugin distribution from the kit's templates
(``new``)."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

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


class PluginKind(enum.StrEnum):
    DOCUMENT = "document"
    STATUS_SOURCE = "status-source"
    FACE = "face"
    OCR = "ocr"


@app.command("new")
def new_command(
    name: Annotated[
        str, typer.Argument(help="Distribution name, e.g. healthcode-xx-card (module: its _ form).")
    ],
    kind: Annotated[
        PluginKind, typer.Option("--kind", help="Which hooks the plugin implements.")
    ] = PluginKind.DOCUMENT,
    directory: Annotated[
        Path, typer.Option("--dir", help="Where to create the distribution's folder.")
    ] = Path("."),
    as_json: JsonOption = False,
) -> None:
    """Write a new plugin distribution: pyproject.toml with the entry point, the
    plugin module with every hook of its kind, a README and a test module that
    runs the conformance suite. Then: pip install -e DIR/NAME; pytest there."""
    from healthcode.testing.plugin_template import module_name, render_plugin

    written = or_fail(lambda: render_plugin(name, kind.value, directory), as_json=as_json)
    root = directory / name
    if as_json:
        print_json(
            {
                "name": name,
                "module": module_name(name),
                "kind": kind.value,
                "directory": str(root),
                "files": [str(path.relative_to(root)) for path in written],
            }
        )
        return
    console = Console()
    console.print(f"Wrote {len(written)} files under {root}:")
    for path in written:
        console.print(f"  {path.relative_to(root)}")
    console.print(
        f"Next: pip install -e {root}  (then `healthcode plugins list` shows "
        f"{module_name(name)}), and run pytest in {root}."
    )
