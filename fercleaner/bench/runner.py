"""Run one benchmark: noisy dataset -> every system scored in its own measured subprocess -> metrics -> report.

fercleaner runs `fercleaner score` (or `score_command`) on the noisy dataset in a child
process, exactly as a user runs it, so wall time and peak RSS are its own. The references
(`fercleaner.bench.references`) are the frozen plain cross-entropy protocol, in-sample
(`plain_ce`) and 5-fold with cleanlab (`cleanlab_cv5`), also measured child processes and
cached across bench runs. "The reference" of the target is the better of the two per metric.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fercleaner.bench.downstream import (
    DEFAULT_POLICY,
    find_holdout,
    get_cleaned_labels,
    get_gap_recovered,
    get_holdout_accuracy,
)
from fercleaner.bench.materialize import write_labels_csv, write_noisy_dataset
from fercleaner.bench.plain_reference import PlainRecipe
from fercleaner.bench.protocols import PROTOCOLS, NoisyDataset, make_noisy
from fercleaner.bench.references import REFERENCES, get_reference_system, plan_references
from fercleaner.bench.report import get_target_check, write_report
from fercleaner.bench.resources import run_measured
from fercleaner.bench.systems import (
    SystemScores,
    align_columns,
    evaluate_system,
    from_scores_frame,
)
from fercleaner.cache import default_cache_root
from fercleaner.errors import DatasetError, FercleanerError
from fercleaner.scoring import read_scores

#: Name of fercleaner's own system in the results.
PRIMARY_SYSTEM = "fercleaner"
#: Raw images per disjoint slice (`slice_index`): about FERPlus validation's 3,555.
SLICE_SIZE = 3600

ProgressFn = Callable[[int, int, str], None]


def plan_systems(*, references: Sequence[str], folds: int = 5) -> list[str]:
    """The names of the systems a benchmark runs, fercleaner first."""
    return [PRIMARY_SYSTEM, *(spec.name for spec in plan_references(list(references), folds=folds))]


def run_benchmark(
    dataset: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str],
    protocol: str,
    rate: float = 0.2,
    seed: int = 0,
    method: str | None = None,
    recipe: str | None = None,
    overrides: Sequence[str] = (),
    references: Sequence[str] = REFERENCES,
    folds: int = 5,
    reference_epochs: int = PlainRecipe.epochs,
    reference_cache: str | os.PathLike[str] | None = "default",
    splits: Sequence[str] | None = None,
    max_samples: int | None = None,
    slice_index: int | None = None,
    downstream: bool = False,
    holdout: float = 0.2,
    policy: Mapping[str, str] = DEFAULT_POLICY,
    score_command: Sequence[str] | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Benchmark fercleaner against the plain references on `dataset` under a noise protocol.

    Args:
        dataset: any dataset `read_dataset` reads (the source of clean-ish labels/votes).
        out: output folder: `noisy/` (dataset + truth), `runs/<system>/`, bench.json,
            bench.md, pr_curves.png, reliability.png.
        protocol, rate, seed: the noise protocol (see `fercleaner.bench.protocols`); `seed`
            also seeds the references' training.
        method, recipe, overrides: how fercleaner's own system is scored (recipe None:
            `fercleaner score`'s own default, as a user runs it).
        references: which references to run beside fercleaner (REFERENCES).
        folds: K of the cross-validated reference.
        reference_epochs: per-model epochs of the plain references (the protocol's 30).
        reference_cache: folder of cached reference results; "default" is
            `<cache root>/bench-references`, None trains them afresh and keeps nothing.
        splits: source splits to benchmark on (default all), e.g. ["val"] for FERPlus validation.
        max_samples: benchmark on a seeded random subset of at most this many samples.
        slice_index: benchmark on the i-th of the disjoint SLICE_SIZE-image slices of the
            (split-filtered) samples, drawn with a fixed permutation whatever the seed.
        downstream: also train the classifier on noisy / cleaned / true labels and test
            it on a held-out clean share (see `fercleaner.bench.downstream`).
        holdout: share of the samples held out (per true class) when `downstream`.
        policy: what fercleaner's issue types do to the training labels when `downstream`.
        score_command: the command prefix that scores a dataset (default
            `python -m fercleaner score`); it receives `DATASET --out RUN_DIR --recipe R
            [--method M] [key=value ...]` and must write RUN_DIR/scores.parquet.
        progress: called as progress(done, total, stage) between stages.

    Returns:
        The bench.json content.
    """
    if protocol not in PROTOCOLS:
        raise FercleanerError(
            f"unknown noise protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}"
        )
    if protocol != "annotator" and not 0.0 < rate < 1.0:
        raise FercleanerError(f"--rate must be in (0, 1) for {protocol} noise; got {rate}")
    if downstream and not 0.0 < holdout < 1.0:
        raise FercleanerError(f"--holdout must be in (0, 1); got {holdout}")
    if reference_epochs < 1:
        raise FercleanerError(f"--reference-epochs must be at least 1; got {reference_epochs}")
    out = Path(out)
    reference_specs = plan_references(list(references), folds=folds)
    total = len(reference_specs) + 3 + (3 if downstream else 0)
    report = progress or (lambda done, total, stage: None)

    report(0, total, "reading dataset and making noise")
    samples, classes, layout = _read_samples(
        dataset, splits=splits, max_samples=max_samples, slice_index=slice_index, seed=seed
    )
    noisy = make_noisy(samples, classes, protocol=protocol, rate=rate, seed=seed)
    held_mask = (
        find_holdout(noisy.truth, fraction=holdout, seed=seed)
        if downstream
        else np.zeros(len(noisy.truth), dtype=bool)
    )
    pool, held = noisy.select(~held_mask), noisy.select(held_mask)
    manifest = write_noisy_dataset(pool, out / "noisy") / "labels.csv"
    # the truth as written: its sample_ids are the ones the csv reader gives the systems
    truth = pd.read_parquet(out / "noisy" / "truth.parquet")
    prefix = list(score_command or [sys.executable, "-m", "fercleaner", "score"])

    report(1, total, f"scoring with {PRIMARY_SYSTEM}")
    primary, commands = _run_fercleaner(
        manifest, out, prefix=prefix, method=method, recipe=recipe, overrides=overrides
    )
    systems: dict[str, SystemScores] = {
        PRIMARY_SYSTEM: _primary_system(primary["scores"], classes, primary["cost"])
    }
    cache_root = (
        default_cache_root() / "bench-references"
        if reference_cache == "default"
        else (Path(reference_cache) if reference_cache is not None else None)
    )
    for done, spec in enumerate(reference_specs, start=2):
        report(done, total, f"reference {spec.name}")
        systems[spec.name] = get_reference_system(
            spec,
            manifest,
            truth,
            classes,
            recipe=PlainRecipe(epochs=reference_epochs),
            seed=seed,
            cache_root=cache_root,
            log_path=out / "runs" / f"{spec.name}.log",
        )
        commands[spec.name] = f"plain reference, folds={spec.folds}, seed={seed}"

    downstream_result = None
    if downstream:
        downstream_result = _run_downstream(
            out / "downstream",
            pool=pool,
            held=held,
            truth=truth,
            scores=primary["scores"].frame,
            command=[*prefix],
            recipe=recipe,
            overrides=overrides,
            policy=policy,
            report=lambda i, stage: report(len(reference_specs) + 1 + i, total, stage),
        )
    report(total - 1, total, "computing metrics and writing the report")
    metrics = {name: evaluate_system(s, truth, classes) for name, s in systems.items()}
    result_json: dict[str, Any] = {
        "dataset": str(Path(dataset).absolute()),
        "dataset_name": Path(dataset).name,
        "layout": layout,
        "splits": list(splits) if splits else sorted(samples["split"].unique()),
        "slice_index": slice_index,
        "classes": classes,
        "protocol": pool.protocol,
        "recipe": recipe,
        "method": method,
        "overrides": list(overrides),
        "command": _bench_command(
            dataset,
            out,
            protocol=protocol,
            rate=rate,
            seed=seed,
            method=method,
            recipe=recipe,
            references=references,
            folds=folds,
            reference_epochs=reference_epochs,
            splits=splits,
            slice_index=slice_index,
            overrides=overrides,
            downstream=downstream,
            holdout=holdout,
            max_samples=max_samples,
        ),
        "system_commands": commands,
        "primary_system": PRIMARY_SYSTEM,
        "references": [spec.name for spec in reference_specs],
        "reference_epochs": reference_epochs,
        "systems": metrics,
        "target": get_target_check(metrics, system=PRIMARY_SYSTEM),
    }
    if downstream_result is not None:
        result_json["downstream"] = downstream_result
    write_report(out, result=result_json, systems=systems, truth=truth)
    report(total, total, "done")
    return result_json


def _read_samples(
    dataset: str | os.PathLike[str],
    *,
    splits: Sequence[str] | None,
    max_samples: int | None,
    slice_index: int | None,
    seed: int,
) -> tuple[pd.DataFrame, list[str], str]:
    """The source samples the noise is planted in: split filter, then slice or subset."""
    from fercleaner.datasets import read_dataset

    source = read_dataset(dataset)
    samples = _with_synthetic_truth(source.samples, Path(dataset), source.classes)
    if splits:
        samples = samples[samples["split"].isin(list(splits))].reset_index(drop=True)
        if samples.empty:
            present = sorted(source.samples["split"].unique())
            raise DatasetError(
                f"{dataset} has no samples in splits {list(splits)}; it has {present}"
            )
    if slice_index is not None:
        samples = get_slice(samples, slice_index)
    if max_samples is not None and len(samples) > max_samples:
        samples = _subsample(samples, max_samples, seed=seed)
    return samples, list(source.classes), source.layout


def get_slice(samples: pd.DataFrame, index: int, *, size: int = SLICE_SIZE) -> pd.DataFrame:
    """The `index`-th of the disjoint `size`-row slices under one fixed permutation, in source order."""
    count = len(samples) // size
    if not 0 <= index < count:
        raise FercleanerError(
            f"slice {index} does not exist: {len(samples)} samples make {count} disjoint "
            f"slices of {size}"
        )
    order = np.random.default_rng(1_000_003).permutation(len(samples))
    keep = np.sort(order[index * size : (index + 1) * size])
    return samples.iloc[keep].reset_index(drop=True)


def _run_fercleaner(
    manifest: Path,
    out: Path,
    *,
    prefix: list[str],
    method: str | None,
    recipe: str | None,
    overrides: Sequence[str],
) -> tuple[dict[str, Any], dict[str, str]]:
    """Score the noisy dataset with fercleaner as a measured child process."""
    run_dir = out / "runs" / PRIMARY_SYSTEM
    if run_dir.exists():  # a run dir of an earlier bench here: never resume into it
        shutil.rmtree(run_dir)
    command = [*prefix, str(manifest), "--out", str(run_dir)]
    if recipe:
        command += ["--recipe", recipe]
    if method:
        command += ["--method", method]
    command += list(overrides)
    result = run_measured(command, log_path=run_dir.with_suffix(".log"))
    if result.returncode != 0:
        raise FercleanerError(
            f"{PRIMARY_SYSTEM} failed (exit {result.returncode}): {shlex.join(command)}\n"
            f"last output ({result.log_path}):\n{result.tail()}"
        )
    cost = {"wall_s": result.wall_s, "peak_rss_mb": result.peak_rss_mb, "cpu_s": result.cpu_s}
    scores = read_scores(run_dir / "scores.parquet")
    return {"scores": scores, "cost": cost}, {PRIMARY_SYSTEM: shlex.join(command)}


def _primary_system(scores, classes: list[str], cost: dict) -> SystemScores:
    """fercleaner's decisions exactly as its scores file states them."""
    system = from_scores_frame(
        PRIMARY_SYSTEM, _aligned(scores.frame, scores.classes, classes), classes
    )
    system.cost = cost
    return system


def _with_synthetic_truth(
    samples: pd.DataFrame, dataset: Path, classes: Sequence[str]
) -> pd.DataFrame:
    """Use a synthetic dataset's truth (`<dataset>.truth.parquet`, see fercleaner.synth) when it exists.

    Its `clean_label` replaces the given label (so a dataset written with planted noise
    is benchmarked against its clean labels) and its `soft_label` becomes `votes` for the
    soft-label metrics (and the annotator protocol).
    """
    truth_path = dataset.with_name(dataset.name + ".truth.parquet")
    if not truth_path.is_file() or "votes" in samples.columns:
        return samples
    truth = pd.read_parquet(truth_path, columns=["sample_id", "clean_label", "soft_label"])
    truth = truth.set_index(truth["sample_id"].astype(str))
    ids = samples["sample_id"].astype(str)
    if not ids.isin(truth.index).all():
        return samples  # not this dataset's truth: ignore it
    matched = truth.loc[ids]
    if any(len(v) != len(classes) for v in matched["soft_label"].head(1)):
        return samples
    samples = samples.copy()
    samples["given_label"] = matched["clean_label"].astype(str).to_numpy()
    samples["votes"] = [np.asarray(v, dtype=np.float32) for v in matched["soft_label"]]
    return samples


def _subsample(samples: pd.DataFrame, count: int, *, seed: int) -> pd.DataFrame:
    """A seeded random subset of `count` rows, in the original order."""
    if count < 1:
        raise FercleanerError(f"max_samples must be at least 1; got {count}")
    rng = np.random.default_rng(seed + 2_000_003)  # independent of the noise draw
    keep = np.sort(rng.choice(len(samples), size=count, replace=False))
    return samples.iloc[keep].reset_index(drop=True)


def _aligned(frame, from_classes, to_classes):
    if list(from_classes) == list(to_classes):
        return frame
    frame = frame.copy()
    for column in ("pred_probs", "soft_label"):
        matrix = np.stack([np.asarray(v, dtype=np.float64) for v in frame[column]])
        frame[column] = list(align_columns(matrix, from_classes, to_classes))
    return frame


def _run_downstream(
    folder: Path,
    *,
    pool: NoisyDataset,
    held: NoisyDataset,
    truth: pd.DataFrame,
    scores: pd.DataFrame,
    command: list[str],
    recipe: str | None,
    overrides: Sequence[str],
    policy: Mapping[str, str],
    report: Callable[[int, str], None],
) -> dict[str, Any]:
    """Train the baseline on noisy / cleaned / true labels of the pool; accuracy on the held-out share."""
    # fercleaner's scores use the csv reader's sample_ids; map them back to the source ids
    to_source = dict(zip(truth["sample_id"], truth["source_sample_id"], strict=True))
    cleaned = get_cleaned_labels(scores, policy=policy)
    cleaned.index = [to_source[s] for s in cleaned.index]
    base = pool.samples.assign(split="train")
    variants = {
        "noisy": base.assign(label=pool.truth["given_label"].to_numpy()),
        "cleaned": base.set_index("sample_id", drop=False)
        .loc[list(cleaned.index)]
        .assign(label=cleaned.to_numpy())
        .reset_index(drop=True),
        "clean": base.assign(label=pool.truth["true_label"].to_numpy()),
    }
    test = held.samples.assign(split="test", label=held.truth["true_label"].to_numpy())
    accuracy, cost = {}, {}
    for step, (name, train) in enumerate(variants.items(), start=1):
        report(step, f"downstream: training on {name} labels")
        manifest_dir = folder / name
        write_labels_csv(manifest_dir, pd.concat([train, test], ignore_index=True))
        run_dir = folder / f"{name}_run"
        if run_dir.exists():
            shutil.rmtree(run_dir)
        argv = [
            *command,
            str(manifest_dir / "labels.csv"),
            "--out",
            str(run_dir),
            *(["--recipe", recipe] if recipe else []),
            "--method",
            "baseline",
            *overrides,
            "method.options={}",  # the plain classifier training code would use
            "data.splits=[train]",
            "train.folds=1",
        ]
        result = run_measured(argv, log_path=run_dir.with_suffix(".log"))
        if result.returncode != 0:
            raise FercleanerError(
                f"downstream run {name!r} failed (exit {result.returncode}): {shlex.join(argv)}\n"
                f"last output ({result.log_path}):\n{result.tail()}"
            )
        accuracy[name] = get_holdout_accuracy(read_scores(run_dir / "scores.parquet").frame)
        cost[name] = {
            "wall_s": result.wall_s,
            "peak_rss_mb": result.peak_rss_mb,
            "cpu_s": result.cpu_s,
        }
    given = scores["given_label"].astype(str).to_numpy()
    relabeled = int(
        (scores["issue_type"].map(lambda t: policy.get(str(t), "keep")) == "relabel").sum()
    )
    return {
        "policy": dict(policy),
        "holdout_samples": len(test),
        "train_samples": {name: len(frame) for name, frame in variants.items()},
        "dropped": int(len(given) - len(cleaned)),
        "relabeled": relabeled,
        "accuracy": accuracy,
        "gap_recovered": get_gap_recovered(
            accuracy["noisy"], accuracy["cleaned"], accuracy["clean"]
        ),
        "cost": cost,
    }


def _bench_command(
    dataset: str | os.PathLike[str],
    out: Path,
    *,
    protocol: str,
    rate: float,
    seed: int,
    method: str | None,
    recipe: str | None,
    references: Sequence[str],
    folds: int,
    reference_epochs: int,
    splits: Sequence[str] | None,
    slice_index: int | None,
    overrides: Sequence[str],
    downstream: bool,
    holdout: float,
    max_samples: int | None,
) -> str:
    parts = ["fercleaner", "bench", str(dataset), "--protocol", protocol]
    if protocol != "annotator":
        parts += ["--rate", str(rate)]
    parts += ["--seed", str(seed)]
    if recipe:
        parts += ["--recipe", recipe]
    if method:
        parts += ["--method", method]
    if not references:
        parts += ["--no-reference"]
    elif sorted(references) != sorted(REFERENCES):
        for reference in references:
            parts += ["--reference", reference]
    if folds != 5:
        parts += ["--folds", str(folds)]
    if reference_epochs != PlainRecipe.epochs:
        parts += ["--reference-epochs", str(reference_epochs)]
    for split in splits or ():
        parts += ["--split", split]
    if slice_index is not None:
        parts += ["--slice", str(slice_index)]
    if max_samples is not None:
        parts += ["--max-samples", str(max_samples)]
    if downstream:
        parts += ["--downstream"] + (["--holdout", str(holdout)] if holdout != 0.2 else [])
    parts += ["--out", str(out), *overrides]
    return shlex.join(parts)
