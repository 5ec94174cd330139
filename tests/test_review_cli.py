"""`fercleaner review`: run validation, port checks, the exact server command, the URL."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from run_fixtures import make_run
from typer.testing import CliRunner

import fercleaner.app
from fercleaner.cli import app
from fercleaner.review import launch


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run(tmp_path, n=12)


def test_launch_command_binds_localhost_headless_with_the_packaged_app(run_dir: Path) -> None:
    port = launch.find_free_port()
    plan = launch.build_review_launch(run_dir, port=port, reviewer="ann")
    script = Path(plan.argv[4])
    assert plan.argv[1:4] == ["-m", "streamlit", "run"]
    assert script == Path(fercleaner.app.__file__).parent / "streamlit_app.py"
    assert script.is_file()
    assert "--server.address=127.0.0.1" in plan.argv
    assert f"--server.port={port}" in plan.argv
    assert "--server.headless=true" in plan.argv
    assert "--server.enableStaticServing=false" in plan.argv
    assert plan.env[launch.ENV_RUN_DIR] == str(run_dir.resolve())
    assert plan.env[launch.ENV_REVIEWER] == "ann"
    assert plan.url == f"http://127.0.0.1:{port}/"


def test_port_zero_picks_a_free_port(run_dir: Path) -> None:
    plan = launch.build_review_launch(run_dir, port=0)
    assert not plan.url.endswith(":0/")


def test_review_cli_prints_the_url_then_serves(run_dir, monkeypatch) -> None:
    served = []
    monkeypatch.setattr(launch, "run_review", served.append)
    port = launch.find_free_port()
    res = CliRunner().invoke(app, ["review", str(run_dir), "--port", str(port)])
    assert res.exit_code == 0, res.output
    assert f"http://127.0.0.1:{port}/" in res.output
    assert len(served) == 1 and served[0].url == f"http://127.0.0.1:{port}/"


def test_review_cli_warns_when_exposed(run_dir, monkeypatch) -> None:
    monkeypatch.setattr(launch, "run_review", lambda plan: None)
    res = CliRunner().invoke(app, ["review", str(run_dir), "--port", "0", "--host", "0.0.0.0"])
    assert res.exit_code == 0
    assert "anyone who can reach it" in res.output


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_busy_port_is_an_error(run_dir: Path, host: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = CliRunner().invoke(app, ["review", str(run_dir), "--port", str(port), "--host", host])
    assert res.exit_code == 2
    assert f"port {port} on {host} is in use; pass another --port" in res.output
    assert "not an address" not in res.output


@pytest.mark.parametrize("port", ["8765", "0"])
@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("no-such-host.invalid", "does not resolve"),  # a typo: the name has no address
        ("192.0.2.1", "is not an address of this machine"),  # TEST-NET-1: never ours
    ],
)
def test_a_host_the_app_cannot_listen_on_is_named_not_blamed_on_the_port(
    run_dir: Path, host: str, why: str, port: str
) -> None:
    res = CliRunner().invoke(app, ["review", str(run_dir), "--port", port, "--host", host])
    assert res.exit_code == 2
    assert isinstance(res.exception, SystemExit)  # a one-line message, not a traceback
    said = " ".join(res.output.split())  # the console wraps long lines
    assert f"--host {host} {why}" in said
    assert "--host localhost" in said and "--host 0.0.0.0" in said
    assert "in use" not in said and "--port" not in said


def test_the_launch_functions_raise_a_launch_error_for_a_bad_host() -> None:
    with pytest.raises(launch.LaunchError, match="does not resolve"):
        launch.find_free_port("no-such-host.invalid")
    with pytest.raises(launch.LaunchError, match="not an address of this machine"):
        launch.port_is_free("192.0.2.1", 8765)


def test_missing_and_foreign_runs_are_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["review", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "does not exist" in res.output
    (tmp_path / "unscored").mkdir()
    res = runner.invoke(app, ["review", str(tmp_path / "unscored")])
    assert res.exit_code == 2 and "fercleaner score" in res.output
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    table = pa.table({"sample_id": ["a"], "label": ["fear"]}).replace_schema_metadata(
        {b"fercleaner": json.dumps({"classes": ["fear"]}).encode()}
    )
    pq.write_table(table, foreign / "scores.parquet")
    res = runner.invoke(app, ["review", str(foreign)])
    assert res.exit_code == 2
    assert "given_label" in res.output and "label_quality" in res.output


def test_reviewer_defaults_to_the_login_name(run_dir, monkeypatch) -> None:
    monkeypatch.setattr("getpass.getuser", lambda: "login-name")
    plan = launch.build_review_launch(run_dir, port=0)
    assert plan.env[launch.ENV_REVIEWER] == "login-name"
