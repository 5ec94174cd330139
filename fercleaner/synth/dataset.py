"""Write a synthetic FER dataset in any supported layout, with its ground truth beside it.

`write_synthetic_dataset(out, ...)` draws faces, splits them (stratified by clean class),
simulates annotator votes, writes the layout into a temporary folder renamed into place
(so a crash never leaves half a dataset), then writes `<out>.truth.parquet` beside
`out`, never inside, so readers cannot see the answers.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fercleaner import __version__
from fercleaner.atomic import atomic_path, check_utf8_path
from fercleaner.classes import CANONICAL_CLASSES
from fercleaner.errors import ConfigError, DatasetError
from fercleaner.synth.faces import generate_faces
from fercleaner.synth.labels import check_noise, force_plurality, simulate_votes
from fercleaner.synth.layouts import LAYOUT_CLASSES, LAYOUT_SPLITS, WRITERS

#: Parquet file-metadata key holding the generation settings as JSON.
TRUTH_METADATA_KEY = b"fercleaner"
_TRUTH_KIND = "synthetic_truth"
_DEFAULT_FRACTIONS = {3: (0.8, 0.1, 0.1), 2: (0.8, 0.2)}


def truth_path(out: str | os.PathLike[str]) -> Path:
    """Where the truth of the dataset at `out` lives: `<out>.truth.parquet`, beside it."""
    out = Path(out)
    return out.with_name(out.name + ".truth.parquet")


def write_synthetic_dataset(
    out: str | os.PathLike[str],
    *,
    n: int,
    layout: str,
    seed: int,
    noise_rate: float = 0.0,
    noise_kind: str = "symmetric",
    size: int = 48,
    classes: Sequence[str] | None = None,
    splits: Mapping[str, float] | Sequence[float] | None = None,
    occlusion_rate: float = 0.0,
    ambiguity_rate: float = 0.0,
    channels: int = 1,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Generate `n` faces and write them as a dataset in `layout` under `out`.

    Args:
        out: dataset folder to create. It must not exist, be empty, or hold an earlier
            synthetic dataset (recognised by its truth file), which is then replaced.
        n: number of faces.
        layout: one of `LAYOUT_SPLITS` (imagefolder, ferplus, fer2013, rafdb, affectnet, csv).
        seed: same seed and options, same dataset, byte for byte in its labels.
        noise_rate: fraction of given labels planted wrong (exact count), in [0, 1).
        noise_kind: `symmetric` or `pairflip`.
        size: image side (fer2013 needs 48: its pixel format is fixed).
        classes: canonical classes to draw (default: every class the layout can encode).
        splits: fractions per split, a mapping such as `{"train": 0.8, "test": 0.2}` or a
            sequence aligned with `LAYOUT_SPLITS[layout]`; default 80/10/10 (80/20 for
            two-split layouts).
        occlusion_rate: fraction of faces with glasses or a hand.
        ambiguity_rate: fraction of faces mixing two class prototypes (soft labels).
        channels: 1 (grey) or 3 (RGB); fer2013 needs 1.
        workers: processes drawing and encoding images (output is identical for any value).
        progress: called as `progress(done, total)`; drawing and writing each count `n`.

    Returns:
        The dataset folder; its truth is at `truth_path(out)`.
    """
    out = Path(out)
    classes = _check_layout_options(layout=layout, classes=classes, size=size, channels=channels)
    check_noise(rate=noise_rate, kind=noise_kind, n_classes=len(classes))
    fractions = _resolve_splits(layout, splits)
    replace_old = _check_target(out)
    report = _Progress(progress, n=n)

    images, truth = generate_faces(
        n,
        seed=seed,
        size=size,
        classes=classes,
        channels=channels,
        occlusion_rate=occlusion_rate,
        ambiguity_rate=ambiguity_rate,
        noise_rate=noise_rate,
        noise_kind=noise_kind,
        workers=workers,
        progress=report.drawing,
    )
    _write_layout(
        out,
        images,
        truth,
        layout=layout,
        seed=seed,
        fractions=fractions,
        classes=classes,
        replace_old=replace_old,
        tick=report.tick,
        workers=workers,
    )
    metadata = {
        "kind": _TRUTH_KIND,
        "fercleaner_version": __version__,
        "layout": layout,
        "n": n,
        "seed": seed,
        "size": size,
        "channels": channels,
        "classes": classes,
        "splits": dict(zip(LAYOUT_SPLITS[layout], fractions, strict=True)),
        "noise_rate": noise_rate,
        "noise_kind": noise_kind,
        "n_noisy": int(truth["is_noisy"].sum()),
        "occlusion_rate": occlusion_rate,
        "ambiguity_rate": ambiguity_rate,
    }
    write_truth(truth_path(out), truth, metadata=metadata)
    report.finish()
    return out


class _Progress:
    """One `progress(done, 2 * n)` over both phases: drawing counts the first `n`, writing
    the second (reported every 256 images, and at the end)."""

    def __init__(self, progress: Callable[[int, int], None] | None, *, n: int) -> None:
        self._progress = progress
        self._total = 2 * n
        self._done = self._reported = n  # `tick` only runs once drawing is over

    @property
    def drawing(self) -> Callable[[int, int], None] | None:
        """The callback for `generate_faces`: its `done` counts faces drawn."""
        if self._progress is None:
            return None
        return lambda done, _total: self._progress(done, self._total)

    def tick(self, k: int) -> None:
        """`k` more images written."""
        self._done += k
        if self._progress is not None and (
            self._done - self._reported >= 256 or self._done == self._total
        ):
            self._reported = self._done
            self._progress(self._done, self._total)

    def finish(self) -> None:
        """Everything is on disk, truth included."""
        if self._progress is not None:
            self._progress(self._total, self._total)


def _write_layout(
    out: Path,
    images: np.ndarray,
    truth: pd.DataFrame,
    *,
    layout: str,
    seed: int,
    fractions: tuple[float, ...],
    classes: list[str],
    replace_old: bool,
    tick: Callable[[int], None],
    workers: int,
) -> None:
    """Split the faces, simulate their votes and write them in `layout` at `out`.

    Adds `split` and the writer's `sample_id` to `truth`. The files go to a temporary
    folder beside `out` that is renamed into place, so a crash never leaves half a dataset
    and an earlier synthetic dataset at `out` is removed only once the new one is complete.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    names = LAYOUT_SPLITS[layout]
    split = _assign_splits(
        truth["clean_label"].to_numpy(), names=names, fractions=fractions, classes=classes
    )
    truth.insert(0, "split", pd.array(split, dtype="string"))
    votes = _make_votes(truth, classes=classes, layout=layout, rng=rng)

    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        ids = WRITERS[layout](
            tmp, images, truth, tick=tick, votes=votes, classes=classes, rng=rng, workers=workers
        )
        truth.insert(0, "sample_id", pd.array(ids, dtype="string"))
        if replace_old:
            shutil.rmtree(out)
        elif out.exists():
            out.rmdir()  # empty, checked by _check_target
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_truth(path: Path, truth: pd.DataFrame, *, metadata: dict) -> None:
    """Write the truth table atomically: `soft_label` as list<float32>, settings as JSON."""
    table = pa.Table.from_pandas(truth, preserve_index=False)
    soft_type = pa.list_(pa.float32())
    index = table.schema.get_field_index("soft_label")
    table = table.set_column(
        index,
        "soft_label",
        pa.array([np.asarray(s, np.float32) for s in truth["soft_label"]], soft_type),
    )
    table = table.replace_schema_metadata({TRUTH_METADATA_KEY: json.dumps(metadata).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_truth(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, dict]:
    """Read a truth file written by `write_synthetic_dataset`: (table, generation settings).

    Raises:
        DatasetError: the file is missing or is not a fercleaner truth file.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(
            f"no truth file at {path}; synthetic datasets keep it beside the dataset folder"
            " as <folder>.truth.parquet (run `fercleaner synth` to make one)"
        )
    metadata = _read_truth_metadata(path)
    if metadata is None:
        raise DatasetError(f"{path} is not a fercleaner synthetic truth file (no metadata key)")
    return pd.read_parquet(path), metadata


def _read_truth_metadata(path: Path) -> dict | None:
    try:
        raw = (pq.read_schema(path).metadata or {}).get(TRUTH_METADATA_KEY)
        meta = json.loads(raw) if raw else None
    except (OSError, pa.ArrowException, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("kind") == _TRUTH_KIND else None


def _check_layout_options(
    *, layout: str, classes: Sequence[str] | None, size: int, channels: int
) -> list[str]:
    """Validate what the layout can encode; return the class list in canonical order."""
    if layout not in WRITERS:
        raise ConfigError(f"unknown layout {layout!r}; choose one of {', '.join(WRITERS)}")
    allowed = LAYOUT_CLASSES.get(layout, CANONICAL_CLASSES)
    chosen = list(allowed) if classes is None else list(classes)
    bad = [c for c in chosen if c not in allowed]
    if bad:
        raise ConfigError(
            f"layout {layout!r} cannot encode classes {bad}; it supports {', '.join(allowed)}"
        )
    if layout == "fer2013" and (size != 48 or channels != 1):
        raise ConfigError(
            f"layout 'fer2013' stores 48x48 grey pixels; got size={size}, channels={channels}"
            " (use --size 48 and grey, or another layout)"
        )
    return [c for c in CANONICAL_CLASSES if c in chosen]


def _resolve_splits(
    layout: str, splits: Mapping[str, float] | Sequence[float] | None
) -> tuple[float, ...]:
    """Fractions aligned with `LAYOUT_SPLITS[layout]`, validated to be >= 0 and sum to 1."""
    names = LAYOUT_SPLITS[layout]
    if splits is None:
        return _DEFAULT_FRACTIONS[len(names)]
    if isinstance(splits, Mapping):
        extra = [s for s in splits if s not in names]
        if extra:
            raise ConfigError(
                f"layout {layout!r} has no split(s) {extra}; it supports {', '.join(names)}"
            )
        fractions = tuple(float(splits.get(s, 0.0)) for s in names)
    else:
        fractions = tuple(float(f) for f in splits)
        if len(fractions) != len(names):
            raise ConfigError(
                f"splits {list(fractions)}: layout {layout!r} needs {len(names)} fractions"
                f" for {', '.join(names)}"
            )
    if min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise ConfigError(f"split fractions {list(fractions)} must be >= 0 and sum to 1")
    return fractions


def _check_target(out: Path) -> bool:
    """True if `out` holds an old synthetic dataset to replace; raise if it holds other files."""
    check_utf8_path(out, what="synthetic dataset folder")  # its truth file is Parquet
    if not out.exists():
        return False
    if not out.is_dir():
        raise DatasetError(f"{out} exists and is not a folder; choose another output path")
    if not any(out.iterdir()):
        return False
    if _read_truth_metadata(truth_path(out)) is not None:
        return True
    raise DatasetError(
        f"{out} is not empty and is not an earlier synthetic dataset (no {truth_path(out).name}"
        " beside it); choose a new folder or empty this one"
    )


def _assign_splits(
    clean: np.ndarray, *, names: tuple[str, ...], fractions: tuple[float, ...], classes: list[str]
) -> np.ndarray:
    """Split name per face: exact global counts, and every class spread over the splits.

    Faces are ordered by their rank within their class (as a fraction of the class size),
    then cut at the cumulative fractions, so each split gets each class in proportion.
    """
    position = np.zeros(len(clean))
    for c in classes:
        idx = np.flatnonzero(clean == c)
        position[idx] = (np.arange(len(idx)) + 0.5) / len(idx)
    order = np.argsort(position, kind="stable")
    bounds = np.round(np.cumsum(fractions) * len(clean)).astype(int)
    split = np.empty(len(clean), dtype=object)
    for name, start, stop in zip(names, np.concatenate([[0], bounds[:-1]]), bounds, strict=True):
        split[order[start:stop]] = name
    return split


def _make_votes(
    truth: pd.DataFrame, *, classes: list[str], layout: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """10 crowd votes per face over the 8 canonical classes, plus `unknown` counts.

    For ferplus the given label *is* the plurality vote, so votes are pushed until the
    (possibly planted-wrong) given label wins outright; elsewhere they stay honest.
    """
    soft = np.stack(truth["soft_label"].to_numpy())
    votes, unknown = simulate_votes(soft, rng=rng)
    full = np.zeros((len(truth), len(CANONICAL_CLASSES)), dtype=np.int32)
    full[:, [CANONICAL_CLASSES.index(c) for c in classes]] = votes
    if layout == "ferplus":
        index = {c: i for i, c in enumerate(CANONICAL_CLASSES)}
        given = np.array([index[g] for g in truth["given_label"]], dtype=np.int64)
        force_plurality(full, unknown, given)
    return full, unknown
