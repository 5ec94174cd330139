"""Class-per-folder images: `<root>/<split>/<class>/<file>` or `<root>/<class>/<file>` (all train).

Split folders accept train/training, val/valid/validation, test/testing; class folders
any spelling `classes.normalize_label` accepts. Every file in a class folder is a label
row (a non-image there is a `not_an_image` problem); images outside any class folder are
`unlabeled_image` problems; files in a folder whose name is no class are `unknown_label`.
Hidden images (`.x.png`, or under a dot folder) in a class folder are `hidden_file` rows,
names that are not UTF-8 `invalid_file_name` rows, and a folder linked from outside the
root is one `path_escapes_root` row that is never listed (unless `follow_links`); a
folder that cannot be listed is an `unreadable_folder` problem. Nothing is skipped silently
but OS droppings (Thumbs.db, desktop.ini) and hidden files that are not images.
"""

from __future__ import annotations

import os
from pathlib import Path

from fercleaner.classes import dataset_classes, normalize_label
from fercleaner.datasets._common import (
    JUNK_NAMES,
    build_samples,
    is_folder,
    is_hidden,
    is_inside,
    is_junk,
    normalize_split,
    scan_tree,
)
from fercleaner.datasets.images import is_image_name
from fercleaner.datasets.problems import ProblemLog, display_path, is_valid_name
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
    """Names of the visible subfolders of `path` ([] when it cannot be listed)."""
    try:
        with os.scandir(path) as listing:
            return sorted(e.name for e in listing if is_folder(e) and not is_junk(e.name))
    except OSError:
        return []


def _class_name(name: str) -> str | None:
    try:
        return normalize_label(name)
    except UnknownLabelError:
        return None


def _split_dirs(path: Path) -> list[str]:
    """Split folders (train/, valid/, ...) that hold a class folder or cannot be listed."""
    return [
        name
        for name in _subdirs(path)
        if normalize_split(name)
        and (
            any(_class_name(c) for c in _subdirs(path / name))
            or not os.access(path / name, os.R_OK | os.X_OK)
        )
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
    state = _Walk(root=root, problems=problems, follow_links=options.follow_links)
    if _split_dirs(root):
        for entry in state.entries(root):
            split = normalize_split(entry.name) if entry.is_dir else None
            if entry.is_dir and split is not None and not is_hidden(entry.name):
                state.read_split(entry.path, split)
            elif entry.is_dir:
                what = "a hidden folder" if is_hidden(entry.name) else "not a split folder"
                state.unlabeled_tree(
                    entry.path, f"folder {entry.name}/ is {what} (train/, val/, test/)"
                )
            else:
                state.unlabeled_file(
                    entry.path, "image lies at the root, outside the split folders"
                )
    else:
        state.read_split(str(root), "train")
    return LayoutRead(
        samples=build_samples(state.rows, COLUMNS),
        rows_listed=state.rows_listed,
        classes=dataset_classes(state.labels),
    )


class _Entry:
    """One listed name: its path, and whether it is a folder that may be entered."""

    def __init__(self, path: str, name: str, is_dir: bool) -> None:
        self.path, self.name, self.is_dir = path, name, is_dir


class _Walk:
    """Accumulates rows and problems while walking the folders."""

    def __init__(self, *, root: Path, problems: ProblemLog, follow_links: bool) -> None:
        self.root = root
        self.real_root = os.path.realpath(root)
        self.follow_links = follow_links
        self.problems = problems
        self.rows: list[dict] = []
        self.rows_listed = 0
        self.labels: set[str] = set()

    def entries(self, folder: str | Path) -> list[_Entry]:
        """The entries of `folder` by name, reporting (not raising) what cannot be read.

        OS droppings are left out; a linked folder that leads outside the root becomes one
        `path_escapes_root` row here and is not returned (it is never listed).
        """
        try:
            with os.scandir(folder) as listing:
                found = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            self.unreadable(str(folder), f"it cannot be listed: {exc.strerror or exc}")
            return []
        entries = []
        for entry in found:
            if entry.name.lower() in JUNK_NAMES:
                continue
            is_dir = is_folder(entry)
            if is_dir and entry.is_symlink() and not self.follow_links:
                target = os.path.realpath(entry.path)
                if not is_inside(target, self.real_root):
                    self.linked_out(entry.path, target)
                    continue
            entries.append(_Entry(entry.path, entry.name, is_dir))
        return entries

    def read_split(self, folder: str, split: str) -> None:
        for entry in self.entries(folder):
            if entry.is_dir and not is_hidden(entry.name):
                self.read_class(entry.path, split)
            elif entry.is_dir:
                self.unlabeled_tree(
                    entry.path, f"folder {entry.name}/ is hidden, so not a class folder"
                )
            else:
                self.unlabeled_file(entry.path, "image is not inside a class folder")

    def read_class(self, folder: str, split: str) -> None:
        name = os.path.basename(folder)
        label = _class_name(name) if is_valid_name(name) else None
        if label is not None:
            self.labels.add(label)
        scan = scan_tree(folder, real_root=self.real_root, follow_links=self.follow_links)
        for path, why in scan.unreadable:
            self.unreadable(path, why)
        for path, target in scan.escaping:
            self.linked_out(path, target)
        for path in scan.files:
            relative = os.path.relpath(path, self.root).replace(os.sep, "/")
            hidden = any(is_hidden(part) for part in os.path.relpath(path, folder).split(os.sep))
            if hidden and not is_image_name(path):
                continue  # .DS_Store, .gitkeep, a .git folder: never data
            self.rows_listed += 1
            self._read_file(path, relative, label, folder_name=name, hidden=hidden, split=split)

    def _read_file(
        self,
        path: str,
        sample_id: str,
        label: str | None,
        *,
        folder_name: str,
        hidden: bool,
        split: str,
    ) -> None:
        if not is_valid_name(sample_id):
            self.problems.add(
                "invalid_file_name",
                file=path,
                sample_id=sample_id,
                reason="the file name is not valid UTF-8, so it cannot be stored or shown as"
                " text; the file was not read",
            )
        elif hidden:
            self.problems.add(
                "hidden_file",
                file=path,
                sample_id=sample_id,
                reason="the image is hidden (its name, or a folder it is in, starts with a dot),"
                " so it was not read as a sample",
            )
        elif label is None:
            self.problems.add(
                "unknown_label",
                file=path,
                sample_id=sample_id,
                reason=f"folder name {folder_name!r} is not an expression class",
                fix="rename the folder to a class name (neutral, happiness, surprise,"
                " sadness, anger, disgust, fear, contempt or a common spelling) or move the"
                " images out",
            )
        else:
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

    def unlabeled_tree(self, folder: str, reason: str) -> None:
        scan = scan_tree(folder, real_root=self.real_root, follow_links=self.follow_links)
        for path, why in scan.unreadable:
            self.unreadable(path, why)
        for path in scan.files:  # links out of the root are not entered: no row is lost there
            self.unlabeled_file(path, reason)

    def unlabeled_file(self, path: str, reason: str) -> None:
        if is_image_name(path):
            self.problems.add("unlabeled_image", file=path, reason=reason)

    def unreadable(self, folder: str, why: str) -> None:
        self.problems.add(
            "unreadable_folder",
            file=folder,
            reason=f"folder {display_path(folder, self.root)} was not read: {why}",
        )

    def linked_out(self, folder: str, target: str) -> None:
        """A linked folder outside the root stands for its rows: one row, never listed."""
        self.rows_listed += 1
        self.problems.add(
            "path_escapes_root",
            file=folder,
            reason=f"folder {display_path(folder, self.root)} is a symbolic link to {target},"
            f" outside the dataset folder {self.root}; its files were not listed or read",
            fix="copy the images into the dataset folder instead of linking to them, or pass"
            " follow_links / --follow-links to read linked folders",
        )


SPEC = register_layout(
    LayoutSpec(
        name="imagefolder",
        description="<split>/<class>/<image> or <class>/<image> folders",
        detect=detect,
        read=read,
        priority=90,
    )
)
