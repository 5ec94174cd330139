"""The `Dataset` a reader returns: the sample table, the problems table and where they came from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fercleaner.datasets.problems import (
    NON_ROW_KINDS,
    count_label_row_problems,
    escape_controls,
)
from fercleaner.errors import DatasetError


@dataclass(frozen=True)
class Dataset:
    """A dataset read into tables (see docs/architecture.md, "Sample table").

    Attributes:
        samples: one row per ingested image (sample_id, path, split, given_label, ...).
        problems: one row per excluded row or stray file (file, row, sample_id, kind, reason, fix).
        layout: the layout name that read it.
        root: the folder sample ids are relative to.
        classes: canonical classes of this dataset, canonical order; `votes` and
            `label_distribution` are over these.
        detection: why the layout matched, plus reader notes.
        rows_listed: label rows found; equals len(samples) + label-row problems.
    """

    samples: pd.DataFrame
    problems: pd.DataFrame
    layout: str
    root: Path
    classes: list[str]
    detection: str
    rows_listed: int

    @property
    def label_row_problems(self) -> int:
        """Problems that stand for a label row (all kinds but `unlabeled_image`)."""
        return count_label_row_problems(self.problems)

    @property
    def reconciles(self) -> bool:
        """rows_listed == rows ingested + label rows in problems."""
        return self.rows_listed == len(self.samples) + self.label_row_problems

    def require_samples(self) -> None:
        """Raise when no row was ingested, naming the first problem (file, row, path, fix).

        A caller that trains on the samples would otherwise fail later on a count that
        hides the cause ("no samples in the training splits").

        Raises:
            DatasetError: `samples` is empty.
        """
        if len(self.samples):
            return
        if not self.rows_listed:
            raise DatasetError(
                f"{self.root} holds no label rows ({self.detection}); add rows to its label file"
            )
        rows = self.problems.loc[~self.problems["kind"].isin(sorted(NON_ROW_KINDS))]
        counts = ", ".join(f"{kind} {n:,}" for kind, n in rows["kind"].value_counts().items())
        first = rows.iloc[0]
        where = first["file"] if pd.isna(first["row"]) else f"{first['file']} row {first['row']}"
        sample_id = "" if pd.isna(first["sample_id"]) else escape_controls(first["sample_id"])
        path = f" ({sample_id})" if sample_id not in first["reason"] else ""
        raise DatasetError(
            f"none of the {self.rows_listed:,} label rows of {self.root} can be used ({counts})."
            f" The first, {where}{path}: {first['reason']}; fix: {first['fix']}."
            f" `fercleaner inspect {self.root}` lists every problem"
        )
