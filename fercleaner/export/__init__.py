"""Cleaned manifests: one Parquet file per split with each sample's final label and why.

Human decisions (the review store) always win; model proposals are applied only as the
policy and the confidence threshold say; excluded samples stay in the manifest with
`action = exclude` and weight 0 so the training code decides, and nothing disappears
silently. `export_run` opens the run (`fercleaner.runs.read_run`), resolves the labels
(`resolve`), and writes the manifests (`manifest`), `changes.csv` (`changes`),
`summary.json` and optionally an image folder (`imagefolder`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from fercleaner import __version__
from fercleaner.atomic import write_json_atomic, write_text_atomic
from fercleaner.export.changes import (
    CHANGES_COLUMNS,
    FORMULA_PREFIXES,
    format_changes_csv,
    neutralise_formula,
)
from fercleaner.export.errors import ExportError
from fercleaner.export.imagefolder import MAX_NAME_BYTES, check_output_names, write_imagefolder
from fercleaner.export.manifest import (
    MANIFEST_COLUMNS,
    hf_features,
    write_manifest,
    write_manifests,
)
from fercleaner.export.resolve import (
    POLICIES,
    POLICY_ACTIONS,
    SPLIT_ORDER,
    build_manifest,
    read_decisions,
)
from fercleaner.runs import Run, read_run

__all__ = [
    "CHANGES_COLUMNS",
    "FORMULA_PREFIXES",
    "MANIFEST_COLUMNS",
    "MAX_NAME_BYTES",
    "POLICIES",
    "POLICY_ACTIONS",
    "SPLIT_ORDER",
    "ExportError",
    "ExportResult",
    "build_manifest",
    "check_output_names",
    "export_run",
    "format_changes_csv",
    "hf_features",
    "neutralise_formula",
    "read_decisions",
    "write_imagefolder",
    "write_manifest",
    "write_manifests",
]


@dataclass(frozen=True)
class ExportResult:
    """What `export_run` wrote.

    Attributes:
        out: the output folder.
        manifests: split name -> manifest path, for the splits present.
        changes: path of `changes.csv`.
        summary: the content of `summary.json` (also written to `out`).
        imagefolder: the image-folder export, when asked for.
    """

    out: Path
    manifests: dict[str, Path]
    changes: Path
    summary: dict[str, Any]
    imagefolder: Path | None = None


def export_run(
    run_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    policy: str = "relabel",
    min_confidence: float = 0.0,
    reviewers: Sequence[str] | None = None,
    imagefolder: str | os.PathLike[str] | None = None,
    imagefolder_mode: str = "symlink",
    progress: Callable[[int, int], None] | None = None,
) -> ExportResult:
    """Write cleaned manifests, `changes.csv` and `summary.json` for a reviewed run.

    Args:
        run_dir: a scored run directory (`scores.parquet`, optionally `review.sqlite`).
        out: output folder (created); files in it are replaced atomically.
        policy: one of `POLICIES`, for flagged samples without a human decision.
        min_confidence: apply a model proposal only where the model's probability of the
            proposed class (`pred_probs`) is at least this; in [0, 1]. Human decisions
            ignore it.
        reviewers: apply only these reviewers' decisions (None: everyone's, last wins).
        imagefolder: also write `<dir>/<split>/<label>/<file>` links (excluded samples are
            left out) for tools that want class folders; must be empty or absent.
        imagefolder_mode: `symlink` or `copy`.
        progress: called as `progress(done, total)` while the image folder is written.

    Returns:
        What was written.

    Raises:
        ExportError: a bad option, output folder, decision or name from the run.
        RunError, ScoresFormatError: the run cannot be opened (`fercleaner.runs.read_run`).
    """
    if policy not in POLICIES:
        raise ExportError(f"unknown policy {policy!r}; expected one of {', '.join(POLICIES)}")
    if not 0.0 <= float(min_confidence) <= 1.0:
        raise ExportError(f"--min-confidence must lie in [0, 1]; got {min_confidence}")
    if imagefolder_mode not in ("symlink", "copy"):
        raise ExportError(f"imagefolder mode {imagefolder_mode!r}; expected symlink or copy")
    _check_utf8_path(run_dir, "run directory")
    _check_utf8_path(out, "--out")
    if imagefolder is not None:
        _check_utf8_path(imagefolder, "--imagefolder")
    run = read_run(run_dir)
    out = Path(out).expanduser().resolve()
    if out == run.run_dir:
        raise ExportError(f"--out {out} is the run directory itself; pick another folder")
    decisions = read_decisions(run, reviewers)
    manifest, notes = build_manifest(
        run, decisions, policy=policy, min_confidence=float(min_confidence)
    )
    # a run directory is input like any other: check every value that becomes a path
    # part before anything is written
    check_output_names(manifest, source=str(run.scores_path), imagefolder=imagefolder is not None)
    out.mkdir(parents=True, exist_ok=True)
    meta = _export_metadata(run, policy, float(min_confidence), reviewers)
    manifests = write_manifests(manifest, out, classes=run.classes, metadata=meta)
    changes_path = out / "changes.csv"
    write_text_atomic(changes_path, format_changes_csv(manifest, notes))
    folder = None
    if imagefolder is not None:
        folder = write_imagefolder(manifest, imagefolder, mode=imagefolder_mode, progress=progress)
    summary = _summary(manifest, meta, manifests, changes_path, folder, decisions, run)
    write_json_atomic(out / "summary.json", summary)
    return ExportResult(out, manifests, changes_path, summary, folder)


def _export_metadata(
    run: Run, policy: str, min_confidence: float, reviewers: Sequence[str] | None
) -> dict[str, Any]:
    """The manifests' `fercleaner` metadata (each file adds its `split`)."""
    return {
        "classes": run.classes,
        "policy": policy,
        "min_confidence": min_confidence,
        "reviewers": list(reviewers) if reviewers is not None else None,
        "source_run": {
            "run_dir": str(run.run_dir),
            "run_id": run.run_id,
            "method": run.metadata.get("method"),
        },
        "dataset_root": run.metadata.get("dataset_root"),
        "dataset_fingerprint": run.metadata.get("dataset_fingerprint"),
        "layout": run.metadata.get("layout"),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "fercleaner_version": __version__,
    }


def _check_utf8_path(path: str | os.PathLike[str], what: str) -> None:
    """Refuse a path that is not valid UTF-8: pyarrow cannot open Parquet files under it."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(path).decode("utf-8", "backslashreplace")
        raise ExportError(
            f"{what} {shown} is not valid UTF-8, so its Parquet files cannot be read or"
            " written; rename it, or choose a folder whose path is valid UTF-8"
        ) from None


def _summary(
    manifest: pd.DataFrame,
    meta: dict[str, Any],
    manifests: dict[str, Path],
    changes: Path,
    folder: Path | None,
    decisions: pd.DataFrame,
    run: Run,
) -> dict[str, Any]:
    """The content of summary.json: the metadata, counts per action, split and label, files."""

    def counts(col: str) -> dict[str, int]:
        return {str(k): int(v) for k, v in manifest[col].value_counts().sort_index().items()}

    per_split = {
        split: {
            "rows": int(len(part)),
            "actions": {str(k): int(v) for k, v in part["action"].value_counts().items()},
        }
        for split, part in manifest.groupby("split", sort=False)
    }
    orphans = int((~decisions["sample_id"].isin(run.scores["sample_id"])).sum())
    return {
        **meta,
        "rows": int(len(manifest)),
        "changed_labels": int((manifest["label_name"] != manifest["given_label"]).sum()),
        "actions": counts("action"),
        "decided_by": counts("decided_by"),
        "splits": per_split,
        "labels_before": counts("given_label"),
        "labels_after": counts("label_name"),
        "decisions_for_unknown_samples": orphans,
        "files": {
            **{split: p.name for split, p in manifests.items()},
            "changes": changes.name,
        },
        "imagefolder": str(folder) if folder else None,
    }
