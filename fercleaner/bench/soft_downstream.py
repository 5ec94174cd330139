"""Do exported soft labels train a better classifier than hard ones? (issue 10, part 4)

A cleaner's soft labels are only worth exporting if training code does better with them.
This takes one finished `fercleaner bench` output folder (its fercleaner run, the noisy
dataset and the truth), holds out a stratified, seeded share of the samples with their
*true* labels, and trains the frozen plain classifier (`plain_reference.train_plain_model`,
the same network and schedule for every variant) on the rest, once per set of targets:

- `given`: the noisy given labels, one-hot (what training code had before cleaning);
- `relabel`: the hard labels of `fercleaner export --policy relabel`;
- `soft`: the `soft_label` column of `fercleaner export --policy soft` (flagged samples
  train on the run's soft label, the others on their given label);
- `soft_all` (asked for): the run's `soft_label` for every sample, flagged or not (no
  export policy writes this; it asks whether one should);
- `majority` (asked for): the true labels, the ceiling.

Each model is scored on the held-out share against the truth: accuracy, NLL of the true
label, and, when the truth keeps the votes, KL(vote distribution || prediction). The
manifests come from the export's own `build_manifest`, so what is measured is what a user
exports. The held-out rows were scored by the cleaner with their noisy labels (the
cleaner never sees the truth), but no variant trains on them.

    python -m fercleaner.bench.soft_downstream BENCH_OUT [BENCH_OUT ...] [--epochs 15]
        [--holdout 0.2] [--seed 0] [--variants given,relabel,soft] [--system S] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fercleaner.bench.downstream import find_holdout
from fercleaner.bench.plain_reference import (
    PlainRecipe,
    ProgressFn,
    predict_flip_averaged,
    train_plain_model,
)
from fercleaner.bench.suite_report import get_mean_sd

#: Target sets that can be trained on, in report order.
VARIANTS: tuple[str, ...] = ("given", "relabel", "soft", "soft_all", "majority")
#: What is trained unless asked otherwise: what the export offers a user.
DEFAULT_VARIANTS: tuple[str, ...] = ("given", "relabel", "soft")
#: The reference network at half its epochs: a cheap model is enough to compare targets.
SMALL_RECIPE = PlainRecipe(epochs=15)


def get_training_targets(
    bench_out: Path, *, system: str = "fercleaner", variants: Sequence[str] = DEFAULT_VARIANTS
) -> dict[str, Any]:
    """Per variant an (N, C) target matrix for the run's samples, plus the samples and truth.

    Rows follow the bench's truth file (the noisy dataset's order, not the order the run
    stored its scores in, so a seed draws the same hold-out from any run); `relabel` and
    `soft` are the export's manifests for a run nobody reviewed. The returned `given`
    ((N, C) one-hot given labels) is there even when the `given` variant is not asked for:
    it counts the rows each variant changes.

    Raises:
        ValueError: an unknown variant, or no run `system` under `bench_out/runs/` (names
            the runs there).
    """
    from fercleaner.export import build_manifest
    from fercleaner.runs import read_run

    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise ValueError(f"unknown target variants {unknown}; choose from {list(VARIANTS)}")
    runs = bench_out / "runs"
    if not (runs / system).is_dir():
        found = sorted(p.name for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []
        raise ValueError(
            f"{runs / system} does not exist: {bench_out} is not a finished `fercleaner bench`"
            f" output with a {system!r} run; runs there: {found or 'none'}"
            + (f"; pass --system {found[0]}" if found else "")
        )
    run = read_run(runs / system)
    classes = list(run.classes)
    index = {name: i for i, name in enumerate(classes)}
    scores = run.scores.set_index(run.scores["sample_id"].astype(str))
    truth = pd.read_parquet(bench_out / "noisy" / "truth.parquet").set_index("sample_id")
    truth = truth[truth.index.astype(str).isin(scores.index)]
    ids = truth.index.astype(str).to_numpy()
    scores = scores.loc[ids]
    eye = np.eye(len(classes), dtype=np.float32)

    def manifest_for(policy: str) -> pd.DataFrame:
        manifest = build_manifest(run, pd.DataFrame(), policy=policy, min_confidence=0.0)
        return manifest.set_index("sample_id").loc[ids]

    given = eye[scores["given_label"].astype(str).map(index).to_numpy()]
    make = {
        "given": lambda: given,
        "relabel": lambda: eye[manifest_for("relabel")["label"].to_numpy()],
        "soft": lambda: np.stack(manifest_for("soft")["soft_label"].to_list()),
        "soft_all": lambda: _normalise_rows(np.stack(scores["soft_label"].to_list())),
        "majority": lambda: eye[truth["true_label"].astype(str).map(index).to_numpy()],
    }
    targets = {name: make[name]().astype(np.float32) for name in VARIANTS if name in variants}
    return {
        "classes": classes,
        "sample_ids": ids,
        "truth": truth,
        "given": given,
        "targets": targets,
    }


def get_holdout_metrics(
    probs: np.ndarray, true_index: np.ndarray, votes: np.ndarray | None = None
) -> dict[str, float]:
    """Accuracy and mean NLL of the true class; mean KL(votes || probs) when votes are given.

    Args:
        probs: (N, C) predicted distributions (clipped at 1e-12 for the NLL).
        true_index: (N,) int index of each row's true class.
        votes: (N, C) vote counts over the same classes; rows without a vote are skipped.
    """
    probs = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)
    rows = np.arange(len(true_index))
    out = {
        "accuracy": float((probs.argmax(axis=1) == true_index).mean()),
        "nll": float(-np.log(probs[rows, true_index]).mean()),
    }
    if votes is not None:
        from fercleaner.bench.metrics import get_soft_label_metrics

        flat = np.zeros(len(probs))  # KL only; the rank correlation is not asked here
        out["kl_votes"] = get_soft_label_metrics(votes, probs, flat)["kl_votes_soft"]
    return out


def compare_targets(
    bench_out: str | Path,
    *,
    holdout: float = 0.2,
    seed: int = 0,
    recipe: PlainRecipe = SMALL_RECIPE,
    system: str = "fercleaner",
    variants: Sequence[str] = DEFAULT_VARIANTS,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Train the plain classifier on each target set of one bench output; held-out metrics."""
    from fercleaner.cache import build_cache
    from fercleaner.datasets import read_dataset

    bench_out = Path(bench_out)
    found = get_training_targets(bench_out, system=system, variants=variants)
    classes, ids, truth = found["classes"], found["sample_ids"], found["truth"]
    source = read_dataset(bench_out / "noisy" / "dataset" / "labels.csv")
    samples = source.samples.set_index(source.samples["sample_id"].astype(str)).loc[ids]
    cache = build_cache(samples.reset_index(drop=True), size=recipe.image_size, channels=1)
    images = np.asarray(cache.images[cache.rows(pd.Series(ids))])
    held = find_holdout(truth.reset_index(), fraction=holdout, seed=seed)
    true_index = truth["true_label"].astype(str).map({c: i for i, c in enumerate(classes)})
    true_index = true_index.to_numpy()
    votes = _get_votes(bench_out, truth, classes)
    votes = None if votes is None else votes[held]
    results: dict[str, Any] = {}
    targets = found["targets"]
    for name, target in targets.items():
        start = time.perf_counter()
        model = train_plain_model(
            images[~held],
            target[~held],
            num_classes=len(classes),
            recipe=recipe,
            seed=seed,
            progress=None if progress is None else (lambda line, n=name: progress(f"{n}: {line}")),
        )
        probs = predict_flip_averaged(model, images[held])
        results[name] = get_holdout_metrics(probs, true_index[held], votes)
        results[name]["wall_s"] = time.perf_counter() - start
    return {
        "bench_out": str(bench_out),
        "system": system,
        "train_samples": int((~held).sum()),
        "holdout_samples": int(held.sum()),
        "changed_rows": {  # training rows whose targets differ from the given one-hot
            name: int((target != found["given"]).any(axis=1)[~held].sum())
            for name, target in targets.items()
        },
        "epochs": recipe.epochs,
        "seed": seed,
        "variants": results,
    }


def _normalise_rows(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float64)
    return matrix / np.clip(matrix.sum(axis=1, keepdims=True), 1e-12, None)


def _get_votes(bench_out: Path, truth: pd.DataFrame, classes: list[str]) -> np.ndarray | None:
    """(N, C) vote counts over the run's classes (the truth counts over the bench's)."""
    if "votes" not in truth:
        return None
    bench_classes = json.loads((bench_out / "bench.json").read_text())["classes"]
    columns = [bench_classes.index(name) for name in classes]
    return np.stack(truth["votes"].to_list())[:, columns]


def summarise(reports: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per variant and metric, mean, sd and count over the reports (runs) that have it.

    A metric one run lacks (`kl_votes` where its truth keeps no votes) or leaves NaN is
    averaged over the other runs; `runs` says over how many.
    """
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for name in VARIANTS:
        rows = [r["variants"][name] for r in reports if name in r["variants"]]
        metrics = list(dict.fromkeys(metric for row in rows for metric in row))
        for metric in metrics:
            values = [float(row[metric]) for row in rows if metric in row]
            values = [v for v in values if not np.isnan(v)]
            if values:
                summary.setdefault(name, {})[metric] = get_mean_sd(values)
    return summary


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: one JSON object on stdout (and in --out)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench_out", type=Path, nargs="+", help="`fercleaner bench` output folder")
    parser.add_argument("--epochs", type=int, default=SMALL_RECIPE.epochs)
    parser.add_argument("--holdout", type=float, default=0.2, help="share held out per class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help=f"comma-separated target sets to train on, from {','.join(VARIANTS)}",
    )
    parser.add_argument(
        "--system", default="fercleaner", help="run under BENCH_OUT/runs/ (e.g. fercleaner_votes)"
    )
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    recipe = replace(SMALL_RECIPE, epochs=args.epochs)
    reports = []
    for path in args.bench_out:
        reports.append(
            compare_targets(
                path,
                holdout=args.holdout,
                seed=args.seed,
                recipe=recipe,
                system=args.system,
                variants=args.variants.split(","),
                progress=lambda line, p=path: print(f"{p.name} {line}", file=sys.stderr),
            )
        )
    result = {"runs": reports, "summary": summarise(reports)}
    text = json.dumps(result, indent=2)
    if args.out is not None:
        from fercleaner.atomic import write_text_atomic

        write_text_atomic(args.out, text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
