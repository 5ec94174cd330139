"""UAPL: hand-computed values for its pure parts, forward/backward, readout, checkpoint state."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from fercleaner.classes import CANONICAL_CLASSES
from fercleaner.errors import CheckpointError, ConfigError
from fercleaner.methods.base import BackboneSpec, Batch, MethodContext
from fercleaner.methods.losses import sigmoid_rampup
from fercleaner.methods.patches import (
    choose_patch_stage,
    crop_regions,
    gate_contrast_margin,
    gated_pool,
    get_region_certainty,
    region_certainty_losses,
)
from fercleaner.methods.registry import create_method
from fercleaner.methods.topology import (
    aggregate_neighbours,
    build_knn_graph,
    find_knn,
    neighbour_kl,
)
from fercleaner.methods.uapl import REGION_NAMES, UAPL
from fercleaner.priors import AU_IDS

CLASSES = CANONICAL_CLASSES[:7]


def _context(
    *, n: int = 24, size: int = 32, epochs: int = 2, backbone: str = "test_resnet", **options
) -> MethodContext:
    """A context on timm's tiny `test_resnet` (fast); resnet18 where the stage layout matters."""
    return MethodContext(
        classes=CLASSES,
        num_samples=n,
        class_counts=(n // 7,) * 7,
        in_chans=1,
        image_size=size,
        epochs=epochs,
        steps_per_epoch=2,
        backbone=BackboneSpec(name=backbone),
        options=options,
    )


def _batches(n: int, size: int, *, seed: int = 0) -> list[Batch]:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 1, size, size, generator=gen)
    labels = torch.arange(n) % len(CLASSES)
    half = n // 2
    return [
        Batch(images=images[sl], labels=labels[sl], index=torch.arange(n)[sl])
        for sl in (slice(0, half), slice(half, n))
    ]


def _train_epochs(method: UAPL, batches: list[Batch], epochs: int) -> dict[str, torch.Tensor]:
    opt = torch.optim.SGD(method.parameters(), lr=0.01)
    out: dict[str, torch.Tensor] = {}
    for epoch in range(epochs):
        method.on_epoch_start(epoch)
        method.train()
        for batch in batches:
            out = method(batch)
            opt.zero_grad()
            out["loss"].backward()
            opt.step()
        method.on_epoch_end(epoch)
    return out


# ---- kNN graph ---------------------------------------------------------------------------


def test_knn_graph_weights_match_hand_computation():
    points = torch.tensor([[0.0], [1.0], [3.0], [6.0], [10.0]])
    graph = build_knn_graph(points, k=1)
    # nearest other point: 0->1 (d=1), 1->0 (1), 3->1 (2), 6->3 (3), 10->6 (4); median d = 2
    assert graph.indices[:, 0].tolist() == [1, 0, 1, 2, 3]
    assert graph.sigma == pytest.approx(2.0)
    expected = torch.exp(-torch.tensor([1.0, 1.0, 4.0, 9.0, 16.0]) / 4.0)
    torch.testing.assert_close(graph.weights[:, 0], expected)


def test_knn_excludes_self_and_invalid_points_and_blocks_agree():
    gen = torch.Generator().manual_seed(1)
    points = torch.randn(50, 3, generator=gen)
    points[7] = points[3]  # a duplicate must still not be its own neighbour
    valid = torch.ones(50, dtype=torch.bool)
    valid[10] = False
    idx_full, d2_full = find_knn(points, k=4, valid=valid)
    idx_block, d2_block = find_knn(points, k=4, valid=valid, max_block_elements=60)
    assert torch.equal(idx_full, idx_block)
    torch.testing.assert_close(d2_full, d2_block)
    assert not (idx_full == torch.arange(50)[:, None]).any()
    assert not (idx_full == 10).any()
    assert idx_full[3, 0].item() == 7 and d2_full[3, 0].item() == pytest.approx(0.0, abs=1e-5)


def test_knn_graph_gives_invalid_rows_no_edges_and_pads_small_sets():
    points = torch.tensor([[0.0], [1.0], [2.0]])
    valid = torch.tensor([True, True, False])
    graph = build_knn_graph(points, k=4, valid=valid)
    assert graph.weights.shape == (3, 4)
    assert graph.weights[2].sum() == 0  # invalid row
    assert (graph.weights[:2, 0] > 0).all() and (graph.weights[:, 1:] == 0).all()
    assert graph.indices[0, 0] == 1 and graph.indices[1, 0] == 0


def test_aggregate_neighbours_is_the_normalised_weighted_mean():
    values = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    indices = torch.tensor([[1, 2], [0, 2], [0, 1]])
    weights = torch.tensor([[1.0, 3.0], [0.0, 0.0], [2.0, 2.0]])
    agg = aggregate_neighbours(values, indices, weights)
    torch.testing.assert_close(agg[0], torch.tensor([0.375, 0.625]))
    torch.testing.assert_close(agg[1], torch.zeros(2))  # no neighbours -> caller's fallback
    torch.testing.assert_close(agg[2], torch.tensor([0.5, 0.5]))


# ---- losses and schedules ----------------------------------------------------------------


def test_neighbour_kl_matches_hand_computation():
    log_p = torch.log(torch.tensor([[0.5, 0.5]]))
    neighbours = torch.tensor([[[1.0, 0.0], [0.5, 0.5]]])
    weights = torch.tensor([[1.0, 3.0]])  # normalised to 0.25 / 0.75
    # KL([1,0] || [.5,.5]) = ln 2, KL(p || p) = 0
    kl = neighbour_kl(log_p, neighbours, weights)
    assert kl.item() == pytest.approx(0.25 * math.log(2.0), rel=1e-5)
    assert neighbour_kl(log_p, neighbours, torch.zeros(1, 2)).item() == 0.0


def test_sigmoid_ramp_schedule():
    assert sigmoid_rampup(0, 4) == pytest.approx(math.exp(-5.0))
    assert sigmoid_rampup(2, 4) == pytest.approx(math.exp(-1.25))
    assert sigmoid_rampup(4, 4) == 1.0
    assert sigmoid_rampup(9, 4) == 1.0
    assert sigmoid_rampup(0, 0) == 1.0
    values = [sigmoid_rampup(e, 6) for e in range(7)]
    assert values == sorted(values)


def test_gated_pool_is_the_gate_weighted_mean():
    features = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    torch.testing.assert_close(
        gated_pool(features, torch.tensor([[0.75, 0.25]])), torch.tensor([[0.75, 0.25]])
    )
    # only relative gates matter
    torch.testing.assert_close(
        gated_pool(features, torch.tensor([[0.2, 0.2]])), torch.tensor([[0.5, 0.5]])
    )


def test_gate_contrast_margin_matches_hand_computation():
    gates = torch.tensor([[0.9, 0.7, 0.2, 0.1], [0.5, 0.5, 0.5, 0.5]])
    # row 0: top half 0.8, rest 0.15, gap 0.65; row 1: gap 0
    assert gate_contrast_margin(gates, margin=0.5).item() == pytest.approx((0.0 + 0.5) / 2)
    assert gate_contrast_margin(gates, margin=1.0).item() == pytest.approx((0.35 + 1.0) / 2)


def test_region_certainty_and_gate_losses_match_hand_computation():
    # p = [.5, .5, 0, 0]: H = ln 2, certainty = 1 - ln 2 / ln 4 = 0.5; uniform: 0; sure: ~1
    logits = torch.tensor([[[0.0, 0.0, -1e4, -1e4], [0.0, 0.0, 0.0, 0.0], [50.0, 0, 0, 0]]])
    certainty = get_region_certainty(logits)
    torch.testing.assert_close(certainty, torch.tensor([[0.5, 0.0, 1.0]]), atol=1e-5, rtol=0)
    uniform = torch.zeros(2, 3, 4)
    region_ce, gate_bce = region_certainty_losses(
        uniform, torch.full((2, 3), 0.5), torch.tensor([1, 2])
    )
    assert region_ce.item() == pytest.approx(math.log(4.0))  # uniform over 4 classes
    # target certainty 0, gate 0.5: BCE = -ln(1 - 0.5) = ln 2
    assert gate_bce.item() == pytest.approx(math.log(2.0), rel=1e-5)
    # targets are relative to the most certain region: certainties [0.5, 1] -> [0.5, 1];
    # gates equal to them leave the Bernoulli entropies H(0.5) = ln 2 and H(1) = 0
    two = logits[:, [0, 2]]
    _, gate_bce = region_certainty_losses(two, torch.tensor([[0.5, 1.0]]), torch.tensor([0]))
    assert gate_bce.item() == pytest.approx(math.log(2.0) / 2, rel=1e-4)


def test_crop_regions_reproduces_map_and_quadrant():
    fmap = torch.arange(16.0).reshape(1, 1, 4, 4)
    whole = crop_regions(fmap, torch.tensor([[0.0, 0.0, 1.0, 1.0]]), size=4)
    torch.testing.assert_close(whole[0, 0], fmap[0])
    quadrant = crop_regions(fmap, torch.tensor([[[0.5, 0.0, 1.0, 0.5]]]), size=2)
    torch.testing.assert_close(quadrant[0, 0, 0], fmap[0, 0, :2, 2:])


def test_choose_patch_stage_picks_deepest_non_final_map_of_six_pixels():
    reductions = [2, 4, 8, 16, 32]
    assert choose_patch_stage(reductions, image_size=48) == 2  # 6x6
    assert choose_patch_stage(reductions, image_size=32) == 1  # 8x8 (4x4 is too small)
    assert choose_patch_stage(reductions, image_size=112) == 3  # 7x7
    assert choose_patch_stage(reductions, image_size=224) == 3  # 14x14, never the last


# ---- the method ------------------------------------------------------------------------


def test_unknown_or_bad_options_are_reported_together():
    with pytest.raises(ConfigError, match="method.options.kk: unknown key"):
        create_method("uapl", _context(kk=3))
    with pytest.raises(ConfigError, match=r"k: expected an integer >= 1, got 0(.|\n)*readout_self"):
        create_method("uapl", _context(k=0, readout_self_weight=2.0))
    with pytest.raises(
        ConfigError, match=r"k: expected an integer >= 1, got '8'(.|\n)*margin: exp"
    ):
        create_method("uapl", _context(k="8", margin=True))


@pytest.mark.parametrize("size", [32, 48])
def test_forward_backward_reaches_every_parameter(size):
    torch.manual_seed(0)
    method = create_method("uapl", _context(n=16, size=size, backbone="resnet18"))
    assert isinstance(method, UAPL)
    assert method.patch_stage == {32: 1, 48: 2}[size]
    batches = _batches(16, size)
    method.on_epoch_start(0)
    method.train()
    out = method(batches[0])
    assert out["logits"].shape == (8, len(CLASSES))
    assert torch.isfinite(out["loss"])
    assert out["guidance"].item() == 0.0  # no graph before the first epoch ends
    out["loss"].backward()
    missing = [name for name, p in method.named_parameters() if p.grad is None]
    assert missing == []


def test_guidance_switches_on_after_first_epoch():
    torch.manual_seed(0)
    method = create_method("uapl", _context(n=24, size=32, epochs=3, k=3))
    out = _train_epochs(method, _batches(24, 32), epochs=2)
    assert method.topology.graph_ready and bool(method.topology.state["graph_ready"])
    assert method.lambda_now == pytest.approx(1.0)  # ramp_epochs = 3 // 2 = 1
    assert out["guidance"].item() > 0
    weights = method.topology.state["graph_weights"]
    assert weights.shape == (3, 24, 3) and (weights > 0).all() and (weights <= 1).all()


def test_extra_state_round_trip_restores_the_guidance_term():
    torch.manual_seed(0)
    ctx = _context(n=24, size=32, epochs=3, k=3)
    method = create_method("uapl", ctx)
    batches = _batches(24, 32)
    _train_epochs(method, batches, epochs=2)
    saved = method.extra_state()
    restored = create_method("uapl", ctx)
    restored.load_state_dict(method.state_dict())
    restored.load_extra_state(saved)
    # the keys old checkpoints hold
    assert set(saved) == {"topology", "epoch", "lambda_now"}
    assert set(saved["topology"]) == {
        "embedding",
        "au",
        "va",
        "probs",
        "seen",
        "written",
        "graph_indices",
        "graph_weights",
        "targets",
        "graph_ready",
    }
    for key, value in method.topology.state.items():
        assert torch.equal(restored.topology.state[key], value), key
    assert restored.lambda_now == method.lambda_now
    assert restored.topology.graph_ready
    method.eval()
    restored.eval()
    assert method(batches[0])["guidance"].item() == pytest.approx(
        restored(batches[0])["guidance"].item()
    )
    other = create_method("uapl", _context(n=30, size=32, epochs=3, k=3))
    with pytest.raises(CheckpointError, match="another dataset"):
        other.load_extra_state(saved)


def test_eval_forward_does_not_touch_the_buffers():
    method = create_method("uapl", _context(n=16, size=32))
    method.eval()
    method(_batches(16, 32)[0])
    assert not method.topology.state["seen"].any()


def _equilateral_outputs() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Two far-apart clusters of three equidistant points in every space."""
    tri = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3) / 2]])
    points = np.concatenate([tri, tri + [100.0, 0.0]]).astype(np.float32)  # (6, 2)
    probs = np.zeros((6, len(CLASSES)), dtype=np.float32)
    probs[[0, 1], :2] = [0.9, 0.1]
    probs[2, :2] = [0.1, 0.9]  # memorised a wrong label 1; its neighbours say class 0
    probs[3:, 2] = 1.0
    outputs = {
        "probs": probs,
        "embedding": np.pad(points, ((0, 0), (0, 6))),
        "au": np.pad(points, ((0, 0), (0, 16))),
        "va": points,
        "gates": np.tile(np.linspace(0.2, 0.8, len(REGION_NAMES), dtype=np.float32), (6, 1)),
    }
    return outputs, np.array([0, 0, 1, 2, 2, 2])


def test_readout_mixes_own_and_neighbour_distributions():
    method = create_method("uapl", _context(n=6, size=32, k=2))
    outputs, given = _equilateral_outputs()
    result = method.readout(outputs, given)
    for key in ("pred_probs", "soft_label", "uncertainty", "label_quality_signal"):
        assert len(result[key]) == 6
    np.testing.assert_allclose(result["soft_label"].sum(axis=1), 1.0, rtol=1e-5)
    # sample 2: own [.1, .9], neighbours (equal weights, every space) [.9, .1] -> q = [.5, .5]
    np.testing.assert_allclose(result["soft_label"][2, :2], [0.5, 0.5], atol=1e-5)
    assert result["label_quality_signal"][2] == pytest.approx(0.5, abs=1e-5)
    assert result["support"][2] < outputs["probs"][2, 1]
    assert result["entropy"][2] == pytest.approx(math.log(2) / math.log(7), rel=1e-4)
    # sample 0: own [.9, .1], neighbours 1 and 2 -> [.5, .5]; q = [.7, .3]
    np.testing.assert_allclose(result["soft_label"][0, :2], [0.7, 0.3], atol=1e-5)
    assert result["occlusion"][0] == pytest.approx(0.5, abs=1e-5)
    assert result["gate_left_eye"][0] == pytest.approx(0.2)
    assert set(method.signal_columns) <= set(result)


def test_readout_uses_annotated_au_when_given_the_rows():
    outputs, given = _equilateral_outputs()
    au = np.repeat(outputs["au"][:, :1], len(AU_IDS), axis=1)
    au[2] = au[4]  # annotated AUs put sample 2 among samples 3-5, which predict class 2
    ctx = dataclasses.replace(_context(n=6, size=32, k=2), au_targets=au)
    method = create_method("uapl", ctx)
    without = method.readout(outputs, given)["soft_label"]
    with_rows = method.readout({**outputs, "index": np.arange(6)}, given)["soft_label"]
    assert without[2, 2] == pytest.approx(0.0, abs=1e-6)
    assert with_rows[2, 2] > 0.05


def test_sync_buffers_under_a_single_process_group(tmp_path):
    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    try:
        torch.manual_seed(0)
        method = create_method("uapl", _context(n=16, size=32, k=3))
        batches = _batches(16, 32)
        method.on_epoch_start(0)
        method.train()
        method(batches[0])  # only rows 0..7 written
        before = method.topology.state["probs"].clone()
        method.on_epoch_end(0)
        torch.testing.assert_close(method.topology.state["probs"], before)
        assert (
            method.topology.state["seen"][:8].all() and not method.topology.state["seen"][8:].any()
        )
        assert (method.topology.state["graph_weights"][:, 8:] == 0).all()
    finally:
        dist.destroy_process_group()


def _ddp_worker(rank: int, world_size: int, store_path: str, out_dir: str) -> None:
    """One gloo rank: train on its rows (rank 0: 0..7, rank 1: 4..11), end the epoch, save."""
    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"file://{store_path}", rank=rank, world_size=world_size
    )
    try:
        torch.manual_seed(0)
        method = create_method("uapl", _context(n=16, size=32, k=3))
        images = torch.randn(16, 1, 32, 32, generator=torch.Generator().manual_seed(0))
        index = torch.arange(8) + 4 * rank
        method.on_epoch_start(0)
        method.train()
        method(Batch(images=images[index], labels=index % len(CLASSES), index=index))
        before = {key: value.clone() for key, value in method.topology.state.items()}
        method.on_epoch_end(0)
        torch.save({"before": before, "after": method.topology.state}, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_sync_averages_rows_over_two_gloo_ranks(tmp_path):
    """Rows one rank wrote keep its values, rows both wrote are averaged, and both ranks
    build the same graphs from the same synced rows."""
    import torch.multiprocessing as mp

    args = (2, str(tmp_path / "store"), str(tmp_path))
    mp.spawn(_ddp_worker, args=args, nprocs=2, join=True)  # spawn: fork deadlocks torch threads
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    before0, before1 = ranks[0]["before"], ranks[1]["before"]
    for key in ("embedding", "au", "va", "probs"):
        after = ranks[0]["after"][key]
        torch.testing.assert_close(after[:4], before0[key][:4])
        torch.testing.assert_close(after[4:8], (before0[key][4:8] + before1[key][4:8]) / 2)
        torch.testing.assert_close(after[8:12], before1[key][8:12])
        assert (after[12:] == 0).all()
    assert not torch.equal(before0["probs"][4:8], before1["probs"][4:8])  # a real average
    for key, value in ranks[0]["after"].items():
        assert torch.equal(ranks[1]["after"][key], value), key
    assert ranks[0]["after"]["seen"].tolist() == [True] * 12 + [False] * 4


def _toy_faces(n: int, *, seed: int):
    """32 px toy faces: the class is a bright block at a class-specific column, drawn in
    both the eye band and the mouth band; half the faces have the eye band replaced by
    strong noise (an occluder); 10% of the given labels are flipped."""
    rng = np.random.default_rng(seed)
    clean = np.arange(n) % 4
    x = rng.normal(0, 0.3, size=(n, 1, 32, 32)).astype(np.float32)
    for i, c in enumerate(clean):
        x[i, 0, 7:12, 4 + 6 * c : 8 + 6 * c] += 2.0  # eye band
        x[i, 0, 22:27, 4 + 6 * c : 8 + 6 * c] += 2.0  # mouth band
    occluded = rng.random(n) < 0.5
    x[occluded, 0, 3:15, :] = rng.normal(0, 1.5, size=(int(occluded.sum()), 12, 32))
    given = clean.copy()
    flipped = np.zeros(n, dtype=bool)
    flipped[rng.permutation(n)[: n // 10]] = True
    given[flipped] = (clean[flipped] + rng.integers(1, 4, int(flipped.sum()))) % 4
    return torch.from_numpy(x), clean, given, occluded, flipped


@pytest.mark.slow
def test_toy_faces_train_find_flips_and_gate_down_occluded_eyes():
    torch.manual_seed(0)
    n, epochs = 96, 6
    x, clean, given, occluded, flipped = _toy_faces(n, seed=0)
    ctx = dataclasses.replace(
        _context(n=n, size=32, epochs=epochs),
        classes=CANONICAL_CLASSES[:4],
        class_counts=(n // 4,) * 4,
    )
    method = create_method("uapl", ctx)
    opt = torch.optim.AdamW(method.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    labels = torch.from_numpy(given)
    for epoch in range(epochs):
        method.on_epoch_start(epoch)
        method.train()
        for idx in torch.randperm(n, generator=gen).split(16):
            loss = method(Batch(images=x[idx], labels=labels[idx], index=idx))["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
        method.on_epoch_end(epoch)
    method.eval()
    outputs = {k: v.numpy() for k, v in method.predict(x).items()}
    result = method.readout(outputs, given)
    assert (result["pred_probs"].argmax(1) == clean).mean() > 0.6  # chance is 0.25
    quality = result["label_quality_signal"]
    assert quality[flipped].mean() < quality[~flipped].mean() - 0.15
    eyes = (result["gate_left_eye"] + result["gate_right_eye"]) / 2
    assert eyes[occluded].mean() < eyes[~occluded].mean() - 0.1
    assert result["occlusion"][occluded].mean() > result["occlusion"][~occluded].mean()
