"""Per-sample training dynamics: cheap signals read off every training forward pass, per epoch.

For each sample and epoch: the probability of the given label, the max probability,
the margin (given-label probability minus the largest other one, as in AUM), and the
method's per-sample `confidence` when its forward output has one of shape (B,).
Averaged over epochs they form the `dynamics` scoring source (mislabeled samples are
learned late and stay low: Swayamdipta et al. 2020 "dataset cartography", Pleiss et
al. 2020 AUM).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from fercleaner.arrays import get_normalized_entropy

#: Per-epoch signals, in table column order.
DYNAMICS_SIGNALS = ("given_prob", "max_prob", "margin", "confidence")


class DynamicsAccumulator:
    """Collects per-sample signals on the device during an epoch; stores per-epoch means.

    Device-side accumulation avoids a host sync per step. Samples seen twice in an
    epoch (DDP padding) are averaged.
    """

    def __init__(self, epochs: int, num_samples: int, num_classes: int) -> None:
        self.epochs, self.n, self.c = epochs, num_samples, num_classes
        #: signal -> (epochs, N) float32, NaN where a sample was not trained on in an epoch.
        self.per_epoch = {
            k: np.full((epochs, num_samples), np.nan, np.float32) for k in DYNAMICS_SIGNALS
        }
        self.prob_sum = np.zeros((num_samples, num_classes), np.float64)  # over epochs
        self.prob_count = np.zeros(num_samples, np.float64)
        self._local: dict[str, torch.Tensor] | None = None

    def record(
        self,
        epoch: int,
        index: torch.Tensor,
        logits: torch.Tensor,
        given: torch.Tensor,
        confidence: torch.Tensor | None = None,
    ) -> None:
        """Add a batch: `index` (B,), `logits` (B, C), `given` (B,), optional `confidence` (B,)."""
        if self._local is None:
            device = logits.device
            self._local = {
                k: torch.zeros(self.n, device=device, dtype=torch.float64)
                for k in (*DYNAMICS_SIGNALS, "count", "conf_count")
            }
            self._local["probs"] = torch.zeros(self.n, self.c, device=device, dtype=torch.float64)
        probs = F.softmax(logits.float(), dim=1)  # (B,C)
        given_prob = probs.gather(1, given.view(-1, 1)).squeeze(1)  # (B,)
        others = probs.scatter(1, given.view(-1, 1), -1.0)
        local = self._local
        local["given_prob"].index_add_(0, index, given_prob.double())
        local["max_prob"].index_add_(0, index, probs.max(1).values.double())
        local["margin"].index_add_(0, index, (given_prob - others.max(1).values).double())
        local["count"].index_add_(0, index, torch.ones_like(given_prob, dtype=torch.float64))
        local["probs"].index_add_(0, index, probs.double())
        if isinstance(confidence, torch.Tensor) and confidence.shape == given_prob.shape:
            local["confidence"].index_add_(0, index, confidence.detach().double())
            local["conf_count"].index_add_(
                0, index, torch.ones_like(given_prob, dtype=torch.float64)
            )

    def finish_epoch(self, epoch: int, reduce: Callable[[np.ndarray], np.ndarray]) -> None:
        """Fold this epoch's sums into per-epoch means; `reduce` sums arrays over DDP ranks."""
        if self._local is None:
            return
        local = {k: v.cpu().numpy() for k, v in self._local.items()}
        self._local = None
        stacked = reduce(np.stack([local[k] for k in (*DYNAMICS_SIGNALS, "count", "conf_count")]))
        sums = dict(zip((*DYNAMICS_SIGNALS, "count", "conf_count"), stacked, strict=True))
        probs = reduce(local["probs"])
        with np.errstate(invalid="ignore", divide="ignore"):
            for key in ("given_prob", "max_prob", "margin"):
                self.per_epoch[key][epoch] = sums[key] / sums["count"]
            self.per_epoch["confidence"][epoch] = sums["confidence"] / sums["conf_count"]
            seen = sums["count"] > 0
            self.prob_sum[seen] += probs[seen] / sums["count"][seen, None]
        self.prob_count += seen

    def state(self) -> dict[str, torch.Tensor]:
        """Tensors for a checkpoint."""
        state = {k: torch.from_numpy(v.copy()) for k, v in self.per_epoch.items()}
        state["prob_sum"] = torch.from_numpy(self.prob_sum.copy())
        state["prob_count"] = torch.from_numpy(self.prob_count.copy())
        return state

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what `state` returned."""
        for key in DYNAMICS_SIGNALS:
            self.per_epoch[key] = state[key].numpy().copy()
        self.prob_sum = state["prob_sum"].numpy().copy()
        self.prob_count = state["prob_count"].numpy().copy()


def get_dynamics_table(
    dynamics: DynamicsAccumulator, *, sample_ids: np.ndarray, method: str, fold: int
) -> pd.DataFrame:
    """Long table, one row per (epoch, trained sample): method, fold, epoch, sample_id, signals."""
    epoch, row = np.nonzero(np.isfinite(dynamics.per_epoch["given_prob"]))
    table = pd.DataFrame(
        {
            "method": pd.Series([method] * len(row), dtype=str),
            "fold": np.full(len(row), fold, dtype=np.int32),
            "epoch": epoch.astype(np.int32),
            "sample_id": pd.Series(np.asarray(sample_ids)[row], dtype=str),
        }
    )
    for key in DYNAMICS_SIGNALS:
        table[key] = dynamics.per_epoch[key][epoch, row]
    return table


def get_dynamics_readout(
    dynamics: DynamicsAccumulator, *, fallback: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The `dynamics` scoring source, in the shape of a method readout.

    `label_quality_signal` = mean given-label probability over epochs (low = suspect);
    `pred_probs`/`soft_label` = mean training probabilities; `uncertainty` = normalised
    entropy of that mean. Method columns: `given_prob_mean`, `given_prob_std`
    (variability), `margin_mean` (AUM), `confidence_mean`. Samples never trained on
    (outside `data.splits`) take the four contract arrays from `fallback` (the method's
    own readout) and NaN method columns.
    """
    seen = dynamics.prob_count > 0
    given = dynamics.per_epoch["given_prob"]
    with np.errstate(invalid="ignore", divide="ignore"):
        probs = (dynamics.prob_sum / dynamics.prob_count[:, None]).astype(np.float32)
        columns = {
            "given_prob_mean": _nanmean(given),
            "given_prob_std": _nanstd(given),
            "margin_mean": _nanmean(dynamics.per_epoch["margin"]),
            "confidence_mean": _nanmean(dynamics.per_epoch["confidence"]),
        }
    probs[~seen] = fallback["pred_probs"][~seen]
    entropy = get_normalized_entropy(probs)
    quality = np.where(seen, columns["given_prob_mean"], fallback["label_quality_signal"])
    uncertainty = np.where(seen, entropy, fallback["uncertainty"])
    soft = probs.copy()
    soft[~seen] = fallback["soft_label"][~seen]
    return {
        "pred_probs": probs,
        "soft_label": soft,
        "uncertainty": uncertainty.astype(np.float32),
        "label_quality_signal": np.clip(quality, 0.0, 1.0).astype(np.float32),
        **{k: v.astype(np.float32) for k, v in columns.items()},
    }


def _nanmean(a: np.ndarray) -> np.ndarray:
    count = np.isfinite(a).sum(axis=0)
    total = np.nansum(a, axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _nanstd(a: np.ndarray) -> np.ndarray:
    mean = _nanmean(a)
    count = np.isfinite(a).sum(axis=0)
    sq = np.nansum((a - mean) ** 2, axis=0)
    return np.where(count > 0, np.sqrt(sq / np.maximum(count, 1)), np.nan)
