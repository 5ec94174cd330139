"""POI: hand-computed loss terms, the prior matrix, forward/backward, readout, checkpoint state."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fercleaner.classes import CANONICAL_CLASSES
from fercleaner.config import options_from_dict
from fercleaner.errors import ConfigError
from fercleaner.methods.base import BackboneSpec, Batch, MethodContext
from fercleaner.methods.losses import get_aux_targets, sigmoid_rampup
from fercleaner.methods.patches import choose_patch_stage
from fercleaner.methods.poi import POIOptions
from fercleaner.methods.poi_losses import (
    js_uncertainty,
    mutual_learning_kl,
    prior_evidence,
    transfer_loss,
)
from fercleaner.methods.poi_pin import REGIONS, region_slices
from fercleaner.methods.registry import create_method
from fercleaner.priors import AU_IDS, get_au_prior_matrix


def _col(au_id: int) -> int:
    return AU_IDS.index(au_id)


# ---------------------------------------------------------------- prior matrix
def test_prior_matrix_matches_the_methods_table():
    m = get_au_prior_matrix(CANONICAL_CLASSES)
    assert m.shape == (8, 18)
    happiness = CANONICAL_CLASSES.index("happiness")
    assert m[happiness, _col(6)] == 1.0
    assert m[happiness, _col(12)] == 1.0
    assert m[happiness, _col(25)] == 0.5
    assert m[CANONICAL_CLASSES.index("sadness"), _col(6)] == 0.25
    assert m[CANONICAL_CLASSES.index("disgust"), _col(4)] == 0.25
    assert m[CANONICAL_CLASSES.index("contempt"), _col(12)] == 0.5
    sums = dict(zip(CANONICAL_CLASSES, m.sum(axis=1).tolist(), strict=True))
    assert sums == {
        "neutral": 0.0,
        "happiness": 2.5,
        "surprise": 4.0,
        "sadness": 3.75,
        "anger": 4.0,
        "disgust": 3.75,
        "fear": 6.5,
        "contempt": 1.5,
    }


def test_prior_matrix_follows_the_given_class_order():
    order = ("fear", "neutral", "happiness")
    m = get_au_prior_matrix(order)
    full = get_au_prior_matrix(CANONICAL_CLASSES)
    for row, name in enumerate(order):
        np.testing.assert_array_equal(m[row], full[CANONICAL_CLASSES.index(name)])


def test_weak_au_targets_are_prior_rows():
    prior = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 0.25]])
    out = get_aux_targets(None, prior, torch.tensor([1, 0]))
    assert torch.equal(out.derived, torch.tensor([[0.0, 1.0, 0.25], [1.0, 0.0, 0.5]]))
    assert torch.isnan(out.annotated).all()  # no AU columns: every row has weak targets only


# ---------------------------------------------------------------- evidence mapping
def test_prior_evidence_hand_computed():
    prior = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 0.0]])
    au = torch.tensor([[0.6, 0.8, 0.0]])  # |a| = 1, M a = [0.6, 0.8]
    out = prior_evidence(au, prior, tau=2.0)
    torch.testing.assert_close(out, torch.tensor([[1.2, 1.6]]))
    # kappa softens the norm: sqrt(1 + 0.75^2) = 1.25
    out = prior_evidence(au, prior, tau=2.0, kappa=0.75)
    torch.testing.assert_close(out, torch.tensor([[0.96, 1.28]]))


def test_prior_evidence_ignores_intensity_without_kappa_and_silences_idle_faces_with_it():
    prior = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 0.0]])
    au = torch.tensor([[0.6, 0.8, 0.0]])
    torch.testing.assert_close(
        prior_evidence(au * 0.1, prior, tau=3.0), prior_evidence(au, prior, tau=3.0)
    )
    idle = prior_evidence(torch.zeros(1, 3), prior, tau=3.0, kappa=0.5)
    torch.testing.assert_close(idle, torch.zeros(1, 2))


# ---------------------------------------------------------------- JS uncertainty
def test_js_uncertainty_hand_computed():
    # q = [0.5, 0.5], y = 0: mid = [0.75, 0.25];
    # KL(q||mid) = 0.5 ln(2/3) + 0.5 ln 2, KL(e||mid) = ln(4/3); JS = half their sum.
    js = 0.5 * (0.5 * math.log(2 / 3) + 0.5 * math.log(2) + math.log(4 / 3))
    out = js_uncertainty(torch.tensor([[0.5, 0.5]]), torch.tensor([0]))
    torch.testing.assert_close(out, torch.tensor([js / math.log(2)]))
    assert out.item() == pytest.approx(0.311278, abs=1e-5)


def test_js_uncertainty_extremes():
    q = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.2, 0.3, 0.5]])
    out = js_uncertainty(q, torch.tensor([0, 0, 2]))
    assert out[0].item() == pytest.approx(0.0, abs=1e-6)  # q agrees with the label
    assert out[1].item() == pytest.approx(1.0, abs=1e-6)  # q gives the label nothing
    assert 0.0 < out[2].item() < 1.0


# ---------------------------------------------------------------- mutual learning
def test_mutual_learning_kl_hand_computed():
    z1 = torch.log(torch.tensor([[0.5, 0.5]]))
    z2 = torch.log(torch.tensor([[0.9, 0.1]]))
    kl_21 = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)  # KL(p2 || p1)
    kl_12 = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)  # KL(p1 || p2)
    out = mutual_learning_kl([z1, z2])
    assert out.item() == pytest.approx((kl_21 + kl_12) / 2, abs=1e-6)
    assert mutual_learning_kl([z1, z1.clone()]).item() == pytest.approx(0.0, abs=1e-7)


def test_mutual_learning_kl_treats_the_peer_as_a_fixed_target():
    z1 = torch.log(torch.tensor([[0.5, 0.5]])).requires_grad_()
    z2 = torch.log(torch.tensor([[0.9, 0.1]])).requires_grad_()
    mutual_learning_kl([z1, z2]).backward()
    # d/dz1 of KL(p2 || p1) / 2 is (p1 - p2) / 2: only the student side carries a gradient.
    torch.testing.assert_close(z1.grad, torch.tensor([[-0.2, 0.2]]))
    torch.testing.assert_close(z2.grad, torch.tensor([[0.2, -0.2]]))
    with pytest.raises(ValueError, match="at least 2"):
        mutual_learning_kl([z1])


# ---------------------------------------------------------------- TRN transfer loss
def test_transfer_loss_hand_computed():
    student = torch.zeros(2, 2)  # p = [0.5, 0.5] at any temperature
    teacher = torch.log(torch.tensor([[0.9, 0.1], [0.9, 0.1]]))
    labels = torch.tensor([0, 0])
    ce = math.log(2.0)
    # T = 2 softens the teacher to [0.75, 0.25]; KL to uniform times T^2 = 4.
    kd = 4 * (0.75 * math.log(1.5) + 0.25 * math.log(0.5))
    out = transfer_loss(student, teacher, labels, torch.tensor([0.0, 1.0]), temperature=2.0)
    assert out.item() == pytest.approx((ce + kd) / 2, abs=1e-6)
    out = transfer_loss(student, teacher, labels, torch.tensor([0.5, 0.5]), temperature=1.0)
    kd1 = 0.9 * math.log(1.8) + 0.1 * math.log(0.2)
    assert out.item() == pytest.approx(0.5 * ce + 0.5 * kd1, abs=1e-6)


def test_transfer_loss_does_not_train_the_teacher():
    student = torch.zeros(1, 3, requires_grad=True)
    teacher = torch.tensor([[2.0, 0.0, -1.0]], requires_grad=True)
    transfer_loss(student, teacher, torch.tensor([1]), torch.tensor([0.7])).backward()
    assert teacher.grad is None
    assert student.grad is not None and student.grad.abs().sum() > 0


# ---------------------------------------------------------------- ramp
def test_sigmoid_rampup_values():
    assert sigmoid_rampup(0.0, 1.0) == pytest.approx(math.exp(-5.0))
    assert sigmoid_rampup(0.5, 1.0) == pytest.approx(math.exp(-1.25))
    assert sigmoid_rampup(1.0, 1.0) == 1.0
    assert sigmoid_rampup(3.0, 1.0) == 1.0
    assert sigmoid_rampup(-1.0, 1.0) == pytest.approx(math.exp(-5.0))
    values = [sigmoid_rampup(t, 10) for t in range(11)]
    assert values == sorted(values)


# ---------------------------------------------------------------- geometry and options
def test_region_stage_and_slices():
    assert choose_patch_stage([2, 4, 8, 16, 32], image_size=48) == 2  # ResNet layer2, 6x6
    assert choose_patch_stage([2, 4, 8, 16, 32], image_size=224) == 3  # layer3, 14x14
    assert choose_patch_stage([2, 4, 8, 16, 32], image_size=32) == 1  # layer1, 8x8
    assert choose_patch_stage([2, 4, 8, 16, 32], image_size=8) == 0
    rows, cols = region_slices(REGIONS["mouth"], 6, 6)
    assert (rows.start, rows.stop, cols.start, cols.stop) == (3, 6, 0, 6)
    rows, cols = region_slices(REGIONS["upper"], 6, 6)
    assert (rows.start, rows.stop) == (0, 4)
    for region in REGIONS.values():  # never empty, even on a 1x1 map
        rows, cols = region_slices(region, 1, 1)
        assert rows.stop - rows.start == 1 and cols.stop - cols.start == 1


def test_options_report_every_problem():
    with pytest.raises(ConfigError, match="method.options.tau_x: unknown key"):
        options_from_dict(POIOptions, {"tau_x": 1.0})
    with pytest.raises(ConfigError) as info:
        options_from_dict(
            POIOptions, {"temperature": 0.0, "quality_blend": 2.0, "trn_backbone": "twin"}
        )
    message = str(info.value)
    assert "method.options.temperature: expected a number > 0, got 0.0" in message
    assert "method.options.quality_blend: expected a number in [0, 1], got 2.0" in message
    assert (
        "method.options.trn_backbone: expected one of 'shared', 'separate', got 'twin'" in message
    )


# ---------------------------------------------------------------- the method
def _context(*, size: int = 32, n: int = 16, au_targets=None, **options) -> MethodContext:
    return MethodContext(
        classes=CANONICAL_CLASSES,
        num_samples=n,
        class_counts=(2,) * 8,
        in_chans=1,
        image_size=size,
        epochs=4,
        steps_per_epoch=2,
        backbone=BackboneSpec(name="test_resnet"),
        au_targets=au_targets,
        options=options,
    )


def _batch(n: int = 8, size: int = 32, seed: int = 0) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 8
    return Batch(
        images=torch.randn(n, 1, size, size, generator=gen),
        labels=labels,
        index=torch.arange(n),
        given_labels=labels,
    )


@pytest.mark.parametrize(
    ("size", "options"),
    [
        (32, {}),
        (48, {"uncertainty": "learned"}),
        (48, {"trn_backbone": "separate"}),
        (48, {"trn_backbone": "separate", "whole_from_last": True}),
    ],
)
def test_forward_backward_reaches_every_parameter(size, options):
    torch.manual_seed(0)
    method = create_method("poi", _context(size=size, **options))
    method.train()
    method.on_epoch_start(1)
    out = method(_batch(size=size))
    for key in ("loss", "logits", "pin_ce", "region_ce", "dml", "au", "trn", "uncertainty"):
        assert key in out
    assert out["logits"].shape == (8, 8)
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    missing = [n for n, p in method.named_parameters() if p.grad is None]
    assert missing == []


def test_au_targets_replace_the_weak_targets_where_present():
    torch.manual_seed(0)
    au = np.full((16, len(AU_IDS)), np.nan, dtype=np.float32)
    au[:4] = 1.0  # the first four samples have every AU fully active
    method = create_method("poi", _context(au_targets=au))
    method.eval()  # fixed BatchNorm so the two passes see identical activations
    batch = _batch()
    with torch.no_grad():
        annotated = method(batch)["au"]
        method.au_targets = None
        weak_only = method(batch)["au"]
    assert annotated.item() != pytest.approx(weak_only.item())
    with pytest.raises(ConfigError, match="au_targets has shape"):
        create_method("poi", _context(au_targets=au[:3]))


def test_transfer_ramps_with_steps_and_state_round_trips():
    torch.manual_seed(0)
    method = create_method("poi", _context())  # epochs=4 -> ramp over 1 epoch of 2 steps
    method.train()
    method.on_epoch_start(0)
    assert method.transfer_weight() == pytest.approx(math.exp(-5.0))
    method(_batch())
    assert method.transfer_weight() == pytest.approx(math.exp(-1.25))
    state = method.extra_state()
    assert state == {"step": 1}
    restored = create_method("poi", _context())
    restored.load_extra_state(torch.load(_save(state), weights_only=True))
    assert restored.transfer_weight() == method.transfer_weight()
    restored.on_epoch_start(3)
    assert restored.extra_state() == {"step": 6}
    assert restored.transfer_weight() == 1.0


def test_pin_parameters_keep_their_checkpoint_keys():
    """Model weights saved before PIN moved to its own module still load: same keys."""
    method = create_method("poi", _context())
    per_branch = [
        "conv.0.weight",
        "conv.1.weight",
        "conv.1.bias",
        "conv.1.running_mean",
        "conv.1.running_var",
        "conv.1.num_batches_tracked",
        "au_head.weight",
        "au_head.bias",
        "residual.weight",
        "residual.bias",
        "gate.weight",
        "gate.bias",
        "log_tau",
    ]
    keys = {key for key in method.state_dict() if key.startswith("regions.")}
    assert keys == {f"regions.{name}.{key}" for name in REGIONS for key in per_branch}
    assert list(REGIONS) == ["upper", "nose", "mouth", "whole"]


def _save(state: dict) -> object:
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer


def test_predict_and_readout_contract():
    torch.manual_seed(0)
    method = create_method("poi", _context())
    method.eval()
    batch = _batch()
    outputs = {k: v.numpy() for k, v in method.predict(batch.images).items()}
    again = method.predict(batch.images)
    np.testing.assert_array_equal(outputs["pin_probs"], again["pin_probs"].numpy())
    given = batch.given_labels.numpy()
    scores = method.readout(outputs, given)
    n = len(given)
    assert scores["pred_probs"].shape == (n, 8) and scores["soft_label"].shape == (n, 8)
    np.testing.assert_allclose(scores["soft_label"].sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(scores["region_weights"].sum(axis=1), 1.0, atol=1e-5)
    assert scores["region_weights"].shape == (n, len(REGIONS))
    assert scores["au"].shape == (n, len(AU_IDS))
    for key in ("uncertainty", "label_quality_signal", "pin_given_prob", "trn_given_prob"):
        assert scores[key].shape == (n,)
        assert ((scores[key] >= 0) & (scores[key] <= 1)).all()
    assert set(method.signal_columns) <= set(scores)


def test_readout_hand_made_outputs():
    method = create_method("poi", _context(quality_blend=0.25))
    q = np.array([[0.5, 0.5] + [0.0] * 6, [0.0, 0.9, 0.1] + [0.0] * 5], dtype=np.float32)
    p = np.array([[0.7, 0.3] + [0.0] * 6, [0.2, 0.8] + [0.0] * 6], dtype=np.float32)
    outputs = {
        "probs": p,
        "pin_probs": q,
        "region_weights": np.full((2, 4), 0.25, dtype=np.float32),
        "au": np.zeros((2, len(AU_IDS)), dtype=np.float32),
    }
    scores = method.readout(outputs, np.array([0, 2]))
    np.testing.assert_allclose(scores["pin_given_prob"], [0.5, 0.1])
    np.testing.assert_allclose(scores["trn_given_prob"], [0.7, 0.0])
    np.testing.assert_allclose(scores["label_quality_signal"], [0.55, 0.075], rtol=1e-6)
    assert scores["suspect"].tolist() == [False, True]  # argmax ties resolve to the first class
    assert scores["pin_predicted"].tolist() == [0, 1]
    assert scores["uncertainty"][0] == pytest.approx(0.311278, abs=1e-5)
    assert scores["uncertainty"][1] > scores["uncertainty"][0]
    np.testing.assert_array_equal(scores["soft_label"], q)
    np.testing.assert_array_equal(scores["pred_probs"], p)
