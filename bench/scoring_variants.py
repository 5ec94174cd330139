"""Re-score a finished `fercleaner bench` run with other scoring choices; prints one JSON object.

Training is the expensive part; the scoring rules are not. This reads the fercleaner
run of a bench output folder (its scores.parquet keeps every source's own columns) and
the truth, and reports AP / AUROC / F1 / correction accuracy / KL for each variant:
the combination rule (rank_mean, mean, primary), each source alone, cleanlab's flags on
the same ranking, and, when the run did not score with it, the `dynamics` source rebuilt
from the run's dynamics.parquet by the engine's own `get_dynamics_readout` (what
`score.dynamics=true` would have written, without retraining). Given several folders
(e.g. every run of a suite), it also prints each variant's mean and sd over them. Use it
to choose defaults from measurements.

    .venv/bin/python bench/scoring_variants.py BENCH_OUT [BENCH_OUT ...] [--system fercleaner]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

_CONTRACT_KEYS = ("pred_probs", "soft_label", "uncertainty", "label_quality_signal")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "bench_out", type=Path, nargs="+", help="output folder(s) of `fercleaner bench`"
    )
    parser.add_argument("--system", default="fercleaner", help="run under BENCH_OUT/runs/")
    args = parser.parse_args(argv)
    runs = {str(path): score_variants(path, args.system) for path in args.bench_out}
    report: dict = {"runs": runs}
    if len(runs) > 1:
        report["summary"] = _summarise(runs)
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def score_variants(bench_out: Path, system_name: str) -> dict:
    """Metrics of every scoring variant of one bench run's `system_name` run."""
    from fercleaner.bench.systems import SystemScores, evaluate_system, get_reference_scores
    from fercleaner.scoring import assemble_scores, read_scores

    run_dir = bench_out / "runs" / system_name
    scores = read_scores(run_dir / "scores.parquet")
    truth = pd.read_parquet(bench_out / "noisy" / "truth.parquet")
    frame, classes = scores.frame, scores.classes
    sources = scores.metadata.get("sources", [scores.metadata["method"]])
    primary = scores.metadata["method"]
    readouts = {s: _readout(frame, s, primary, single=len(sources) == 1) for s in sources}
    samples = frame[["sample_id", "split", "given_label", "path"]]
    # flag as the run did (the recipe's rule), so F1 compares with the run's own bench.json
    flag_rule = scores.metadata.get("recipe", {}).get("score", {}).get("flag_rule", "argmax")
    index = {c: i for i, c in enumerate(classes)}
    labels = frame["given_label"].map(index).to_numpy()

    def system(name: str, assembled: pd.DataFrame) -> SystemScores:
        return SystemScores(
            name=name,
            sample_ids=assembled["sample_id"].astype(str).to_numpy(),
            label_quality=assembled["label_quality"].to_numpy(float),
            is_label_issue=assembled["is_label_issue"].to_numpy(bool),
            proposed_label=assembled["proposed_label"].astype(str).to_numpy(dtype=object),
            soft_label=np.stack(assembled["soft_label"].to_list()).astype(float),
            uncertainty=assembled["uncertainty"].to_numpy(float),
        )

    variants: dict[str, SystemScores] = {}
    for rule in ("rank_mean", "mean", "primary"):
        assembled = assemble_scores(
            samples, classes, readouts, method_name=primary, combine=rule, flag_rule=flag_rule
        )
        variants[f"combine={rule}"] = system(f"combine={rule}", assembled)
    for source in sources:
        if "pred_probs" not in readouts[source]:
            continue
        alone = assemble_scores(
            samples, classes, {source: readouts[source]}, method_name=source, flag_rule=flag_rule
        )
        variants[f"{source} alone"] = system(f"{source} alone", alone)
        variants[f"{source} + cleanlab flags"] = get_reference_scores(
            f"{source} + cleanlab flags",
            frame["sample_id"].astype(str).to_numpy(),
            labels,
            readouts[source]["pred_probs"],
            classes,
            quality="self_confidence",
        )
    if "dynamics" not in sources and (run_dir / "dynamics.parquet").is_file():
        dynamics = _rebuild_dynamics(run_dir / "dynamics.parquet", frame, primary)
        both = {primary: readouts[primary], "dynamics": dynamics}
        assembled = assemble_scores(
            samples, classes, both, method_name=primary, flag_rule=flag_rule
        )
        variants["+ dynamics (late AUM)"] = system("+ dynamics (late AUM)", assembled)
    results = {}
    for name, scored in variants.items():
        metrics = evaluate_system(scored, truth, classes)
        metrics.pop("reliability", None)
        metrics.pop("soft_reliability", None)
        results[name] = {k: _plain(v) for k, v in metrics.items()}
    return {"sources": sources, "variants": results}


def _rebuild_dynamics(path: Path, frame: pd.DataFrame, method: str) -> dict[str, np.ndarray]:
    """The dynamics readout of `method`'s in-sample run, from its dynamics.parquet rows."""
    from fercleaner.training.dynamics import (
        DYNAMICS_SIGNALS,
        DynamicsAccumulator,
        EpochSignals,
        get_dynamics_readout,
    )

    table = pd.read_parquet(path)
    table = table[(table["method"] == method) & (table["fold"] == 0)]
    position = pd.Series(np.arange(len(frame)), index=frame["sample_id"].astype(str))
    accumulator = DynamicsAccumulator(len(frame), EpochSignals())
    for epoch, rows in table.groupby("epoch"):
        index = position.loc[rows["sample_id"].astype(str)].to_numpy()
        values = {k: np.full(len(frame), np.nan, np.float32) for k in DYNAMICS_SIGNALS}
        for signal in DYNAMICS_SIGNALS:
            values[signal][index] = rows[signal].to_numpy()
        accumulator.signals.put(int(epoch), values)
    return get_dynamics_readout(accumulator)


def _summarise(runs: dict[str, dict]) -> dict[str, dict[str, float]]:
    """Mean and sd over the runs of each variant's AP, F1 and correction accuracy."""
    names = set.intersection(*(set(r["variants"]) for r in runs.values()))
    summary = {}
    for name in sorted(names):
        summary[name] = {}
        for metric in ("ap", "f1", "correction_accuracy"):
            values = [r["variants"][name].get(metric) for r in runs.values()]
            values = np.array([v for v in values if v is not None], dtype=float)
            if len(values):
                summary[name][f"{metric}_mean"] = round(float(values.mean()), 4)
                summary[name][f"{metric}_sd"] = round(float(values.std(ddof=1)), 4)
    return summary


def _readout(
    frame: pd.DataFrame, source: str, primary: str, *, single: bool
) -> dict[str, np.ndarray]:
    """A source's readout from its `<source>_<key>` columns.

    A primary without such a column falls back to the contract column `key`: always when
    it is the lone source, and for the distributions otherwise (the other sources may be
    ranking signals only, like `dynamics`, so the contract's are the primary's).
    """
    out = {}
    for key in _CONTRACT_KEYS:
        column = f"{source}_{key}"
        falls_back = single or key in ("pred_probs", "soft_label")
        if column not in frame.columns and source == primary and falls_back and key in frame:
            column = key
        if column in frame.columns:
            values = frame[column]
            out[key] = (
                np.stack(values.to_list()).astype(float)
                if values.dtype == object
                else values.to_numpy(float)
            )
    return out


def _plain(value):
    if isinstance(value, float | np.floating):
        return None if not np.isfinite(value) else round(float(value), 4)
    return value


if __name__ == "__main__":
    raise SystemExit(main())
