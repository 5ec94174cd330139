"""Read a Parquet file a row group at a time, with bounded memory.

pyarrow's `ParquetFile.iter_batches` kept about 100 MB more resident per million rows
read (measured on 1M-row scores files, docs/benchmarks.md "Scale"); reading each row
group with `read_row_group` and dropping it does not. Files this project writes keep
their row groups small (`fercleaner.scoring.SCORES_ROW_GROUP_ROWS`, the manifests').
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq


def iter_row_groups(
    path: str | os.PathLike[str], columns: Sequence[str] | None = None
) -> Iterator[pa.Table]:
    """Each row group of `path` (only `columns` when given), in file order."""
    reader = pq.ParquetFile(path)
    for group in range(reader.metadata.num_row_groups):
        yield reader.read_row_group(group, columns=columns)
