"""The `csv` layout for in-house data: `labels.csv` / `labels.parquet` with path,label[,split].

Paths are relative to the manifest's folder (the dataset root), or absolute paths inside
it; one that leaves it (`..`, an absolute path elsewhere) is a `path_escapes_root`
problem unless `allow_outside_root`. The CSV must be UTF-8 (`_common.open_text`).
Optional `valence`, `arousal` and `au_<id>` columns pass through as floats (they become
training targets): an empty cell or NaN is "no value"; anything else must lie in
[-1, 1] (valence, arousal) or [0, 1] (AU intensity), or the row is a `malformed_row`.

Optional crowd votes: one `votes_<class>` column per class (`votes_happiness`; any
spelling `classes.normalize_label` knows, e.g. `votes_happy`), each a non-negative
finite number: vote counts, or a probability distribution (one annotation spread over
the classes). They become the sample's `votes` (float64 per class over
`Dataset.classes`, which include every class a votes column names). A row whose vote
cells are all empty (or NaN, or all 0) has no votes (null); an empty cell beside filled
ones counts 0; a negative or non-numeric cell is a `malformed_row` naming the column.
FERPlus's non-emotion counts `votes_unknown` and `votes_nf` are ignored; any other
`votes_<name>` that names no class is an error (a typo would lose votes silently).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fercleaner.classes import CANONICAL_CLASSES, dataset_classes, normalize_label
from fercleaner.datasets._common import (
    build_samples,
    csv_rows,
    join_inside,
    normalize_split,
    open_text,
    read_header,
)
from fercleaner.datasets.problems import ProblemLog
from fercleaner.datasets.registry import (
    Detection,
    LayoutRead,
    LayoutSpec,
    ReadOptions,
    register_layout,
)
from fercleaner.errors import DatasetError, UnknownLabelError

MANIFEST_NAMES = ("labels.csv", "labels.parquet")
_AU_COLUMN = re.compile(r"^au_\d+$")
_AFFECT = ("valence", "arousal")
#: Allowed range of each passthrough column (docs/architecture.md, sample table).
_AFFECT_RANGE = (-1.0, 1.0)
_AU_RANGE = (0.0, 1.0)
#: Prefix of the per-class vote columns, and the FERPlus non-emotion counts it ignores.
VOTES_PREFIX = "votes_"
_IGNORED_VOTE_COLUMNS = ("votes_unknown", "votes_nf")


def detect(path: Path) -> Detection:
    """Matches labels.csv / labels.parquet in a folder, or a .csv/.parquet given directly."""
    if path.is_file():
        manifest = path
        if manifest.suffix.lower() not in (".csv", ".parquet"):
            return Detection(False, f"{path.name} is neither a .csv nor a .parquet manifest")
    else:
        candidates = [path / name for name in MANIFEST_NAMES if (path / name).is_file()]
        if not candidates:
            return Detection(False, "looked for labels.csv or labels.parquet; found neither")
        manifest = candidates[0]
    try:
        header = _header(manifest)
    except Exception as exc:  # unreadable parquet/CSV: say so, do not crash detection
        return Detection(False, f"cannot read the header of {manifest.name}: {exc}")
    if not {"path", "label"} <= set(header):
        return Detection(
            False, f"{manifest.name} has columns {header[:6]}; expected path,label[,split]"
        )
    extra = [
        c
        for c in header
        if c in _AFFECT or _AU_COLUMN.match(c) or c == "split" or c.startswith(VOTES_PREFIX)
    ]
    with_extra = f" (+ {', '.join(extra)})" if extra else ""
    return Detection(
        True,
        f"{manifest.name} has columns path, label{with_extra}",
        root=manifest.parent,
        source=manifest,
    )


def _header(manifest: Path) -> list[str]:
    if manifest.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(manifest).names)
    return read_header(manifest)


def _records(manifest: Path) -> Iterator[tuple[int, dict[str, object] | str]]:
    """(row number, {column: value}) per data row, or (row, reason) for a malformed CSV row."""
    if manifest.suffix.lower() == ".parquet":
        import pandas as pd

        frame = pd.read_parquet(manifest)
        yield from enumerate(frame.to_dict("records"), start=1)
        return
    with open_text(manifest) as fh:
        rows_iter = csv_rows(fh)
        first = next(rows_iter, (1, []))[1]
        header = [h.strip() for h in first] if isinstance(first, list) else []
        for line, fields in rows_iter:
            if isinstance(fields, str):
                yield line, fields
            elif len(fields) != len(header):
                yield (
                    line,
                    f"expected {len(header)} fields ({','.join(header)}), found {len(fields)}",
                )
            else:
                yield line, dict(zip(header, fields, strict=True))


def read(source: Path, root: Path, options: ReadOptions, problems: ProblemLog) -> LayoutRead:
    """Read the manifest row by row; label spellings normalise via classes.normalize_label."""
    header = _header(source)
    if not {"path", "label"} <= set(header):
        raise DatasetError(
            f"{source}: columns {header} lack path and label; expected path,label[,split]"
        )
    passthrough = [c for c in header if c in _AFFECT or _AU_COLUMN.match(c)]
    vote_columns = get_vote_columns(header, source)
    votes = ["votes"] if vote_columns else []
    columns = ["sample_id", "path", "split", "given_label", *votes, *passthrough, "_file", "_row"]
    rows: list[dict] = []
    listed: set[str] = set()
    rows_listed = 0
    for line, values in _records(source):
        rows_listed += 1
        if isinstance(values, str):
            problems.add("malformed_row", file=source, row=line, reason=values)
            continue
        record = _read_record(
            values,
            line=line,
            source=source,
            root=root,
            passthrough=passthrough,
            vote_columns=vote_columns,
            options=options,
            problems=problems,
        )
        if record is not None:
            listed.add(record["path"])
            rows.append(record)
    classes = dataset_classes([*(r["given_label"] for r in rows), *vote_columns.values()])
    notes = []
    if vote_columns:
        for record in rows:  # {class: count} -> one value per class of the dataset
            given = record["votes"]
            record["votes"] = (
                None if given is None else np.array([given.get(c, 0.0) for c in classes])
            )
        with_votes = sum(r["votes"] is not None for r in rows)
        notes.append(f"votes for {with_votes} samples ({len(rows) - with_votes} without)")
    return LayoutRead(
        samples=build_samples(rows, columns),
        rows_listed=rows_listed,
        classes=classes,
        listed_paths=listed,
        notes=notes,
    )


def get_vote_columns(header: list[str], source: Path) -> dict[str, str]:
    """{`votes_<class>` column: canonical class} of a manifest header (FERPlus extras left out).

    Raises:
        DatasetError: a votes column names no class, or two name the same class.
    """
    found: dict[str, str] = {}
    for column in header:
        if not column.startswith(VOTES_PREFIX) or column.lower() in _IGNORED_VOTE_COLUMNS:
            continue
        try:
            name = normalize_label(column[len(VOTES_PREFIX) :])
        except UnknownLabelError as exc:
            raise DatasetError(
                f"{source}: column {column!r} names no class ({exc}) Name vote columns"
                f" votes_<class> with classes {', '.join(CANONICAL_CLASSES)}."
            ) from None
        twin = next((c for c, n in found.items() if n == name), None)
        if twin is not None:
            raise DatasetError(
                f"{source}: columns {twin!r} and {column!r} both count votes for {name!r}; keep one"
            )
        found[column] = name
    return found


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _read_record(
    values: dict[str, object],
    *,
    line: int,
    source: Path,
    root: Path,
    passthrough: list[str],
    vote_columns: dict[str, str],
    options: ReadOptions,
    problems: ProblemLog,
) -> dict | None:
    def bad(kind: str, reason: str, sample_id: str | None = None) -> None:
        problems.add(kind, file=source, row=line, sample_id=sample_id, reason=reason)

    relative = _text(values.get("path"))
    if not relative:
        bad("malformed_row", "the path field is empty")
        return None
    image_path, sample_id, escapes = join_inside(root, relative)
    if escapes and not options.allow_outside_root:
        bad(
            "path_escapes_root",
            f"path {relative!r} lies outside the manifest's folder {root}, the dataset root",
            sample_id,
        )
        return None
    label = _text(values.get("label"))
    try:
        given = normalize_label(label)
    except UnknownLabelError as exc:
        bad("unknown_label", str(exc), sample_id)
        return None
    split_text = _text(values.get("split"))
    split = normalize_split(split_text) if split_text else "train"
    if split is None:
        bad("malformed_row", f"split {split_text!r} is not train, val or test", sample_id)
        return None
    record: dict[str, object] = {
        "sample_id": sample_id,
        "path": str(image_path),
        "split": split,
        "given_label": given,
        "_file": source,
        "_row": line,
    }
    for column in passthrough:
        text = _text(values.get(column))
        try:
            value = float(text) if text else math.nan
        except ValueError:
            bad("malformed_row", f"{column} {text!r} is not a number", sample_id)
            return None
        low, high = _AFFECT_RANGE if column in _AFFECT else _AU_RANGE
        if not (math.isnan(value) or low <= value <= high):
            bad(
                "malformed_row",
                f"{column} {text!r} is outside [{low:g}, {high:g}] (leave the cell empty for"
                " no value)",
                sample_id,
            )
            return None
        record[column] = value
    if vote_columns:
        votes = _read_votes(values, vote_columns)
        if isinstance(votes, str):
            bad("malformed_row", votes, sample_id)
            return None
        record["votes"] = votes
    return record


def _read_votes(values: dict[str, object], vote_columns: dict[str, str]) -> dict | str | None:
    """{class: votes} of one row, None when it has none, or the reason it is malformed."""
    votes: dict[str, float] = {}
    for column, name in vote_columns.items():
        text = _text(values.get(column))
        try:
            value = float(text) if text else math.nan
        except ValueError:
            return f"{column} {text!r} is not a number (vote counts or probabilities)"
        if math.isnan(value):
            continue
        if not math.isfinite(value) or value < 0:
            return (
                f"{column} {text!r} is not a non-negative finite number (vote counts or"
                " probabilities; leave every vote cell empty for no votes)"
            )
        votes[name] = value
    return votes if sum(votes.values()) > 0 else None


SPEC = register_layout(
    LayoutSpec(
        name="csv",
        description=(
            "labels.csv / labels.parquet with path,label[,split]"
            " (+ valence, arousal, au_*, votes_<class>)"
        ),
        detect=detect,
        read=read,
        priority=50,
    )
)
