"""The `votes` protocol's run (issue 10): four ways to read k visible crowd votes, evaluated.

All four see the same noisy dataset and the same model probabilities, those of one
`fercleaner score` run on the dataset without its vote columns:

- `plurality`: the plurality of the k visible votes (the given label itself); quality =
  its share of the visible votes.
- `cleanlab_multiannotator`: `cleanlab.multiannotator.get_label_quality_multiannotator`
  (CROWDLAB) on k anonymous annotator columns (the visible votes in draw order) and the
  model's probabilities; quality of the given label = CROWDLAB's posterior at it (its
  `detailed_label_quality` for an annotator who gave that label). With k = 1 cleanlab
  refuses a single annotator and points to `cleanlab.rank.get_label_quality_scores`,
  which is what runs then (consensus = the one vote).
- `fercleaner_novotes`: the score run itself; consensus = its `proposed_label` (the given
  label unless flagged), quality = its `label_quality`.
- `fercleaner_votes`: what `fercleaner score <dataset with votes>` writes. Votes never
  enter training, so that run trains the very model of `fercleaner_novotes`; the bench
  runs the step that follows training (`fercleaner.scoring.apply_crowd_votes`, the
  consensus of the votes with the run's probabilities and label quality) on that run's
  scores instead of training twice, and writes them to `runs/fercleaner_votes`. Consensus
  = its `consensus_label`, quality = its `label_quality` (the consensus posterior at the
  given label); its proposals (judged by the correction accuracy) are its own
  `proposed_label`.

The score run without votes is the one expensive step (a training), so its scores are
cached beside the bench references, keyed by the protocol, k, seed, the resolved recipe,
method and overrides, the scorer command, every (sample_id, given_label) pair, the image
bytes and the versions of fercleaner's training and scoring code, torch and timm.

This module runs the `score` child, keeps that cache and evaluates the systems;
`fercleaner.bench.vote_systems` computes each system from the truth and the probabilities.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fercleaner.arrays import to_matrix
from fercleaner.bench.materialize import MANIFEST_WITHOUT_VOTES
from fercleaner.bench.metrics import get_consensus_metrics
from fercleaner.bench.references import get_images_digest
from fercleaner.bench.resources import run_system
from fercleaner.bench.systems import SystemScores, align_columns, evaluate_system, from_scores_frame
from fercleaner.bench.vote_systems import (
    MULTIANNOTATOR,
    PLURALITY,
    WITH_VOTES,
    WITHOUT_VOTES,
    align_frame_columns,
    align_rows,
    get_multiannotator_system,
    get_plurality_system,
    get_run_issue_types,
    select_rows,
)
from fercleaner.bench.vote_systems import VOTE_SYSTEMS as VOTE_SYSTEMS  # for fercleaner.bench
from fercleaner.errors import FercleanerError
from fercleaner.runs import SCORES_FILE
from fercleaner.scoring import ScoresFile, read_scores, sort_most_suspect_first, write_scores

#: fercleaner code whose change changes the scores of a run (hashed into the cache key).
#: The crowd step (`scoring/consensus.py`, `scoring/crowd.py`) is left out: a run without
#: votes never reaches it (`apply_crowd_votes` returns its input untouched, which
#: tests/test_scoring_crowd_runs.py checks), and the bench runs it afresh every time.
_CROWD_CODE = ("scoring/consensus.py", "scoring/crowd.py")
_SCORING_CODE = (
    "arrays.py",
    "classes.py",
    "priors.py",
    "predictions.py",
    "cache",
    "config",
    "datasets",
    "methods",
    "models",
    "pipeline",
    "scoring",
    "training",
)

ReportFn = Callable[[int, str], None]


@dataclass
class VoteSystems:
    """The four systems' scores and their metrics, ready for bench.json."""

    systems: dict[str, SystemScores]
    metrics: dict[str, dict[str, Any]]
    commands: dict[str, str]
    issue_types: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per fercleaner system: `get_issue_type_metrics` against all the votes."""
    unscored: int = 0
    """Benchmark images the run without votes did not score (quarantined), left out."""
    truth: pd.DataFrame | None = None
    """The truth rows every system was evaluated on (the scored ones)."""
    consensus: dict[str, Any] = field(default_factory=dict)
    """`fercleaner_votes`'s crowd step summary (run.json's `consensus` for a real run)."""


def run_vote_systems(
    dataset_dir: Path,
    truth: pd.DataFrame,
    classes: list[str],
    *,
    out: Path,
    prefix: list[str],
    spec: Any,
    cache_root: Path | None,
    report: ReportFn,
) -> VoteSystems:
    """Score the votes benchmark's dataset with the four systems and evaluate each.

    Args:
        dataset_dir: the written noisy dataset (`labels.csv` with `votes_<class>` columns
            and `MANIFEST_WITHOUT_VOTES` beside it).
        truth: the truth table as written (sample_id, true_label, given_label, votes,
            visible_votes, visible_order).
        classes: the benchmark's classes (the source dataset's).
        out: the bench folder (run directories go under `out/runs`).
        prefix: the command that scores a dataset (`fercleaner score` or a stand-in).
        spec: the `BenchSpec` (recipe, method, overrides, seed, visible).
        cache_root: where the run without votes is cached (None: not cached).
        report: called as report(step, stage) before each of the 3 steps.
    """
    index = {name: i for i, name in enumerate(classes)}
    given = truth["given_label"].astype(str).map(index).to_numpy(dtype=np.int64)
    report(0, f"scoring with {WITHOUT_VOTES} (the one training)")
    base, base_cost, base_command = _score_without_votes(
        dataset_dir / MANIFEST_WITHOUT_VOTES,
        truth,
        out=out,
        prefix=prefix,
        spec=spec,
        cache_root=cache_root,
    )
    # an image the run could not decode is quarantined, by every fercleaner run alike
    scored = truth["sample_id"].astype(str).isin(base.frame["sample_id"].astype(str)).to_numpy()
    unscored = truth.loc[~scored, "sample_id"].astype(str).tolist()
    truth, given = truth.loc[scored].reset_index(drop=True), given[scored]
    frame = align_rows(base.frame, truth, WITHOUT_VOTES)
    probs = align_columns(to_matrix(frame["pred_probs"]), base.classes, classes)
    probs = probs / probs.sum(axis=1, keepdims=True)
    systems = {PLURALITY: get_plurality_system(truth, classes)}
    report(1, f"{MULTIANNOTATOR} on the same probabilities")
    started, cpu = time.perf_counter(), time.process_time()
    order = np.stack(truth["visible_order"].to_list()).astype(np.int64)
    systems[MULTIANNOTATOR] = get_multiannotator_system(truth, order, given, probs, classes)
    systems[MULTIANNOTATOR].cost = _cost(started, cpu)
    novotes = from_scores_frame(
        WITHOUT_VOTES, align_frame_columns(frame, base.classes, classes), classes
    )
    novotes.cost = base_cost
    systems[WITHOUT_VOTES] = novotes
    report(2, f"{WITH_VOTES}: the run's scores with the votes of the dataset")
    with_votes, voted_frame, command, consensus = _score_with_votes(
        dataset_dir / "labels.csv", truth, base, classes, out=out
    )
    systems[WITH_VOTES] = with_votes
    commands = {
        PLURALITY: "plurality of the visible votes",
        MULTIANNOTATOR: "cleanlab.multiannotator.get_label_quality_multiannotator"
        if order.shape[1] > 1
        else "cleanlab.rank.get_label_quality_scores (one annotator)",
        WITHOUT_VOTES: base_command,
        WITH_VOTES: command,
    }
    metrics = _evaluate(systems, truth, classes)
    issue_types = {
        WITHOUT_VOTES: get_run_issue_types(frame, truth, classes),
        WITH_VOTES: get_run_issue_types(voted_frame, truth, classes),
    }
    return VoteSystems(
        systems,
        metrics,
        commands,
        issue_types,
        unscored=len(unscored),
        truth=truth,
        consensus=consensus,
    )


def _evaluate(
    systems: dict[str, SystemScores],
    truth: pd.DataFrame,
    classes: list[str],
) -> dict[str, dict[str, Any]]:
    """Per system: the usual bench metrics and the consensus metrics against the truth."""
    metrics = {}
    for name, system in systems.items():
        metrics[name] = evaluate_system(system, truth, classes)
        metrics[name].update(
            get_consensus_metrics(
                truth["true_label"].astype(str).to_numpy(),
                truth["given_label"].astype(str).to_numpy(),
                system.proposed_label if system.consensus_label is None else system.consensus_label,
                system.label_quality,
            )
        )
    return metrics


def votes_cache_key(truth: pd.DataFrame, *, spec: Any, prefix: Sequence[str], images: str) -> str:
    """A hash of everything the run without votes depends on (see the module docstring)."""
    from fercleaner.config import load_recipe, recipe_to_dict

    recipe = recipe_to_dict(load_recipe(spec.recipe or "default", overrides=spec.overrides))
    header = {
        "protocol": spec.protocol,
        "visible": spec.visible,
        "seed": spec.seed,
        "recipe": recipe,
        "method": spec.method,
        "overrides": list(spec.overrides),
        # the interpreter's path is no input: a venv moved elsewhere scores alike
        "command": [c for c in prefix if c != sys.executable],
        "images": images,
        "code": _code_digest(),
        "versions": {name: _version(name) for name in ("fercleaner", "torch", "timm")},
    }
    digest = hashlib.sha256(json.dumps(header, sort_keys=True, default=str).encode())
    pairs = zip(truth["sample_id"].astype(str), truth["given_label"].astype(str), strict=True)
    for sample_id, label in sorted(pairs):
        digest.update(f"{sample_id}\t{label}\n".encode())
    return digest.hexdigest()[:24]


def _score_without_votes(
    manifest: Path,
    truth: pd.DataFrame,
    *,
    out: Path,
    prefix: list[str],
    spec: Any,
    cache_root: Path | None,
):
    """(scores file, cost, command) of `score` on the dataset without votes, cached."""
    run_dir = out / "runs" / WITHOUT_VOTES
    command = [*prefix, str(manifest), "--out", str(run_dir)]
    command += ["--recipe", spec.recipe] if spec.recipe else []
    command += ["--method", spec.method] if spec.method else []
    command += list(spec.overrides)
    cached = None
    if cache_root is not None:
        images = get_images_digest(manifest.parent, truth["sample_id"].astype(str).tolist())
        key = votes_cache_key(truth, spec=spec, prefix=prefix, images=images)
        cached = cache_root / f"votes-{key}.parquet"
        meta_path = cached.with_suffix(".json")
        if cached.is_file() and meta_path.is_file():
            cost = {**json.loads(meta_path.read_text())["cost"], "cached": True}
            return read_scores(cached), cost, shlex.join(command)
    if run_dir.exists():  # a run dir of an earlier bench here: never resume into it
        shutil.rmtree(run_dir)
    cost = run_system(WITHOUT_VOTES, command, run_dir)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run_dir / SCORES_FILE, cached.with_suffix(".parquet.tmp"))
        cached.with_suffix(".json.tmp").write_text(
            json.dumps({"cost": cost, "command": shlex.join(command)}, indent=2)
        )
        # the scores first: a .json beside a parquet is what marks an entry complete
        cached.with_suffix(".parquet.tmp").replace(cached)
        cached.with_suffix(".json.tmp").replace(cached.with_suffix(".json"))
    return read_scores(run_dir / SCORES_FILE), {**cost, "cached": False}, shlex.join(command)


def _score_with_votes(
    manifest: Path,
    truth: pd.DataFrame,
    base: ScoresFile,
    classes: list[str],
    *,
    out: Path,
) -> tuple[SystemScores, pd.DataFrame, str, dict[str, Any]]:
    """The run without votes' scores after the crowd step of `fercleaner score` on the
    dataset with votes (see the module docstring), written to `runs/fercleaner_votes`.

    Returns (system, its scores frame in truth order, what it stands for, the crowd step's
    run summary: the fitted `a`, temperatures and `alpha`).
    """
    from fercleaner.datasets import read_dataset
    from fercleaner.runs.record import new_run_id
    from fercleaner.scoring.crowd import apply_crowd_votes, get_sample_votes

    started, cpu = time.perf_counter(), time.process_time()
    dataset = read_dataset(manifest, check_images=False)
    dataset_classes = list(dataset.classes)
    samples = dataset.samples.set_index(dataset.samples["sample_id"].astype(str), drop=False)
    frame = align_frame_columns(base.frame, base.classes, dataset_classes)
    rows = select_rows(
        samples,
        frame["sample_id"].astype(str),
        lambda missing: (
            f"{WITH_VOTES}: {manifest} lacks {len(missing)} image(s) the run without votes"
            f" scored (first: {missing.iloc[0]!r}); the two manifests must list the same images"
        ),
    )
    votes = get_sample_votes(rows, dataset_classes)
    if votes is None:
        raise FercleanerError(
            f"{WITH_VOTES}: no image in {manifest} has votes; the bench writes its"
            " votes_<class> columns, so the file was changed after it was written"
        )
    # a cached run was scored in another bench folder: its images are this one's
    frame = frame.assign(path=rows["path"].astype(str).to_numpy())
    crowd = apply_crowd_votes(frame, votes, dataset_classes)
    cost = _cost(started, cpu)
    run_dir = out / "runs" / WITH_VOTES
    if run_dir.exists():  # an earlier bench's: never mix two runs
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    metadata = {
        **base.metadata,
        "classes": dataset_classes,
        "run_id": new_run_id(),
        "dataset_root": str(dataset.root),
    }
    write_scores(sort_most_suspect_first(crowd.scores), run_dir / SCORES_FILE, metadata=metadata)
    voted_frame = align_rows(crowd.scores, truth, WITH_VOTES)
    aligned = align_frame_columns(voted_frame, dataset_classes, classes)
    system = from_scores_frame(WITH_VOTES, aligned, classes)
    system.consensus_label = aligned["consensus_label"].astype(str).to_numpy(dtype=object)
    system.cost = cost
    command = (
        f"fercleaner score {shlex.quote(str(manifest))} (= {WITHOUT_VOTES}'s training;"
        " its scores through fercleaner.scoring.apply_crowd_votes)"
    )
    return system, voted_frame, command, crowd.summary or {}


def _cost(started: float, cpu: float) -> dict[str, float]:
    return {"wall_s": time.perf_counter() - started, "cpu_s": time.process_time() - cpu}


def _code_digest() -> str:
    """SHA-256 over fercleaner's training and scoring sources (a code change retrains)."""
    import fercleaner

    root = Path(fercleaner.__file__).parent
    digest = hashlib.sha256()
    for entry in _SCORING_CODE:
        path = root / entry
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            if file.is_file() and file.relative_to(root).as_posix() not in _CROWD_CODE:
                digest.update(str(file.relative_to(root)).encode())
                digest.update(file.read_bytes())
    return digest.hexdigest()


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"
