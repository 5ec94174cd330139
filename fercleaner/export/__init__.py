"""Cleaned manifests: one Parquet file per split with each sample's final label and why.

Human decisions (the review store) always win; model proposals are applied only as the
policy and the confidence threshold say; excluded samples stay in the manifest with
`action = exclude` and weight 0 so the training code decides, and nothing disappears
silently. `export_run` reads the run a row group at a time (`fercleaner.runs.stream_run`),
resolves each batch's labels against its samples' decisions (`resolve`), and writes the
manifests (`manifest`), `changes.csv` (`changes`), `summary.json` and optionally an image
folder (`imagefolder`); memory is one batch, not the run.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fercleaner import __version__
from fercleaner.atomic import atomic_open, json_text, remove_stale_temporaries
from fercleaner.export.changes import (
    CHANGES_COLUMNS,
    FORMULA_PREFIXES,
    changes_csv_header,
    format_changes_csv,
    neutralise_formula,
)
from fercleaner.export.errors import ExportError
from fercleaner.export.imagefolder import (
    MAX_NAME_BYTES,
    check_imagefolder_empty,
    check_output_names,
    link_images,
    write_imagefolder,
)
from fercleaner.export.manifest import (
    MANIFEST_COLUMNS,
    MANIFEST_METADATA_KEYS,
    ManifestWriters,
    hf_features,
    read_manifest_batches,
    write_manifest,
    write_manifests,
)
from fercleaner.export.resolve import (
    POLICIES,
    POLICY_ACTIONS,
    SPLIT_ORDER,
    build_manifest,
    no_decisions,
    read_decisions,
)
from fercleaner.review.store import DecisionStore
from fercleaner.runs import STORE_FILE, Run, RunStream, stream_run
from fercleaner.scoring import SCORES_ROW_GROUP_ROWS

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
    "ManifestWriters",
    "build_manifest",
    "changes_csv_header",
    "check_output_names",
    "export_run",
    "format_changes_csv",
    "hf_features",
    "neutralise_formula",
    "no_decisions",
    "read_decisions",
    "read_manifest_batches",
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
    rows_progress: Callable[[int, int], None] | None = None,
    batch_rows: int = SCORES_ROW_GROUP_ROWS,
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
        rows_progress: called as `rows_progress(done, total)` after each batch of rows
            is resolved and written.
        batch_rows: at most this many rows are read, resolved and written at a time (a
            batch never spans a row group of the scores file); memory grows with it,
            not with the run.

    Returns:
        What was written.

    Raises:
        ExportError: a bad option, output folder, decision or name from the run.
        RunError, ScoresFormatError, SamplePathError: the run cannot be read
            (`fercleaner.runs.stream_run`); nothing is written then.
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
    stream = stream_run(run_dir)
    run = stream.header
    out = Path(out).expanduser().resolve()
    if out == run.run_dir:
        raise ExportError(f"--out {out} is the run directory itself; pick another folder")
    folder = None
    if imagefolder is not None:
        folder = check_imagefolder_empty(imagefolder)
        if folder == out:
            raise ExportError(
                f"--imagefolder {folder} is the --out folder; pick a folder of its own so the"
                " class folders do not mix with the manifests"
            )
    meta = _export_metadata(run, policy, float(min_confidence), reviewers)
    changes_path, summary_path = out / "changes.csv", out / "summary.json"
    with (
        _output_folder(out),
        _open_store(run) as store,
        # renamed in the reverse order: every manifest, changes.csv, then summary.json; all
        # are finished (written and closed under temp names) inside the block, and so is
        # the image folder, so a failure anywhere leaves the earlier export whole
        atomic_open(summary_path, "w", encoding="utf-8") as summary_file,
        atomic_open(changes_path, "w", encoding="utf-8", newline="") as changes,
        ManifestWriters(out, classes=run.classes, metadata=meta) as writers,
    ):
        _check_reviewers(reviewers, store, run)
        tally = _write_batches(
            stream,
            store,
            writers,
            changes,
            policy=policy,
            min_confidence=float(min_confidence),
            reviewers=reviewers,
            imagefolder=folder is not None,
            batch_rows=batch_rows,
            rows_progress=rows_progress,
        )
        decided = 0 if store is None else store.count_current_decisions(reviewers=reviewers)
        writers.finish()
        changes.flush()
        os.fsync(changes.fileno())
        manifests = writers.paths
        if folder is not None:
            columns = ["sample_id", "path", "split", "label_name", "action"]
            batches = read_manifest_batches(writers.finished_paths, columns)
            total = tally.rows - tally.actions["exclude"]
            folder = link_images(
                batches, folder, mode=imagefolder_mode, progress=progress, total=total
            )
        summary = tally.summary(
            meta, manifests, changes_path, folder, orphans=decided - tally.decisions
        )
        summary_file.write(json_text(summary))
    # what an export killed mid-write left beside these files (never another file's)
    own = {path.name for path in manifests.values()} | {changes_path.name, summary_path.name}
    remove_stale_temporaries(out, targets=own)
    _remove_old_manifests(out, keep=set(manifests.values()))
    return ExportResult(out, manifests, changes_path, summary, folder)


def _write_batches(
    stream: RunStream,
    store: DecisionStore | None,
    writers: ManifestWriters,
    changes: IO[str],
    *,
    policy: str,
    min_confidence: float,
    reviewers: Sequence[str] | None,
    imagefolder: bool,
    batch_rows: int,
    rows_progress: Callable[[int, int], None] | None,
) -> _Tally:
    """Resolve and write the run batch by batch; return what summary.json counts.

    A run directory is input like any other: every value that becomes a path part is
    checked, batch by batch, before any output file replaces an old one. With
    `imagefolder` that check keeps one entry per linked image (two samples must not
    become one file), the one part of an export whose memory grows with the run.
    """
    tally = _Tally()
    source = str(stream.header.scores_path)
    names_seen: dict[tuple[str, str, str], str] = {}
    changes.write(changes_csv_header())
    for batch in stream.batches(batch_rows):
        decisions = (
            no_decisions()
            if store is None
            else store.current_decisions_of(batch.scores["sample_id"], reviewers=reviewers)
        )
        manifest = build_manifest(batch, decisions, policy=policy, min_confidence=min_confidence)
        check_output_names(manifest, source=source, imagefolder=imagefolder, seen=names_seen)
        writers.write(manifest)
        changes.write(format_changes_csv(manifest, header=False))
        tally.add(manifest, len(decisions))
        if rows_progress is not None:
            rows_progress(tally.rows, stream.num_rows)
    return tally


@contextlib.contextmanager
def _output_folder(out: Path) -> Iterator[None]:
    """Create `out` for the export; remove it again if the export fails and left it empty
    (a refused run leaves no trace)."""
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()  # only an empty folder: the temp files are gone by now
        raise


def _remove_old_manifests(out: Path, *, keep: set[Path]) -> None:
    """Delete the manifests an earlier export wrote to `out` for splits this one has not
    (a `*.parquet` glob would read them as part of this export). Only files carrying a
    manifest's metadata are touched: anything else in `out` is the user's."""
    for path in out.glob("*.parquet"):
        if path in keep or not path.is_file():
            continue
        with contextlib.suppress(OSError, pa.ArrowException):
            metadata = pq.read_schema(path).metadata or {}
            if set(metadata) >= MANIFEST_METADATA_KEYS:
                path.unlink()


def _check_reviewers(
    reviewers: Sequence[str] | None, store: DecisionStore | None, run: Run
) -> None:
    """Refuse a `--reviewer` who decided nothing in this run: a misspelt name would
    otherwise export the model's choices in place of every human decision, silently."""
    if reviewers is None:
        return
    known = [] if store is None else store.list_reviewers()
    unknown = [name for name in reviewers if name not in known]
    if unknown:
        listed = ", ".join(known) if known else "none: nobody has reviewed it"
        raise ExportError(
            f"--reviewer {', '.join(unknown)}: no decisions by that name in"
            f" {run.run_dir / STORE_FILE}; reviewers of this run: {listed}"
        )


@contextlib.contextmanager
def _open_store(run: Run) -> Iterator[DecisionStore | None]:
    """The run's review store read from one state of it (None when nobody reviewed the run:
    export does not create a store)."""
    path = run.run_dir / STORE_FILE
    if not path.is_file():
        yield None
        return
    with DecisionStore(path) as store, store.snapshot():
        yield store


@dataclass
class _Tally:
    """What summary.json counts, added up one manifest batch at a time."""

    rows: int = 0
    changed: int = 0
    decisions: int = 0
    actions: Counter = field(default_factory=Counter)
    decided_by: Counter = field(default_factory=Counter)
    before: Counter = field(default_factory=Counter)
    after: Counter = field(default_factory=Counter)
    split_rows: Counter = field(default_factory=Counter)
    split_actions: dict[str, Counter] = field(default_factory=dict)

    def add(self, manifest: pd.DataFrame, decisions: int) -> None:
        self.rows += len(manifest)
        self.changed += int((manifest["label_name"] != manifest["given_label"]).sum())
        self.decisions += decisions
        self.actions.update(manifest["action"].value_counts().to_dict())
        self.decided_by.update(manifest["decided_by"].value_counts().to_dict())
        self.before.update(manifest["given_label"].value_counts().to_dict())
        self.after.update(manifest["label_name"].value_counts().to_dict())
        for split, part in manifest.groupby("split", sort=False):
            self.split_rows[str(split)] += len(part)
            actions = self.split_actions.setdefault(str(split), Counter())
            actions.update(part["action"].value_counts().to_dict())

    def summary(
        self,
        meta: dict[str, Any],
        manifests: dict[str, Path],
        changes: Path,
        folder: Path | None,
        *,
        orphans: int,
    ) -> dict[str, Any]:
        """The content of summary.json: the metadata, counts per action, split and label, files."""

        def counts(counter: Counter) -> dict[str, int]:
            return {str(k): int(v) for k, v in sorted(counter.items())}

        return {
            **meta,
            "rows": self.rows,
            "changed_labels": self.changed,
            "actions": counts(self.actions),
            "decided_by": counts(self.decided_by),
            "splits": {
                split: {
                    "rows": self.split_rows[split],
                    "actions": {str(k): int(v) for k, v in self.split_actions[split].most_common()},
                }
                for split in manifests
            },
            "labels_before": counts(self.before),
            "labels_after": counts(self.after),
            "decisions_for_unknown_samples": orphans,
            "files": {
                **{split: p.name for split, p in manifests.items()},
                "changes": changes.name,
            },
            "imagefolder": str(folder) if folder else None,
        }


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
