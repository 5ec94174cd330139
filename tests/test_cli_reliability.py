"""CLI reliability (issue 13): one-line errors, exit codes, markup-safe output, logs, temp files.

Every bad input here used to end in a traceback (or in a silent wrong result); each test
runs the real command through typer's runner, which is not a terminal, like a batch log.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from _dataset_files import write_image
from run_fixtures import TINY_TRAINING, make_run
from typer.testing import CliRunner

from fercleaner.atomic import check_output_dir, remove_stale_temporaries
from fercleaner.cli import app
from fercleaner.cli._common import LineProgress, console
from fercleaner.config import load_recipe
from fercleaner.errors import ExitCode, OutputError
from fercleaner.scoring import read_scores
from fercleaner.synth import write_synthetic_dataset

runner = CliRunner()

TINY = TINY_TRAINING
MARKUP = "[/x]"  # a closing tag that matches nothing: rich raises MarkupError on it


def one_line_error(result, code: int) -> str:
    """Assert exit `code`, no traceback, exactly one `error:` line; return that line."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), repr(result.exception)
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    """60 synthetic faces (imagefolder)."""
    root = tmp_path_factory.mktemp("data") / "faces"
    write_synthetic_dataset(root, n=60, layout="imagefolder", seed=0, noise_rate=0.2, size=32)
    return root


@pytest.fixture(scope="module")
def scored(faces, tmp_path_factory):
    """One tiny `score` run, printing a progress line for every report (interval 0)."""
    run = tmp_path_factory.mktemp("runs") / "run"
    mp = pytest.MonkeyPatch()
    mp.setenv("FERCLEANER_PROGRESS_INTERVAL", "0")
    mp.setenv("FERCLEANER_CACHE", str(tmp_path_factory.mktemp("cache")))
    try:
        result = runner.invoke(app, ["score", str(faces), "--out", str(run), *TINY])
    finally:
        mp.undo()
    return run, result


@pytest.fixture
def unwritable(tmp_path) -> Path:
    """A folder this process cannot write: a read-only folder, or /sys when running as root."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        try:
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError:
            yield folder
            return
        try:  # root ignores permissions; sysfs refuses new files even to root
            with tempfile.TemporaryFile(dir="/sys"):
                pass
        except OSError:
            yield Path("/sys")
            return
        pytest.skip("no folder this process cannot write")
    finally:
        folder.chmod(0o700)


# ---------------------------------------------------------------- markup in user text


def test_inspect_prints_markup_in_paths_and_file_names_as_text(tmp_path):
    root = tmp_path / MARKUP / "data"
    write_image(root / "train" / "happy" / "a.png")
    write_image(root / "val" / "angry" / "b.png")
    (root / "train" / "happy" / "[bold]broken.png").write_bytes(b"not an image")
    result = runner.invoke(app, ["inspect", str(root)])
    assert result.exit_code == ExitCode.PROBLEMS, result.output
    assert f"dataset {root}" in result.output
    assert "train/happy/[bold]broken.png" in result.output  # not eaten as a style tag
    assert "problems found:" in result.output


def test_error_message_holding_markup_is_one_line(tmp_path):
    missing = tmp_path / MARKUP / "nothing"
    result = runner.invoke(app, ["inspect", str(missing)])
    line = one_line_error(result, ExitCode.USAGE)
    assert str(missing) in line and "does not exist" in line


def test_score_with_markup_in_out_finishes_and_names_the_run(faces, tmp_path):
    run = tmp_path / MARKUP / "run"
    result = runner.invoke(app, ["score", str(faces), "--out", str(run), *TINY])
    assert result.exit_code == ExitCode.OK, result.output
    assert (run / "scores.parquet").is_file()
    assert f"wrote {run / 'scores.parquet'}" in result.output
    assert f"fercleaner review {run}" in result.output


def test_export_with_markup_in_paths(tmp_path):
    run = make_run(tmp_path / MARKUP)
    out = tmp_path / MARKUP / "cleaned"
    result = runner.invoke(app, ["export", str(run), "--out", str(out)])
    assert result.exit_code == ExitCode.OK, result.output
    assert f"exported to {out}" in result.output
    assert (out / "train.parquet").is_file()


# ---------------------------------------------------------------- bad paths and files


def test_score_out_is_a_file_fails_before_reading(faces, tmp_path):
    out = tmp_path / "afile"
    out.write_text("x")
    for target in (out, out / "run"):
        result = runner.invoke(app, ["score", str(faces), "--out", str(target), *TINY])
        line = one_line_error(result, ExitCode.USAGE)
        assert "is a file, not a folder" in line and str(out) in line
        assert "decoding images" not in result.output  # refused before any work


def test_score_out_not_writable_fails_before_reading(faces, unwritable):
    out = unwritable / "run"
    result = runner.invoke(app, ["score", str(faces), "--out", str(out), *TINY])
    line = one_line_error(result, ExitCode.USAGE)
    assert "not writable" in line and str(out) in line
    assert "decoding images" not in result.output


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_garbage_weights_file_fails_before_reading(faces, tmp_path, suffix):
    weights = tmp_path / f"backbone{suffix}"
    weights.write_bytes(b"\x00\xffthis is not a weights file" * 3)
    result = runner.invoke(
        app,
        ["score", str(faces), "--out", str(tmp_path / "run"), "--weights", str(weights), *TINY],
    )
    line = one_line_error(result, ExitCode.USAGE)
    assert f"weights file {str(weights)!r} cannot be read" in line and "--weights" in line
    assert "decoding images" not in result.output


def test_folds_above_the_smallest_class_fail_before_training(faces, tmp_path):
    run = tmp_path / "run"
    result = runner.invoke(app, ["score", str(faces), "--out", str(run), *TINY, "train.folds=1000"])
    line = one_line_error(result, ExitCode.USAGE)
    assert "train.folds=1000" in line and "train.folds=1 (in-sample)" in line
    assert " train:" not in result.output  # no model was trained
    assert not (run / "checkpoints").exists()


def test_folds_limit_is_the_smallest_training_class():
    from fercleaner.errors import ConfigError
    from fercleaner.pipeline.checks import check_folds

    samples = pd.DataFrame(
        {
            "split": ["train"] * 7 + ["test"] * 5,
            "given_label": ["happiness"] * 4 + ["anger"] * 3 + ["anger"] * 5,
        }
    )
    recipe = load_recipe(None, overrides=["train.folds=3", "data.splits=[train]"])
    check_folds(samples, recipe, decoded=False)  # anger: 3 in train (test rows not counted)
    recipe = load_recipe(None, overrides=["train.folds=4", "data.splits=[train]"])
    with pytest.raises(ConfigError, match=r"3 training samples of class 'anger'.*train.folds=3"):
        check_folds(samples, recipe, decoded=False)
    recipe = load_recipe(None, overrides=["train.folds=4"])  # all splits: anger has 8
    check_folds(samples, recipe, decoded=True)


def test_an_empty_method_list_fails_before_reading(faces, tmp_path):
    """`--method ,` named no method and ended in an IndexError after decoding."""
    run = tmp_path / "run"
    result = runner.invoke(app, ["score", str(faces), "--out", str(run), "--method", ",", *TINY])
    line = one_line_error(result, ExitCode.USAGE)
    assert "--method ','" in line and "names no method" in line and "baseline" in line
    assert "decoding images" not in result.output


def test_more_threads_than_cores_fails_before_reading(faces, tmp_path, monkeypatch):
    """train.num_threads=100000 crashed inside torch (exit 3) after decoding."""
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    run = tmp_path / "run"
    argv = ["score", str(faces), "--out", str(run), *TINY, "train.num_threads=5"]
    line = one_line_error(runner.invoke(app, argv), ExitCode.USAGE)
    assert "train.num_threads=5 is more than this machine's 4 cores" in line
    assert not run.exists()


def test_a_single_training_class_fails_before_training(tmp_path):
    """One class cannot be told from another: UAPL divided by ln 1 (exit 3), the others
    ranked nothing; one image was a batch of one, which BatchNorm refuses."""
    for i in range(4):
        write_image(tmp_path / "faces" / "train" / "happy" / f"{i}.png", seed=i, size=32)
    run = tmp_path / "run"
    result = runner.invoke(
        app, ["score", str(tmp_path / "faces"), "--out", str(run), "--method", "uapl", *TINY]
    )
    line = one_line_error(result, ExitCode.USAGE)
    assert "single class, 'happiness' (4 training samples)" in line
    assert "Add images of another class" in line
    assert "decoding images" not in result.output and not (run / "checkpoints").exists()


def test_a_single_class_in_the_chosen_splits_names_the_way_out():
    from fercleaner.errors import DatasetError
    from fercleaner.pipeline.checks import check_folds

    samples = pd.DataFrame({"split": ["train", "val"], "given_label": ["happiness", "anger"]})
    recipe = load_recipe(None, overrides=["data.splits=[train]"])
    with pytest.raises(DatasetError, match=r"\(1 decodable training samples\).*data\.splits="):
        check_folds(samples, recipe, decoded=True)
    check_folds(samples, load_recipe(None), decoded=True)  # train + val: two classes


def test_export_out_or_imagefolder_not_a_folder(tmp_path):
    run = make_run(tmp_path)
    afile = tmp_path / "afile"
    afile.write_text("x")
    result = runner.invoke(app, ["export", str(run), "--out", str(afile)])
    assert "--out" in one_line_error(result, ExitCode.USAGE)
    out = tmp_path / "cleaned"
    result = runner.invoke(
        app, ["export", str(run), "--out", str(out), "--imagefolder", str(afile)]
    )
    line = one_line_error(result, ExitCode.USAGE)
    assert "--imagefolder" in line and "is a file, not a folder" in line
    assert not out.exists()  # refused before anything was written


def test_export_out_not_writable(tmp_path, unwritable):
    run = make_run(tmp_path)
    result = runner.invoke(app, ["export", str(run), "--out", str(unwritable / "cleaned")])
    assert "not writable" in one_line_error(result, ExitCode.USAGE)


def test_inspect_max_pixels_zero_is_refused_not_replaced(tmp_path):
    write_image(tmp_path / "train" / "happy" / "a.png", size=8)
    result = runner.invoke(app, ["inspect", str(tmp_path), "--max-pixels", "0"])
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "--max-pixels" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["inspect", str(tmp_path), "--max-pixels", "10", "--json"])
    assert result.exit_code == ExitCode.PROBLEMS  # 8x8 > 10 pixels: the limit is applied


# ---------------------------------------------------------------- exit codes for the unexpected


def test_unexpected_library_error_is_exit_3_with_a_crash_log(tmp_path, monkeypatch):
    import fercleaner.datasets

    def broken(*args, **kwargs):
        raise RuntimeError("reader exploded on row 7")

    monkeypatch.setattr(fercleaner.datasets, "read_dataset", broken)
    monkeypatch.setenv("FERCLEANER_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.delenv("FERCLEANER_DEBUG", raising=False)
    result = runner.invoke(app, ["inspect", str(tmp_path)])
    line = one_line_error(result, ExitCode.INTERNAL)
    assert "internal error: RuntimeError: reader exploded on row 7" in line
    (log,) = (tmp_path / "logs").iterdir()
    assert str(log) in line
    assert "Traceback" in log.read_text() and "reader exploded" in log.read_text()

    monkeypatch.setenv("FERCLEANER_DEBUG", "1")
    result = runner.invoke(app, ["inspect", str(tmp_path)])
    assert result.exit_code == ExitCode.INTERNAL
    assert "Traceback" in result.output  # the debug switch shows it


def test_unreadable_file_from_a_library_is_exit_2(tmp_path, monkeypatch):
    import fercleaner.datasets

    manifest = str(tmp_path / "affectnet" / "training.csv")

    def unreadable(*args, **kwargs):
        raise PermissionError(13, "Permission denied", manifest)

    monkeypatch.setattr(fercleaner.datasets, "read_dataset", unreadable)
    result = runner.invoke(app, ["inspect", str(tmp_path)])
    line = one_line_error(result, ExitCode.USAGE)
    assert f"{manifest}: Permission denied; fix its permissions" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files without read permission")
def test_unreadable_affectnet_manifest_is_one_line(tmp_path):
    write_synthetic_dataset(tmp_path / "aff", n=16, layout="affectnet", seed=0, size=32)
    (tmp_path / "aff" / "training.csv").chmod(0)
    try:
        result = runner.invoke(app, ["inspect", str(tmp_path / "aff")])
    finally:
        (tmp_path / "aff" / "training.csv").chmod(0o600)
    assert "training.csv" in one_line_error(result, ExitCode.USAGE)


def test_interrupt_is_exit_130(tmp_path, monkeypatch):
    import fercleaner.datasets

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fercleaner.datasets, "read_dataset", interrupted)
    result = runner.invoke(app, ["inspect", str(tmp_path)])
    assert result.exit_code == ExitCode.INTERRUPTED and "interrupted" in result.output


def test_closed_output_pipe_ends_quietly(tmp_path, monkeypatch):
    import fercleaner.datasets

    def reader_gone(*args, **kwargs):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(fercleaner.datasets, "read_dataset", reader_gone)
    result = runner.invoke(app, ["inspect", str(tmp_path), "--json"])
    assert result.exit_code == ExitCode.BROKEN_PIPE
    assert "error:" not in result.output and "Traceback" not in result.output


def test_every_command_is_wrapped_and_every_exit_code_documented():
    assert all(
        getattr(c.callback, "__fercleaner_cli_errors__", False) for c in app.registered_commands
    )
    docs = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text()
    for code in ExitCode:
        assert re.search(rf"^\| `{int(code)}` \| {code.name} ", docs, re.MULTILINE), code


# ---------------------------------------------------------------- logs (not a terminal)


def test_inspect_keeps_long_file_names_whole_in_a_log(tmp_path):
    write_image(tmp_path / "train" / "happy" / "a.png")
    name = "face_" + "0123456789" * 12 + ".png"
    (tmp_path / "train" / "happy" / name).write_bytes(b"not an image")
    result = runner.invoke(app, ["inspect", str(tmp_path)])
    assert result.exit_code == ExitCode.PROBLEMS
    assert not console.is_terminal
    rows = [line for line in result.output.splitlines() if f"train/happy/{name}" in line]
    assert rows, result.output  # grep finds the whole name on one line


def test_score_prints_plain_progress_lines_in_a_log(scored):
    _, result = scored
    pattern = re.compile(
        r"^\d\d:\d\d:\d\d [a-z]+ train: epoch 1/1, step \d+/\d+, loss \d+\.\d+,"
        r" [\d,]+ img/s(, eta \d+:\d\d)?$",
        re.MULTILINE,
    )
    assert pattern.search(result.output), result.output
    assert re.search(r"^\d\d:\d\d:\d\d decoding images: 60/60 images", result.output, re.MULTILINE)
    # a line before the samples are listed (a million-row manifest takes tens of seconds),
    # and the stage ends with its count although score checks no image while reading
    started = result.output.index("reading dataset: listing the samples")
    finished = result.output.index("reading dataset: 60/60 images")
    assert started < finished < result.output.index("decoding images: ")
    assert result.output.index(" train: ") < result.output.index("samples scored by")


def test_inspect_says_it_is_listing_before_the_image_count_is_known(tmp_path, monkeypatch):
    monkeypatch.setenv("FERCLEANER_PROGRESS_INTERVAL", "0")
    for i in range(3):
        write_image(tmp_path / "train" / "happy" / f"{i}.png", seed=i)
    result = runner.invoke(app, ["inspect", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].endswith(" checking images: listing the samples"), lines[:3]
    assert re.search(r"checking images 3/3 \(100%\)", result.output), result.output


def test_line_progress_prints_at_a_steady_interval():
    from rich.console import Console

    now = [0.0]
    out = Console(record=True, width=200)
    lines = LineProgress(out, interval_s=30, clock=lambda: now[0])
    for t, key, final in [
        (0, "a", False),
        (10, "a", False),
        (31, "a", False),
        (40, "a", False),
        (45, "b", False),
        (50, "b", True),
    ]:
        now[0] = t
        lines.report(key, f"{key} at {t}", final=final)
    printed = [line.split(" ", 1)[1] for line in out.export_text().splitlines()]
    assert printed == ["a at 0", "a at 31", "b at 45", "b at 50"]


# ---------------------------------------------------------------- kill -9 leftovers


def test_resume_removes_stale_temporaries(scored, faces):
    run, first = scored
    assert first.exit_code == 0, first.output
    checkpoints = run / "checkpoints" / read_scores(run / "scores.parquet").metadata["method"]
    fd, stale_ckpt = tempfile.mkstemp(prefix=".fold0.pt.", suffix=".tmp", dir=checkpoints)
    os.close(fd)
    fd, stale_scores = tempfile.mkstemp(prefix=".scores.parquet.", suffix=".tmp", dir=run)
    os.close(fd)
    foreign = run / ".notes.tmp"  # not an atomic-write temp name: left alone
    foreign.write_text("mine")
    result = runner.invoke(app, ["score", str(faces), "--out", str(run), "--resume", *TINY])
    assert result.exit_code == 0, result.output
    assert not Path(stale_ckpt).exists() and not Path(stale_scores).exists()
    assert foreign.exists()
    assert (checkpoints / "fold0.pt").is_file()


def test_remove_stale_temporaries_only_touches_named_targets(tmp_path):
    made = {}
    for target in ("scores.parquet", "other.bin"):
        fd, path = tempfile.mkstemp(prefix=f".{target}.", suffix=".tmp", dir=tmp_path)
        os.close(fd)
        made[target] = Path(path)
    assert remove_stale_temporaries(tmp_path, targets={"scores.parquet"}) == [
        made["scores.parquet"]
    ]
    assert made["other.bin"].exists()


def test_check_output_dir_creates_nothing(tmp_path):
    target = tmp_path / "a" / "b"
    assert check_output_dir(target) == target and not (tmp_path / "a").exists()
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_output_dir(tmp_path / "f" / "run", what="--out")


def test_progress_lines_count_the_rate_from_the_first_count(monkeypatch):
    """A phase whose first report already counts rows (a whole batch) must not credit them
    to the time after it: the rate starts at the first report."""
    from rich.console import Console

    from fercleaner.cli import _common

    now = [100.0]
    monkeypatch.setattr(_common.time, "monotonic", lambda: now[0])
    out = Console(record=True, width=200)
    line = _common._progress_lines(LineProgress(out, interval_s=0, clock=lambda: now[0]), "rows")
    for t, done in [(100.0, 100), (101.0, 200), (102.0, 300)]:
        now[0] = t
        line(done, 300)
    printed = [text.split(" ", 1)[1] for text in out.export_text().splitlines()]
    assert printed == [
        "rows 100/300 (33%)",  # no rate from one report
        "rows 200/300 (67%), 100/s, eta 0:01",
        "rows 300/300 (100%), 100/s, eta 0:00",
    ]
