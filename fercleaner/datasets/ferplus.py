"""FERPlus: `FER2013Train|Valid|Test/label.csv` (10 crowd votes per image) + the PNGs beside it.

The given label is the plurality emotion vote. Ties among emotions are broken by canonical
class order and marked `label_tie` (the ambiguous faces a cleaner must see). An image whose
plurality over all 10 columns is `unknown` or `NF` (not a face) has no emotion label and
becomes a `no_plurality_emotion` problem; an emotion tied with unknown/NF keeps the emotion.
FER+ asked 10 taggers per image, so a row whose counts sum to more than `MAX_VOTES` is
not FER+ votes (a shifted or hand-edited row) and is a `malformed_row`.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

import numpy as np

from fercleaner.classes import CANONICAL_CLASSES, FERPLUS_VOTE_COLUMNS
from fercleaner.datasets._common import (
    build_samples,
    csv_rows,
    join_inside,
    open_text,
    parse_int,
)
from fercleaner.datasets.problems import ProblemLog
from fercleaner.datasets.registry import (
    Detection,
    LayoutRead,
    LayoutSpec,
    ReadOptions,
    register_layout,
)

#: Split folder -> split, in reading order.
SPLIT_FOLDERS: dict[str, str] = {
    "FER2013Train": "train",
    "FER2013Valid": "val",
    "FER2013Test": "test",
}

_BOX = re.compile(r"^\(?\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\)?$")
#: Taggers per FER+ image: the votes of one row sum to at most this (some rows to 9).
MAX_VOTES = 10
#: Face box coordinates beyond this are no image's (and would overflow int32 columns).
_MAX_BOX = 1_000_000
_N_FIELDS = 2 + len(FERPLUS_VOTE_COLUMNS)
COLUMNS = [
    "sample_id",
    "path",
    "split",
    "given_label",
    "votes",
    "label_tie",
    "votes_unknown",
    "votes_nf",
    "face_x",
    "face_y",
    "face_w",
    "face_h",
    "_file",
    "_row",
]


def detect(path: Path) -> Detection:
    """Matches a folder holding FER2013Train/, FER2013Valid/ or FER2013Test/ with label.csv."""
    if not path.is_dir():
        return Detection(False, f"{path.name} is a file; FERPlus is a folder")
    found = [f"{name}/label.csv" for name in SPLIT_FOLDERS if (path / name / "label.csv").is_file()]
    if not found:
        return Detection(
            False,
            "looked for FER2013Train/label.csv, FER2013Valid/label.csv or FER2013Test/label.csv;"
            " found none",
        )
    return Detection(
        True,
        f"found {', '.join(found)} (FERPlus 10-vote label files)",
        root=path,
        source=path,
    )


def read(source: Path, root: Path, options: ReadOptions, problems: ProblemLog) -> LayoutRead:
    """Read every present split's label.csv; PNGs not listed become `unlabeled_image`."""
    rows: list[dict] = []
    rows_listed = 0
    listed: set[str] = set()
    scan_dirs: list[Path] = []
    for folder, split in SPLIT_FOLDERS.items():
        label_file = root / folder / "label.csv"
        if not label_file.is_file():
            continue
        scan_dirs.append(root / folder)
        with open_text(label_file) as fh:
            for line, fields in csv_rows(fh):
                rows_listed += 1
                if isinstance(fields, str):
                    problems.add("malformed_row", file=label_file, row=line, reason=fields)
                    continue
                record = _read_row(
                    fields,
                    line=line,
                    folder=folder,
                    folder_dir=str(root / folder),
                    split=split,
                    label_file=label_file,
                    root=root,
                    options=options,
                    problems=problems,
                    listed=listed,
                )
                if record is not None:
                    rows.append(record)
    notes = [_no_emotion_note(problems)]
    if rows:
        ties = sum(r["label_tie"] for r in rows)
        notes.append(f"{ties} plurality ties broken by canonical class order (label_tie)")
    return LayoutRead(
        samples=build_samples(rows, COLUMNS),
        rows_listed=rows_listed,
        classes=list(CANONICAL_CLASSES),
        scan_dirs=scan_dirs,
        listed_paths=listed,
        notes=notes,
    )


def _read_row(
    fields: list[str],
    *,
    line: int,
    folder: str,
    folder_dir: str,
    split: str,
    label_file: Path,
    root: Path,
    options: ReadOptions,
    problems: ProblemLog,
    listed: set[str],
) -> dict | None:
    """One label.csv row -> a sample dict, or None after recording its problem."""

    def bad(kind: str, reason: str, sample_id: str | None = None) -> None:
        problems.add(kind, file=label_file, row=line, sample_id=sample_id, reason=reason)

    name = fields[0].strip()
    if not name:
        bad("malformed_row", "the image name (first field) is empty")
        return None
    image_path, relative, escapes = join_inside(folder_dir, name)
    sample_id = posixpath.normpath(f"{folder}/{relative}")
    listed.add(image_path)  # even a malformed row names its image: it is not unlabeled
    if len(fields) != _N_FIELDS:
        bad(
            "malformed_row",
            f"expected {_N_FIELDS} fields (image name, face box, 10 vote counts), "
            f"found {len(fields)}",
            sample_id,
        )
        return None
    if escapes and not options.allow_outside_root:
        bad("path_escapes_root", f"image name {name!r} leaves the {folder} folder", sample_id)
        return None
    box = _BOX.match(fields[1].strip())
    if box is None:
        bad("malformed_row", f"face box {fields[1]!r} is not '(x, y, w, h)'", sample_id)
        return None
    coordinates = [parse_int(v) for v in box.groups()]
    if any(v is None or abs(v) > _MAX_BOX for v in coordinates):
        bad("malformed_row", f"face box {fields[1]!r} has coordinates over {_MAX_BOX:,}", sample_id)
        return None
    counts = [parse_int(f) for f in fields[2:]]
    if any(c is None or c < 0 for c in counts):
        bad("malformed_row", f"vote counts {fields[2:]} are not all whole numbers >= 0", sample_id)
        return None
    if sum(counts) > MAX_VOTES:
        bad(
            "malformed_row",
            f"the 10 vote counts sum to {sum(counts)}; FER+ asked {MAX_VOTES} taggers per image,"
            " so a row sums to at most 10 (is a column shifted?)",
            sample_id,
        )
        return None
    emotion = counts[:8]
    best = max(emotion)
    unknown, not_face = counts[8], counts[9]
    if sum(counts) == 0:
        bad("no_plurality_emotion", "all 10 vote counts are 0", sample_id)
        return None
    if max(unknown, not_face) > best:
        which = "unknown" if unknown >= not_face else "NF (not a face)"
        shown = ", ".join(
            f"{name} {n}" for name, n in zip(FERPLUS_VOTE_COLUMNS, counts, strict=True) if n
        )
        bad("no_plurality_emotion", f"the plurality vote is {which} (votes: {shown})", sample_id)
        return None
    x, y, w, h = coordinates
    return {
        "sample_id": sample_id,
        "path": str(image_path),
        "split": split,
        "given_label": CANONICAL_CLASSES[emotion.index(best)],
        "votes": np.asarray(emotion, dtype=np.int32),
        "label_tie": emotion.count(best) > 1,
        "votes_unknown": unknown,
        "votes_nf": not_face,
        "face_x": x,
        "face_y": y,
        "face_w": w,
        "face_h": h,
        "_file": label_file,
        "_row": line,
    }


def _no_emotion_note(problems: ProblemLog) -> str:
    """'N images have no plurality emotion (unknown: a, NF: b)' for the detection text."""
    reasons = [p.reason for p in problems.items if p.kind == "no_plurality_emotion"]
    unknown = sum("vote is unknown" in r for r in reasons)
    not_face = sum("vote is NF" in r for r in reasons)
    rest = len(reasons) - unknown - not_face
    return (
        f"{len(reasons)} images have no plurality emotion (unknown: {unknown}, NF: {not_face}"
        + (f", no votes: {rest})" if rest else ")")
    )


SPEC = register_layout(
    LayoutSpec(
        name="ferplus",
        description="FER2013Train|Valid|Test/label.csv with 10 crowd votes + PNGs",
        detect=detect,
        read=read,
        priority=10,
    )
)
