"""A bench suite's results: mean ± sd per system (per k for votes), the targets on the
means, per-run deltas to the best reference, issue types, then Markdown and plots.

Pure over the runs' bench.json contents; `fercleaner.bench.suite.run_suite` runs the
benchmarks and writes what these return.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from fercleaner.bench.report import (
    get_issue_type_target,
    get_target_check,
    get_votes_target_check,
)
from fercleaner.bench.runner import PRIMARY_SYSTEM

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
    "soft_label_ece",
    "soft_label_top_ece",
    "spearman_uncertainty_vote_entropy",
    "wall_s",
    "cpu_s",
)

#: Per-type statistics of `get_issue_type_metrics` summarised over the runs.
ISSUE_TYPE_STATS = ("precision", "base_rate", "lift", "max_lift")


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
                summary[system][metric] = get_mean_sd(values)
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
    """Per system and type: mean ± sd over the runs of precision, base rate, lift and the
    highest possible lift (runs whose data had votes), and the issue-type target on the
    means."""
    collected: dict[str, dict[str, dict[str, list[float]]]] = {}
    for result in results.values():
        for system, values in (result.get("issue_types") or {}).items():
            for kind in ("ambiguous", "mislabeled"):
                for stat in ISSUE_TYPE_STATS:
                    value = (values.get(kind) or {}).get(stat)
                    if not _is_nan(value):
                        bucket = collected.setdefault(system, {}).setdefault(kind, {})
                        bucket.setdefault(stat, []).append(float(value))
    summary = {
        system: {
            kind: {stat: get_mean_sd(values) for stat, values in stats.items()}
            for kind, stats in kinds.items()
        }
        for system, kinds in collected.items()
    }
    means = {
        system: {
            kind: {stat: stats[stat]["mean"] for stat in ("lift", "max_lift") if stat in stats}
            for kind, stats in kinds.items()
        }
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
            system: {metric: get_mean_sd(values) for metric, values in metrics.items()}
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
    lines += [
        "| system | type | precision | base rate | lift | highest possible lift |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for system, kinds in issue_types["systems"].items():
        for kind, stats in kinds.items():
            cells = [_format_stats(stats.get(s), s) for s in ISSUE_TYPE_STATS]
            lines.append(f"| {system} | {kind} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Issue-type target on the means (`reachable_by_any_rule`: whether a precision of 1 "
        "would reach it):",
    ]
    lines += [f"- {key}: {value}" for key, value in issue_types["target_on_means"].items()]
    return lines


def get_mean_sd(values: list[float]) -> dict[str, float]:
    """Mean, sample sd (0 for one value) and count of a non-empty list of per-run values."""
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
