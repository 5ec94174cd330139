"""Re-score a finished `fercleaner bench` run with other scoring choices; prints one JSON object.

Training is the expensive part; the scoring rules are not. This reads the fercleaner
run of a bench output folder (its scores.parquet keeps every source's own columns) and
the truth, and reports AP / AUROC / F1 / correction accuracy / KL for each variant:
the combination rule (rank_mean, mean, primary), each source alone, and cleanlab's
flags on the same ranking. Use it to choose defaults from measurements.

    .venv/bin/python bench/scoring_variants.py BENCH_OUT [--system fercleaner]
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
    parser.add_argument("bench_out", type=Path, help="output folder of `fercleaner bench`")
    parser.add_argument("--system", default="fercleaner", help="run under BENCH_OUT/runs/")
    args = parser.parse_args(argv)

    from fercleaner.bench.systems import SystemScores, evaluate_system, get_reference_scores
    from fercleaner.scoring import assemble_scores, read_scores

    scores = read_scores(args.bench_out / "runs" / args.system / "scores.parquet")
    truth = pd.read_parquet(args.bench_out / "noisy" / "truth.parquet")
    frame, classes = scores.frame, scores.classes
    sources = scores.metadata.get("sources", [scores.metadata["method"]])
    primary = scores.metadata["method"]
    readouts = {s: _readout(frame, s, primary, single=len(sources) == 1) for s in sources}
    samples = frame[["sample_id", "split", "given_label", "path"]]
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
        assembled = assemble_scores(samples, classes, readouts, method_name=primary, combine=rule)
        variants[f"combine={rule}"] = system(f"combine={rule}", assembled)
    for source in sources:
        if "pred_probs" not in readouts[source]:
            continue
        alone = assemble_scores(samples, classes, {source: readouts[source]}, method_name=source)
        variants[f"{source} alone"] = system(f"{source} alone", alone)
        variants[f"{source} + cleanlab flags"] = get_reference_scores(
            f"{source} + cleanlab flags",
            frame["sample_id"].astype(str).to_numpy(),
            labels,
            readouts[source]["pred_probs"],
            classes,
            quality="self_confidence",
        )
    results = {}
    for name, scored in variants.items():
        metrics = evaluate_system(scored, truth, classes)
        metrics.pop("reliability", None)
        results[name] = {k: _plain(v) for k, v in metrics.items()}
    json.dump(
        {"bench_out": str(args.bench_out), "sources": sources, "variants": results},
        sys.stdout,
        indent=2,
    )
    sys.stdout.write("\n")
    return 0


def _readout(
    frame: pd.DataFrame, source: str, primary: str, *, single: bool
) -> dict[str, np.ndarray]:
    """A source's readout from its `<source>_<key>` columns.

    A lone primary (`single`) without such a column falls back to the contract column `key`.
    """
    out = {}
    for key in _CONTRACT_KEYS:
        column = f"{source}_{key}"
        if column not in frame.columns and source == primary and single and key in frame.columns:
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
