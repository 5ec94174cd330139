"""`--imagefolder`: `<folder>/<split>/<label>/<file>` links (or copies), every name checked first.

Splits, labels and sample ids come from the run directory, which is input like any other:
each becomes one plain path part or the export is refused before anything is written.
Image paths were checked to lie under the run's dataset root when the run was opened
(`fercleaner.runs.read_run`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from fercleaner.atomic import get_umask
from fercleaner.export.errors import ExportError

#: Longest file or folder name most file systems accept, in bytes.
MAX_NAME_BYTES = 255


def write_imagefolder(
    manifest: pd.DataFrame,
    folder: str | os.PathLike[str],
    *,
    mode: str = "symlink",
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Lay out `<folder>/<split>/<label>/<file>` for every sample not excluded.

    File names are the `sample_id` with `/` replaced by `__`; every split, label and file
    name is checked (`check_output_names`) before anything is written, so nothing lands
    outside `folder`.
    """
    check_output_names(manifest, source="the manifest", imagefolder=True)
    folder = check_imagefolder_empty(folder)
    total = int((manifest["action"] != "exclude").sum())
    return link_images([manifest], folder, mode=mode, progress=progress, total=total)


def check_imagefolder_empty(folder: str | os.PathLike[str]) -> Path:
    """The folder resolved, or ExportError when it holds anything (old links would mix in)."""
    folder = Path(folder).expanduser().resolve()
    if folder.exists() and any(folder.iterdir()):
        raise ExportError(
            f"image folder {folder} is not empty; pass a new or empty folder so old links "
            "cannot mix with this export"
        )
    return folder


def link_images(
    manifests: Iterable[pd.DataFrame],
    folder: Path,
    *,
    mode: str = "symlink",
    progress: Callable[[int, int], None] | None = None,
    total: int = 0,
) -> Path:
    """Link (or copy) every non-excluded row of each manifest batch into `folder`.

    The names must already be checked (`check_output_names` over all the batches) and
    the folder found empty (`check_imagefolder_empty`); `total` is for `progress`. The
    tree is built in a temp folder beside `folder` and renamed into place, so a failure
    (an image gone since the check, a full disk) leaves no half-written folder behind
    and the same export can simply be run again.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        done = 0
        for manifest in manifests:
            rows = manifest[manifest["action"] != "exclude"]
            for r in rows.itertuples(index=False):
                source = Path(r.path)
                problem = _source_problem(source)
                if problem is not None:
                    raise ExportError(f"sample {r.sample_id!r}: {problem}")
                name = _imagefolder_name(r.sample_id, r.path)
                target = building / r.split / r.label_name / name
                target.parent.mkdir(parents=True, exist_ok=True)
                if mode == "symlink":
                    target.symlink_to(source)
                else:
                    shutil.copy2(source, target)
                done += 1
                if progress is not None:
                    progress(done, total)
        building.chmod(0o777 & ~get_umask())  # mkdtemp made it 0700
        os.replace(building, folder)  # onto an empty folder too (POSIX rename)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return folder


def _source_problem(source: Path) -> str | None:
    """Why the image at `source` cannot be linked (None: it can)."""
    if source.suffix.lower() in (".csv", ".tsv"):
        return (
            f"{source} is a pixel-CSV row, not an image file (such datasets have no files "
            "to link); export without --imagefolder"
        )
    if not source.is_file():
        return (
            f"the image {source} is missing (moved or deleted since the run was scored); "
            "restore it, or export without --imagefolder"
        )
    return None


def check_output_names(
    manifest: pd.DataFrame,
    *,
    source: str,
    imagefolder: bool,
    seen: dict[tuple[str, str, str], str] | None = None,
) -> None:
    """Refuse any manifest value that would not be one plain name under the output folders.

    Splits name the manifest files (`<out>/<split>.parquet`); with `imagefolder`, splits
    and labels also name folders and each `sample_id` a file. A value such as `../../x`,
    `/tmp/x`, `a/b`, `..` or one with a NUL would write outside `--out` or
    `--imagefolder`, and two samples mapping to the same file would collide.

    Args:
        manifest: `build_manifest` output (`sample_id`, `path`, `split`, `label_name`).
        source: where the values came from, for the message (the run's scores file).
        imagefolder: also check label folders and sample file names.
        seen: the image-folder files of the batches checked before this one (updated),
            so collisions are found across a manifest checked a batch at a time.

    Raises:
        ExportError: names `source`, the column, the bad value, one sample and the fix.
    """
    fix = f"fix {source} or re-run `fercleaner score` to write it again"
    columns = ("split", "label_name") if imagefolder else ("split",)
    for column in columns:
        for value, sample_id in manifest.drop_duplicates(column)[[column, "sample_id"]].itertuples(
            index=False
        ):
            names = [value, f"{value}.parquet"] if column == "split" else [value]
            reason = next(filter(None, (_name_problem(n, strict=True) for n in names)), None)
            if reason is not None:
                what = "split" if column == "split" else "class"
                raise ExportError(
                    f"{source}: {what} {value!r} (sample {sample_id!r}) cannot be a file or "
                    f"folder name under the output folder: {reason}; {fix}"
                )
    if not imagefolder:
        return
    seen = {} if seen is None else seen
    rows = manifest[manifest["action"] != "exclude"]
    for sample_id, path, split, label in rows[
        ["sample_id", "path", "split", "label_name"]
    ].itertuples(index=False):
        problem = _source_problem(Path(str(path)))
        if problem is not None:
            raise ExportError(f"{source}: sample {sample_id!r}: {problem}")
        name = _imagefolder_name(sample_id, path)
        reason = _name_problem(name, strict=False)
        if reason is not None:
            raise ExportError(
                f"{source}: sample {sample_id!r} would become the file name {name!r} under "
                f"--imagefolder, which cannot be used: {reason}; {fix}, or export without "
                "--imagefolder"
            )
        other = seen.setdefault((split, label, name), sample_id)
        if other != sample_id:
            raise ExportError(
                f"{source}: samples {other!r} and {sample_id!r} both become "
                f"{split}/{label}/{name} under --imagefolder; rename one of the files, or "
                "export without --imagefolder"
            )


def _imagefolder_name(sample_id: str, path: str) -> str:
    """The file name of a sample in the image folder: `/` as `__`, the image's suffix kept."""
    name = str(sample_id).replace("/", "__")
    if not Path(name).suffix:
        name += Path(str(path)).suffix
    return name


def _name_problem(name: str, *, strict: bool) -> str | None:
    """Why `name` cannot be one file or folder name inside a folder (None: it can).

    `strict` (split and class names, which are printed and typed) also refuses
    backslashes (a separator on Windows) and control characters; sample file names may
    legally hold both, so they are allowed there.
    """
    if name in ("", ".", ".."):
        return "it is empty" if not name else f"{name!r} means a folder itself or its parent"
    if "/" in name or (strict and "\\" in name):
        return "it contains a path separator"
    if "\x00" in name:
        return "it contains a NUL character"
    if strict and any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return "it contains a control character"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"it is longer than {MAX_NAME_BYTES} bytes"
    return None
