"""`fercleaner inspect DATASET`: read a dataset, check every image, print counts and problems.

Exit status: 0 clean, 1 problems found (listed), 2 unusable input, 3 internal error
(docs/cli.md). File names are printed as text (never markup), their control characters
escaped (`datasets.problems.escape_controls`), and, off a terminal, in tables as wide as
they need, so each name stays on one line for grep.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text

from fercleaner.cli._common import (
    AllowOutsideRootOption,
    ExitCode,
    FollowLinksOption,
    cli_errors,
    console,
    print_table,
    progress_bar,
)


def register(app: typer.Typer) -> None:
    """Add the `inspect` command to `app`."""
    app.command("inspect")(inspect_command)


def inspect_command(
    dataset: Annotated[
        Path, typer.Argument(help="Dataset folder, or a labels.csv / labels.parquet manifest.")
    ],
    layout: Annotated[
        str | None,
        typer.Option(
            "--layout",
            help=(
                "Layout name (ferplus, fer2013, rafdb, affectnet, csv, imagefolder); "
                "default: detect."
            ),
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the full summary as JSON (every problem).")
    ] = False,
    allow_outside_root: AllowOutsideRootOption = False,
    follow_links: FollowLinksOption = False,
    check_images: Annotated[
        bool,
        typer.Option(
            "--check-images/--no-check-images", help="Open and verify every image header."
        ),
    ] = True,
    max_pixels: Annotated[
        int | None,
        typer.Option("--max-pixels", min=1, help="Pixel limit per image (decompression bombs)."),
    ] = None,
    max_problems: Annotated[
        int,
        typer.Option(
            "--max-problems", min=0, help="Problem rows shown in the table (all in --json)."
        ),
    ] = 25,
) -> None:
    """Read DATASET, check every image, and show layout, per-class counts and every problem."""
    from fercleaner.datasets import DEFAULT_MAX_PIXELS, read_dataset, summarize_dataset

    with cli_errors():
        with progress_bar("checking images", active=not as_json) as progress:
            data = read_dataset(
                dataset,
                layout,
                check_images=check_images,
                allow_outside_root=allow_outside_root,
                follow_links=follow_links,
                max_pixels=DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels,
                progress=progress,
            )
        summary = summarize_dataset(data)
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        _render(summary, max_problems=max_problems)
    if summary["problems"]:
        raise typer.Exit(ExitCode.PROBLEMS)


def _render(summary: dict[str, Any], *, max_problems: int) -> None:
    from rich.table import Table

    from fercleaner.datasets.problems import escape_controls

    console.print(
        f"[bold]dataset[/] {escape(escape_controls(str(summary['root'])))}",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"[bold]layout[/]  {escape(summary['layout'])} - {escape(summary['detection'])}",
        highlight=False,
        soft_wrap=True,
    )

    splits = summary["splits"]
    counts = Table(title="samples per split and class", title_justify="left")
    counts.add_column("class")
    for split in splits:
        counts.add_column(split, justify="right")
    counts.add_column("total", justify="right", style="bold")
    for cls in summary["classes"]:
        row = [splits[s]["classes"][cls] for s in splits]
        counts.add_row(Text(cls), *(f"{n:,}" for n in row), f"{sum(row):,}")
    totals = [splits[s]["total"] for s in splits]
    counts.add_row("total", *(f"{n:,}" for n in totals), f"{sum(totals):,}", style="bold")
    print_table(counts)

    facts = [f"votes: {'yes' if summary['votes_present'] else 'no'}"]
    if summary["label_ties"] is not None:
        facts.append(f"plurality ties: {summary['label_ties']:,}")
    extra = [c for c in summary["extra_columns"] if c != "votes"]
    if extra:
        facts.append(f"columns: {', '.join(extra)}")
    console.print("   ".join(facts), highlight=False, markup=False, soft_wrap=True)

    problems = summary["problems"]
    if problems:
        by_kind = Table(title="problems by kind", title_justify="left")
        by_kind.add_column("kind")
        by_kind.add_column("count", justify="right")
        by_kind.add_column("fix")
        fixes = {p["kind"]: p["fix"] for p in problems}
        for kind, n in summary["problem_counts"].items():
            by_kind.add_row(kind, f"{n:,}", Text(fixes[kind]))
        print_table(by_kind)

        shown = problems[:max_problems]
        table = Table(
            title=f"problems ({len(shown):,} of {len(problems):,} shown)", title_justify="left"
        )
        for column in ("file", "row", "sample_id", "kind", "reason"):
            table.add_column(column, overflow="fold")
        for p in shown:
            table.add_row(
                Text(str(p["file"])),
                "" if p["row"] is None else str(p["row"]),
                Text(escape_controls(str(p["sample_id"] or ""))),
                p["kind"],
                Text(str(p["reason"])),
            )
        print_table(table)
        if len(problems) > len(shown):
            console.print(
                f"... and {len(problems) - len(shown):,} more; use --json or"
                " --max-problems N to see them all",
                highlight=False,
                soft_wrap=True,
            )

    unlabeled = len(problems) - summary["label_row_problems"]
    tally = (
        f"{summary['rows_listed']:,} label rows = {summary['samples']:,} ingested"
        f" + {summary['label_row_problems']:,} excluded"
        + (f"; plus {_count(unlabeled, 'image')} with no label row" if unlabeled else "")
    )
    if problems:
        console.print(
            f"[bold yellow]problems found:[/] {_count(len(problems), 'problem')} ({tally}). "
            "They are excluded from the sample table; fix them or accept the exclusions.",
            highlight=False,
            soft_wrap=True,
        )
    else:
        console.print(f"[bold green]clean:[/] {tally}.", highlight=False, soft_wrap=True)


def _count(n: int, noun: str) -> str:
    """'1 image', '3 images'."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
