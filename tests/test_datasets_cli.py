"""`fercleaner inspect`: tables or JSON, exit 0 clean / 1 problems / 2 unusable input."""

from __future__ import annotations

import json

from _dataset_files import truncate, write_image, write_rows
from typer.testing import CliRunner

from fercleaner.cli import app

runner = CliRunner()


def _clean(tmp_path):
    write_image(tmp_path / "train" / "happy" / "a.png")
    write_image(tmp_path / "train" / "happy" / "b.png")
    write_image(tmp_path / "val" / "angry" / "c.png")
    return tmp_path


def _broken(tmp_path):
    write_image(tmp_path / "a.png")
    truncate(write_image(tmp_path / "cut.png", size=32))
    write_image(tmp_path.parent / "outside.png")
    write_rows(
        tmp_path / "labels.csv",
        [
            ["path", "label"],
            ["a.png", "sad"],
            ["cut.png", "sad"],
            ["gone.png", "fear"],
            ["../outside.png", "fear"],
            ["a.png", "bored"],
        ],
    )
    return tmp_path


def test_clean_dataset_prints_counts_and_exits_0(tmp_path):
    result = runner.invoke(app, ["inspect", str(_clean(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "imagefolder" in result.output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "│" in line}
    assert lines["happiness"].split("│")[2].strip() == "2"  # train column
    assert lines["anger"].split("│")[3].strip() == "1"  # val column
    assert "clean:" in result.output and "3 label rows = 3 ingested" in result.output


def test_problems_are_listed_and_exit_1(tmp_path):
    result = runner.invoke(app, ["inspect", str(_broken(tmp_path)), "--max-problems", "2"])
    assert result.exit_code == 1, result.output
    for kind in ("corrupt_image", "missing_file", "path_escapes_root", "unknown_label"):
        assert kind in result.output
    assert "problems (2 of 4 shown)" in result.output
    assert "and 2 more" in result.output
    assert "problems found:" in result.output


def test_json_lists_every_problem(tmp_path):
    result = runner.invoke(app, ["inspect", str(_broken(tmp_path)), "--json"])
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["layout"] == "csv" and summary["reconciles"]
    assert summary["rows_listed"] == 5 and summary["samples"] == 1
    # classes are the manifest's vocabulary, even when every fear row was excluded
    assert summary["splits"] == {"train": {"total": 1, "classes": {"sadness": 1, "fear": 0}}}
    assert summary["problem_counts"] == {
        "missing_file": 1,
        "corrupt_image": 1,
        "unknown_label": 1,
        "path_escapes_root": 1,
    }
    rows = {p["row"]: p for p in summary["problems"]}
    assert rows[4]["kind"] == "missing_file" and rows[4]["file"] == "labels.csv"
    assert rows[3]["sample_id"] == "cut.png" and rows[3]["fix"]


def test_allow_outside_root_flag(tmp_path):
    result = runner.invoke(
        app, ["inspect", str(_broken(tmp_path)), "--json", "--allow-outside-root"]
    )
    summary = json.loads(result.stdout)
    assert "path_escapes_root" not in summary["problem_counts"]
    assert summary["samples"] == 2


def test_clean_json_exits_0(tmp_path):
    result = runner.invoke(app, ["inspect", str(_clean(tmp_path)), "--json"])
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert summary["problems"] == [] and summary["votes_present"] is False
    assert summary["splits"]["val"]["classes"]["anger"] == 1


def test_unusable_input_exits_2_with_one_line(tmp_path):
    (tmp_path / "nothing").mkdir()
    result = runner.invoke(app, ["inspect", str(tmp_path / "nothing")])
    assert result.exit_code == 2
    assert "matches no known dataset layout" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["inspect", str(_clean(tmp_path / "c")), "--layout", "rafb"])
    assert result.exit_code == 2 and "Did you mean 'rafdb'" in result.output


def test_control_characters_in_file_names_reach_no_terminal(tmp_path):
    write_image(tmp_path / "train" / "happy" / "ok.png")
    (tmp_path / "train" / "happy" / "x\x1b]0;pwned\x07\x1b[2J.png").write_text("not an image")
    result = runner.invoke(app, ["inspect", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "x\\x1b]0;pwned\\x07\\x1b[2J.png" in result.output
