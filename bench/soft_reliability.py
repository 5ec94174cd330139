"""Are the soft labels calibrated to people? Offline, on finished bench runs that carry votes.

Issue 10 asks for a reliability plot of the soft label itself (not of label_quality): for
every (image, class) pair, the soft label's probability of the class against the share of
the image's 10 votes for it. Compared, per run and pooled over runs, with the plain
reference's in-sample softmax and, where the run trained it, cleanlab's 5-fold
out-of-fold softmax (both read from the bench's reference cache, as the bench wrote them).

Prints one JSON object (per run and pooled: ECE against the votes and KL(votes || soft));
`--plot FILE` draws the pooled reliability curves.

    .venv/bin/python bench/soft_reliability.py DIR/val-s0 DIR/train0-s0 ... [--plot FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from fercleaner.arrays import to_matrix
from fercleaner.bench.metrics import get_soft_label_metrics, get_soft_label_reliability
from fercleaner.bench.references import get_default_reference_cache, read_cached_references
from fercleaner.bench.systems import align_columns
from fercleaner.scoring import read_scores

#: Cached references compared with fercleaner's soft label: name -> folds of its cache key
#: (the bench's default `--folds 5`; a run with other folds has no `cleanlab_cv5` entry).
REFERENCES = {"plain_ce": 1, "cleanlab_cv5": 5}


def read_soft_labels(bench_out: Path, cache: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(votes (N, C), {system: (N, C) soft labels}) of one run, columns in the bench's class
    order (a class the run never saw gets probability 0, as in the bench's own metrics)."""
    classes = json.loads((bench_out / "bench.json").read_text())["classes"]
    scored = read_scores(bench_out / "runs" / "fercleaner" / "scores.parquet")
    ids = scored.frame["sample_id"].astype(str).to_numpy()
    truth = pd.read_parquet(bench_out / "noisy" / "truth.parquet").set_index("sample_id")
    votes = to_matrix(truth.loc[ids, "votes"])
    ours = to_matrix(scored.frame["soft_label"])
    soft = {"fercleaner": align_columns(ours, list(scored.classes), classes)}
    cached = read_cached_references(bench_out, cache, classes, folds=list(REFERENCES.values()))
    for name, folds in REFERENCES.items():
        if folds in cached:
            soft[name] = np.stack(cached[folds].loc[ids, "pred_probs"].to_list())
    return votes, soft


def summarize(votes: np.ndarray, soft: np.ndarray) -> dict[str, object]:
    """ECEs against the votes, the reliability curve and KL(votes || soft) of one soft label."""
    curve = get_soft_label_reliability(votes, soft)
    kl = get_soft_label_metrics(votes, soft, np.zeros(len(votes)))["kl_votes_soft"]
    ece, top_ece = curve.pop("ece"), curve.pop("top_ece")
    return {"ece": ece, "top_ece": top_ece, "kl_votes_soft": kl, "curve": curve}


def plot(path: Path, pooled: dict[str, dict]) -> None:
    """The pooled reliability curves of every system, one line each, against the diagonal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":", label="calibrated to the votes")
    for (name, values), style in zip(pooled.items(), ("-", "--", "-."), strict=False):
        curve = values["curve"]
        label = f"{name} (top ECE {values['top_ece']:.3f}, KL {values['kl_votes_soft']:.3f})"
        ax.plot(curve["mean_soft"], curve["vote_share"], ls=style, marker="o", ms=3, label=label)
    ax.set(
        xlabel="soft-label probability of a class (bin mean)",
        ylabel="share of the 10 votes for that class",
        xlim=(0, 1),
        ylim=(0, 1.02),
        title="Soft labels against FERPlus votes (pooled runs)",
    )
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: one JSON object on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench_out", type=Path, nargs="+", help="bench output folder (one run)")
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="the bench's reference cache (default: $FERCLEANER_CACHE/bench-references)",
    )
    parser.add_argument("--plot", type=Path, default=None, help="PNG of the pooled curves")
    args = parser.parse_args(argv)
    if args.cache is None:
        args.cache = get_default_reference_cache()
    runs, pooled_votes, pooled_soft = {}, [], {}
    for path in args.bench_out:
        votes, soft = read_soft_labels(path, args.cache)
        runs[str(path)] = {name: summarize(votes, s) for name, s in soft.items()}
        pooled_votes.append(votes)
        for name, s in soft.items():
            pooled_soft.setdefault(name, []).append(s)
    # only systems every run has, so the pooled rows are the same images for each
    common = [n for n, parts in pooled_soft.items() if len(parts) == len(args.bench_out)]
    votes = np.concatenate(pooled_votes)
    pooled = {name: summarize(votes, np.concatenate(pooled_soft[name])) for name in common}
    for values in runs.values():
        for entry in values.values():
            del entry["curve"]  # per-run curves are in the pooled plot's spirit; keep JSON short
    if args.plot is not None:
        plot(args.plot, pooled)
    json.dump({"runs": runs, "pooled": pooled}, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
