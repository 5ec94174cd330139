"""The fuzz suite (issue 13): every hostile dataset input and bad command line in fuzz_cases.py
meets its expected outcome, and the runner's checks catch what they claim to catch.

Each case runs through `bench/fuzz.py`'s `check_case` (in-process `CliRunner`, a real
process where argv bytes matter): exit code, no traceback, the error named, nothing
written outside the output folders, and for datasets the exact problem kinds with the
rows reconciled. A case with a `known_defect` in another area is expected to fail
(strict: it turns into an error once fixed, so the marker gets removed).
"""

from __future__ import annotations

import io
import json
import os
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from _bench_helpers import load_bench_script
from fuzz_cases import CASES, LAYOUTS, OK, PROBLEMS, USAGE, Case, imagefolder

from fercleaner.datasets import PROBLEM_KINDS

REPO = Path(__file__).resolve().parents[1]


fuzz = load_bench_script("fuzz")


def _params():
    for case in CASES:
        marks = []
        if case.known_defect and case.slow:
            marks.append(
                pytest.mark.skip(
                    reason=f"known defect, trains a model to reach it"
                    f" (bench/fuzz.py runs it): {case.known_defect}"
                )
            )
        elif case.known_defect:
            marks.append(
                pytest.mark.xfail(strict=True, reason=f"known defect: {case.known_defect}")
            )
        yield pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", list(_params()))
def test_fuzz_case(case: Case, tmp_path: Path) -> None:
    reason = fuzz.skip_reason(case)
    if reason is not None:
        pytest.skip(reason)
    try:
        outcome = fuzz.check_case(case, tmp_path)
    finally:
        fuzz.release(tmp_path / case.id)
    assert outcome["passed"], f"{case.id} {outcome['argv']}:\n" + "\n".join(outcome["failures"])


# ---------------------------------------------------------------- the table covers the issue


def test_the_table_covers_issue_13():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    dataset = [c for c in CASES if c.is_dataset]
    commands = [c for c in CASES if not c.is_dataset]
    assert len(dataset) >= 80 and len(commands) >= 40
    for layout in LAYOUTS:  # every layout is attacked, with more than a token case
        assert sum(c.layout == layout for c in dataset) >= 15, layout
    for case in dataset:
        assert case.layout in LAYOUTS and case.exit in (OK, PROBLEMS, USAGE), case.id
        if case.exit != USAGE:  # a read dataset: its exact problems and row counts are stated
            assert case.problems is not None and case.rows is not None, case.id
            assert set(case.problems) <= set(PROBLEM_KINDS), case.id
            assert case.samples <= case.rows, case.id
    topics = [
        "truncated",
        "empty",
        "not_an_image|text_named|stray",
        "bomb",
        "png16",
        "unknown",
        "duplicate",
        "only_commas|shifted_row",
        "bom_crlf",
        "missing_col|missing_field",
        "extra",
        "nan",
        "negative",
        "sum_103",
        "votes_row_deleted",
        "link_file_out",
        "link_folder_out",
        "hidden",
        "non_utf8",
        "unreadable|unlistable",
        "dotdot",
        "absolute",
        "box_outside",
        "dist_",
        "unclosed_quote",
    ]
    for topic in topics:
        assert any(any(t in i for t in topic.split("|")) for i in ids), topic
    assert all(c.error or c.exit == OK for c in commands)  # each error names what was wrong


def test_command_cases_cover_the_bad_command_lines_of_the_brief():
    table = (Path(__file__).parent / "fuzz_cases.py").read_text()
    commands = table[table.index("COMMAND_CASES = [") :]
    for needle in [
        "train.folds=1000",
        "train.epochs=-1",
        "method.options.tau=fast",
        "--weights",
        "--imagefolder",
        "[/x]",
        'split="../../x"',
        "--policy",
        "quik",
        "frobnicate",
        "unwritable(tmp)",
        "a_file(tmp",
    ]:
        assert needle in commands, needle


# ---------------------------------------------------------------- the runner's checks can fail


def test_a_wrong_expectation_is_a_failure_and_a_clean_bad_input_a_silent_drop(tmp_path):
    case = Case("wrong", "imagefolder", imagefolder(), PROBLEMS, {"corrupt_image": 1}, 3, 2)
    outcome = fuzz.check_case(case, tmp_path)
    assert not outcome["passed"] and outcome["silent_drop"]
    text = "\n".join(outcome["failures"])
    assert "exit 0, expected 1" in text and "problems {}, expected {'corrupt_image': 1}" in text
    assert "3 samples ingested, expected 2" in text


def test_rows_the_tool_never_accounted_for_are_a_silent_drop(tmp_path):
    case = Case("lost_rows", "imagefolder", imagefolder(), OK, {}, 5, 3)  # 2 rows vanished
    outcome = fuzz.check_case(case, tmp_path)
    assert outcome["silent_drop"] and outcome["reconciled"] is False
    assert "3 rows listed, the input has 5" in "\n".join(outcome["failures"])


def test_a_write_outside_the_output_folder_is_caught(tmp_path):
    case = Case(
        "writes", "cli", lambda t: ["synth", str(t / "elsewhere"), "--n", "4", "--size", "16"], OK
    )
    outcome = fuzz.check_case(case, tmp_path)
    assert not outcome["passed"]
    assert any(w.startswith("+elsewhere") for w in outcome["writes_outside"])
    assert "+elsewhere.truth.parquet" in outcome["writes_outside"]


def test_a_crash_is_counted_as_a_traceback(tmp_path, monkeypatch):
    import fercleaner.datasets

    def broken(*args, **kwargs):
        raise RuntimeError("reader exploded")

    monkeypatch.setattr(fercleaner.datasets, "read_dataset", broken)
    outcome = fuzz.check_case(Case("crash", "imagefolder", imagefolder(), OK, {}, 3, 3), tmp_path)
    assert outcome["traceback"] and not outcome["passed"]
    assert "exit 3, expected 0" in outcome["failures"][0]
    assert (tmp_path / "crash" / "logs").is_dir()  # the crash log stayed in the case folder


def test_bench_fuzz_prints_the_figures(tmp_path):
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        status = fuzz.main(["-k", "if_truncated_png", "--keep", str(tmp_path)])
    summary = json.loads(buffer.getvalue())
    assert status == 0
    assert {
        k: summary[k]
        for k in (
            "cases",
            "passed",
            "tracebacks",
            "silent_drops",
            "rows_reconciled",
            "writes_outside",
        )
    } == {
        "cases": 1,
        "passed": 1,
        "tracebacks": 0,
        "silent_drops": 0,
        "rows_reconciled": "1/1",
        "writes_outside": 0,
    }
    assert summary["dataset_cases_per_layout"]["imagefolder"] == 1
    assert os.path.isdir(tmp_path / "if_truncated_png")  # --keep leaves the case folder
