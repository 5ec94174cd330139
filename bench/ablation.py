"""Compare `fercleaner bench --suite` outputs on the runs they share; prints JSON or Markdown.

An ablation trains one suite per variant (`--method mtac`, `--method poi`, the default...)
into its own folder; each run's bench.json holds that variant as `fercleaner` beside the
cached plain reference. This reads every folder's `<run>/bench.json`, keeps the runs that
all folders finished (so every row averages the same runs), and reports per variant the
mean ± sd of each metric and of its per-run delta to the plain reference. A value a run
leaves NaN or lacks (no votes, nothing flagged) is skipped: `runs` says how many count.
The plain reference's row is the first folder's (the reference is cached, so the same).

    .venv/bin/python bench/ablation.py default=DIR mtac=DIR poi=DIR uapl=DIR [--markdown]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from fercleaner.bench.suite_report import get_mean_sd

METRICS = ("ap", "f1", "correction_accuracy", "kl_votes_soft", "spearman_uncertainty_vote_entropy")
REFERENCE = "plain_ce"


def read_runs(folder: Path) -> dict[str, dict]:
    """Run name -> bench.json of every finished run under a suite output folder.

    Raises:
        SystemExit: the folder holds no `<run>/bench.json` (names it).
    """
    runs = {
        path.parent.name: json.loads(path.read_text())
        for path in sorted(Path(folder).glob("*/bench.json"))
    }
    if not runs:
        raise SystemExit(
            f"{folder} holds no finished run (no {folder}/<run>/bench.json); pass the --out"
            " folder of a `fercleaner bench --suite` run"
        )
    return runs


def summarise(variants: dict[str, dict[str, dict]]) -> dict:
    """Per variant: mean/sd of each metric and of its delta to the reference, on shared runs."""
    shared = sorted(set.intersection(*(set(runs) for runs in variants.values())))
    if not shared:
        counts = ", ".join(f"{name}: {sorted(runs)}" for name, runs in variants.items())
        raise SystemExit(f"the folders share no finished run ({counts})")
    table: dict[str, dict] = {}
    for name, runs in {REFERENCE: next(iter(variants.values())), **variants}.items():
        system = REFERENCE if name == REFERENCE else "fercleaner"
        ours = {r: _get_system(runs[r], system, name=name, run=r) for r in shared}
        plain = {r: _get_system(runs[r], REFERENCE, name=name, run=r) for r in shared}
        row: dict[str, dict[str, float]] = {}
        for metric in (*METRICS, "cpu_s"):
            values = np.array([ours[r].get(metric, np.nan) for r in shared], dtype=float)
            row[metric] = _stats(values)
            if metric in METRICS and name != REFERENCE:
                reference = np.array([plain[r].get(metric, np.nan) for r in shared], dtype=float)
                row[f"delta_{metric}"] = _stats(values - reference)
        table[name] = row
    return {"runs": shared, "variants": table}


def render_markdown(summary: dict) -> str:
    """One row per variant: AP, F1, proposals right, KL, rho, CPU s (mean ± sd)."""
    lines = [
        f"Runs: {', '.join(summary['runs'])} (mean ± sd; Δ = per-run difference to {REFERENCE})",
        "",
        "| variant | AP | Δ AP | F1 | Δ F1 | proposals right | KL(votes‖soft) | ρ | CPU s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in summary["variants"].items():

        def cell(key: str, digits: int = 3, row: dict = row) -> str:
            stats = row.get(key)
            if stats is None or not stats["runs"]:
                return "—"
            return f"{stats['mean']:.{digits}f} ± {stats['sd']:.{digits}f}"

        lines.append(
            f"| {name} | {cell('ap')} | {cell('delta_ap')} | {cell('f1')} | {cell('delta_f1')} "
            f"| {cell('correction_accuracy')} | {cell('kl_votes_soft')} "
            f"| {cell('spearman_uncertainty_vote_entropy')} | {cell('cpu_s', 0)} |"
        )
    return "\n".join(lines) + "\n"


def _get_system(result: dict, system: str, *, name: str, run: str) -> dict:
    """One system's metrics from a run's bench.json; exits naming the run when it is absent."""
    if system not in result.get("systems", {}):
        raise SystemExit(
            f"{name}: run {run}'s bench.json has no system {system!r} (it has"
            f" {sorted(result.get('systems', {}))}); compare suites benchmarked with the"
            f" {REFERENCE} reference and fercleaner as its primary system"
        )
    return result["systems"][system]


def _stats(values: np.ndarray) -> dict[str, float]:
    """Mean, sd and count of the values that are not NaN (NaN mean when none is)."""
    values = values[~np.isnan(values)]
    if not len(values):
        return {"mean": float("nan"), "sd": float("nan"), "runs": 0}
    return get_mean_sd(values.tolist())


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: the summary as JSON, or the Markdown table with --markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", help="NAME=SUITE_OUTPUT_FOLDER")
    parser.add_argument("--markdown", action="store_true", help="print the Markdown table")
    args = parser.parse_args(argv)
    bad = [item for item in args.variants if "=" not in item]
    if bad:
        parser.error(f"{bad[0]!r}: write each variant as NAME=SUITE_OUTPUT_FOLDER")
    folders = dict(item.split("=", 1) for item in args.variants)
    summary = summarise({name: read_runs(Path(path)) for name, path in folders.items()})
    if args.markdown:
        sys.stdout.write(render_markdown(summary))
    else:
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
