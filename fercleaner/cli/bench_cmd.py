"""`fercleaner bench DATASET --out DIR [--protocol P | --suite S]`: fercleaner vs references.

Plants label noise in a dataset, scores it with fercleaner and with the plain
cross-entropy references (`fercleaner.bench.references`), and reports who finds it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from fercleaner.cli._common import LineProgress, console, err_console

ResumeOption = Annotated[
    bool,
    typer.Option("--resume", help="With --suite: reuse the runs whose bench.json exists in --out."),
]


def register(app: typer.Typer) -> None:
    """Add the `bench` command to `app`."""
    app.command("bench")(bench_command)


DatasetArgument = Annotated[
    Path,
    typer.Argument(help="Source dataset (any layout fercleaner reads); its labels are the truth."),
]

OutOption = Annotated[
    Path, typer.Option("--out", help="Output folder for bench.json, bench.md and plots.")
]

SuiteOption = Annotated[
    str | None,
    typer.Option(
        "--suite",
        help="Run a whole suite instead of one protocol: ferplus (6 real-noise runs), "
        "heldout (3 real-noise runs on train slices no choice was made on), synthetic "
        "(4 planted-noise runs) or votes (k = 1, 3, 5 visible votes x 3 seeds on "
        "FERPlus validation); reports mean ± sd.",
    ),
]

RunOption = Annotated[
    list[str] | None,
    typer.Option("--run", help="Only these runs of the suite (repeatable), e.g. --run val-s0."),
]

ProtocolOption = Annotated[
    str | None,
    typer.Option(
        "--protocol",
        help="annotator (one tagger's vote vs the majority; needs votes), votes (k visible "
        "votes as input vs the majority of all; needs votes), symmetric (default) or pairflip.",
    ),
]

VotesVisibleOption = Annotated[
    int | None,
    typer.Option(
        "--votes-visible",
        help="With --protocol votes: votes visible per image, drawn from its votes (default 3).",
    ),
]

RateOption = Annotated[
    float | None,
    typer.Option("--rate", help="Fraction flipped per class (symmetric, pairflip; default 0.2)."),
]

SeedOption = Annotated[int | None, typer.Option("--seed", help="Seed of the noise draw (0).")]

MethodOption = Annotated[
    str | None, typer.Option("--method", help="fercleaner's method (default: the recipe's).")
]

RecipeOption = Annotated[
    str | None,
    typer.Option("--recipe", help="fercleaner's recipe (default: what `fercleaner score` uses)."),
]

ReferenceOption = Annotated[
    list[str] | None,
    typer.Option(
        "--reference",
        help="Reference to run beside fercleaner: plain, cleanlab (repeatable; default both;"
        " none with --protocol votes).",
    ),
]

NoReferenceOption = Annotated[bool, typer.Option("--no-reference", help="Run fercleaner alone.")]

FoldsOption = Annotated[
    int, typer.Option("--folds", help="K of the cross-validated cleanlab reference.")
]

ReferenceEpochsOption = Annotated[
    int, typer.Option("--reference-epochs", help="Per-model epochs of the plain references.")
]

ReferenceCacheOption = Annotated[
    Path | None,
    typer.Option(
        "--reference-cache",
        help="Folder of cached reference results (default: <cache root>/bench-references).",
    ),
]

NoReferenceCacheOption = Annotated[
    bool,
    typer.Option("--no-reference-cache", help="Train the references afresh, keep nothing."),
]

SplitOption = Annotated[
    list[str] | None,
    typer.Option("--split", help="Only these source splits (repeatable), e.g. --split val."),
]

SliceIndexOption = Annotated[
    int | None,
    typer.Option(
        "--slice",
        help="Only the i-th of the disjoint slices of the samples (runner.SLICE_SIZE each).",
    ),
]

MaxSamplesOption = Annotated[
    int | None,
    typer.Option("--max-samples", help="Benchmark a seeded random subset of at most N samples."),
]

DownstreamOption = Annotated[
    bool,
    typer.Option(
        "--downstream",
        help=(
            "Also train the classifier on noisy / cleaned / true labels and test it on a "
            "held-out clean share."
        ),
    ),
]

HoldoutOption = Annotated[
    float, typer.Option("--holdout", help="Share held out per class for --downstream.")
]

ScoreCommandOption = Annotated[
    str | None,
    typer.Option(
        "--score-command",
        help="Command that scores a dataset (default: python -m fercleaner score), "
        "e.g. 'torchrun --nproc_per_node 2 -m fercleaner score'.",
    ),
]

OverridesArgument = Annotated[
    list[str] | None,
    typer.Argument(help="Recipe overrides key=value for every system, e.g. train.epochs=4."),
]


def bench_command(
    dataset: DatasetArgument,
    out: OutOption,
    suite: SuiteOption = None,
    run: RunOption = None,
    protocol: ProtocolOption = None,
    rate: RateOption = None,
    votes_visible: VotesVisibleOption = None,
    seed: SeedOption = None,
    method: MethodOption = None,
    recipe: RecipeOption = None,
    reference: ReferenceOption = None,
    no_reference: NoReferenceOption = False,
    folds: FoldsOption = 5,
    reference_epochs: ReferenceEpochsOption = 30,
    reference_cache: ReferenceCacheOption = None,
    no_reference_cache: NoReferenceCacheOption = False,
    split: SplitOption = None,
    slice_index: SliceIndexOption = None,
    max_samples: MaxSamplesOption = None,
    downstream: DownstreamOption = False,
    holdout: HoldoutOption = 0.2,
    score_command: ScoreCommandOption = None,
    resume: ResumeOption = False,
    overrides: OverridesArgument = None,
) -> None:
    """Plant label noise in DATASET, score it with fercleaner and the references: who finds it?"""
    import shlex

    from fercleaner.bench import run_benchmark, run_suite
    from fercleaner.errors import FercleanerError

    options = dict(
        method=method,
        recipe=recipe,
        overrides=overrides or (),
        # None: every reference, or none for the votes protocol (BenchSpec decides)
        references=[] if no_reference else (reference or None),
        folds=folds,
        reference_epochs=reference_epochs,
        reference_cache=None if no_reference_cache else (reference_cache or "default"),
        score_command=shlex.split(score_command) if score_command else None,
    )
    _check_suite_options(
        suite,
        run,
        resume,
        single_run_options={
            "--protocol": protocol,
            "--rate": rate,
            "--votes-visible": votes_visible,
            "--seed": seed,
            "--split": split,
            "--slice": slice_index,
            "--max-samples": max_samples,
            "--downstream": downstream or None,
        },
    )
    if suite is None and votes_visible is not None and protocol != "votes":
        raise FercleanerError("--votes-visible works with --protocol votes; add it or drop it")
    with _stage_reporter() as show:
        if suite is not None:
            summary = run_suite(
                dataset, suite=suite, out=out, runs=run, resume=resume, progress=show, **options
            )
        else:
            result = run_benchmark(
                dataset,
                out=out,
                protocol=protocol or "symmetric",
                rate=0.2 if rate is None else rate,
                visible=3 if votes_visible is None else votes_visible,
                seed=seed or 0,
                splits=split,
                slice_index=slice_index,
                max_samples=max_samples,
                downstream=downstream,
                holdout=holdout,
                progress=lambda done, total, stage: show(f"[{done}/{total}] {stage}"),
                **options,
            )
    if suite is not None:
        _render_suite(summary, out)
    else:
        _render(result, out)


def _check_suite_options(
    suite: str | None, run: list[str] | None, resume: bool, single_run_options
) -> None:
    """A suite fixes each run's protocol, seed and slice: refuse options it would ignore."""
    from fercleaner.errors import FercleanerError

    if suite is None:
        if run or resume:
            raise FercleanerError(
                "--run and --resume work on a suite; add --suite ferplus or synthetic"
            )
        return
    given = [flag for flag, value in single_run_options.items() if value is not None]
    if given:
        raise FercleanerError(
            f"--suite {suite} sets each run's noise and samples itself; drop {', '.join(given)}"
            " (or run one benchmark without --suite)"
        )


@contextlib.contextmanager
def _stage_reporter() -> Iterator[Callable[[str], None]]:
    """A spinner on a terminal; in a log, one timestamped line per stage (a bench runs hours)."""
    if err_console.is_terminal:
        with err_console.status("starting") as status:
            yield lambda line: status.update(escape(line))
        return
    lines = LineProgress(err_console)
    yield lambda line: lines.report(line, line)


def _render_suite(summary: dict, out: Path) -> None:
    """The suite's Markdown summary as plain text (readable in a log) and where the files are."""
    from fercleaner.bench.suite import render_suite_markdown, render_votes_suite_markdown

    render = (
        render_votes_suite_markdown if summary.get("suite") == "votes" else render_suite_markdown
    )
    console.print(render(summary), markup=False, highlight=False, soft_wrap=True)
    console.print(
        f"wrote {out / 'suite.json'}, {out / 'suite.md'}, "
        f"{out / ('votes.png' if summary.get('suite') == 'votes' else 'deltas.png')}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def _render(result: dict, out: Path) -> None:
    """The bench's Markdown report as plain text: whole names at any width, greppable in a log."""
    from fercleaner.bench.report import render_markdown

    console.print(render_markdown(result), markup=False, highlight=False, soft_wrap=True)
    console.print(
        f"wrote {out / 'bench.json'}, {out / 'bench.md'}, {out / 'pr_curves.png'}, "
        f"{out / 'reliability.png'}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
