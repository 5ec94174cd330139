"""MTAC (Liu et al., IEEE TMM 2024): confidence-weighted FER with AU/VA auxiliary tasks and relabeling.

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
during training forward passes in tensors indexed by `batch.index` (plain attributes,
not buffers, so DDP's buffer broadcast cannot overwrite a rank's sums) and all-reduced
across ranks at epoch end, so every rank takes the same relabel decisions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fercleaner.config import Check, at_least, greater_than, in_range, one_of
from fercleaner.errors import CheckpointError
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
from fercleaner.methods.rank_regularization import (
    get_rank_margin,
    rank_regularization,
    split_high_low,
)
from fercleaner.methods.registry import register_method
from fercleaner.methods.relabel import center_similarities, propose_relabels, update_prototypes
from fercleaner.models import create_backbone
from fercleaner.priors import get_au_prior_matrix, get_va_centroids


@dataclass(frozen=True)
class MTACOptions:
    """MTAC's `method.options`; every field can be set in a recipe or as an override."""

    high_ratio: float = 0.7
    """Fraction of each batch counted as high-confidence (SCN's beta)."""
    rank_margin: float | None = None
    """delta_1 of the rank regulariser; None = scaled with the batch size (0.07 at 64)."""
    rank_weight: float = 1.0
    """Weight of the rank regularisation term."""
    class_balance: bool = False
    """Weight the CE by 1/sqrt(class count) (mean 1); off by default: it cost label-error AP on FERPlus."""
    au_weight: float | None = None
    """Weight of the AU loss; None = 0.5 with dataset AU columns, 0.1 with prior-derived targets."""
    va_weight: float | None = None
    """Weight of the VA CCC loss; None = 0.5 with dataset VA columns, 0.1 with centroid targets."""
    au_graph_threshold: float = 0.4
    """Edge where P(AU_j | AU_i) >= this (ML-GCN's tau)."""
    relabel: bool = True
    """Relabel low-confidence samples after the warm-up."""
    relabel_warmup: int | None = None
    """Epochs before relabeling may start; None = max(1, round(0.4 * epochs))."""
    relabel_margin: float = 0.3
    """delta_2: required advantage of the best (centred) prototype similarity over the label's."""
    prototype_momentum: float = 0.5
    """Per-epoch EMA momentum of the class prototypes (weight of the old prototype)."""
    confidence_epochs: int | None = None
    """Training epochs averaged into `confidence_train`; None = max(1, ceil(0.3 * epochs))."""
    soft_label: str = "probs"
    """`probs` (the classifier's distribution) or `blend` (mean of it and the prototype softmax)."""
    prototype_temperature: float = 0.1
    """Temperature of the softmax over prototype cosine similarities."""
    quality_prototype_weight: float = 0.0
    """Share of the prototype softmax in label_quality_signal (the rest: the classifier's p_given)."""

    #: Range and choice rules, checked with the recipe (`fercleaner.config.options_from_dict`).
    checks: ClassVar[dict[str, Check]] = {
        "high_ratio": in_range(0, 1, low_open=True, high_open=True),
        "rank_margin": at_least(0),
        "rank_weight": at_least(0),
        "au_weight": at_least(0),
        "va_weight": at_least(0),
        "au_graph_threshold": in_range(0, 1, low_open=True),
        "relabel_warmup": at_least(1),
        "relabel_margin": at_least(0),
        "prototype_momentum": in_range(0, 1, high_open=True),
        "confidence_epochs": at_least(1),
        "soft_label": one_of("probs", "blend"),
        "prototype_temperature": greater_than(0),
        "quality_prototype_weight": in_range(0, 1),
    }

    def resolve(self, *, epochs: int) -> MTACOptions:
        """These options with the epoch-dependent defaults filled in for an `epochs`-long run."""
        warmup = self.relabel_warmup or max(1, round(0.4 * epochs))
        conf_epochs = self.confidence_epochs or max(1, math.ceil(0.3 * epochs))
        return replace(self, relabel_warmup=warmup, confidence_epochs=conf_epochs)


def _full_precision(device: torch.device) -> torch.autocast:
    """Autocast off: similarities and sums into float32 state must not round through bf16."""
    return torch.autocast(device_type=device.type, enabled=False)


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
        # Per-sample and per-class state (plain tensors: see the module docstring).
        self.given = torch.full((n,), -1, dtype=torch.long)
        self.labels = torch.full((n,), -1, dtype=torch.long)
        self.relabeled_at = torch.full((n,), -1, dtype=torch.long)
        self.prototypes = torch.zeros(c, dim)
        self.prototype_valid = torch.zeros(c, dtype=torch.bool)
        self.confidence_sum = torch.zeros(n)
        self.confidence_epochs_seen = torch.zeros(n)
        self._events: list[dict[str, Any]] = []
        self._epoch = 0
        self._reset_epoch_sums()

    # ---- state helpers -------------------------------------------------------------

    _STATE = (
        "given",
        "labels",
        "relabeled_at",
        "prototypes",
        "prototype_valid",
        "confidence_sum",
        "confidence_epochs_seen",
    )
    _EPOCH_SUMS = (
        "epoch_conf",
        "epoch_count",
        "epoch_sims",
        "epoch_logits",
        "proto_sum",
        "proto_n",
    )

    def _reset_epoch_sums(self) -> None:
        n, c, d = self.context.num_samples, self.num_classes, self.prototypes.shape[1]
        device = self.prototypes.device
        self.epoch_conf = torch.zeros(n, device=device)
        self.epoch_count = torch.zeros(n, device=device)
        self.epoch_sims = torch.zeros(n, c, device=device)
        self.epoch_logits = torch.zeros(n, c, device=device)
        self.proto_sum = torch.zeros(c, d, device=device)
        self.proto_n = torch.zeros(c, device=device)

    def _state_to(self, device: torch.device) -> None:
        if self.prototypes.device == device:
            return
        for name in (*self._STATE, *self._EPOCH_SUMS):
            setattr(self, name, getattr(self, name).to(device))
        if self._au_targets is not None:
            self._au_targets = self._au_targets.to(device)
        if self._va_targets is not None:
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
            self._record(batch, x.detach(), confidence.detach(), raw_logits.detach())
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
    def _record(
        self, batch: Batch, x: torch.Tensor, confidence: torch.Tensor, raw_logits: torch.Tensor
    ) -> None:
        """Accumulate this batch's per-sample statistics into the epoch sums (in float32)."""
        with _full_precision(x.device):
            self._record_fp32(batch, x, confidence, raw_logits)

    def _record_fp32(
        self, batch: Batch, x: torch.Tensor, confidence: torch.Tensor, raw_logits: torch.Tensor
    ) -> None:
        index = batch.index
        given = batch.given_labels if batch.given_labels is not None else batch.labels
        self.given[index] = torch.where(self.given[index] < 0, given, self.given[index])
        self.labels[index] = torch.where(self.labels[index] < 0, batch.labels, self.labels[index])
        z = F.normalize(x.float(), dim=1)  # (B, D)
        self.epoch_conf.index_add_(0, index, confidence)
        self.epoch_count.index_add_(0, index, torch.ones_like(confidence))
        self.epoch_sims.index_add_(0, index, z @ self.prototypes.t())
        self.epoch_logits.index_add_(0, index, raw_logits)
        high = split_high_low(confidence, high_ratio=self.options.high_ratio)
        self.proto_sum.index_add_(0, batch.labels[high], z[high])
        self.proto_n.index_add_(0, batch.labels[high], torch.ones_like(confidence[high]))

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
        with _full_precision(images.device):
            sims = F.normalize(x.float(), dim=1) @ self.prototypes.t()  # (B, C)
        sims = sims.masked_fill(~self.prototype_valid.unsqueeze(0), -1.0)
        return {
            "probs": torch.softmax(raw_logits - self.class_weights.log(), dim=1),
            "confidence": confidence,
            "prototype_similarity": sims,
            "va": torch.tanh(self.va_head(x).float()),
            "au": torch.sigmoid(self.au_head(x).float()),
        }

    # ---- epoch hooks -----------------------------------------------------------------

    def on_epoch_start(self, epoch: int) -> None:
        self._epoch = epoch
        self._reset_epoch_sums()

    @torch.no_grad()
    def on_epoch_end(self, epoch: int) -> None:
        """All-reduce the epoch sums, average confidences, relabel, then update prototypes."""
        self._all_reduce()
        seen = self.epoch_count > 0
        count = self.epoch_count.clamp(min=1)
        confidence = self.epoch_conf / count
        opts = self.options
        if epoch >= self.context.epochs - opts.confidence_epochs:
            self.confidence_sum += torch.where(seen, confidence, torch.zeros_like(confidence))
            self.confidence_epochs_seen += seen.float()
        if opts.relabel and epoch + 1 >= opts.relabel_warmup and bool(self.prototype_valid.any()):
            similarities = center_similarities(
                self.epoch_sims / count.unsqueeze(1), self.labels, rows=seen
            )  # (N, C)
            proposal = propose_relabels(
                confidence=confidence,
                similarities=similarities,
                classifier_argmax=self.epoch_logits.argmax(dim=1),
                labels=self.labels,
                seen=seen,
                prototype_valid=self.prototype_valid,
                high_ratio=opts.high_ratio,
                margin=opts.relabel_margin,
            )
            for i in torch.nonzero(proposal.mask).flatten().tolist():
                self._events.append(
                    {
                        "index": i,
                        "epoch": epoch,
                        "event": "relabel",
                        "from_label": int(self.labels[i]),
                        "to_label": int(proposal.target[i]),
                        "from_class": self.context.classes[int(self.labels[i])],
                        "to_class": self.context.classes[int(proposal.target[i])],
                        "margin": float(proposal.margin[i]),
                    }
                )
            self.labels = torch.where(proposal.mask, proposal.target, self.labels)
            self.relabeled_at = torch.where(
                proposal.mask, torch.full_like(self.relabeled_at, epoch), self.relabeled_at
            )
        self.prototypes, self.prototype_valid = update_prototypes(
            self.prototypes,
            self.prototype_valid,
            self.proto_sum,
            self.proto_n,
            momentum=opts.prototype_momentum,
        )

    def _all_reduce(self) -> None:
        """Sum the epoch statistics over DDP ranks (labels: max over the -1 'unseen' fill)."""
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return
        dist = torch.distributed
        for name in self._EPOCH_SUMS:
            dist.all_reduce(getattr(self, name), op=dist.ReduceOp.SUM)
        for name in ("given", "labels"):
            dist.all_reduce(getattr(self, name), op=dist.ReduceOp.MAX)

    # ---- relabels, events, readout --------------------------------------------------

    def training_labels(self) -> torch.Tensor | None:
        """Current labels once something was relabeled (None before: train on the given ones).

        Rows never trained on are -1; the trainer keeps their given label.
        """
        if not self._events:
            return None
        return self.labels.clone()

    def events(self) -> list[dict[str, Any]]:
        """Relabel events: index, epoch, event='relabel', from/to_label (class index), from/to_class, margin.

        Under DDP every rank holds the same events (decisions follow all-reduced sums), so
        only rank 0 reports them: the trainer gathers events from all ranks and would
        otherwise list each one world_size times.
        """
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized() and dist.get_rank() != 0:
            return []
        return [dict(event) for event in self._events]

    def _in_sample(self, given_labels: np.ndarray) -> bool:
        """Whether the scored rows are the training rows (so training history applies)."""
        if len(given_labels) != self.context.num_samples:
            return False
        known = self.given.cpu().numpy()
        seen = known >= 0
        return bool(seen.any()) and bool((known[seen] == given_labels[seen]).all())

    def readout(
        self, outputs: dict[str, np.ndarray], given_labels: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Score arrays; label_quality_signal = blend of the classifier's and the prototypes' p_given.

        label_quality_signal = (1 - w) * probs[given] + w * softmax(sims / T)[given] with
        w = `quality_prototype_weight`, default 0: the blend w = 0.5 helped a little on
        synthetic faces (AP 0.558 vs 0.546 classifier only) but hurt on FERPlus real
        annotator noise (0.388 vs 0.453), where the prototypes alone reach only 0.28.
        The confidence a_i is not in it: it ranked errors near chance (synthetic AP 0.23,
        chance 0.20; FERPlus 0.18, chance 0.14) and multiplying by its percentile cost
        0.24 AP; it is reported as columns and as `uncertainty` = 1 - a.

        Columns: `confidence` (predict-time a), `confidence_train` (a averaged over the
        last `confidence_epochs` training epochs; NaN when the scored rows are not the
        training rows), `relabeled_at` (epoch of the last relabel or -1), `relabel_to`
        (class index or -1), `prototype_margin` (centred cosine similarity to the given
        label's prototype minus the best other; low = features disagree with the label),
        `va_disagreement` (distance of the predicted VA from the given label's centroid
        over the largest possible distance, in [0, 1]), `valence`, `arousal`, `au_probs`
        (N, K) predicted AU activations in `priors.AU_IDS` order.
        """
        given_labels = np.asarray(given_labels, dtype=np.int64)
        n = len(given_labels)
        rows = np.arange(n)
        probs = outputs["probs"].astype(np.float64)
        confidence = outputs["confidence"].astype(np.float64)
        raw_sims = outputs["prototype_similarity"].astype(np.float64)
        missing = np.all(raw_sims == -1.0, axis=0)  # classes without a prototype (predict fills -1)
        sims = center_similarities(
            torch.from_numpy(raw_sims),
            torch.from_numpy(given_labels),
            rows=torch.ones(n, dtype=torch.bool),
        ).numpy()  # (N, C) on each class's own scale, see `center_similarities`
        sims[:, missing] = -2.0
        va = outputs["va"].astype(np.float64)
        confidence_train = np.full(n, np.nan)
        relabeled_at = np.full(n, -1, dtype=np.int64)
        relabel_to = np.full(n, -1, dtype=np.int64)
        if self._in_sample(given_labels):
            epochs_seen = self.confidence_epochs_seen.cpu().numpy()
            sums = self.confidence_sum.cpu().numpy()
            confidence_train = np.where(epochs_seen > 0, sums / np.maximum(epochs_seen, 1), np.nan)
            relabeled_at = self.relabeled_at.cpu().numpy().copy()
            relabel_to = np.where(relabeled_at >= 0, self.labels.cpu().numpy(), -1)
        own_sim = sims[rows, given_labels]
        others = sims.copy()
        others[rows, given_labels] = -np.inf
        prototype_margin = own_sim - others.max(axis=1)
        centroids = get_va_centroids(self.context.classes).astype(np.float64)
        va_disagreement = np.linalg.norm(va - centroids[given_labels], axis=1) / (2 * np.sqrt(2))
        combined_conf = np.where(
            np.isnan(confidence_train), confidence, 0.5 * (confidence + confidence_train)
        )
        proto = np.exp(
            (sims - sims.max(axis=1, keepdims=True)) / self.options.prototype_temperature
        )
        proto /= proto.sum(axis=1, keepdims=True)
        w = self.options.quality_prototype_weight
        quality = (1.0 - w) * probs[rows, given_labels] + w * proto[rows, given_labels]
        soft = probs if self.options.soft_label == "probs" else 0.5 * (probs + proto)
        return {
            "pred_probs": probs.astype(np.float32),
            "soft_label": soft.astype(np.float32),
            "uncertainty": (1.0 - combined_conf).astype(np.float32),
            "label_quality_signal": np.clip(quality, 0.0, 1.0).astype(np.float32),
            "confidence": confidence.astype(np.float32),
            "confidence_train": confidence_train.astype(np.float32),
            "relabeled_at": relabeled_at,
            "relabel_to": relabel_to,
            "prototype_margin": prototype_margin.astype(np.float32),
            "va_disagreement": va_disagreement.astype(np.float32),
            "valence": va[:, 0].astype(np.float32),
            "arousal": va[:, 1].astype(np.float32),
            "au_probs": outputs["au"].astype(np.float32),  # (N, K) in priors.AU_IDS order
        }

    # ---- checkpoints ---------------------------------------------------------------------

    def extra_state(self) -> dict[str, Any]:
        """Prototypes, labels, relabel history, confidence history and events (CPU tensors)."""
        state: dict[str, Any] = {
            name: getattr(self, name).detach().cpu().clone() for name in self._STATE
        }
        state["events"] = [dict(event) for event in self._events]
        state["epoch"] = self._epoch
        return state

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore `extra_state`; shapes must match this run's samples and classes."""
        device = self.prototypes.device
        for name in self._STATE:
            if name not in state:
                raise CheckpointError(
                    f"MTAC checkpoint state lacks {name!r}; it was not written by this version"
                    " of MTAC. Start a fresh run without --resume."
                )
            value = torch.as_tensor(state[name])
            current = getattr(self, name)
            if value.shape != current.shape:
                raise CheckpointError(
                    f"MTAC checkpoint {name!r} has shape {tuple(value.shape)}, this run needs"
                    f" {tuple(current.shape)} (different dataset or classes?). Start a fresh run"
                    " without --resume."
                )
            setattr(self, name, value.to(device=device, dtype=current.dtype).clone())
        self._events = [dict(event) for event in state.get("events", [])]
        self._epoch = int(state.get("epoch", 0))
        self._reset_epoch_sums()
