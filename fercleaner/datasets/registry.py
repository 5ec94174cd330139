"""The layout registry: one entry per on-disk dataset layout, tried in order by auto-detection.

Each layout module registers a `LayoutSpec` with a `detect` function (does this path look
like me, and why or why not) and a `read` function (rows -> samples + problems).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from fercleaner.datasets.problems import ProblemLog
from fercleaner.errors import DatasetError, RegistryError


@dataclass(frozen=True)
class Detection:
    """Whether a path matches a layout, the sentence saying why, and what to read.

    Attributes:
        matched: the layout's marker files are there.
        reason: a sentence naming what was found or what was looked for.
        root: the dataset root sample ids are relative to (a folder).
        source: the file or folder the reader starts from (a manifest given directly).
    """

    matched: bool
    reason: str
    root: Path | None = None
    source: Path | None = None


@dataclass(frozen=True)
class ReadOptions:
    """Options every layout reader receives.

    Attributes:
        allow_outside_root: accept manifest paths that leave the manifest's folder.
        follow_links: read images and folders through symbolic links that lead outside
            the dataset root (otherwise they are `path_escapes_root` problems).
    """

    allow_outside_root: bool = False
    follow_links: bool = False


@dataclass
class LayoutRead:
    """What a layout reader hands back before duplicate and image checks.

    Attributes:
        samples: one row per accepted label row, with the contract columns plus private
            `_file` (label file, shown relative to root) and `_row` (1-based line or None).
        rows_listed: label rows seen, so rows_listed == len(samples) + label-row problems.
        classes: the dataset's canonical classes in canonical order.
        has_image_files: `path` points at image files to check (False for pixel CSVs).
        scan_dirs: folders whose images must each be listed by some row (else unlabeled).
        listed_paths: absolute paths every label row pointed at, for the unlabeled scan.
        notes: extra facts for the detection text (e.g. vote coverage).
    """

    samples: pd.DataFrame
    rows_listed: int
    classes: list[str]
    has_image_files: bool = True
    scan_dirs: list[Path] = field(default_factory=list)
    listed_paths: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


DetectFn = Callable[[Path], Detection]
ReadFn = Callable[[Path, Path, ReadOptions, ProblemLog], LayoutRead]


@dataclass(frozen=True)
class LayoutSpec:
    """A registered layout: name, one-line description, detector and reader.

    `read(source, root, options, problems)` gets the detection's source and root.
    `priority` orders detection: lower runs first, so specific marker files (FERPlus
    label.csv) win over generic shapes (class folders).
    """

    name: str
    description: str
    detect: DetectFn
    read: ReadFn
    priority: int


_LAYOUTS: dict[str, LayoutSpec] = {}


def register_layout(spec: LayoutSpec) -> LayoutSpec:
    """Add a layout; detection tries layouts by ascending `priority`."""
    if spec.name in _LAYOUTS:
        raise ValueError(f"layout {spec.name!r} is already registered")
    _LAYOUTS[spec.name] = spec
    ordered = sorted(_LAYOUTS.values(), key=lambda s: s.priority)
    _LAYOUTS.clear()
    _LAYOUTS.update((s.name, s) for s in ordered)
    return spec


def list_layouts() -> list[str]:
    """Registered layout names in detection order."""
    return list(_LAYOUTS)


def get_layout(name: str) -> LayoutSpec:
    """The layout called `name`; an unknown name lists the valid ones and the closest."""
    if name in _LAYOUTS:
        return _LAYOUTS[name]
    close = difflib.get_close_matches(name, list(_LAYOUTS), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise RegistryError(
        f"unknown dataset layout {name!r}; valid layouts: {', '.join(_LAYOUTS)}.{hint}"
    )


def explain_layouts(path: str | Path) -> list[tuple[str, Detection]]:
    """Run every detector on `path`: (layout name, detection) in detection order."""
    path = Path(path)
    return [(name, spec.detect(path)) for name, spec in _LAYOUTS.items()]


def detect_layout(path: str | Path) -> tuple[str, str]:
    """The first layout that matches `path` and the sentence saying why.

    Raises:
        DatasetError: the path does not exist or matches no layout; the message says
            what each layout looked for.
    """
    name, detection = _detect(Path(path))
    return name, detection.reason


def _detect(path: Path) -> tuple[str, Detection]:
    if not path.exists():
        raise DatasetError(f"dataset path {path} does not exist; pass a dataset folder or manifest")
    results = explain_layouts(path)
    for name, detection in results:
        if detection.matched:
            return name, detection
    lines = "\n".join(f"  - {name}: {d.reason}" for name, d in results)
    raise DatasetError(
        f"{path} matches no known dataset layout. What each layout looked for:\n{lines}\n"
        "Arrange the data in one of these layouts, or write a labels.csv with columns"
        " path,label[,split] and use --layout csv."
    )


def resolve_detection(path: Path, layout: str | None) -> tuple[LayoutSpec, Detection]:
    """Pick the layout (auto-detected, or the one asked for) and its detection for `path`."""
    if layout is None:
        name, detection = _detect(path)
        return _LAYOUTS[name], detection
    spec = get_layout(layout)
    if not path.exists():
        raise DatasetError(f"dataset path {path} does not exist; pass a dataset folder or manifest")
    detection = spec.detect(path)
    if not detection.matched:
        others = [n for n, d in explain_layouts(path) if d.matched]
        hint = f" It looks like: {', '.join(others)}." if others else ""
        raise DatasetError(f"{path} is not a {layout} dataset: {detection.reason}.{hint}")
    return spec, detection
