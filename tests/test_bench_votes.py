"""The `votes` bench protocol (issue 10): the draw, the written dataset, the four systems, suites.

The run without votes is `tests/_fake_score.py` (probabilities peaked at the truth, no
training); the run with votes is the real `fercleaner score --predictions`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _bench_helpers import FAKE_SCORE
from _dataset_files import write_ferplus_valid
from _fake_score import LABEL_QUALITY_ENV
from sklearn.metrics import average_precision_score
from typer.testing import CliRunner

from fercleaner.arrays import to_matrix
from fercleaner.bench import VOTE_SYSTEMS, make_noisy, run_benchmark, write_noisy_dataset
from fercleaner.bench.materialize import MANIFEST_WITHOUT_VOTES
from fercleaner.bench.metrics import get_correction_accuracy
from fercleaner.bench.suite import SUITES, run_suite, summarize_votes_suite
from fercleaner.bench.systems import align_columns
from fercleaner.bench.vote_systems import align_rows
from fercleaner.bench.votes import get_multiannotator_system
from fercleaner.cli import app
from fercleaner.errors import DatasetError, FercleanerError
from fercleaner.runs import read_run
from fercleaner.scoring import read_scores
from fercleaner.scoring.consensus import get_consensus, get_model_prior

CLASSES = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"]


def _table(votes: list[list[int]], **extra) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sample_id": [f"v/{i}.png" for i in range(len(votes))],
            "path": [f"/v/{i}.png" for i in range(len(votes))],
            "split": "val",
            "given_label": "neutral",
            "votes": [np.array(v + [0] * (8 - len(v)), dtype=np.int32) for v in votes],
            **extra,
        }
    )


def test_votes_protocol_draws_k_votes_without_replacement_and_takes_their_plurality():
    votes = [
        [10],  # unanimous neutral
        [6, 4],  # majority neutral, happiness a strong minority
        [5, 5],  # no strict majority: left out
        [0, 0, 6],  # with 4 unknown: 6 of 10, kept
        [6, 1, 1, 1, 1],  # four single minority votes: each can be shown at most once
    ] * 60
    samples = _table(votes, votes_unknown=[0, 0, 0, 4, 0] * 60)
    noisy = make_noisy(samples, CLASSES, protocol="votes", visible=3, seed=0)
    truth = noisy.truth
    assert noisy.protocol["name"] == "votes" and noisy.protocol["votes_visible"] == 3
    assert noisy.protocol["left_out"] == noisy.protocol["left_out_no_majority"] == 60
    assert noisy.protocol["left_out_too_few_votes"] == 0 and len(truth) == 240
    shown = to_matrix(truth["visible_votes"])
    full = to_matrix(truth["votes"])
    assert (shown.sum(axis=1) == 3).all()
    assert (shown <= full).all()  # drawn without replacement
    order = np.stack(truth["visible_order"].to_list())
    assert order.shape == (240, 3)
    assert (np.stack([np.bincount(o, minlength=8) for o in order]) == shown).all()
    kind = truth["sample_id"].str.extract(r"(\d+)")[0].astype(int).to_numpy() % 5
    assert (truth.loc[kind == 0, "given_label"] == "neutral").all()
    assert (truth.loc[kind == 3, "given_label"] == "surprise").all()
    # the given label is the plurality of the visible votes (3 votes over 2 classes: no tie)
    mixed = truth[kind == 1]
    names = np.array(CLASSES, dtype=object)
    assert (mixed["given_label"] == names[shown[kind == 1].argmax(axis=1)]).all()
    assert set(mixed["given_label"]) == {"neutral", "happiness"}
    # truth = strict majority of all votes; noisy where the visible plurality misses it
    assert (truth["true_label"] == names[full.argmax(axis=1)]).all()
    assert (truth["is_noisy"] == (truth["given_label"] != truth["true_label"])).all()
    assert (noisy.samples["given_label"] == truth["given_label"]).all()
    again = make_noisy(samples, CLASSES, protocol="votes", visible=3, seed=0)
    pd.testing.assert_frame_equal(again.truth, truth)
    other = make_noisy(samples, CLASSES, protocol="votes", visible=3, seed=1)
    assert not np.array_equal(np.stack(other.truth["visible_order"].to_list()), order)


def test_votes_protocol_breaks_ties_by_the_first_drawn_vote_and_leaves_out_too_few_votes():
    samples = _table([[6, 4]] * 400 + [[1]] * 5)  # one vote: a majority, but not 2 to show
    noisy = make_noisy(samples, CLASSES, protocol="votes", visible=2, seed=3)
    truth = noisy.truth
    assert noisy.protocol["left_out_too_few_votes"] == 5 and len(truth) == 400
    assert noisy.protocol["left_out"] == 5
    shown = to_matrix(truth["visible_votes"])
    order = np.stack(truth["visible_order"].to_list())
    tied = shown[:, 0] == shown[:, 1]
    assert 0.3 < tied.mean() < 0.7  # 2 * 6/10 * 4/9 = 0.53 of the draws
    names = np.array(CLASSES, dtype=object)
    assert (truth.loc[tied, "given_label"].to_numpy() == names[order[tied, 0]]).all()
    # either tied class wins about half the ties
    assert 0.35 < (truth.loc[tied, "given_label"] == "neutral").mean() < 0.65
    one = make_noisy(samples, CLASSES, protocol="votes", visible=1, seed=3)
    assert 0.3 < (one.truth["given_label"] == "happiness").mean() < 0.5  # p = 0.4


def test_votes_protocol_needs_whole_votes():
    samples = _table([[1]])
    samples["votes"] = [np.array([0.6, 0.4, 0, 0, 0, 0, 0, 0], dtype=np.float32)]
    with pytest.raises(DatasetError, match="use --protocol annotator"):
        make_noisy(samples, CLASSES, protocol="votes", visible=1, seed=0)
    with pytest.raises(DatasetError, match="votes protocol needs per-image votes"):
        make_noisy(samples.drop(columns="votes"), CLASSES, protocol="votes", seed=0)


def test_written_votes_dataset_has_vote_columns_and_a_copy_without(tmp_path):
    source = tmp_path / "src" / "v"
    source.mkdir(parents=True)
    samples = _table([[7, 3], [2, 0, 8]] * 3)
    samples["path"] = [str(tmp_path / "src" / sid) for sid in samples["sample_id"]]
    for path in samples["path"]:
        Path(path).write_bytes(b"x")
    noisy = make_noisy(samples, CLASSES, protocol="votes", visible=3, seed=0)
    folder = write_noisy_dataset(noisy, tmp_path / "bench")
    table = pd.read_csv(folder / "labels.csv")
    columns = [f"votes_{name}" for name in CLASSES]
    assert list(table.columns) == ["path", "label", "split", *columns]
    assert (table[columns].to_numpy() == to_matrix(noisy.truth["visible_votes"])).all()
    assert (table[columns].sum(axis=1) == 3).all()
    plain = pd.read_csv(folder / MANIFEST_WITHOUT_VOTES)
    assert list(plain.columns) == ["path", "label", "split"]
    pd.testing.assert_frame_equal(plain, table[["path", "label", "split"]])
    from fercleaner.datasets import read_dataset

    read = read_dataset(folder / MANIFEST_WITHOUT_VOTES, check_images=False)
    assert sorted(read.samples["sample_id"]) == sorted(table["path"])


def _ferplus(root: Path, n: int = 100) -> Path:
    """FERPlus validation: vote patterns from unanimous to split (some left out)."""
    patterns = ([10], [7, 3], [6, 2, 2], [6, 4], [5, 5], [8, 1, 1], [4, 3, 3])
    votes = []
    for i in range(n):
        row = [0] * 10
        for j, count in enumerate(patterns[i % len(patterns)]):
            row[(i + j) % 4] += count  # neutral, happiness, surprise, sadness
        votes.append(row)
    return write_ferplus_valid(root, votes)


def test_votes_benchmark_end_to_end_with_cache(tmp_path, monkeypatch):
    # the key hashes fercleaner's scoring code, which others may be editing meanwhile
    monkeypatch.setattr("fercleaner.bench.votes._code_digest", lambda: "fixed")
    # the stand-in run's label quality ranks apart from p[given], as a real run's does
    monkeypatch.setenv(LABEL_QUALITY_ENV, "own")
    dataset = _ferplus(tmp_path)
    options = dict(
        protocol="votes",
        visible=3,
        seed=0,
        splits=["val"],
        overrides=["train.epochs=1"],
        reference_cache=tmp_path / "cache",
        score_command=FAKE_SCORE,
    )
    stages = []
    out = tmp_path / "bench"
    result = run_benchmark(dataset, out=out, progress=lambda d, t, s: stages.append(s), **options)
    assert stages[-1] == "done"
    assert result["protocol"]["votes_visible"] == 3 and result["references"] == []
    assert "--votes-visible 3" in result["command"] and "--no-reference" not in result["command"]
    assert list(result["systems"]) == list(VOTE_SYSTEMS)
    kept = result["protocol"]["samples"]
    for name, metrics in result["systems"].items():
        assert metrics["samples_scored"] == kept, name
        assert 0 <= metrics["consensus_accuracy"] <= 1
        assert 0 <= metrics["label_quality_ap"] <= 1 + 1e-9
    truth = pd.read_parquet(out / "noisy" / "truth.parquet")
    plurality = result["systems"]["plurality"]
    # the plurality's consensus is the given label itself
    assert plurality["consensus_accuracy"] == pytest.approx(1 - truth["is_noisy"].mean())
    assert plurality["changed"] == 0
    # (c) ran on the copy without votes; (d) is (c)'s scores through score's crowd step
    assert MANIFEST_WITHOUT_VOTES in result["system_commands"]["fercleaner_novotes"]
    with_votes = result["system_commands"]["fercleaner_votes"]
    assert "apply_crowd_votes" in with_votes and "labels.csv" in with_votes
    run = read_scores(out / "runs" / "fercleaner_novotes" / "scores.parquet")
    rows = run.frame.set_index("sample_id").loc[truth["sample_id"]]
    classes = result["classes"]
    matrix = align_columns(to_matrix(rows["pred_probs"]), run.classes, classes)
    index = {name: i for i, name in enumerate(classes)}
    given = truth["given_label"].map(index).to_numpy()
    # the consensus of the visible votes with (c)'s probabilities and label quality
    prior = get_model_prior(matrix, given, rows["label_quality"].to_numpy())
    direct = get_consensus(to_matrix(truth["visible_votes"]), prior)
    names = np.array(classes, dtype=object)
    expected = float((names[direct.label] == truth["true_label"].to_numpy()).mean())
    measured = result["systems"]["fercleaner_votes"]
    assert measured["consensus_accuracy"] == pytest.approx(expected)
    # its label quality is the posterior at the given label (not the soft label, which is
    # the expected vote distribution)
    posterior_at_given = direct.soft_label[np.arange(len(given)), given]
    is_noisy = truth["is_noisy"].to_numpy(dtype=bool)
    assert measured["label_quality_ap"] == pytest.approx(
        average_precision_score(is_noisy, 1 - posterior_at_given), rel=1e-4
    )
    # ... which the probabilities alone (a --predictions re-score) would not give
    alone = get_consensus(to_matrix(truth["visible_votes"]), matrix)
    alone_ap = average_precision_score(is_noisy, 1 - alone.soft_label[np.arange(len(given)), given])
    assert abs(measured["label_quality_ap"] - alone_ap) > 1e-3
    assert result["consensus"]["images_with_votes"] == len(truth)
    assert result["consensus"]["vote_temperature"] > 0
    # proposals are the run's own (the consensus label only where it flagged), so the
    # correction accuracy is judged on what a reviewer would see
    voted = read_scores(out / "runs" / "fercleaner_votes" / "scores.parquet").frame
    voted = voted.set_index("sample_id").loc[truth["sample_id"]]
    assert measured["correction_accuracy"] == pytest.approx(
        get_correction_accuracy(
            truth["true_label"].to_numpy(),
            voted["proposed_label"].to_numpy(),
            is_noisy=is_noisy,
            is_label_issue=voted["is_label_issue"].to_numpy(),
        ),
        nan_ok=True,
    )
    # part 3: issue types against all the votes, for fercleaner's own scores
    issue = result["issue_types"]["fercleaner_novotes"]
    assert set(issue) >= {"ambiguous", "mislabeled", "confusion", "flagged"}
    assert set(result["target"]) >= {
        "consensus_accuracy_above_cleanlab_multiannotator",
        "label_quality_ap_above_cleanlab_multiannotator",
    }
    assert any("fercleaner_novotes_mislabeled" in key for key in result["issue_type_target"])
    saved = json.loads((out / "bench.json").read_text())
    assert saved["systems"]["cleanlab_multiannotator"]["consensus_accuracy"] == pytest.approx(
        result["systems"]["cleanlab_multiannotator"]["consensus_accuracy"]
    )
    markdown = (out / "bench.md").read_text()
    assert "| cleanlab_multiannotator |" in markdown and "3 visible votes" in markdown
    assert "Issue types against all the votes" in markdown
    assert not result["systems"]["fercleaner_novotes"]["cached"]
    assert len(list((tmp_path / "cache").glob("votes-*.parquet"))) == 1

    # the same labels again: (c) comes from the cache; another scorer or k does not
    failing = [sys.executable, "-c", "import sys; sys.exit(3)"]
    other_scorer = [sys.executable, "-X", "utf8", *FAKE_SCORE[1:]]
    again = run_benchmark(
        dataset, out=tmp_path / "again", **{**options, "score_command": other_scorer}
    )
    assert again["systems"]["fercleaner_novotes"]["cached"] is False  # another scorer: new key
    cached = run_benchmark(dataset, out=tmp_path / "cached", **options)
    assert cached["systems"]["fercleaner_novotes"]["cached"] is True
    # the votes run is a run of this bench folder's images, whichever folder filled the cache
    voted_run = read_run(tmp_path / "cached" / "runs" / "fercleaner_votes")
    root = Path(voted_run.metadata["dataset_root"])
    assert root == (tmp_path / "cached" / "noisy" / "dataset").resolve()
    assert all(Path(p).is_relative_to(root) for p in voted_run.scores["path"])
    for name in VOTE_SYSTEMS:
        assert cached["systems"][name]["consensus_accuracy"] == pytest.approx(
            result["systems"][name]["consensus_accuracy"]
        )
    with pytest.raises(FercleanerError, match="exit 3"):  # another k: other labels, no hit
        run_benchmark(
            dataset, out=tmp_path / "k1", **{**options, "score_command": failing, "visible": 1}
        )


def test_bad_votes_options_fail_before_any_work(tmp_path):
    for options, message in (
        ({"references": ["plain"]}, "drop --reference"),
        ({"downstream": True}, "drop --downstream"),
        ({"visible": 0}, "--votes-visible must be at least 1"),
    ):
        with pytest.raises(FercleanerError, match=message):
            run_benchmark(tmp_path / "missing", out=tmp_path / "b", protocol="votes", **options)
    assert not (tmp_path / "b").exists()


def test_multiannotator_quality_is_crowdlab_at_the_given_label():
    rng = np.random.default_rng(0)
    n = 200
    true = rng.integers(0, 4, n)
    # three annotators right 70% of the time; a model right 80% of the time
    order = np.where(rng.random((n, 3)) < 0.7, true[:, None], rng.integers(0, 4, (n, 3)))
    logits = rng.normal(0, 1, (n, 4))
    logits[np.arange(n), np.where(rng.random(n) < 0.8, true, rng.integers(0, 4, n))] += 3
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    counts = np.stack([np.bincount(o, minlength=4) for o in order])
    given = counts.argmax(axis=1)
    truth = pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)]})
    classes = ["neutral", "happiness", "surprise", "sadness"]
    system = get_multiannotator_system(truth, order, given, probs, classes)
    wrong = given != true
    # low quality where the given label is wrong; the consensus fixes some of them
    assert system.label_quality[wrong].mean() < system.label_quality[~wrong].mean() - 0.2
    names = np.array(classes, dtype=object)
    assert (system.proposed_label == names[true]).mean() > (given == true).mean()
    assert ((system.proposed_label != names[given]) == system.is_label_issue).all()
    single = get_multiannotator_system(truth, order[:, :1], order[:, 0], probs, classes)
    assert (single.proposed_label == names[order[:, 0]]).all()  # one vote: it is the consensus
    assert (
        single.label_quality[order[:, 0] != true].mean()
        < single.label_quality[order[:, 0] == true].mean()
    )


def test_votes_suite_is_three_k_by_three_seeds_and_summarises_per_k(tmp_path):
    runs = SUITES["votes"]
    assert [r.name for r in runs] == [f"k{k}-s{s}" for k in (1, 3, 5) for s in range(3)]
    assert {r.protocol for r in runs} == {"votes"} and {r.splits for r in runs} == {("val",)}

    def fake(k: int, ours: float, theirs: float) -> dict:
        return {
            "protocol": {"votes_visible": k},
            "systems": {
                "cleanlab_multiannotator": {"consensus_accuracy": theirs, "label_quality_ap": 0.5},
                "fercleaner_votes": {"consensus_accuracy": ours, "label_quality_ap": 0.6},
            },
            "issue_types": {
                "fercleaner_votes": {
                    "ambiguous": {"precision": 0.6, "base_rate": 0.3, "lift": 2.0, "max_lift": 3.3},
                    "mislabeled": {
                        "precision": 0.5,
                        "base_rate": 0.8,
                        "lift": 0.625,
                        "max_lift": 1.25,
                    },
                }
            },
        }

    summary = summarize_votes_suite(
        {"k1-s0": fake(1, 0.80, 0.82), "k1-s1": fake(1, 0.90, 0.84), "k3-s0": fake(3, 0.9, 0.8)}
    )
    k1 = summary["systems_by_k"]["1"]["fercleaner_votes"]["consensus_accuracy"]
    assert k1["mean"] == pytest.approx(0.85) and k1["sd"] == pytest.approx(0.0707, abs=1e-4)
    assert k1["runs"] == 2
    target = summary["target_on_means_by_k"]["1"]
    assert target["consensus_accuracy_margin_over_cleanlab_multiannotator"] == pytest.approx(0.02)
    assert target["label_quality_ap_above_cleanlab_multiannotator"] is True
    issue = summary["issue_types"]
    assert issue["systems"]["fercleaner_votes"]["ambiguous"]["lift"]["mean"] == 2.0
    targets = issue["target_on_means"]
    assert targets["fercleaner_votes_ambiguous_precision_at_least_1.5x_base_rate"] is True
    assert targets["fercleaner_votes_mislabeled_precision_at_least_1.5x_base_rate"] is False
    # a base rate of 0.8 caps the lift at 1.25: no rule could meet 1.5x, and the check says so
    assert targets["fercleaner_votes_ambiguous_reachable_by_any_rule"] is True
    assert targets["fercleaner_votes_mislabeled_reachable_by_any_rule"] is False
    assert issue["systems"]["fercleaner_votes"]["mislabeled"]["max_lift"]["mean"] == 1.25

    dataset = _ferplus(tmp_path, n=60)
    lines = []
    result = run_suite(
        dataset,
        suite="votes",
        out=tmp_path / "suite",
        runs=["k1-s0", "k3-s1"],
        score_command=FAKE_SCORE,
        reference_cache=None,
        progress=lines.append,
    )
    assert list(result["systems_by_k"]) == ["1", "3"]
    assert set(result["systems_by_k"]["3"]) == set(VOTE_SYSTEMS)
    saved = json.loads((tmp_path / "suite" / "suite.json").read_text())
    assert saved["suite"] == "votes"
    assert (
        json.loads((tmp_path / "suite" / "k3-s1" / "bench.json").read_text())["protocol"][
            "votes_visible"
        ]
        == 3
    )
    assert (tmp_path / "suite" / "votes.png").stat().st_size > 0
    assert "k = 3 visible votes" in (tmp_path / "suite" / "suite.md").read_text()
    assert lines[0] == "run 1/2: k1-s0"


def test_cli_votes_options(tmp_path):
    dataset = _ferplus(tmp_path, n=40)
    runner = CliRunner()
    for extra, message in (
        (["--votes-visible", "3"], "--votes-visible works with --protocol votes"),
        (["--suite", "votes", "--votes-visible", "3"], "drop --votes-visible"),
        (["--protocol", "votes", "--reference", "plain"], "drop --reference"),
    ):
        result = runner.invoke(app, ["bench", str(dataset), "--out", str(tmp_path / "x"), *extra])
        assert result.exit_code == 2 and message in result.output, result.output
    out = tmp_path / "cli"
    result = runner.invoke(
        app,
        [
            "bench",
            str(dataset),
            "--protocol",
            "votes",
            "--votes-visible",
            "1",
            "--seed",
            "2",
            "--no-reference-cache",
            "--score-command",
            " ".join(FAKE_SCORE),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "bench.json").read_text())
    assert saved["protocol"]["votes_visible"] == 1 and saved["protocol"]["seed"] == 2
    assert (
        "cleanlab.rank.get_label_quality_scores"
        in saved["system_commands"]["cleanlab_multiannotator"]
    )
    assert "| fercleaner_votes |" in result.output


def test_annotator_benchmark_checks_issue_types_against_the_votes(tmp_path):
    dataset = _ferplus(tmp_path, n=60)
    result = run_benchmark(
        dataset,
        out=tmp_path / "bench",
        protocol="annotator",
        references=[],
        score_command=FAKE_SCORE,
    )
    issue = result["issue_types"]["fercleaner"]
    assert issue["flagged"] == result["systems"]["fercleaner"]["flagged"]
    assert "Issue types against all the votes" in (tmp_path / "bench" / "bench.md").read_text()


def test_votes_cache_key_follows_everything_the_run_depends_on(monkeypatch):
    from fercleaner.bench.runner import BenchSpec
    from fercleaner.bench.votes import votes_cache_key

    truth = pd.DataFrame({"sample_id": ["a.png", "b.png"], "given_label": ["anger", "fear"]})
    monkeypatch.setattr("fercleaner.bench.votes._code_digest", lambda: "one")

    def key(truth=truth, images="x", prefix=("score",), **spec) -> str:
        spec = BenchSpec(**{"protocol": "votes", **spec})
        return votes_cache_key(truth, spec=spec, prefix=list(prefix), images=images)

    base = key()
    assert key() == base
    changed = [
        key(visible=5),
        key(seed=1),
        key(recipe="quick"),
        key(overrides=["train.epochs=2"]),
        key(images="y"),
        key(prefix=("torchrun", "score")),
        key(truth=truth.assign(given_label=["anger", "anger"])),
    ]
    monkeypatch.setattr("fercleaner.bench.votes._code_digest", lambda: "two")
    changed.append(key())
    assert base not in changed and len(set(changed)) == len(changed)


def test_run_issue_types_leave_out_images_the_run_did_not_score():
    from fercleaner.bench.votes import get_run_issue_types

    truth = pd.DataFrame(
        {
            "sample_id": ["a", "b", "c"],
            "given_label": ["neutral", "neutral", "happiness"],
            "votes": [np.array([2.0, 8.0]), np.array([9.0, 1.0]), np.array([1.0, 9.0])],
        }
    )
    scores = pd.DataFrame(  # "b" failed to decode: quarantined, never scored
        {
            "sample_id": ["c", "a"],
            "is_label_issue": [False, True],
            "issue_type": ["none", "mislabeled"],
        }
    )
    metrics = get_run_issue_types(scores, truth, ["neutral", "happiness"])
    assert metrics["flagged"] == 1
    assert metrics["mislabeled"] == {
        "count": 1,
        "precision": 1.0,
        "base_rate": 1.0,
        "lift": 1.0,
        "max_lift": 1.0,
    }


_SKIPPING_SCORER = """
import runpy, sys
from pathlib import Path
from fercleaner.scoring import read_scores, write_scores
fake, args = sys.argv[1], sys.argv[2:]
sys.argv = [fake, *args]
runpy.run_path(fake, run_name="__main__")
path = Path(args[args.index("--out") + 1]) / "scores.parquet"
scores = read_scores(path)
write_scores(scores.frame.iloc[1:].reset_index(drop=True), path, metadata=scores.metadata)
"""


def test_votes_benchmark_leaves_out_images_the_run_did_not_score(tmp_path):
    dataset = _ferplus(tmp_path, n=40)
    scorer = tmp_path / "skipping_scorer.py"
    scorer.write_text(_SKIPPING_SCORER)
    result = run_benchmark(
        dataset,
        out=tmp_path / "bench",
        protocol="votes",
        visible=3,
        reference_cache=None,
        score_command=[sys.executable, str(scorer), FAKE_SCORE[1]],
    )
    kept = result["protocol"]["samples"]
    assert result["samples_not_scored"] == 1
    for name in VOTE_SYSTEMS:
        assert result["systems"][name]["samples_scored"] == kept - 1, name
        assert result["systems"][name]["samples"] == kept - 1, name


def test_a_system_with_a_consensus_is_judged_on_it_and_its_proposals_apart():
    from fercleaner.bench.systems import SystemScores
    from fercleaner.bench.votes import _evaluate

    classes = ["neutral", "happiness"]
    truth = pd.DataFrame(
        {
            "sample_id": ["a", "b", "c", "d"],
            "true_label": ["happiness", "happiness", "neutral", "neutral"],
            "given_label": ["neutral", "neutral", "neutral", "neutral"],
            "is_noisy": [True, True, False, False],
        }
    )
    system = SystemScores(
        name="fercleaner_votes",
        sample_ids=truth["sample_id"].to_numpy(),
        label_quality=np.array([0.1, 0.2, 0.9, 0.8]),
        is_label_issue=np.array([True, True, False, False]),
        # the reviewer sees happiness for both flagged images ...
        proposed_label=np.array(["happiness", "happiness", "neutral", "neutral"], dtype=object),
        soft_label=np.full((4, 2), 0.5),
        uncertainty=np.zeros(4),
        # ... though the consensus itself still backs the given label for b
        consensus_label=np.array(["happiness", "neutral", "neutral", "neutral"], dtype=object),
    )
    metrics = _evaluate({"fercleaner_votes": system}, truth, classes)["fercleaner_votes"]
    assert metrics["correction_accuracy"] == pytest.approx(1.0)  # proposals: 2 of 2 right
    assert metrics["consensus_accuracy"] == pytest.approx(0.75)  # consensus: b is wrong


def test_a_system_s_rows_follow_the_truth_and_a_missing_image_is_named() -> None:
    frame = pd.DataFrame({"sample_id": ["c", "a", "b"], "label_quality": [0.3, 0.1, 0.2]})
    truth = pd.DataFrame({"sample_id": ["a", "b", "c"]})
    aligned = align_rows(frame, truth, "sys")
    assert aligned["label_quality"].tolist() == [0.1, 0.2, 0.3]
    short = pd.DataFrame({"sample_id": ["a", "d"]})
    with pytest.raises(FercleanerError, match=r"sys scored 1 of the benchmark's 2 images "):
        align_rows(frame, short, "sys")
    with pytest.raises(FercleanerError, match=r"\(first missing: 'd'\); see its log"):
        align_rows(frame, short, "sys")
