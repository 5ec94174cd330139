"""What a run records about itself: the scores file's metadata and run.json.

Ids, the dataset fingerprint, library versions, counts, timings and the summary of the
flags; `fercleaner.pipeline` gathers the numbers, this module lays them out.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from fercleaner.scoring.columns import ScoreColumns

#: The scores columns `summarize_scores` reads.
_SUMMARY_COLUMNS = ("given_label", "proposed_label", "is_label_issue", "issue_type")


def new_run_id() -> str:
    """A run id: local time to the second and 6 random hex digits (`20250101T120000-a1b2c3`)."""
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"


def get_dataset_fingerprint(samples: pd.DataFrame) -> str:
    """Hash of the sample ids and given labels: equal fingerprints, same labelled dataset."""
    digest = hashlib.sha256()
    for sid, label in zip(
        samples["sample_id"].astype(str), samples["given_label"].astype(str), strict=True
    ):
        digest.update(f"{sid}\t{label}\n".encode())
    return digest.hexdigest()[:16]


def build_scores_metadata(
    *,
    classes: Sequence[str],
    methods: Sequence[str],
    sources: Sequence[str],
    recipe: Mapping[str, Any],
    dataset_root: str,
    layout: str,
    samples: pd.DataFrame,
) -> dict[str, Any]:
    """The scores file's `fercleaner` metadata (docs/architecture.md, "scores.parquet").

    Args:
        classes: class names in the order of the probability columns.
        methods: the methods trained, the primary (the source of the scores) first.
        sources: the scoring sources combined (the methods, and `dynamics` when used).
        recipe: the resolved recipe as a dict.
        dataset_root: the dataset folder; every image path lies under it.
        layout: the dataset layout name.
        samples: the scored samples (for the fingerprint).
    """
    return {
        "classes": list(classes),
        "method": methods[0],
        "methods": list(methods),
        "sources": list(sources),
        "recipe": dict(recipe),
        "run_id": new_run_id(),
        "dataset_root": dataset_root,
        "dataset_fingerprint": get_dataset_fingerprint(samples),
        "layout": layout,
    }


def build_run_info(
    metadata: Mapping[str, Any],
    *,
    scores: pd.DataFrame | ScoreColumns,
    results: Sequence[Any],
    counts: Mapping[str, int],
    channels: int,
    world_size: int,
    timings: Mapping[str, float],
    consensus: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The content of run.json.

    Args:
        metadata: `build_scores_metadata` output.
        scores: the scores as written (a frame, or a run's `ScoreColumns`).
        results: one `fercleaner.training.trainer.TrainResult` per method, primary first.
        counts: `rows_listed`, `ingested`, `problems`, `quarantined_decode`, `trained_on`
            (the flag counts, the scored samples and the relabel events are added here).
        channels: image channels trained on.
        world_size: number of DDP processes.
        timings: seconds per stage.
        consensus: `fercleaner.scoring.crowd.CrowdScores.summary` when the dataset had
            votes: run.json's `consensus` entry (absent without votes).
    """
    primary = results[0]
    summary = summarize_scores(scores, metadata["classes"])
    return {
        **_identity(metadata, timings),
        "seed": metadata["recipe"]["train"]["seed"],
        "channels": channels,
        "device": primary.device,
        "precision": primary.precision,
        "world_size": world_size,
        "training": [
            {
                "method": r.method,
                "seconds": round(r.seconds, 3),
                "images_trained": r.images_trained,
                "images_per_s": round(r.images_trained / max(r.seconds, 1e-9), 1),
            }
            for r in results
        ],
        "counts": {
            **{k: int(counts[k]) for k in ("rows_listed", "ingested", "problems")},
            "quarantined_decode": int(counts["quarantined_decode"]),
            "scored": int(len(scores)),
            "trained_on": int(counts["trained_on"]),
            "flagged": summary["flagged"],
            "issue_types": summary["issue_types"],
            "relabel_events": int(sum(len(r.events) for r in results)),
        },
        "summary": summary,
        **_consensus_entry(consensus),
    }


def build_predictions_run_info(
    metadata: Mapping[str, Any],
    *,
    scores: pd.DataFrame | ScoreColumns,
    counts: Mapping[str, int],
    timings: Mapping[str, float],
    predictions_file: str,
    rows_ignored: int,
    consensus: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """run.json of a run scored from a user's predictions file (no device, no training).

    Args:
        counts: `rows_listed`, `ingested`, `problems`.
        rows_ignored: rows of the file for ids the dataset does not list.
        consensus: as for `build_run_info`.
    """
    summary = summarize_scores(scores, metadata["classes"])
    return {
        **_identity(metadata, timings),
        "predictions": {"file": predictions_file, "rows_ignored": int(rows_ignored)},
        "counts": {
            **{k: int(counts[k]) for k in ("rows_listed", "ingested", "problems")},
            "scored": int(len(scores)),
            "flagged": summary["flagged"],
            "issue_types": summary["issue_types"],
        },
        "summary": summary,
        **_consensus_entry(consensus),
    }


def _consensus_entry(consensus: Mapping[str, Any] | None) -> dict[str, Any]:
    """run.json's `consensus` entry (votes, fitted accuracy and temperature, flags); {} without."""
    return {} if consensus is None else {"consensus": dict(consensus)}


def _identity(metadata: Mapping[str, Any], timings: Mapping[str, float]) -> dict[str, Any]:
    """The run.json fields every run has: who, what, from which data, versions, timings."""
    keys = ("run_id", "method", "methods", "sources", "layout", "dataset_root")
    return {
        **{k: metadata[k] for k in (*keys, "dataset_fingerprint")},
        "classes": list(metadata["classes"]),
        "recipe": metadata["recipe"],
        "versions": get_versions(),
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }


def summarize_scores(
    scores: pd.DataFrame | ScoreColumns, classes: Sequence[str], *, top: int = 5
) -> dict[str, Any]:
    """Per-class counts and flags, issue-type counts and the top given->proposed confusions."""
    if isinstance(scores, ScoreColumns):  # only the four columns the summary reads
        scores = scores.frame(columns=_SUMMARY_COLUMNS)
    flagged = scores[scores["is_label_issue"]]
    per_class = []
    for name in classes:
        rows = scores["given_label"] == name
        per_class.append(
            {
                "class": name,
                "count": int(rows.sum()),
                "flagged": int((rows & scores["is_label_issue"]).sum()),
            }
        )
    moved = flagged[flagged["proposed_label"] != flagged["given_label"]]
    pairs = (
        moved.groupby(["given_label", "proposed_label"], observed=True)
        .size()
        .sort_values(ascending=False)
    )
    confusions = [
        {"given": str(g), "proposed": str(p), "count": int(c)}
        for (g, p), c in pairs.head(top).items()
    ]
    return {
        "samples": len(scores),
        "flagged": int(scores["is_label_issue"].sum()),
        "issue_types": {
            str(k): int(v) for k, v in scores["issue_type"].value_counts().sort_index().items()
        },
        "per_class": per_class,
        "top_confusions": confusions,
    }


def get_versions() -> dict[str, str]:
    """Versions of fercleaner, Python, torch and (when installed) timm, numpy, pandas, pyarrow.

    A module this process has imported reports its own `__version__` (torch's names its
    CUDA build); the others the installed distribution's, read without importing them (a
    `--predictions` run never imports torch).
    """
    import fercleaner

    versions = {"fercleaner": fercleaner.__version__, "python": platform.python_version()}
    for module in ("torch", "timm", "numpy", "pandas", "pyarrow"):
        version = _installed_version(module)
        if version is not None:
            versions[module] = version
    return versions


def _installed_version(module: str) -> str | None:
    loaded = sys.modules.get(module)
    if loaded is not None and hasattr(loaded, "__version__"):
        return str(loaded.__version__)
    try:
        return importlib.metadata.version(module)
    except importlib.metadata.PackageNotFoundError:
        return None
