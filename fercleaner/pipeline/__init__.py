"""`score_dataset`: read a dataset, decode it once, train, score every sample, write RUN_DIR.

    read_dataset -> build_cache -> train_and_score (per method) -> assemble_columns
                 -> apply_crowd_votes (when the dataset has votes)
                 -> RUN_DIR/{scores, problems, dynamics, events}.parquet + run.json

The scores stay columns (`fercleaner.scoring.ScoreColumns`) until they are written, a
row group at a time.

Ingestion and decode problems are recorded in problems.parquet and excluded; they never
abort the run. Under `torchrun` every rank trains its shard and rank 0 writes the files
(`fercleaner.runs` names and writes them). What can be checked before any work is checked
first (recipe, method names, that RUN_DIR is writable, the weights file, then
`train.folds` against the class counts right after reading), so a bad command fails in
seconds, not after training.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fercleaner.config import Recipe, recipe_to_dict
from fercleaner.errors import DatasetError
from fercleaner.pipeline.checks import (
    check_before_work,
    check_folds,
    check_review_matches,
    get_predictions_flag_rule,
)
from fercleaner.pipeline.inputs import (
    build_sample_cache,
    build_train_data,
    get_usable_samples,
    read_samples,
    resolve_channels,
)
from fercleaner.runs import (
    CHECKPOINTS_DIR,
    SCORES_FILE,
    build_run_info,
    build_scores_metadata,
    remove_stale_run_temporaries,
    write_run_info,
    write_run_tables,
)


@dataclass(frozen=True)
class ScoreProgress:
    """One progress report: `stage` is read, cache, train or predict.

    For read/cache `done`/`total` count images ((0, 0) first from read: started, the
    count not known yet); for train/predict `train` holds the trainer's report (epoch,
    step, loss, images/s, ETA).
    """

    stage: str
    done: int = 0
    total: int = 0
    train: Any = None
    """A `fercleaner.training.trainer.TrainProgress` during train/predict."""


ProgressFn = Callable[[ScoreProgress], None]


def _count_progress(stage: str, report: ProgressFn | None) -> Callable[[int, int], None] | None:
    """`report` as the `progress(done, total)` callback of reading or decoding."""
    if report is None:
        return None
    return lambda done, total: report(ScoreProgress(stage, done, total))


@dataclass
class ScoreResult:
    """What `score_dataset` wrote, and the run summary for the CLI."""

    run_dir: Path
    scores_path: Path
    classes: list[str]
    problems: pd.DataFrame
    """Ingestion + decode problems (excluded samples)."""
    run_info: dict[str, Any] = field(default_factory=dict)
    """The content of run.json."""

    @functools.cached_property
    def scores(self) -> pd.DataFrame:
        """The scores frame as written (most suspect first, `fercleaner.scoring.SCORES_ORDER`),
        read from `scores_path` on first use (the file as it is then): a run writes its
        scores a row group at a time and never holds a frame of every row (about 600
        bytes a sample at its peak)."""
        from fercleaner.scoring import read_scores

        return read_scores(self.scores_path).frame


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
    allow_outside_root: bool = False,
    predictions: str | Path | None = None,
    progress: ProgressFn | None = None,
) -> ScoreResult | None:
    """Score every sample of a dataset and write the run directory; the result (None off rank 0).

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
        allow_outside_root: accept manifest paths that leave the manifest's folder.
        predictions: a user's own probabilities file (`fercleaner.predictions`): no training.
        progress: called with `ScoreProgress` reports.

    Raises:
        ConfigError: bad recipe, method, weights file, or `train.folds` larger than the
            smallest class's training samples (checked right after reading).
        OutputError: `out_dir` is a file or not writable (checked before reading).
        DatasetError: the dataset cannot be read, or nothing is left to train on.
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    resolved, method_names, run_dir = check_before_work(
        recipe, overrides, method=method, weights=weights, layout=layout, out_dir=out_dir
    )
    if predictions is not None:
        return _score_from_predictions(
            dataset_path,
            predictions,
            run_dir,
            resolved,
            report=progress,
            follow_links=follow_links,
            allow_outside_root=allow_outside_root,
            trains=bool(method or weights or resume),
            flag_rule=get_predictions_flag_rule(recipe, overrides, resolved),
            started=started,
        )
    # after the predictions branch: it trains nothing and never imports torch
    from fercleaner.training.checkpoint import remove_stale_checkpoint_temporaries
    from fercleaner.training.device import check_thread_count
    from fercleaner.training.distributed import init_distributed, shutdown_distributed

    check_thread_count(resolved.train.num_threads)  # machine-dependent: not in the recipe check

    dist_info = init_distributed(resolved.train.device)
    report = progress if (progress is not None and dist_info.is_main) else None
    try:
        if dist_info.is_main:  # what a kill -9 mid-write left behind (atomic writes)
            remove_stale_run_temporaries(run_dir)
            remove_stale_checkpoint_temporaries(run_dir / CHECKPOINTS_DIR)
        dataset, channels, cache = _read_and_decode(
            dataset_path,
            run_dir,
            resolved,
            dist_info,
            report,
            timings,
            follow_links=follow_links,
            allow_outside_root=allow_outside_root,
        )
        samples, problems, data, resolved = _prepare_training(dataset, cache, resolved)
        classes = list(dataset.classes)
        results = _train_methods(
            data, resolved, method_names, run_dir, resume, dist_info, report, timings
        )
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


def _score_from_predictions(
    dataset_path: str | Path,
    predictions: str | Path,
    run_dir: Path,
    recipe: Recipe,
    *,
    report: ProgressFn | None,
    follow_links: bool,
    allow_outside_root: bool,
    trains: bool,
    flag_rule: str,
    started: float,
) -> ScoreResult:
    """Read the dataset and score it with a predictions file (no cache, no training)."""
    from fercleaner.errors import ConfigError
    from fercleaner.pipeline.from_predictions import write_predictions_run

    if trains:
        raise ConfigError(
            "--predictions scores with your model's probabilities: --method, --weights and "
            "--resume (which train fercleaner's) do not apply; drop them"
        )
    remove_stale_run_temporaries(run_dir)
    t = time.perf_counter()
    dataset = read_samples(
        dataset_path,
        recipe,
        _count_progress("read", report),
        follow_links=follow_links,
        allow_outside_root=allow_outside_root,
    )
    timings = {"read_s": time.perf_counter() - t}
    check_review_matches(run_dir, dataset.root)
    recipe = dataclasses.replace(
        recipe, score=dataclasses.replace(recipe.score, flag_rule=flag_rule)
    )
    run_info = write_predictions_run(
        dataset, predictions, run_dir, recipe, started=started, timings=timings
    )
    return ScoreResult(
        run_dir=run_dir,
        scores_path=run_dir / SCORES_FILE,
        classes=list(dataset.classes),
        problems=dataset.problems,
        run_info=run_info,
    )


def _read_and_decode(
    dataset_path: str | Path,
    run_dir: Path,
    recipe: Recipe,
    dist_info: Any,
    report: ProgressFn | None,
    timings: dict[str, float],
    *,
    follow_links: bool,
    allow_outside_root: bool,
) -> tuple[Any, int, Any]:
    """Read the dataset, check it against the folds and the run's review decisions, decode
    every image (`read_s`, `cache_s` timings).

    Rank 0 reads and decodes first so the other ranks find a warm cache.

    Returns:
        (the `Dataset`, image channels, the `ImageCache`).
    """
    from fercleaner.training.distributed import barrier

    if not dist_info.is_main:
        barrier(dist_info)
    t = time.perf_counter()
    dataset = read_samples(
        dataset_path,
        recipe,
        _count_progress("read", report),
        follow_links=follow_links,
        allow_outside_root=allow_outside_root,
    )
    timings["read_s"] = time.perf_counter() - t
    check_review_matches(run_dir, dataset.root)
    check_folds(dataset.samples, recipe, decoded=False)
    t = time.perf_counter()
    channels = resolve_channels(recipe.data.channels, dataset)
    cache = build_sample_cache(dataset.samples, recipe, channels, _count_progress("cache", report))
    timings["cache_s"] = time.perf_counter() - t
    if dist_info.is_main:
        barrier(dist_info)
    return dataset, channels, cache


def _prepare_training(
    dataset: Any, cache: Any, recipe: Recipe
) -> tuple[pd.DataFrame, pd.DataFrame, Any, Recipe]:
    """The decoded samples, their problems, the `TrainData` and the recipe with its `auto`
    budget resolved; a dataset with nothing in the training splits is refused."""
    from fercleaner.training.budget import resolve_train_budget

    samples, problems = get_usable_samples(dataset, cache)
    if samples.empty:
        decode = getattr(cache, "problems", None)
        first = decode.iloc[0] if decode is not None and len(decode) else None
        example = "" if first is None else f" The first: {first['reason']}."
        raise DatasetError(
            f"none of the {len(dataset.samples):,} images of {str(dataset.root)!r} could be"
            f" decoded.{example} Check that the files are images (`fercleaner inspect"
            f" {dataset.root}` lists every problem with its fix)"
        )
    check_folds(samples, recipe, decoded=True)
    classes = list(dataset.classes)
    data = build_train_data(samples, classes, cache, recipe)
    # `auto` budgets become numbers here: run.json and checkpoints record what trained
    recipe = resolve_train_budget(recipe, n_train=int(data.train_mask.sum()))
    if not data.train_mask.any():
        raise DatasetError(
            f"no samples of {str(dataset.root)!r} are in the training splits"
            f" {list(recipe.data.splits)}; splits present:"
            f" {sorted(samples['split'].unique())}. Set data.splits accordingly."
        )
    return samples, problems, data, recipe


def _untrained_classes(samples: pd.DataFrame, splits: Sequence[str]) -> dict[str, int]:
    """Given classes with images but none in the training splits -> their image count.

    The model never learns such a class, so its images are flagged because the class
    has no probability, not because their labels are doubtful.
    """
    given = samples["given_label"].astype(str)
    trained = set(given[samples["split"].astype(str).isin(splits)])
    counts = given[~given.isin(trained)].value_counts()
    return {str(name): int(n) for name, n in counts.items()}


def _train_methods(
    data: Any,
    recipe: Recipe,
    method_names: Sequence[str],
    run_dir: Path,
    resume: bool,
    dist_info: Any,
    report: ProgressFn | None,
    timings: dict[str, float],
) -> list[Any]:
    """Train and score each method in turn (`train_<name>_s` timings); one `TrainResult` each."""
    from fercleaner.training.trainer import train_and_score

    results = []
    for name in method_names:
        t = time.perf_counter()
        result = train_and_score(
            data,
            recipe,
            method_name=name,
            run_dir=run_dir,
            resume=resume,
            dist_info=dist_info,
            progress=(lambda p: report(ScoreProgress(stage=p.phase, train=p))) if report else None,
        )
        timings[f"train_{name}_s"] = time.perf_counter() - t
        results.append(result)
    return results


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
    """Assemble the scores from the readouts and write the run directory (run.json last)."""
    from fercleaner.scoring.assemble import assemble_columns
    from fercleaner.scoring.crowd import apply_crowd_votes, get_sample_votes

    t = time.perf_counter()
    primary = results[0]
    readouts: dict[str, dict[str, np.ndarray]] = {r.method: r.readout for r in results}
    if recipe.score.dynamics and primary.dynamics_readout is not None:
        readouts["dynamics"] = primary.dynamics_readout
    scores = assemble_columns(
        samples, classes, readouts, method_name=primary.method, flag_rule=recipe.score.flag_rule
    )
    # crowd votes (FERPlus, RAF-DB, votes_<class> columns): the consensus joins the scores
    crowd = apply_crowd_votes(scores, get_sample_votes(samples, classes), classes)
    scores = crowd.scores  # written most suspect first, a row group at a time
    metadata = build_scores_metadata(
        classes=classes,
        methods=[r.method for r in results],
        sources=list(readouts),
        recipe=recipe_to_dict(recipe),
        dataset_root=str(dataset.root),
        layout=dataset.layout,
        samples=samples,
    )
    scores_path = write_run_tables(
        run_dir,
        scores=scores,
        metadata=metadata,
        problems=problems,
        # an epoch of one fold at a time: the whole long table is epochs x N rows
        dynamics=(table for r in results for table in r.iter_dynamics_tables()),
        events=pd.concat([r.events for r in results], ignore_index=True),
    )
    timings["write_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - started
    counts = {
        "rows_listed": dataset.rows_listed,
        "ingested": len(dataset.samples),
        "problems": len(problems),
        "quarantined_decode": len(dataset.samples) - len(samples),
        "trained_on": int(samples["split"].astype(str).isin(recipe.data.splits).sum()),
    }
    run_info = build_run_info(
        metadata,
        scores=scores,
        results=results,
        counts=counts,
        channels=channels,
        world_size=world_size,
        timings=timings,
        consensus=crowd.summary,
    )
    untrained = _untrained_classes(samples, recipe.data.splits)
    if untrained:
        run_info["untrained_classes"] = untrained
    write_run_info(run_dir, run_info)
    return ScoreResult(
        run_dir=run_dir,
        scores_path=scores_path,
        classes=classes,
        problems=problems,
        run_info=run_info,
    )
