"""`summarize_dataset`: the facts `fercleaner inspect` shows, as one JSON-serialisable dict."""

from __future__ import annotations

from typing import Any

import pandas as pd

from fercleaner.datasets.dataset import Dataset
from fercleaner.datasets.problems import PROBLEM_KINDS

SPLIT_ORDER = ("train", "val", "test")


def summarize_dataset(dataset: Dataset) -> dict[str, Any]:
    """Layout, detection, per-split per-class counts, votes, ties and every problem.

    Returns:
        A dict of plain Python values (json.dumps works on it). `splits` maps each split
        to {"total": n, "classes": {class: n}} over `dataset.classes`; `problem_counts`
        maps each kind present to its count; `problems` lists every problem row.
    """
    samples = dataset.samples
    splits = sorted(
        samples["split"].unique().tolist(),
        key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else len(SPLIT_ORDER), s),
    )
    per_split = {}
    for split in splits:
        labels = samples.loc[samples["split"] == split, "given_label"]
        counts = labels.value_counts()
        per_split[split] = {
            "total": int(len(labels)),
            "classes": {c: int(counts.get(c, 0)) for c in dataset.classes},
        }
    problem_counts = dataset.problems["kind"].value_counts()
    has_votes = "votes" in samples and bool(samples["votes"].notna().any())
    return {
        "root": str(dataset.root),
        "layout": dataset.layout,
        "detection": dataset.detection,
        "classes": list(dataset.classes),
        "rows_listed": int(dataset.rows_listed),
        "samples": int(len(samples)),
        "label_row_problems": int(dataset.label_row_problems),
        "reconciles": bool(dataset.reconciles),
        "splits": per_split,
        "votes_present": has_votes,
        "label_ties": int(samples["label_tie"].sum()) if "label_tie" in samples else None,
        "extra_columns": [
            c for c in samples.columns if c not in ("sample_id", "path", "split", "given_label")
        ],
        "problem_counts": {
            kind: int(problem_counts[kind]) for kind in PROBLEM_KINDS if kind in problem_counts
        },
        "problems": [_plain(record) for record in dataset.problems.to_dict("records")],
    }


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    """Missing values -> None and numpy scalars -> Python, so json.dumps accepts the row."""
    out = {}
    for key, value in record.items():
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            out[key] = None
        elif hasattr(value, "item"):
            out[key] = value.item()
        else:
            out[key] = value
    return out
