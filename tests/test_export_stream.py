"""Export a batch at a time (issue 11): the run, the decisions and the manifests stream.

`stream_run` reads the scores a row group at a time with every check `read_run` makes,
`export_run(batch_rows=...)` resolves and writes one batch at a time, and the result must
not depend on the batch size.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from run_fixtures import CLASSES, make_run

from fercleaner.errors import ScoresFormatError
from fercleaner.export import MANIFEST_COLUMNS, ExportError, ManifestWriters, export_run
from fercleaner.review.store import Decision, DecisionStore
from fercleaner.runs import SCORES_FILE, SamplePathError, read_run, stream_run
from fercleaner.scoring import write_scores


def sid(i: int) -> str:
    return f"img/face_{i:05d}.png"


def _doctor(run_dir: Path, row: int, **values) -> None:
    """Rewrite scores.parquet with `values` in row `row` (its metadata kept)."""
    path = run_dir / SCORES_FILE
    meta = json.loads(pq.read_schema(path).metadata[b"fercleaner"])
    frame = pd.read_parquet(path)
    for column, value in values.items():
        frame.loc[row, column] = value
    write_scores(frame, path, metadata=meta)


def _review(run_dir: Path) -> None:
    """Two reviewers, an undo, and a decision for a sample the run does not have."""
    with DecisionStore(run_dir / "review.sqlite") as store:
        store.record(Decision(sid(0), "relabel", "anger"), reviewer="ann")
        store.record(Decision(sid(3), "exclude"), reviewer="ann")
        store.record(Decision(sid(3), "keep", "sadness"), reviewer="bob")  # the current one
        store.record(Decision(sid(20), "relabel", "happiness"), reviewer="bob")
        store.record(Decision(sid(30), "relabel", "fear"), reviewer="ann")
        store.undo(sid(30), reviewer="ann")
        store.record(Decision("img/not_in_the_run.png", "keep", "neutral"), reviewer="ann")
        store.record(
            Decision(sid(33), "ambiguous", "neutral", [0.5, 0.5, 0, 0, 0, 0, 0]), reviewer="bob"
        )


def _exported(result) -> tuple[pd.DataFrame, list[list[str]], dict]:
    """(every manifest row by sample id, changes.csv rows sorted, summary without its time)."""
    frames = [pd.read_parquet(p) for p in result.manifests.values()]
    rows = pd.concat(frames).sort_values("sample_id").reset_index(drop=True)
    lines = (result.out / "changes.csv").read_text(encoding="utf-8").splitlines()
    summary = {k: v for k, v in result.summary.items() if k != "created_at"}
    return rows, [lines[0], *sorted(lines[1:])], summary


# -- reading in batches ------------------------------------------------------------------


def test_a_run_streams_in_batches_equal_to_reading_it_whole(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, n=40)
    whole = read_run(run_dir)
    stream = stream_run(run_dir)
    assert stream.num_rows == 40 and stream.header.classes == CLASSES
    assert stream.header.run_id == whole.run_id and stream.header.scores.empty
    assert list(stream.header.scores.columns) == list(whole.scores.columns)
    batches = list(stream.batches(7))
    assert [len(b.scores) for b in batches] == [7, 7, 7, 7, 7, 5]
    pd.testing.assert_frame_equal(
        pd.concat([b.scores for b in batches], ignore_index=True), whole.scores
    )


def test_a_bad_row_in_a_later_batch_is_named_by_its_row_in_the_file(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, n=40)
    _doctor(run_dir, 23, issue_type="typo")
    with pytest.raises(ScoresFormatError, match="row 23 issue_type 'typo'"):
        list(stream_run(run_dir).batches(10))
    _doctor(run_dir, 23, issue_type="none", path="/etc/passwd")
    with pytest.raises(SamplePathError, match=r"row 23 \(sample 'img/face_00023.png'\)"):
        list(stream_run(run_dir).batches(10))


def test_a_sample_id_repeated_in_another_batch_is_refused(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, n=40)
    _doctor(run_dir, 35, sample_id=sid(2))
    batches = stream_run(run_dir).batches(10)
    for _ in range(4):  # each batch alone is fine
        next(batches)
    with pytest.raises(ScoresFormatError, match=f"'{sid(2)}' more than once"):
        next(batches)


# -- the export does not depend on the batch size ----------------------------------------


@pytest.mark.parametrize("reviewers", [None, ["ann"]])
@pytest.mark.parametrize("policy", ["relabel", "soft"])
def test_export_in_small_batches_equals_export_in_one(
    tmp_path: Path, reviewers: list[str] | None, policy: str
) -> None:
    run_dir = make_run(tmp_path, n=40)
    _review(run_dir)
    one = export_run(run_dir, tmp_path / "one", policy=policy, reviewers=reviewers)
    small = export_run(
        run_dir, tmp_path / "small", policy=policy, reviewers=reviewers, batch_rows=7
    )
    rows_one, changes_one, summary_one = _exported(one)
    rows_small, changes_small, summary_small = _exported(small)
    pd.testing.assert_frame_equal(rows_small, rows_one)
    assert changes_small == changes_one
    assert {**summary_small, "files": None} == {**summary_one, "files": None}
    assert summary_one["decisions_for_unknown_samples"] == 1
    decided = rows_one.set_index("sample_id")["decided_by"]
    if reviewers is None:  # bob's later keep wins over ann's exclude; the undone one is gone
        assert (decided == "human").sum() == 4
        assert rows_one.set_index("sample_id").loc[sid(3), "action"] == "keep"
    else:
        assert (decided == "human").sum() == 2  # ann's relabel and exclude; her undo counts
        assert rows_one.set_index("sample_id").loc[sid(3), "action"] == "exclude"


def test_rows_keep_the_runs_stored_order_within_each_split(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, n=40)
    result = export_run(run_dir, tmp_path / "out", batch_rows=7)
    stored = read_run(run_dir).scores
    for split, path in result.manifests.items():
        expected = stored.loc[stored["split"] == split, "sample_id"].tolist()
        assert pd.read_parquet(path)["sample_id"].tolist() == expected


def test_rows_progress_counts_every_row_once_per_batch(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    export_run(
        make_run(tmp_path, n=20),
        tmp_path / "out",
        batch_rows=8,
        rows_progress=lambda *a: calls.append(a),
    )
    assert calls == [(8, 20), (16, 20), (20, 20)]


# -- nothing half-written ----------------------------------------------------------------


def test_a_run_that_fails_in_a_later_batch_leaves_the_old_export_untouched(
    tmp_path: Path,
) -> None:
    run_dir = make_run(tmp_path, n=40)
    out = tmp_path / "out"
    export_run(run_dir, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    _doctor(run_dir, 38, path="/etc/passwd")
    with pytest.raises(SamplePathError, match="row 38"):
        export_run(run_dir, out, policy="drop", batch_rows=7)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no temp file left


def test_a_refused_first_export_leaves_no_output_folder(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, n=40)
    _doctor(run_dir, 38, sample_id=sid(1))
    with pytest.raises(ScoresFormatError, match="more than once"):
        export_run(run_dir, tmp_path / "out", batch_rows=7)
    assert not (tmp_path / "out").exists()


def test_image_folder_names_colliding_across_batches_are_refused(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, n=14)
    frame = pd.read_parquet(run_dir / SCORES_FILE)
    # rows 6 and 7 fall in different batches of 7 and would both be img__face_00007.png
    _doctor(
        run_dir,
        6,
        sample_id="img__face_00007.png",
        split=frame.loc[7, "split"],
        given_label=frame.loc[7, "given_label"],
    )
    with pytest.raises(ExportError, match="both become"):
        export_run(run_dir, tmp_path / "out", imagefolder=tmp_path / "f", batch_rows=7)
    assert not (tmp_path / "f").exists() and not (tmp_path / "out").exists()


def test_an_image_folder_written_from_small_batches_links_every_kept_sample(
    tmp_path: Path,
) -> None:
    run_dir = make_run(tmp_path, n=20)
    _review(run_dir)
    result = export_run(
        run_dir, tmp_path / "out", policy="drop", imagefolder=tmp_path / "f", batch_rows=6
    )
    links = {str(p.relative_to(tmp_path / "f")) for p in (tmp_path / "f").rglob("*.png")}
    rows = pd.concat([pd.read_parquet(p) for p in result.manifests.values()])
    kept = rows[rows["action"] != "exclude"]
    # the model drops flagged rows 1, 2, 4 and 5; people decided rows 0 and 3
    assert len(kept) == 16 and result.summary["actions"]["exclude"] == 4
    assert links == {
        f"{r.split}/{r.label_name}/{r.sample_id.replace('/', '__')}"
        for r in kept.itertuples(index=False)
    }


# -- manifests in exact row groups -------------------------------------------------------


def test_manifest_row_groups_are_exact_whatever_the_batches(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, n=40)
    result = export_run(run_dir, tmp_path / "whole")
    rows = pd.concat([pd.read_parquet(p) for p in result.manifests.values()], ignore_index=True)
    with ManifestWriters(tmp_path / "out", classes=CLASSES, metadata={}, row_group_rows=5) as w:
        for start, stop in [(0, 3), (3, 7), (7, 16), (16, 17), (17, 40)]:
            w.write(rows.iloc[start:stop])
    for split, path in w.paths.items():
        meta = pq.ParquetFile(path).metadata
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        assert sizes[:-1] == [5] * (len(sizes) - 1) and 0 < sizes[-1] <= 5
        expected = rows[rows["split"] == split].reset_index(drop=True)
        pd.testing.assert_frame_equal(pd.read_parquet(path)[list(MANIFEST_COLUMNS)], expected)
    assert list(w.paths) == ["train", "val", "test"]


def test_an_error_inside_the_writers_replaces_no_manifest(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, n=12)
    result = export_run(run_dir, tmp_path / "out")
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    rows = pd.concat([pd.read_parquet(p) for p in result.manifests.values()], ignore_index=True)
    with (
        pytest.raises(RuntimeError, match="stop"),
        ManifestWriters(tmp_path / "out", classes=CLASSES, metadata={}) as writers,
    ):
        writers.write(rows)
        raise RuntimeError("stop")
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before


# -- the store's batch reads -------------------------------------------------------------


def test_the_store_reads_current_decisions_of_a_batch_per_reviewer(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, n=40)
    _review(run_dir)
    with DecisionStore(run_dir / "review.sqlite") as store:
        everyone = store.current_decisions()
        ids = [sid(i) for i in range(40)] + ["img/not_in_the_run.png"]
        pd.testing.assert_frame_equal(store.current_decisions_of(ids), everyone)
        for reviewers in (["ann"], ["bob"], ["ann", "bob"]):
            theirs = store.current_decisions(reviewers=reviewers)
            batch = store.current_decisions_of([sid(0), sid(3), sid(33)], reviewers=reviewers)
            expected = theirs[theirs["sample_id"].isin([sid(0), sid(3), sid(33)])]
            pd.testing.assert_frame_equal(batch, expected.reset_index(drop=True))
            assert store.count_current_decisions(reviewers=reviewers) == len(theirs)
        assert store.count_current_decisions() == len(everyone) == 5  # one not in the run
        assert store.current_decisions_of([]).empty


def test_a_snapshot_does_not_see_a_decision_made_meanwhile(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, n=12)
    path = run_dir / "review.sqlite"
    with DecisionStore(path) as reader, DecisionStore(path) as writer:
        writer.record(Decision(sid(1), "keep", "happiness"), reviewer="ann")
        with reader.snapshot():
            writer.record(Decision(sid(2), "keep", "happiness"), reviewer="ann")
            assert reader.count_current_decisions() == 1
            assert reader.current_decisions_of([sid(2)]).empty
        assert reader.count_current_decisions() == 2


def test_a_failure_finishing_the_manifests_leaves_changes_csv_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fercleaner.export.manifest as manifest_module

    run_dir = make_run(tmp_path, n=20)
    out = tmp_path / "out"
    export_run(run_dir, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    _review(run_dir)  # the next export would change changes.csv

    def disk_full(self) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(manifest_module._ManifestFile, "finish", disk_full)
    with pytest.raises(OSError, match="No space left"):
        export_run(run_dir, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_the_image_folder_cannot_be_the_output_folder(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, n=6)
    with pytest.raises(ExportError, match="is the --out folder"):
        export_run(run_dir, tmp_path / "out", imagefolder=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_changes_header_is_what_a_whole_export_writes() -> None:
    from fercleaner.export import changes_csv_header, format_changes_csv

    empty = pd.DataFrame(columns=list(MANIFEST_COLUMNS))
    assert changes_csv_header() == format_changes_csv(empty)


def test_the_cli_shows_the_rows_then_the_image_folder(tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from fercleaner.cli import app

    monkeypatch.setenv("FERCLEANER_PROGRESS_INTERVAL", "0")
    run_dir = make_run(tmp_path, n=12)
    res = CliRunner().invoke(
        app,
        [
            "export",
            str(run_dir),
            "--out",
            str(tmp_path / "o"),
            "--imagefolder",
            str(tmp_path / "f"),
        ],
    )
    assert res.exit_code == 0, res.output
    rows = res.output.index("exporting rows 12/12 (100%)")
    assert rows < res.output.index("writing image folder ")


def test_batch_lookups_are_exact_for_any_id_and_any_number_of_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fercleaner.review.store as store_module

    monkeypatch.setattr(store_module, "IDS_PER_QUERY", 3)
    ids = ["a", "a\x00b", 'q"uote', "[x]", *(sid(i) for i in range(6))]
    with DecisionStore(tmp_path / "review.sqlite") as store:
        for sample_id in reversed(ids):
            store.record(Decision(sample_id, "keep", "neutral"), reviewer="ann")
        for reviewers in (None, ["ann"]):
            found = store.current_decisions_of(["a\x00b"], reviewers=reviewers)
            assert found["sample_id"].tolist() == ["a\x00b"]  # not "a"
            every = store.current_decisions_of([*ids, "missing"], reviewers=reviewers)
            assert every["sample_id"].tolist() == list(reversed(ids))  # event order


def test_a_finished_export_removes_what_a_killed_one_left(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    left = [out / ".train.parquet.abcd1234.tmp", out / ".changes.csv.abcd1234.tmp"]
    other = out / ".notes.txt.abcd1234.tmp"  # not an export file: kept
    for path in (*left, other):
        path.write_bytes(b"half")
    export_run(make_run(tmp_path, n=12), out)
    assert not any(p.exists() for p in left) and other.exists()
