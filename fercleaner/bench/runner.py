"""One benchmark: noisy dataset -> each system scored in a measured subprocess -> metrics -> report.

fercleaner runs `fercleaner score` (or `score_command`) on the noisy dataset in a child
process, exactly as a user runs it, so wall time and peak RSS are its own. The references
(`fercleaner.bench.references`) are the frozen plain cross-entropy protocol, in-sample
(`plain_ce`) and 5-fold with cleanlab (`cleanlab_cv5`), also measured child processes and
cached across bench runs. "The reference" of the target is the better of the two per metric.

The `votes` protocol (issue 10) compares other systems: the plurality of the visible votes,
cleanlab's multiannotator, and fercleaner without and with the votes, all on one model's
probabilities (`fercleaner.bench.votes`); it runs no reference.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fercleaner.bench.downstream import find_holdout, run_downstream
from fercleaner.bench.materialize import write_noisy_dataset
from fercleaner.bench.plain_reference import PlainRecipe
from fercleaner.bench.protocols import VOTE_PROTOCOLS, NoisyDataset, make_noisy
from fercleaner.bench.references import (
    ReferenceSpec,
    get_default_reference_cache,
    get_reference_system,
    plan_references,
)
from fercleaner.bench.report import (
    get_issue_type_target,
    get_target_check,
    get_votes_target_check,
    write_report,
)
from fercleaner.bench.resources import run_system
from fercleaner.bench.spec import BenchSpec
from fercleaner.bench.systems import (
    SystemScores,
    evaluate_system,
    from_scores_frame,
)
from fercleaner.bench.vote_systems import WITH_VOTES, align_frame_columns, get_run_issue_types
from fercleaner.bench.votes import run_vote_systems
from fercleaner.errors import DatasetError, FercleanerError
from fercleaner.runs import SCORES_FILE
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
    progress: ProgressFn | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Benchmark fercleaner against the plain references on `dataset` under a noise protocol.

    Args:
        dataset: any dataset `read_dataset` reads (the source of clean-ish labels/votes).
        out: output folder: `noisy/` (dataset + truth), `runs/`, bench.json, bench.md,
            pr_curves.png, reliability.png.
        progress: called as progress(done, total, stage) between stages.
        options: the fields of `BenchSpec` (all checked before any work starts).

    Returns:
        The bench.json content.
    """
    spec = BenchSpec(**options)
    out = Path(out)
    reference_specs = plan_references(list(spec.references), folds=spec.folds)
    total = len(reference_specs) + 3 + (3 if spec.downstream else 0)
    total += 2 if spec.protocol == "votes" else 0
    report = progress or (lambda done, total, stage: None)

    report(0, total, "reading dataset and making noise")
    samples, classes, layout = _read_samples(dataset, spec)
    noisy = make_noisy(
        samples,
        classes,
        protocol=spec.protocol,
        rate=spec.rate,
        seed=spec.seed,
        visible=spec.visible,
    )
    held_mask = (
        find_holdout(noisy.truth, fraction=spec.holdout, seed=spec.seed)
        if spec.downstream
        else np.zeros(len(noisy.truth), dtype=bool)
    )
    pool, held = noisy.select(~held_mask), noisy.select(held_mask)
    manifest = write_noisy_dataset(pool, out / "noisy") / "labels.csv"
    # the truth as written: its sample_ids are the ones the csv reader gives the systems
    truth = pd.read_parquet(out / "noisy" / "truth.parquet")
    prefix = list(spec.score_command or [sys.executable, "-m", "fercleaner", "score"])
    header = _result_header(dataset, out, spec, samples, classes, layout, pool.protocol)
    if spec.protocol == "votes":
        return _run_votes_benchmark(
            manifest,
            truth,
            classes,
            out=out,
            prefix=prefix,
            spec=spec,
            header=header,
            report=report,
            total=total,
        )
    return _run_reference_benchmark(
        manifest,
        truth,
        classes,
        pool=pool,
        held=held,
        out=out,
        prefix=prefix,
        spec=spec,
        header=header,
        reference_specs=reference_specs,
        report=report,
        total=total,
    )


def _run_votes_benchmark(
    manifest: Path,
    truth: pd.DataFrame,
    classes: list[str],
    *,
    out: Path,
    prefix: list[str],
    spec: BenchSpec,
    header: dict[str, Any],
    report: ProgressFn,
    total: int,
) -> dict[str, Any]:
    """The votes protocol on the written dataset: its four systems, metrics and report."""
    votes = run_vote_systems(
        manifest.parent,
        truth,
        classes,
        out=out,
        prefix=prefix,
        spec=spec,
        cache_root=_reference_cache_root(spec.reference_cache),
        report=lambda step, stage: report(1 + step, total, stage),
    )
    report(total - 1, total, "computing metrics and writing the report")
    result_json = {
        **header,
        "system_commands": votes.commands,
        "primary_system": WITH_VOTES,
        "references": [],
        "samples_not_scored": votes.unscored,
        "systems": votes.metrics,
        "issue_types": votes.issue_types,
        "consensus": votes.consensus,
        "target": get_votes_target_check(votes.metrics),
        "issue_type_target": get_issue_type_target(votes.issue_types),
    }
    write_report(out, result=result_json, systems=votes.systems, truth=votes.truth)
    report(total, total, "done")
    return result_json


def _run_reference_benchmark(
    manifest: Path,
    truth: pd.DataFrame,
    classes: list[str],
    *,
    pool: NoisyDataset,
    held: NoisyDataset,
    out: Path,
    prefix: list[str],
    spec: BenchSpec,
    header: dict[str, Any],
    reference_specs: list[ReferenceSpec],
    report: ProgressFn,
    total: int,
) -> dict[str, Any]:
    """fercleaner and the references on the written dataset, downstream, metrics and report."""
    report(1, total, f"scoring with {PRIMARY_SYSTEM}")
    primary, commands = _run_fercleaner(manifest, out, prefix=prefix, spec=spec)
    systems = {PRIMARY_SYSTEM: _primary_system(primary["scores"], classes, primary["cost"])}
    cache_root = _reference_cache_root(spec.reference_cache)
    for done, reference in enumerate(reference_specs, start=2):
        report(done, total, f"reference {reference.name}")
        systems[reference.name] = get_reference_system(
            reference,
            manifest,
            truth,
            classes,
            recipe=PlainRecipe(epochs=spec.reference_epochs),
            seed=spec.seed,
            cache_root=cache_root,
            log_path=out / "runs" / f"{reference.name}.log",
        )
        commands[reference.name] = f"plain reference, folds={reference.folds}, seed={spec.seed}"
    downstream_result = None
    if spec.downstream:
        downstream_result = run_downstream(
            out / "downstream",
            pool=pool,
            held=held,
            truth=truth,
            scores=primary["scores"].frame,
            command=[*prefix],
            recipe=spec.recipe,
            overrides=spec.overrides,
            policy=spec.policy,
            report=lambda i, stage: report(len(reference_specs) + 1 + i, total, stage),
        )
    report(total - 1, total, "computing metrics and writing the report")
    metrics = {name: evaluate_system(s, truth, classes) for name, s in systems.items()}
    result_json: dict[str, Any] = {
        **header,
        "system_commands": commands,
        "primary_system": PRIMARY_SYSTEM,
        "references": [reference.name for reference in reference_specs],
        "reference_epochs": spec.reference_epochs,
        "systems": metrics,
        "target": get_target_check(metrics, system=PRIMARY_SYSTEM),
    }
    if spec.protocol in VOTE_PROTOCOLS:  # issue types against the people's votes
        frame = primary["scores"].frame
        issue_types = {PRIMARY_SYSTEM: get_run_issue_types(frame, truth, classes)}
        result_json["issue_types"] = issue_types
        result_json["issue_type_target"] = get_issue_type_target(issue_types)
    if downstream_result is not None:
        result_json["downstream"] = downstream_result
    write_report(out, result=result_json, systems=systems, truth=truth)
    report(total, total, "done")
    return result_json


def _result_header(
    dataset: str | os.PathLike[str],
    out: Path,
    spec: BenchSpec,
    samples: pd.DataFrame,
    classes: list[str],
    layout: str,
    protocol: dict[str, Any],
) -> dict[str, Any]:
    """The bench.json fields every protocol shares: what was benchmarked and how to rerun it."""
    return {
        "dataset": str(Path(dataset).absolute()),
        "dataset_name": Path(dataset).name,
        "layout": layout,
        "splits": list(spec.splits) if spec.splits else sorted(samples["split"].unique()),
        "slice_index": spec.slice_index,
        "classes": classes,
        "protocol": protocol,
        "recipe": spec.recipe,
        "method": spec.method,
        "overrides": list(spec.overrides),
        "command": spec.command(dataset, out),
    }


def _reference_cache_root(reference_cache: str | os.PathLike[str] | None) -> Path | None:
    """ "default" -> `<cache root>/bench-references`; None -> no cache."""
    if reference_cache == "default":
        return get_default_reference_cache()
    return Path(reference_cache) if reference_cache is not None else None


def _read_samples(
    dataset: str | os.PathLike[str], spec: BenchSpec
) -> tuple[pd.DataFrame, list[str], str]:
    """The source samples the noise is planted in: split filter, then slice or subset."""
    from fercleaner.datasets import read_dataset

    source = read_dataset(dataset)
    samples = _with_synthetic_truth(source.samples, Path(dataset), source.classes)
    if spec.splits:
        samples = samples[samples["split"].isin(list(spec.splits))].reset_index(drop=True)
        if samples.empty:
            present = sorted(source.samples["split"].unique())
            raise DatasetError(
                f"{dataset} has no samples in splits {list(spec.splits)}; it has {present}"
            )
    if spec.slice_index is not None:
        samples = get_slice(samples, spec.slice_index)
    if spec.max_samples is not None and len(samples) > spec.max_samples:
        samples = _subsample(samples, spec.max_samples, seed=spec.seed)
    return samples, list(source.classes), source.layout


def get_slice(samples: pd.DataFrame, index: int, *, size: int = SLICE_SIZE) -> pd.DataFrame:
    """The `index`-th disjoint `size`-row slice of one fixed permutation, in source order."""
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
    manifest: Path, out: Path, *, prefix: list[str], spec: BenchSpec
) -> tuple[dict[str, Any], dict[str, str]]:
    """Score the noisy dataset with fercleaner as a measured child process."""
    run_dir = out / "runs" / PRIMARY_SYSTEM
    if run_dir.exists():  # a run dir of an earlier bench here: never resume into it
        shutil.rmtree(run_dir)
    command = [*prefix, str(manifest), "--out", str(run_dir)]
    if spec.recipe:
        command += ["--recipe", spec.recipe]
    if spec.method:
        command += ["--method", spec.method]
    command += list(spec.overrides)
    cost = run_system(PRIMARY_SYSTEM, command, run_dir)
    scores = read_scores(run_dir / SCORES_FILE)
    return {"scores": scores, "cost": cost}, {PRIMARY_SYSTEM: shlex.join(command)}


def _primary_system(scores, classes: list[str], cost: dict) -> SystemScores:
    """fercleaner's decisions exactly as its scores file states them."""
    system = from_scores_frame(
        PRIMARY_SYSTEM, align_frame_columns(scores.frame, scores.classes, classes), classes
    )
    system.cost = cost
    return system


def _with_synthetic_truth(
    samples: pd.DataFrame, dataset: Path, classes: Sequence[str]
) -> pd.DataFrame:
    """Use a synthetic dataset's truth (`<dataset>.truth.parquet`, fercleaner.synth) if it exists.

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
