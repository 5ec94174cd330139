"""The scores of N samples as one array per column, before any frame exists.

`assemble_columns` and the crowd step compute whole columns (thresholds, the confident
joint, rank combination and the consensus are global over N), but a pandas frame of them
holds a numpy row object per list cell: about 600 bytes a sample at its peak, 1.2 GB
for a million (docs/benchmarks.md, "Scale"). `ScoreColumns` keeps the numbers only:
1-D arrays for scalar and text columns, (N, k) float32 arrays for list columns. A run
writes its scores file from it a row group at a time (`write_scores`), and
`frame(rows)` builds the frame of any rows, the same frame `assemble_scores` returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fercleaner.arrays import to_matrix


@dataclass(frozen=True)
class ScoreColumns:
    """Every column of a scores frame, in frame order, rows in the sample table's order."""

    columns: dict[str, np.ndarray | pd.api.extensions.ExtensionArray]
    """Name -> (N,) values or (N, k) float32 rows of a list column."""
    null_rows: dict[str, np.ndarray] = field(default_factory=dict)
    """List column -> (N,) bool, True where the cell is null (`votes` of an unvoted image)."""

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def frame(
        self, rows: np.ndarray | None = None, *, columns: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """The frame of `rows` (all, in order, when None), of `columns` (all when None)."""
        out = {}
        for name in columns or self.columns:
            values = self.columns[name]
            part = values if rows is None else values[rows]
            if getattr(part, "ndim", 1) == 2:
                cells: list = list(np.asarray(part, dtype=np.float32))
                nulls = self.null_rows.get(name)
                if nulls is not None:
                    null = nulls if rows is None else nulls[rows]
                    cells = [None if empty else c for c, empty in zip(cells, null, strict=True)]
                out[name] = cells
            else:
                out[name] = part
        return pd.DataFrame(out)

    def most_suspect_first(self) -> np.ndarray:
        """(N,) row order of a run's scores file (`scores_file.SCORES_ORDER`, stable)."""
        from fercleaner.scoring.scores_file import SCORES_ORDER

        keys = pd.DataFrame({name: self.columns[name] for name in SCORES_ORDER})
        return keys.sort_values(list(SCORES_ORDER), kind="stable").index.to_numpy()

    def replace(self, **columns: np.ndarray) -> ScoreColumns:
        """A copy with `columns` replaced (kept in place) or added (before `path`, last)."""
        updated = {k: v for k, v in self.columns.items() if k != "path"}
        updated.update(columns)
        if "path" in self.columns and "path" not in columns:
            updated["path"] = self.columns["path"]
        return ScoreColumns(updated, dict(self.null_rows))

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> ScoreColumns:
        """The columns of a scores frame (list columns stacked; null cells recorded)."""
        columns, null_rows = {}, {}
        for name in frame.columns:
            series = frame[name]
            cells = series.to_numpy(dtype=object) if series.dtype == object else None
            listed = cells is not None and any(isinstance(c, np.ndarray | list) for c in cells)
            if not listed:
                extension = isinstance(series.dtype, pd.api.extensions.ExtensionDtype)
                columns[name] = series.array if extension else series.to_numpy()
                continue
            null = np.array([c is None for c in cells], dtype=bool)
            width = len(next(c for c in cells if c is not None))
            rows = [np.zeros(width, np.float32) if c is None else c for c in cells]
            columns[name] = to_matrix(rows, dtype=np.float32, width=width)
            if null.any():
                null_rows[name] = null
        return cls(columns, null_rows)
