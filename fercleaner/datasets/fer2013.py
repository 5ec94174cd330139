"""FER2013: `fer2013.csv` (emotion, pixels, Usage) with optional FER+ votes from `fer2013new.csv`.

Pixels stay in the table as a string (48x48 grey values); sample ids are
`fer2013.csv#<r>` with r the 0-based data row. `fer2013new.csv` is joined by row
position (its votes are added, the given label stays FER2013's `emotion`), so it is
checked before any vote is attached: the same number of rows, the same Usage on every
row, and image names (`fer0000123.png`) that never run ahead of their row. A failed
check is a `votes_misaligned` problem and no vote past the point where the files part
is attached (none when that point cannot be located); a vote row that is not 10 whole
numbers summing to 1..10 is an `invalid_votes` problem for its sample.
"""

from __future__ import annotations

import csv
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fercleaner.classes import CANONICAL_CLASSES, FER2013_CODES, FERPLUS_VOTE_COLUMNS
from fercleaner.datasets._common import (
    build_samples,
    csv_rows,
    open_text,
    parse_int,
    read_header,
)
from fercleaner.datasets.ferplus import MAX_VOTES
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
#: FER+ image names end in a number that follows the row (it lags behind after dropped rows).
_IMAGE_NUMBER = re.compile(r"^[A-Za-z_-]*(\d{1,9})\.png$", re.IGNORECASE)


def detect(path: Path) -> Detection:
    """Match fer2013.csv (or a folder holding it) with an emotion,pixels,Usage header."""
    csv_path = path if path.is_file() else path / FILE_NAME
    if path.is_file() and path.name != FILE_NAME:
        return Detection(False, f"looked for a file named {FILE_NAME}; got {path.name}")
    if not csv_path.is_file():
        return Detection(False, f"looked for {FILE_NAME}; not found")
    try:
        header = _read_header(csv_path)
    except DatasetError as exc:  # not UTF-8: say so rather than show a garbled header
        return Detection(False, str(exc))
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
    """The first row of `path`, stripped; [] when it cannot be read or parsed."""
    try:
        return read_header(path)
    except (OSError, csv.Error):
        return []


def read(source: Path, root: Path, options: ReadOptions, problems: ProblemLog) -> LayoutRead:
    """Read fer2013.csv row by row; join fer2013new.csv votes by row position once it checks out."""
    votes_path = root / VOTES_FILE_NAME
    votes = _read_votes(votes_path, problems) if votes_path.is_file() else None
    rows: list[dict] = []
    usages: list[str | None] = []  # per data row, for the alignment check
    rows_listed = 0
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
            usage_at = index["Usage"]
            usages.append(
                fields[usage_at].strip()
                if isinstance(fields, list) and usage_at < len(fields)
                else None
            )
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
            if record is not None:
                rows.append(record)
    notes = []
    classes = sorted(set(FER2013_CODES.values()), key=CANONICAL_CLASSES.index)
    if votes is not None:
        classes = list(CANONICAL_CLASSES)  # votes include contempt
        trusted = _check_alignment(votes, usages, votes_path, problems)
        for record in rows:
            r = int(record["sample_id"].rsplit("#", 1)[1])
            entry = votes[r] if r < trusted else None
            if entry is not None and entry.counts is None:
                problems.add(
                    "invalid_votes",
                    file=votes_path,
                    row=entry.line,
                    sample_id=record["sample_id"],
                    reason=f"the vote row for {record['sample_id']} is unusable: {entry.reason}",
                )
            record.update(_vote_fields(entry))
        missing = sum(r["votes"] is None for r in rows)
        notes.append(
            f"{VOTES_FILE_NAME}: {len(votes)} vote rows joined by position"
            f" ({trusted:,} rows checked out); {missing} samples have no votes (null)"
        )
    columns = COLUMNS[:-2] + (VOTE_COLUMNS if votes is not None else []) + COLUMNS[-2:]
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


@dataclass(frozen=True)
class _VoteRow:
    """One fer2013new.csv data row: where it is, its Usage and name, its counts or why not."""

    line: int
    usage: str | None
    name: str
    counts: list[int] | None
    reason: str = ""


def _read_votes(path: Path, problems: ProblemLog) -> list[_VoteRow] | None:
    """fer2013new.csv, one `_VoteRow` per data row; None (and a problem) when it is unusable."""

    def unusable(reason: str, line: int | None = None) -> None:
        problems.add("votes_misaligned", file=path, row=line, reason=reason + "; no votes attached")

    try:
        with open_text(path) as fh:
            rows_iter = csv_rows(fh)
            first_line, first = next(rows_iter, (1, []))
            header = [h.strip() for h in first] if isinstance(first, list) else []
            if header != _VOTES_HEADER:
                unusable(f"the header is {header[:12]}, not {','.join(_VOTES_HEADER)}", first_line)
                return None
            return [_vote_row(line, fields) for line, fields in rows_iter]
    except OSError as exc:
        unusable(f"{VOTES_FILE_NAME} cannot be read: {exc.strerror or exc}")
        return None
    except DatasetError as exc:  # not UTF-8: the votes are optional, the pixels still read
        unusable(str(exc))
        return None


def _vote_row(line: int, fields: list[str] | str) -> _VoteRow:
    if isinstance(fields, str):
        return _VoteRow(line, None, "", None, fields)
    usage = fields[0].strip()
    name = fields[1].strip() if len(fields) > 1 else ""
    if len(fields) != len(_VOTES_HEADER):
        reason = f"expected {len(_VOTES_HEADER)} fields, found {len(fields)}"
        return _VoteRow(line, usage, name, None, reason)
    counts = [parse_int(f) for f in fields[2:]]
    if any(c is None or c < 0 for c in counts):
        return _VoteRow(line, usage, name, None, f"counts {fields[2:]} are not whole numbers >= 0")
    total = sum(counts)  # type: ignore[arg-type]
    if not 1 <= total <= MAX_VOTES:
        reason = f"the 10 counts sum to {total}; FER+ votes sum to 1..{MAX_VOTES} (10 taggers)"
        return _VoteRow(line, usage, name, None, reason)
    return _VoteRow(line, usage, name, counts)  # type: ignore[arg-type]


def _check_alignment(
    votes: list[_VoteRow], usages: list[str | None], path: Path, problems: ProblemLog
) -> int:
    """How many leading fer2013.csv rows may take the vote row at the same position.

    Each failed check is a `votes_misaligned` problem. A name that runs ahead of its row
    locates a deleted vote row: rows before it still line up. A Usage mismatch or a
    row-count difference proves the files part somewhere but not where, so no row is
    trusted, unless the names cover the file and each equals its row number (then any
    missing row would show, so the shorter file was cut at its end).
    """

    def misaligned(reason: str, entry: _VoteRow | None = None, r: int | None = None) -> None:
        problems.add(
            "votes_misaligned",
            file=path,
            row=None if entry is None else entry.line,
            sample_id=None if r is None else f"{FILE_NAME}#{r}",
            reason=reason,
        )

    n = min(len(votes), len(usages))
    numbers = [_image_number(v.name) for v in votes[:n]]
    shift = _name_shift(numbers)
    if shift is not None:
        misaligned(
            f"the vote row at position {shift} is named {votes[shift].name}, ahead of its row:"
            " a vote row above it is missing, so it and every later one describe another image; "
            + (
                f"votes attached to fer2013.csv rows 0-{shift - 1} only"
                if shift
                else "no votes attached"
            ),
            votes[shift],
            shift,
        )
    trusted = n if shift is None else shift
    wrong_usage = next(
        (r for r in range(trusted) if usages[r] is not None and votes[r].usage != usages[r]), None
    )
    if wrong_usage is not None:
        misaligned(
            f"fer2013.csv row {wrong_usage} is {usages[wrong_usage]!r} but its vote row says"
            f" Usage {votes[wrong_usage].usage!r}: the files are out of step somewhere above it;"
            " no votes attached",
            votes[wrong_usage],
            wrong_usage,
        )
        trusted = 0
    if len(votes) != len(usages):
        named = [(r, x) for r, x in enumerate(numbers) if x is not None]
        exact = len(named) * 2 >= max(n, 1) and all(x == r for r, x in named)
        cut_short = shift is None and wrong_usage is None and exact
        misaligned(
            f"{VOTES_FILE_NAME} has {len(votes):,} vote rows but {FILE_NAME} has {len(usages):,}"
            " data rows; they are joined by position, so a missing or extra row misplaces every"
            " later vote. "
            + (
                f"The image names equal their row numbers, so the first {n:,} rows line up and"
                " keep their votes"
                if cut_short
                else "Nothing shows where they part, so no votes are attached"
                if shift is None
                else "See the row where the names part"
            )
        )
        if not cut_short and shift is None:
            trusted = 0
    return trusted


def _image_number(name: str) -> int | None:
    match = _IMAGE_NUMBER.match(name)
    return None if match is None else int(match.group(1))


def _name_shift(numbers: list[int | None]) -> int | None:
    """The first row whose image number runs ahead of the row count for good, or None.

    Numbering starts at 0 on row 0; in sequence, the number grows by at least 1 and at
    most the rows since the last in-sequence name (FER+ skips the numbers of dropped
    images, so it may lag, never lead). A name out
    of sequence that the next named row does not follow is one odd name, not a shift: the
    real fer2013new.csv has three (two far ahead, one far behind).
    """
    named = [(r, x) for r, x in enumerate(numbers) if x is not None]
    r0, x0 = -1, -1  # numbering starts at row 0 (fer0000000.png)
    for i in range(len(named)):
        r1, x1 = named[i]
        if 0 < x1 - x0 <= r1 - r0:
            r0, x0 = r1, x1
            continue
        if x1 - x0 <= 0:
            continue  # behind: an odd name (or an extra row, which the row count catches)
        following = named[i + 1] if i + 1 < len(named) else None
        if following is not None and 0 < following[1] - x0 <= following[0] - r0:
            continue  # ahead once, then back in sequence: an odd name
        return r1
    return None


def _vote_fields(entry: _VoteRow | None) -> dict:
    if entry is None or entry.counts is None:
        return {"votes": None, "votes_unknown": None, "votes_nf": None}
    counts = entry.counts
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
