"""The fuzz suite's case table (issue 13): hostile dataset inputs and bad command lines.

Every case is data: the layout it attacks, a generator that writes the bad input into an
empty case folder and returns the `fercleaner` argv to run, and what must happen: the
exit code (docs/cli.md), and for datasets the exact problem kinds and the label-row
counts (`rows` listed = `samples` ingested + label-row problems; docs/architecture.md).
The table imports nothing from fercleaner, so expectations come from the documents,
never from the code they check. `bench/fuzz.py` runs it (and prints the figures);
`tests/test_fuzz.py` asserts every expectation.

Folders inside a case folder: `OUT` (and `IMAGES`) are the only places a command may
write, `CACHE` and `LOGS` hold the decoded-image cache and crash logs; everything else
is input and must be the same after the command.
"""

from __future__ import annotations

import io
import json
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from _dataset_files import (
    AFFECTNET_HEADER,
    affectnet_row,
    pixels,
    truncate,
    write_image,
    write_rows,
)
from _hostile_files import (
    write_corrupt_jpeg_scan,
    write_float_tiff,
    write_lying_png,
    write_png16,
)
from PIL import Image
from run_fixtures import TINY_TRAINING

#: Layouts a dataset case can attack (docs/architecture.md); "cli" marks command-line cases.
LAYOUTS: tuple[str, ...] = ("imagefolder", "ferplus", "fer2013", "rafdb", "affectnet", "csv")
#: Problem kinds that are not label rows (docs/architecture.md, `NON_ROW_KINDS`).
NON_ROW_KINDS: frozenset[str] = frozenset(
    {"unlabeled_image", "unreadable_folder", "votes_misaligned", "invalid_votes"}
)
#: Exit codes (docs/cli.md).
OK, PROBLEMS, USAGE = 0, 1, 2

# deep, so a `../../x` written relative to it still lands in the case folder
OUT = Path("a/b/out")
IMAGES = Path("a/b/images")  # export --imagefolder
CACHE = Path("cache")
LOGS = Path("logs")
#: Case-folder parts a command may write to.
WRITABLE: tuple[Path, ...] = (OUT, IMAGES, CACHE, LOGS)

#: Recipe overrides for a score run of a few seconds on CPU.
TINY = tuple(TINY_TRAINING)

Make = Callable[[Path], list[str]]
Mutate = Callable[[Path, Path], object]  # (dataset root, case folder)


@dataclass(frozen=True)
class Case:
    """One bad input and what must happen to it.

    Attributes:
        id: unique, stable name (`<layout prefix>_<what>`).
        layout: the dataset layout attacked, or "cli" for a bad command line.
        make: writes the input into an empty case folder; returns the argv after `fercleaner`.
        exit: the exit code (0 ok, 1 problems found, 2 usage/input error).
        problems: dataset cases: the exact problem kinds and counts `inspect --json` (or
            the run's problems.parquet) must report; {} for a clean dataset.
        rows: label rows in the input (what the tool must account for).
        samples: rows that must be ingested (or scored).
        error: text the error output must contain (exit 2).
        subprocess: run as a real process (argv bytes, the installed entry point).
        slow: trains a tiny model (`score`).
        root_skip: why the case cannot run as root (root reads chmod 000 folders).
        known_defect: the area that still fails this case and how (reported, not hidden:
            the runner counts it; tests/test_fuzz.py expects it to fail until fixed).
    """

    id: str
    layout: str
    make: Make
    exit: int
    problems: Mapping[str, int] | None = None
    rows: int | None = None
    samples: int | None = None
    error: str | None = None
    subprocess: bool = False
    slow: bool = False
    root_skip: str | None = None
    known_defect: str | None = None

    @property
    def is_dataset(self) -> bool:
        """A bad dataset input (as opposed to a bad command line)."""
        return self.layout != "cli"


def out(tmp: Path) -> Path:
    return tmp / OUT


def inspect(root: Path, *extra: str) -> list[str]:
    return ["inspect", str(root), "--json", *extra]


def image_bytes(*, seed: int = 0, size: int = 8, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    grey = np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)
    Image.fromarray(grey).save(buffer, format=fmt)
    return buffer.getvalue()


def outside(tmp: Path) -> Path:
    """Images outside the dataset root (tmp/outside): secret.png and dir/{o1,o2}.png."""
    folder = tmp / "outside"
    write_image(folder / "secret.png", seed=90, size=48)
    write_image(folder / "dir" / "o1.png", seed=91, size=48)
    write_image(folder / "dir" / "o2.png", seed=92, size=48)
    return folder


def bytes_name(folder: Path, name: bytes) -> Path:
    """A path whose last part is `name`, bytes that need not be UTF-8."""
    return Path(os.fsdecode(os.path.join(os.fsencode(folder), name)))


def write_deep_folder(folder: Path, *, depth_bytes: int = 4200) -> None:
    """Nest folders under `folder` until the path exceeds PATH_MAX, with an image at the bottom.

    No process, root included, can list a folder by such a path (ENAMETOOLONG): the
    unreadable folder that works where chmod does not. Written through folder fds.
    """
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    length = len(os.fsencode(folder))
    part = "d" * 200
    try:
        while length < depth_bytes:
            os.mkdir(part, dir_fd=fd)
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd, length = child, length + len(part) + 1
        image = os.open("deep.png", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(image, image_bytes(seed=7))
        os.close(image)
    finally:
        os.close(fd)


def lock(folder: Path) -> None:
    folder.chmod(0)


def fifo(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)


def append(path: Path, text: str | bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(text.encode() if isinstance(text, str) else text)


def bom_crlf(path: Path) -> None:
    """Rewrite a text file as Excel does: UTF-8 byte-order mark and CRLF line ends."""
    text = path.read_text().replace("\r\n", "\n").replace("\n", "\r\n")
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())


# ---------------------------------------------------------------- imagefolder


def imagefolder(mutate: Mutate | None = None) -> Make:
    """train/happy/a.png, train/sad/b.png, val/fear/c.png (3 rows), then `mutate`."""

    def make(tmp: Path) -> list[str]:
        root = tmp / "data"
        write_image(root / "train" / "happy" / "a.png", seed=1)
        write_image(root / "train" / "sad" / "b.png", seed=2)
        write_image(root / "val" / "fear" / "c.png", seed=3)
        if mutate is not None:
            mutate(root, tmp)
        return inspect(root)

    return make


def _happy(root: Path, name: str) -> Path:
    return root / "train" / "happy" / name


# Case(id, layout, make, exit, problems, rows, samples, ...)
IMAGEFOLDER_CASES = [
    Case(
        "if_truncated_png",
        "imagefolder",
        imagefolder(lambda r, t: truncate(write_image(_happy(r, "t.png"), size=32))),
        PROBLEMS,
        {"corrupt_image": 1},
        4,
        3,
    ),
    Case(
        "if_truncated_jpeg",
        "imagefolder",
        imagefolder(lambda r, t: truncate(write_image(_happy(r, "t.jpg"), size=32))),
        PROBLEMS,
        {"corrupt_image": 1},
        4,
        3,
    ),
    Case(
        "if_empty_file",
        "imagefolder",
        imagefolder(lambda r, t: _happy(r, "e.png").write_bytes(b"")),
        PROBLEMS,
        {"empty_file": 1},
        4,
        3,
    ),
    Case(
        "if_text_named_png",
        "imagefolder",
        imagefolder(lambda r, t: _happy(r, "x.png").write_text("not an image\n")),
        PROBLEMS,
        {"not_an_image": 1},
        4,
        3,
    ),
    Case(
        "if_stray_text_file",
        "imagefolder",
        imagefolder(lambda r, t: _happy(r, "notes.txt").write_text("todo\n")),
        PROBLEMS,
        {"not_an_image": 1},
        4,
        3,
    ),
    Case(
        "if_jpeg_named_png",
        "imagefolder",
        imagefolder(lambda r, t: write_image(_happy(r, "j.png"), fmt="JPEG")),
        OK,
        {},
        4,
        4,
    ),
    Case(
        "if_uppercase_suffix",
        "imagefolder",
        imagefolder(lambda r, t: write_image(_happy(r, "U.PNG"), fmt="PNG")),
        OK,
        {},
        4,
        4,
    ),
    Case(
        "if_bomb_header",
        "imagefolder",
        imagefolder(
            lambda r, t: write_lying_png(_happy(r, "bomb.png"), width=50_000, height=50_000)
        ),
        PROBLEMS,
        {"too_many_pixels": 1},
        4,
        3,
    ),
    Case(
        "if_over_max_pixels",
        "imagefolder",
        imagefolder(lambda r, t: write_lying_png(_happy(r, "big.png"), width=7_000, height=7_000)),
        PROBLEMS,
        {"too_many_pixels": 1},
        4,
        3,
    ),
    Case(
        "if_png16",
        "imagefolder",
        imagefolder(lambda r, t: write_png16(_happy(r, "g16.png"))),
        OK,
        {},
        4,
        4,
    ),
    Case(
        "if_float_tiff_in_range",
        "imagefolder",
        imagefolder(lambda r, t: write_float_tiff(_happy(r, "unit.tif"))),
        OK,
        {},
        4,
        4,
    ),
    Case(
        "if_float_tiff_out_of_range",
        "imagefolder",
        imagefolder(lambda r, t: write_float_tiff(_happy(r, "w.tif"), low=-3.0, high=900.0)),
        PROBLEMS,
        {"unsupported_pixels": 1},
        4,
        3,
    ),
    Case(
        "if_corrupt_jpeg_scan",
        "imagefolder",
        imagefolder(lambda r, t: write_corrupt_jpeg_scan(_happy(r, "scan.jpg"))),
        PROBLEMS,
        {"corrupt_image": 1},
        4,
        3,
    ),
    Case(
        "if_lying_png",
        "imagefolder",
        imagefolder(lambda r, t: write_lying_png(_happy(r, "lie.png"))),
        PROBLEMS,
        {"corrupt_image": 1},
        4,
        3,
    ),
    Case(
        "if_unknown_class_folder",
        "imagefolder",
        imagefolder(lambda r, t: write_image(r / "train" / "bored" / "d.png")),
        PROBLEMS,
        {"unknown_label": 1},
        4,
        3,
    ),
    Case(
        "if_hidden_image",
        "imagefolder",
        imagefolder(
            lambda r, t: (
                write_image(_happy(r, ".d.png")),
                _happy(r, ".DS_Store").write_bytes(b"\0junk"),
            )
        ),
        PROBLEMS,
        {"hidden_file": 1},
        4,
        3,
    ),
    Case(
        "if_hidden_folder",
        "imagefolder",
        imagefolder(lambda r, t: write_image(_happy(r, ".ipynb_checkpoints/d-checkpoint.png"))),
        PROBLEMS,
        {"hidden_file": 1},
        4,
        3,
    ),
    Case(
        "if_hidden_split_folder",
        "imagefolder",
        imagefolder(lambda r, t: write_image(r / ".trash" / "happy" / "d.png")),
        PROBLEMS,
        {"unlabeled_image": 1},
        3,
        3,
    ),
    Case(
        "if_non_utf8_name",
        "imagefolder",
        imagefolder(lambda r, t: write_image(bytes_name(r / "train" / "happy", b"caf\xe9.png"))),
        PROBLEMS,
        {"invalid_file_name": 1},
        4,
        3,
    ),
    Case(
        "if_non_utf8_class_folder",
        "imagefolder",
        imagefolder(lambda r, t: write_image(bytes_name(r / "train", b"h\xe4ppy") / "d.png")),
        PROBLEMS,
        {"invalid_file_name": 1},
        4,
        3,
    ),
    Case(
        "if_link_file_out",
        "imagefolder",
        imagefolder(lambda r, t: _happy(r, "l.png").symlink_to(outside(t) / "secret.png")),
        PROBLEMS,
        {"path_escapes_root": 1},
        4,
        3,
    ),
    Case(
        "if_link_folder_out",
        "imagefolder",
        imagefolder(
            lambda r, t: (r / "train" / "anger").symlink_to(
                outside(t) / "dir", target_is_directory=True
            )
        ),
        PROBLEMS,
        {"path_escapes_root": 1},
        4,
        3,
    ),
    Case(
        "if_link_subfolder_out",
        "imagefolder",
        imagefolder(
            lambda r, t: _happy(r, "more").symlink_to(outside(t) / "dir", target_is_directory=True)
        ),
        PROBLEMS,
        {"path_escapes_root": 1},
        4,
        3,
    ),
    Case(
        "if_link_inside",
        "imagefolder",
        imagefolder(lambda r, t: _happy(r, "l.png").symlink_to(r / "train" / "sad" / "b.png")),
        OK,
        {},
        4,
        4,
    ),
    Case(
        "if_link_loop",
        "imagefolder",
        imagefolder(
            lambda r, t: _happy(r, "loop").symlink_to(
                r / "train" / "happy", target_is_directory=True
            )
        ),
        PROBLEMS,
        {"unreadable_folder": 1},
        3,
        3,
    ),
    Case(
        "if_dangling_link",
        "imagefolder",
        imagefolder(lambda r, t: _happy(r, "gone.png").symlink_to(r / "nowhere.png")),
        PROBLEMS,
        {"missing_file": 1},
        4,
        3,
    ),
    Case(
        "if_image_beside_class_folders",
        "imagefolder",
        imagefolder(lambda r, t: write_image(r / "train" / "x.png")),
        PROBLEMS,
        {"unlabeled_image": 1},
        3,
        3,
    ),
    Case(
        "if_image_at_root",
        "imagefolder",
        imagefolder(lambda r, t: write_image(r / "y.png")),
        PROBLEMS,
        {"unlabeled_image": 1},
        3,
        3,
    ),
    Case(
        "if_fifo",
        "imagefolder",
        imagefolder(lambda r, t: fifo(_happy(r, "p.png"))),
        PROBLEMS,
        {"not_an_image": 1},
        4,
        3,
    ),
    Case(
        "if_markup_name",
        "imagefolder",
        imagefolder(lambda r, t: _happy(r, "[bold]x[red].png").write_text("no")),
        PROBLEMS,
        {"not_an_image": 1},
        4,
        3,
    ),
    Case(
        "if_unlistable_deep_folder",
        "imagefolder",
        imagefolder(lambda r, t: write_deep_folder(_happy(r, "deep"))),
        PROBLEMS,
        {"unreadable_folder": 1},
        3,
        3,
    ),
    Case(
        "if_unreadable_class_folder",
        "imagefolder",
        imagefolder(lambda r, t: lock(r / "train" / "sad")),
        PROBLEMS,
        {"unreadable_folder": 1},
        2,
        2,
        root_skip="root reads a chmod 000 folder; if_unlistable_deep_folder and if_link_loop"
        " cover unreadable folders as root",
    ),
    Case(
        "if_non_utf8_root",
        "imagefolder",
        lambda tmp: imagefolder()(bytes_name(tmp, b"d\xe9j\xe0")),
        USAGE,
        error="is not valid UTF-8",
    ),
    Case(
        "if_duplicate_class_spellings",
        "imagefolder",
        imagefolder(lambda r, t: write_image(r / "train" / "Happy" / "a.png")),
        OK,
        {},
        4,
        4,
    ),
]


# ---------------------------------------------------------------- ferplus

_FP_BOX = '"(0, 0, 48, 48)"'


def fp_line(name: str, votes: list[object], box: str = _FP_BOX) -> str:
    return ",".join([name, box, *map(str, votes)]) + "\n"


_NEUTRAL = [10, 0, 0, 0, 0, 0, 0, 0, 0, 0]
_HAPPY = [0, 10, 0, 0, 0, 0, 0, 0, 0, 0]


def ferplus(extra: str | bytes = "", mutate: Mutate | None = None) -> Make:
    """FER2013Train: a.png (neutral), b.png (happiness); FER2013Valid: c.png (3 rows); then `extra`
    appended to FER2013Train/label.csv and `mutate`."""

    def make(tmp: Path) -> list[str]:
        root = tmp / "data"
        train, valid = root / "FER2013Train", root / "FER2013Valid"
        write_image(train / "a.png", seed=1, size=48)
        write_image(train / "b.png", seed=2, size=48)
        write_image(valid / "c.png", seed=3, size=48)
        (train / "label.csv").write_text(fp_line("a.png", _NEUTRAL) + fp_line("b.png", _HAPPY))
        (valid / "label.csv").write_text(fp_line("c.png", [0, 0, 10, 0, 0, 0, 0, 0, 0, 0]))
        append(train / "label.csv", extra)
        if mutate is not None:
            mutate(root, tmp)
        return inspect(root)

    return make


def _fp(root: Path, name: str) -> Path:
    return root / "FER2013Train" / name


def _fp_rewrite(line_b: str) -> Mutate:
    """Replace b.png's row with `line_b`."""

    def mutate(root: Path, tmp: Path) -> None:
        (root / "FER2013Train" / "label.csv").write_text(fp_line("a.png", _NEUTRAL) + line_b)

    return mutate


# Case(id, layout, make, exit, problems, rows, samples, ...)
FERPLUS_CASES = [
    Case(
        "fp_votes_sum_103",
        "ferplus",
        ferplus(mutate=_fp_rewrite(fp_line("b.png", [93, 10, 0, 0, 0, 0, 0, 0, 0, 0]))),
        PROBLEMS,
        {"malformed_row": 1},
        3,
        2,
    ),
    Case(
        "fp_votes_sum_11",
        "ferplus",
        ferplus(mutate=_fp_rewrite(fp_line("b.png", [1, 10, 0, 0, 0, 0, 0, 0, 0, 0]))),
        PROBLEMS,
        {"malformed_row": 1},
        3,
        2,
    ),
    Case(
        "fp_negative_vote",
        "ferplus",
        ferplus(mutate=_fp_rewrite(fp_line("b.png", [-1, 10, 0, 0, 0, 0, 0, 0, 0, 0]))),
        PROBLEMS,
        {"malformed_row": 1},
        3,
        2,
    ),
    Case(
        "fp_nan_vote",
        "ferplus",
        ferplus(mutate=_fp_rewrite(fp_line("b.png", ["nan", 10, 0, 0, 0, 0, 0, 0, 0, 0]))),
        PROBLEMS,
        {"malformed_row": 1},
        3,
        2,
    ),
    Case(
        "fp_fractional_vote",
        "ferplus",
        ferplus(mutate=_fp_rewrite(fp_line("b.png", [2.5, 7, 0, 0, 0, 0, 0, 0, 0, 0]))),
        PROBLEMS,
        {"malformed_row": 1},
        3,
        2,
    ),
    Case(
        "fp_missing_columns",
        "ferplus",
        ferplus(mutate=_fp_rewrite(fp_line("b.png", [0, 10, 0, 0]))),
        PROBLEMS,
        {"malformed_row": 1},
        3,
        2,
    ),
    Case(
        "fp_extra_column",
        "ferplus",
        ferplus(mutate=_fp_rewrite(fp_line("b.png", [0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0]))),
        PROBLEMS,
        {"malformed_row": 1},
        3,
        2,
    ),
    Case(
        "fp_shifted_row",
        "ferplus",
        ferplus(mutate=_fp_rewrite("b.png,0,10,0,0,0,0,0,0,0,0,0\n")),
        PROBLEMS,
        {"malformed_row": 1},
        3,
        2,
    ),
    Case(
        "fp_all_votes_zero",
        "ferplus",
        ferplus(mutate=_fp_rewrite(fp_line("b.png", [0] * 10))),
        PROBLEMS,
        {"no_plurality_emotion": 1},
        3,
        2,
    ),
    Case(
        "fp_plurality_unknown",
        "ferplus",
        ferplus(mutate=_fp_rewrite(fp_line("b.png", [1, 2, 0, 0, 0, 0, 0, 0, 7, 0]))),
        PROBLEMS,
        {"no_plurality_emotion": 1},
        3,
        2,
    ),
    Case(
        "fp_plurality_not_a_face",
        "ferplus",
        ferplus(mutate=_fp_rewrite(fp_line("b.png", [0, 0, 0, 0, 0, 0, 0, 0, 0, 10]))),
        PROBLEMS,
        {"no_plurality_emotion": 1},
        3,
        2,
    ),
    Case(
        "fp_bad_face_box",
        "ferplus",
        ferplus(mutate=_fp_rewrite(fp_line("b.png", _HAPPY, box='"(a, b, c, d)"'))),
        PROBLEMS,
        {"malformed_row": 1},
        3,
        2,
    ),
    Case(
        "fp_face_box_outside_image",
        "ferplus",
        ferplus(mutate=_fp_rewrite(fp_line("b.png", _HAPPY, box='"(100, 100, 48, 48)"'))),
        PROBLEMS,
        {"malformed_row": 1},
        3,
        2,
    ),
    Case(
        "fp_dotdot_name",
        "ferplus",
        ferplus(fp_line("../../outside/secret.png", _HAPPY), lambda r, t: outside(t)),
        PROBLEMS,
        {"path_escapes_root": 1},
        4,
        3,
    ),
    Case(
        "fp_absolute_name",
        "ferplus",
        ferplus(fp_line("/etc/hostname", _HAPPY)),
        PROBLEMS,
        {"path_escapes_root": 1},
        4,
        3,
    ),
    Case(
        "fp_missing_image",
        "ferplus",
        ferplus(fp_line("d.png", _HAPPY)),
        PROBLEMS,
        {"missing_file": 1},
        4,
        3,
    ),
    Case(
        "fp_duplicate_row",
        "ferplus",
        ferplus(fp_line("a.png", _HAPPY)),
        PROBLEMS,
        {"duplicate_id": 1},
        4,
        3,
    ),
    Case(
        "fp_bom_crlf",
        "ferplus",
        ferplus(mutate=lambda r, t: bom_crlf(_fp(r, "label.csv"))),
        OK,
        {},
        3,
        3,
    ),
    Case(
        "fp_unclosed_quote",
        "ferplus",
        ferplus('d.png,"(0, 0, 48, 48),0,10,0,0,0,0,0,0,0,0\n' + fp_line("e.png", _HAPPY)),
        PROBLEMS,
        {"malformed_row": 2},
        5,
        3,
    ),
    Case(
        "fp_only_commas", "ferplus", ferplus(",,,,,,,,,,,\n"), PROBLEMS, {"malformed_row": 1}, 4, 3
    ),
    Case("fp_blank_lines", "ferplus", ferplus("\n\n   \n"), OK, {}, 3, 3),
    Case(
        "fp_unlisted_image",
        "ferplus",
        ferplus(mutate=lambda r, t: write_image(_fp(r, "z.png"), size=48)),
        PROBLEMS,
        {"unlabeled_image": 1},
        3,
        3,
    ),
    Case(
        "fp_hidden_unlisted_image",
        "ferplus",
        ferplus(mutate=lambda r, t: write_image(_fp(r, ".z.png"), size=48)),
        PROBLEMS,
        {"unlabeled_image": 1},
        3,
        3,
    ),
    Case(
        "fp_link_out",
        "ferplus",
        ferplus(
            mutate=lambda r, t: (
                _fp(r, "b.png").unlink(),
                _fp(r, "b.png").symlink_to(outside(t) / "secret.png"),
            )
        ),
        PROBLEMS,
        {"path_escapes_root": 1},
        3,
        2,
    ),
    Case(
        "fp_truncated_image",
        "ferplus",
        ferplus(mutate=lambda r, t: truncate(_fp(r, "b.png"))),
        PROBLEMS,
        {"corrupt_image": 1},
        3,
        2,
    ),
    Case(
        "fp_folder_named_png",
        "ferplus",
        ferplus(fp_line("d.png", _HAPPY), lambda r, t: _fp(r, "d.png").mkdir()),
        PROBLEMS,
        {"not_an_image": 1},
        4,
        3,
    ),
    Case(
        "fp_latin1_name",
        "ferplus",
        ferplus(
            b"caf\xe9.png," + fp_line("", _HAPPY)[1:].encode(),
            lambda r, t: write_image(bytes_name(r / "FER2013Train", b"caf\xe9.png"), size=48),
        ),
        USAGE,  # a label file that is not UTF-8 is refused, naming line and byte
        error="line 3 holds byte 0xe9",
    ),
    Case(
        "fp_empty_label_file",
        "ferplus",
        ferplus(
            mutate=lambda r, t: (
                (r / "FER2013Valid" / "label.csv").write_text(""),
                (r / "FER2013Valid" / "c.png").unlink(),
            )
        ),
        OK,
        {},
        2,
        2,
    ),
]


# ---------------------------------------------------------------- fer2013 (+ fer2013new.csv)

_USAGES = ["Training", "Training", "PublicTest", "PrivateTest"]
_VOTES_HEADER = (
    "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"
)


def f13_line(code: object, pix: str, usage: str) -> str:
    return f"{code},{pix},{usage}\n"


def f13_vote_line(r: int, counts: list[object] | None = None, usage: str | None = None) -> str:
    counts = counts if counts is not None else [10 if j == r % 8 else 0 for j in range(10)]
    return ",".join([usage or _USAGES[r], f"fer{r:07d}.png", *map(str, counts)]) + "\n"


def fer2013(
    lines: Mapping[int, str] | None = None,
    *,
    extra: str = "",
    header: str = "emotion,pixels,Usage\n",
    votes: str | None = None,
    mutate: Mutate | None = None,
) -> Make:
    """fer2013.csv with 4 rows (Training x2, PublicTest, PrivateTest); `lines` replaces rows by
    index, `extra` is appended; `votes` is the fer2013new.csv text (None: no votes file)."""

    def make(tmp: Path) -> list[str]:
        root = tmp / "data"
        root.mkdir(parents=True)
        rows = [f13_line(r % 7, pixels(r), _USAGES[r]) for r in range(4)]
        for r, text in (lines or {}).items():
            rows[r] = text
        (root / "fer2013.csv").write_text(header + "".join(rows) + extra)
        if votes is not None:
            (root / "fer2013new.csv").write_text(votes)
        if mutate is not None:
            mutate(root, tmp)
        return inspect(root)

    return make


def votes_file(
    *,
    drop: int | None = None,
    replace: Mapping[int, str] | None = None,
    header: str = _VOTES_HEADER,
    extra: str = "",
) -> str:
    """fer2013new.csv lined up with `fer2013()`'s rows, with row `drop` deleted or rows replaced."""
    rows = [f13_vote_line(r) for r in range(4)]
    for r, text in (replace or {}).items():
        rows[r] = text
    if drop is not None:
        del rows[drop]
    return header + "".join(rows) + extra


# Case(id, layout, make, exit, problems, rows, samples, ...)
FER2013_CASES = [
    Case(
        "f13_short_pixels",
        "fer2013",
        fer2013({1: f13_line(3, "1 2 3", "Training")}),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "f13_pixel_300",
        "fer2013",
        fer2013({1: f13_line(3, "300 " + pixels(1).split(" ", 1)[1], "Training")}),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "f13_pixel_text",
        "fer2013",
        fer2013({1: f13_line(3, "ab " + pixels(1)[3:], "Training")}),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "f13_pixel_nan",
        "fer2013",
        fer2013({1: f13_line(3, " ".join(["nan"] * 2304), "Training")}),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "f13_pixels_empty",
        "fer2013",
        fer2013({1: f13_line(3, "", "Training")}),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "f13_unknown_code",
        "fer2013",
        fer2013({1: f13_line(7, pixels(1), "Training")}),
        PROBLEMS,
        {"unknown_label": 1},
        4,
        3,
    ),
    Case(
        "f13_negative_code",
        "fer2013",
        fer2013({1: f13_line(-1, pixels(1), "Training")}),
        PROBLEMS,
        {"unknown_label": 1},
        4,
        3,
    ),
    Case(
        "f13_fractional_code",
        "fer2013",
        fer2013({1: f13_line(3.5, pixels(1), "Training")}),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "f13_bad_usage",
        "fer2013",
        fer2013({1: f13_line(3, pixels(1), "Train")}),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "f13_row_extra_field",
        "fer2013",
        fer2013({1: f13_line(3, pixels(1), "Training,extra")}),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "f13_row_missing_field",
        "fer2013",
        fer2013({1: f"3,{pixels(1)}\n"}),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "f13_missing_usage_column",
        "fer2013",
        fer2013(header="emotion,pixels\n"),
        USAGE,
        error="fer2013.csv",
    ),
    Case(
        "f13_extra_column",
        "fer2013",
        fer2013(
            {r: f13_line(r % 7, pixels(r), _USAGES[r] + ",x") for r in range(4)},
            header="emotion,pixels,Usage,note\n",
        ),
        OK,
        {},
        4,
        4,
    ),
    Case(
        "f13_columns_reordered",
        "fer2013",
        fer2013(
            {r: f"{_USAGES[r]},{r % 7},{pixels(r)}\n" for r in range(4)},
            header="Usage,emotion,pixels\n",
        ),
        OK,
        {},
        4,
        4,
    ),
    Case(
        "f13_bom_crlf",
        "fer2013",
        fer2013(mutate=lambda r, t: bom_crlf(r / "fer2013.csv")),
        OK,
        {},
        4,
        4,
    ),
    Case(
        "f13_unclosed_quote",
        "fer2013",
        fer2013({1: '"' + f13_line(3, pixels(1), "Training")}),
        PROBLEMS,
        {"malformed_row": 3},
        4,
        1,
    ),
    Case("f13_only_commas", "fer2013", fer2013(extra=",,\n"), PROBLEMS, {"malformed_row": 1}, 5, 4),
    Case("f13_blank_lines", "fer2013", fer2013(extra="\n\n"), OK, {}, 4, 4),
    Case("f13_votes_aligned", "fer2013", fer2013(votes=votes_file()), OK, {}, 4, 4),
    Case(
        "f13_votes_row_deleted",
        "fer2013",
        fer2013(votes=votes_file(drop=1)),
        PROBLEMS,
        {"votes_misaligned": 2},
        4,
        4,
    ),
    Case(
        "f13_votes_first_row_deleted",
        "fer2013",
        fer2013(votes=votes_file(drop=0)),
        PROBLEMS,
        {"votes_misaligned": 2},
        4,
        4,
    ),
    Case(
        "f13_votes_extra_row",
        "fer2013",
        fer2013(votes=votes_file(extra=f13_vote_line(4, usage="PrivateTest"))),
        PROBLEMS,
        {"votes_misaligned": 1},
        4,
        4,
    ),
    Case(
        "f13_votes_nan",
        "fer2013",
        fer2013(
            votes=votes_file(replace={2: f13_vote_line(2, ["nan", 10, 0, 0, 0, 0, 0, 0, 0, 0])})
        ),
        PROBLEMS,
        {"invalid_votes": 1},
        4,
        4,
    ),
    Case(
        "f13_votes_negative",
        "fer2013",
        fer2013(votes=votes_file(replace={2: f13_vote_line(2, [-3, 10, 0, 0, 0, 0, 0, 0, 0, 0])})),
        PROBLEMS,
        {"invalid_votes": 1},
        4,
        4,
    ),
    Case(
        "f13_votes_sum_103",
        "fer2013",
        fer2013(votes=votes_file(replace={2: f13_vote_line(2, [93, 10, 0, 0, 0, 0, 0, 0, 0, 0])})),
        PROBLEMS,
        {"invalid_votes": 1},
        4,
        4,
    ),
    Case(
        "f13_votes_all_zero",
        "fer2013",
        fer2013(votes=votes_file(replace={2: f13_vote_line(2, [0] * 10)})),
        PROBLEMS,
        {"invalid_votes": 1},
        4,
        4,
    ),
    Case(
        "f13_votes_short_row",
        "fer2013",
        fer2013(votes=votes_file(replace={2: f13_vote_line(2, [0, 10])})),
        PROBLEMS,
        {"invalid_votes": 1},
        4,
        4,
    ),
    Case(
        "f13_votes_bad_header",
        "fer2013",
        fer2013(votes=votes_file(header="Usage,name,a,b\n")),
        PROBLEMS,
        {"votes_misaligned": 1},
        4,
        4,
    ),
    Case(
        "f13_votes_usage_mismatch",
        "fer2013",
        fer2013(votes=votes_file(replace={2: f13_vote_line(2, usage="Training")})),
        PROBLEMS,
        {"votes_misaligned": 1},
        4,
        4,
    ),
    Case(
        "f13_votes_bom_crlf",
        "fer2013",
        fer2013(votes=votes_file(), mutate=lambda r, t: bom_crlf(r / "fer2013new.csv")),
        OK,
        {},
        4,
        4,
    ),
]


# ---------------------------------------------------------------- rafdb (+ distribution.txt)

_RAF_ROWS = [("train_00001.jpg", 1), ("train_00002.jpg", 4), ("test_0001.jpg", 5)]
_RAF_DIST = "0.7 0.1 0.05 0.05 0.05 0.025 0.025"


def raf_image(root: Path, name: str, *, seed: int = 0) -> Path:
    stem = name.rsplit(".", 1)[0]
    return write_image(root / "Image" / "aligned" / f"{stem}_aligned.jpg", seed=seed, fmt="JPEG")


def rafdb(extra: str = "", *, dist: str | None = None, mutate: Mutate | None = None) -> Make:
    """EmoLabel/list_patition_label.txt with 3 rows + aligned JPEGs + distribution.txt;
    `extra` is appended to the label file, `dist` replaces distribution.txt's text."""

    def make(tmp: Path) -> list[str]:
        root = tmp / "data"
        (root / "EmoLabel").mkdir(parents=True)
        for i, (name, _) in enumerate(_RAF_ROWS):
            raf_image(root, name, seed=i)
        labels = "".join(f"{name} {code}\n" for name, code in _RAF_ROWS) + extra
        (root / "EmoLabel" / "list_patition_label.txt").write_text(labels)
        text = "".join(f"{name} {_RAF_DIST}\n" for name, _ in _RAF_ROWS) if dist is None else dist
        (root / "EmoLabel" / "distribution.txt").write_text(text)
        if mutate is not None:
            mutate(root, tmp)
        return inspect(root)

    return make


def _raf_dist(values: str) -> str:
    """distribution.txt whose second line holds `values`."""
    lines = [f"{name} {_RAF_DIST}\n" for name, _ in _RAF_ROWS]
    lines[1] = f"{_RAF_ROWS[1][0]} {values}\n"
    return "".join(lines)


def _raf_original(root: Path, tmp: Path) -> None:
    """Move the images to Image/original/ (RAF-DB's unaligned folder) and truncate one."""
    aligned = root / "Image" / "aligned"
    for name, _ in _RAF_ROWS:
        stem = name.rsplit(".", 1)[0]
        os.renames(aligned / f"{stem}_aligned.jpg", root / "Image" / "original" / name)
    truncate(root / "Image" / "original" / _RAF_ROWS[2][0])


def _raf_aligned(root: Path, name: str) -> Path:
    return root / "Image" / "aligned" / name


# Case(id, layout, make, exit, problems, rows, samples, ...)
RAFDB_CASES = [
    Case(
        "raf_code_8",
        "rafdb",
        rafdb("train_00003.jpg 8\n", mutate=lambda r, t: raf_image(r, "train_00003.jpg")),
        PROBLEMS,
        {"unknown_label": 1},
        4,
        3,
    ),
    Case(
        "raf_code_0",
        "rafdb",
        rafdb("train_00003.jpg 0\n", mutate=lambda r, t: raf_image(r, "train_00003.jpg")),
        PROBLEMS,
        {"unknown_label": 1},
        4,
        3,
    ),
    Case(
        "raf_code_text",
        "rafdb",
        rafdb("train_00003.jpg happy\n", mutate=lambda r, t: raf_image(r, "train_00003.jpg")),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "raf_no_split_prefix",
        "rafdb",
        rafdb("img_00003.jpg 1\n", mutate=lambda r, t: raf_image(r, "img_00003.jpg")),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "raf_extra_field",
        "rafdb",
        rafdb("train_00003.jpg 1 2\n", mutate=lambda r, t: raf_image(r, "train_00003.jpg")),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "raf_missing_code",
        "rafdb",
        rafdb("train_00003.jpg\n", mutate=lambda r, t: raf_image(r, "train_00003.jpg")),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "raf_dotdot_name",
        "rafdb",
        rafdb("../../../outside/secret.png 1\n", mutate=lambda r, t: outside(t)),
        PROBLEMS,
        {"path_escapes_root": 1},
        4,
        3,
    ),
    Case(
        "raf_absolute_name",
        "rafdb",
        rafdb("/etc/hostname 1\n"),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "raf_missing_image",
        "rafdb",
        rafdb("train_00003.jpg 1\n"),
        PROBLEMS,
        {"missing_file": 1},
        4,
        3,
    ),
    Case(
        "raf_duplicate_row",
        "rafdb",
        rafdb("train_00001.jpg 2\n"),
        PROBLEMS,
        {"duplicate_id": 1},
        4,
        3,
    ),
    Case(
        "raf_bom_crlf",
        "rafdb",
        rafdb(
            mutate=lambda r, t: (
                bom_crlf(r / "EmoLabel" / "list_patition_label.txt"),
                bom_crlf(r / "EmoLabel" / "distribution.txt"),
            )
        ),
        OK,
        {},
        3,
        3,
    ),
    Case(
        "raf_unlisted_image",
        "rafdb",
        rafdb(mutate=lambda r, t: raf_image(r, "train_00009.jpg")),
        PROBLEMS,
        {"unlabeled_image": 1},
        3,
        3,
    ),
    Case(
        "raf_hidden_unlisted_image",
        "rafdb",
        rafdb(mutate=lambda r, t: write_image(_raf_aligned(r, ".x_aligned.jpg"), fmt="JPEG")),
        PROBLEMS,
        {"unlabeled_image": 1},
        3,
        3,
    ),
    Case(
        "raf_non_utf8_unlisted_image",
        "rafdb",
        rafdb(
            mutate=lambda r, t: write_image(
                bytes_name(r / "Image" / "aligned", b"\xff_aligned.jpg"), fmt="JPEG"
            )
        ),
        PROBLEMS,
        {"unlabeled_image": 1},
        3,
        3,
    ),
    Case(
        "raf_truncated_jpeg",
        "rafdb",
        rafdb(mutate=lambda r, t: truncate(_raf_aligned(r, "train_00002_aligned.jpg"), keep=0.3)),
        PROBLEMS,
        {"corrupt_image": 1},
        3,
        2,
    ),
    Case(
        "raf_link_out",
        "rafdb",
        rafdb(
            mutate=lambda r, t: (
                _raf_aligned(r, "train_00002_aligned.jpg").unlink(),
                _raf_aligned(r, "train_00002_aligned.jpg").symlink_to(outside(t) / "secret.png"),
            )
        ),
        PROBLEMS,
        {"path_escapes_root": 1},
        3,
        2,
    ),
    Case(
        "raf_original_folder_truncated",
        "rafdb",
        rafdb(mutate=_raf_original),
        PROBLEMS,
        {"corrupt_image": 1},
        3,
        2,
    ),
    Case(
        "raf_dist_nan",
        "rafdb",
        rafdb(dist=_raf_dist("nan 0.1 0.05 0.05 0.05 0.025 0.025")),
        PROBLEMS,
        {"invalid_votes": 1},
        3,
        3,
    ),
    Case(
        "raf_dist_negative",
        "rafdb",
        rafdb(dist=_raf_dist("-0.7 0.1 0.05 0.05 0.05 0.025 0.025")),
        PROBLEMS,
        {"invalid_votes": 1},
        3,
        3,
    ),
    Case(
        "raf_dist_all_zero",
        "rafdb",
        rafdb(dist=_raf_dist("0 0 0 0 0 0 0")),
        PROBLEMS,
        {"invalid_votes": 1},
        3,
        3,
    ),
    Case(
        "raf_dist_shifted",
        "rafdb",
        rafdb(dist=_raf_dist("0.7 0.1 0.05 0.05 0.05 0.025 0.025 0.0")),
        PROBLEMS,
        {"invalid_votes": 1},
        3,
        3,
    ),
    Case(
        "raf_dist_text",
        "rafdb",
        rafdb(dist=_raf_dist("high 0.1 0.05 0.05 0.05 0.025 0.025")),
        PROBLEMS,
        {"invalid_votes": 1},
        3,
        3,
    ),
    Case(
        "raf_dist_bom_crlf_blank",
        "rafdb",
        rafdb(
            dist="\n".join(f"{n} {_RAF_DIST}" for n, _ in _RAF_ROWS) + "\n\n",
            mutate=lambda r, t: bom_crlf(r / "EmoLabel" / "distribution.txt"),
        ),
        OK,
        {},
        3,
        3,
    ),
]


# ---------------------------------------------------------------- affectnet


def an_line(fields: list[object]) -> str:
    return ",".join(map(str, fields)) + "\n"


def affectnet(
    extra: str = "", *, header: list[str] | None = None, mutate: Mutate | None = None
) -> Make:
    """training.csv (1/a.jpg happiness, 1/b.jpg sadness) + validation.csv (2/c.jpg anger), 48x48
    JPEGs under Manually_Annotated_Images/; `extra` is appended to training.csv."""

    def make(tmp: Path) -> list[str]:
        root = tmp / "data"
        images = root / "Manually_Annotated_Images"
        for i, rel in enumerate(("1/a.jpg", "1/b.jpg", "2/c.jpg")):
            write_image(images / rel, seed=i, size=48, fmt="JPEG")
        write_rows(
            root / "training.csv",
            [header or AFFECTNET_HEADER, affectnet_row("1/a.jpg", 1), affectnet_row("1/b.jpg", 2)],
        )
        write_rows(root / "validation.csv", [AFFECTNET_HEADER, affectnet_row("2/c.jpg", 6)])
        append(root / "training.csv", extra)
        if mutate is not None:
            mutate(root, tmp)
        return inspect(root)

    return make


def _an_d(
    *,
    box: tuple[object, ...] = (1, 2, 30, 40),
    code: object = 3,
    va: tuple[object, object] = (0.5, -0.25),
    path: str = "1/d.jpg",
) -> str:
    return an_line([path, *box, '"1;2;3"', code, *va])


def _an_image_d(root: Path, tmp: Path) -> None:
    write_image(root / "Manually_Annotated_Images" / "1" / "d.jpg", seed=9, size=48, fmt="JPEG")


# Case(id, layout, make, exit, problems, rows, samples, ...)
AFFECTNET_CASES = [
    Case(
        "an_box_outside_image",
        "affectnet",
        affectnet(_an_d(box=(500, 500, 30, 40)), mutate=_an_image_d),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    # a box partly outside the image is clipped to it (decode.py)
    Case(
        "an_box_partly_outside",
        "affectnet",
        affectnet(_an_d(box=(30, 30, 30, 40)), mutate=_an_image_d),
        OK,
        {},
        4,
        4,
    ),
    Case(
        "an_box_negative",
        "affectnet",
        affectnet(_an_d(box=(-5, 2, 30, 40)), mutate=_an_image_d),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "an_box_nan",
        "affectnet",
        affectnet(_an_d(box=("nan", 2, 30, 40)), mutate=_an_image_d),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "an_box_zero_width",
        "affectnet",
        affectnet(_an_d(box=(1, 2, 0, 40)), mutate=_an_image_d),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "an_box_huge",
        "affectnet",
        affectnet(_an_d(box=(1, 2, 10**12, 40)), mutate=_an_image_d),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "an_code_8_none",
        "affectnet",
        affectnet(_an_d(code=8), mutate=_an_image_d),
        PROBLEMS,
        {"excluded_label": 1},
        4,
        3,
    ),
    Case(
        "an_code_10_no_face",
        "affectnet",
        affectnet(_an_d(code=10), mutate=_an_image_d),
        PROBLEMS,
        {"excluded_label": 1},
        4,
        3,
    ),
    Case(
        "an_code_11",
        "affectnet",
        affectnet(_an_d(code=11), mutate=_an_image_d),
        PROBLEMS,
        {"unknown_label": 1},
        4,
        3,
    ),
    Case(
        "an_code_text",
        "affectnet",
        affectnet(_an_d(code="happy"), mutate=_an_image_d),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "an_valence_2_5",
        "affectnet",
        affectnet(_an_d(va=(2.5, 0.1)), mutate=_an_image_d),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "an_arousal_nan",
        "affectnet",
        affectnet(_an_d(va=(0.1, "nan")), mutate=_an_image_d),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "an_valence_no_value",
        "affectnet",
        affectnet(_an_d(va=(-2, -2)), mutate=_an_image_d),
        OK,
        {},
        4,
        4,
    ),
    Case(
        "an_missing_field",
        "affectnet",
        affectnet(an_line(["1/d.jpg", 1, 2, 30, 40, '"1;2"', 3, 0.1]), mutate=_an_image_d),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "an_extra_field",
        "affectnet",
        affectnet(
            an_line(["1/d.jpg", 1, 2, 30, 40, '"1;2"', 3, 0.1, 0.1, "x"]), mutate=_an_image_d
        ),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "an_dotdot_path",
        "affectnet",
        affectnet(_an_d(path="../../outside/secret.png"), mutate=lambda r, t: outside(t)),
        PROBLEMS,
        {"path_escapes_root": 1},
        4,
        3,
    ),
    Case(
        "an_absolute_path",
        "affectnet",
        affectnet(_an_d(path="/etc/hostname")),
        PROBLEMS,
        {"path_escapes_root": 1},
        4,
        3,
    ),
    Case("an_missing_image", "affectnet", affectnet(_an_d()), PROBLEMS, {"missing_file": 1}, 4, 3),
    Case(
        "an_duplicate_row",
        "affectnet",
        affectnet(_an_d(path="1/a.jpg")),
        PROBLEMS,
        {"duplicate_id": 1},
        4,
        3,
    ),
    Case(
        "an_bom_crlf",
        "affectnet",
        affectnet(mutate=lambda r, t: bom_crlf(r / "training.csv")),
        OK,
        {},
        3,
        3,
    ),
    Case(
        "an_only_commas", "affectnet", affectnet(",,,,,,,,\n"), PROBLEMS, {"malformed_row": 1}, 4, 3
    ),
    Case(
        "an_unclosed_quote",
        "affectnet",
        affectnet('1/d.jpg,1,2,30,40,"1;2,3,0.1,0.1\n' + _an_d(path="1/e.jpg")),
        PROBLEMS,
        {"malformed_row": 2},
        5,
        3,
    ),
    Case(
        "an_unlisted_image",
        "affectnet",
        affectnet(mutate=_an_image_d),
        PROBLEMS,
        {"unlabeled_image": 1},
        3,
        3,
    ),
    Case(
        "an_missing_box_columns",
        "affectnet",
        affectnet(
            header=[h for h in AFFECTNET_HEADER if h != "face_x"],
            mutate=lambda r, t: write_rows(
                r / "training.csv",
                [
                    [h for h in AFFECTNET_HEADER if h != "face_x"],
                    ["1/a.jpg", 2, 30, 40, "1;2", 1, 0.5, 0.5],
                    ["1/b.jpg", 2, 30, 40, "1;2", 2, 0.5, 0.5],
                ],
            ),
        ),
        USAGE,  # one error for the header, not a malformed row per row
        error="lacks face_x",
    ),
    Case(
        "an_extra_header_column",
        "affectnet",
        affectnet(
            mutate=lambda r, t: write_rows(
                r / "training.csv",
                [
                    [*AFFECTNET_HEADER, "source"],
                    [*affectnet_row("1/a.jpg", 1), "web"],
                    [*affectnet_row("1/b.jpg", 2), "web"],
                ],
            )
        ),
        OK,
        {},
        3,
        3,
    ),
    Case(
        "an_empty_image",
        "affectnet",
        affectnet(
            _an_d(),
            mutate=lambda r, t: (r / "Manually_Annotated_Images" / "1" / "d.jpg").write_bytes(b""),
        ),
        PROBLEMS,
        {"empty_file": 1},
        4,
        3,
    ),
    Case(
        "an_link_out",
        "affectnet",
        affectnet(
            _an_d(),
            mutate=lambda r, t: (r / "Manually_Annotated_Images" / "1" / "d.jpg").symlink_to(
                outside(t) / "secret.png"
            ),
        ),
        PROBLEMS,
        {"path_escapes_root": 1},
        4,
        3,
    ),
    Case(
        "an_unreadable_manifest",
        "affectnet",
        affectnet(mutate=lambda r, t: (r / "training.csv").chmod(0)),
        USAGE,
        error="training.csv",
        root_skip="root reads a chmod 000 file",
    ),
]


# ---------------------------------------------------------------- csv / parquet manifests

_CSV_ROWS = [
    ["images/a.png", "happy", "train"],
    ["images/b.png", "sad", "val"],
    ["images/c.png", "fear", "test"],
]


def manifest(
    extra: str | bytes = "",
    *,
    header: str = "path,label,split",
    cells: str = "",
    mutate: Mutate | None = None,
    parquet: pd.DataFrame | None = None,
) -> Make:
    """labels.csv (3 rows: images/a.png happy train, b sad val, c fear test; `cells` appended to
    each base row) + `extra` lines, or labels.parquet from `parquet` when given."""

    def make(tmp: Path) -> list[str]:
        root = tmp / "data"
        for i, (path, _, _) in enumerate(_CSV_ROWS):
            write_image(root / path, seed=i)
        if parquet is not None:
            parquet.to_parquet(root / "labels.parquet", index=False)
        else:
            text = header + "\n" + "".join(",".join(r) + cells + "\n" for r in _CSV_ROWS)
            (root / "labels.csv").write_bytes(text.encode())
            append(root / "labels.csv", extra)
        if mutate is not None:
            mutate(root, tmp)
        return inspect(root)

    return make


def _frame(**changes: list[object]) -> pd.DataFrame:
    """The base rows as a DataFrame with a fourth row from `changes` (column -> values)."""
    frame = pd.DataFrame(_CSV_ROWS, columns=["path", "label", "split"])
    extra = pd.DataFrame({"path": ["images/d.png"], "label": ["anger"], "split": ["train"]})
    for column, values in changes.items():
        extra[column] = values
    return pd.concat([frame, extra], ignore_index=True)


def _img_d(root: Path, tmp: Path) -> None:
    write_image(root / "images" / "d.png", seed=9)


# Case(id, layout, make, exit, problems, rows, samples, ...)
CSV_CASES = [
    Case(
        "csv_unknown_label",
        "csv",
        manifest("images/d.png,bored,train\n", mutate=_img_d),
        PROBLEMS,
        {"unknown_label": 1},
        4,
        3,
    ),
    Case(
        "csv_empty_label",
        "csv",
        manifest("images/d.png,,train\n", mutate=_img_d),
        PROBLEMS,
        {"unknown_label": 1},
        4,
        3,
    ),
    Case(
        "csv_bad_split",
        "csv",
        manifest("images/d.png,angry,holdout\n", mutate=_img_d),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "csv_missing_field",
        "csv",
        manifest("images/d.png,angry\n", mutate=_img_d),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "csv_extra_field",
        "csv",
        manifest("images/d.png,angry,train,x\n", mutate=_img_d),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case("csv_empty_path", "csv", manifest(",angry,train\n"), PROBLEMS, {"malformed_row": 1}, 4, 3),
    Case(
        "csv_dotdot_path",
        "csv",
        manifest("../outside/secret.png,angry,train\n", mutate=lambda r, t: outside(t)),
        PROBLEMS,
        {"path_escapes_root": 1},
        4,
        3,
    ),
    Case(
        "csv_backslash_dotdot_path",
        "csv",
        manifest("..\\outside\\secret.png,angry,train\n", mutate=lambda r, t: outside(t)),
        PROBLEMS,
        {"path_escapes_root": 1},
        4,
        3,
    ),
    Case(
        "csv_absolute_path",
        "csv",
        manifest("/etc/hostname,angry,train\n"),
        PROBLEMS,
        {"path_escapes_root": 1},
        4,
        3,
    ),
    Case(
        "csv_missing_image",
        "csv",
        manifest("images/d.png,angry,train\n"),
        PROBLEMS,
        {"missing_file": 1},
        4,
        3,
    ),
    Case(
        "csv_duplicate_row",
        "csv",
        manifest("./images/a.png,sad,train\n"),
        PROBLEMS,
        {"duplicate_id": 1},
        4,
        3,
    ),
    Case(
        "csv_bom_crlf",
        "csv",
        manifest(mutate=lambda r, t: bom_crlf(r / "labels.csv")),
        OK,
        {},
        3,
        3,
    ),
    Case(
        "csv_unclosed_quote",
        "csv",
        manifest('"images/d.png,angry,train\nimages/e.png,sad,train\n', mutate=_img_d),
        PROBLEMS,
        {"malformed_row": 2},
        5,
        3,
    ),
    Case("csv_only_commas", "csv", manifest(",,\n, ,\n"), PROBLEMS, {"malformed_row": 2}, 5, 3),
    Case(
        "csv_valence_text",
        "csv",
        manifest(
            "images/d.png,angry,train,high\n",
            header="path,label,split,valence",
            cells=",0.5",
            mutate=_img_d,
        ),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "csv_valence_out_of_range",
        "csv",
        manifest(
            "images/d.png,angry,train,5.0\n",
            header="path,label,split,valence",
            cells=",0.5",
            mutate=_img_d,
        ),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "csv_arousal_inf",
        "csv",
        manifest(
            "images/d.png,angry,train,inf\n",
            header="path,label,split,arousal",
            cells=",0.5",
            mutate=_img_d,
        ),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "csv_au_out_of_range",
        "csv",
        manifest(
            "images/d.png,angry,train,-2\n",
            header="path,label,split,au_12",
            cells=",0.5",
            mutate=_img_d,
        ),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "csv_missing_label_column", "csv", manifest(header="path,split"), USAGE, error="labels.csv"
    ),
    Case(
        "csv_extra_header_column",
        "csv",
        manifest(
            "images/d.png,angry,train,note\n",
            header="path,label,split,comment",
            cells=",ok",
            mutate=_img_d,
        ),
        OK,
        {},
        4,
        4,
    ),
    Case(
        "csv_link_out",
        "csv",
        manifest(
            "images/l.png,angry,train\n",
            mutate=lambda r, t: (r / "images" / "l.png").symlink_to(outside(t) / "secret.png"),
        ),
        PROBLEMS,
        {"path_escapes_root": 1},
        4,
        3,
    ),
    Case(
        "csv_linked_images_folder_out",
        "csv",
        manifest(
            "linked/o1.png,angry,train\n",
            mutate=lambda r, t: (r / "linked").symlink_to(
                outside(t) / "dir", target_is_directory=True
            ),
        ),
        PROBLEMS,
        {"path_escapes_root": 1},
        4,
        3,
    ),
    Case(
        "csv_link_inside",
        "csv",
        manifest(
            "images/l.png,angry,train\n",
            mutate=lambda r, t: (r / "images" / "l.png").symlink_to(r / "images" / "a.png"),
        ),
        OK,
        {},
        4,
        4,
    ),
    Case(
        "csv_folder_as_image",
        "csv",
        manifest(
            "images/d.png,angry,train\n", mutate=lambda r, t: (r / "images" / "d.png").mkdir()
        ),
        PROBLEMS,
        {"not_an_image": 1},
        4,
        3,
    ),
    Case(
        "csv_fifo_as_image",
        "csv",
        manifest("images/d.png,angry,train\n", mutate=lambda r, t: fifo(r / "images" / "d.png")),
        PROBLEMS,
        {"not_an_image": 1},
        4,
        3,
    ),
    Case(
        "csv_png_named_txt",
        "csv",
        manifest(
            "images/d.txt,angry,train\n",
            mutate=lambda r, t: write_image(r / "images" / "d.txt", fmt="PNG"),
        ),
        OK,
        {},
        4,
        4,
    ),
    Case(
        "csv_bomb",
        "csv",
        manifest(
            "images/d.png,angry,train\n",
            mutate=lambda r, t: write_lying_png(
                r / "images" / "d.png", width=60_000, height=60_000
            ),
        ),
        PROBLEMS,
        {"too_many_pixels": 1},
        4,
        3,
    ),
    Case(
        "csv_png16",
        "csv",
        manifest(
            "images/d.png,angry,train\n", mutate=lambda r, t: write_png16(r / "images" / "d.png")
        ),
        OK,
        {},
        4,
        4,
    ),
    Case(
        "csv_latin1_path",
        "csv",
        manifest(
            b"images/caf\xe9.png,angry,train\n",
            mutate=lambda r, t: write_image(bytes_name(r / "images", b"caf\xe9.png")),
        ),
        USAGE,  # a label file that is not UTF-8 is refused, naming line and byte
        error="line 5 holds byte 0xe9",
    ),
    Case(
        "csv_markup_path",
        "csv",
        manifest("images/[/x][bold].png,angry,train\n"),
        PROBLEMS,
        {"missing_file": 1},
        4,
        3,
    ),
    Case(
        "csv_nul_in_path",
        "csv",
        manifest("images/d\x00.png,angry,train\n"),
        PROBLEMS,
        {"missing_file": 1},
        4,
        3,
    ),
    Case(
        "csv_huge_field",
        "csv",
        manifest("images/" + "x" * 200_000 + ".png,angry,train\n"),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "csv_name_too_long",
        "csv",
        manifest("images/" + "x" * 300 + ".png,angry,train\n"),
        PROBLEMS,
        {"missing_file": 1},
        4,
        3,
    ),
    Case(
        "csv_path_through_a_file",
        "csv",
        manifest("images/a.png/d.png,angry,train\n"),
        PROBLEMS,
        {"missing_file": 1},
        4,
        3,
    ),
    Case(
        "csv_manifest_given_directly",
        "csv",
        lambda tmp: (
            manifest("images/d.png,bored,train\n", mutate=_img_d)(tmp)[:1]
            + [str(tmp / "data" / "labels.csv"), "--json"]
        ),
        PROBLEMS,
        {"unknown_label": 1},
        4,
        3,
    ),
    Case(
        "parquet_unknown_label",
        "csv",
        manifest(parquet=_frame(label=["bored"]), mutate=_img_d),
        PROBLEMS,
        {"unknown_label": 1},
        4,
        3,
    ),
    Case(
        "parquet_null_path",
        "csv",
        manifest(parquet=_frame(path=[None])),
        PROBLEMS,
        {"malformed_row": 1},
        4,
        3,
    ),
    Case(
        "parquet_null_label",
        "csv",
        manifest(parquet=_frame(label=[None]), mutate=_img_d),
        PROBLEMS,
        {"unknown_label": 1},
        4,
        3,
    ),
    Case(
        "parquet_dotdot_path",
        "csv",
        manifest(parquet=_frame(path=["../outside/secret.png"]), mutate=lambda r, t: outside(t)),
        PROBLEMS,
        {"path_escapes_root": 1},
        4,
        3,
    ),
    Case(
        "parquet_duplicate",
        "csv",
        manifest(parquet=_frame(path=["images/a.png"])),
        PROBLEMS,
        {"duplicate_id": 1},
        4,
        3,
    ),
    Case(
        "parquet_valence_nan_ok",
        "csv",
        manifest(
            parquet=_frame(valence=[float("nan")]).assign(valence=[0.1, 0.2, 0.3, float("nan")]),
            mutate=_img_d,
        ),
        OK,
        {},
        4,
        4,
    ),
    Case(
        "parquet_not_parquet",
        "csv",
        manifest(
            mutate=lambda r, t: (
                (r / "labels.csv").unlink(),
                (r / "labels.parquet").write_bytes(b"PAR1 this is not parquet"),
            )
        ),
        USAGE,
        error="labels.parquet",
    ),
    Case(
        "parquet_missing_label_column",
        "csv",
        manifest(parquet=_frame().drop(columns=["label"])),
        USAGE,
        error="labels.parquet",
    ),
]


# ---------------------------------------------------------------- score on hostile data (TINY)


def _hostile_faces(tmp: Path) -> Path:
    """16 learnable 32x32 images in 2 classes, plus a link out, a truncated and a hidden image."""
    root = tmp / "data"
    for i in range(8):
        write_image(root / "train" / "happy" / f"h{i}.png", seed=i, size=32)
        write_image(root / "train" / "sad" / f"s{i}.png", seed=100 + i, size=32)
    (root / "train" / "happy" / "link.png").symlink_to(outside(tmp) / "secret.png")
    truncate(write_image(root / "train" / "sad" / "t.png", size=32))
    write_image(root / "train" / "sad" / ".hidden.png", size=32)
    write_image(bytes_name(root / "train" / "sad", b"\xff.png"), size=32)
    return root


# Case(id, layout, make, exit, problems, rows, samples, ...)
SCORE_CASES = [
    Case(
        "score_hostile_imagefolder",
        "imagefolder",
        lambda tmp: ["score", str(_hostile_faces(tmp)), "--out", str(out(tmp)), *TINY],
        OK,
        {"path_escapes_root": 1, "corrupt_image": 1, "hidden_file": 1, "invalid_file_name": 1},
        20,
        16,
        slow=True,
    ),
]


# ---------------------------------------------------------------- bad command lines


def faces(tmp: Path) -> Path:
    """A small clean imagefolder dataset: 2 classes x 3 images (8x8)."""
    root = tmp / "data"
    for i in range(3):
        write_image(root / "train" / "happy" / f"h{i}.png", seed=i)
        write_image(root / "train" / "sad" / f"s{i}.png", seed=10 + i)
    return root


def a_file(tmp: Path, name: str = "afile", data: bytes = b"x\n") -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def unwritable(tmp: Path) -> Path:
    """A folder this process cannot create files in: chmod 500, or /sys (refused even to root)."""
    if os.geteuid() == 0:
        return Path("/sys")
    folder = tmp / "locked"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    return folder


def score(tmp: Path, *args: str, data: Path | None = None) -> list[str]:
    return [
        "score",
        str(faces(tmp) if data is None else data),
        "--out",
        str(out(tmp)),
        *TINY,
        *args,
    ]


SCORE_COLUMNS = [
    "sample_id",
    "split",
    "given_label",
    "predicted_label",
    "proposed_label",
    "label_quality",
    "is_label_issue",
    "issue_type",
    "uncertainty",
    "pred_probs",
    "soft_label",
    "path",
]
RUN_CLASSES = ["happiness", "sadness", "fear"]


def write_run(
    tmp: Path,
    *,
    split: str | None = None,
    cls: str | None = None,
    sample_id: str | None = None,
    meta: dict | None = None,
    drop: str | None = None,
    run: Path | None = None,
) -> Path:
    """A scored run folder `run` (default tmp/run; docs/architecture.md, scores.parquet) for 6
    images under tmp/faces, written with pyarrow; row 0 can carry a hostile `split` or
    `sample_id`, and the class 'fear' can be renamed `cls` (a value that becomes a path part
    on export)."""
    classes = [cls if c == "fear" and cls is not None else c for c in RUN_CLASSES]
    run = tmp / "run" if run is None else run
    run.mkdir(parents=True)
    rows = []
    for i in range(6):
        image = write_image(tmp / "faces" / f"f{i}.png", seed=i)
        label = classes[i % 3]
        probs = [0.8 if c == label else 0.1 for c in classes]
        rows.append(
            {
                "sample_id": f"faces/f{i}.png",
                "split": ("train", "val", "test")[i % 3],
                "given_label": label,
                "predicted_label": label,
                "proposed_label": label,
                "label_quality": 0.8,
                "is_label_issue": False,
                "issue_type": "none",
                "uncertainty": 0.2,
                "pred_probs": probs,
                "soft_label": probs,
                "path": str(image),
            }
        )
    if split is not None:
        rows[0]["split"] = split
    if sample_id is not None:
        rows[0]["sample_id"] = sample_id
    table = pa.Table.from_pylist(rows).select(SCORE_COLUMNS)
    if drop is not None:
        table = table.drop_columns([drop])
    metadata = meta
    if metadata is None:
        metadata = {
            "classes": classes,
            "method": "baseline",
            "recipe": {},
            "run_id": "fuzz-run",
            "dataset_root": str(tmp / "faces"),
            "dataset_fingerprint": "fuzz",
            "layout": "imagefolder",
        }
    table = table.replace_schema_metadata({b"fercleaner": json.dumps(metadata).encode()})
    # a file object: pyarrow cannot open non-UTF-8 paths
    with open(run / "scores.parquet", "wb") as fh:
        pq.write_table(table, fh)
    return run


def export(run: Path, tmp: Path, *args: str) -> list[str]:
    return ["export", str(run), "--out", str(out(tmp)), *args]


def cli(id: str, make: Make, error: str | None = None, *, exit: int = USAGE, **kw) -> Case:
    return Case(id, "cli", make, exit, error=error, **kw)


COMMAND_CASES = [
    # -- the command line itself
    cli("cli_unknown_command", lambda tmp: ["frobnicate"], "No such command"),
    cli("cli_inspect_no_dataset", lambda tmp: ["inspect"], "Missing argument"),
    cli(
        "cli_inspect_unknown_option",
        lambda tmp: ["inspect", str(faces(tmp)), "--bogus"],
        "No such option",
    ),
    cli(
        "cli_inspect_max_pixels_zero",
        lambda tmp: ["inspect", str(faces(tmp)), "--max-pixels", "0"],
        "--max-pixels",
    ),
    cli(
        "cli_inspect_max_pixels_text",
        lambda tmp: ["inspect", str(faces(tmp)), "--max-pixels", "lots"],
        "--max-pixels",
    ),
    cli(
        "cli_inspect_max_pixels_negative",
        lambda tmp: ["inspect", str(faces(tmp)), "--max-pixels", "-5"],
        "--max-pixels",
    ),
    cli(
        "cli_inspect_max_problems_negative",
        lambda tmp: ["inspect", str(faces(tmp)), "--max-problems", "-1"],
        "--max-problems",
    ),
    cli(
        "cli_inspect_layout_missing_value",
        lambda tmp: ["inspect", str(faces(tmp)), "--layout"],
        "--layout",
    ),
    cli(
        "cli_inspect_unknown_layout",
        lambda tmp: ["inspect", str(faces(tmp)), "--layout", "imagefolders"],
        "imagefolder",
    ),
    cli(
        "cli_inspect_wrong_layout",
        lambda tmp: ["inspect", str(faces(tmp)), "--layout", "ferplus"],
        "not a ferplus dataset",
    ),
    cli(
        "cli_inspect_missing_dataset",
        lambda tmp: ["inspect", str(tmp / "nothing")],
        "does not exist",
    ),
    cli(
        "cli_inspect_markup_missing_dataset",
        lambda tmp: ["inspect", str(tmp / "[/x]" / "[bold]nothing")],
        "[/x]/[bold]nothing",
    ),
    cli(
        "cli_inspect_markup_dataset_ok",
        lambda tmp: ["inspect", str(faces(tmp / "[/x]" / "[red]"))],
        exit=OK,
    ),
    cli(
        "cli_inspect_a_text_file",
        lambda tmp: ["inspect", str(a_file(tmp, "notes.txt"))],
        "matches no known dataset layout",
    ),
    cli(
        "cli_inspect_empty_folder",
        lambda tmp: (tmp / "empty").mkdir() or ["inspect", str(tmp / "empty")],
        "matches no known dataset layout",
    ),
    cli(
        "cli_inspect_non_utf8_path",
        lambda tmp: ["inspect", str(bytes_name(tmp, b"d\xe9j\xe0"))],
        "d\\xe9j\\xe0",
        subprocess=True,
    ),
    # -- score: checked before any work
    cli("cli_score_no_out", lambda tmp: ["score", str(faces(tmp))], "--out"),
    cli(
        "cli_score_out_is_a_file",
        lambda tmp: [
            "score",
            str(faces(tmp)),
            "--out",
            str(a_file(tmp / OUT.parent, OUT.name)),
            *TINY,
        ],
        "is a file, not a folder",
    ),
    cli(
        "cli_score_out_under_a_file",
        lambda tmp: [
            "score",
            str(faces(tmp)),
            "--out",
            str(a_file(tmp / OUT.parent, OUT.name) / "run"),
            *TINY,
        ],
        "is a file, not a folder",
    ),
    cli(
        "cli_score_out_unwritable",
        lambda tmp: ["score", str(faces(tmp)), "--out", str(unwritable(tmp) / "run"), *TINY],
        "not writable",
    ),
    cli("cli_score_folds_1000", lambda tmp: score(tmp, "train.folds=1000"), "train.folds=1000"),
    cli("cli_score_epochs_negative", lambda tmp: score(tmp, "train.epochs=-1"), "train.epochs"),
    cli(
        "cli_score_option_bad_value",
        lambda tmp: score(tmp, "--method", "mtac", "method.options.tau=fast"),
        "method.options.tau",
    ),
    cli("cli_score_unknown_key", lambda tmp: score(tmp, "train.nosuch=3"), "train.nosuch"),
    cli("cli_score_override_no_equals", lambda tmp: score(tmp, "train.epochs"), "train.epochs"),
    cli(
        "cli_score_batch_size_text",
        lambda tmp: score(tmp, "train.batch_size=abc"),
        "train.batch_size",
    ),
    cli(
        "cli_score_image_size_zero", lambda tmp: score(tmp, "data.image_size=0"), "data.image_size"
    ),
    cli("cli_score_unknown_recipe", lambda tmp: score(tmp, "--recipe", "quik"), "quik"),
    cli(
        "cli_score_recipe_bad_yaml",
        lambda tmp: score(
            tmp, "--recipe", str(a_file(tmp, "r.yaml", b"train: [1, 2\n  epochs: {"))
        ),
        "r.yaml",
    ),
    cli(
        "cli_score_recipe_unknown_key",
        lambda tmp: score(
            tmp, "--recipe", str(a_file(tmp, "r.yaml", b"method: baseline\nsurprise: 1\n"))
        ),
        "surprise",
    ),
    cli("cli_score_unknown_method", lambda tmp: score(tmp, "--method", "mtca"), "mtca"),
    cli(
        "cli_score_garbage_weights",
        lambda tmp: score(
            tmp, "--weights", str(a_file(tmp, "w.safetensors", b"\x00\xffnot weights" * 9))
        ),
        "w.safetensors",
    ),
    cli(
        "cli_score_garbage_torch_weights",
        lambda tmp: score(tmp, "--weights", str(a_file(tmp, "w.pth", b"PK\x03\x04garbage" * 9))),
        "w.pth",
    ),
    cli(
        "cli_score_missing_weights",
        lambda tmp: score(tmp, "--weights", str(tmp / "none.pth")),
        "none.pth",
    ),
    cli(
        "cli_score_missing_dataset", lambda tmp: score(tmp, data=tmp / "nothing"), "does not exist"
    ),
    cli("cli_score_unknown_layout", lambda tmp: score(tmp, "--layout", "nosuch"), "nosuch"),
    cli(
        "cli_score_markup_out_bad_override",
        lambda tmp: [
            "score",
            str(faces(tmp)),
            "--out",
            str(out(tmp) / "[/x]"),
            *TINY,
            "train.folds=1000",
        ],
        "train.folds=1000",
    ),
    # -- export: options, folders, doctored run directories
    cli("cli_export_no_out", lambda tmp: ["export", str(write_run(tmp))], "--out"),
    cli(
        "cli_export_unknown_policy",
        lambda tmp: export(write_run(tmp), tmp, "--policy", "yolo"),
        "yolo",
    ),
    cli(
        "cli_export_min_confidence_2",
        lambda tmp: export(write_run(tmp), tmp, "--min-confidence", "2"),
        "--min-confidence",
    ),
    cli(
        "cli_export_min_confidence_text",
        lambda tmp: export(write_run(tmp), tmp, "--min-confidence", "high"),
        "--min-confidence",
    ),
    cli("cli_export_missing_run", lambda tmp: export(tmp / "norun", tmp), "does not exist"),
    cli("cli_export_run_is_a_file", lambda tmp: export(a_file(tmp, "run"), tmp), "run"),
    cli("cli_export_folder_without_scores", lambda tmp: export(faces(tmp), tmp), "scores.parquet"),
    cli(
        "cli_export_out_is_a_file",
        lambda tmp: [
            "export",
            str(write_run(tmp)),
            "--out",
            str(a_file(tmp / OUT.parent, OUT.name)),
        ],
        "is a file, not a folder",
    ),
    cli(
        "cli_export_out_unwritable",
        lambda tmp: ["export", str(write_run(tmp)), "--out", str(unwritable(tmp) / "cleaned")],
        "not writable",
    ),
    cli(
        "cli_export_out_is_the_run",
        lambda tmp: ["export", str(write_run(tmp)), "--out", str(tmp / "run")],
        "run directory",
    ),
    cli(
        "cli_export_imagefolder_is_a_file",
        lambda tmp: export(
            write_run(tmp), tmp, "--imagefolder", str(a_file(tmp / IMAGES.parent, IMAGES.name))
        ),
        "--imagefolder",
    ),
    cli(
        "cli_export_imagefolder_not_empty",
        lambda tmp: export(
            write_run(tmp), tmp, "--imagefolder", str(a_file(tmp / IMAGES, "old.png").parent)
        ),
        "not empty",
    ),
    cli(
        "cli_export_split_dotdot",
        lambda tmp: export(write_run(tmp, split="../../x"), tmp),
        "'../../x'",
    ),
    cli(
        "cli_export_split_absolute",
        lambda tmp: export(write_run(tmp, split=str(tmp / "abs")), tmp),
        "path separator",
    ),
    cli("cli_export_split_parent", lambda tmp: export(write_run(tmp, split=".."), tmp), "'..'"),
    cli(
        "cli_export_split_control_char",
        lambda tmp: export(write_run(tmp, split="tr\nain"), tmp),
        "control character",
    ),
    cli(
        "cli_export_class_dotdot_imagefolder",
        lambda tmp: export(
            write_run(tmp, cls="../../../x"), tmp, "--imagefolder", str(tmp / IMAGES)
        ),
        "'../../../x'",
    ),
    cli(
        "cli_export_sample_id_nul_imagefolder",
        lambda tmp: export(
            write_run(tmp, sample_id="a\x00b.png"), tmp, "--imagefolder", str(tmp / IMAGES)
        ),
        "NUL",
    ),
    cli(
        "cli_export_scores_not_parquet",
        lambda tmp: export(a_file(tmp / "run", "scores.parquet", b"PAR1 garbage").parent, tmp),
        "scores.parquet",
    ),
    cli(
        "cli_export_scores_missing_column",
        lambda tmp: export(write_run(tmp, drop="pred_probs"), tmp),
        "pred_probs",
    ),
    cli(
        "cli_export_scores_no_metadata",
        lambda tmp: export(write_run(tmp, meta={}), tmp),
        "scores.parquet",
    ),
    cli(
        "cli_export_review_store_garbage",
        lambda tmp: export(
            a_file(tmp / "run", "review.sqlite", b"not a database\n" * 64).parent
            if write_run(tmp)
            else tmp,
            tmp,
        ),
        "review.sqlite",
    ),
    cli(
        "cli_export_non_utf8_out",
        lambda tmp: [
            "export",
            str(write_run(tmp)),
            "--out",
            str(bytes_name(tmp / OUT, b"clean\xe9")),
        ],
        "is not valid UTF-8",
    ),
    cli(
        "cli_export_non_utf8_imagefolder",
        lambda tmp: export(
            write_run(tmp), tmp, "--imagefolder", str(bytes_name(tmp / IMAGES, b"f\xe9"))
        ),
        "is not valid UTF-8",
    ),
    cli(
        "cli_export_non_utf8_run",
        lambda tmp: export(write_run(tmp, run=bytes_name(tmp, b"r\xe9")), tmp),
        "is not valid UTF-8",
    ),
    cli("cli_export_markup_paths_ok", lambda tmp: export(write_run(tmp / "[/x]"), tmp), exit=OK),
    # -- review and synth: refused before serving or drawing anything
    cli("cli_review_missing_run", lambda tmp: ["review", str(tmp / "norun")], "does not exist"),
    cli(
        "cli_review_non_utf8_run",
        lambda tmp: [
            "review",
            str(write_run(tmp, run=bytes_name(tmp, b"r\xe9"))),
            "--port",
            "70000",
        ],
        "scores.parquet",
        subprocess=True,
    ),
    cli(
        "cli_review_port_text",
        lambda tmp: ["review", str(write_run(tmp)), "--port", "http"],
        "--port",
    ),
    cli(
        "cli_review_port_out_of_range",
        lambda tmp: ["review", str(write_run(tmp)), "--port", "70000"],
        "70000",
    ),
    cli(
        "cli_synth_unknown_layout",
        lambda tmp: ["synth", str(out(tmp) / "ds"), "--n", "8", "--layout", "nosuch"],
        "nosuch",
    ),
    cli("cli_synth_n_zero", lambda tmp: ["synth", str(out(tmp) / "ds"), "--n", "0"], "n=0"),
    cli(
        "cli_synth_noise_above_one",
        lambda tmp: ["synth", str(out(tmp) / "ds"), "--n", "8", "--noise", "1.5"],
        "1.5",
    ),
    cli(
        "cli_synth_non_utf8_out",
        lambda tmp: ["synth", str(bytes_name(tmp / OUT, b"ds\xe9")), "--n", "8", "--size", "16"],
        "UTF-8",
        subprocess=True,
    ),
    cli(
        "cli_score_non_utf8_out",
        lambda tmp: [
            "score",
            str(faces(tmp)),
            "--out",
            str(bytes_name(tmp / OUT, b"run\xe9")),
            *TINY,
        ],
        "UTF-8",
        subprocess=True,
        slow=True,
    ),
    cli(
        "cli_synth_out_is_a_file",
        lambda tmp: ["synth", str(a_file(tmp / OUT, "ds")), "--n", "8"],
        "ds",
    ),
]


CASES: list[Case] = [
    *IMAGEFOLDER_CASES,
    *FERPLUS_CASES,
    *FER2013_CASES,
    *RAFDB_CASES,
    *AFFECTNET_CASES,
    *CSV_CASES,
    *SCORE_CASES,
    *COMMAND_CASES,
]


def get_case(case_id: str) -> Case:
    """The case called `case_id`."""
    for case in CASES:
        if case.id == case_id:
            return case
    raise KeyError(case_id)
