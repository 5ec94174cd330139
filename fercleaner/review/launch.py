"""Start the Streamlit review app on a run: find the app, check the run and port, exec.

The run is opened and validated exactly as the app will open it (`fercleaner.runs.read_run`),
so a missing, foreign or doctored run is a one-line error here, not a page in the browser.

The app ships inside the package as `fercleaner.app` (the repository's `app/` folder,
mapped in setup.py), so an installed fercleaner finds it the same way a checkout does.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from fercleaner.errors import FercleanerError
from fercleaner.runs import read_run

#: Environment variables the app reads (kept equal to `fercleaner.app.keys`).
ENV_RUN_DIR = "FERCLEANER_RUN_DIR"
ENV_REVIEWER = "FERCLEANER_REVIEWER"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

#: What to pass instead of a `--host` the app cannot listen on.
HOST_FIX = (
    "pass --host localhost (this machine only), --host 0.0.0.0 (every network interface) "
    "or an IP address of this machine"
)


class LaunchError(FercleanerError):
    """The review app cannot be started (host not of this machine, port taken, app missing)."""


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


def build_review_launch(
    run_dir: str | os.PathLike[str],
    *,
    port: int = 8501,
    host: str = "127.0.0.1",
    reviewer: str | None = None,
) -> ReviewLaunch:
    """Check the run and the port, and return the command that serves the app.

    The reviewer defaults to the login name; the app lets the person change it.

    Raises:
        RunError: no such folder, no scores file, or an image outside the dataset root.
        ScoresFormatError: the scores file is malformed or foreign (names what is wrong).
        LaunchError: the host does not resolve or is not an address of this machine, the
            port is taken or out of range, or the app files are missing.
    """
    run_dir = read_run(run_dir).run_dir
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
    """Whether a server could listen on (host, port) right now.

    Raises:
        LaunchError: `host` does not resolve or is not an address of this machine (no port
            would do), or the OS refused the port for another reason than its being in use.
    """
    try:
        _bind(host, port, reuse_address=True)  # as the server will
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return False
        raise _listen_error(host, port, exc) from exc
    return True


def find_free_port(host: str = "127.0.0.1") -> int:
    """A port the OS reports free on `host` (for tests and `--port 0`).

    Raises:
        LaunchError: `host` does not resolve or is not an address of this machine.
    """
    try:
        return _bind(host, 0)
    except OSError as exc:
        raise _listen_error(host, 0, exc) from exc


def _bind(host: str, port: int, *, reuse_address: bool = False) -> int:
    """Bind a throwaway socket to (host, port) and return the port it got."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        if reuse_address:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        return int(sock.getsockname()[1])


def _listen_error(host: str, port: int, exc: OSError) -> LaunchError:
    """The error for a failed bind that is not a port in use: mostly a wrong `--host`."""
    reason = exc.strerror or str(exc)
    if isinstance(exc, socket.gaierror):  # the name does not resolve (typo, unknown name)
        return LaunchError(f"--host {host} does not resolve to an address ({reason}); {HOST_FIX}")
    if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):  # resolves, but not to us
        return LaunchError(
            f"--host {host} is not an address of this machine, so the app cannot listen on "
            f"it ({reason}); {HOST_FIX}"
        )
    shown = "any free port" if port == 0 else f"port {port}"
    return LaunchError(f"cannot listen on {shown} on {host} ({reason}); pass another --port")
