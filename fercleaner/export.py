"""Cleaned manifests: one Parquet file per split with each sample's final label and why.

Human decisions (the review store) always win; model proposals are applied only as the
policy and the confidence threshold say; excluded samples stay in the manifest with
`action = exclude` and weight 0 so the training code decides, and nothing disappears
silently. The files load in pandas, pyarrow and Hugging Face `datasets`: `label` is the
class index into the metadata's `classes` (a ClassLabel for `datasets`, whose features
ride in the `huggingface` schema metadata; it only honours them on integer storage) and
`label_name` is the same label spelled out, like `given_label`.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fercleaner import __version__
from fercleaner.atomic import atomic_path, write_json_atomic, write_text_atomic
from fercleaner.errors import FercleanerError
from fercleaner.review.run import SCORES_FILENAME, ReviewRun, open_run
from fercleaner.review.store import DecisionStore, store_path

#: How model proposals are applied to flagged samples nobody reviewed.
#: relabel: mislabeled samples take the proposed label; other flags keep the given label.
#: drop: every flagged sample is excluded (kept in the manifest, weight 0).
#: soft: every flagged sample trains on the model's soft label (action `ambiguous`).
POLICIES: tuple[str, ...] = ("relabel", "drop", "soft")

#: Manifest columns, in order.
MANIFEST_COLUMNS: tuple[str, ...] = (
    "sample_id",
    "path",
    "split",
    "given_label",
    "label",
    "label_name",
    "soft_label",
    "weight",
    "action",
    "decided_by",
    "reviewer",
    "decided_at",
    "label_quality",
    "run_id",
)

SPLIT_ORDER: tuple[str, ...] = ("train", "val", "test")

#: First characters that make a spreadsheet read a CSV cell as a formula (OWASP CSV
#: injection); `changes.csv` prefixes such cells with `'` so they open as text.
FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")

#: Longest file or folder name most file systems accept, in bytes.
MAX_NAME_BYTES = 255

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


class ExportError(FercleanerError):
    """An export cannot be written as asked (bad option, bad decision, busy folder)."""


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
    run = open_run(run_dir)
    out = Path(out).expanduser().resolve()
    if out == run.run_dir:
        raise ExportError(f"--out {out} is the run directory itself; pick another folder")
    decisions = _read_decisions(run, reviewers)
    manifest, notes = build_manifest(
        run, decisions, policy=policy, min_confidence=float(min_confidence)
    )
    # a run directory is input like any other: check every value that becomes a path
    # part before anything is written
    check_output_names(
        manifest, source=str(run.run_dir / SCORES_FILENAME), imagefolder=imagefolder is not None
    )
    out.mkdir(parents=True, exist_ok=True)
    created_at = datetime.now(UTC).isoformat(timespec="seconds")
    meta = {
        "classes": run.classes,
        "policy": policy,
        "min_confidence": float(min_confidence),
        "reviewers": list(reviewers) if reviewers is not None else None,
        "source_run": {
            "run_dir": str(run.run_dir),
            "run_id": run.run_id,
            "method": run.metadata.get("method"),
        },
        "dataset_root": run.metadata.get("dataset_root"),
        "dataset_fingerprint": run.metadata.get("dataset_fingerprint"),
        "layout": run.metadata.get("layout"),
        "created_at": created_at,
        "fercleaner_version": __version__,
    }
    manifests = {}
    splits = [s for s in SPLIT_ORDER if (manifest["split"] == s).any()]
    splits += sorted(set(manifest["split"]) - set(SPLIT_ORDER))
    for split in splits:
        part = manifest[manifest["split"] == split].reset_index(drop=True)
        path = out / f"{split}.parquet"
        write_manifest(part, path, classes=run.classes, metadata={**meta, "split": split})
        manifests[split] = path
    changes_path = out / "changes.csv"
    write_text_atomic(changes_path, _changes_csv(manifest, notes))
    folder = None
    if imagefolder is not None:
        folder = write_imagefolder(manifest, imagefolder, mode=imagefolder_mode, progress=progress)
    summary = _summary(manifest, meta, manifests, changes_path, folder, decisions, run)
    write_json_atomic(out / "summary.json", summary)
    return ExportResult(out, manifests, changes_path, summary, folder)


def build_manifest(
    run: ReviewRun, decisions: pd.DataFrame, *, policy: str, min_confidence: float
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The final label of every sample: human decision, else the policy, else the given label.

    Returns:
        (manifest with `MANIFEST_COLUMNS` sorted by split then sample_id, notes per
        sample_id from the human decisions).
    """
    s = run.scores
    classes = run.classes
    index = {c: i for i, c in enumerate(classes)}
    n, c = len(s), len(classes)
    given = s["given_label"].astype(str).to_numpy()
    proposed = s["proposed_label"].astype(str).to_numpy()
    given_idx = _class_indices(given, index, "given_label", run)
    proposed_idx = _class_indices(proposed, index, "proposed_label", run)
    probs = _matrix(s["pred_probs"], c, "pred_probs", run)
    model_soft = _matrix(s["soft_label"], c, "soft_label", run)

    label = given.astype(object).copy()
    soft = np.eye(c, dtype=np.float32)[given_idx]
    action = np.full(n, "keep", dtype=object)
    decided_by = np.full(n, "none", dtype=object)

    # Model proposals, as the policy and the threshold say.
    confident = probs[np.arange(n), proposed_idx] >= min_confidence
    flagged = s["is_label_issue"].to_numpy(dtype=bool) & confident
    if policy == "relabel":
        apply = flagged & (s["issue_type"].to_numpy() == "mislabeled") & (proposed != given)
        label[apply] = proposed[apply]
        soft[apply] = np.eye(c, dtype=np.float32)[proposed_idx[apply]]
        action[apply] = "relabel"
    elif policy == "drop":
        apply = flagged
        action[apply] = "exclude"
    else:  # soft
        apply = flagged
        target = model_soft[apply] / np.clip(model_soft[apply].sum(1, keepdims=True), 1e-12, None)
        soft[apply] = target
        label[apply] = np.asarray(classes, dtype=object)[target.argmax(1)]
        action[apply] = "ambiguous"
    decided_by[apply] = "model"

    # Human decisions override everything.
    reviewer = np.full(n, None, dtype=object)
    decided_at = np.full(n, None, dtype=object)
    notes: dict[str, str] = {}
    if not decisions.empty:
        pos = {sample_id: i for i, sample_id in enumerate(s["sample_id"].tolist())}
        known = decisions[[sample_id in pos for sample_id in decisions["sample_id"]]]
        notes = dict(zip(known["sample_id"], known["note"], strict=True))
        _apply_human(known, pos, given, given_idx, index, classes, label, soft, action)
        rows = np.array([pos[sid] for sid in known["sample_id"]], dtype=np.int64)
        decided_by[rows] = "human"
        reviewer[rows] = known["reviewer"].to_numpy(dtype=object)
        decided_at[rows] = known["decided_at"].to_numpy(dtype=object)

    weight = np.where(action == "exclude", 0.0, 1.0).astype(np.float32)
    manifest = pd.DataFrame(
        {
            "sample_id": s["sample_id"].astype(str).to_numpy(),
            "path": s["path"].astype(str).to_numpy(),
            "split": s["split"].astype(str).to_numpy(),
            "given_label": given,
            "label": np.array([index[v] for v in label], dtype=np.int64),
            "label_name": label.astype(str),
            "soft_label": list(soft.astype(np.float32)),
            "weight": weight,
            "action": action.astype(str),
            "decided_by": decided_by.astype(str),
            "reviewer": reviewer,
            "decided_at": pd.to_datetime(
                pd.Series(decided_at, dtype=object), utc=True, format="ISO8601"
            ),
            "label_quality": s["label_quality"].to_numpy(dtype=np.float64),
            "run_id": run.run_id,
        }
    )
    order = np.lexsort((manifest["sample_id"].to_numpy(), _split_rank(manifest["split"])))
    return manifest.iloc[order].reset_index(drop=True), notes


def _apply_human(
    known: pd.DataFrame,
    pos: dict[str, int],
    given: np.ndarray,
    given_idx: np.ndarray,
    index: dict[str, int],
    classes: Sequence[str],
    label: np.ndarray,
    soft: np.ndarray,
    action: np.ndarray,
) -> None:
    """Write human decisions into the label/soft/action arrays (in place, vectorised)."""
    eye = np.eye(len(classes), dtype=np.float32)
    rows = np.array([pos[sid] for sid in known["sample_id"]], dtype=np.int64)
    kinds = known["action"].to_numpy(dtype=object)
    labels = known["label"].to_numpy(dtype=object)

    excluded = rows[kinds == "exclude"]
    label[excluded], soft[excluded] = given[excluded], eye[given_idx[excluded]]
    action[excluded] = "exclude"

    hard = np.isin(kinds, ["accept", "keep", "relabel"])
    bad = [j for j in np.flatnonzero(hard) if labels[j] not in index]
    if bad:
        d = known.iloc[bad[0]]
        raise ExportError(
            f"review decision {d['event_id']} on {d['sample_id']!r} sets label "
            f"{d['label']!r}, which is not one of the run's classes {list(classes)}"
        )
    hard_rows, hard_labels = rows[hard], labels[hard]
    label[hard_rows] = hard_labels
    soft[hard_rows] = eye[[index[x] for x in hard_labels]]
    action[hard_rows] = np.where(hard_labels == given[hard_rows], "keep", "relabel")

    for j in np.flatnonzero(kinds == "ambiguous"):
        i, d = rows[j], known.iloc[j]
        vec = _human_soft(d["soft_label"], len(classes), d["sample_id"])
        soft[i], label[i], action[i] = vec, classes[int(vec.argmax())], "ambiguous"


def write_manifest(
    frame: pd.DataFrame, path: Path, *, classes: Sequence[str], metadata: dict[str, Any]
) -> None:
    """Write one manifest atomically with `fercleaner` and `huggingface` schema metadata."""
    schema = pa.schema(
        [
            ("sample_id", pa.string()),
            ("path", pa.string()),
            ("split", pa.string()),
            ("given_label", pa.string()),
            ("label", pa.int64()),
            ("label_name", pa.string()),
            ("soft_label", pa.list_(pa.float32())),
            ("weight", pa.float32()),
            ("action", pa.string()),
            ("decided_by", pa.string()),
            ("reviewer", pa.string()),
            ("decided_at", pa.timestamp("us", tz="UTC")),
            ("label_quality", pa.float64()),
            ("run_id", pa.string()),
        ]
    )
    columns = {
        name: pa.array(
            [list(map(float, v)) for v in frame[name]]
            if name == "soft_label"
            else frame[name].tolist()
            if name in ("reviewer",)
            else frame[name],
            type=schema.field(name).type,
            from_pandas=True,
        )
        for name in MANIFEST_COLUMNS
    }
    table = pa.table(columns, schema=schema)
    table = table.replace_schema_metadata(
        {
            b"fercleaner": json.dumps(metadata).encode(),
            b"huggingface": json.dumps({"info": {"features": hf_features(classes)}}).encode(),
        }
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def hf_features(classes: Sequence[str]) -> dict[str, Any]:
    """Hugging Face `datasets` features for the manifest (labels as ClassLabel)."""

    def value(dtype: str) -> dict[str, str]:
        return {"dtype": dtype, "_type": "Value"}

    class_label = {"names": list(classes), "_type": "ClassLabel"}
    return {
        "sample_id": value("string"),
        "path": value("string"),
        "split": value("string"),
        "given_label": value("string"),
        "label": class_label,
        "label_name": value("string"),
        "soft_label": {"feature": value("float32"), "_type": "List"},
        "weight": value("float32"),
        "action": value("string"),
        "decided_by": value("string"),
        "reviewer": value("string"),
        "decided_at": value("timestamp[us, tz=UTC]"),
        "label_quality": value("float64"),
        "run_id": value("string"),
    }


def write_imagefolder(
    manifest: pd.DataFrame,
    folder: str | os.PathLike[str],
    *,
    mode: str = "symlink",
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Lay out `<folder>/<split>/<label>/<file>` for every sample not excluded.

    File names are the `sample_id` with `/` replaced by `__`; every split, label and file
    name is checked (`check_output_names`) before anything is written, so nothing lands
    outside `folder`.
    """
    check_output_names(manifest, source="the manifest", imagefolder=True)
    folder = Path(folder).expanduser().resolve()
    if folder.exists() and any(folder.iterdir()):
        raise ExportError(
            f"image folder {folder} is not empty; pass a new or empty folder so old links "
            "cannot mix with this export"
        )
    rows = manifest[manifest["action"] != "exclude"]
    total = len(rows)
    for done, r in enumerate(rows.itertuples(index=False), start=1):
        source = Path(r.path)
        if not source.is_file() or source.suffix.lower() in (".csv", ".tsv"):
            raise ExportError(
                f"sample {r.sample_id!r}: {source} is not an image file (pixel-CSV datasets "
                "have no files to link); export without --imagefolder"
            )
        target = folder / r.split / r.label_name / _imagefolder_name(r.sample_id, r.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if mode == "symlink":
            target.symlink_to(source)
        else:
            shutil.copy2(source, target)
        if progress is not None:
            progress(done, total)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def check_output_names(manifest: pd.DataFrame, *, source: str, imagefolder: bool) -> None:
    """Refuse any manifest value that would not be one plain name under the output folders.

    Splits name the manifest files (`<out>/<split>.parquet`); with `imagefolder`, splits
    and labels also name folders and each `sample_id` a file. A value such as `../../x`,
    `/tmp/x`, `a/b`, `..` or one with a NUL would write outside `--out` or
    `--imagefolder`, and two samples mapping to the same file would collide.

    Args:
        manifest: `build_manifest` output (`sample_id`, `path`, `split`, `label_name`).
        source: where the values came from, for the message (the run's scores file).
        imagefolder: also check label folders and sample file names.

    Raises:
        ExportError: names `source`, the column, the bad value, one sample and the fix.
    """
    fix = f"fix {source} or re-run `fercleaner score` to write it again"
    columns = ("split", "label_name") if imagefolder else ("split",)
    for column in columns:
        for value, sample_id in manifest.drop_duplicates(column)[[column, "sample_id"]].itertuples(
            index=False
        ):
            names = [value, f"{value}.parquet"] if column == "split" else [value]
            reason = next(filter(None, (_name_problem(n, strict=True) for n in names)), None)
            if reason is not None:
                what = "split" if column == "split" else "class"
                raise ExportError(
                    f"{source}: {what} {value!r} (sample {sample_id!r}) cannot be a file or "
                    f"folder name under the output folder: {reason}; {fix}"
                )
    if not imagefolder:
        return
    seen: dict[tuple[str, str, str], str] = {}
    rows = manifest[manifest["action"] != "exclude"]
    for sample_id, path, split, label in rows[
        ["sample_id", "path", "split", "label_name"]
    ].itertuples(index=False):
        name = _imagefolder_name(sample_id, path)
        reason = _name_problem(name, strict=False)
        if reason is not None:
            raise ExportError(
                f"{source}: sample {sample_id!r} would become the file name {name!r} under "
                f"--imagefolder, which cannot be used: {reason}; {fix}, or export without "
                "--imagefolder"
            )
        other = seen.setdefault((split, label, name), sample_id)
        if other != sample_id:
            raise ExportError(
                f"{source}: samples {other!r} and {sample_id!r} both become "
                f"{split}/{label}/{name} under --imagefolder; rename one of the files, or "
                "export without --imagefolder"
            )


def _imagefolder_name(sample_id: str, path: str) -> str:
    """The file name of a sample in the image folder: `/` as `__`, the image's suffix kept."""
    name = str(sample_id).replace("/", "__")
    if not Path(name).suffix:
        name += Path(str(path)).suffix
    return name


def _name_problem(name: str, *, strict: bool) -> str | None:
    """Why `name` cannot be one file or folder name inside a folder (None: it can).

    `strict` (split and class names, which are printed and typed) also refuses
    backslashes (a separator on Windows) and control characters; sample file names may
    legally hold both, so they are allowed there.
    """
    if name in ("", ".", ".."):
        return "it is empty" if not name else f"{name!r} means a folder itself or its parent"
    if "/" in name or (strict and "\\" in name):
        return "it contains a path separator"
    if "\x00" in name:
        return "it contains a NUL character"
    if strict and any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return "it contains a control character"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"it is longer than {MAX_NAME_BYTES} bytes"
    return None


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


def _read_decisions(run: ReviewRun, reviewers: Sequence[str] | None) -> pd.DataFrame:
    """Current decisions, without creating a store for a run nobody reviewed."""
    if not store_path(run.run_dir).is_file():
        return pd.DataFrame(
            columns=["event_id", "sample_id", "action", "label", "soft_label", "reviewer"]
            + ["decided_at", "note"]
        )
    with DecisionStore(store_path(run.run_dir)) as store:
        return store.current_decisions(reviewers=reviewers)


def _class_indices(
    values: np.ndarray, index: dict[str, int], column: str, run: ReviewRun
) -> np.ndarray:
    unknown = sorted(set(values) - set(index))
    if unknown:
        raise ExportError(
            f"{run.run_dir / 'scores.parquet'}: column {column} holds {unknown[0]!r}, not one "
            f"of the run's classes {run.classes}; re-run `fercleaner score`"
        )
    return np.array([index[v] for v in values], dtype=np.int64)


def _matrix(column: pd.Series, c: int, name: str, run: ReviewRun) -> np.ndarray:
    rows = column.tolist()
    bad = next((i for i, v in enumerate(rows) if v is None or len(v) != c), None)
    if bad is not None:
        raise ExportError(
            f"{run.run_dir / 'scores.parquet'}: {name} of sample {run.scores['sample_id'].iloc[bad]!r} "
            f"does not have {c} entries (one per class)"
        )
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), c)


def _human_soft(values: Any, c: int, sample_id: str) -> np.ndarray:
    vec = np.asarray(values if values is not None else [], dtype=np.float32)
    if vec.shape != (c,) or not np.isfinite(vec).all() or vec.min() < 0 or vec.sum() <= 0:
        raise ExportError(
            f"review decision on {sample_id!r} marks it ambiguous with soft label {values!r}; "
            f"expected {c} non-negative numbers"
        )
    return vec / vec.sum()


def _split_rank(split: pd.Series) -> np.ndarray:
    rank = {s: i for i, s in enumerate(SPLIT_ORDER)}
    return np.array([rank.get(s, len(rank)) for s in split], dtype=np.int64)


def _changes_csv(manifest: pd.DataFrame, notes: dict[str, str]) -> str:
    """One row per sample whose final label differs from its given label.

    Every cell is text a reviewer typed or a dataset named, so each is passed through
    `neutralise_formula` before it reaches a spreadsheet.
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
            "note": [notes.get(sid, "") or "" for sid in changed["sample_id"].tolist()],
        },
        columns=list(CHANGES_COLUMNS),
    )
    table = table.map(neutralise_formula)
    # quote every field: minimal quoting leaves a lone CR in a note unquoted (the csv
    # module only quotes the line terminator's characters), which splits the row
    return table.to_csv(index=False, na_rep="", lineterminator="\n", quoting=csv.QUOTE_ALL)


def neutralise_formula(cell: Any) -> Any:
    """A CSV cell that a spreadsheet will show as text, never evaluate as a formula.

    Text starting with one of `FORMULA_PREFIXES` gets a leading `'` (OWASP's advice for
    CSV injection: `=HYPERLINK(...)` in a note must not become a live link); anything
    else, and every non-text value, is returned unchanged.
    """
    if isinstance(cell, str) and cell.startswith(FORMULA_PREFIXES):
        return "'" + cell
    return cell


def _summary(
    manifest: pd.DataFrame,
    meta: dict[str, Any],
    manifests: dict[str, Path],
    changes: Path,
    folder: Path | None,
    decisions: pd.DataFrame,
    run: ReviewRun,
) -> dict[str, Any]:
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
