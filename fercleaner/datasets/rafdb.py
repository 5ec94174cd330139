"""RAF-DB basic: `EmoLabel/list_patition_label.txt` (1-based codes) + aligned or original JPEGs.

Images come from `Image/aligned/<stem>_aligned.jpg` when that folder exists, else
`Image/original/<name>`. The optional `EmoLabel/distribution.txt` (7 probabilities in
RAF-DB code order) becomes `label_distribution` over `Dataset.classes` (canonical order);
a line that is not an image name and 7 finite non-negative numbers with a positive sum
is an `invalid_votes` problem, and its sample has no distribution; a file that is not
UTF-8 is one such problem and is left out whole, as if absent (the labels still read).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from fercleaner.classes import CANONICAL_CLASSES, RAFDB_CODES
from fercleaner.datasets._common import build_samples, join_inside, open_text, parse_int
from fercleaner.datasets.problems import ProblemLog
from fercleaner.datasets.registry import (
    Detection,
    LayoutRead,
    LayoutSpec,
    ReadOptions,
    register_layout,
)
from fercleaner.errors import DatasetError

LABEL_FILE = Path("EmoLabel") / "list_patition_label.txt"
DISTRIBUTION_FILE = Path("EmoLabel") / "distribution.txt"
ALIGNED_DIR = Path("Image") / "aligned"
ORIGINAL_DIR = Path("Image") / "original"
CLASSES: list[str] = [c for c in CANONICAL_CLASSES if c in RAFDB_CODES.values()]
# distribution.txt column j (code j+1) -> position in CLASSES
_CODE_ORDER = [CLASSES.index(RAFDB_CODES[code]) for code in sorted(RAFDB_CODES)]
COLUMNS = ["sample_id", "path", "split", "given_label", "_file", "_row"]


def detect(path: Path) -> Detection:
    """Matches a folder holding EmoLabel/list_patition_label.txt."""
    if not path.is_dir():
        return Detection(False, f"{path.name} is a file; RAF-DB is a folder")
    if not (path / LABEL_FILE).is_file():
        return Detection(False, f"looked for {LABEL_FILE.as_posix()}; not found")
    images = ALIGNED_DIR if (path / ALIGNED_DIR).is_dir() else ORIGINAL_DIR
    extra = " and EmoLabel/distribution.txt" if (path / DISTRIBUTION_FILE).is_file() else ""
    return Detection(
        True,
        f"found {LABEL_FILE.as_posix()}{extra}; images from {images.as_posix()}/",
        root=path,
        source=path,
    )


def image_relative_path(name: str, *, aligned: bool) -> str:
    """'train_00001.jpg' -> 'Image/aligned/train_00001_aligned.jpg' (or Image/original/...)."""
    if aligned:
        stem, dot, ext = name.rpartition(".")
        stem, ext = (stem, ext) if dot else (name, "jpg")
        return f"{ALIGNED_DIR.as_posix()}/{stem}_aligned.{ext}"
    return f"{ORIGINAL_DIR.as_posix()}/{name}"


def read(source: Path, root: Path, options: ReadOptions, problems: ProblemLog) -> LayoutRead:
    """Read the partition file; split from the name prefix (train_/test_)."""
    aligned = (root / ALIGNED_DIR).is_dir()
    label_file = root / LABEL_FILE
    distribution = _read_distribution(root / DISTRIBUTION_FILE, root, aligned, problems)
    rows: list[dict] = []
    listed: set[str] = set()
    rows_listed = 0
    with open_text(label_file) as fh:
        for line, text in enumerate(fh, start=1):
            fields = text.split()
            if not fields:
                continue
            rows_listed += 1
            record = _read_row(
                fields,
                line=line,
                label_file=label_file,
                root=root,
                aligned=aligned,
                options=options,
                problems=problems,
                listed=listed,
            )
            if record is None:
                continue
            if distribution is not None:
                record["label_distribution"] = distribution.get(fields[0])
            rows.append(record)
    columns = COLUMNS[:-2] + (["label_distribution"] if distribution is not None else [])
    notes = []
    if distribution is not None:
        missing = sum(r["label_distribution"] is None for r in rows)
        notes.append(f"label_distribution for {len(rows) - missing} samples ({missing} without)")
    return LayoutRead(
        samples=build_samples(rows, columns + COLUMNS[-2:]),
        rows_listed=rows_listed,
        classes=list(CLASSES),
        scan_dirs=[root / (ALIGNED_DIR if aligned else ORIGINAL_DIR)],
        listed_paths=listed,
        notes=notes,
    )


def _read_row(
    fields: list[str],
    *,
    line: int,
    label_file: Path,
    root: Path,
    aligned: bool,
    options: ReadOptions,
    problems: ProblemLog,
    listed: set[str],
) -> dict | None:
    def bad(kind: str, reason: str, sample_id: str | None = None) -> None:
        problems.add(kind, file=label_file, row=line, sample_id=sample_id, reason=reason)

    name = fields[0]
    image_path, sample_id, escapes = join_inside(root, image_relative_path(name, aligned=aligned))
    listed.add(image_path)  # even a malformed row names its image: it is not unlabeled
    if len(fields) != 2:
        bad(
            "malformed_row",
            f"expected '<image name> <code>', found {len(fields)} fields",
            sample_id,
        )
        return None
    code_text = fields[1]
    if escapes and not options.allow_outside_root:
        bad("path_escapes_root", f"image name {name!r} leaves the dataset folder", sample_id)
        return None
    prefix = name.split("_", 1)[0].lower()
    if prefix not in ("train", "test"):
        bad(
            "malformed_row",
            f"cannot tell the split of {name!r}: it must start with train_ or test_",
            sample_id,
        )
        return None
    code = parse_int(code_text)
    if code is None:
        bad("malformed_row", f"label {code_text!r} is not a whole number", sample_id)
        return None
    if code not in RAFDB_CODES:
        bad("unknown_label", f"label code {code} is not a RAF-DB code (1-7)", sample_id)
        return None
    return {
        "sample_id": sample_id,
        "path": str(image_path),
        "split": prefix,
        "given_label": RAFDB_CODES[code],
        "_file": label_file,
        "_row": line,
    }


def _read_distribution(
    path: Path, root: Path, aligned: bool, problems: ProblemLog
) -> dict[str, np.ndarray] | None:
    """name -> float32 distribution over CLASSES; None without the (optional) file.

    A line that cannot be a distribution (wrong field count, text, NaN, a negative value,
    all zeros) is an `invalid_votes` problem: its sample keeps its label but gets no
    distribution, rather than one shifted or made up.
    """
    if not path.is_file():
        return None
    try:
        return _distribution_table(path, root, aligned, problems)
    except DatasetError as exc:  # not UTF-8: the file is optional, the labels still read
        problems.add(
            "invalid_votes",
            file=path,
            reason=f"{exc}; no sample has a label_distribution",
            fix="re-save the file as UTF-8, or delete it to use the labels alone",
        )
        return None


def _distribution_table(
    path: Path, root: Path, aligned: bool, problems: ProblemLog
) -> dict[str, np.ndarray]:
    table: dict[str, np.ndarray] = {}
    with open_text(path) as fh:
        for line, text in enumerate(fh, start=1):
            fields = text.split()
            if not fields:
                continue
            name = fields[0]
            stem, dot, ext = name.rpartition(".")
            label_name = (
                f"{stem[: -len('_aligned')]}{dot}{ext}" if stem.endswith("_aligned") else name
            )
            reason = _distribution_problem(fields[1:])
            if reason is not None:
                _, sample_id, escapes = join_inside(
                    root, image_relative_path(label_name, aligned=aligned)
                )
                problems.add(
                    "invalid_votes",
                    file=path,
                    row=line,
                    sample_id=None if escapes else sample_id,
                    reason=f"the distribution of {name!r} is unusable: {reason}; that"
                    " sample has no label_distribution",
                    fix="fix the line: the image name and 7 non-negative numbers (RAF-DB code"
                    " order 1-7), or delete it",
                )
                continue
            probs = np.zeros(len(CLASSES), dtype=np.float32)
            probs[_CODE_ORDER] = [float(v) for v in fields[1:]]
            table[name] = probs
            table[label_name] = probs  # aligned names are accepted too
    return table


def _distribution_problem(values: list[str]) -> str | None:
    """Why `values` are not 7 finite non-negative numbers with a positive sum (None: they are)."""
    if len(values) != len(_CODE_ORDER):
        return f"expected {len(_CODE_ORDER)} numbers after the name, found {len(values)}"
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        return f"{' '.join(values)!r} are not all numbers"
    if not all(math.isfinite(v) and v >= 0 for v in numbers) or sum(numbers) <= 0:
        return f"{' '.join(values)} are not finite numbers >= 0 with a positive sum"
    return None


SPEC = register_layout(
    LayoutSpec(
        name="rafdb",
        description="EmoLabel/list_patition_label.txt (1-based codes) + Image/aligned|original",
        detect=detect,
        read=read,
        priority=30,
    )
)
