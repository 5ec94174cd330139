"""AffectNet: `training.csv` / `validation.csv` manifests: face box, expression, valence, arousal.

Codes 8-10 (None, Uncertain, No-Face) are not emotions: those rows become `excluded_label`
problems. AffectNet writes -2 for "no valence/arousal"; that becomes NaN. Only
subDirectory_filePath and expression are required: without valence/arousal columns
those are NaN, and a manifest without all four face box columns (as shipped with
already-cropped faces) uses its images whole, which the detection text says. A header
with some box columns but not all, or without a required column, is one `DatasetError`
for the file, not a problem per row.
"""

from __future__ import annotations

import csv
import math
import posixpath
from pathlib import Path

from fercleaner.classes import AFFECTNET_CODES, AFFECTNET_EXCLUDED_CODES, CANONICAL_CLASSES
from fercleaner.datasets._common import (
    build_samples,
    csv_rows,
    join_inside,
    open_text,
    parse_int,
    read_header,
)
from fercleaner.datasets.problems import ProblemLog, escape_controls
from fercleaner.datasets.registry import (
    Detection,
    LayoutRead,
    LayoutSpec,
    ReadOptions,
    register_layout,
)
from fercleaner.errors import DatasetError

MANIFESTS: dict[str, str] = {"training.csv": "train", "validation.csv": "val"}
IMAGE_DIR = "Manually_Annotated_Images"
HEADER = [
    "subDirectory_filePath",
    "face_x",
    "face_y",
    "face_width",
    "face_height",
    "facial_landmarks",
    "expression",
    "valence",
    "arousal",
]
REQUIRED = ("subDirectory_filePath", "expression")
#: Manifest face box column -> sample table column.
BOX_COLUMNS = {
    "face_x": "face_x",
    "face_y": "face_y",
    "face_width": "face_w",
    "face_height": "face_h",
}
_NO_VALUE = -2.0
#: Face box coordinates beyond this are no image's (and would overflow int32 columns).
_MAX_BOX = 1_000_000
COLUMNS = [
    "sample_id",
    "path",
    "split",
    "given_label",
    "valence",
    "arousal",
    "face_x",
    "face_y",
    "face_w",
    "face_h",
    "_file",
    "_row",
]


def detect(path: Path) -> Detection:
    """Matches a folder holding training.csv or validation.csv with AffectNet's header."""
    if not path.is_dir():
        return Detection(False, f"{path.name} is a file; AffectNet is a folder")
    found = []
    unreadable = []
    for name in MANIFESTS:
        manifest = path / name
        if manifest.is_file():
            try:
                header = read_header(manifest)
            except (OSError, csv.Error, DatasetError) as exc:
                unreadable.append(f"{name} ({getattr(exc, 'strerror', None) or exc})")
                continue
            if "subDirectory_filePath" in header and "expression" in header:
                found.append(name)
    if not found:
        cannot = f" (cannot read {', '.join(unreadable)})" if unreadable else ""
        return Detection(
            False,
            "looked for training.csv or validation.csv with columns subDirectory_filePath,"
            f" expression, ...; found none{cannot}",
        )
    images = f"{IMAGE_DIR}/" if (path / IMAGE_DIR).is_dir() else "the dataset folder"
    return Detection(
        True,
        f"found {', '.join(found)} (AffectNet manifests); images under {images}",
        root=path,
        source=path,
    )


def read(source: Path, root: Path, options: ReadOptions, problems: ProblemLog) -> LayoutRead:
    """Read both manifests; images under Manually_Annotated_Images/ must each be listed."""
    import pandas as pd

    image_root = root / IMAGE_DIR if (root / IMAGE_DIR).is_dir() else root
    # one list per column, not a dict per row: a million 12-key dicts alone took ~1 GB
    columns: dict[str, list] = {column: [] for column in COLUMNS}
    listed: set[str] = set()
    rows_listed = 0
    whole = []  # manifests without face boxes
    for name, split in MANIFESTS.items():
        manifest = root / name
        if not manifest.is_file():
            continue
        with open_text(manifest) as fh:
            rows_iter = csv_rows(fh)
            first = next(rows_iter, None)
            if first is None:  # an empty file: no rows to read
                continue
            index = _column_index(first[1], manifest)
            if not BOX_COLUMNS.keys() & index.keys():
                whole.append(name)
            for line, fields in rows_iter:
                rows_listed += 1
                if isinstance(fields, str):
                    problems.add("malformed_row", file=manifest, row=line, reason=fields)
                    continue
                record = _read_row(
                    fields,
                    line=line,
                    n_fields=len(first[1]),
                    index=index,
                    manifest=manifest,
                    split=split,
                    root=root,
                    image_root=image_root,
                    options=options,
                    problems=problems,
                    listed=listed,
                )
                if record is not None:
                    for column, values in columns.items():
                        values.append(record[column])
    if whole and all(v is None for v in columns["face_x"]):  # no box anywhere: no box columns
        for column in BOX_COLUMNS.values():
            del columns[column]
    names = list(columns)
    samples = build_samples([], names) if not columns["sample_id"] else pd.DataFrame(columns)
    samples["_row"] = samples["_row"].astype(object)
    notes = [
        f"{', '.join(whole)} {'has' if len(whole) == 1 else 'have'} no face box columns"
        f" ({', '.join(BOX_COLUMNS)}): {'its' if len(whole) == 1 else 'their'} images are"
        " used whole"
    ]
    return LayoutRead(
        samples=samples,
        rows_listed=rows_listed,
        classes=[c for c in CANONICAL_CLASSES if c in AFFECTNET_CODES.values()],
        scan_dirs=[image_root] if image_root != root else [],
        listed_paths=listed,
        notes=notes if whole else [],
    )


def _column_index(first: list[str] | str, manifest: Path) -> dict[str, int]:
    """{column: position} of the known columns of a manifest's header (`first`: its fields,
    or why the line is no CSV row).

    Raises:
        DatasetError: a required column is missing, or some face box columns but not all
            (a box cannot be guessed, and a header fault would make every row malformed).
    """
    if isinstance(first, str):
        raise DatasetError(f"{manifest}: the header line cannot be read ({first}); fix it")
    header = [h.strip() for h in first]
    index = {column: header.index(column) for column in HEADER if column in header}
    missing = [c for c in REQUIRED if c not in index]
    boxes = [c for c in BOX_COLUMNS if c in index]
    if boxes:
        missing += [c for c in BOX_COLUMNS if c not in index]
    if missing:
        raise DatasetError(
            f"{manifest}: the header lacks {', '.join(missing)} (it has"
            f" {escape_controls(', '.join(header[:12]))});"
            f" an AffectNet manifest needs {', '.join(REQUIRED)}, and either all four face box"
            f" columns ({', '.join(BOX_COLUMNS)}) or none (whole images). Fix the header line."
        )
    return index


def _read_row(
    fields: list[str],
    *,
    line: int,
    n_fields: int,
    index: dict[str, int],
    manifest: Path,
    split: str,
    root: Path,
    image_root: Path,
    options: ReadOptions,
    problems: ProblemLog,
    listed: set[str],
) -> dict | None:
    def bad(kind: str, reason: str, sample_id: str | None = None) -> None:
        problems.add(kind, file=manifest, row=line, sample_id=sample_id, reason=reason)

    position = index["subDirectory_filePath"]
    relative = fields[position].strip() if position < len(fields) else ""
    if not relative:
        bad("malformed_row", "subDirectory_filePath is empty")
        return None
    image_path, normal, escapes = join_inside(image_root, relative)
    listed.add(image_path)  # even a malformed row names its image: it is not unlabeled
    prefix = f"{IMAGE_DIR}/" if image_root != root else ""
    sample_id = posixpath.normpath(prefix + normal)
    if len(fields) != n_fields:
        bad("malformed_row", f"expected {n_fields} fields, found {len(fields)}", sample_id)
        return None
    if escapes and not options.allow_outside_root:
        bad("path_escapes_root", f"image path {relative!r} leaves the dataset folder", sample_id)
        return None
    code = parse_int(fields[index["expression"]])
    if code is None:
        bad(
            "malformed_row",
            f"expression {fields[index['expression']]!r} is not a whole number",
            sample_id,
        )
        return None
    if code in AFFECTNET_EXCLUDED_CODES:
        bad(
            "excluded_label",
            f"expression code {code} means {AFFECTNET_EXCLUDED_CODES[code]!r}, not an emotion",
            sample_id,
        )
        return None
    if code not in AFFECTNET_CODES:
        bad("unknown_label", f"expression code {code} is not an AffectNet code (0-10)", sample_id)
        return None
    record = {
        "sample_id": sample_id,
        "path": str(image_path),
        "split": split,
        "given_label": AFFECTNET_CODES[code],
        "_file": manifest,
        "_row": line,
    }
    for column in ("valence", "arousal"):
        value = _affect_value(fields[index[column]]) if column in index else math.nan
        if value is None:
            bad(
                "malformed_row",
                f"{column} {fields[index[column]]!r} is not in [-1, 1] or -2",
                sample_id,
            )
            return None
        record[column] = value
    box = {}
    for source_column, column in BOX_COLUMNS.items():
        if source_column not in index:  # no box columns (checked per header): whole image
            box[column] = None
            continue
        value = parse_int(fields[index[source_column]])
        if value is None or not 0 <= value <= _MAX_BOX:
            bad(
                "malformed_row",
                f"face box field {source_column} is not a whole number in 0..{_MAX_BOX:,}",
                sample_id,
            )
            return None
        box[column] = value
    record.update(box)
    return record


def _affect_value(text: str) -> float | None:
    """Valence/arousal: a number in [-1, 1], NaN for AffectNet's -2 sentinel, None if invalid."""
    try:
        value = float(text)
    except ValueError:
        return None
    if value == _NO_VALUE:
        return math.nan
    return value if -1.0 <= value <= 1.0 else None


SPEC = register_layout(
    LayoutSpec(
        name="affectnet",
        description="training.csv / validation.csv manifests + Manually_Annotated_Images/",
        detect=detect,
        read=read,
        priority=40,
    )
)
