"""Bench suites: several runs of one protocol family, summarised as mean ± sd with per-run deltas.

One run can flatter a change by luck of the noise draw, so fercleaner's target is judged
on the mean of a suite:

- `ferplus` (real annotator noise): FERPlus validation with annotator seeds 0, 1, 2, and
  three disjoint slices of FERPlus train (`runner.SLICE_SIZE` images each, seed 0).
- `synthetic` (planted noise on synthetic faces): symmetric and pairflip 20%, seeds 0, 1;
  a change that wins on real noise by breaking easy data shows here.
- `votes` (issue 10, crowd votes as input): FERPlus validation with k = 1, 3, 5 visible
  votes x seeds 0, 1, 2; summarised per k (fercleaner with votes vs cleanlab's
  multiannotator on consensus accuracy and label-quality AP).

Runs whose data has votes (annotator, votes) also check `issue_type` against the people;
the suite reports the mean of those precisions and lifts per system.

The references are cached per (slice, seed) (`fercleaner.bench.references`), so a second
suite run that changes only fercleaner trains only fercleaner.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fercleaner.atomic import write_json_atomic, write_text_atomic
from fercleaner.bench.report import (
    get_issue_type_target,
    get_target_check,
    get_votes_target_check,
)
from fercleaner.bench.runner import PRIMARY_SYSTEM, run_benchmark
from fercleaner.errors import FercleanerError


@dataclass(frozen=True)
class SuiteRun:
    """One benchmark of a suite."""

    name: str
    protocol: str
    seed: int
    splits: tuple[str, ...] | None = None
    slice_index: int | None = None
    rate: float = 0.2
    visible: int | None = None
    """Votes visible per image (votes protocol)."""


SUITES: dict[str, tuple[SuiteRun, ...]] = {
    "ferplus": (
        *(SuiteRun(f"val-s{seed}", "annotator", seed, ("val",)) for seed in range(3)),
        *(SuiteRun(f"train{i}-s0", "annotator", 0, ("train",), i) for i in range(3)),
    ),
    "synthetic": tuple(
        SuiteRun(f"{protocol}20-s{seed}", protocol, seed)
        for protocol in ("symmetric", "pairflip")
        for seed in range(2)
    ),
    "votes": tuple(
        SuiteRun(f"k{k}-s{seed}", "votes", seed, ("val",), visible=k)
        for k in (1, 3, 5)
        for seed in range(3)
    ),
}
#: Metrics summarised per k and system in the votes suite.
VOTES_SUMMARY_METRICS = (
    "consensus_accuracy",
    "label_quality_ap",
    "ap",
    "kl_votes_soft",
    "wall_s",
    "cpu_s",
)

#: Metrics summarised per system (mean, sd over the runs).
SUMMARY_METRICS = (
    "ap",
    "f1",
    "precision",
    "recall",
    "correction_accuracy",
    "kl_votes_soft",
    "spearman_uncertainty_vote_entropy",
    "wall_s",
    "cpu_s",
)

ProgressFn = Callable[[str], None]


def run_suite(
    dataset: str | os.PathLike[str],
    *,
    suite: str,
    out: str | os.PathLike[str],
    runs: Sequence[str] | None = None,
    resume: bool = False,
    progress: ProgressFn | None = None,
    **bench_options: Any,
) -> dict[str, Any]:
    """Run every benchmark of `suite` (or the named `runs` of it) and write suite.json / suite.md.

    `bench_options` go to every `run_benchmark` call (method, recipe, overrides,
    references, reference_epochs, reference_cache, score_command, ...). With `resume`, a
    run whose `<out>/<run>/bench.json` exists is read, not run again (a suite takes hours).
    """
    if suite not in SUITES:
        raise FercleanerError(f"unknown suite {suite!r}; choose one of {', '.join(SUITES)}")
    chosen = [run for run in SUITES[suite] if runs is None or run.name in runs]
    unknown = sorted(set(runs or ()) - {run.name for run in SUITES[suite]})
    if unknown or not chosen:
        names = ", ".join(run.name for run in SUITES[suite])
        raise FercleanerError(f"suite {suite!r} has no runs {unknown}; its runs are {names}")
    out = Path(out)
    results = {}
    for number, run in enumerate(chosen, start=1):
        finished = out / run.name / "bench.json"
        if resume and finished.is_file():
            results[run.name] = json.loads(finished.read_text())
            if progress is not None:
                progress(f"run {number}/{len(chosen)}: {run.name} (finished earlier, reused)")
            continue
        if progress is not None:
            progress(f"run {number}/{len(chosen)}: {run.name}")

        def report(done: int, total: int, stage: str, run: SuiteRun = run) -> None:
            if progress is not None:
                progress(f"{run.name} [{done}/{total}] {stage}")

        visible = {} if run.visible is None else {"visible": run.visible}
        results[run.name] = run_benchmark(
            dataset,
            out=out / run.name,
            protocol=run.protocol,
            rate=run.rate,
            seed=run.seed,
            splits=run.splits,
            slice_index=run.slice_index,
            progress=report,
            **visible,
            **bench_options,
        )
    if suite == "votes":
        summary = summarize_votes_suite(results)
        summary["suite"] = suite
        write_json_atomic(out / "suite.json", summary)
        write_text_atomic(out / "suite.md", render_votes_suite_markdown(summary))
        plot_votes_suite(out / "votes.png", summary)
        return summary
    summary = summarize_suite(results)
    summary["suite"] = suite
    write_json_atomic(out / "suite.json", summary)
    write_text_atomic(out / "suite.md", render_suite_markdown(summary))
    plot_deltas(out / "deltas.png", summary)
    return summary


def summarize_suite(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per system and metric: mean ± sd, per-run deltas to the best reference, target on means."""
    systems: list[str] = []
    for result in results.values():
        systems += [name for name in result["systems"] if name not in systems]
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for system in systems:
        summary[system] = {}
        for metric in SUMMARY_METRICS:
            values = [
                r["systems"][system].get(metric) for r in results.values() if system in r["systems"]
            ]
            values = [float(v) for v in values if v is not None and not _is_nan(v)]
            if values:
                summary[system][metric] = {
                    "mean": float(np.mean(values)),
                    "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                    "runs": len(values),
                }
    deltas: dict[str, dict[str, float]] = {}
    for name, result in results.items():
        ours = result["systems"].get(PRIMARY_SYSTEM, {})
        references = [v for k, v in result["systems"].items() if k != PRIMARY_SYSTEM]
        deltas[name] = {}
        for metric in ("ap", "f1"):
            values = [v.get(metric) for v in references if not _is_nan(v.get(metric))]
            if values and not _is_nan(ours.get(metric)):
                deltas[name][metric] = float(ours[metric] - max(values))
    means: dict[str, dict[str, Any]] = {
        system: {metric: stats["mean"] for metric, stats in metrics.items()}
        for system, metrics in summary.items()
    }
    for system in means:  # any cached run: the cost target is judged on CPU seconds
        means[system]["cached"] = any(
            r["systems"].get(system, {}).get("cached", False) for r in results.values()
        )
    return {
        "runs": list(results),
        "systems": summary,
        "deltas_vs_reference": deltas,
        "target_on_means": get_target_check(means, system=PRIMARY_SYSTEM),
        "issue_types": summarize_issue_types(results),
        "commands": {name: r.get("command") for name, r in results.items()},
    }


def summarize_issue_types(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per system and type: mean ± sd over the runs of precision, base rate and lift
    (runs whose data had votes), and the issue-type target on the means of the lifts."""
    collected: dict[str, dict[str, dict[str, list[float]]]] = {}
    for result in results.values():
        for system, values in (result.get("issue_types") or {}).items():
            for kind in ("ambiguous", "mislabeled"):
                for stat in ("precision", "base_rate", "lift"):
                    value = (values.get(kind) or {}).get(stat)
                    if not _is_nan(value):
                        bucket = collected.setdefault(system, {}).setdefault(kind, {})
                        bucket.setdefault(stat, []).append(float(value))
    summary = {
        system: {
            kind: {stat: _mean_sd(values) for stat, values in stats.items()}
            for kind, stats in kinds.items()
        }
        for system, kinds in collected.items()
    }
    means = {
        system: {kind: {"lift": stats.get("lift", {}).get("mean")} for kind, stats in kinds.items()}
        for system, kinds in summary.items()
    }
    return {"systems": summary, "target_on_means": get_issue_type_target(means)}


def summarize_votes_suite(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per k and system: mean ± sd of `VOTES_SUMMARY_METRICS`; the target per k on the means
    and per run; the issue types over all runs."""
    by_k: dict[int, dict[str, dict[str, Any]]] = {}
    for result in results.values():
        k = int(result["protocol"]["votes_visible"])
        for system, metrics in result["systems"].items():
            bucket = by_k.setdefault(k, {}).setdefault(system, {})
            for metric in VOTES_SUMMARY_METRICS:
                if not _is_nan(metrics.get(metric)):
                    bucket.setdefault(metric, []).append(float(metrics[metric]))
    systems = {
        str(k): {
            system: {metric: _mean_sd(values) for metric, values in metrics.items()}
            for system, metrics in by_system.items()
        }
        for k, by_system in sorted(by_k.items())
    }
    targets = {
        k: get_votes_target_check(
            {s: {m: v["mean"] for m, v in metrics.items()} for s, metrics in by_system.items()}
        )
        for k, by_system in systems.items()
    }
    return {
        "runs": list(results),
        "systems_by_k": systems,
        "target_on_means_by_k": targets,
        "target_per_run": {name: r.get("target", {}) for name, r in results.items()},
        "issue_types": summarize_issue_types(results),
        "consensus_source": sorted({str(r.get("consensus_source")) for r in results.values()}),
        "commands": {name: r.get("command") for name, r in results.items()},
    }


def render_votes_suite_markdown(summary: dict[str, Any]) -> str:
    """The votes suite as Markdown: one table per k (mean ± sd), the targets, the issue types."""
    lines = [
        f"### Suite `{summary.get('suite')}`: {len(summary['runs'])} runs "
        f"({', '.join(summary['runs'])})",
    ]
    for k, by_system in summary["systems_by_k"].items():
        metrics = [m for m in VOTES_SUMMARY_METRICS if any(m in s for s in by_system.values())]
        lines += ["", f"k = {k} visible votes:", ""]
        lines += ["| system | " + " | ".join(metrics) + " |", "|---|" + "---:|" * len(metrics)]
        for system, values in by_system.items():
            cells = [_format_stats(values.get(m), m) for m in metrics]
            lines.append(f"| {system} | " + " | ".join(cells) + " |")
        lines += ["", "Target on the means:"]
        lines += [f"- {key}: {value}" for key, value in summary["target_on_means_by_k"][k].items()]
    lines += _render_issue_type_summary(summary.get("issue_types") or {})
    return "\n".join(lines) + "\n"


def plot_votes_suite(path: Path, summary: dict[str, Any]) -> None:
    """Consensus accuracy and label-quality AP against k, one line per system (± sd bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = list(summary["systems_by_k"])
    systems: list[str] = []
    for by_system in summary["systems_by_k"].values():
        systems += [name for name in by_system if name not in systems]
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.6))
    for ax, metric in zip(axes, ("consensus_accuracy", "label_quality_ap"), strict=True):
        for system in systems:
            stats = [summary["systems_by_k"][k].get(system, {}).get(metric) for k in ks]
            means = [np.nan if s is None else s["mean"] for s in stats]
            sds = [0.0 if s is None else s["sd"] for s in stats]
            ax.errorbar([int(k) for k in ks], means, yerr=sds, marker="o", capsize=3, label=system)
        ax.set(xlabel="visible votes k", ylabel=metric, xticks=[int(k) for k in ks])
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _render_issue_type_summary(issue_types: dict[str, Any]) -> list[str]:
    if not issue_types.get("systems"):
        return []
    lines = ["", "Issue types against all the votes (mean ± sd over the runs):", ""]
    lines += ["| system | type | precision | base rate | lift |", "|---|---|---:|---:|---:|"]
    for system, kinds in issue_types["systems"].items():
        for kind, stats in kinds.items():
            cells = [_format_stats(stats.get(s), s) for s in ("precision", "base_rate", "lift")]
            lines.append(f"| {system} | {kind} | " + " | ".join(cells) + " |")
    lines += ["", "Issue-type target on the means:"]
    lines += [f"- {key}: {value}" for key, value in issue_types["target_on_means"].items()]
    return lines


def _mean_sd(values: list[float]) -> dict[str, float]:
    return {
        "mean": float(np.mean(values)),
        "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        "runs": len(values),
    }


def _format_stats(stats: dict[str, float] | None, metric: str) -> str:
    if stats is None:
        return "–"
    digits = 0 if metric.endswith("_s") else 3
    return f"{stats['mean']:.{digits}f} ± {stats['sd']:.{digits}f}"


def render_suite_markdown(summary: dict[str, Any]) -> str:
    """The suite as Markdown: mean ± sd per system, per-run deltas, the target on the means."""
    metrics = [m for m in SUMMARY_METRICS if any(m in s for s in summary["systems"].values())]
    lines = [
        f"### Suite `{summary.get('suite')}`: {len(summary['runs'])} runs "
        f"({', '.join(summary['runs'])})",
        "",
        "| system | " + " | ".join(metrics) + " |",
        "|---|" + "---:|" * len(metrics),
    ]
    for system, values in summary["systems"].items():
        cells = []
        for metric in metrics:
            stats = values.get(metric)
            digits = 0 if metric.endswith("_s") else 3
            cells.append(
                "–" if stats is None else f"{stats['mean']:.{digits}f} ± {stats['sd']:.{digits}f}"
            )
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    lines += ["", "Per-run delta of fercleaner over the best reference:", ""]
    lines += ["| run | ΔAP | ΔF1 |", "|---|---:|---:|"]
    for run, delta in summary["deltas_vs_reference"].items():
        cells = [f"{delta[m]:+.3f}" if m in delta else "–" for m in ("ap", "f1")]
        lines.append(f"| {run} | " + " | ".join(cells) + " |")
    lines += ["", "Target on the means:", ""]
    lines += [f"- {key}: {value}" for key, value in summary["target_on_means"].items()]
    lines += _render_issue_type_summary(summary.get("issue_types") or {})
    return "\n".join(lines) + "\n"


def plot_deltas(path: Path, summary: dict[str, Any]) -> None:
    """One bar pair per run: fercleaner's AP and F1 minus the best reference's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = list(summary["deltas_vs_reference"])
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(runs) + 1.5), 3.2))
    width = 0.38
    for offset, metric in ((-width / 2, "ap"), (width / 2, "f1")):
        values = [summary["deltas_vs_reference"][run].get(metric, np.nan) for run in runs]
        ax.bar(np.arange(len(runs)) + offset, values, width, label=f"Δ{metric.upper()}")
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(np.arange(len(runs)), runs, rotation=30, ha="right")
    ax.set_ylabel("fercleaner − best reference")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _is_nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
