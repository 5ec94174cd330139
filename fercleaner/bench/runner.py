"""Run one benchmark: noisy dataset -> every system scored in its own measured subprocess -> metrics -> report.

Each system runs `fercleaner score` (or `score_command`) on the noisy dataset in a child
process, so wall time and peak RSS are that system's alone. Systems:

- `fercleaner`: the chosen method/recipe exactly as a user runs it; its own decisions.
- `cleanlab_cv5` (reference `cleanlab`): `method=baseline train.folds=K` (out-of-fold
  probabilities) -> cleanlab's find_label_issues / get_label_quality_scores.
- `ce_in_sample` (reference `in_sample`): `method=baseline train.folds=1`, label quality
  p[given] from the in-sample probabilities, cleanlab's flags. When fercleaner's own
  run already is exactly that (method baseline, folds 1, same epochs) it is reused, not
  retrained: the reference then reads the baseline's own `baseline_pred_probs`, not the
  combination with training dynamics.

`reference_epochs` sets the references' per-model epoch budget apart from the recipe's
(fercleaner keeps the recipe's). Then a third, compute-matched system is added:
`ce_in_sample_matched`, plain in-sample cross-entropy at fercleaner's own epochs. It is
reported but is not one of the target's references: it shows how much of fercleaner's
lead is the budget it spends rather than what it does with it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
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
from fercleaner.bench.protocols import PROTOCOLS, NoisyDataset, make_noisy
from fercleaner.bench.report import get_target_check, write_report
from fercleaner.bench.resources import run_measured
from fercleaner.bench.systems import (
    SystemScores,
    evaluate_system,
    from_scores_frame,
    get_reference_scores,
)
from fercleaner.errors import DatasetError, FercleanerError
from fercleaner.scoring import read_scores

#: Reference systems `run_benchmark` can add beside fercleaner.
REFERENCES = ("cleanlab", "in_sample")
#: Name of fercleaner's own system in the results.
PRIMARY_SYSTEM = "fercleaner"
#: The compute-matched in-sample system added when the references get their own epochs.
MATCHED_SYSTEM = "ce_in_sample_matched"

ProgressFn = Callable[[int, int, str], None]


@dataclass(frozen=True)
class SystemSpec:
    """How to produce one system's scores."""

    name: str
    method: str | None
    """`--method` for the score run; None keeps the recipe's method."""
    overrides: tuple[str, ...]
    """Extra `key=value` recipe overrides for this system."""
    reference: str | None
    """None: use the scores file's own decisions; else the reference label-quality rule."""
    epochs: int | None = None
    """Per-model epochs when they differ from the recipe's (the references' budget)."""
    in_target: bool = True
    """False for systems reported beside the target's references but not checked against."""


def plan_systems(
    *,
    method: str | None,
    references: Sequence[str],
    folds: int = 5,
    reference_epochs: int | None = None,
) -> list[SystemSpec]:
    """The systems a benchmark runs, fercleaner first."""
    unknown = sorted(set(references) - set(REFERENCES))
    if unknown:
        raise FercleanerError(f"unknown references {unknown}; choose from {', '.join(REFERENCES)}")
    if folds < 2:
        raise FercleanerError(f"the cross-validated reference needs folds >= 2; got {folds}")
    if reference_epochs is not None and reference_epochs < 1:
        raise FercleanerError(f"--reference-epochs must be at least 1; got {reference_epochs}")
    # plain cross-entropy whatever the recipe's method options say (e.g. small-loss selection)
    plain = ("method.options={}",)
    epochs = (f"train.epochs={reference_epochs}",) if reference_epochs is not None else ()
    specs = [SystemSpec(PRIMARY_SYSTEM, method, (), None)]
    if "cleanlab" in references:
        specs.append(
            SystemSpec(
                f"cleanlab_cv{folds}",
                "baseline",
                (f"train.folds={folds}", *plain, *epochs),
                "cleanlab",
                reference_epochs,
            )
        )
    if "in_sample" in references:
        specs.append(
            SystemSpec(
                "ce_in_sample",
                "baseline",
                ("train.folds=1", *plain, *epochs),
                "self_confidence",
                reference_epochs,
            )
        )
        if reference_epochs is not None:
            specs.append(
                SystemSpec(
                    MATCHED_SYSTEM,
                    "baseline",
                    ("train.folds=1", *plain),
                    "self_confidence",
                    None,
                    False,
                )
            )
    return specs


def run_benchmark(
    dataset: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str],
    protocol: str,
    rate: float = 0.2,
    seed: int = 0,
    method: str | None = None,
    recipe: str = "quick",
    overrides: Sequence[str] = (),
    references: Sequence[str] = REFERENCES,
    folds: int = 5,
    reference_epochs: int | None = None,
    splits: Sequence[str] | None = None,
    max_samples: int | None = None,
    downstream: bool = False,
    holdout: float = 0.2,
    policy: Mapping[str, str] = DEFAULT_POLICY,
    score_command: Sequence[str] | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Benchmark fercleaner against the references on `dataset` under a noise protocol.

    Args:
        dataset: any dataset `read_dataset` reads (the source of clean-ish labels/votes).
        out: output folder: `noisy/` (dataset + truth), `runs/<system>/`, bench.json,
            bench.md, pr_curves.png, reliability.png.
        protocol, rate, seed: the noise protocol (see `fercleaner.bench.protocols`).
        method, recipe, overrides: how fercleaner's own system is scored; the references
            use the same recipe and overrides (same backbone, input size; epochs too
            unless `reference_epochs` is set).
        references: which references to run beside fercleaner (REFERENCES).
        folds: K of the cross-validated reference.
        reference_epochs: the references' per-model epochs (default: the recipe's, like
            fercleaner); when set, `ce_in_sample_matched` is added (module docstring).
        splits: source splits to benchmark on (default all), e.g. ["val"] for FERPlus validation.
        max_samples: benchmark on a seeded random subset of at most this many samples
            (for quick checks on large datasets).
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
    from fercleaner.datasets import read_dataset

    if protocol not in PROTOCOLS:
        raise FercleanerError(
            f"unknown noise protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}"
        )
    if protocol != "annotator" and not 0.0 < rate < 1.0:
        raise FercleanerError(f"--rate must be in (0, 1) for {protocol} noise; got {rate}")
    if downstream and not 0.0 < holdout < 1.0:
        raise FercleanerError(f"--holdout must be in (0, 1); got {holdout}")
    out = Path(out)
    specs = plan_systems(
        method=method, references=references, folds=folds, reference_epochs=reference_epochs
    )
    total = len(specs) + 2 + (3 if downstream else 0)
    report = progress or (lambda done, total, stage: None)

    report(0, total, "reading dataset and making noise")
    source = read_dataset(dataset)
    samples = _with_synthetic_truth(source.samples, Path(dataset), source.classes)
    if splits:
        samples = samples[samples["split"].isin(list(splits))].reset_index(drop=True)
        if samples.empty:
            present = sorted(source.samples["split"].unique())
            raise DatasetError(
                f"{dataset} has no samples in splits {list(splits)}; it has {present}"
            )
    if max_samples is not None and len(samples) > max_samples:
        samples = _subsample(samples, max_samples, seed=seed)
    noisy = make_noisy(samples, source.classes, protocol=protocol, rate=rate, seed=seed)
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

    systems: dict[str, SystemScores] = {}
    frames: dict[str, pd.DataFrame] = {}
    commands: dict[str, str] = {}
    reused: dict[str, str] = {}
    primary_scores, primary_cost = None, {}
    for done, spec in enumerate(specs, start=1):
        report(done, total, f"scoring with {spec.name}")
        if spec.reference == "self_confidence" and _is_plain_in_sample(
            primary_scores, epochs=spec.epochs
        ):
            # fercleaner's own run already is one in-sample cross-entropy run: reuse it
            scores, cost = primary_scores, primary_cost
            commands[spec.name] = f"(the {PRIMARY_SYSTEM} run)"
            reused[spec.name] = PRIMARY_SYSTEM
        else:
            run_dir = out / "runs" / spec.name
            if run_dir.exists():  # a run dir of an earlier bench here: never resume into it
                shutil.rmtree(run_dir)
            command = [*prefix, str(manifest), "--out", str(run_dir), "--recipe", recipe]
            if spec.method:
                command += ["--method", spec.method]
            command += [*overrides, *spec.overrides]
            commands[spec.name] = shlex.join(command)
            result = run_measured(command, log_path=run_dir.with_suffix(".log"))
            if result.returncode != 0:
                raise FercleanerError(
                    f"system {spec.name!r} failed (exit {result.returncode}): {shlex.join(command)}\n"
                    f"last output ({result.log_path}):\n{result.tail()}"
                )
            scores = read_scores(run_dir / "scores.parquet")
            cost = {
                "wall_s": result.wall_s,
                "peak_rss_mb": result.peak_rss_mb,
                "cpu_s": result.cpu_s,
            }
        if spec.name == PRIMARY_SYSTEM:
            primary_scores, primary_cost = scores, cost
        systems[spec.name] = _system_from_scores(spec, scores, noisy.classes, cost)
        frames[spec.name] = scores.frame

    downstream_result = None
    if downstream:
        downstream_result = _run_downstream(
            out / "downstream",
            pool=pool,
            held=held,
            truth=truth,
            scores=frames[PRIMARY_SYSTEM],
            command=[*prefix],
            recipe=recipe,
            overrides=overrides,
            policy=policy,
            report=lambda i, stage: report(len(specs) + i, total, stage),
        )
    report(total - 1, total, "computing metrics and writing the report")
    metrics = {name: evaluate_system(s, truth, noisy.classes) for name, s in systems.items()}
    in_target = {spec.name for spec in specs if spec.in_target}
    result_json: dict[str, Any] = {
        "dataset": str(Path(dataset).absolute()),
        "dataset_name": Path(dataset).name,
        "layout": source.layout,
        "splits": list(splits) if splits else sorted(samples["split"].unique()),
        "classes": noisy.classes,
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
            overrides=overrides,
            downstream=downstream,
            holdout=holdout,
            max_samples=max_samples,
        ),
        "system_commands": commands,
        "reused_runs": reused,
        "primary_system": PRIMARY_SYSTEM,
        "systems": metrics,
        "reference_epochs": reference_epochs,
        "not_in_target": [spec.name for spec in specs if not spec.in_target],
        "target": get_target_check(
            {name: m for name, m in metrics.items() if name in in_target}, system=PRIMARY_SYSTEM
        ),
    }
    if downstream_result is not None:
        result_json["downstream"] = downstream_result
    write_report(out, result=result_json, systems=systems, truth=truth)
    report(total, total, "done")
    return result_json


def _system_from_scores(spec: SystemSpec, scores, classes: list[str], cost: dict) -> SystemScores:
    """fercleaner's decisions as written, or a reference recomputed from the file's pred_probs."""
    frame = scores.frame
    if spec.reference is None:
        system = from_scores_frame(spec.name, _aligned(frame, scores.classes, classes), classes)
        system.cost = cost
        return system
    start = time.perf_counter()
    # the trained method's own probabilities, not their combination with other sources
    own = f"{scores.metadata.get('method')}_pred_probs"
    column = own if own in frame.columns else "pred_probs"
    probs = _align_matrix(scores.matrix(column), scores.classes, classes)
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[c] for c in frame["given_label"].astype(str)])
    system = get_reference_scores(
        spec.name,
        frame["sample_id"].astype(str).to_numpy(),
        labels,
        probs,
        classes,
        quality=spec.reference,
    )
    extra = time.perf_counter() - start  # cleanlab itself, in this process (single-threaded)
    system.cost = {
        **cost,
        "wall_s": cost["wall_s"] + extra,
        "cpu_s": cost.get("cpu_s", 0.0) + extra,
    }
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


def _is_plain_in_sample(scores, *, epochs: int | None = None) -> bool:
    """True when a scores file comes from one plain in-sample `baseline` (cross-entropy) run (of `epochs`, if given)."""
    if scores is None:
        return False
    recipe = scores.metadata.get("recipe") or {}
    train = (recipe.get("train") or {}) if isinstance(recipe, dict) else {}
    options = (
        ((recipe.get("method") or {}).get("options") or {}) if isinstance(recipe, dict) else {}
    )
    methods = scores.metadata.get("methods", [scores.metadata.get("method")])
    return (
        scores.metadata.get("method") == "baseline"
        and list(methods) == ["baseline"]
        and not options
        and train.get("folds", 1) == 1
        and (epochs is None or train.get("epochs") == epochs)
    )


def _align_matrix(
    matrix: np.ndarray, from_classes: Sequence[str], to_classes: Sequence[str]
) -> np.ndarray:
    """Re-index (N, len(from)) columns to `to_classes`; a class the run never saw gets probability 0."""
    unknown = sorted(set(from_classes) - set(to_classes))
    if unknown:
        raise FercleanerError(
            f"scores use classes {unknown} that the benchmark dataset lacks ({list(to_classes)})"
        )
    aligned = np.zeros((len(matrix), len(to_classes)), dtype=np.float64)
    for i, name in enumerate(from_classes):
        aligned[:, list(to_classes).index(name)] = matrix[:, i]
    return aligned


def _aligned(frame, from_classes, to_classes):
    if list(from_classes) == list(to_classes):
        return frame
    frame = frame.copy()
    for column in ("pred_probs", "soft_label"):
        matrix = np.stack([np.asarray(v, dtype=np.float64) for v in frame[column]])
        frame[column] = list(_align_matrix(matrix, from_classes, to_classes))
    return frame


def _run_downstream(
    folder: Path,
    *,
    pool: NoisyDataset,
    held: NoisyDataset,
    truth: pd.DataFrame,
    scores: pd.DataFrame,
    command: list[str],
    recipe: str,
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
            "--recipe",
            recipe,
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
    recipe: str,
    references: Sequence[str],
    folds: int,
    reference_epochs: int | None,
    splits: Sequence[str] | None,
    overrides: Sequence[str],
    downstream: bool,
    holdout: float,
    max_samples: int | None,
) -> str:
    parts = ["fercleaner", "bench", str(dataset), "--protocol", protocol]
    if protocol != "annotator":
        parts += ["--rate", str(rate)]
    parts += ["--seed", str(seed), "--recipe", recipe]
    if method:
        parts += ["--method", method]
    if not references:
        parts += ["--no-reference"]
    elif sorted(references) != sorted(REFERENCES):
        for reference in references:
            parts += ["--reference", reference]
    if folds != 5:
        parts += ["--folds", str(folds)]
    if reference_epochs is not None:
        parts += ["--reference-epochs", str(reference_epochs)]
    for split in splits or ():
        parts += ["--split", split]
    if max_samples is not None:
        parts += ["--max-samples", str(max_samples)]
    if downstream:
        parts += ["--downstream"] + (["--holdout", str(holdout)] if holdout != 0.2 else [])
    parts += ["--out", str(out), *overrides]
    return shlex.join(parts)
