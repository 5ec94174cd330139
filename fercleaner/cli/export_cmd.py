"""`fercleaner export RUN_DIR --out DIR`: write cleaned per-split manifests from a reviewed run.

`--out` and `--imagefolder` are checked (a folder, writable) before anything is read or
written. Exit codes: docs/cli.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text

from fercleaner.cli._common import cli_errors, console, err_console, print_table, progress_bars


def register(app: typer.Typer) -> None:
    """Add the `export` command to `app`."""
    app.command("export")(export_command)


def export_command(
    run_dir: Annotated[Path, typer.Argument(help="Run directory (scores.parquet, review.sqlite).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for train/val/test.parquet etc.")],
    policy: Annotated[
        str,
        typer.Option(
            "--policy",
            help="Flagged samples nobody reviewed: relabel (mislabeled take the proposal), "
            "drop (exclude every flagged one) or soft (train on the model's soft label).",
        ),
    ] = "relabel",
    min_confidence: Annotated[
        float,
        typer.Option(
            "--min-confidence",
            help="Apply a model proposal only if its class probability is at least this.",
        ),
    ] = 0.0,
    reviewer: Annotated[
        list[str] | None,
        typer.Option("--reviewer", help="Use only this reviewer's decisions (repeatable)."),
    ] = None,
    imagefolder: Annotated[
        Path | None,
        typer.Option("--imagefolder", help="Also write DIR/<split>/<label>/ image links."),
    ] = None,
    copy: Annotated[
        bool, typer.Option("--copy", help="Copy images into --imagefolder instead of linking.")
    ] = False,
) -> None:
    """Write RUN_DIR's final labels: human decisions first, then model proposals by policy."""
    from fercleaner.atomic import check_output_dir
    from fercleaner.export import export_run

    check_output_dir(out, what="--out")
    if imagefolder is not None:
        check_output_dir(imagefolder, what="--imagefolder")
    with (
        cli_errors(),
        progress_bars("exporting rows", "writing image folder") as (rows_progress, progress),
    ):
        result = export_run(
            run_dir,
            out,
            policy=policy,
            min_confidence=min_confidence,
            reviewers=reviewer or None,
            imagefolder=imagefolder,
            imagefolder_mode="copy" if copy else "symlink",
            progress=progress,
            rows_progress=rows_progress,
        )
    _render(result.summary, result.out)


def _render(summary: dict[str, Any], out: Path) -> None:
    from rich.table import Table

    from fercleaner.review.actions import OUTCOMES

    # the path goes on its own line: a table title would wrap it at the table's width
    console.print(
        f"exported to {escape(str(out))} (policy {escape(str(summary['policy']))})",
        highlight=False,
        soft_wrap=True,
    )
    table = Table()
    table.add_column("split")
    table.add_column("rows", justify="right")
    for action in OUTCOMES:
        table.add_column(action, justify="right")
    for split, info in summary["splits"].items():
        table.add_row(
            Text(str(split)),
            f"{info['rows']:,}",
            *(f"{info['actions'].get(a, 0):,}" for a in OUTCOMES),
        )
    print_table(table)
    by = summary["decided_by"]
    console.print(
        f"changed labels: {summary['changed_labels']:,} (changes.csv) - decided by human "
        f"{by.get('human', 0):,}, model {by.get('model', 0):,}",
        highlight=False,
        soft_wrap=True,
    )
    if summary["decisions_for_unknown_samples"]:
        err_console.print(
            f"[yellow]warning:[/] {summary['decisions_for_unknown_samples']} review decision(s) "
            "name samples that are not in this run's scores; they were not applied",
            highlight=False,
            soft_wrap=True,
        )
