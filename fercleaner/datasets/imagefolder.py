"""Class-per-folder images: `<root>/<split>/<class>/<file>` or `<root>/<class>/<file>` (all train).

Split folders accept train/training, val/valid/validation, test/testing; class folders
any spelling `classes.normalize_label` accepts. Every file in a class folder is a label
row (a non-image there is a `not_an_image` problem); images outside any class folder are
`unlabeled_image` problems; files in a folder whose name is no class are `unknown_label`.
"""

from __future__ import annotations

import os
from pathlib import Path

from fercleaner.classes import dataset_classes, normalize_label
from fercleaner.datasets._common import build_samples, is_junk, normalize_split
from fercleaner.datasets.images import is_image_name
from fercleaner.datasets.problems import ProblemLog
from fercleaner.datasets.registry import (
    Detection,
    LayoutRead,
    LayoutSpec,
    ReadOptions,
    register_layout,
)
from fercleaner.errors import UnknownLabelError

COLUMNS = ["sample_id", "path", "split", "given_label", "_file", "_row"]


def _subdirs(path: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(path) if e.is_dir() and not is_junk(e.name))


def _class_name(name: str) -> str | None:
    try:
        return normalize_label(name)
    except UnknownLabelError:
        return None


def _split_dirs(path: Path) -> list[str]:
    """Split folders (train/, valid/, ...) that hold at least one class folder."""
    return [
        name
        for name in _subdirs(path)
        if normalize_split(name) and any(_class_name(c) for c in _subdirs(path / name))
    ]


def detect(path: Path) -> Detection:
    """Matches class folders at the root, or under train/val/test split folders."""
    if not path.is_dir():
        return Detection(False, f"{path.name} is a file; imagefolder is a folder")
    splits = _split_dirs(path)
    if splits:
        classes = sorted({c for s in splits for c in _subdirs(path / s) if _class_name(c)})
        return Detection(
            True,
            f"split folders {', '.join(s + '/' for s in splits)} hold class folders"
            f" {', '.join(classes)}",
            root=path,
            source=path,
        )
    subdirs = _subdirs(path)
    classes = [name for name in subdirs if _class_name(name)]
    if classes:
        return Detection(
            True,
            f"class folders {', '.join(c + '/' for c in classes)} at the root"
            " (all samples are train)",
            root=path,
            source=path,
        )
    seen = ", ".join(s + "/" for s in subdirs[:8]) or "no subfolders"
    return Detection(
        False,
        "looked for class folders (happy/, angry/, ...) at the root or under"
        f" train/ val/ test/; found {seen}",
    )


def read(source: Path, root: Path, options: ReadOptions, problems: ProblemLog) -> LayoutRead:
    """Walk split and class folders in sorted order (deterministic row order)."""
    state = _Walk(root=root, problems=problems)
    split_names = _split_dirs(root)
    if split_names:
        for entry in sorted(os.scandir(root), key=lambda e: e.name):
            if is_junk(entry.name):
                continue
            split = normalize_split(entry.name) if entry.is_dir() else None
            if entry.is_dir() and split is not None:
                state.read_split(Path(entry.path), split)
            elif entry.is_dir():
                state.unlabeled_tree(
                    Path(entry.path),
                    f"folder {entry.name}/ is not a split folder (train/, val/, test/)",
                )
            else:
                state.unlabeled_file(
                    entry.path, "image lies at the root, outside the split folders"
                )
    else:
        state.read_split(root, "train")
    return LayoutRead(
        samples=build_samples(state.rows, COLUMNS),
        rows_listed=state.rows_listed,
        classes=dataset_classes(state.labels),
    )


class _Walk:
    """Accumulates rows and problems while walking the folders."""

    def __init__(self, *, root: Path, problems: ProblemLog) -> None:
        self.root = root
        self.problems = problems
        self.rows: list[dict] = []
        self.rows_listed = 0
        self.labels: set[str] = set()

    def read_split(self, folder: Path, split: str) -> None:
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if is_junk(entry.name):
                continue
            if entry.is_dir():
                self.read_class(Path(entry.path), split)
            else:
                self.unlabeled_file(entry.path, "image is not inside a class folder")

    def read_class(self, folder: Path, split: str) -> None:
        label = _class_name(folder.name)
        if label is not None:
            self.labels.add(label)
        for path in _files(folder):
            self.rows_listed += 1
            sample_id = Path(path).relative_to(self.root).as_posix()
            if label is None:
                self.problems.add(
                    "unknown_label",
                    file=path,
                    sample_id=sample_id,
                    reason=f"folder name {folder.name!r} is not an expression class",
                    fix="rename the folder to a class name (neutral, happiness, surprise,"
                    " sadness, anger, disgust, fear, contempt or a common spelling) or move the"
                    " images out",
                )
                continue
            self.rows.append(
                {
                    "sample_id": sample_id,
                    "path": path,
                    "split": split,
                    "given_label": label,
                    "_file": path,
                    "_row": None,
                }
            )

    def unlabeled_tree(self, folder: Path, reason: str) -> None:
        for path in _files(folder):
            self.unlabeled_file(path, reason)

    def unlabeled_file(self, path: str, reason: str) -> None:
        if is_image_name(path):
            self.problems.add("unlabeled_image", file=path, reason=reason)


def _files(folder: Path) -> list[str]:
    """Every non-junk file under `folder`, recursively, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not is_junk(d))
        found.extend(os.path.join(dirpath, n) for n in sorted(filenames) if not is_junk(n))
    return found


SPEC = register_layout(
    LayoutSpec(
        name="imagefolder",
        description="<split>/<class>/<image> or <class>/<image> folders",
        detect=detect,
        read=read,
        priority=90,
    )
)
