"""The `Dataset` a reader returns: the sample table, the problems table and where they came from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fercleaner.datasets.problems import count_label_row_problems


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
