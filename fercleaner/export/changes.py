"""`changes.csv`: a row per sample whose final label is not its given one, safe in a spreadsheet."""

from __future__ import annotations

import csv
from typing import Any

import pandas as pd

#: First characters that make a spreadsheet read a CSV cell as a formula (OWASP CSV
#: injection); `changes.csv` prefixes such cells with `'` so they open as text.
FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")

CHANGES_COLUMNS: tuple[str, ...] = (
    "sample_id",
    "split",
    "given_label",
    "label",
    "action",
    "decided_by",
    "reviewer",
    "decided_at",
    "label_quality",
    "note",
)


def format_changes_csv(manifest: pd.DataFrame, *, header: bool = True) -> str:
    """One row per sample whose final label differs from its given label.

    Every cell is text a reviewer typed or a dataset named, so each is passed through
    `neutralise_formula` before it reaches a spreadsheet. `header=False` formats the
    rows only, to append one batch of the manifest after another.
    """
    changed = manifest[manifest["label_name"] != manifest["given_label"]]
    table = pd.DataFrame(
        {
            "sample_id": changed["sample_id"],
            "split": changed["split"],
            "given_label": changed["given_label"],
            "label": changed["label_name"],
            "action": changed["action"],
            "decided_by": changed["decided_by"],
            "reviewer": changed["reviewer"],
            "decided_at": [
                "" if pd.isna(t) else t.isoformat() for t in changed["decided_at"].tolist()
            ],
            "label_quality": [f"{q:.6g}" for q in changed["label_quality"].tolist()],
            "note": changed["note"].fillna(""),
        },
        columns=list(CHANGES_COLUMNS),
    )
    table = table.map(neutralise_formula)
    # quote every field: minimal quoting leaves a lone CR in a note unquoted (the csv
    # module only quotes the line terminator's characters), which splits the row
    return table.to_csv(
        index=False, header=header, na_rep="", lineterminator="\n", quoting=csv.QUOTE_ALL
    )


def changes_csv_header() -> str:
    """The header line of `changes.csv` (for a file written batch by batch), quoted as
    `format_changes_csv` quotes every field."""
    return ",".join(f'"{name}"' for name in CHANGES_COLUMNS) + "\n"


def neutralise_formula(cell: Any) -> Any:
    """A CSV cell that a spreadsheet will show as text, never evaluate as a formula.

    Text starting with one of `FORMULA_PREFIXES` gets a leading `'` (OWASP's advice for
    CSV injection: `=HYPERLINK(...)` in a note must not become a live link); anything
    else, and every non-text value, is returned unchanged.
    """
    if isinstance(cell, str) and cell.startswith(FORMULA_PREFIXES):
        return "'" + cell
    return cell
