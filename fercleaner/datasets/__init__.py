"""Dataset readers: one module per on-disk layout, auto-detection, image checks, problems.

`read_dataset(path)` returns a `Dataset` (samples + problems tables, see
docs/architecture.md). Importing this package registers every layout.
"""

from __future__ import annotations

from fercleaner.datasets import (  # noqa: F401  (registers each layout)
    affectnet,
    fer2013,
    ferplus,
    imagefolder,
    labels_csv,
    rafdb,
)
from fercleaner.datasets.dataset import Dataset
from fercleaner.datasets.images import DEFAULT_MAX_PIXELS, check_image, check_images
from fercleaner.datasets.problems import NON_ROW_KINDS, PROBLEM_KINDS
from fercleaner.datasets.reader import read_dataset
from fercleaner.datasets.registry import (
    Detection,
    detect_layout,
    explain_layouts,
    get_layout,
    list_layouts,
)
from fercleaner.datasets.report import summarize_dataset

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "NON_ROW_KINDS",
    "PROBLEM_KINDS",
    "Dataset",
    "Detection",
    "check_image",
    "check_images",
    "detect_layout",
    "explain_layouts",
    "get_layout",
    "list_layouts",
    "read_dataset",
    "summarize_dataset",
]
