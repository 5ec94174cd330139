"""A data-driven AU co-occurrence graph and the GCN that turns it into K AU classifiers.

Reconstruction of MTAC's "AU detection over a data-driven AU graph" (the paper's method
section is not public) after its authors' ULC-AG and ML-GCN (Chen et al., CVPR 2019):
the adjacency is the conditional co-occurrence P(AU_j | AU_i) of the AU targets,
binarised at a threshold so rare spurious pairs do not connect, and a 2-layer GCN over
learnable AU node embeddings outputs one classifier vector per AU, so AUs that fire
together share evidence.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def estimate_au_cooccurrence(
    au_targets: np.ndarray | None,
    *,
    prior_matrix: np.ndarray,
    class_counts: np.ndarray,
) -> np.ndarray:
    """Conditional co-occurrence P(AU_j | AU_i) as a (K, K) float32 matrix (row i conditions).

    Soft counts: co[i, j] = sum_n t_ni t_nj and occ[i] = sum_n t_ni over the fully
    annotated rows of `au_targets` (N, K; NaN = missing). When no row is fully
    annotated (or `au_targets` is None) the rows are the label priors instead: each
    class's prototype row of `prior_matrix` (C, K) weighted by its `class_counts` (C,),
    which is what the weakly supervised AU targets will be. An AU that never occurs
    gets an all-zero row. The diagonal is left as computed; `build_au_adjacency` drops it.
    """
    rows: np.ndarray | None = None
    if au_targets is not None:
        observed = ~np.isnan(au_targets).any(axis=1)
        if observed.any():
            rows = au_targets[observed].astype(np.float64)
            weights = np.ones(len(rows))
    if rows is None:
        rows = prior_matrix.astype(np.float64)
        weights = np.asarray(class_counts, dtype=np.float64)
    co = (rows * weights[:, None]).T @ rows  # (K, K)
    occ = (rows * weights[:, None]).sum(axis=0)  # (K,)
    with np.errstate(divide="ignore", invalid="ignore"):
        cond = np.where(occ[:, None] > 0, co / np.where(occ > 0, occ, 1.0)[:, None], 0.0)
    return cond.astype(np.float32)


def build_au_adjacency(cooccurrence: np.ndarray, *, threshold: float) -> torch.Tensor:
    """Row-normalised GCN propagation matrix D^-1 (A + I) from a co-occurrence matrix.

    A[i, j] = 1 where P(AU_j | AU_i) >= threshold (i != j). Row normalisation keeps each
    node's update an average of itself and its neighbours, so a hub AU (25, lips part)
    does not blow up the scale of its neighbours' classifiers.

    Returns:
        (K, K) float32 tensor whose rows sum to 1.
    """
    k = cooccurrence.shape[0]
    adjacency = (cooccurrence >= threshold).astype(np.float32)
    np.fill_diagonal(adjacency, 0.0)
    adjacency += np.eye(k, dtype=np.float32)
    adjacency /= adjacency.sum(axis=1, keepdims=True)
    return torch.from_numpy(adjacency)


class AUGraphClassifier(nn.Module):
    """2-layer GCN over learnable AU node embeddings; its K outputs are the AU classifiers.

    `forward(x)` with x (B, feature_dim) returns AU logits (B, K) = x @ W^T + b where
    W (K, feature_dim) = A LeakyReLU(A H0 W0) W1 and H0 are the node embeddings.
    """

    def __init__(
        self,
        adjacency: torch.Tensor,
        *,
        feature_dim: int,
        node_dim: int = 64,
        hidden_dim: int = 256,
    ) -> None:
        super().__init__()
        num_aus = adjacency.shape[0]
        self.register_buffer("adjacency", adjacency.float(), persistent=True)
        self.node_embeddings = nn.Parameter(torch.randn(num_aus, node_dim) * 0.1)
        self.layer1 = nn.Linear(node_dim, hidden_dim, bias=False)
        self.layer2 = nn.Linear(hidden_dim, feature_dim, bias=False)
        self.bias = nn.Parameter(torch.zeros(num_aus))
        self.activation = nn.LeakyReLU(0.2)

    def classifiers(self) -> torch.Tensor:
        """(K, feature_dim) classifier vectors after graph propagation."""
        h = self.activation(self.adjacency @ self.layer1(self.node_embeddings))  # (K, hidden)
        return self.adjacency @ self.layer2(h)  # (K, feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.classifiers()
        return x @ weights.to(x.dtype).t() + self.bias.to(x.dtype)  # (B, K)
