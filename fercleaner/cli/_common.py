"""Shared CLI pieces: the console, one mapping from library errors to messages, and option types."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

import typer
from rich.console import Console

from fercleaner.errors import FercleanerError

console = Console()
err_console = Console(stderr=True)


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Turn a library `FercleanerError` into one red line and its exit code (no traceback)."""
    try:
        yield
    except FercleanerError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)


@contextlib.contextmanager
def progress_bar(label: str, *, active: bool = True) -> Iterator[Callable[[int, int], None] | None]:
    """A transient rich bar on stderr fed by a library `progress(done, total)`; None when inactive."""
    if not active:
        yield None
        return
    from rich.progress import Progress

    with Progress(console=err_console, transient=True) as bar:
        task = None

        def update(done: int, total: int) -> None:
            nonlocal task
            if task is None:
                task = bar.add_task(label, total=total)
            bar.update(task, completed=done, total=total)

        yield update
