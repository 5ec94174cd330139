"""`fercleaner score DATASET --out RUN_DIR`: train, score every sample, write the run, summarise.

Progress: rich bars on a terminal; in a log (not a terminal) one plain timestamped line
per stage start and end and every $FERCLEANER_PROGRESS_INTERVAL seconds (default 30)
between: phase, step/total, loss, images/s, ETA. Exit codes: docs/cli.md.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text

from fercleaner.cli._common import (
    AllowOutsideRootOption,
    FollowLinksOption,
    LineProgress,
    cli_errors,
    clock_text,
    console,
    print_table,
)


def register(app: typer.Typer) -> None:
    """Add the `score` command to `app`."""
    app.command("score")(score_command)


def score_command(
    dataset: Annotated[
        Path, typer.Argument(help="Dataset folder (any layout), or a labels.csv / labels.parquet.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory to write (or resume).")],
    recipe: Annotated[
        str,
        typer.Option(
            "--recipe",
            help="Shipped recipe name (default: sized to the dataset; quick: the demo; ferplus; "
            "paper) or a YAML file.",
        ),
    ] = "default",
    method: Annotated[
        str | None,
        typer.Option(
            "--method", help="Method name, comma-separated names, or `all` (default: the recipe's)."
        ),
    ] = None,
    weights: Annotated[
        Path | None,
        typer.Option("--weights", help="Backbone weights file (.safetensors or torch state dict)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from RUN_DIR/checkpoints after a kill.")
    ] = False,
    layout: Annotated[
        str | None, typer.Option("--layout", help="Dataset layout (default: detected).")
    ] = None,
    follow_links: FollowLinksOption = False,
    allow_outside_root: AllowOutsideRootOption = False,
    predictions: Annotated[
        Path | None,
        typer.Option(
            "--predictions",
            help="Your own model's out-of-sample probabilities keyed by sample_id (.parquet with"
            " one column per class, .npz with sample_id + pred_probs [+ embeddings], or a"
            " structured .npy): score with them instead of training (docs/scoring.md).",
        ),
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Argument(help="Recipe overrides key=value, e.g. train.epochs=3 train.folds=5."),
    ] = None,
) -> None:
    """Train the recipe's method on DATASET, score every image's label, and write RUN_DIR."""
    from fercleaner.pipeline import score_dataset

    with cli_errors(), _ProgressView() as view:
        result = score_dataset(
            dataset,
            out,
            recipe=recipe,
            overrides=overrides or (),
            method=method,
            weights=weights,
            layout=layout,
            resume=resume,
            predictions=predictions,
            follow_links=follow_links,
            allow_outside_root=allow_outside_root,
            progress=view.update,
        )
    if result is not None:  # None on non-zero torchrun ranks
        _render_summary(result)


#: What the reading and decoding stages are called on screen.
_STAGE_LABELS = {"read": "reading dataset", "cache": "decoding images"}


class _ProgressView:
    """Rich progress bars (one per reading/decoding stage, one per method x fold of training)
    on a terminal; plain `LineProgress` lines otherwise."""

    def __init__(self) -> None:
        self.lines = None if console.is_terminal else LineProgress(console)
        self.started: dict[Any, float] = {}
        self.last_event = time.monotonic()  # a stage's rate counts from the previous one's end
        self.tasks: dict[Any, Any] = {}
        if self.lines is not None:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        # Compact enough for an 80-column log; the ETA comes from the trainer (all folds/epochs).
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=12),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=console,
            transient=False,
        )

    def __enter__(self) -> _ProgressView:
        if self.lines is None:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.lines is None:
            self.progress.__exit__(*exc)

    def update(self, event: Any) -> None:
        """Render one `ScoreProgress` report."""
        if self.lines is not None:
            self._line(event)
            return
        if event.train is None:
            key = event.stage
            label = _STAGE_LABELS.get(key, key)
            task = self._task(key, label, event.total)
            self.progress.update(task, completed=event.done, total=event.total or None, info="")
            return
        p = event.train
        fold = f" fold {p.fold + 1}/{p.folds}" if p.folds > 1 else ""
        if p.phase == "predict":
            task = self._task(("predict", p.method, p.fold), f"{p.method}{fold} predict", p.steps)
            self.progress.update(
                task, completed=p.step, total=p.steps, info=f"{p.images_per_s:,.0f} img/s"
            )
            return
        total = p.epochs * p.steps
        task = self._task(("train", p.method, p.fold), f"{p.method}{fold} train", total)
        loss = f" loss {p.loss:.3f}" if p.loss is not None else ""
        eta = f" eta {clock_text(p.eta_s)}" if p.eta_s is not None else ""
        self.progress.update(
            task,
            completed=p.epoch * p.steps + p.step,
            total=total,
            info=f"ep {p.epoch + 1}/{p.epochs}{loss} {p.images_per_s:,.0f} img/s{eta}",
        )

    def _task(self, key: Any, description: str, total: int) -> Any:
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(description, total=total or None, info="")
        return self.tasks[key]

    def _line(self, event: Any) -> None:
        """One plain line: phase, step/total, loss, images/s, ETA (printed at a steady interval)."""
        if event.train is None:
            key, done, total = event.stage, event.done, event.total
            label = _STAGE_LABELS.get(key, key)
            if done == 0 and total == 0:  # started; the count is not known yet
                self.lines.report((key, "start"), f"{label}: listing the samples")
                return
            now = time.monotonic()
            elapsed = now - self.started.setdefault(key, self.last_event)
            self.last_event = now
            rate = done / elapsed if elapsed > 0 else 0.0
            eta = f", eta {clock_text((total - done) / rate)}" if rate > 0 and total else ""
            self.lines.report(
                key,
                f"{label}: {done:,}/{total:,} images, {rate:,.0f} img/s{eta}",
                final=bool(total) and done >= total,
            )
            return
        p = event.train
        self.last_event = time.monotonic()
        fold = f" fold {p.fold + 1}/{p.folds}" if p.folds > 1 else ""
        eta = f", eta {clock_text(p.eta_s)}" if p.eta_s is not None else ""
        if p.phase == "predict":
            self.lines.report(
                ("predict", p.method, p.fold),
                f"{p.method}{fold} predict: batch {p.step}/{p.steps},"
                f" {p.images_per_s:,.0f} img/s{eta}",
                final=p.step >= p.steps,
            )
            return
        loss = f", loss {p.loss:.3f}" if p.loss is not None else ""
        self.lines.report(
            ("train", p.method, p.fold),
            f"{p.method}{fold} train: epoch {p.epoch + 1}/{p.epochs}, step {p.step}/{p.steps}"
            f"{loss}, {p.images_per_s:,.0f} img/s{eta}",
            final=p.epoch_done and p.epoch + 1 >= p.epochs,
        )


def _render_summary(result: Any) -> None:
    """Per-class counts and flags, issue types, top confusions, and what to run next."""
    from rich.table import Table

    from fercleaner.runs import PROBLEMS_FILE

    summary = result.run_info["summary"]
    info = result.run_info
    table = Table(title=f"{summary['samples']:,} samples scored by {escape(str(info['method']))}")
    table.add_column("given label")
    table.add_column("count", justify="right")
    table.add_column("flagged", justify="right")
    table.add_column("%", justify="right")
    for row in summary["per_class"]:
        share = row["flagged"] / row["count"] if row["count"] else 0.0
        table.add_row(
            Text(str(row["class"])), f"{row['count']:,}", f"{row['flagged']:,}", f"{share:.1%}"
        )
    table.add_row(
        "[bold]all",
        f"{summary['samples']:,}",
        f"{summary['flagged']:,}",
        f"{summary['flagged'] / max(1, summary['samples']):.1%}",
    )
    print_table(table)
    types = ", ".join(f"{k} {v:,}" for k, v in summary["issue_types"].items())
    console.print(f"issue types: {types}", highlight=False, markup=False, soft_wrap=True)
    if summary["top_confusions"]:
        pairs = ", ".join(
            f"{c['given']} -> {c['proposed']} ({c['count']})" for c in summary["top_confusions"]
        )
        console.print(
            f"top proposed relabels: {pairs}", highlight=False, markup=False, soft_wrap=True
        )
    if "consensus" in info:
        from fercleaner.scoring.crowd import describe_consensus

        console.print(
            describe_consensus(info["consensus"]), highlight=False, markup=False, soft_wrap=True
        )
    for name, n in info.get("untrained_classes", {}).items():
        console.print(
            f"[yellow]{escape(name)}[/]: {n:,} image(s), none in the training splits; the"
            " model never learned the class, so their flags say nothing about the labels"
            " (add training images of it, or review them by hand)",
            highlight=False,
            soft_wrap=True,
        )
    counts = info["counts"]
    if counts["problems"]:
        console.print(
            f"[yellow]{counts['problems']:,} problem(s)[/] excluded; see"
            f" {escape(str(result.run_dir / PROBLEMS_FILE))}",
            highlight=False,
            soft_wrap=True,
        )
    timings = info["timings"]
    source = (
        f"on {info['device']} ({info['precision']})"
        if "device" in info
        else f"from {info['predictions']['file']}"
    )
    console.print(
        f"took {timings['total_s']:.0f} s {source}; wrote {result.scores_path}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    run_dir = escape(str(result.run_dir))
    console.print(
        f"next: [bold]fercleaner review {run_dir}[/]  then"
        f"  [bold]fercleaner export {run_dir} --out CLEANED_DIR[/]",
        highlight=False,
        soft_wrap=True,
    )
