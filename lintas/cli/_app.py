"""The ``lintas`` Typer application: global options, error handling, sub-command groups."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from lintas.exceptions import LintasError
from lintas.settings import Settings, load_settings

app = typer.Typer(
    name="lintas",
    help="Lintas: the event integration platform for OPD applications of a Pemda.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console()
# soft_wrap: an error paragraph stays whole when stderr is not a terminal (logs, CI).
err_console = Console(stderr=True, soft_wrap=True)


class CliState:
    """What the global options decided, shared with every command through the context."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        self._overrides = overrides
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(**self._overrides)
        return self._settings


@app.callback()
def _global(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Data directory of the local stack (default: ~/.local/share/lintas, "
            "or LINTAS_DATA_DIR).",
        ),
    ] = None,
) -> None:
    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    ctx.obj = CliState(overrides)


def settings_of(ctx: typer.Context) -> Settings:
    state = ctx.find_root().obj
    assert isinstance(state, CliState)
    return state.settings


def fail(error: LintasError) -> None:
    """Print an expected error as one paragraph and exit non-zero (no traceback)."""
    # Messages quote user input and rules ("[a-z]..."): print them as text, not markup.
    err_console.print(f"[bold red]error:[/] {escape(error.message)}", highlight=False)
    if error.hint:
        err_console.print(escape(error.hint), highlight=False)


def main() -> None:
    """Entry point of the ``lintas`` script."""
    try:
        app()
    except LintasError as exc:
        fail(exc)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
