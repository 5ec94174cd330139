"""`fercleaner review RUN_DIR`: serve the Streamlit review app for a scored run on localhost."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from fercleaner.cli._common import cli_errors, console, err_console


def register(app: typer.Typer) -> None:
    """Add the `review` command to `app`."""
    app.command("review")(review_command)


def review_command(
    run_dir: Annotated[Path, typer.Argument(help="Run directory written by `fercleaner score`.")],
    port: Annotated[
        int, typer.Option("--port", help="TCP port to serve on (0: any free port).")
    ] = 8501,
    host: Annotated[
        str,
        typer.Option("--host", help="Address to bind; anything but 127.0.0.1 exposes the app."),
    ] = "127.0.0.1",
    reviewer: Annotated[
        str | None,
        typer.Option(
            "--reviewer",
            help="Name stored with every decision (default: your login name; editable in the app).",
        ),
    ] = None,
) -> None:
    """Open RUN_DIR in the review app; decisions go to RUN_DIR/review.sqlite as they are made."""
    from fercleaner.review.launch import LOCAL_HOSTS, build_review_launch, run_review

    with cli_errors():
        launch = build_review_launch(run_dir, port=port, host=host, reviewer=reviewer)
        if host not in LOCAL_HOSTS:
            err_console.print(
                f"[yellow]warning:[/] serving on {escape(host)}: anyone who can reach it can see"
                " the images and record decisions",
                highlight=False,
                soft_wrap=True,
            )
        console.print(
            f"review app for {escape(str(run_dir))} at [bold]{escape(launch.url)}[/]"
            " (Ctrl+C stops it)",
            highlight=False,
            soft_wrap=True,
        )
        run_review(launch)
