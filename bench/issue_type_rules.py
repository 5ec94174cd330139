"""Which `mislabeled` rule would people agree with? Offline, on finished bench runs with votes.

Issue 10 (part 3) asks that `mislabeled` flags be right (a strict majority of all the
votes disagrees with the given label) at least 1.5x as often as flagged images are in
general. This script re-types the flagged images of finished runs under the shipped rule
(each run's own `issue_type` column, as the bench checked it) and stricter
alternatives, and checks each against the votes with the bench's own metric
(`get_issue_type_metrics`). It also reports how well each score column separates
people-mislabeled from the other flagged images (ROC AUC), the evidence a rule can use.

Prints one JSON object: per rule, mean ± sd (and the number of runs) of count, precision,
base rate and lift; per column, the mean AUC.

    .venv/bin/python bench/issue_type_rules.py DIR/val-s0 DIR/train0-s0 ...
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from fercleaner.arrays import get_entropy, to_matrix
from fercleaner.bench.metrics import get_issue_type_metrics, get_people_issue_types
from fercleaner.bench.suite_report import get_mean_sd
from fercleaner.scoring import propose_labels, read_scores


def read_scored_run(bench_out: Path) -> dict[str, np.ndarray]:
    """A finished run's scores joined to its votes (images the run did not score are left
    out, as the bench leaves them). The votes and `truth_given` are in the bench's class
    order (as the bench checks issue types); `given` and `soft` in the run's own (a class
    nobody was given is not among them), which the rules read."""
    scored = read_scores(bench_out / "runs" / "fercleaner" / "scores.parquet")
    truth = pd.read_parquet(bench_out / "noisy" / "truth.parquet")
    truth = truth.set_index(truth["sample_id"].astype(str))
    frame = scored.frame[scored.frame["sample_id"].astype(str).isin(truth.index)]
    truth = truth.loc[frame["sample_id"].astype(str)]
    bench_classes = json.loads((bench_out / "bench.json").read_text())["classes"]
    in_bench = {name: i for i, name in enumerate(bench_classes)}
    in_run = {name: i for i, name in enumerate(scored.classes)}
    return {
        "votes": to_matrix(truth["votes"]),
        "truth_given": truth["given_label"].astype(str).map(in_bench).to_numpy(dtype=np.int64),
        "given": frame["given_label"].astype(str).map(in_run).to_numpy(dtype=np.int64),
        "soft": to_matrix(frame["soft_label"]),
        "flags": frame["is_label_issue"].to_numpy(dtype=bool),
        "issue_type": frame["issue_type"].astype(str).to_numpy(dtype=object),
        "uncertainty": frame["uncertainty"].to_numpy(dtype=np.float64),
        "label_quality": frame["label_quality"].to_numpy(dtype=np.float64),
    }


def _retype(run: dict[str, np.ndarray], mislabeled: np.ndarray) -> np.ndarray:
    """Flagged images typed `mislabeled` where the mask says so, else `ambiguous`."""
    types = np.where(mislabeled, "mislabeled", "ambiguous").astype(object)
    types[~run["flags"]] = "none"
    return types


def _proposal_and_given_mass(run: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(N,) soft-label mass of the proposal (the most probable class other than the given
    one, as scoring proposes it) and of the given class."""
    given, soft = run["given"], run["soft"]
    every_flagged = np.full(len(given), "ambiguous", dtype=object)
    proposal = propose_labels(given, soft, issue_type=every_flagged)
    rows = np.arange(len(given))
    return soft[rows, proposal], soft[rows, given]


def get_rules(run: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Issue types per rule; every rule leaves the flags as they are. `shipped` is the
    run's own `issue_type` column (with votes, `apply_crowd_votes` may have set it)."""
    shipped = run["issue_type"]
    quality = run["label_quality"][run["flags"]]
    below_median = run["label_quality"] < np.median(quality)
    strict = shipped.copy()
    strict[(shipped == "mislabeled") & ~below_median] = "ambiguous"
    proposal_mass, _ = _proposal_and_given_mass(run)
    return {
        "shipped": shipped,
        "shipped_and_quality_below_flagged_median": strict,
        "quality_in_flagged_lowest_quarter": _retype(
            run, run["label_quality"] < np.quantile(quality, 0.25)
        ),
        "soft_label_majority_for_proposal": _retype(run, proposal_mass > 0.5),
    }


def get_separation(run: dict[str, np.ndarray]) -> dict[str, float]:
    """ROC AUC of each column for people-mislabeled among the flagged images (NaN when the
    flagged images are all, or none, people-mislabeled)."""
    flags = run["flags"]
    people = get_people_issue_types(run["votes"], run["truth_given"])["mislabeled"][flags]
    proposal_mass, given_mass = _proposal_and_given_mass(run)
    entropy = get_entropy(run["soft"])
    columns: dict[str, np.ndarray] = {
        "low label_quality": -run["label_quality"],
        "soft[proposal] - soft[given]": proposal_mass - given_mass,
        "low soft[given]": -given_mass,
        "soft[proposal]": proposal_mass,
        "low soft-label entropy": -entropy,
        "uncertainty": run["uncertainty"],
    }
    if people.all() or not people.any():
        return {name: float("nan") for name in columns}
    return {name: float(roc_auc_score(people, v[flags])) for name, v in columns.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished bench run folders")
    args = parser.parse_args(argv)
    per_rule: dict[str, dict[str, list[float]]] = {}
    aucs: dict[str, list[float]] = {}
    for folder in args.runs:
        run = read_scored_run(folder)
        if not run["flags"].any():
            print(f"{folder}: nothing flagged; left out", file=sys.stderr)
            continue
        for rule, types in get_rules(run).items():
            metrics = get_issue_type_metrics(run["votes"], run["truth_given"], run["flags"], types)
            stats = per_rule.setdefault(rule, {})
            for key in ("count", "precision", "base_rate", "lift"):
                stats.setdefault(key, []).append(float(metrics["mislabeled"][key]))
        for column, auc in get_separation(run).items():
            aucs.setdefault(column, []).append(auc)
    out = {
        "runs": [str(r) for r in args.runs],
        "mislabeled_by_rule": {
            rule: {k: get_mean_sd(v) for k, v in stats.items()} for rule, stats in per_rule.items()
        },
        "auc_people_mislabeled_among_flagged": {k: float(np.nanmean(v)) for k, v in aucs.items()},
    }
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
