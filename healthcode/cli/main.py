"""The ``healthcode`` admin CLI: one Typer sub-app per noun.

Plugins add their own commands through ``healthcode_register_commands``
(the face plugin brings ``faces`` and ``models``), called once the CLI's own
sub-apps are in place. Commands for documents must start fast: nothing here
imports the image or face stacks; those sub-apps import them inside their
commands.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

import healthcode
from healthcode.cli import (
    admin,
    demo,
    doctor,
    documents,
    enroll,
    holder,
    keys,
    passes,
    paths,
    plugins,
    reviews,
    serve,
    tokens,
    trust,
    verify,
)
from healthcode.cli.options import CONTEXT_SETTINGS, reflow_help
from healthcode.core.plugins import get_plugin_manager

app = typer.Typer(
    name="healthcode",
    help="healthcode: identity documents, faces and health passes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings=CONTEXT_SETTINGS,
)


def _show_version(value: bool) -> None:
    if value:
        print(f"healthcode {healthcode.__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """healthcode: identity documents, faces and health passes."""


app.command("init")(admin.init_command)
app.command("purge")(admin.purge_command)
app.command("serve")(serve.serve_command)
app.add_typer(documents.app, name="documents")
app.add_typer(plugins.app, name="plugins")
app.add_typer(admin.status_app, name="status")
app.add_typer(enroll.enroll_app, name="enroll")
app.add_typer(enroll.dependants_app, name="dependants")
app.add_typer(enroll.assist_app, name="assist")
app.add_typer(tokens.app, name="tokens")
app.add_typer(holder.app, name="holder")
app.add_typer(keys.app, name="keys")
app.add_typer(trust.app, name="trust")
app.add_typer(passes.app, name="passes")
app.command("verify")(verify.verify_command)
app.command("paths")(paths.paths_command)
app.command("doctor")(doctor.doctor_command)
app.command("demo")(demo.demo_command)
app.add_typer(reviews.app, name="reviews")
get_plugin_manager().hook.healthcode_register_commands(app=app)
reflow_help(app)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        print("interrupted / 已中断", file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":  # pragma: no cover
    main()
