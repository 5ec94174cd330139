"""The run directory module: its file names, writing a run, and opening one as untrusted input.

A run directory is input like any other (issue 13): `read_run` validates the scores and
refuses any row whose image path leaves the run's recorded dataset root, so export
(`--imagefolder --copy`) and the review app cannot be made to read another file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from run_fixtures import CLASSES, RUN_ID, make_run, make_scores_frame, write_faces
from typer.testing import CliRunner

from fercleaner.cli import app
from fercleaner.errors import ScoresFormatError
from fercleaner.export import export_run
from fercleaner.review import open_run
from fercleaner.review.store import STORE_FILENAME
from fercleaner.runs import (
    RUN_FILE,
    RUN_FILES,
    SCORES_FILE,
    STORE_FILE,
    RunError,
    SamplePathError,
    read_run,
    stream_run,
    write_run_info,
    write_run_tables,
)
from fercleaner.scoring import write_scores


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run(tmp_path)


def _doctor(run_dir: Path, row: int, **values) -> None:
    """Rewrite scores.parquet with `values` in row `row` (its metadata kept)."""
    path = run_dir / SCORES_FILE
    meta = json.loads(pq.read_schema(path).metadata[b"fercleaner"])
    frame = pd.read_parquet(path)
    for column, value in values.items():
        if column == "metadata":
            meta.update(value)
        else:
            frame.loc[row, column] = value
    write_scores(frame, path, metadata=meta)


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()}


# -- names -------------------------------------------------------------------------------


def test_the_store_file_name_is_the_stores_own() -> None:
    assert STORE_FILE == STORE_FILENAME == "review.sqlite"
    assert RUN_FILES[0] == SCORES_FILE == "scores.parquet" and RUN_FILES[-1] == RUN_FILE


# -- opening -----------------------------------------------------------------------------


def test_a_good_run_opens_as_stored(run_dir: Path, tmp_path: Path) -> None:
    run = read_run(run_dir)
    assert run.run_dir == run_dir.resolve() and run.classes == CLASSES
    assert run.run_id == RUN_ID and run.dataset_root == tmp_path / "faces"
    assert run.scores_path == run_dir.resolve() / "scores.parquet"
    assert run.scores["sample_id"].iloc[0] == "img/face_00000.png"  # file order, not sorted


def test_missing_folder_and_missing_scores_are_run_errors(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="does not exist"):
        read_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="has no scores.parquet.*fercleaner score"):
        read_run(tmp_path / "empty")


def test_a_repeated_sample_id_is_refused(run_dir: Path) -> None:
    _doctor(run_dir, 7, sample_id="img/face_00006.png")
    with pytest.raises(ScoresFormatError, match="'img/face_00006.png' more than once"):
        read_run(run_dir)


@pytest.mark.parametrize(
    ("root", "says"),
    [(None, "has no dataset_root"), ("faces", "records dataset_root 'faces', not an absolute")],
)
def test_a_run_without_an_absolute_dataset_root_is_refused(run_dir: Path, root, says) -> None:
    path = run_dir / SCORES_FILE
    meta = json.loads(pq.read_schema(path).metadata[b"fercleaner"])
    if root is None:
        del meta["dataset_root"]
    else:
        meta["dataset_root"] = root
    write_scores(pd.read_parquet(path), path, metadata=meta)
    with pytest.raises(ScoresFormatError) as err:
        read_run(run_dir)
    message = str(err.value)
    assert message.startswith(str(path)) and says in message and "\n" not in message


def test_a_run_folder_whose_name_is_not_utf8_is_a_one_line_error(tmp_path: Path) -> None:
    folder = Path(os.fsdecode(os.path.join(os.fsencode(tmp_path), b"r\xe9")))
    folder.mkdir()
    (folder / SCORES_FILE).write_bytes(b"PAR1")
    with pytest.raises(RunError, match=r"r\\xe9 is not valid UTF-8"):
        read_run(folder)


# -- every image path lies under the recorded dataset root --------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "{root}/../secret.png",  # leaves the root by `..`
        "{root}-evil/img/face_00006.png",  # shares the root's name as a prefix only
        "img/face_00006.png",  # relative: would resolve against the working directory
        "{root}/img/a\x00b.png",
        "",
    ],
)
def test_an_image_path_outside_the_dataset_root_is_refused(
    run_dir: Path, tmp_path: Path, path: str
) -> None:
    path = path.replace("{root}", str(tmp_path / "faces"))
    _doctor(run_dir, 6, path=path)
    with pytest.raises(SamplePathError) as err:
        read_run(run_dir)
    message = str(err.value)
    assert message.startswith(str(run_dir.resolve() / SCORES_FILE))
    assert "row 6 (sample 'img/face_00006.png')" in message and "\n" not in message
    assert repr(str(tmp_path / "faces")) in message  # the root it had to lie under
    with pytest.raises(SamplePathError):
        open_run(run_dir)  # the review app's way in


def test_paths_that_normalise_under_the_root_are_accepted(run_dir: Path, tmp_path: Path) -> None:
    faces = tmp_path / "faces"
    _doctor(run_dir, 6, path=f"{faces}/img/../img/./face_00006.png")
    _doctor(run_dir, 7, path=f"{faces}//img/.hidden.png")
    assert len(read_run(run_dir).scores) == 36


def test_export_copy_refuses_a_doctored_path_and_copies_nothing(
    run_dir: Path, tmp_path: Path
) -> None:
    # regression: export --imagefolder --copy copied any readable file a run named
    secret = tmp_path / "private" / "secret.png"
    secret.parent.mkdir()
    secret.write_bytes(b"not for export")
    _doctor(run_dir, 6, path=str(secret))
    before = _files_under(tmp_path)
    with pytest.raises(SamplePathError, match="row 6"):
        export_run(
            run_dir, tmp_path / "out", imagefolder=tmp_path / "folders", imagefolder_mode="copy"
        )
    assert _files_under(tmp_path) == before


@pytest.mark.parametrize("command", ["export", "review"])
def test_the_cli_reports_a_doctored_path_in_one_line(
    run_dir: Path, tmp_path: Path, command: str
) -> None:
    _doctor(run_dir, 6, path="/etc/passwd")
    args = [command, str(run_dir), *(["--out", str(tmp_path / "out")] * (command == "export"))]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert "scores.parquet" in lines[0] and "'/etc/passwd'" in lines[0]


# -- writing -----------------------------------------------------------------------------


def test_written_tables_open_again_and_leave_no_temp_files(tmp_path: Path) -> None:
    images = write_faces(tmp_path / "faces", 12)
    frame = make_scores_frame(12, image_paths=images)
    meta = {
        "classes": CLASSES,
        "method": "baseline",
        "recipe": {},
        "run_id": "r1",
        "dataset_root": str(tmp_path / "faces"),
    }
    empty = pd.DataFrame({"sample_id": pd.Series([], dtype=str)})
    run_dir = tmp_path / "a" / "run"
    path = write_run_tables(
        run_dir, scores=frame, metadata=meta, problems=empty, dynamics=empty, events=empty
    )
    write_run_info(run_dir, {"run_id": "r1"})
    assert path == run_dir / SCORES_FILE
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(RUN_FILES)
    assert json.loads((run_dir / RUN_FILE).read_text()) == {"run_id": "r1"}
    run = read_run(run_dir)
    assert run.run_id == "r1"
    # stored most suspect first, every row kept: review opens it without moving a row
    stored = run.scores
    assert stored["label_quality"].is_monotonic_increasing
    assert sorted(stored["sample_id"]) == sorted(frame["sample_id"])
    assert stored["sample_id"].iloc[0] == frame.loc[frame["label_quality"].idxmin(), "sample_id"]
    assert open_run(run_dir).scores["sample_id"].tolist() == stored["sample_id"].tolist()


def test_a_run_rewritten_only_in_part_is_refused_by_every_reader(tmp_path: Path) -> None:
    """A kill between the new scores and the new run.json leaves two runs mixed."""
    images = write_faces(tmp_path / "faces", 12)
    meta = {"classes": CLASSES, "method": "baseline", "recipe": {}, "run_id": "new"}
    meta["dataset_root"] = str(tmp_path / "faces")
    empty = pd.DataFrame({"sample_id": pd.Series([], dtype=str)})
    run_dir = tmp_path / "run"
    write_run_tables(
        run_dir,
        scores=make_scores_frame(12, image_paths=images),
        metadata=meta,
        problems=empty,
        dynamics=empty,
        events=empty,
    )
    write_run_info(run_dir, {"run_id": "old"})  # the earlier run's record, never replaced
    for open_it in (read_run, stream_run, open_run):
        with pytest.raises(RunError, match="stopped while it did.*--resume if it trained"):
            open_it(run_dir)
    write_run_info(run_dir, {"run_id": "new"})  # the rewrite finished
    assert read_run(run_dir).run_id == "new"


# -- the demo opens the run the same way ------------------------------------------------


def test_the_demo_evaluates_a_run_and_refuses_a_doctored_one(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fercleaner.demo import main

    scores = read_run(run_dir).scores
    truth = pd.DataFrame(
        {
            "sample_id": scores["sample_id"],
            "clean_label": scores["proposed_label"],
            "is_noisy": scores["is_label_issue"],
        }
    )
    truth.to_parquet(tmp_path / "truth.parquet")
    assert main([str(run_dir), str(tmp_path / "truth.parquet")]) == 0
    assert "Planted label errors: 6 of 36" in capsys.readouterr().out
    _doctor(run_dir, 6, path="/etc/passwd")
    assert main([str(run_dir), str(tmp_path / "truth.parquet")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "'/etc/passwd'" in err and "\n" not in err


def test_a_table_given_in_parts_is_written_a_row_group_per_part(tmp_path: Path) -> None:
    from fercleaner.runs import write_tables_atomic

    parts = [
        pd.DataFrame({"sample_id": ["a", "b"], "epoch": [0, 0], "margin": [0.1, 0.2]}),
        pd.DataFrame({"sample_id": ["a"], "epoch": [1], "margin": [0.3]}),
    ]
    path = tmp_path / "dynamics.parquet"
    write_tables_atomic(iter(parts), path)
    assert pq.ParquetFile(path).metadata.num_row_groups == 2
    pd.testing.assert_frame_equal(pd.read_parquet(path), pd.concat(parts, ignore_index=True))
    write_tables_atomic(iter([]), tmp_path / "empty.parquet")  # nothing trained: still a file
    assert pd.read_parquet(tmp_path / "empty.parquet").empty


def test_a_table_failing_midway_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    from fercleaner.runs import write_tables_atomic

    path = tmp_path / "dynamics.parquet"
    old = pd.DataFrame({"sample_id": ["old"], "epoch": [0], "margin": [0.5]})
    write_tables_atomic([old], path)

    def parts():
        yield pd.DataFrame({"sample_id": ["a"], "epoch": [0], "margin": [0.1]})
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        write_tables_atomic(parts(), path)
    pd.testing.assert_frame_equal(pd.read_parquet(path), old)
    assert [p.name for p in tmp_path.iterdir()] == ["dynamics.parquet"]
