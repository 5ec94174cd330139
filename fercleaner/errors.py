"""Exceptions the library raises; the CLI maps each to a one-line message and exit code.

Every message says what was wrong (with the value or path), what was expected, and
what to do next.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Exit status of every `fercleaner` command (docs/cli.md)."""

    OK = 0
    """Done; for `inspect`: the dataset is clean."""
    PROBLEMS = 1
    """Done, and problems were found and listed (`inspect`)."""
    USAGE = 2
    """Bad command line or unusable input/output: a path, file, recipe or option to fix."""
    INTERNAL = 3
    """A bug: an unexpected exception; one line on stderr, the traceback in a log file."""
    INTERRUPTED = 130
    """Stopped by Ctrl+C (SIGINT)."""
    BROKEN_PIPE = 141
    """The reader of the output went away (`| head`); ends quietly, like a shell's SIGPIPE."""


class FercleanerError(Exception):
    """Base class: an error the user can act on (bad input, bad config), not a bug."""

    exit_code = ExitCode.USAGE


class DatasetError(FercleanerError):
    """A dataset folder or manifest cannot be read as any (or the requested) layout."""


class UnknownLabelError(FercleanerError):
    """A label spelling or code maps to no canonical class."""


class ConfigError(FercleanerError):
    """A recipe or override is invalid; the message lists every problem at once."""


class RegistryError(FercleanerError):
    """An unknown registry name (method, layout, backbone); the message lists valid ones."""


class ScoresFormatError(FercleanerError):
    """A scores file is malformed or foreign; the message names the missing columns."""


class CheckpointError(FercleanerError):
    """A checkpoint is missing, corrupt or belongs to another run."""


class TrainingDivergedError(FercleanerError):
    """A training loss became NaN or infinite: the recipe's step size is too large."""


class OutputError(FercleanerError):
    """An output folder (`--out`, `--imagefolder`) cannot be created or written."""
