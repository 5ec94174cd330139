"""Crowd votes through `fercleaner score`: every input layout with votes reaches scores.parquet.

The csv layout (`votes_<class>`), FERPlus (label.csv votes) and RAF-DB (distribution.txt)
scored with `--predictions` (no training), a csv dataset scored by a tiny trained model,
run.json and the printed summary, export's soft policy and the `ambiguous` decision with
votes present, and a dataset without votes whose scores.parquet is exactly what the
scoring wrote before votes existed.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from _dataset_files import write_image, write_rows
from run_fixtures import TINY_TRAINING
from test_scoring_crowd import CLASSES, GIVEN, PROBS, VOTES
from typer.testing import CliRunner

from fercleaner.arrays import get_probability_readout, to_matrix
from fercleaner.cli import app
from fercleaner.datasets import read_dataset
from fercleaner.export import export_run
from fercleaner.review.actions import make_decision
from fercleaner.review.store import DecisionStore
from fercleaner.runs import read_run
from fercleaner.scoring import assemble_scores, sort_most_suspect_first, write_scores
from fercleaner.scoring.crowd import CROWD_COLUMNS
from fercleaner.synth import write_synthetic_dataset

runner = CliRunner()
TINY = TINY_TRAINING


def _predictions(path, ids, probs, classes):
    frame = pd.DataFrame(np.asarray(probs, dtype=float), columns=list(classes))
    frame.assign(sample_id=list(ids)).to_parquet(path)
    return path


def _score(dataset, run, *extra):
    result = runner.invoke(app, ["score", str(dataset), "--out", str(run), *extra])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def voted_csv(tmp_path):
    """The hand-made images of test_scoring_crowd as a labels.csv dataset, with predictions."""
    root = tmp_path / "data"
    rows = []
    for i, (given, votes) in enumerate(zip(GIVEN, VOTES, strict=True)):
        write_image(root / f"s{i}.png", seed=i)
        cells = ["" for _ in votes] if votes.sum() == 0 else [f"{v:g}" for v in votes]
        rows.append([f"s{i}.png", given, *cells])
    write_rows(root / "labels.csv", [["path", "label", *(f"votes_{c}" for c in CLASSES)], *rows])
    ids = [f"s{i}.png" for i in range(len(GIVEN))]
    return root, _predictions(tmp_path / "preds.parquet", ids, PROBS, CLASSES)


def test_csv_votes_with_predictions_reach_the_scores_the_summary_and_export(voted_csv, tmp_path):
    root, preds = voted_csv
    run = tmp_path / "run"
    output = _score(root, run, "--predictions", str(preds))
    assert "crowd votes: 6 images with votes (1 with one), 2 without (the model alone)" in (
        " ".join(output.split())
    )
    scores = read_run(run).scores.set_index("sample_id")
    assert list(scores.columns[-5:]) == [*CROWD_COLUMNS, "path"]
    a = scores.loc["s0.png"]  # given neutral, five votes happiness
    assert (a["given_label"], a["consensus_label"], a["proposed_label"]) == (
        "neutral",
        "happiness",
        "happiness",
    )
    assert a["is_label_issue"] and a["issue_type"] == "mislabeled"
    np.testing.assert_allclose(a["votes"], [0, 5, 0])
    assert scores.loc["s2.png", "votes"] is None and scores.loc["s2.png", "vote_count"] == 0
    info = json.loads((run / "run.json").read_text())
    assert info["consensus"]["images_with_votes"] == 6
    assert info["consensus"]["images_without_votes"] == 2
    assert info["consensus"]["flags_from_consensus"] >= 1
    # both temperatures are recorded and printed: T for the consensus, S for the soft label
    fitted = info["consensus"]
    assert fitted["temperature"] > 0 and fitted["vote_temperature"] > 0
    assert f"at temperature {fitted['vote_temperature']:.2f} in the soft labels" in (
        " ".join(output.split())
    )

    # export: the soft policy and an `ambiguous` decision train on the consensus posterior
    voted_flagged = scores.index[scores["is_label_issue"] & (scores["vote_count"] > 0)]
    assert len(voted_flagged)
    with DecisionStore(run / "review.sqlite") as store:
        row = scores.loc["s4.png"].to_dict() | {"sample_id": "s4.png"}
        store.record(make_decision("ambiguous", row, CLASSES), reviewer="ann")
    result = export_run(run, tmp_path / "out", policy="soft")
    manifest = pd.concat(pd.read_parquet(p) for p in result.manifests.values())
    manifest = manifest.set_index("sample_id")
    for sample_id in [*voted_flagged, "s4.png"]:
        np.testing.assert_allclose(
            manifest.loc[sample_id, "soft_label"], scores.loc[sample_id, "soft_label"], atol=1e-6
        )
        assert manifest.loc[sample_id, "action"] == "ambiguous"
    # the consensus posterior, not the model's own probabilities
    assert not np.allclose(scores.loc["s0.png", "soft_label"], PROBS[0], atol=0.05)


def test_ferplus_votes_reach_the_scores(tmp_path):
    faces = write_synthetic_dataset(
        tmp_path / "fer", n=30, layout="ferplus", seed=1, size=16, workers=1
    )
    dataset = read_dataset(faces)
    ids = dataset.samples["sample_id"].astype(str).tolist()
    probs = np.random.default_rng(0).dirichlet(np.ones(len(dataset.classes)), len(ids))
    run = tmp_path / "run"
    _score(
        faces,
        run,
        "--predictions",
        str(_predictions(tmp_path / "p.parquet", ids, probs, dataset.classes)),
    )
    scores = read_run(run).scores.set_index("sample_id").loc[ids]
    votes = to_matrix(dataset.samples["votes"])
    np.testing.assert_allclose(to_matrix(scores["votes"]), votes)
    np.testing.assert_allclose(scores["vote_count"], votes.sum(axis=1))
    # a flat model: the consensus follows the votes where they have a clear plurality
    top2 = np.sort(votes, axis=1)[:, -2:]
    clear = top2[:, 1] >= top2[:, 0] + 2
    names = np.array(dataset.classes, dtype=object)
    assert clear.sum() >= 10
    assert (scores["consensus_label"].to_numpy()[clear] == names[votes.argmax(1)][clear]).all()
    assert scores["given_label"].tolist() == dataset.samples["given_label"].tolist()


def test_rafdb_distributions_are_one_annotation_each(tmp_path):
    faces = write_synthetic_dataset(
        tmp_path / "raf", n=20, layout="rafdb", seed=2, size=16, workers=1
    )
    dataset = read_dataset(faces)
    ids = dataset.samples["sample_id"].astype(str).tolist()
    probs = np.full((len(ids), len(dataset.classes)), 1.0 / len(dataset.classes))
    run = tmp_path / "run"
    _score(
        faces,
        run,
        "--predictions",
        str(_predictions(tmp_path / "p.parquet", ids, probs, dataset.classes)),
    )
    scores = read_run(run).scores.set_index("sample_id").loc[ids]
    distribution = to_matrix(dataset.samples["label_distribution"])
    expected = distribution / distribution.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(to_matrix(scores["votes"]), expected, atol=1e-6)
    consensus = json.loads((run / "run.json").read_text())["consensus"]
    assert consensus["images_with_votes"] == consensus["images_with_one_vote"] == len(ids)


def test_trained_score_uses_votes_with_0_1_and_many_per_image(tmp_path, monkeypatch):
    monkeypatch.setenv("FERCLEANER_CACHE", str(tmp_path / "cache"))
    faces = write_synthetic_dataset(
        tmp_path / "faces",
        n=48,
        layout="csv",
        seed=3,
        size=32,
        workers=1,
        classes=["neutral", "happiness", "sadness"],
    )
    truth = pd.read_parquet(tmp_path / "faces.truth.parquet").set_index("sample_id")
    table = pd.read_csv(faces / "labels.csv")
    classes = ["neutral", "happiness", "sadness"]
    planted = []
    for c in classes:
        table[f"votes_{c}"] = np.nan
    for i, path in enumerate(table["path"]):
        clean = truth.loc[path, "clean_label"]
        if i % 3 == 1:  # one vote, for the clean class
            table.loc[i, f"votes_{clean}"] = 1
        elif i % 3 == 2:  # five votes: four for the clean class, one for the next
            other = classes[(classes.index(clean) + 1) % 3]
            table.loc[i, [f"votes_{c}" for c in classes]] = 0
            table.loc[i, f"votes_{clean}"], table.loc[i, f"votes_{other}"] = 4, 1
            if i % 6 == 2:  # and a wrong given label the crowd contradicts
                table.loc[i, "label"] = other
                planted.append(path)
    table.to_csv(faces / "labels.csv", index=False)
    run = tmp_path / "run"
    output = _score(faces, run, *TINY)
    assert "crowd votes: 32 images with votes (16 with one), 16 without" in " ".join(output.split())
    scores = read_run(run).scores.set_index("sample_id")
    assert (scores.loc[planted, "consensus_label"] == truth.loc[planted, "clean_label"]).all()
    assert scores.loc[planted, "is_label_issue"].all()
    assert (scores.loc[planted, "proposed_label"] == truth.loc[planted, "clean_label"]).all()
    assert (
        scores.loc[planted, "given_label"] == table.set_index("path").loc[planted, "label"]
    ).all()
    info = json.loads((run / "run.json").read_text())
    assert info["training"][0]["images_trained"] > 0 and len(planted) == 8
    assert info["consensus"]["images_with_votes"] == 32
    assert info["consensus"]["images_without_votes"] == 16


def test_without_votes_scores_parquet_is_what_scoring_wrote_before(tmp_path):
    faces = write_synthetic_dataset(
        tmp_path / "faces", n=30, layout="imagefolder", seed=4, size=16, workers=1
    )
    dataset = read_dataset(faces)
    samples = dataset.samples.reset_index(drop=True)
    ids = samples["sample_id"].astype(str).tolist()
    probs = np.random.default_rng(1).dirichlet(np.ones(len(dataset.classes)), len(ids))
    run = tmp_path / "run"
    output = _score(
        faces,
        run,
        "--predictions",
        str(_predictions(tmp_path / "p.parquet", ids, probs, dataset.classes)),
    )
    assert "crowd votes" not in output
    assert "consensus" not in json.loads((run / "run.json").read_text())
    # the scores as assemble_scores + write_scores make them, with the run's own metadata
    written = run / "scores.parquet"
    metadata = json.loads(pq.read_schema(written).metadata[b"fercleaner"])
    labels = samples["given_label"].map(dataset.classes.index).to_numpy()
    expected = assemble_scores(
        samples,
        dataset.classes,
        {"predictions": get_probability_readout(probs / probs.sum(1, keepdims=True), labels)},
        method_name="predictions",
        flag_rule="noise_rate",
    )
    # stored most suspect first, as every run is (`write_run_tables`)
    write_scores(
        sort_most_suspect_first(expected), tmp_path / "expected.parquet", metadata=metadata
    )
    assert written.read_bytes() == (tmp_path / "expected.parquet").read_bytes()
