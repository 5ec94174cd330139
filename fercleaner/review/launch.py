"""Start the Streamlit review app on a run: find the app, check the run and port, exec.

The app ships inside the package as `fercleaner.app` (the repository's `app/` folder,
mapped in setup.py), so an installed fercleaner finds it the same way a checkout does.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from fercleaner.errors import FercleanerError, ScoresFormatError
from fercleaner.review.run import REVIEW_COLUMNS, SCORES_FILENAME, RunError

#: Environment variables the app reads (kept equal to `fercleaner.app.keys`).
ENV_RUN_DIR = "FERCLEANER_RUN_DIR"
ENV_REVIEWER = "FERCLEANER_REVIEWER"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class LaunchError(FercleanerError):
    """The review app cannot be started (port taken, app files missing)."""


@dataclass(frozen=True)
class ReviewLaunch:
    """Everything needed to start the app.

    Attributes:
        argv: the command (`python -m streamlit run ...`).
        env: the environment for it.
        url: where the app will answer.
    """

    argv: list[str]
    env: dict[str, str]
    url: str


def find_app_script() -> Path:
    """Path of the app's Streamlit entry script: `streamlit_app.py` of the `fercleaner.app` package.

    Found through the import system (not beside `fercleaner/__init__.py`), so a wheel install
    and an editable checkout, where the package lives in the top-level `app/`, both work.
    """
    import importlib.util

    reinstall = "reinstall fercleaner (`pip install --force-reinstall fercleaner`)"
    spec = importlib.util.find_spec("fercleaner.app")
    if spec is None or spec.origin is None:
        raise LaunchError(f"the review app package fercleaner.app is not installed; {reinstall}")
    script = Path(spec.origin).parent / "streamlit_app.py"
    if not script.is_file():
        raise LaunchError(f"the review app is missing at {script}; {reinstall}")
    return script


def check_run(run_dir: str | os.PathLike[str]) -> Path:
    """Validate a run directory without loading its table (schema and metadata only).

    Raises:
        RunError: no such folder or no scores file.
        ScoresFormatError: the scores file is not fercleaner's (names what is missing).
    """
    import pyarrow.parquet as pq

    run_dir = Path(run_dir).expanduser().resolve()
    path = run_dir / SCORES_FILENAME
    if not run_dir.is_dir():
        raise RunError(
            f"run directory {run_dir} does not exist; pass the --out of `fercleaner score`"
        )
    if not path.is_file():
        raise RunError(
            f"{run_dir} has no {SCORES_FILENAME}; it is not a scored run. "
            "Run `fercleaner score DATASET --out RUN_DIR` first"
        )
    try:
        schema = pq.read_schema(path)
    except Exception as exc:
        raise ScoresFormatError(f"{path} is not a readable Parquet file: {exc}") from exc
    missing = [c for c in REVIEW_COLUMNS if c not in schema.names]
    if missing:
        raise ScoresFormatError(
            f"{path} lacks column(s) {', '.join(missing)}; it is not a fercleaner scores file "
            "(re-run `fercleaner score`)"
        )
    raw = (schema.metadata or {}).get(b"fercleaner")
    try:
        classes = json.loads(raw)["classes"] if raw else None
    except (ValueError, KeyError, TypeError):
        classes = None
    if not classes:
        raise ScoresFormatError(
            f"{path} has no 'fercleaner' metadata with the class list; re-run `fercleaner score`"
        )
    return run_dir


def build_review_launch(
    run_dir: str | os.PathLike[str],
    *,
    port: int = 8501,
    host: str = "127.0.0.1",
    reviewer: str | None = None,
) -> ReviewLaunch:
    """Check the run and the port, and return the command that serves the app.

    The reviewer defaults to the login name; the app lets the person change it.
    """
    run_dir = check_run(run_dir)
    if port == 0:
        port = find_free_port(host)
    if not 1 <= port <= 65535:
        raise LaunchError(f"--port {port} is not a TCP port (1-65535, or 0 for any free one)")
    if not port_is_free(host, port):
        raise LaunchError(f"port {port} on {host} is in use; pass another --port")
    argv = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(find_app_script()),
        "--server.headless=true",
        f"--server.address={host}",
        f"--server.port={port}",
        "--server.fileWatcherType=none",
        "--server.runOnSave=false",
        "--server.enableStaticServing=false",
        "--browser.gatherUsageStats=false",
        "--global.developmentMode=false",
        "--client.toolbarMode=minimal",
    ]
    env = {**os.environ, ENV_RUN_DIR: str(run_dir)}
    reviewer = reviewer or _login_name()
    if reviewer:
        env[ENV_REVIEWER] = reviewer
    shown = f"[{host}]" if ":" in host else host
    return ReviewLaunch(argv=argv, env=env, url=f"http://{shown}:{port}/")


def run_review(launch: ReviewLaunch) -> None:
    """Replace this process with the Streamlit server (signals reach it directly)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(launch.argv[0], launch.argv, launch.env)


def _login_name() -> str | None:
    """The user's login name, the reviewer name when none is given (None if unknown)."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on (host, port) right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def find_free_port(host: str = "127.0.0.1") -> int:
    """A port the OS reports free on `host` (for tests and `--port 0`)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
