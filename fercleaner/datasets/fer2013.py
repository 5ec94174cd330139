"""FER2013: `fer2013.csv` (emotion, pixels, Usage), optionally with FER+ votes from `fer2013new.csv`.

Pixels stay in the table as a string (48x48 grey values); sample ids are
`fer2013.csv#<r>` with r the 0-based data row. `fer2013new.csv` is row-aligned with
fer2013.csv; its votes are added but the given label stays FER2013's `emotion`.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np

from fercleaner.classes import CANONICAL_CLASSES, FER2013_CODES, FERPLUS_VOTE_COLUMNS
from fercleaner.datasets._common import build_samples, csv_rows, open_text, parse_int
from fercleaner.datasets.problems import ProblemLog
from fercleaner.datasets.registry import (
    Detection,
    LayoutRead,
    LayoutSpec,
    ReadOptions,
    register_layout,
)
from fercleaner.errors import DatasetError

FILE_NAME = "fer2013.csv"
VOTES_FILE_NAME = "fer2013new.csv"
USAGE_SPLITS: dict[str, str] = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
_REQUIRED = ("emotion", "pixels", "Usage")
_N_PIXELS = 48 * 48
_VOTES_HEADER = ["Usage", "Image name", *FERPLUS_VOTE_COLUMNS]
COLUMNS = ["sample_id", "path", "split", "given_label", "pixels", "_file", "_row"]
VOTE_COLUMNS = ["votes", "votes_unknown", "votes_nf"]


def detect(path: Path) -> Detection:
    """Matches a folder holding fer2013.csv (or that file itself) with an emotion,pixels,Usage header."""
    csv_path = path if path.is_file() else path / FILE_NAME
    if path.is_file() and path.name != FILE_NAME:
        return Detection(False, f"looked for a file named {FILE_NAME}; got {path.name}")
    if not csv_path.is_file():
        return Detection(False, f"looked for {FILE_NAME}; not found")
    header = _read_header(csv_path)
    if not set(_REQUIRED) <= set(header):
        return Detection(
            False, f"{FILE_NAME} header is {header[:5]}, expected columns emotion, pixels, Usage"
        )
    votes = csv_path.parent / VOTES_FILE_NAME
    extra = f" with FER+ votes from {VOTES_FILE_NAME}" if votes.is_file() else ""
    return Detection(
        True,
        f"found {FILE_NAME} with columns emotion, pixels, Usage{extra}",
        root=csv_path.parent,
        source=csv_path,
    )


def _read_header(path: Path) -> list[str]:
    with open_text(path) as fh:
        return [h.strip() for h in next(csv.reader(fh), [])]


def read(source: Path, root: Path, options: ReadOptions, problems: ProblemLog) -> LayoutRead:
    """Read fer2013.csv row by row; join fer2013new.csv votes by row position when present."""
    votes_path = root / VOTES_FILE_NAME
    votes = _read_votes(votes_path) if votes_path.is_file() else None
    rows: list[dict] = []
    rows_listed = 0
    unaligned = 0
    with open_text(source) as fh:
        rows_iter = csv_rows(fh)
        first = next(rows_iter, (1, []))[1]
        header = [h.strip() for h in first] if isinstance(first, list) else []
        index = {name: header.index(name) for name in _REQUIRED if name in header}
        if len(index) < len(_REQUIRED):
            raise DatasetError(
                f"{source}: header {header[:5]} lacks {sorted(set(_REQUIRED) - set(index))};"
                " expected emotion,pixels,Usage"
            )
        data_row = -1
        for line, fields in rows_iter:
            data_row += 1
            rows_listed += 1
            if isinstance(fields, str):
                sample_id = f"{FILE_NAME}#{data_row}"
                problems.add(
                    "malformed_row", file=source, row=line, sample_id=sample_id, reason=fields
                )
                continue
            record = _read_row(
                fields,
                r=data_row,
                line=line,
                n_fields=len(header),
                index=index,
                source=source,
                problems=problems,
            )
            if record is None:
                continue
            if votes is not None:
                entry = votes[data_row] if data_row < len(votes) else None
                if entry is not None and entry[0] != fields[index["Usage"]].strip():
                    unaligned += 1
                    entry = None
                record.update(_vote_fields(entry))
            rows.append(record)
    columns = COLUMNS[:-2] + (VOTE_COLUMNS if votes is not None else []) + COLUMNS[-2:]
    notes = []
    classes = sorted(set(FER2013_CODES.values()), key=CANONICAL_CLASSES.index)
    if votes is not None:
        classes = list(CANONICAL_CLASSES)  # votes include contempt
        missing = sum(r["votes"] is None for r in rows)
        notes.append(
            f"{VOTES_FILE_NAME}: {len(votes)} vote rows joined by position;"
            f" {missing} samples have no votes (null)"
            + (f", {unaligned} of them because Usage disagreed" if unaligned else "")
        )
    samples = build_samples(rows, columns)
    if votes is not None:  # nullable: rows the votes file does not cover have none
        samples["votes_unknown"] = samples["votes_unknown"].astype("Int64")
        samples["votes_nf"] = samples["votes_nf"].astype("Int64")
    return LayoutRead(
        samples=samples,
        rows_listed=rows_listed,
        classes=classes,
        has_image_files=False,
        notes=notes,
    )


def _read_row(
    fields: list[str],
    *,
    r: int,
    line: int,
    n_fields: int,
    index: dict[str, int],
    source: Path,
    problems: ProblemLog,
) -> dict | None:
    sample_id = f"{FILE_NAME}#{r}"

    def bad(kind: str, reason: str) -> None:
        problems.add(kind, file=source, row=line, sample_id=sample_id, reason=reason)

    if len(fields) != n_fields:
        bad("malformed_row", f"expected {n_fields} fields, found {len(fields)}")
        return None
    code = parse_int(fields[index["emotion"]])
    usage = fields[index["Usage"]].strip()
    pixels = fields[index["pixels"]].strip()
    if code is None:
        bad("malformed_row", f"emotion {fields[index['emotion']]!r} is not a whole number")
        return None
    if code not in FER2013_CODES:
        bad("unknown_label", f"emotion code {code} is not a FER2013 code (0-6)")
        return None
    if usage not in USAGE_SPLITS:
        bad("malformed_row", f"Usage {usage!r} is not Training, PublicTest or PrivateTest")
        return None
    reason = _pixel_problem(pixels)
    if reason is not None:
        bad("malformed_row", reason)
        return None
    return {
        "sample_id": sample_id,
        "path": str(source),
        "split": USAGE_SPLITS[usage],
        "given_label": FER2013_CODES[code],
        "pixels": pixels,
        "_file": source,
        "_row": line,
    }


def _pixel_problem(pixels: str) -> str | None:
    """Why a pixel string is not 2304 grey values in 0-255, or None when it is."""
    try:
        with warnings.catch_warnings():
            # numpy warns (not raises) on trailing garbage; make that an error too
            warnings.simplefilter("error", DeprecationWarning)
            values = np.fromstring(pixels, dtype=np.int64, sep=" ")
    except (ValueError, DeprecationWarning):
        return "pixels must be 2304 space-separated whole numbers; found other text"
    if values.size != _N_PIXELS:
        return f"pixels must be 2304 grey values (48x48); found {values.size}"
    if values.min() < 0 or values.max() > 255:
        return f"pixel values must lie in 0-255; found {values.min()}..{values.max()}"
    return None


def _read_votes(path: Path) -> list[tuple[str, list[int]] | None]:
    """fer2013new.csv as one (Usage, 10 counts) per data row; None where a row is unreadable."""
    with open_text(path) as fh:
        rows_iter = csv_rows(fh)
        first = next(rows_iter, (1, []))[1]
        header = [h.strip() for h in first] if isinstance(first, list) else []
        if header != _VOTES_HEADER:
            raise DatasetError(
                f"{path}: header {header} is not {','.join(_VOTES_HEADER)}; fix or remove the"
                " file (votes are optional)"
            )
        entries: list[tuple[str, list[int]] | None] = []
        for _, fields in rows_iter:
            if isinstance(fields, str):
                entries.append(None)
                continue
            counts = [parse_int(f) for f in fields[2:]] if len(fields) == 12 else [None]
            ok = all(c is not None and c >= 0 for c in counts)
            entries.append((fields[0].strip(), counts) if ok else None)
    return entries


def _vote_fields(entry: tuple[str, list[int]] | None) -> dict:
    if entry is None:
        return {"votes": None, "votes_unknown": None, "votes_nf": None}
    counts = entry[1]
    return {
        "votes": np.asarray(counts[:8], dtype=np.int32),
        "votes_unknown": counts[8],
        "votes_nf": counts[9],
    }


SPEC = register_layout(
    LayoutSpec(
        name="fer2013",
        description="fer2013.csv pixel rows (emotion, pixels, Usage) [+ fer2013new.csv votes]",
        detect=detect,
        read=read,
        priority=20,
    )
)
