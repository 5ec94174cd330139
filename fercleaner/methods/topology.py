"""Label topology: kNN graphs with Gaussian edge weights, neighbour aggregation, neighbour KL.

UAPL (after LDL-ALSG, Chen et al. CVPR 2020) says a face should have an expression
distribution like its neighbours in related label spaces (AU, valence-arousal, the
embedding). These pure functions build those graphs and the terms computed on them.
kNN search is exact, by blocked `torch.cdist`, so memory stays bounded (about
`max_block_elements` floats per block) on 100k samples and it runs on whatever device the
points live on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: Upper bound on the (block rows x N) distance matrix held at once (128 MiB of float32).
MAX_BLOCK_ELEMENTS = 2**25


@dataclass(frozen=True)
class KnnGraph:
    """A directed kNN graph over N points; rows with no valid neighbours have zero weights."""

    indices: torch.Tensor
    """(N, K) long: neighbour rows of each point (self excluded); 0 where the weight is 0."""
    weights: torch.Tensor
    """(N, K) float: exp(-d^2 / sigma^2) edge weights in (0, 1]; 0 for padding."""
    sigma: float
    """The bandwidth used: median distance over all kept edges."""


def find_knn(
    points: torch.Tensor,
    *,
    k: int,
    valid: torch.Tensor | None = None,
    max_block_elements: int = MAX_BLOCK_ELEMENTS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The k nearest other valid points of every point, by Euclidean distance.

    Args:
        points: (N, D) float.
        k: neighbours per point; must be < number of valid points.
        valid: (N,) bool; invalid points are never neighbours (their own rows are
            still computed, against valid points only). None = all valid.
        max_block_elements: cap on the size of one block of the distance matrix.

    Returns:
        indices (N, k) long and squared distances (N, k) float, nearest first.
    """
    n = points.shape[0]
    points = points.float()
    if valid is None:
        valid = torch.ones(n, dtype=torch.bool, device=points.device)
    block = max(1, min(n, max_block_elements // max(n, 1)))
    all_idx, all_d2 = [], []
    invalid_cols = ~valid
    for start in range(0, n, block):
        stop = min(n, start + block)
        d2 = torch.cdist(points[start:stop], points).square_()  # (b, N)
        d2[:, invalid_cols] = float("inf")
        rows = torch.arange(start, stop, device=points.device)
        d2[rows - start, rows] = float("inf")  # a point is not its own neighbour
        top_d2, top_idx = torch.topk(d2, k, dim=1, largest=False)
        all_idx.append(top_idx)
        all_d2.append(top_d2)
    return torch.cat(all_idx), torch.cat(all_d2)


def get_gaussian_weights(sq_dists: torch.Tensor, *, sigma: float | None = None) -> torch.Tensor:
    """Edge weights exp(-d^2 / sigma^2); sigma defaults to the median of sqrt(sq_dists).

    Non-finite distances (padding) get weight 0. A zero median (duplicate points) falls
    back to sigma = 1 so the weights stay finite.
    """
    if sigma is None:
        sigma = get_median_sigma(sq_dists)
    weights = torch.exp(-sq_dists / (sigma * sigma))
    return torch.where(torch.isfinite(sq_dists), weights, torch.zeros_like(weights))


def get_median_sigma(sq_dists: torch.Tensor) -> float:
    """Median edge length over the finite entries of (N, K) squared distances (1.0 if none)."""
    finite = sq_dists[torch.isfinite(sq_dists)]
    if finite.numel() == 0:
        return 1.0
    sigma = float(finite.clamp_min(0).sqrt().median())
    return sigma if sigma > 0 else 1.0


def build_knn_graph(points: torch.Tensor, *, k: int, valid: torch.Tensor | None = None) -> KnnGraph:
    """kNN graph with Gaussian weights over `points` (N, D); invalid rows get zero weights.

    `k` is clipped to (valid points - 1); with fewer than 2 valid points the graph is empty.
    """
    n = points.shape[0]
    if valid is None:
        valid = torch.ones(n, dtype=torch.bool, device=points.device)
    n_valid = int(valid.sum())
    k_eff = min(k, n_valid - 1)
    if k_eff < 1:
        zeros = torch.zeros(n, max(k, 1), device=points.device)
        return KnnGraph(zeros.long(), zeros, 1.0)
    indices, sq_dists = find_knn(points, k=k_eff, valid=valid)
    sq_dists = sq_dists.masked_fill(~valid[:, None], float("inf"))
    sigma = get_median_sigma(sq_dists)
    weights = get_gaussian_weights(sq_dists, sigma=sigma)
    indices = indices.masked_fill(weights == 0, 0)
    if k_eff < k:  # pad to the requested width so graphs of every space stack
        pad = k - k_eff
        indices = torch.nn.functional.pad(indices, (0, pad))
        weights = torch.nn.functional.pad(weights, (0, pad))
    return KnnGraph(indices, weights, sigma)


def normalise_weights(weights: torch.Tensor) -> torch.Tensor:
    """Row-normalise (N, K) edge weights to sum 1; all-zero rows stay zero."""
    total = weights.sum(dim=-1, keepdim=True)
    return weights / total.clamp_min(1e-12)


def aggregate_neighbours(
    values: torch.Tensor, indices: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Weighted mean of neighbours' (N, C) `values` with row-normalised weights -> (N, C).

    Rows without neighbours (all-zero weights) come back as zeros; the caller decides the
    fallback (UAPL uses the sample's own prediction).
    """
    w = normalise_weights(weights)  # (N, K)
    return torch.einsum("nk,nkc->nc", w, values[indices])


def neighbour_kl(
    log_probs: torch.Tensor, neighbour_probs: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Per-sample sum_j w_ij KL(p_j || p_i) with row-normalised weights.

    Args:
        log_probs: (B, C) log p_i of the samples being trained.
        neighbour_probs: (B, K, C) p_j of their neighbours (treated as fixed targets).
        weights: (B, K) raw edge weights; normalised per row here so the term does not
            scale with K; rows with no neighbours contribute 0.

    Returns:
        (B,) KL sums in nats.
    """
    target = neighbour_probs.clamp_min(1e-12)
    kl = (neighbour_probs * (target.log() - log_probs[:, None, :])).sum(dim=-1)  # (B, K)
    return (normalise_weights(weights) * kl).sum(dim=-1)
