"""The `fercleaner` command line: a thin typer layer over the library, one module per command.

Each command module defines `register(app)`; heavy imports (torch, timm, streamlit)
happen inside the command functions so `fercleaner --help` is instant. Every registered
command is wrapped in `_common.cli_errors`: one-line errors and documented exit codes.
"""

from __future__ import annotations

import importlib

import typer

from fercleaner.cli._common import cli_command

app = typer.Typer(
    name="fercleaner",
    help="Find and fix wrong or ambiguous labels in facial-expression datasets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Find and fix wrong or ambiguous labels in facial-expression datasets."""
    # a callback keeps `fercleaner CMD` a command group even while only one command exists


#: Command modules in help order; each exposes `register(app)`.
_COMMAND_MODULES = (
    "fercleaner.cli.inspect_cmd",
    "fercleaner.cli.synth_cmd",
    "fercleaner.cli.score_cmd",
    "fercleaner.cli.review_cmd",
    "fercleaner.cli.export_cmd",
    "fercleaner.cli.bench_cmd",
)

for _module_name in _COMMAND_MODULES:
    try:
        _module = importlib.import_module(_module_name)
    except ModuleNotFoundError as _exc:  # a command not written yet is simply absent
        if _exc.name != _module_name:
            raise
    else:
        _module.register(app)

# Every command, whichever module registered it, maps errors to one line and an exit code
# (fercleaner.errors.ExitCode; docs/cli.md) instead of a traceback.
for _command in app.registered_commands:
    _command.callback = cli_command(_command.callback)


def main() -> None:
    """Console-script entry point."""
    app()
