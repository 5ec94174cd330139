"""The export's error: a cleaned export that cannot be written as asked."""

from __future__ import annotations

from fercleaner.errors import FercleanerError


class ExportError(FercleanerError):
    """An export cannot be written as asked (bad option, bad decision, busy folder)."""
