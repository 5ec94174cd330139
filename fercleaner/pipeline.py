"""`score_dataset`: read a dataset, decode it once, train the method(s), score every sample, write RUN_DIR.

    read_dataset -> build_cache -> train_and_score (per method) -> assemble_scores
                 -> RUN_DIR/{scores.parquet, run.json, problems.parquet, dynamics.parquet, events.parquet}

Ingestion and decode problems are recorded in problems.parquet and excluded; they never
abort the run. Under `torchrun` every rank trains its shard and rank 0 writes the files.
What can be checked before any work is checked first (recipe, method names, that RUN_DIR
is writable, the weights file, then `train.folds` against the class counts right after
reading), so a bad command fails in seconds, not after training.
"""

from __future__ import annotations

import hashlib
import platform
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fercleaner.atomic import (
    atomic_path,
    check_output_dir,
    remove_stale_temporaries,
    write_json_atomic,
)
from fercleaner.config import Recipe, load_recipe, recipe_to_dict
from fercleaner.errors import ConfigError, DatasetError
from fercleaner.priors import AU_IDS, au_column

#: Run-directory file names (docs/architecture.md, "Run directory").
SCORES_FILE = "scores.parquet"
RUN_FILE = "run.json"
PROBLEMS_FILE = "problems.parquet"
DYNAMICS_FILE = "dynamics.parquet"
EVENTS_FILE = "events.parquet"
CHECKPOINTS_DIR = "checkpoints"
_RUN_FILES = (SCORES_FILE, RUN_FILE, PROBLEMS_FILE, DYNAMICS_FILE, EVENTS_FILE)


@dataclass(frozen=True)
class ScoreProgress:
    """One progress report: `stage` is read, cache, train or predict.

    For read/cache `done`/`total` count images; for train/predict `train` holds the
    trainer's report (epoch, step, loss, images/s, ETA).
    """

    stage: str
    done: int = 0
    total: int = 0
    train: Any = None
    """A `fercleaner.training.trainer.TrainProgress` during train/predict."""


ProgressFn = Callable[[ScoreProgress], None]


@dataclass
class ScoreResult:
    """What `score_dataset` wrote, and the run summary for the CLI."""

    run_dir: Path
    scores_path: Path
    scores: pd.DataFrame
    """The scores frame as written."""
    classes: list[str]
    problems: pd.DataFrame
    """Ingestion + decode problems (excluded samples)."""
    run_info: dict[str, Any] = field(default_factory=dict)
    """The content of run.json."""


def score_dataset(
    dataset_path: str | Path,
    out_dir: str | Path,
    *,
    recipe: str | Path | Recipe | None = "default",
    overrides: Sequence[str] = (),
    method: str | None = None,
    weights: str | Path | None = None,
    layout: str | None = None,
    resume: bool = False,
    follow_links: bool = False,
    progress: ProgressFn | None = None,
) -> ScoreResult | None:
    """Score every sample of a dataset; write the run directory; return the result (None off rank 0).

    Args:
        dataset_path: dataset folder (any layout `read_dataset` detects) or manifest.
        out_dir: run directory to create or continue.
        recipe: shipped recipe name, YAML path, a `Recipe`, or None for the defaults.
        overrides: `key=value` recipe overrides (applied after `method`/`weights`/`layout`).
        method: registered method name, several comma-separated, or `all`; the first is
            the primary source of the scores (default: the recipe's `method.name`). A
            method other than the recipe's trains with its own default options.
        weights: backbone weights file (same as `backbone.weights=FILE`).
        layout: dataset layout name (same as `data.layout=NAME`).
        resume: continue from the checkpoints in `out_dir/checkpoints`.
        follow_links: read images and folders through symbolic links that lead outside
            the dataset folder (default: `path_escapes_root` problems, not read).
        progress: called with `ScoreProgress` reports.

    Raises:
        ConfigError: bad recipe, method, weights file, or `train.folds` larger than the
            smallest class's training samples (checked right after reading).
        OutputError: `out_dir` is a file or not writable (checked before reading).
        DatasetError: the dataset cannot be read, or nothing is left to train on.
    """
    from fercleaner.methods.registry import get_method_class, list_methods
    from fercleaner.training.budget import resolve_train_budget
    from fercleaner.training.checkpoint import remove_stale_checkpoint_temporaries
    from fercleaner.training.distributed import (
        barrier,
        init_distributed,
        shutdown_distributed,
    )
    from fercleaner.training.trainer import train_and_score

    timings: dict[str, float] = {}
    started = time.perf_counter()
    extra = [f"backbone.weights={weights}"] * bool(weights) + [f"data.layout={layout}"] * bool(
        layout
    )
    if method:
        extra.append(f"method.name={method}")
    resolved = _resolve_recipe(recipe, [*extra, *overrides])
    method_names = _method_names(resolved.method.name, list_methods())
    for name in method_names:
        get_method_class(name)  # fail on a typo before any work
    run_dir = check_output_dir(out_dir, what="run directory")
    _check_weights(resolved.backbone.weights)
    dist_info = init_distributed()
    report = progress if (progress is not None and dist_info.is_main) else None
    try:
        if dist_info.is_main:  # what a kill -9 mid-write left behind (atomic writes)
            remove_stale_temporaries(run_dir, targets=set(_RUN_FILES))
            remove_stale_checkpoint_temporaries(run_dir / CHECKPOINTS_DIR)
        # Rank 0 reads and decodes first so the other ranks find a warm cache.
        if not dist_info.is_main:
            barrier(dist_info)
        t = time.perf_counter()
        dataset = _read(dataset_path, resolved, report, follow_links=follow_links)
        timings["read_s"] = time.perf_counter() - t
        _check_folds(dataset.samples, resolved, decoded=False)
        t = time.perf_counter()
        channels = _resolve_channels(resolved.data.channels, dataset)
        cache = _build_cache(dataset.samples, resolved, channels, report)
        timings["cache_s"] = time.perf_counter() - t
        if dist_info.is_main:
            barrier(dist_info)

        samples, problems = _usable_samples(dataset, cache)
        _check_folds(samples, resolved, decoded=True)
        classes = list(dataset.classes)
        data = _train_data(samples, classes, cache, resolved)
        # `auto` budgets become numbers here: run.json and checkpoints record what trained
        resolved = resolve_train_budget(resolved, n_train=int(data.train_mask.sum()))
        if not data.train_mask.any():
            raise DatasetError(
                f"no samples of {str(dataset.root)!r} are in the training splits"
                f" {list(resolved.data.splits)}; splits present:"
                f" {sorted(samples['split'].unique())}. Set data.splits accordingly."
            )

        results = []
        for name in method_names:
            t = time.perf_counter()
            result = train_and_score(
                data,
                resolved,
                method_name=name,
                run_dir=run_dir,
                resume=resume,
                dist_info=dist_info,
                progress=(lambda p: report(ScoreProgress(stage=p.phase, train=p)))
                if report
                else None,
            )
            timings[f"train_{name}_s"] = time.perf_counter() - t
            results.append(result)
        if not dist_info.is_main:
            return None
        return _write_run(
            run_dir,
            dataset=dataset,
            samples=samples,
            problems=problems,
            classes=classes,
            recipe=resolved,
            results=results,
            channels=channels,
            timings=timings,
            started=started,
            world_size=dist_info.world_size,
        )
    finally:
        shutdown_distributed(dist_info)


def summarize_scores(
    scores: pd.DataFrame, classes: Sequence[str], *, top: int = 5
) -> dict[str, Any]:
    """Per-class counts and flags, issue-type counts and the top given->proposed confusions."""
    flagged = scores[scores["is_label_issue"]]
    per_class = []
    for name in classes:
        rows = scores["given_label"] == name
        per_class.append(
            {
                "class": name,
                "count": int(rows.sum()),
                "flagged": int((rows & scores["is_label_issue"]).sum()),
            }
        )
    moved = flagged[flagged["proposed_label"] != flagged["given_label"]]
    pairs = (
        moved.groupby(["given_label", "proposed_label"], observed=True)
        .size()
        .sort_values(ascending=False)
    )
    confusions = [
        {"given": str(g), "proposed": str(p), "count": int(c)}
        for (g, p), c in pairs.head(top).items()
    ]
    return {
        "samples": len(scores),
        "flagged": int(scores["is_label_issue"].sum()),
        "issue_types": {
            str(k): int(v) for k, v in scores["issue_type"].value_counts().sort_index().items()
        },
        "per_class": per_class,
        "top_confusions": confusions,
    }


def _check_weights(weights: str | None) -> None:
    """Fail before any work unless `weights` (if set) loads as safetensors or a torch state dict.

    The backbone loads it again when the first model is built; this only makes a missing
    or garbage file a one-line `ConfigError` up front instead of after reading and decoding.
    """
    if not weights:
        return
    path = Path(weights).expanduser()
    fix = (
        "pass a .safetensors or torch .pth/.pt weights file, or drop --weights to train"
        " from scratch."
    )
    if not path.is_file():
        raise ConfigError(f"weights file {str(path)!r} does not exist (or is not a file); {fix}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            import torch

            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # safetensors, pickle and zip readers raise many types
        reason = (str(exc).strip().splitlines() or [""])[0].split(". ")[0][:200]
        raise ConfigError(
            f"weights file {str(path)!r} cannot be read as"
            f" {'safetensors' if path.suffix == '.safetensors' else 'a torch state dict'}"
            f" ({type(exc).__name__}: {reason}); {fix}"
        ) from None
    if not isinstance(state, dict) or not state:
        raise ConfigError(
            f"weights file {str(path)!r} holds {type(state).__name__}, not a state dict of"
            f" named tensors; {fix}"
        )


def _check_folds(samples: pd.DataFrame, recipe: Recipe, *, decoded: bool) -> None:
    """Cross-fitting puts every class in every fold: `train.folds` <= the smallest class's count.

    With K folds, model k trains without fold k and predicts it. K above the number of
    training samples leaves folds empty; K above a class's count leaves that class out of
    some folds (and with one sample, out of the model that predicts it). Counted over
    the training splits, before decoding (`decoded=False`) and again after it.
    """
    folds = recipe.train.folds
    if folds <= 1 or samples.empty:
        return
    training = samples["split"].astype(str).isin(recipe.data.splits).to_numpy()
    counts = samples.loc[training, "given_label"].astype(str).value_counts()
    if counts.empty or folds <= int(counts.min()):
        return  # no training samples at all: reported after decoding with its own message
    smallest, n = str(counts.idxmin()), int(counts.min())
    which = "decodable training samples" if decoded else "training samples"
    instead = f"train.folds={n} or fewer, or " if n >= 2 else ""
    raise ConfigError(
        f"train.folds={folds} is more than the {n} {which} of class {smallest!r} (splits"
        f" {', '.join(recipe.data.splits)}); cross-fitting needs every class in every fold, so"
        f" folds can be at most the smallest class count. Use {instead}train.folds=1"
        " (in-sample)."
    )


def _resolve_recipe(recipe: str | Path | Recipe | None, overrides: Sequence[str]) -> Recipe:
    if isinstance(recipe, Recipe):
        from fercleaner.config import recipe_from_dict

        return recipe_from_dict(recipe_to_dict(recipe), overrides=overrides)
    return load_recipe(recipe, overrides=overrides)


def _method_names(spec: str, registered: list[str]) -> list[str]:
    """`all` -> every registered method (baseline first); `a,b` -> [a, b]."""
    if spec == "all":
        return sorted(registered, key=lambda name: (name != "baseline", name))
    return [part.strip() for part in spec.split(",") if part.strip()]


def _read(
    dataset_path: str | Path,
    recipe: Recipe,
    report: ProgressFn | None,
    *,
    follow_links: bool = False,
):
    from fercleaner.datasets import read_dataset

    callback = (lambda done, total: report(ScoreProgress("read", done, total))) if report else None
    # no image check here: the cache decodes each image once with the same code and
    # quarantines what fails (`_usable_samples`), and a warm cache decodes nothing
    return read_dataset(
        dataset_path,
        recipe.data.layout,
        follow_links=follow_links,
        check_images=False,
        progress=callback,
    )


def _build_cache(samples: pd.DataFrame, recipe: Recipe, channels: int, report: ProgressFn | None):
    from fercleaner.cache import build_cache

    callback = (lambda done, total: report(ScoreProgress("cache", done, total))) if report else None
    return build_cache(samples, size=recipe.data.image_size, channels=channels, progress=callback)


def _resolve_channels(channels: int | str, dataset: Any, *, probe: int = 32) -> int:
    """`auto` -> 1 when every probed image is grey (mode L, or R == G == B), else 3."""
    if channels != "auto":
        return int(channels)
    samples = dataset.samples
    if "pixels" in samples.columns or samples.empty:
        return 1  # pixel-CSV datasets (fer2013) are grey by definition
    from PIL import Image

    step = max(1, len(samples) // probe)
    for path in samples["path"].iloc[::step].head(probe):
        try:
            with Image.open(path) as image:
                if image.mode in ("L", "LA", "I", "I;16", "1", "F"):
                    continue
                rgb = np.asarray(image.convert("RGB").resize((32, 32)), dtype=np.int16)
        except OSError:
            continue  # the cache reports undecodable files
        if (
            np.abs(rgb[..., 0] - rgb[..., 1]).max() > 8
            or np.abs(rgb[..., 1] - rgb[..., 2]).max() > 8
        ):
            return 3
    return 1


def _usable_samples(dataset: Any, cache: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Samples the cache decoded (order kept) and all problems (ingestion + decode)."""
    decoded = set(map(str, cache.sample_ids))
    keep = dataset.samples["sample_id"].astype(str).isin(decoded).to_numpy()
    samples = dataset.samples.loc[keep].reset_index(drop=True)
    frames = [
        f for f in (dataset.problems, getattr(cache, "problems", None)) if f is not None and len(f)
    ]
    problems = pd.concat(frames, ignore_index=True) if frames else dataset.problems.iloc[0:0]
    return samples, problems


def _train_data(samples: pd.DataFrame, classes: list[str], cache: Any, recipe: Recipe):
    from fercleaner.training.trainer import TrainData

    index = {name: i for i, name in enumerate(classes)}
    labels = np.array([index[str(v)] for v in samples["given_label"]], dtype=np.int64)
    sample_ids = samples["sample_id"].astype(str).to_numpy()
    au_cols = [au_column(a) for a in AU_IDS]
    au = None
    if any(c in samples.columns for c in au_cols):
        au = np.stack(
            [
                pd.to_numeric(samples[c], errors="coerce").to_numpy(np.float32)
                if c in samples.columns
                else np.full(len(samples), np.nan, np.float32)
                for c in au_cols
            ],
            axis=1,
        )
    va = None
    if "valence" in samples.columns and "arousal" in samples.columns:
        va = np.stack(
            [
                pd.to_numeric(samples[c], errors="coerce").to_numpy(np.float32)
                for c in ("valence", "arousal")
            ],
            axis=1,
        )
    return TrainData(
        images=cache.images,
        rows=np.asarray(cache.rows(sample_ids), dtype=np.int64),
        labels=labels,
        train_mask=samples["split"].astype(str).isin(recipe.data.splits).to_numpy(),
        classes=tuple(classes),
        sample_ids=sample_ids,
        au_targets=au,
        va_targets=va,
    )


def _write_run(
    run_dir: Path,
    *,
    dataset: Any,
    samples: pd.DataFrame,
    problems: pd.DataFrame,
    classes: list[str],
    recipe: Recipe,
    results: list[Any],
    channels: int,
    timings: dict[str, float],
    started: float,
    world_size: int,
) -> ScoreResult:
    from fercleaner.scoring import assemble_scores, write_scores

    t = time.perf_counter()
    primary = results[0]
    readouts: dict[str, dict[str, np.ndarray]] = {r.method: r.readout for r in results}
    if recipe.score.dynamics and primary.dynamics_readout is not None:
        readouts["dynamics"] = primary.dynamics_readout
    scores = assemble_scores(
        samples, classes, readouts, method_name=primary.method, flag_rule=recipe.score.flag_rule
    )
    fingerprint = _dataset_fingerprint(samples)
    run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    recipe_dict = recipe_to_dict(recipe)
    metadata = {
        "classes": classes,
        "method": primary.method,
        "methods": [r.method for r in results],
        "sources": list(readouts),
        "recipe": recipe_dict,
        "run_id": run_id,
        "dataset_root": str(dataset.root),
        "dataset_fingerprint": fingerprint,
        "layout": dataset.layout,
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    scores_path = write_scores(scores, run_dir / SCORES_FILE, metadata=metadata)
    _write_parquet(problems, run_dir / PROBLEMS_FILE)
    _write_parquet(
        pd.concat([r.dynamics for r in results], ignore_index=True), run_dir / DYNAMICS_FILE
    )
    _write_parquet(pd.concat([r.events for r in results], ignore_index=True), run_dir / EVENTS_FILE)
    timings["write_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - started
    summary = summarize_scores(scores, classes)
    run_info = {
        **{
            k: metadata[k]
            for k in (
                "run_id",
                "method",
                "methods",
                "sources",
                "layout",
                "dataset_root",
                "dataset_fingerprint",
            )
        },
        "classes": classes,
        "recipe": recipe_dict,
        "seed": recipe.train.seed,
        "channels": channels,
        "device": primary.device,
        "precision": primary.precision,
        "world_size": world_size,
        "versions": _versions(),
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "training": [
            {
                "method": r.method,
                "seconds": round(r.seconds, 3),
                "images_trained": r.images_trained,
                "images_per_s": round(r.images_trained / max(r.seconds, 1e-9), 1),
            }
            for r in results
        ],
        "counts": {
            "rows_listed": int(dataset.rows_listed),
            "ingested": int(len(dataset.samples)),
            "problems": int(len(problems)),
            "quarantined_decode": int(len(dataset.samples) - len(samples)),
            "scored": int(len(scores)),
            "trained_on": int(samples["split"].astype(str).isin(recipe.data.splits).sum()),
            "flagged": summary["flagged"],
            "issue_types": summary["issue_types"],
            "relabel_events": int(sum(len(r.events) for r in results)),
        },
        "summary": summary,
    }
    write_json_atomic(run_dir / RUN_FILE, run_info)
    return ScoreResult(
        run_dir=run_dir,
        scores_path=scores_path,
        scores=scores,
        classes=classes,
        problems=problems,
        run_info=run_info,
    )


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Atomic Parquet write; object columns holding mixed values are stored as strings."""
    frame = frame.copy()
    for name in frame.columns:
        if frame[name].dtype == object:
            values = frame[name]
            if not values.map(lambda v: v is None or isinstance(v, str)).all():
                frame[name] = values.map(lambda v: None if v is None else str(v))
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def _dataset_fingerprint(samples: pd.DataFrame) -> str:
    """Hash of the sample ids and given labels: equal fingerprints, same labelled dataset."""
    digest = hashlib.sha256()
    for sid, label in zip(
        samples["sample_id"].astype(str), samples["given_label"].astype(str), strict=True
    ):
        digest.update(f"{sid}\t{label}\n".encode())
    return digest.hexdigest()[:16]


def _versions() -> dict[str, str]:
    import torch

    import fercleaner

    versions = {
        "fercleaner": fercleaner.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    for module in ("timm", "numpy", "pandas", "pyarrow"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            continue
    return versions
