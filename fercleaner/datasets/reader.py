"""`read_dataset`: detect the layout, read its rows, then the checks every layout shares.

Shared checks, in order: duplicate sample ids, images that no row lists, and every image
file's header (in parallel). Each failure moves a row from the samples to the problems
table, so the counts always reconcile.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from fercleaner.datasets import images
from fercleaner.datasets._common import is_junk
from fercleaner.datasets.dataset import Dataset
from fercleaner.datasets.images import DEFAULT_MAX_PIXELS, ProgressFn
from fercleaner.datasets.problems import ProblemLog, display_path
from fercleaner.datasets.registry import LayoutRead, ReadOptions, resolve_detection
from fercleaner.errors import ConfigError, DatasetError

_PRIVATE_COLUMNS = ["_file", "_row"]


def read_dataset(
    path: str | os.PathLike[str],
    layout: str | None = None,
    *,
    check_images: bool = True,
    allow_outside_root: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int = 2,
    progress: ProgressFn | None = None,
) -> Dataset:
    """Read a dataset folder (or a labels.csv / labels.parquet) into a `Dataset`.

    Args:
        path: dataset folder, or a manifest file for the `csv` layout.
        layout: a registered layout name; None auto-detects (see `detect_layout`).
        check_images: open and verify every image header; failures become problems.
            When False only file existence is checked.
        allow_outside_root: accept manifest paths that leave the manifest's folder.
        max_pixels: images with more pixels are `too_many_pixels` problems.
        workers: processes for the image checks.
        progress: called as progress(done, total) while images are checked.

    Raises:
        DatasetError: the path is missing or matches no (or not the requested) layout.
        RegistryError: `layout` is not a registered layout name.
        ConfigError: max_pixels or workers is below 1.
    """
    if max_pixels < 1 or workers < 1:
        raise ConfigError(
            f"max_pixels and workers must be >= 1; got max_pixels={max_pixels}, workers={workers}"
        )
    path = Path(path).expanduser().absolute()
    spec, detection = resolve_detection(path, layout)
    root = detection.root or path
    problems = ProblemLog(root)
    try:
        raw = spec.read(
            detection.source or path,
            root,
            ReadOptions(allow_outside_root=allow_outside_root),
            problems,
        )
    except OSError as exc:  # a label file or folder we cannot open: nothing to read
        raise DatasetError(
            f"cannot read {exc.filename or path}: {exc.strerror or exc}; check that the file"
            " exists and is readable"
        ) from exc
    _require_reconciled(raw, problems, spec.name)
    samples = _drop_duplicates(raw.samples, problems)
    _report_unlabeled(raw, problems)
    if raw.has_image_files:
        samples = _check_files(
            samples,
            problems,
            root=root,
            verify=check_images,
            max_pixels=max_pixels,
            workers=workers,
            progress=progress,
        )
    samples = samples.drop(columns=_PRIVATE_COLUMNS).reset_index(drop=True)
    text = "; ".join([detection.reason, *raw.notes])
    dataset = Dataset(
        samples=samples,
        problems=problems.to_frame(),
        layout=spec.name,
        root=root,
        classes=list(raw.classes),
        detection=text,
        rows_listed=raw.rows_listed,
    )
    if not dataset.reconciles:
        raise RuntimeError(
            f"bug in fercleaner: {spec.name} counts do not reconcile ({dataset.rows_listed} rows"
            f" listed, {len(samples)} samples, {dataset.label_row_problems} row problems)"
        )
    return dataset


def _require_reconciled(raw: LayoutRead, problems: ProblemLog, name: str) -> None:
    """A layout reader must account for every row it saw (a bug otherwise, not bad input)."""
    if raw.rows_listed != len(raw.samples) + problems.label_row_count:
        raise RuntimeError(
            f"bug in fercleaner: the {name} reader saw {raw.rows_listed} rows but returned"
            f" {len(raw.samples)} samples and {problems.label_row_count} row problems"
        )
    missing = {"sample_id", "path", "split", "given_label", *_PRIVATE_COLUMNS} - set(raw.samples)
    if missing:
        raise RuntimeError(f"bug in fercleaner: the {name} reader left out columns {missing}")


def _drop_duplicates(samples: pd.DataFrame, problems: ProblemLog) -> pd.DataFrame:
    """Keep the first row of each sample id; every later one is a `duplicate_id` problem."""
    repeated = samples["sample_id"].duplicated(keep="first")
    if not repeated.any():
        return samples
    first_row = samples.loc[~repeated].set_index("sample_id")["_row"].to_dict()
    dupes = samples.loc[repeated]
    for sample_id, file, row in zip(dupes["sample_id"], dupes["_file"], dupes["_row"], strict=True):
        first = first_row.get(sample_id)
        where = f" (first listed at row {first})" if _row_or_none(first) is not None else ""
        problems.add(
            "duplicate_id",
            file=file,
            row=_row_or_none(row),
            sample_id=sample_id,
            reason=f"sample id {sample_id!r} is listed more than once{where}",
        )
    return samples.loc[~repeated]


def _report_unlabeled(raw: LayoutRead, problems: ProblemLog) -> None:
    """Images inside the layout's image folders that no label row lists."""
    for folder in raw.scan_dirs:
        if not folder.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not is_junk(d))
            for name in sorted(filenames):
                if is_junk(name) or not images.is_image_name(name):
                    continue
                full = os.path.join(dirpath, name)
                if full not in raw.listed_paths:
                    problems.add(
                        "unlabeled_image",
                        file=full,
                        reason="image is not listed in any label row, so it has no label",
                    )


def _check_files(
    samples: pd.DataFrame,
    problems: ProblemLog,
    *,
    root: Path,
    verify: bool,
    max_pixels: int,
    workers: int,
    progress: ProgressFn | None,
) -> pd.DataFrame:
    """Existence (always) and header checks (when `verify`); failing rows become problems."""
    paths = samples["path"].tolist()
    if verify:
        results = images.check_images(
            paths, max_pixels=max_pixels, workers=workers, progress=progress
        )
    else:
        results = [
            None if os.path.isfile(p) else ("missing_file", f"image file {p} does not exist")
            for p in paths
        ]
    keep = [result is None for result in results]
    if all(keep):
        return samples
    columns = zip(samples["sample_id"], paths, samples["_file"], samples["_row"], strict=True)
    for (sample_id, path, file, row), result in zip(columns, results, strict=True):
        if result is None:
            continue
        kind, reason = result
        problems.add(
            kind,
            # a missing image is fixed in the label file; a broken one is the image itself
            file=file if kind == "missing_file" else path,
            row=_row_or_none(row),
            sample_id=sample_id,
            reason=reason.replace(path, display_path(path, root)),
        )
    return samples.loc[keep]


def _row_or_none(value: object) -> int | None:
    return None if value is None or pd.isna(value) else int(value)
