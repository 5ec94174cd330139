"""Bench suites: several runs of one protocol family, summarised as mean ± sd with per-run deltas.

One run can flatter a change by luck of the noise draw, so fercleaner's target is judged
on the mean of a suite:

- `ferplus` (real annotator noise): FERPlus validation with annotator seeds 0, 1, 2, and
  three disjoint slices of FERPlus train (`runner.SLICE_SIZE` images each, seed 0).
- `heldout` (real annotator noise nobody chose anything on): three other disjoint slices of
  FERPlus train (4, 5, 6) with annotator seeds 3, 4, 5. No default, option or rule was
  picked on them; they check that a change chosen on `ferplus` transfers.
- `synthetic` (planted noise on synthetic faces): symmetric and pairflip 20%, seeds 0, 1;
  a change that wins on real noise by breaking easy data shows here.
- `votes` (issue 10, crowd votes as input): FERPlus validation with k = 1, 3, 5 visible
  votes x seeds 0, 1, 2; summarised per k (fercleaner with votes vs cleanlab's
  multiannotator on consensus accuracy and label-quality AP).

Runs whose data has votes (annotator, votes) also check `issue_type` against the people;
the suite reports the mean of those precisions and lifts per system.

The references are cached per (slice, seed) (`fercleaner.bench.references`), so a second
suite run that changes only fercleaner trains only fercleaner. The summaries, Markdown and
plots are `fercleaner.bench.suite_report`'s.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fercleaner.atomic import write_json_atomic, write_text_atomic
from fercleaner.bench.runner import run_benchmark
from fercleaner.bench.suite_report import (
    plot_deltas,
    plot_votes_suite,
    render_suite_markdown,
    render_votes_suite_markdown,
    summarize_suite,
    summarize_votes_suite,
)
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
    "heldout": tuple(
        SuiteRun(f"train{index}-s{seed}", "annotator", seed, ("train",), index)
        for index, seed in ((4, 3), (5, 4), (6, 5))
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
    summarize, render, plot, plot_name = (
        (summarize_votes_suite, render_votes_suite_markdown, plot_votes_suite, "votes.png")
        if suite == "votes"
        else (summarize_suite, render_suite_markdown, plot_deltas, "deltas.png")
    )
    summary = summarize(results)
    summary["suite"] = suite
    write_json_atomic(out / "suite.json", summary)
    write_text_atomic(out / "suite.md", render(summary))
    plot(out / plot_name, summary)
    return summary
