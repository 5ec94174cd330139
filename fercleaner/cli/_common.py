"""Shared CLI pieces: consoles, one error-to-exit-code mapping for all commands, progress, tables.

Every command runs inside `cli_errors` (applied to all registered commands in
`fercleaner/cli/__init__.py`), so no command ends in a traceback: a library
`FercleanerError` or an `OSError` is one red line and exit 2, anything else is a bug,
reported as one line and exit 3 with the traceback in a log file
(`FERCLEANER_DEBUG=1` prints it). Exit codes: `fercleaner.errors.ExitCode`, docs/cli.md.

Text that a user controls (paths, file names, labels, messages quoting them) never goes
through rich markup: it is escaped with `rich.markup.escape` or passed as `Text`.
When a stream is not a terminal (a log file, a pipe), tables keep their cells whole
instead of wrapping at 80 columns, and progress is plain timestamped lines.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from fercleaner.errors import ExitCode, FercleanerError

console = Console()
err_console = Console(stderr=True)

#: Set to 1 to print the traceback of every error (including one-line user errors).
DEBUG_ENV = "FERCLEANER_DEBUG"
#: Seconds between plain progress lines when not on a terminal (default 30).
PROGRESS_INTERVAL_ENV = "FERCLEANER_PROGRESS_INTERVAL"
DEFAULT_PROGRESS_INTERVAL_S = 30.0
#: Folder for crash logs (default: `<system temp>/fercleaner-logs`).
LOG_DIR_ENV = "FERCLEANER_LOG_DIR"

#: `--follow-links` and `--allow-outside-root`: `inspect` and `score` read the same rows.
FollowLinksOption = Annotated[
    bool,
    typer.Option(
        "--follow-links",
        help="Read images and folders through symbolic links that lead outside the dataset"
        " folder (default: report them as path_escapes_root and skip them).",
    ),
]
AllowOutsideRootOption = Annotated[
    bool,
    typer.Option(
        "--allow-outside-root",
        help="Accept manifest paths that leave the manifest's folder (the dataset root).",
    ),
]

__all__ = [
    "AllowOutsideRootOption",
    "FollowLinksOption",
    "ExitCode",
    "LineProgress",
    "cli_command",
    "cli_errors",
    "console",
    "err_console",
    "print_error",
    "print_table",
    "progress_bar",
]


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Map every exception to one line on stderr and its `ExitCode`; never a traceback.

    `FercleanerError` -> its `exit_code` (2); `OSError` (a path that cannot be read or
    written) -> 2; Ctrl+C -> 130; a closed output pipe -> 141, quietly; anything else -> 3,
    the traceback saved to a log file.
    typer's own exits and usage errors pass through (typer exits 2 on usage errors).
    """
    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException):
        raise
    except FercleanerError as exc:
        _debug_traceback()
        print_error(str(exc))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("interrupted", style="yellow", highlight=False)
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    except BrokenPipeError:
        _silence_stdout()
        raise typer.Exit(ExitCode.BROKEN_PIPE) from None
    except OSError as exc:
        _debug_traceback()
        print_error(describe_os_error(exc))
        raise typer.Exit(ExitCode.USAGE) from None
    except Exception as exc:
        log = None if _debug_traceback() else _write_crash_log(exc)
        where = (
            f"the traceback is in {log} (set {DEBUG_ENV}=1 to print it)"
            if log
            else "the traceback is printed above"
        )
        print_error(
            f"internal error: {type(exc).__name__}: {_first_line(exc)}. This is a bug in"
            f" fercleaner; {where}. Please report it with the traceback and the command line."
        )
        raise typer.Exit(ExitCode.INTERNAL) from None


def cli_command(func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` wrapped in `cli_errors` (typer still reads its signature through `__wrapped__`)."""
    if getattr(func, "__fercleaner_cli_errors__", False):
        return func
    wrapped = cli_errors()(func)
    wrapped.__fercleaner_cli_errors__ = True  # type: ignore[attr-defined]
    return wrapped


def print_error(message: str) -> None:
    """One red `error:` line on stderr; `message` is shown as text, never as markup."""
    err_console.print(
        Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True
    )


def describe_os_error(exc: OSError) -> str:
    """One actionable sentence for an `OSError`: which path, what went wrong, what to do."""
    path = exc.filename if exc.filename is not None else ""
    if exc.filename2 is not None:
        path = f"{path} -> {exc.filename2}"
    reason = exc.strerror or str(exc)
    advice = {
        errno.EACCES: "fix its permissions or choose another path",
        errno.EPERM: "fix its permissions or choose another path",
        errno.EROFS: "the file system is read-only; choose another path",
        errno.ENOSPC: "free some space or choose another output folder",
        errno.ENOENT: "check the path",
        errno.ENOTDIR: "a part of the path is a file, not a folder; check the path",
        errno.EISDIR: "expected a file, got a folder; check the path",
        errno.EEXIST: "it is in the way; move it or choose another path",
    }.get(exc.errno, "check the path and its permissions")
    return f"{path}: {reason}; {advice}" if path else f"{reason}; {advice}"


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the exit-time flush to a closed pipe raises nothing."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


def _debug_traceback() -> bool:
    """With FERCLEANER_DEBUG=1, print the current exception's traceback to stderr (True)."""
    if os.environ.get(DEBUG_ENV, "").strip() not in ("", "0"):
        traceback.print_exc(file=sys.stderr)
        return True
    return False


def _write_crash_log(exc: BaseException) -> Path | None:
    """Write the command line and traceback to a new log file; None when that fails too."""
    folder = Path(os.environ.get(LOG_DIR_ENV) or Path(tempfile.gettempdir()) / "fercleaner-logs")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = f"command: {' '.join(sys.argv)}\npython: {sys.version.split()[0]}\n\n" + "".join(
        traceback.format_exception(type(exc), exc, exc.__traceback__)
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"crash-{stamp}-{os.getpid()}.log"
        # an argv or path that is not UTF-8 (surrogate escapes) is written escaped, not lost
        path.write_text(text, encoding="utf-8", errors="backslashreplace")
    except OSError:
        sys.stderr.write(text)  # nowhere to keep it: show it rather than lose it
        return None
    return path


# ---------------------------------------------------------------- output


def print_table(table: Any, *, to: Console | None = None) -> None:
    """Print a rich `Table`; off a terminal at its natural width, so no cell wraps mid-name.

    On a terminal the table fits the window (cells fold). In a log or pipe, a file name
    split over two lines could not be found with grep, so the table is as wide as its
    longest cells need.
    """
    from rich.measure import Measurement

    target = to or console
    if target.is_terminal:
        target.print(table)
        return
    natural = Measurement.get(target, target.options.update_width(1_000_000), table).maximum
    wide = Console(file=target.file, width=max(natural, target.width), color_system=None)
    wide.print(table)


def progress_interval() -> float:
    """Seconds between plain progress lines ($FERCLEANER_PROGRESS_INTERVAL, default 30)."""
    raw = os.environ.get(PROGRESS_INTERVAL_ENV, "").strip()
    try:
        value = float(raw) if raw else DEFAULT_PROGRESS_INTERVAL_S
    except ValueError:
        return DEFAULT_PROGRESS_INTERVAL_S
    return max(0.0, value)


class LineProgress:
    """Plain progress lines for logs: a task's first and last report, and one per interval between.

    The interval is shared by all tasks, so a log gets a line at a steady pace however
    fast the reports come. Lines are timestamped and printed as text (no markup).
    """

    def __init__(
        self,
        to: Console,
        *,
        interval_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.to = to
        self.interval_s = progress_interval() if interval_s is None else interval_s
        self.clock = clock
        self._seen: set[Any] = set()
        self._last: float | None = None

    def report(self, key: Any, line: str, *, final: bool = False) -> None:
        """Print `line` if `key` is new, `final` is set, or the interval has passed."""
        now = self.clock()
        due = self._last is None or now - self._last >= self.interval_s
        if key in self._seen and not final and not due:
            return
        self._seen.add(key)
        self._last = now
        self.to.print(
            f"{time.strftime('%H:%M:%S')} {line}", markup=False, highlight=False, soft_wrap=True
        )


def clock_text(seconds: float) -> str:
    """Seconds as m:ss or h:mm:ss."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@contextlib.contextmanager
def progress_bar(label: str, *, active: bool = True) -> Iterator[Callable[[int, int], None] | None]:
    """Progress on stderr fed by a library `progress(done, total)`; None when inactive.

    A transient rich bar on a terminal; plain `label done/total (pct), rate, eta` lines
    at a steady interval otherwise. (0, 0) means "started, count not known yet".
    """
    if not active:
        yield None
        return
    with progress_bars(label) as (update,):
        yield update


@contextlib.contextmanager
def progress_bars(*labels: str) -> Iterator[list[Callable[[int, int], None]]]:
    """One `progress(done, total)` callback per label (as `progress_bar`), all in one display.

    For commands with phases (export: rows, then the image folder): rich shows one live
    display at a time, so nested `progress_bar`s fail on older rich. A phase's bar or
    lines appear on its first call, its rate counts from then.
    """
    if not err_console.is_terminal:
        lines = LineProgress(err_console)
        yield [_progress_lines(lines, label) for label in labels]
        return
    from rich.progress import Progress

    with Progress(console=err_console, transient=True) as bar:
        yield [_progress_task(bar, label) for label in labels]


def _progress_lines(lines: LineProgress, label: str) -> Callable[[int, int], None]:
    first: tuple[float, int] | None = None  # (time, done) of the first count: rates from it

    def line(done: int, total: int) -> None:
        nonlocal first
        if total == 0 and done == 0:  # the count is not known yet
            lines.report((label, "start"), f"{label}: listing the samples")
            return
        now = time.monotonic()
        first = (now, done) if first is None else first
        elapsed, counted = now - first[0], done - first[1]
        rate = counted / elapsed if elapsed > 0 and counted > 0 else 0.0
        share = f" ({done / total:.0%})" if total else ""
        speed = f", {rate:,.0f}/s" if rate > 0 else ""
        eta = f", eta {clock_text((total - done) / rate)}" if rate > 0 and total else ""
        lines.report(label, f"{label} {done:,}/{total:,}{share}{speed}{eta}", final=done >= total)

    return line


def _progress_task(bar: Any, label: str) -> Callable[[int, int], None]:
    task = None

    def update(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            task = bar.add_task(label, total=total or None)  # None: a pulsing bar
        bar.update(task, completed=done, total=total or None)

    return update
