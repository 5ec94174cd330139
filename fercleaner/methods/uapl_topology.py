"""UAPL's label topology: a memory of what training predicted for every sample, the kNN graphs
rebuilt from it each epoch, and the neighbour-aggregated soft labels of the readout.

It is state over the whole training table (synced over DDP ranks, carried by checkpoints),
not a layer, so it lives apart from UAPL's network in `uapl.py`; the graph arithmetic
itself is in `topology.py`.
"""

from __future__ import annotations

import numpy as np
import torch

from fercleaner.errors import CheckpointError
from fercleaner.methods.topology import aggregate_neighbours, build_knn_graph, neighbour_kl
from fercleaner.priors import AU_IDS
from fercleaner.training.distributed import all_reduce_tensor

#: Related label spaces, in the order of the learnable task weights theta.
TASKS: tuple[str, ...] = ("au", "va", "embedding")


class TopologyMemory:
    """Per-sample outputs of the last training epoch and the kNN graphs built over them.

    `state` holds plain tensors, not registered buffers: DDP broadcasts buffers from
    rank 0 on every forward, which would overwrite each rank's rows. They follow the
    input's device lazily (`to`) and travel in checkpoints (`state_dict`).
    """

    def __init__(
        self,
        *,
        num_samples: int,
        num_classes: int,
        embedding_dim: int,
        k: int,
        au_annotations: torch.Tensor | None,
        va_annotations: torch.Tensor | None,
    ) -> None:
        """Empty memory; `*_annotations` (num_samples, K or 2), NaN = missing, or None."""
        n, c = num_samples, num_classes
        self.k = k
        self.au_annotations = au_annotations
        self.va_annotations = va_annotations
        self.state: dict[str, torch.Tensor] = {
            "embedding": torch.zeros(n, embedding_dim),
            "au": torch.zeros(n, len(AU_IDS)),
            "va": torch.zeros(n, 2),
            "probs": torch.zeros(n, c),
            "seen": torch.zeros(n, dtype=torch.bool),
            "written": torch.zeros(n, dtype=torch.bool),
            "graph_indices": torch.zeros(len(TASKS), n, k, dtype=torch.long),
            "graph_weights": torch.zeros(len(TASKS), n, k),
            "targets": torch.zeros(n, c),
            "graph_ready": torch.zeros((), dtype=torch.bool),
        }
        self.graph_ready = False
        """A Python mirror of `state["graph_ready"]`: no device sync per training step."""

    def to(self, device: torch.device) -> None:
        """Move the state to `device` (no-op when already there)."""
        if self.state["probs"].device != device:
            self.state = {key: value.to(device) for key, value in self.state.items()}

    @torch.no_grad()
    def record(
        self, index: torch.Tensor, out: dict[str, torch.Tensor], probs: torch.Tensor
    ) -> None:
        """Write one training batch's detached outputs into rows `index` (B,).

        `out` holds `embedding` (B, E), `au_logits` (B, K) and `va` (B, 2); `probs` (B, C).
        """
        self.state["embedding"][index] = out["embedding"].detach().float()
        self.state["au"][index] = torch.sigmoid(out["au_logits"].detach().float())
        self.state["va"][index] = out["va"].detach().float()
        self.state["probs"][index] = probs.detach()
        self.state["written"][index] = True
        self.state["seen"][index] = True

    def get_guidance(self, log_probs: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """(T,) mean KL(neighbour targets || p) of a batch in each space, in `TASKS` order.

        `log_probs` (B, C) of the batch rows `index` (B,); needs `graph_ready`.
        """
        idx = self.state["graph_indices"][:, index]  # (T, B, K)
        weights = self.state["graph_weights"][:, index]  # (T, B, K)
        return torch.stack(
            [
                neighbour_kl(log_probs, self.state["targets"][idx[t]], weights[t]).mean()
                for t in range(len(TASKS))
            ]
        )  # (T,)

    @torch.no_grad()
    def end_epoch(self) -> None:
        """Sync the rows over DDP ranks, rebuild the kNN graphs, freeze neighbour targets."""
        self.sync()
        state = self.state
        valid = state["seen"]
        spaces = {
            "au": fill_missing(self.au_annotations, state["au"]),
            "va": fill_missing(self.va_annotations, state["va"]),
            "embedding": state["embedding"],
        }
        graphs = [build_knn_graph(spaces[task], k=self.k, valid=valid) for task in TASKS]
        state["graph_indices"] = torch.stack([g.indices for g in graphs])
        state["graph_weights"] = torch.stack([g.weights for g in graphs])
        state["targets"] = state["probs"].clone()
        state["graph_ready"] = torch.tensor(True, device=valid.device)
        self.graph_ready = True
        state["written"].zero_()

    def sync(self) -> None:
        """Under DDP each rank wrote its own rows: average them over the ranks that wrote.

        In one process the all-reduce is a no-op and every row keeps its own value.
        """
        state = self.state
        count = all_reduce_tensor(state["written"].float())
        wrote = count > 0
        for key in ("embedding", "au", "va", "probs"):
            values = all_reduce_tensor(state[key] * state["written"][:, None])
            state[key][wrote] = values[wrote] / count[wrote][:, None]
        state["seen"] |= wrote
        state["written"] = wrote

    def state_dict(self) -> dict[str, torch.Tensor]:
        """CPU copies of `state` (the checkpoint's `topology`)."""
        return {key: value.detach().cpu().clone() for key, value in self.state.items()}

    def load_state_dict(self, topology: dict[str, torch.Tensor]) -> None:
        """Restore `state_dict`; its rows must match this run's samples."""
        missing = sorted(set(self.state) - set(topology))
        if missing:
            raise CheckpointError(
                f"UAPL checkpoint state lacks {', '.join(missing)}; it was not written by"
                " this version of the uapl method. Start the run again without --resume."
            )
        expected = self.state["probs"].shape
        if tuple(topology["probs"].shape) != tuple(expected):
            raise CheckpointError(
                f"UAPL checkpoint holds {tuple(topology['probs'].shape)} per-sample rows but"
                f" this run has {tuple(expected)}; the checkpoint belongs to another dataset."
            )
        device = self.state["probs"].device
        self.state = {key: topology[key].to(device).clone() for key in self.state}
        self.graph_ready = bool(self.state["graph_ready"])

    # ---- readout -----------------------------------------------------------------------

    def get_spaces(
        self, outputs: dict[str, np.ndarray], device: torch.device
    ) -> dict[str, torch.Tensor]:
        """The readout's label spaces over the N scored rows, in `TASKS` order.

        The heads' predictions `au` (N, K), `va` (N, 2) and `embedding` (N, E) from
        `outputs`; when `outputs["index"]` (N,) names the training-table rows, annotated
        AU/VA replace the predictions where present, as in training.
        """
        spaces = {task: torch.as_tensor(outputs[task], device=device).float() for task in TASKS}
        if "index" in outputs:
            index = torch.as_tensor(np.asarray(outputs["index"]), dtype=torch.long)
            for task, annotations in (("au", self.au_annotations), ("va", self.va_annotations)):
                if annotations is not None:
                    spaces[task] = fill_missing(annotations[index], spaces[task].cpu()).to(device)
        return spaces


def get_topology_soft_labels(
    probs: torch.Tensor,
    spaces: dict[str, torch.Tensor],
    theta: torch.Tensor,
    *,
    k: int,
    self_weight: float,
) -> torch.Tensor:
    """q = a p + (1 - a) sum_t theta_t sum_j w_ij p_j over kNN graphs of the scored rows, (N, C).

    Args:
        probs: (N, C) predicted distributions p.
        spaces: label space per task (N, ...), see `TopologyMemory.get_spaces`.
        theta: (T,) task weights, summing to 1.
        self_weight: a, the share of the row's own p (an isolated row keeps its evidence).
    """
    neighbour = torch.zeros_like(probs)
    has_neighbours = torch.zeros(len(probs), dtype=torch.bool, device=probs.device)
    for t, task in enumerate(TASKS):
        graph = build_knn_graph(spaces[task], k=k)
        neighbour += theta[t] * aggregate_neighbours(probs, graph.indices, graph.weights)
        has_neighbours |= graph.weights.sum(dim=1) > 0
    neighbour = torch.where(has_neighbours[:, None], neighbour, probs)
    neighbour = neighbour / neighbour.sum(dim=1, keepdim=True).clamp_min(1e-12)
    return self_weight * probs + (1 - self_weight) * neighbour


def fill_missing(annotations: torch.Tensor | None, predicted: torch.Tensor) -> torch.Tensor:
    """The label space for kNN: annotations where present, the head's predictions elsewhere."""
    if annotations is None:
        return predicted
    annotations = annotations.to(predicted.device)
    return torch.where(torch.isnan(annotations), predicted, annotations)
