"""`fercleaner synth OUT`: write a synthetic FER dataset in any layout, with its truth beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from fercleaner.cli._common import cli_errors, console, err_console


def register(app: typer.Typer) -> None:
    """Add the `synth` command to `app`."""
    app.command("synth")(synth_command)


def synth_command(
    out: Annotated[
        Path, typer.Argument(help="Dataset folder to create (truth goes to OUT.truth.parquet).")
    ],
    n: Annotated[int, typer.Option("--n", help="Number of faces.")] = 2000,
    noise: Annotated[
        float, typer.Option("--noise", help="Fraction of given labels planted wrong, e.g. 0.2.")
    ] = 0.0,
    noise_kind: Annotated[
        str,
        typer.Option(
            "--noise-kind", help="symmetric (any other class) or pairflip (confusable pairs)."
        ),
    ] = "symmetric",
    layout: Annotated[
        str,
        typer.Option("--layout", help="imagefolder, ferplus, fer2013, rafdb, affectnet or csv."),
    ] = "imagefolder",
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same dataset.")] = 0,
    size: Annotated[int, typer.Option("--size", help="Image side in pixels.")] = 48,
    occlusion: Annotated[
        float, typer.Option("--occlusion", help="Fraction of faces with glasses or a hand.")
    ] = 0.0,
    ambiguity: Annotated[
        float, typer.Option("--ambiguity", help="Fraction of faces mixing two expressions.")
    ] = 0.0,
    rgb: Annotated[bool, typer.Option("--rgb", help="Colour images instead of grey.")] = False,
) -> None:
    """Draw AU-driven synthetic faces with planted label noise and write them as a dataset."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from fercleaner.synth import read_truth, truth_path, write_synthetic_dataset

    with cli_errors():
        columns = (
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=err_console, transient=True) as bar:
            task = bar.add_task("drawing and writing faces", total=2 * n)
            root = write_synthetic_dataset(
                out,
                n=n,
                layout=layout,
                seed=seed,
                noise_rate=noise,
                noise_kind=noise_kind,
                size=size,
                occlusion_rate=occlusion,
                ambiguity_rate=ambiguity,
                channels=3 if rgb else 1,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        truth, meta = read_truth(truth_path(root))
    splits = truth["split"].value_counts()
    split_text = ", ".join(f"{s} {splits.get(s, 0):,}" for s in meta["splits"] if splits.get(s, 0))
    console.print(
        f"[bold green]wrote[/] {len(truth):,} {meta['layout']} faces ({split_text})"
        f" to {escape(str(root))}",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"planted wrong labels: {meta['n_noisy']:,} ({meta['noise_kind']}, "
        f"rate {meta['noise_rate']}); ambiguous: {int(truth['ambiguous'].sum()):,}; "
        f"occluded: {int(truth['occluded'].sum()):,}",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"truth (keep it out of training): {truth_path(root)}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
