"""MTAC (Liu et al., IEEE TMM 2024): confidence-weighted FER, AU/VA auxiliary tasks, relabeling.

What comes from the paper (its abstract, the only public part) and what is reconstructed:

- paper: a confidence estimation block and a weighted regularisation module that
  highlight solid and suppress uncertain samples in every batch; two auxiliary tasks,
  AU detection over a data-driven AU graph and valence-arousal regression; relabeling of
  uncertain samples under a feature-similarity constraint.
- reconstruction after SCN (Wang et al., CVPR 2020), because MTAC builds on it and its
  numbers are public: a_i = sigmoid(w . x_i) on the GAP feature of the backbone's last
  stage, logits scaled by a_i, cross-entropy on the scaled logits, optionally with
  class-balance weights w_c ~ 1/sqrt(n_c) (mean 1; option `class_balance`, off by
  default because on FERPlus it cost label-error AP: 0.389 vs 0.488 without relabeling,
  0.450 even after undoing its prior shift at predict time); rank regularisation with
  the top 70% of a batch "high" and margin delta_1 = 0.07 at batch 64 rising
  log-linearly to 0.15 at 1024 (`rank_regularization.py`).
- reconstruction after the authors' ULC-AG and ML-GCN: AU graph = conditional
  co-occurrence of the AU targets, thresholded, propagated by a 2-layer GCN whose K
  outputs are the AU classifiers (`au_graph.py`), multi-label BCE; VA head Linear ->
  tanh with loss (1 - CCC_v) + (1 - CCC_a). Targets are the dataset's AU/VA columns
  where a row has any (NaN entries masked); rows with none get weak targets derived from
  the current label through `priors` (AU prototype row, VA centroid).
- reconstruction after ULC-AG's templates and SCN's relabel rule (`relabel.py`): EMA
  class prototypes of L2-normalised features of the high-confidence samples; after a
  warm-up a low-confidence sample is relabeled to class c* when sim(c*) - sim(y) > delta_2
  (0.3; SCN's 0.2 is a probability margin, not a cosine one: measured at 0.2 vs 0.3,
  FERPlus relabels 147 vs 41 with AP 0.453 vs 0.479, synthetic flips 112 relabels (57%
  to the clean class) vs 37 (86%), AP 0.901 vs 0.897) and the classifier's argmax is c*
  too; similarities are first centred on each class's median member similarity
  (`center_similarities`), because raw cosines sent most FERPlus relabels to the
  visually tight class surprise. The warm-up defaults to max(1, round(0.4 * epochs)):
  the paper's ~10 epochs out of a long schedule cannot be copied to a 3-30 epoch run,
  and 40% leaves the prototypes and classifier time to form
  (past the high-learning-rate phase, before the net memorises noisy labels) while
  leaving most of the remaining epochs to train on corrected labels.

Readout (measured on synthetic faces with planted flips and on FERPlus validation with
one tagger's vote as the label, see `readout`): `pred_probs` is the softmax of the
unscaled logits (SCN evaluates that way); `label_quality_signal` is the classifier's
probability of the given label; the confidence a_i is reported (`confidence`,
`uncertainty` = 1 - a) but not folded into the quality, because it ranked label errors
near chance. Prior-derived AU/VA targets get weight 0.1 (dataset annotations 0.5): they
only echo the noisy label.

Per-sample statistics (confidence, prototype similarities, logits) are accumulated
during training forward passes in tensors indexed by `batch.index` (`mtac_memory.py`:
plain attributes, not buffers, so DDP's buffer broadcast cannot overwrite a rank's sums)
and all-reduced across ranks at epoch end, so every rank takes the same relabel
decisions. The readout's arithmetic is in `mtac_readout.py`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fercleaner.methods.au_graph import (
    AUGraphClassifier,
    build_au_adjacency,
    estimate_au_cooccurrence,
)
from fercleaner.methods.base import Batch, Method, MethodContext
from fercleaner.methods.losses import (
    ccc_loss,
    class_balance_weights,
    get_aux_targets,
    masked_bce_with_logits,
)
from fercleaner.methods.mtac_memory import SampleMemory
from fercleaner.methods.mtac_readout import get_mtac_readout
from fercleaner.methods.options import MTACOptions
from fercleaner.methods.rank_regularization import get_rank_margin, rank_regularization
from fercleaner.methods.registry import register_method
from fercleaner.models import create_backbone
from fercleaner.priors import get_au_prior_matrix, get_va_centroids
from fercleaner.training.distributed import get_process_rank


@register_method("mtac", options=MTACOptions)
class MTAC(Method):
    """Multi-task assisted correction; see the module docstring for paper vs reconstruction."""

    signal_columns = (
        "confidence",
        "confidence_train",
        "relabeled_at",
        "relabel_to",
        "prototype_margin",
        "va_disagreement",
        "valence",
        "arousal",
        "au_probs",
    )

    def __init__(self, context: MethodContext) -> None:
        super().__init__(context)
        self.options = self.options.resolve(epochs=context.epochs)
        c = self.num_classes
        n = context.num_samples
        self.backbone = create_backbone(context.backbone, in_chans=context.in_chans)
        dim = self.backbone.num_features
        self.dropout = nn.Dropout(context.backbone.drop_rate)
        self.confidence_head = nn.Linear(dim, 1)
        self.classifier = nn.Linear(dim, c)
        prior = get_au_prior_matrix(context.classes)  # (C, K)
        cooccurrence = estimate_au_cooccurrence(
            context.au_targets,
            prior_matrix=prior,
            class_counts=np.asarray(context.class_counts),
        )
        adjacency = build_au_adjacency(cooccurrence, threshold=self.options.au_graph_threshold)
        self.au_head = AUGraphClassifier(adjacency, feature_dim=dim)
        self.va_head = nn.Linear(dim, 2)
        # Prior-derived AU/VA targets only echo the (noisy) label: measured on synthetic
        # faces, weight 0.5 cost 5 points of accuracy, so they get a light default weight.
        self.au_weight = self.options.au_weight
        if self.au_weight is None:
            self.au_weight = 0.5 if context.au_targets is not None else 0.1
        self.va_weight = self.options.va_weight
        if self.va_weight is None:
            self.va_weight = 0.5 if context.va_targets is not None else 0.1
        weights = (
            class_balance_weights(context.class_counts)
            if self.options.class_balance
            else torch.ones(c)
        )
        # Constants identical on every rank: buffers are fine (DDP broadcasts them harmlessly).
        self.register_buffer("class_weights", weights, persistent=False)
        self.register_buffer("au_prior", torch.from_numpy(prior), persistent=False)
        self.register_buffer(
            "va_centroids", torch.from_numpy(get_va_centroids(context.classes)), persistent=False
        )
        self._au_targets = (
            None if context.au_targets is None else torch.as_tensor(context.au_targets).float()
        )
        self._va_targets = (
            None if context.va_targets is None else torch.as_tensor(context.va_targets).float()
        )
        # Per-sample and per-class state (plain tensors: see `mtac_memory.py`).
        self.memory = SampleMemory(
            num_samples=n, classes=context.classes, dim=dim, options=self.options
        )
        self._epoch = 0

    def _state_to(self, device: torch.device) -> None:
        self.memory.to(device)
        if self._au_targets is not None and self._au_targets.device != device:
            self._au_targets = self._au_targets.to(device)
        if self._va_targets is not None and self._va_targets.device != device:
            self._va_targets = self._va_targets.to(device)

    # ---- model ---------------------------------------------------------------------

    def _features(self, images: torch.Tensor) -> torch.Tensor:
        """Global feature x: GAP of the backbone's last stage, (B, D)."""
        return self.backbone(images)[-1].mean(dim=(2, 3))

    def _heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(confidence a (B,), raw logits (B, C)), both float32."""
        h = self.dropout(x)
        confidence = torch.sigmoid(self.confidence_head(h).float()).squeeze(1)
        return confidence, self.classifier(h).float()

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Loss = class-balanced CE on a-scaled logits + rank reg + AU BCE + VA CCC."""
        self._state_to(batch.images.device)
        labels = batch.labels
        x = self._features(batch.images)  # (B, D)
        confidence, raw_logits = self._heads(x)
        logits = confidence.unsqueeze(1) * raw_logits  # (B, C)
        ce = F.cross_entropy(logits, labels, weight=self.class_weights)
        opts = self.options
        margin = opts.rank_margin if opts.rank_margin is not None else get_rank_margin(len(labels))
        rank = rank_regularization(confidence, high_ratio=opts.high_ratio, margin=margin)
        h = self.dropout(x)
        au_logits = self.au_head(h).float()  # (B, K)
        au_target = get_aux_targets(
            None if self._au_targets is None else self._au_targets[batch.index],
            self.au_prior,
            labels,
        ).merged()
        au = masked_bce_with_logits(au_logits, au_target)
        va_pred = torch.tanh(self.va_head(h).float())  # (B, 2)
        va_target = get_aux_targets(
            None if self._va_targets is None else self._va_targets[batch.index],
            self.va_centroids,
            labels,
        ).merged()
        va = ccc_loss(va_pred, va_target)
        loss = ce + opts.rank_weight * rank + self.au_weight * au + self.va_weight * va
        if self.training:
            given = batch.given_labels if batch.given_labels is not None else labels
            self.memory.record(
                batch.index, labels, given, x.detach(), confidence.detach(), raw_logits.detach()
            )
        return {
            "loss": loss,
            "logits": logits,
            "ce": ce.detach(),
            "rank": rank.detach(),
            "au": au.detach(),
            "va": va.detach(),
            "confidence": confidence.detach(),  # (B,): the trainer records it as a dynamic
        }

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """probs (B, C), confidence (B,), prototype similarities (B, C), va (B, 2), au (B, K).

        `probs` is the softmax of the unscaled logits, as SCN evaluates: a-scaling is a
        training-time weighting that flattens low-confidence rows (measured on synthetic
        faces: NLL of the true label 1.654 unscaled vs 1.692 scaled, same ranking AP).
        With `class_balance` the class-weighted CE learns p(c|x) tilted by w_c, so the
        logits are shifted by -log w_c to give probabilities under the data's own class
        prior (FERPlus: AP 0.389 -> 0.450 for a class-balanced run).
        """
        self._state_to(images.device)
        x = self._features(images)
        confidence, raw_logits = self._heads(x)
        return {
            "probs": torch.softmax(raw_logits - self.class_weights.log(), dim=1),
            "confidence": confidence,
            "prototype_similarity": self.memory.get_similarities(x),  # (B, C), -1 = none yet
            "va": torch.tanh(self.va_head(x).float()),
            "au": torch.sigmoid(self.au_head(x).float()),
        }

    # ---- epoch hooks -----------------------------------------------------------------

    def on_epoch_start(self, epoch: int) -> None:
        self._epoch = epoch
        self.memory.reset_epoch_sums()

    def on_epoch_end(self, epoch: int) -> None:
        """All-reduce the epoch sums, average confidences, relabel, then update prototypes."""
        self.memory.end_epoch(epoch, epochs=self.context.epochs)

    # ---- relabels, events, readout --------------------------------------------------

    def training_labels(self) -> torch.Tensor | None:
        """Current labels once something was relabeled (None before: train on the given ones).

        Rows never trained on are -1; the trainer keeps their given label.
        """
        if not self.memory.events:
            return None
        return self.memory.labels.clone()

    def events(self) -> list[dict[str, Any]]:
        """Relabel events: index, epoch, event='relabel', from/to_label, from/to_class, margin.

        `from_label`/`to_label` are class indices, `from_class`/`to_class` their names.

        Under DDP every rank holds the same events (decisions follow all-reduced sums), so
        only rank 0 reports them: the trainer gathers events from all ranks and would
        otherwise list each one world_size times.
        """
        if get_process_rank() != 0:
            return []
        return [dict(event) for event in self.memory.events]

    def readout(
        self, outputs: dict[str, np.ndarray], given_labels: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Score arrays and MTAC's columns (`mtac_readout.get_mtac_readout` documents them).

        Training history (`confidence_train`, `relabeled_at`, `relabel_to`) is read only
        for the rows `outputs["trained_on"]` marks, from their training-table rows
        `outputs["index"]` (the trainer passes both); the other rows, and every row when
        `trained_on` is absent, get NaN / -1.
        """
        history = self.memory.get_history(*_trained_rows(outputs, len(given_labels)))
        return get_mtac_readout(
            outputs,
            given_labels,
            history=history,
            classes=self.context.classes,
            options=self.options,
        )

    # ---- checkpoints ---------------------------------------------------------------------

    def extra_state(self) -> dict[str, Any]:
        """Prototypes, labels, relabel history, confidence history and events (CPU tensors)."""
        return {**self.memory.state_dict(), "epoch": self._epoch}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore `extra_state`; shapes must match this run's samples and classes."""
        self.memory.load_state_dict(state)
        self._epoch = int(state.get("epoch", 0))


def _trained_rows(outputs: dict[str, np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """(training-table row (N,), trained on (N,) bool) of a readout's N rows, from `outputs`."""
    if "trained_on" not in outputs:
        return np.arange(n), np.zeros(n, dtype=bool)
    trained_on = np.asarray(outputs["trained_on"], dtype=bool)
    if trained_on.shape != (n,):
        raise ValueError(
            f"MTAC.readout: outputs['trained_on'] has shape {trained_on.shape}, expected ({n},),"
            " one flag per scored row"
        )
    if not trained_on.any():
        return np.arange(n), trained_on
    if "index" not in outputs:
        raise ValueError(
            "MTAC.readout: outputs['trained_on'] marks rows as trained on but outputs['index']"
            " (their training-table rows) is missing; pass both, as the trainer does"
        )
    return np.asarray(outputs["index"], dtype=np.int64), trained_on
