"""`read_dataset`: detect the layout, read its rows, then the checks every layout shares.

Shared checks, in order: duplicate sample ids, images that no row lists, images reached
through a symbolic link that leads out of the root, and every image file decoded (in
parallel, exactly as the cache will). Each failure moves a row from the samples to the
problems table, so the counts always reconcile.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from fercleaner.datasets import images
from fercleaner.datasets._common import scan_tree
from fercleaner.datasets.dataset import Dataset
from fercleaner.datasets.images import DEFAULT_MAX_PIXELS, ProgressFn
from fercleaner.datasets.problems import ProblemLog, display_path, is_valid_name, printable
from fercleaner.datasets.registry import LayoutRead, ReadOptions, resolve_detection
from fercleaner.errors import ConfigError, DatasetError

_PRIVATE_COLUMNS = ["_file", "_row"]
_BOX_COLUMNS = ["face_x", "face_y", "face_w", "face_h"]
#: Kinds fixed in the label file (the row is wrong), not in the image file.
_ROW_KINDS = frozenset({"missing_file", "malformed_row"})


def read_dataset(
    path: str | os.PathLike[str],
    layout: str | None = None,
    *,
    check_images: bool = True,
    allow_outside_root: bool = False,
    follow_links: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int = 2,
    progress: ProgressFn | None = None,
) -> Dataset:
    """Read a dataset folder (or a labels.csv / labels.parquet) into a `Dataset`.

    Args:
        path: dataset folder, or a manifest file for the `csv` layout.
        layout: a registered layout name; None auto-detects (see `detect_layout`).
        check_images: decode every image as the cache will (face box included); failures
            become problems. When False only file existence is checked.
        allow_outside_root: accept manifest paths that leave the manifest's folder.
        follow_links: read images and folders through symbolic links that lead outside
            the root; by default each is a `path_escapes_root` problem and is not read.
        max_pixels: images with more pixels are `too_many_pixels` problems.
        workers: processes for the image checks.
        progress: called as progress(0, 0) before the samples are listed (the count is not
            known yet; a million-row manifest takes tens of seconds), then as
            progress(done, total) while images are checked, and (total, total) at the end.

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
    if not is_valid_name(str(path)):  # every sample's `path` would carry the bad bytes
        raise DatasetError(
            f"dataset path {printable(str(path))} is not valid UTF-8, so the image paths under"
            " it cannot be stored in the sample table or the run's files; rename the folder"
            " (e.g. convmv -f latin1 -t utf8) or reach it through a link with a UTF-8 name"
        )
    spec, detection = resolve_detection(path, layout)
    root = detection.root or path
    problems = ProblemLog(root)
    if progress is not None:
        progress(0, 0)
    try:
        raw = spec.read(
            detection.source or path,
            root,
            ReadOptions(allow_outside_root=allow_outside_root, follow_links=follow_links),
            problems,
        )
    except OSError as exc:  # a label file or folder we cannot open: nothing to read
        raise DatasetError(
            f"cannot read {exc.filename or path}: {exc.strerror or exc}; check that the file"
            " exists and is readable"
        ) from exc
    _require_reconciled(raw, problems, spec.name)
    samples = _drop_duplicates(raw.samples, problems)
    _report_unlabeled(raw, problems, root=root, follow_links=follow_links)
    if raw.has_image_files:
        if not follow_links:
            samples = _exclude_links_out_of_root(samples, problems, root=root)
        samples = _check_files(
            samples,
            problems,
            root=root,
            verify=check_images,
            max_pixels=max_pixels,
            workers=workers,
            progress=progress,
        )
    if progress is not None and len(samples) and not (raw.has_image_files and check_images):
        progress(len(samples), len(samples))  # nothing counted on the way: say it is done
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


def _report_unlabeled(
    raw: LayoutRead, problems: ProblemLog, *, root: Path, follow_links: bool
) -> None:
    """Images inside the layout's image folders that no label row lists (hidden ones too)."""
    real_root = os.path.realpath(root)
    for folder in raw.scan_dirs:
        if not folder.is_dir():
            continue
        scan = scan_tree(folder, real_root=real_root, follow_links=follow_links)
        for path, why in scan.unreadable:
            problems.add(
                "unreadable_folder",
                file=path,
                reason=f"folder {display_path(path, root)} was not searched for unlisted"
                f" images: {why}",
            )
        for path in scan.files:
            if images.is_image_name(path) and path not in raw.listed_paths:
                name_note = "" if is_valid_name(path) else " (and its name is not valid UTF-8)"
                problems.add(
                    "unlabeled_image",
                    file=path,
                    reason=f"image is not listed in any label row, so it has no label{name_note}",
                )


def _exclude_links_out_of_root(
    samples: pd.DataFrame, problems: ProblemLog, *, root: Path
) -> pd.DataFrame:
    """Samples whose image lies inside the root by name but is a link (or under one) to outside.

    Paths that leave the root by name were refused by the layout reader (or allowed
    with `allow_outside_root`); this catches the ones only the file system knows about.
    """
    lexical_root = os.path.normpath(root)
    real_root = os.path.realpath(root)
    real_dirs: dict[str, str] = {}
    keep = []
    columns = zip(
        samples["sample_id"], samples["path"], samples["_file"], samples["_row"], strict=True
    )
    for sample_id, path, file, row in columns:
        path = os.path.normpath(str(path))
        real = _real_path(path, real_dirs) if _is_under(path, lexical_root) else None
        escapes = real is not None and not _is_under(real, real_root)
        keep.append(not escapes)
        if escapes:
            problems.add(
                "path_escapes_root",
                file=file,
                row=_row_or_none(row),
                sample_id=sample_id,
                reason=f"image {display_path(path, root)} is a symbolic link (or lies in a linked"
                f" folder) that leads to {real}, outside the dataset folder {root}; it was"
                " not read",
                fix="copy the image into the dataset folder instead of linking to it, or pass"
                " follow_links / --follow-links to read linked files",
            )
    return samples if all(keep) else samples.loc[keep]


def _is_under(path: str, root: str) -> bool:
    """`_common.is_inside` for normalised absolute paths as a prefix test.

    Same answer (`/a/bc` is not under `/a/b`) at a fraction of the cost: this runs twice
    per image, and `os.path.commonpath` was a fifth of reading a 100k-image AffectNet.
    """
    return path == root or path.startswith(root if root.endswith(os.sep) else root + os.sep)


def _real_path(path: str, real_dirs: dict[str, str]) -> str | None:
    """`os.path.realpath(path)`, its folder part cached (one lstat per file); None if invalid."""
    folder, name = os.path.split(path)
    try:
        if folder not in real_dirs:
            real_dirs[folder] = os.path.realpath(folder)
        if os.path.islink(path):
            return os.path.realpath(path)
    except (OSError, ValueError):  # a NUL byte, a name too long: the file check reports it
        return None
    return os.path.join(real_dirs[folder], name)


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
    """Existence (always) and a full decode (when `verify`); failing rows become problems."""
    paths = samples["path"].tolist()
    if verify:
        results = images.check_images(
            paths,
            boxes=_boxes(samples),
            max_pixels=max_pixels,
            workers=workers,
            progress=progress,
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
            # a missing image or a bad face box is fixed in the label file; a broken image in itself
            file=file if kind in _ROW_KINDS else path,
            row=_row_or_none(row),
            sample_id=sample_id,
            reason=reason.replace(path, display_path(path, root)),
        )
    return samples.loc[keep]


def _boxes(samples: pd.DataFrame) -> list[tuple[int, int, int, int] | None] | None:
    """Per sample, the face box the cache will crop (None = whole image); None without boxes."""
    if not set(_BOX_COLUMNS) <= set(samples.columns):
        return None
    values = samples[_BOX_COLUMNS].to_numpy(dtype="float64", na_value=float("nan"))
    return [None if pd.isna(v).any() else tuple(int(x) for x in v) for v in values]


def _row_or_none(value: object) -> int | None:
    return None if value is None or pd.isna(value) else int(value)
