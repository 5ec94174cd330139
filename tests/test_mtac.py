"""MTAC: loss terms on hand-computed tensors, the relabel rule, events, state, a real forward."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fercleaner.classes import CANONICAL_CLASSES
from fercleaner.errors import CheckpointError, ConfigError
from fercleaner.methods.au_graph import (
    AUGraphClassifier,
    build_au_adjacency,
    estimate_au_cooccurrence,
)
from fercleaner.methods.base import BackboneSpec, Batch, MethodContext
from fercleaner.methods.losses import (
    ccc_loss,
    class_balance_weights,
    concordance_correlation,
    masked_bce_with_logits,
)
from fercleaner.methods.mtac import MTAC, MTACOptions
from fercleaner.methods.rank_regularization import (
    get_rank_margin,
    rank_regularization,
    split_high_low,
)
from fercleaner.methods.registry import create_method, list_methods
from fercleaner.methods.relabel import center_similarities, propose_relabels, update_prototypes
from fercleaner.priors import AU_IDS, get_au_prior_matrix

CLASSES = CANONICAL_CLASSES[:7]


def make_context(
    num_samples: int = 16, *, epochs: int = 4, backbone: str = "test_resnet", **options
) -> MethodContext:
    """A 7-class context; timm's tiny `test_resnet` keeps state-only tests fast."""
    return MethodContext(
        classes=CLASSES,
        num_samples=num_samples,
        class_counts=(4, 3, 3, 2, 2, 1, 1),
        in_chans=1,
        image_size=32,
        epochs=epochs,
        steps_per_epoch=2,
        backbone=BackboneSpec(name=backbone),
        options=options,
    )


# ---- pure losses ----------------------------------------------------------------------


def test_class_balance_weights_are_inverse_sqrt_with_mean_one():
    weights = class_balance_weights([100, 25, 4])
    # 1/10, 1/5, 1/2 -> mean 0.8/3 -> divided: 0.375, 0.75, 1.875
    torch.testing.assert_close(weights, torch.tensor([0.375, 0.75, 1.875]))
    assert float(class_balance_weights([5, 0]).mean()) == pytest.approx(1.0)


def test_class_balanced_ce_on_confidence_scaled_logits_matches_hand_value():
    raw = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    confidence = torch.tensor([0.5, 1.0])
    labels = torch.tensor([0, 0])
    weights = torch.tensor([0.5, 1.5])
    scaled = confidence.unsqueeze(1) * raw  # [[1, 0], [0, 1]]
    loss = F.cross_entropy(scaled, labels, weight=weights)
    # both rows have label 0 (weight 0.5): -log softmax = log(1+e^-1) and log(1+e^1)
    expected = (0.5 * math.log(1 + math.e**-1) + 0.5 * math.log(1 + math.e)) / (0.5 + 0.5)
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_rank_regularization_hand_value_and_zero_when_gap_exceeds_margin():
    a = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5, 0.1, 0.2, 0.3, 0.4, 0.05])
    high = split_high_low(a, high_ratio=0.7)
    assert high.tolist() == [True] * 5 + [False, False, True, True, False]
    # high mean (0.9+0.8+0.7+0.6+0.5+0.4+0.3)/7 = 0.6; low mean (0.1+0.2+0.05)/3 = 0.116667
    gap = 0.6 - 0.35 / 3
    assert float(rank_regularization(a, high_ratio=0.7, margin=0.6)) == pytest.approx(0.6 - gap)
    assert float(rank_regularization(a, high_ratio=0.7, margin=0.3)) == 0.0
    a_req = a.clone().requires_grad_(True)
    rank_regularization(a_req, high_ratio=0.7, margin=0.6).backward()
    assert a_req.grad[0] == pytest.approx(-1 / 7) and a_req.grad[5] == pytest.approx(1 / 3)


def test_rank_margin_scales_with_batch_size():
    assert get_rank_margin(64) == pytest.approx(0.07)
    assert get_rank_margin(1024) == pytest.approx(0.15)
    assert get_rank_margin(256) == pytest.approx(0.11)
    assert get_rank_margin(2) == 0.0


def test_ccc_hand_value_and_nan_masking():
    pred = torch.tensor([[0.1, 0.2], [0.3, 0.9], [0.5, 0.1]])
    target = torch.tensor([[0.0, 0.1], [0.4, float("nan")], [0.6, float("nan")]])
    ccc = concordance_correlation(pred, target)
    # column 0: var_x = 0.08/3, var_y = 0.18667/3, cov = 0.12/3, mean gap 1/30 -> 0.08 / 0.09
    assert float(ccc[0]) == pytest.approx(0.08 / 0.09, rel=1e-4)
    assert math.isnan(float(ccc[1]))  # one valid row: undefined
    assert float(ccc_loss(pred, target)) == pytest.approx(1 - 0.08 / 0.09, rel=1e-4)
    same = torch.tensor([[0.2, -0.5], [0.7, 0.1], [-0.3, 0.4]])
    assert float(ccc_loss(same, same)) == pytest.approx(0.0, abs=1e-6)
    assert float(ccc_loss(same, torch.full_like(same, float("nan")))) == 0.0


def test_masked_bce_ignores_nan_targets():
    logits = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
    targets = torch.tensor([[1.0, float("nan")], [0.0, 0.5]])
    expected = (math.log(2) + math.log(1 + math.e) + (math.log(1 + math.e**-1) + 1 * 0.5)) / 3
    # BCE(x, t) = log(1 + e^x) - t x: (0,1) -> log2; (1,0) -> log(1+e); (-1,.5) -> log(1+e^-1)+0.5
    assert float(masked_bce_with_logits(logits, targets)) == pytest.approx(expected, rel=1e-6)


# ---- AU graph -------------------------------------------------------------------------


def test_cooccurrence_from_targets_and_threshold_adjacency():
    targets = np.array(
        [[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 0, 1], [np.nan, 1, 1]], dtype=np.float32
    )
    cond = estimate_au_cooccurrence(targets, prior_matrix=np.zeros((2, 3)), class_counts=np.ones(2))
    # rows with NaN are skipped: P(1|0) = 2/3, P(2|0) = 1/3, P(0|1) = 1, P(2|1) = 1/2, P(0|2) = 1/2
    expected = np.array([[1, 2 / 3, 1 / 3], [1, 1, 0.5], [0.5, 0.5, 1]], dtype=np.float32)
    np.testing.assert_allclose(cond, expected, rtol=1e-6)
    adjacency = build_au_adjacency(cond, threshold=0.5).numpy()
    # edges 0->1, 1->0, 1->2, 2->0, 2->1 plus self-loops, row-normalised
    np.testing.assert_allclose(
        adjacency, [[0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6
    )


def test_cooccurrence_from_priors_weights_classes_by_count():
    prior = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])  # class A: AUs 0,1; class B: AUs 1,2
    cond = estimate_au_cooccurrence(None, prior_matrix=prior, class_counts=np.array([3, 1]))
    # P(0|1) = 3/4 (AU1 occurs in 3 A + 1 B), P(2|1) = 1/4, P(1|0) = 1, P(0|2) = 0
    assert cond[1, 0] == pytest.approx(0.75) and cond[1, 2] == pytest.approx(0.25)
    assert cond[0, 1] == pytest.approx(1.0) and cond[2, 0] == 0.0


def test_gcn_au_classifier_shapes_and_gradients():
    k = len(AU_IDS)
    cond = estimate_au_cooccurrence(
        None, prior_matrix=get_au_prior_matrix(CLASSES), class_counts=np.ones(len(CLASSES))
    )
    head = AUGraphClassifier(build_au_adjacency(cond, threshold=0.4), feature_dim=32)
    assert head.classifiers().shape == (k, 32)
    logits = head(torch.randn(5, 32))
    assert logits.shape == (5, k)
    logits.sum().backward()
    assert head.node_embeddings.grad is not None and head.node_embeddings.grad.abs().sum() > 0


# ---- prototypes and the relabel rule -------------------------------------------------------


def test_update_prototypes_initialises_blends_and_keeps_unseen():
    old = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    valid = torch.tensor([True, True, False])
    sums = torch.tensor([[0.0, 2.0], [0.0, 0.0], [3.0, 0.0]])
    counts = torch.tensor([2.0, 0.0, 3.0])
    new, new_valid = update_prototypes(old, valid, sums, counts, momentum=0.5)
    s = 1 / math.sqrt(2)
    torch.testing.assert_close(new, torch.tensor([[s, s], [0.0, 1.0], [1.0, 0.0]]))
    assert new_valid.tolist() == [True, True, True]


def test_centering_stops_a_tight_class_from_attracting_relabels():
    """Class 1 is tight (members at 0.9), class 0 diffuse (members at 0.4-0.5)."""
    sims = torch.tensor(
        [
            [0.5, 0.2],
            [0.4, 0.3],
            [0.45, 0.7],  # a diffuse-class member that sits fairly close to class 1
            [0.1, 0.9],
            [0.2, 0.9],
        ]
    )
    labels = torch.tensor([0, 0, 0, 1, 1])
    centered = center_similarities(sims, labels, rows=torch.ones(5, dtype=torch.bool))
    # medians: class 0 over rows 0-2 = 0.45; class 1 over rows 3-4 = 0.9
    torch.testing.assert_close(centered[2], torch.tensor([0.0, -0.2]))
    kwargs = {
        "confidence": torch.tensor([0.9, 0.9, 0.1, 0.9, 0.9]),
        "classifier_argmax": torch.tensor([0, 0, 1, 1, 1]),
        "labels": labels,
        "seen": torch.ones(5, dtype=torch.bool),
        "prototype_valid": torch.ones(2, dtype=torch.bool),
        "high_ratio": 0.7,
        "margin": 0.2,
    }
    assert propose_relabels(similarities=sims, **kwargs).mask[2]  # raw: 0.7 - 0.45 > 0.2
    assert not propose_relabels(similarities=centered, **kwargs).mask.any()
    unseen_class = center_similarities(sims, torch.zeros(5, dtype=torch.long), rows=labels >= 0)
    torch.testing.assert_close(unseen_class[:, 1], sims[:, 1])  # no members: left as is


def crafted_relabel_inputs():
    """Six samples, three classes; only sample 0 meets every condition."""
    confidence = torch.tensor([0.1, 0.2, 0.9, 0.15, 0.8, 0.85])
    sims = torch.tensor(
        [
            [0.1, 0.6, 0.0],  # label 0, best 1 by 0.5, argmax 1, low -> relabel
            [0.1, 0.6, 0.0],  # same, but the classifier says 0 -> keep
            [0.1, 0.6, 0.0],  # same, but high confidence -> keep
            [0.5, 0.6, 0.0],  # low, argmax 1, but margin only 0.1 -> keep
            [0.9, 0.1, 0.0],
            [0.0, 0.1, 0.9],
        ]
    )
    argmax = torch.tensor([1, 0, 1, 1, 0, 2])
    labels = torch.tensor([0, 0, 0, 0, 0, 2])
    return confidence, sims, argmax, labels


def test_relabel_rule_on_crafted_prototypes():
    confidence, sims, argmax, labels = crafted_relabel_inputs()
    proposal = propose_relabels(
        confidence=confidence,
        similarities=sims,
        classifier_argmax=argmax,
        labels=labels,
        seen=torch.ones(6, dtype=torch.bool),
        prototype_valid=torch.ones(3, dtype=torch.bool),
        high_ratio=0.5,
        margin=0.2,
    )
    assert proposal.mask.tolist() == [True, False, False, False, False, False]
    assert int(proposal.target[0]) == 1
    assert float(proposal.margin[0]) == pytest.approx(0.5)
    assert proposal.low_confidence.tolist() == [True, True, False, True, False, False]
    # an invalid prototype (class 1 has none yet) can never be the target
    none_for_1 = propose_relabels(
        confidence=confidence,
        similarities=sims,
        classifier_argmax=argmax,
        labels=labels,
        seen=torch.ones(6, dtype=torch.bool),
        prototype_valid=torch.tensor([True, False, True]),
        high_ratio=0.5,
        margin=0.2,
    )
    assert not bool(none_for_1.mask.any())


# ---- the method -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def method() -> MTAC:
    torch.manual_seed(0)
    return create_method("mtac", make_context(backbone="resnet18", relabel_warmup=1))


def test_mtac_is_registered():
    assert "mtac" in list_methods()


def test_options_validation_names_every_bad_key():
    with pytest.raises(ConfigError) as err:
        create_method("mtac", make_context(bogus=1, high_ratio=1.5, relabel="yes"))
    message = str(err.value)
    assert "method.options.bogus" in message
    assert "method.options.high_ratio" in message and "method.options.relabel" in message
    resolved = MTACOptions().resolve(epochs=10)
    assert resolved.relabel_warmup == 4 and resolved.confidence_epochs == 3
    assert MTACOptions().resolve(epochs=1).relabel_warmup == 1
    assert MTACOptions(relabel_warmup=2).resolve(epochs=10).relabel_warmup == 2


def test_forward_backward_resnet18_32px(method):
    method.train()
    method.on_epoch_start(0)
    index = torch.arange(8)
    labels = index % 7
    batch = Batch(images=torch.randn(8, 1, 32, 32), labels=labels, index=index, given_labels=labels)
    out = method(batch)
    assert out["logits"].shape == (8, 7)
    for term in ("loss", "ce", "rank", "au", "va"):
        assert out[term].dim() == 0 and torch.isfinite(out[term]), term
    out["loss"].backward()
    for name in ("confidence_head.weight", "classifier.weight", "va_head.weight"):
        assert method.get_parameter(name).grad is not None, name
    assert method.au_head.node_embeddings.grad.abs().sum() > 0
    memory = method.memory
    assert int(memory.epoch_count.sum()) == 8 and memory.given[:8].tolist() == labels.tolist()
    method.zero_grad()
    method.eval()
    predicted = method.predict(torch.randn(3, 1, 32, 32))
    assert predicted["probs"].shape == (3, 7)
    torch.testing.assert_close(predicted["probs"].sum(1), torch.ones(3))
    assert predicted["au"].shape == (3, len(AU_IDS)) and predicted["va"].shape == (3, 2)


def test_forward_and_predict_under_bf16_autocast_keep_float32_state(method):
    """The trainer runs methods under CPU bf16 autocast; state sums must stay float32."""
    method.train()
    method.on_epoch_start(1)
    index = torch.arange(8, 16)
    labels = index % 7
    batch = Batch(images=torch.randn(8, 1, 32, 32), labels=labels, index=index)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = method(batch)
        assert out["confidence"].shape == (8,)
        out["loss"].backward()
        method.eval()
        predicted = method.predict(torch.randn(2, 1, 32, 32))
    method.zero_grad()
    assert torch.isfinite(out["loss"])
    memory = method.memory
    assert memory.epoch_sims.dtype == torch.float32 and int(memory.epoch_count.sum()) == 8
    assert predicted["prototype_similarity"].dtype == torch.float32


def test_class_balanced_predict_undoes_the_class_weight_prior_shift():
    """Weighted CE tilts p(c|x) by w_c; predict divides it back out (softmax(z - log w))."""
    torch.manual_seed(0)
    model = MTAC(make_context(class_balance=True)).eval()
    images = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        _, raw = model._heads(model._features(images))
        probs = model.predict(images)["probs"]
    weights = class_balance_weights((4, 3, 3, 2, 2, 1, 1))
    torch.testing.assert_close(model.class_weights, weights)
    expected = torch.softmax(raw, dim=1) / weights
    torch.testing.assert_close(probs, expected / expected.sum(1, keepdim=True))
    plain = MTAC(make_context()).eval()  # default: no class balance, plain softmax
    torch.testing.assert_close(plain.class_weights, torch.ones(7))


def test_dataset_au_va_targets_are_used_where_present():
    context = make_context(num_samples=4)
    au = np.full((4, len(AU_IDS)), np.nan, dtype=np.float32)
    au[0] = 1.0
    va = np.array([[0.5, 0.5], [np.nan, np.nan], [-0.5, np.nan], [0.1, 0.2]], dtype=np.float32)
    from dataclasses import replace

    torch.manual_seed(0)
    model = MTAC(replace(context, au_targets=au, va_targets=va))
    labels = torch.tensor([1, 1, 1, 1])
    from fercleaner.methods.losses import get_aux_targets

    filled = get_aux_targets(torch.from_numpy(au), model.au_prior, labels).merged()
    assert torch.all(filled[0] == 1.0)  # annotated row kept
    torch.testing.assert_close(filled[1], model.au_prior[1])  # empty row -> prior of label
    filled_va = get_aux_targets(torch.from_numpy(va), model.va_centroids, labels).merged()
    torch.testing.assert_close(filled_va[1], model.va_centroids[1])
    assert math.isnan(float(filled_va[2, 1]))  # partial row: the gap stays masked


def run_crafted_epoch(model: MTAC, epoch: int, *, rows: torch.Tensor | None = None) -> None:
    """Stage epoch sums by hand (as if trained) so the relabel rule sees crafted evidence.

    `rows` (bool mask) limits the staged samples, as one DDP rank sees only its shard;
    per-class prototype sums are split between ranks the same way.
    """
    n = model.context.num_samples
    model.on_epoch_start(epoch)
    memory = model.memory
    memory.given[:] = torch.arange(n) % 7
    memory.labels[:] = torch.where(memory.labels < 0, memory.given, memory.labels)
    memory.epoch_count[:] = 1
    memory.epoch_conf[:] = torch.linspace(0.9, 0.1, n)  # last samples least confident
    sims = torch.full((n, 7), 0.1)
    sims[torch.arange(n), memory.labels] = 0.6  # most samples agree with their label
    sims[n - 1] = 0.0
    sims[n - 1, 3] = 0.8  # the least confident one looks like class 3
    memory.epoch_sims[:] = sims
    memory.epoch_logits[:] = F.one_hot(sims.argmax(1), 7).float()
    memory.proto_sum[:] = torch.eye(7, memory.prototypes.shape[1])
    memory.proto_n[:] = 1
    if rows is not None:
        share = rows.float().mean()
        for name in ("epoch_count", "epoch_conf", "epoch_sims", "epoch_logits"):
            tensor = getattr(memory, name)
            tensor[~rows] = 0
        memory.given[~rows] = -1
        memory.labels[~rows & (memory.relabeled_at < 0)] = -1
        memory.proto_sum *= share
        memory.proto_n *= share
    memory.prototype_valid[:] = True
    model.on_epoch_end(epoch)


def test_relabel_events_training_labels_and_readout_history():
    torch.manual_seed(0)
    model = MTAC(make_context(relabel_warmup=2, epochs=4, quality_prototype_weight=0.5))
    n = model.context.num_samples
    run_crafted_epoch(model, 0)  # warm-up: no relabel yet
    assert model.events() == [] and model.training_labels() is None
    run_crafted_epoch(model, 1)
    events = model.events()
    assert len(events) == 1
    assert events[0] | {"margin": 0} == {
        "index": n - 1,
        "epoch": 1,
        "event": "relabel",
        "from_label": (n - 1) % 7,
        "to_label": 3,
        "from_class": CLASSES[(n - 1) % 7],
        "to_class": CLASSES[3],
        "margin": 0,
    }
    assert events[0]["margin"] == pytest.approx(0.8)
    labels = model.training_labels()
    assert labels[n - 1] == 3 and torch.equal(labels[: n - 1], torch.arange(n - 1) % 7)
    # readout over the training rows carries the relabel history
    given = (torch.arange(n) % 7).numpy()
    outputs = crafted_outputs(given)
    scores = model.readout(
        {**outputs, "index": np.arange(n), "trained_on": np.ones(n, bool)}, given
    )
    assert scores["relabeled_at"].tolist() == [-1] * (n - 1) + [1]
    assert scores["relabel_to"].tolist() == [-1] * (n - 1) + [3]
    np.testing.assert_allclose(scores["prototype_margin"], 1.0)
    assert scores["au_probs"].shape == (n, len(AU_IDS))
    assert set(scores) >= {"pred_probs", "soft_label", "uncertainty", "label_quality_signal"}
    assert set(scores) - {"pred_probs", "soft_label", "uncertainty", "label_quality_signal"} == set(
        MTAC.signal_columns
    )
    # quality = mean of p_given (1/7) and the prototype softmax at T=0.1 for the given label
    proto_given = math.exp(10) / (math.exp(10) + 6)
    np.testing.assert_allclose(
        scores["label_quality_signal"], 0.5 / 7 + 0.5 * proto_given, rtol=1e-5
    )
    np.testing.assert_allclose(scores["uncertainty"], 1 - outputs["confidence"], rtol=1e-5)
    np.testing.assert_allclose(scores["soft_label"].sum(1), 1.0, rtol=1e-5)
    # without `trained_on` (a caller that does not know) no row gets training history
    other = model.readout(outputs, given)
    assert np.isnan(other["confidence_train"]).all() and (other["relabeled_at"] == -1).all()
    for key in ("pred_probs", "label_quality_signal", "prototype_margin"):
        np.testing.assert_array_equal(other[key], scores[key])


def crafted_outputs(given: np.ndarray) -> dict[str, np.ndarray]:
    """`MTAC.predict`-shaped arrays for rows with labels `given`: uniform probabilities,
    falling confidence, each row's features on its label's prototype."""
    n = len(given)
    return {
        "probs": np.full((n, 7), 1 / 7, dtype=np.float32),
        "confidence": np.linspace(0.9, 0.1, n).astype(np.float32),
        "prototype_similarity": F.one_hot(torch.from_numpy(given), 7).float().numpy(),
        "va": np.zeros((n, 2), dtype=np.float32),
        "au": np.zeros((n, len(AU_IDS)), dtype=np.float32),
    }


def test_readout_history_follows_trained_on_and_index_not_label_agreement():
    """The trainer says which rows the model stepped on (`trained_on`) and which training
    rows they are (`index`); MTAC must not guess from labels that merely agree.

    Every row below has the label the model trained it with, so a label comparison would
    call all of them in-sample and read history by position.
    """
    torch.manual_seed(0)
    model = MTAC(make_context(relabel_warmup=2, epochs=2))  # confidence from the last epoch
    n = model.context.num_samples
    run_crafted_epoch(model, 0)
    run_crafted_epoch(model, 1)  # relabels the last row (label 1) to class 3 at epoch 1
    assert [event["index"] for event in model.events()] == [n - 1]
    trained_conf = np.linspace(0.9, 0.1, n, dtype=np.float32)  # `run_crafted_epoch`'s a
    given = (torch.arange(n) % 7).numpy()

    # held-out rows (the second half, the relabeled row among them) get no history
    trained_on = np.arange(n) < n // 2
    mixed = model.readout(
        {**crafted_outputs(given), "index": np.arange(n), "trained_on": trained_on}, given
    )
    np.testing.assert_allclose(mixed["confidence_train"][trained_on], trained_conf[trained_on])
    assert np.isnan(mixed["confidence_train"][~trained_on]).all()
    assert (mixed["relabeled_at"] == -1).all() and (mixed["relabel_to"] == -1).all()
    np.testing.assert_allclose(  # held-out rows: predict-time confidence only
        mixed["uncertainty"][~trained_on], 1 - crafted_outputs(given)["confidence"][~trained_on]
    )

    # rows in another order: the history follows `index`, not the position
    order = np.arange(n)
    order[[1, n - 1]] = [n - 1, 1]  # both rows have label 1, so the labels still agree
    assert (given[order] == given).all()
    swapped = model.readout(
        {**crafted_outputs(given), "index": order, "trained_on": np.ones(n, bool)}, given
    )
    assert swapped["relabeled_at"].tolist() == [-1, 1] + [-1] * (n - 2)
    assert swapped["relabel_to"].tolist() == [-1, 3] + [-1] * (n - 2)
    np.testing.assert_allclose(swapped["confidence_train"], trained_conf[order])


def test_extra_state_round_trip_through_weights_only_file(tmp_path):
    torch.manual_seed(0)
    model = MTAC(make_context(relabel_warmup=1, epochs=3))
    run_crafted_epoch(model, 0)
    run_crafted_epoch(model, 1)
    assert model.events()
    path = tmp_path / "state.pt"
    torch.save(model.extra_state(), path)
    torch.manual_seed(1)
    restored = MTAC(make_context(relabel_warmup=1, epochs=3))
    restored.load_extra_state(torch.load(path, weights_only=True))
    assert restored.events() == model.events()
    # the keys old checkpoints hold: a resumed run reads them back unchanged
    assert set(model.extra_state()) == {
        "given",
        "labels",
        "relabeled_at",
        "prototypes",
        "prototype_valid",
        "confidence_sum",
        "confidence_epochs_seen",
        "events",
        "epoch",
    }
    for name in ("labels", "given", "relabeled_at", "prototypes", "prototype_valid"):
        assert torch.equal(getattr(restored.memory, name), getattr(model.memory, name)), name
    assert torch.equal(restored.training_labels(), model.training_labels())
    wrong = MTAC(make_context(num_samples=5))
    with pytest.raises(CheckpointError, match="shape"):
        wrong.load_extra_state(model.extra_state())
