"""Noise protocols: seeded, the planted counts are exact, the truth table is right."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fercleaner.bench import PAIRFLIP_PARTNERS, make_noisy, write_noisy_dataset
from fercleaner.errors import DatasetError

CLASSES = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"]


def _samples(n_per_class=20):
    labels = [c for c in CLASSES for _ in range(n_per_class)]
    return pd.DataFrame(
        {
            "sample_id": [f"img/{i:04d}.png" for i in range(len(labels))],
            "path": [f"/src/img/{i:04d}.png" for i in range(len(labels))],
            "split": "train",
            "given_label": labels,
        }
    )


@pytest.mark.parametrize("protocol", ["symmetric", "pairflip"])
def test_flip_protocols_flip_exactly_the_rate_per_class(protocol):
    samples = _samples()
    noisy = make_noisy(samples, CLASSES, protocol=protocol, rate=0.25, seed=3)
    truth = noisy.truth
    assert len(truth) == len(samples)
    assert (truth["true_label"] == samples["given_label"]).all()
    per_class = truth.groupby("true_label")["is_noisy"].sum()
    assert (per_class == 5).all()  # round(0.25 * 20) in every class
    assert (truth["given_label"] == noisy.samples["given_label"]).all()
    assert noisy.protocol["noisy"] == 40 and noisy.protocol["rate"] == 0.25
    again = make_noisy(samples, CLASSES, protocol=protocol, rate=0.25, seed=3)
    pd.testing.assert_frame_equal(again.truth, truth)
    other = make_noisy(samples, CLASSES, protocol=protocol, rate=0.25, seed=4)
    assert not other.truth["is_noisy"].equals(truth["is_noisy"])


def test_pairflip_goes_to_the_partner():
    noisy = make_noisy(_samples(), CLASSES, protocol="pairflip", rate=0.5, seed=0)
    flipped = noisy.truth[noisy.truth["is_noisy"]]
    for true, given in zip(flipped["true_label"], flipped["given_label"], strict=True):
        assert given == PAIRFLIP_PARTNERS[true][0]
    assert ("fear", "surprise") in set(
        zip(flipped["true_label"], flipped["given_label"], strict=True)
    )


def test_pairflip_falls_back_when_the_partner_is_absent():
    classes = ["happiness", "contempt", "disgust"]  # neutral and anger missing
    samples = _samples(10)
    samples = samples[samples["given_label"].isin(classes)].reset_index(drop=True)
    noisy = make_noisy(samples, classes, protocol="pairflip", rate=0.3, seed=0)
    pairs = set(zip(noisy.truth["true_label"], noisy.truth["given_label"], strict=True))
    assert ("contempt", "happiness") in pairs  # contempt -> neutral absent -> happiness
    assert ("disgust", "happiness") in pairs  # disgust -> anger, sadness absent -> next class


def test_symmetric_never_flips_to_the_same_class():
    noisy = make_noisy(_samples(), CLASSES, protocol="symmetric", rate=0.9, seed=1)
    truth = noisy.truth
    assert truth["is_noisy"].sum() == 8 * 18
    assert set(truth.loc[truth["is_noisy"], "given_label"]) == set(CLASSES)


def test_annotator_protocol_draws_votes_and_leaves_out_no_majority():
    votes = [
        [10, 0, 0, 0, 0, 0, 0, 0],  # unanimous neutral: never noisy
        [6, 4, 0, 0, 0, 0, 0, 0],  # majority neutral
        [5, 5, 0, 0, 0, 0, 0, 0],  # no strict majority: left out
        [0, 0, 6, 0, 0, 0, 0, 0],  # 6 of 6 emotion votes but 4 unknown: 6 > 10/2, kept
        [0, 0, 5, 0, 0, 0, 0, 0],  # 5 of 10 with 5 NF: not strict, left out
    ] * 40
    samples = pd.DataFrame(
        {
            "sample_id": [f"v/{i}.png" for i in range(len(votes))],
            "path": [f"/v/{i}.png" for i in range(len(votes))],
            "split": "val",
            "given_label": "neutral",
            "votes": [np.array(v, dtype=np.int32) for v in votes],
            "votes_unknown": [0, 0, 0, 4, 0] * 40,
            "votes_nf": [0, 0, 0, 0, 5] * 40,
        }
    )
    noisy = make_noisy(samples, CLASSES, protocol="annotator", seed=0)
    truth = noisy.truth
    assert noisy.protocol["left_out"] == 80 and len(truth) == 120
    kinds = truth["sample_id"].str.extract(r"(\d+)")[0].astype(int) % 5
    assert (truth.loc[kinds == 0, "given_label"] == "neutral").all()
    assert (truth.loc[kinds == 3, "given_label"] == "surprise").all()
    mixed = truth[kinds == 1]
    assert set(mixed["given_label"]) == {"neutral", "happiness"}
    assert 0.2 < (mixed["given_label"] == "happiness").mean() < 0.6  # drawn with p = 0.4
    assert (truth["is_noisy"] == (truth["given_label"] != truth["true_label"])).all()
    assert len(truth["votes"].iloc[0]) == 8


def test_annotator_protocol_needs_votes():
    with pytest.raises(DatasetError, match="needs per-image votes"):
        make_noisy(_samples(), CLASSES, protocol="annotator", seed=0)
    with pytest.raises(ValueError, match="unknown noise protocol 'uniform'"):
        make_noisy(_samples(), CLASSES, protocol="uniform", seed=0)


def test_written_dataset_links_images_and_keeps_sample_ids(tmp_path):
    source = tmp_path / "src"
    (source / "img").mkdir(parents=True)
    samples = _samples(2)
    samples["path"] = [str(source / sid) for sid in samples["sample_id"]]
    for path in samples["path"]:
        Path(path).write_bytes(b"x")
    noisy = make_noisy(samples, CLASSES, protocol="symmetric", rate=0.5, seed=0)
    folder = write_noisy_dataset(noisy, tmp_path / "bench")
    table = pd.read_csv(folder / "labels.csv")
    assert list(table.columns) == ["path", "label", "split"]
    assert list(table["path"]) == list(samples["sample_id"])
    linked = folder / "img" / "0000.png"
    # a plain file inside the dataset (readers refuse symlinks leaving the root), same bytes
    assert not linked.is_symlink() and linked.read_bytes() == b"x"
    truth = pd.read_parquet(tmp_path / "bench" / "truth.parquet")
    assert list(truth["sample_id"]) == list(samples["sample_id"])
    assert list(table["label"]) == list(truth["given_label"])
    write_noisy_dataset(noisy, tmp_path / "bench")  # re-running over old links works
