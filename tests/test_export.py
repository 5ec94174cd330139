"""Export: every policy, human decisions overriding the model, changes.csv, metadata, files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from _review_lock import store_locked
from run_fixtures import (
    CLASSES,
    FINGERPRINT,
    RUN_ID,
    make_run,
    make_scores_frame,
    write_faces,
)
from typer.testing import CliRunner

from fercleaner.cli import app
from fercleaner.export import MANIFEST_COLUMNS, ExportError, export_run
from fercleaner.review.store import Decision, DecisionStore
from fercleaner.scoring import write_scores

# Planted rows of run_fixtures.make_scores_frame (sample ids img/face_0000<i>.png):
# 0,1,2 happiness->surprise mislabeled; 3 sadness->fear mislabeled;
# 4 anger (proposed disgust) ambiguous; 5 neutral outlier; the rest clean.


def sid(i: int) -> str:
    return f"img/face_{i:05d}.png"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run(tmp_path)


def manifest(result) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in result.manifests.values()]).set_index("sample_id")


def test_files_columns_and_row_accounting(run_dir: Path, tmp_path: Path) -> None:
    result = export_run(run_dir, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "changes.csv",
        "summary.json",
        "test.parquet",
        "train.parquet",
        "val.parquet",
    ]
    for split, path in result.manifests.items():
        frame = pd.read_parquet(path)
        assert list(frame.columns) == list(MANIFEST_COLUMNS)
        assert set(frame["split"]) == {split}
        assert (frame["run_id"] == RUN_ID).all()
    m = manifest(result)
    assert len(m) == 36  # every sample, none dropped
    assert (m["label_name"] == [CLASSES[i] for i in m["label"]]).all()


def test_relabel_policy_applies_only_mislabeled_proposals(run_dir: Path, tmp_path: Path) -> None:
    m = manifest(export_run(run_dir, tmp_path / "out", policy="relabel"))
    for i, new in ((0, "surprise"), (1, "surprise"), (2, "surprise"), (3, "fear")):
        assert (m.loc[sid(i), "label_name"], m.loc[sid(i), "action"]) == (new, "relabel")
        assert m.loc[sid(i), "decided_by"] == "model"
    for i in (4, 5, 6):  # ambiguous, outlier and a clean row keep their given label
        assert m.loc[sid(i), "label_name"] == m.loc[sid(i), "given_label"]
        assert m.loc[sid(i), "action"] == "keep"
    assert m.loc[sid(6), "decided_by"] == "none"
    assert (m["weight"] == 1.0).all()


def test_drop_policy_excludes_flagged_but_keeps_the_rows(run_dir: Path, tmp_path: Path) -> None:
    m = manifest(export_run(run_dir, tmp_path / "out", policy="drop"))
    flagged = [sid(i) for i in range(6)]
    assert (m.loc[flagged, "action"] == "exclude").all()
    assert (m.loc[flagged, "weight"] == 0.0).all()
    assert (m.loc[flagged, "label_name"] == m.loc[flagged, "given_label"]).all()
    assert (m.drop(index=flagged)["action"] == "keep").all()


def test_soft_policy_trains_flagged_on_the_model_soft_label(run_dir: Path, tmp_path: Path) -> None:
    m = manifest(export_run(run_dir, tmp_path / "out", policy="soft"))
    row = m.loc[sid(4)]
    assert row["action"] == "ambiguous" and row["decided_by"] == "model"
    soft = list(row["soft_label"])
    assert sum(soft) == pytest.approx(1.0, abs=1e-5)
    assert sorted(soft)[-2] > 0.05  # a real distribution, not one-hot
    clean = list(m.loc[sid(6), "soft_label"])
    assert sorted(clean) == [0.0] * (len(CLASSES) - 1) + [1.0]


def test_min_confidence_gates_model_proposals(run_dir: Path, tmp_path: Path) -> None:
    # planted proposals have probabilities 0.842 (rows 0, 3), 0.824 (1), 0.8 (2)
    m = manifest(export_run(run_dir, tmp_path / "out", policy="relabel", min_confidence=0.81))
    assert m.loc[sid(0), "action"] == "relabel"
    assert m.loc[sid(2), "action"] == "keep"
    assert m.loc[sid(2), "decided_by"] == "none"


def test_human_decisions_override_the_model(run_dir: Path, tmp_path: Path) -> None:
    with DecisionStore(run_dir / "review.sqlite") as store:
        store.record(Decision(sid(0), "keep", "happiness", note="really happy"), reviewer="ann")
        store.record(Decision(sid(1), "relabel", "fear"), reviewer="ann")
        store.record(Decision(sid(6), "exclude"), reviewer="bob")  # a clean row
        store.record(
            Decision(sid(7), "ambiguous", "anger", soft_label=[0, 0, 0, 0, 3, 1, 0]),
            reviewer="ann",
        )
        store.record(Decision(sid(2), "accept", "surprise"), reviewer="ann")
        store.undo(sid(2), reviewer="ann")  # undone: the policy decides again
        store.record(Decision("img/not-in-run.png", "exclude"), reviewer="ann")
    for policy in ("relabel", "drop", "soft"):
        result = export_run(run_dir, tmp_path / policy, policy=policy, min_confidence=0.99)
        m = manifest(result)
        assert (m.loc[sid(0), "label_name"], m.loc[sid(0), "action"]) == ("happiness", "keep")
        assert (m.loc[sid(1), "label_name"], m.loc[sid(1), "action"]) == ("fear", "relabel")
        assert (m.loc[sid(6), "action"], m.loc[sid(6), "weight"]) == ("exclude", 0.0)
        assert m.loc[sid(7), "action"] == "ambiguous"
        assert list(m.loc[sid(7), "soft_label"]) == pytest.approx([0, 0, 0, 0, 0.75, 0.25, 0])
        assert m.loc[sid(7), "label_name"] == "anger"
        for i in (0, 1, 6, 7):
            assert m.loc[sid(i), "decided_by"] == "human"
            assert pd.notna(m.loc[sid(i), "decided_at"])
        assert m.loc[sid(6), "reviewer"] == "bob"
        assert m.loc[sid(2), "decided_by"] == "none"  # undone, and 0.99 gates the model
        assert result.summary["decisions_for_unknown_samples"] == 1


def test_reviewer_filter_uses_only_their_decisions(run_dir: Path, tmp_path: Path) -> None:
    with DecisionStore(run_dir / "review.sqlite") as store:
        store.record(Decision(sid(3), "keep", "sadness"), reviewer="ann")
        store.record(Decision(sid(3), "exclude"), reviewer="bob")
    m_all = manifest(export_run(run_dir, tmp_path / "all"))
    m_ann = manifest(export_run(run_dir, tmp_path / "ann", reviewers=["ann"]))
    assert m_all.loc[sid(3), "action"] == "exclude"  # last decision wins
    assert m_ann.loc[sid(3), "action"] == "keep"


def test_a_reviewer_who_decided_nothing_is_refused_naming_those_who_did(
    run_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(ExportError, match=r"--reviewer ann: no decisions .*nobody has reviewed"):
        export_run(run_dir, tmp_path / "out", reviewers=["ann"])  # no store yet
    with DecisionStore(run_dir / "review.sqlite") as store:
        store.record(Decision(sid(3), "keep", "sadness"), reviewer="alice")
        store.record(Decision(sid(4), "exclude"), reviewer="bob")
    with pytest.raises(ExportError, match=r"--reviewer alcie: .*reviewers of this run: alice, bob"):
        export_run(run_dir, tmp_path / "out", reviewers=["alice", "alcie"])
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_a_new_export_removes_old_manifests_of_splits_it_has_not(
    run_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    export_run(run_dir, out)
    # a split an earlier export of another run had, and a Parquet file of the user's
    (out / "holdout.parquet").write_bytes((out / "val.parquet").read_bytes())
    pd.DataFrame({"x": [1]}).to_parquet(out / "mine.parquet")
    result = export_run(run_dir, out)
    assert sorted(p.name for p in out.glob("*.parquet")) == [
        "mine.parquet",
        "test.parquet",
        "train.parquet",
        "val.parquet",
    ]
    assert sorted(result.manifests) == ["test", "train", "val"]


def test_every_human_decision_keeps_its_note_in_the_manifest(run_dir: Path, tmp_path: Path) -> None:
    with DecisionStore(run_dir / "review.sqlite") as store:
        store.record(Decision(sid(10), "exclude", note="blurry, not a face"), reviewer="ann")
        store.record(Decision(sid(9), "relabel", "fear", note="=1+1"), reviewer="ann")
        store.record(Decision(sid(0), "keep", "happiness"), reviewer="ann")
    m = manifest(export_run(run_dir, tmp_path / "out"))
    # an exclude changes no label, so changes.csv does not list it: the manifest keeps it
    assert m.loc[sid(10), "note"] == "blurry, not a face"
    assert m.loc[sid(9), "note"] == "=1+1"  # as typed: only changes.csv is neutralised
    assert m.loc[sid(0), "note"] == ""  # a human decision without a note
    assert pd.isna(m.loc[sid(11), "note"])  # nobody decided: null
    changes = pd.read_csv(tmp_path / "out" / "changes.csv", keep_default_na=False)
    assert sid(10) not in set(changes["sample_id"])
    assert changes.set_index("sample_id").loc[sid(9), "note"] == "'=1+1"


def test_changes_csv_has_one_row_per_changed_label(run_dir: Path, tmp_path: Path) -> None:
    with DecisionStore(run_dir / "review.sqlite") as store:
        store.record(Decision(sid(0), "keep", "happiness"), reviewer="ann")
        store.record(Decision(sid(9), "relabel", "fear", note='odd, "quoted"'), reviewer="ann")
        store.record(Decision(sid(10), "exclude"), reviewer="ann")
    result = export_run(run_dir, tmp_path / "out")
    with open(result.changes, newline="") as fh:
        rows = {r["sample_id"]: r for r in csv.DictReader(fh)}
    m = manifest(result)
    changed = set(m.index[m["label_name"] != m["given_label"]])
    assert set(rows) == changed == {sid(1), sid(2), sid(3), sid(9)}
    assert rows[sid(9)]["label"] == "fear" and rows[sid(9)]["reviewer"] == "ann"
    assert rows[sid(9)]["note"] == 'odd, "quoted"'
    assert rows[sid(1)]["decided_by"] == "model" and rows[sid(1)]["reviewer"] == ""
    assert result.summary["changed_labels"] == 4


def test_metadata_and_summary(run_dir: Path, tmp_path: Path) -> None:
    result = export_run(run_dir, tmp_path / "out", policy="drop", min_confidence=0.5)
    schema = pq.read_schema(result.manifests["train"])
    meta = json.loads(schema.metadata[b"fercleaner"])
    assert meta["classes"] == CLASSES
    assert (meta["policy"], meta["min_confidence"], meta["split"]) == ("drop", 0.5, "train")
    assert meta["dataset_fingerprint"] == FINGERPRINT
    assert meta["source_run"]["run_id"] == RUN_ID
    assert meta["source_run"]["run_dir"] == str(run_dir.resolve())
    features = json.loads(schema.metadata[b"huggingface"])["info"]["features"]
    assert features["label"] == {"names": CLASSES, "_type": "ClassLabel"}
    assert set(features) == set(MANIFEST_COLUMNS)
    assert schema.field("label").type == "int64"  # datasets honours ClassLabel on ints only
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["rows"] == 36
    # 0.5 gates the ambiguous (0.47) and outlier (0.14) proposals: 4 of 6 flags apply
    assert summary["actions"] == {"exclude": 4, "keep": 32}
    assert summary["files"]["train"] == "train.parquet"
    assert sum(s["rows"] for s in summary["splits"].values()) == 36


def test_hugging_face_datasets_reads_label_as_classlabel(run_dir: Path, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets", reason="Hugging Face datasets not installed")
    result = export_run(run_dir, tmp_path / "out")
    ds = datasets.Dataset.from_parquet(str(result.manifests["train"]))
    assert ds.features["label"].names == CLASSES


def test_no_temp_files_are_left_and_rewrites_replace(run_dir: Path, tmp_path: Path) -> None:
    export_run(run_dir, tmp_path / "out", policy="drop")
    export_run(run_dir, tmp_path / "out", policy="relabel")
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]
    meta = json.loads(pq.read_schema(tmp_path / "out" / "val.parquet").metadata[b"fercleaner"])
    assert meta["policy"] == "relabel"


@pytest.mark.parametrize("mode", ["symlink", "copy"])
def test_imagefolder_export(run_dir: Path, tmp_path: Path, mode: str) -> None:
    with DecisionStore(run_dir / "review.sqlite") as store:
        store.record(Decision(sid(6), "exclude"), reviewer="ann")
    calls = []
    result = export_run(
        run_dir,
        tmp_path / "out",
        imagefolder=tmp_path / "folders",
        imagefolder_mode=mode,
        progress=lambda done, total: calls.append((done, total)),
    )
    files = sorted((tmp_path / "folders").rglob("*.png"))
    assert len(files) == 35  # the excluded sample has no folder entry
    target = tmp_path / "folders" / "train" / "fear" / "img__face_00003.png"
    assert target.is_file()
    assert target.is_symlink() == (mode == "symlink")
    assert target.read_bytes() == (run_dir.parent / "faces" / sid(3)).read_bytes()
    assert calls[-1] == (35, 35)
    assert result.imagefolder == (tmp_path / "folders").resolve()
    with pytest.raises(ExportError, match="not empty"):
        export_run(run_dir, tmp_path / "out2", imagefolder=tmp_path / "folders")


def test_a_missing_image_refuses_the_imagefolder_export_before_any_file_changes(
    run_dir: Path, tmp_path: Path
) -> None:
    out, folders = tmp_path / "out", tmp_path / "folders"
    export_run(run_dir, out, policy="relabel")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    image = run_dir.parent / "faces" / sid(7)
    kept = image.read_bytes()
    image.unlink()
    with pytest.raises(ExportError, match=rf"{sid(7)}.*is missing .*restore it, or export without"):
        export_run(run_dir, out, policy="drop", imagefolder=folders)
    # the earlier export stands whole (manifests and summary agree) and nothing was linked
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not folders.exists()
    image.write_bytes(kept)  # restored: the same command now works
    result = export_run(run_dir, out, policy="drop", imagefolder=folders)
    assert result.summary["policy"] == "drop" and len(list(folders.rglob("*.png"))) > 0


def test_a_failure_while_linking_leaves_no_half_written_image_folder(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from fercleaner.export import imagefolder

    copied = []

    def copy_then_fail(source, target):
        if len(copied) == 5:
            raise OSError(28, "No space left on device")
        copied.append(shutil.copyfile(source, target))

    monkeypatch.setattr(imagefolder.shutil, "copy2", copy_then_fail)
    (tmp_path / "folders").mkdir()  # an empty folder given: it stays, empty
    with pytest.raises(OSError, match="No space left"):
        export_run(
            run_dir, tmp_path / "out", imagefolder=tmp_path / "folders", imagefolder_mode="copy"
        )
    assert list((tmp_path / "folders").iterdir()) == []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".folders.")]
    assert not (tmp_path / "out").exists()  # no manifest without its image folder
    monkeypatch.undo()
    export_run(run_dir, tmp_path / "out", imagefolder=tmp_path / "folders", imagefolder_mode="copy")
    assert len(list((tmp_path / "folders").rglob("*.png"))) == 36


def test_bad_options_are_refused(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="unknown policy 'keepall'"):
        export_run(run_dir, tmp_path / "o", policy="keepall")
    with pytest.raises(ExportError, match="must lie in"):
        export_run(run_dir, tmp_path / "o", min_confidence=1.5)
    with pytest.raises(ExportError, match="run directory itself"):
        export_run(run_dir, run_dir)
    assert not (run_dir / "review.sqlite").exists()  # exporting never creates a store


def test_export_cli(run_dir: Path, tmp_path: Path) -> None:
    with DecisionStore(run_dir / "review.sqlite") as store:
        store.record(Decision(sid(5), "exclude"), reviewer="ann")
    runner = CliRunner()
    out = tmp_path / "out"
    res = runner.invoke(app, ["export", str(run_dir), "--out", str(out), "--policy", "soft"])
    assert res.exit_code == 0, res.output
    assert "changed labels" in res.output
    m = pd.read_parquet(out / "train.parquet").set_index("sample_id")
    assert m.loc[sid(0), "action"] == "ambiguous"
    assert (
        pd.read_parquet(out / "test.parquet").set_index("sample_id").loc[sid(5), "action"]
        == "exclude"
    )
    bad = runner.invoke(app, ["export", str(tmp_path / "missing"), "--out", str(out)])
    assert bad.exit_code == 2
    assert "does not exist" in bad.output


# -- a run directory is input: values that become path parts are checked (issue 13) --------


def _hostile_run(
    tmp_path: Path, *, split: str | None = None, cls: str | None = None, sid0: str | None = None
) -> Path:
    """A run whose row 6 has split `split`, whose class 'fear' is renamed `cls`, or whose
    row 6 sample id is `sid0` (row 6 is clean, so every policy keeps it)."""
    images = write_faces(tmp_path / "faces", 36)
    frame = make_scores_frame(36, image_paths=images)
    classes = list(CLASSES)
    if split is not None:
        frame.loc[6, "split"] = split
    if sid0 is not None:
        frame.loc[6, "sample_id"] = sid0
    if cls is not None:
        classes[classes.index("fear")] = cls
        for column in ("given_label", "predicted_label", "proposed_label"):
            frame[column] = frame[column].replace("fear", cls)
    meta = {"classes": classes, "method": "mtac", "recipe": {}, "run_id": RUN_ID}
    meta["dataset_root"] = str(tmp_path / "faces")  # every image lies under it (read_run)
    write_scores(frame, tmp_path / "run" / "scores.parquet", metadata=meta)
    return tmp_path / "run"


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()}


@pytest.mark.parametrize(
    ("split", "reason"),
    [
        ("../../x", "path separator"),
        ("../../../../escaped", "path separator"),
        ("{tmp}/abs", "path separator"),  # an absolute path replaces --out when joined
        ("..", "its parent"),
        ("", "empty"),
        ("tr\nain", "control character"),
        ("x" * 250, "longer than 255 bytes"),
    ],
)
def test_a_split_that_is_not_a_plain_name_is_refused_before_writing(
    tmp_path: Path, split: str, reason: str
) -> None:
    split = split.replace("{tmp}", str(tmp_path))
    run_dir = _hostile_run(tmp_path / "w", split=split)
    before = _files_under(tmp_path)
    out = tmp_path / "w" / "a" / "b" / "out"
    with pytest.raises(ExportError) as err:
        export_run(run_dir, out)
    message = str(err.value)
    assert str(run_dir / "scores.parquet") in message and repr(split) in message
    assert reason in message and "\n" not in message
    assert _files_under(tmp_path) == before  # nothing written, inside --out or outside


@pytest.mark.parametrize("cls", ["../../../x", "a/b", "..", "fe\tar"])
def test_a_class_that_is_not_a_plain_name_is_refused_for_the_image_folder(
    tmp_path: Path, cls: str
) -> None:
    run_dir = _hostile_run(tmp_path / "w", cls=cls)
    before = _files_under(tmp_path)
    with pytest.raises(ExportError, match="scores.parquet: class") as err:
        export_run(run_dir, tmp_path / "w" / "out", imagefolder=tmp_path / "w" / "f" / "g")
    assert repr(cls) in str(err.value)
    assert _files_under(tmp_path) == before
    # without --imagefolder class names are no path parts: the manifests are written
    assert export_run(run_dir, tmp_path / "w" / "out").summary["rows"] == 36


@pytest.mark.parametrize("sample_id", ["..", "a\x00b.png"])
def test_a_sample_id_that_is_no_file_name_is_refused_for_the_image_folder(
    tmp_path: Path, sample_id: str
) -> None:
    run_dir = _hostile_run(tmp_path / "w", sid0=sample_id)
    # '..' stays '..' when the image has no suffix
    frame = pd.read_parquet(run_dir / "scores.parquet")
    bare = tmp_path / "w" / "faces" / "img" / "bare"
    bare.write_bytes((tmp_path / "w" / "faces" / "img" / "face_00006.png").read_bytes())
    frame.loc[frame["sample_id"] == sample_id, "path"] = str(bare)
    meta = json.loads(pq.read_schema(run_dir / "scores.parquet").metadata[b"fercleaner"])
    write_scores(frame, run_dir / "scores.parquet", metadata=meta)
    before = _files_under(tmp_path)
    with pytest.raises(ExportError, match="under --imagefolder") as err:
        export_run(run_dir, tmp_path / "w" / "out", imagefolder=tmp_path / "w" / "f" / "g")
    assert repr(sample_id) in str(err.value)
    assert _files_under(tmp_path) == before


def test_two_samples_mapping_to_one_image_folder_file_are_refused(tmp_path: Path) -> None:
    run_dir = _hostile_run(tmp_path / "w", sid0="img__face_00007.png")
    frame = pd.read_parquet(run_dir / "scores.parquet")
    frame.loc[6, ["split", "given_label"]] = frame.loc[7, ["split", "given_label"]].to_numpy()
    meta = json.loads(pq.read_schema(run_dir / "scores.parquet").metadata[b"fercleaner"])
    write_scores(frame, run_dir / "scores.parquet", metadata=meta)
    with pytest.raises(ExportError, match="both become"):
        export_run(run_dir, tmp_path / "w" / "out", imagefolder=tmp_path / "w" / "f")
    assert not (tmp_path / "w" / "f").exists()


def test_export_cli_reports_a_hostile_split_in_one_line(tmp_path: Path) -> None:
    run_dir = _hostile_run(tmp_path / "w", split="../../x")
    out = tmp_path / "w" / "a" / "out"
    res = CliRunner().invoke(app, ["export", str(run_dir), "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert "scores.parquet" in lines[0] and "'../../x'" in lines[0]
    assert not (tmp_path / "w" / "x.parquet").exists() and not out.exists()


def test_changes_csv_neutralises_spreadsheet_formulas(run_dir: Path, tmp_path: Path) -> None:
    # OWASP CSV injection: a cell starting with = + - @ tab or CR is a formula in Excel,
    # LibreOffice and Google Sheets; it must open as text
    payloads = {
        9: ('=HYPERLINK("http://127.0.0.1:9/x","click")', "ann"),
        10: ("+1+1", "@SUM(1+1)"),
        11: ("-2+3", "=cmd|' /C calc'!A0"),
        12: ("\t=1+1", "bob"),
        13: ("\r=1+1", "-bob"),
        14: ("a plain = note", "zoe"),
        15: ("first\rsecond", "zoe"),  # a lone CR inside a note must not split the row
    }
    given = pd.read_parquet(run_dir / "scores.parquet").set_index("sample_id")["given_label"]
    with DecisionStore(run_dir / "review.sqlite") as store:
        for i, (note, reviewer) in payloads.items():
            other = next(c for c in CLASSES if c != given[sid(i)])  # a change: a changes.csv row
            store.record(Decision(sid(i), "relabel", other, note=note), reviewer=reviewer)
    result = export_run(run_dir, tmp_path / "out")
    with open(result.changes, newline="") as fh:
        rows = {r["sample_id"]: r for r in csv.DictReader(fh)}
    for i, (note, reviewer) in payloads.items():
        got = rows[sid(i)]
        for typed, written in ((note, got["note"]), (reviewer.strip(), got["reviewer"])):
            if typed[0] in "=+-@\t\r":
                assert written == "'" + typed
            else:
                assert written == typed
    assert rows[sid(14)]["note"] == "a plain = note"
    # the manifests keep what was typed: only the spreadsheet-bound file is neutralised
    m = manifest(result)
    assert m.loc[sid(10), "reviewer"] == "@SUM(1+1)"


def test_export_reads_the_decisions_while_another_process_holds_the_store_lock(
    run_dir: Path, tmp_path: Path
) -> None:
    with DecisionStore(run_dir / "review.sqlite") as store:
        store.record(Decision(sid(6), "exclude"), reviewer="ann")
    with store_locked(run_dir / "review.sqlite"):  # e.g. a stuck writer: export only reads
        m = manifest(export_run(run_dir, tmp_path / "out"))
    assert (m.loc[sid(6), "action"], m.loc[sid(6), "reviewer"]) == ("exclude", "ann")
