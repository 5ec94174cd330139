"""UAPL, uncertainty-aware patch learning: gated facial-region patches plus label-topology guidance.

What the paper states (M2VIP 2024, abstract only; see docs/methods.md):
- paper: regional patches cropped from backbone feature maps, with patch attention that
  weights occluded regions down;
- paper: label topology from related tasks: a face should have an expression
  distribution like its neighbours' in those label spaces;
- paper: a task-guidance loss built on that topology.

Everything else is reconstruction from the closest relatives (pACNN/RAN for patches,
LDL-ALSG for the topology), chosen as follows:
- reconstruction: patches come from the deepest non-final backbone stage whose map is
  at least 6x6 (`choose_patch_stage`; layer2 at 48 px, layer3 at 112-224 px): deeper maps
  are too coarse to separate an eye from a brow, shallower ones carry too little
  semantics for a gate to judge. Ten fixed boxes of an aligned face (`REGION_NAMES`
  of `priors.FACE_REGIONS`: two brow+eye, nose, mouth, two cheeks, a 2x2 grid) are
  roi-cropped bilinearly to 3x3, each through its own 3x3 conv (a grouped conv), pooled
  to f_r; gate g_r = sigmoid(MLP(f_r)).
  Landmark-centred patches are not supported: the batch carries no landmarks.
- reconstruction ("uncertainty-aware"): each region also has its own linear classifier
  (auxiliary CE), and its gate is pulled (BCE) towards that region's certainty
  1 - H(p_r)/ln C relative to the face's most certain region. An occluded region cannot
  tell the expression, so its gate learns to drop; a face that is hard everywhere keeps
  high gates. Without this term (RAN's setting: gates learned only through the
  classifier) the gates did not drop under a hand over the mouth on synthetic faces.
- reconstruction: local = sum g_r f_r / sum g_r, concatenated with the ungated global
  feature (pooled last stage) -> neck -> classifier. The global branch keeps its weight
  structurally (it is never gated); the RAN-style margin is a per-face rank margin on the
  gates, max(0, delta - (mean of the top half - mean of the rest)), because with
  normalised pooling only relative gates matter and without it they drift to uniform.
- reconstruction: related label spaces are AU, valence-arousal and the embedding. AU and
  VA come from dataset annotations where present and otherwise from small heads trained
  on weak targets from the priors (`get_au_prior_matrix`, `get_va_centroids` of the
  training label). Per-sample buffers (indexed by `batch.index`) collect embedding, AU,
  VA and predicted distribution during training; at each epoch end (after an all-reduce
  under DDP) a kNN graph (K = 8, weights exp(-d^2/sigma^2), sigma = median kNN distance)
  is built per space, and last epoch's distributions are frozen as neighbour targets
  (that memory, the guidance term and the readout's aggregation: `uapl_topology.py`).
- reconstruction: loss = CE + lambda(epoch) sum_t theta_t sum_j w_ij KL(p_j || p_i)
  + margin + region CE + gate BCE + AU BCE + VA MSE, with w_ij row-normalised (so K does
  not scale the term), theta = softmax of learnable logits (a convex mix: learning cannot
  switch guidance off, only move it between spaces), lambda ramped by exp(-5 (1 - e/T)^2)
  over the first T = epochs // 2 epochs (no graph exists in epoch 0).
- reconstruction (readout): graphs are rebuilt over the scored samples from AU, VA
  (annotations where the dataset has them, located through `outputs["index"]`, else the
  heads' predictions) and the embedding; q_i = a p_i + (1 - a) sum_t theta_t sum_j w_ij p_j
  with a = 0.5 (own prediction mixed in so an isolated face keeps its evidence; the
  neighbour part is what contradicts a memorised wrong label). `soft_label` = q,
  `label_quality_signal` = `support` = q_i[given], `uncertainty` = `entropy` = H(q_i) / ln C,
  `occlusion` = 1 - mean gate, `gate_<region>` per region.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fercleaner.arrays import get_normalized_entropy
from fercleaner.errors import ConfigError
from fercleaner.methods.base import Batch, Method, MethodContext
from fercleaner.methods.losses import (
    get_aux_targets,
    masked_bce_with_logits,
    masked_mse,
    sigmoid_rampup,
)
from fercleaner.methods.options import UaplOptions
from fercleaner.methods.patches import (
    choose_patch_stage,
    crop_regions,
    gate_contrast_margin,
    gated_pool,
    get_region_boxes,
    region_certainty_losses,
)
from fercleaner.methods.registry import register_method
from fercleaner.methods.uapl_topology import TASKS, TopologyMemory, get_topology_soft_labels
from fercleaner.priors import AU_IDS, get_au_prior_matrix, get_va_centroids

#: UAPL's patches: the face parts and the 2x2 grid of `priors.FACE_REGIONS`, in gate order.
REGION_NAMES: tuple[str, ...] = (
    "left_eye",
    "right_eye",
    "nose",
    "mouth",
    "left_cheek",
    "right_cheek",
    "grid_top_left",
    "grid_top_right",
    "grid_bottom_left",
    "grid_bottom_right",
)


@register_method("uapl", options=UaplOptions)
class UAPL(Method):
    """Gated regional patches + global feature, trained with kNN label-topology guidance."""

    signal_columns: ClassVar[tuple[str, ...]] = (
        "support",
        "entropy",
        "occlusion",
        *(f"gate_{name}" for name in REGION_NAMES),
    )

    def __init__(self, context: MethodContext) -> None:
        super().__init__(context)
        from fercleaner.models import create_backbone

        opts = self.options
        self.backbone = create_backbone(context.backbone, in_chans=context.in_chans)
        n_stages = len(self.backbone.stage_channels)
        if opts.patch_stage is None:
            self.patch_stage = choose_patch_stage(
                self.backbone.stage_reductions, image_size=context.image_size
            )
        elif 0 <= opts.patch_stage < n_stages:
            self.patch_stage = opts.patch_stage
        else:
            raise ConfigError(
                f"method.options.patch_stage: expected a stage of backbone"
                f" {context.backbone.name!r} (0..{n_stages - 1}), got {opts.patch_stage}"
            )
        r, d = len(REGION_NAMES), opts.patch_dim
        mid = self.backbone.stage_channels[self.patch_stage]
        self.register_buffer("region_boxes", get_region_boxes(REGION_NAMES), persistent=False)
        # one 3x3 conv per region (grouped), so each region learns its own parts
        self.patch_conv = nn.Sequential(
            nn.Conv2d(r * mid, r * d, 3, padding=1, groups=r, bias=False),
            nn.BatchNorm2d(r * d),
            nn.ReLU(inplace=True),
        )
        # per-region auxiliary classifiers: (R, D, C) weights, one linear map per region
        self.region_weight = nn.Parameter(torch.randn(r, d, self.num_classes) * d**-0.5)
        self.region_bias = nn.Parameter(torch.zeros(r, self.num_classes))
        self.gate_mlp = nn.Sequential(
            nn.Linear(d, max(d // 4, 1)), nn.ReLU(inplace=True), nn.Linear(max(d // 4, 1), 1)
        )
        self.neck = nn.Sequential(
            nn.Linear(self.backbone.num_features + d, opts.neck_dim),
            nn.BatchNorm1d(opts.neck_dim),
            nn.ReLU(inplace=True),
        )
        self.dropout = nn.Dropout(context.backbone.drop_rate)
        self.classifier = nn.Linear(opts.neck_dim, self.num_classes)
        self.au_head = nn.Linear(opts.neck_dim, len(AU_IDS))
        self.va_head = nn.Linear(opts.neck_dim, 2)
        self.task_logits = nn.Parameter(torch.zeros(len(TASKS)))
        self.register_buffer(
            "au_prior", torch.from_numpy(get_au_prior_matrix(context.classes)), persistent=False
        )
        self.register_buffer(
            "va_prior", torch.from_numpy(get_va_centroids(context.classes)), persistent=False
        )
        self.ramp_epochs = (
            max(context.epochs // 2, 1) if opts.ramp_epochs is None else opts.ramp_epochs
        )
        self.lambda_now = 0.0
        self.epoch = 0
        ctx = self.context
        self.au_annotations = (
            None
            if ctx.au_targets is None
            else torch.tensor(np.asarray(ctx.au_targets, dtype=np.float32))
        )
        self.va_annotations = (
            None
            if ctx.va_targets is None
            else torch.tensor(np.asarray(ctx.va_targets, dtype=np.float32))
        )
        # per-sample outputs and kNN graphs over the training table (`uapl_topology.py`)
        self.topology = TopologyMemory(
            num_samples=ctx.num_samples,
            num_classes=self.num_classes,
            embedding_dim=opts.neck_dim,
            k=opts.k,
            au_annotations=self.au_annotations,
            va_annotations=self.va_annotations,
        )

    # ---- network -------------------------------------------------------------------------

    def _encode(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        maps = self.backbone(images)
        x_global = maps[-1].mean(dim=(2, 3))  # (B, C_last)
        crops = crop_regions(maps[self.patch_stage], self.region_boxes, size=self.options.crop_size)
        b, r, c, s, _ = crops.shape  # (B, R, C_mid, s, s)
        f = self.patch_conv(crops.reshape(b, r * c, s, s)).mean(dim=(2, 3)).reshape(b, r, -1)
        gates = torch.sigmoid(self.gate_mlp(f).squeeze(-1).float())  # (B, R)
        region_logits = torch.einsum("brd,rdc->brc", f.float(), self.region_weight.float())
        region_logits = region_logits + self.region_bias.float()  # (B, R, C)
        local = gated_pool(f.float(), gates)  # (B, D)
        hidden = self.neck(torch.cat([x_global.float(), local], dim=1))  # (B, E)
        h = self.dropout(hidden)
        return {
            "logits": self.classifier(h),
            "au_logits": self.au_head(h),
            "va": torch.tanh(self.va_head(h)),
            "embedding": F.normalize(hidden.float(), dim=1),
            "gates": gates,
            "region_logits": region_logits,
        }

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        out = self._encode(batch.images)
        logits = out["logits"].float()
        labels = batch.labels
        index = batch.index
        log_probs = F.log_softmax(logits, dim=1)  # (B, C)
        self.topology.to(logits.device)

        ce = F.nll_loss(log_probs, labels)
        au_targets = self._targets(self.au_annotations, self.au_prior, labels, index)
        va_targets = self._targets(self.va_annotations, self.va_prior, labels, index)
        au_loss = masked_bce_with_logits(out["au_logits"], au_targets)
        va_loss = masked_mse(out["va"].float(), va_targets)
        margin = gate_contrast_margin(out["gates"], margin=self.options.margin)
        region_ce, gate_target = region_certainty_losses(out["region_logits"], out["gates"], labels)

        theta = torch.softmax(self.task_logits, dim=0)  # (T,)
        if self.topology.graph_ready and self.lambda_now > 0:
            guidance = (theta * self.topology.get_guidance(log_probs, index)).sum()
        else:  # keep theta in the graph so DDP sees a gradient for every parameter
            guidance = (theta * 0.0).sum()

        opts = self.options
        loss = (
            ce
            + self.lambda_now * guidance
            + opts.margin_weight * margin
            + opts.region_weight * region_ce
            + opts.gate_target_weight * gate_target
            + opts.au_weight * au_loss
            + opts.va_weight * va_loss
        )
        if self.training:
            self.topology.record(index, out, log_probs.detach().exp())
        return {
            "loss": loss,
            "logits": out["logits"],
            "ce": ce.detach(),
            "guidance": guidance.detach(),
            "margin": margin.detach(),
            "region_ce": region_ce.detach(),
            "gate_target": gate_target.detach(),
            "au": au_loss.detach(),
            "va": va_loss.detach(),
            "lambda": torch.tensor(self.lambda_now, device=logits.device),
            "mean_gate": out["gates"].mean().detach(),
        }

    def _targets(
        self,
        annotations: torch.Tensor | None,
        prior: torch.Tensor,
        labels: torch.Tensor,
        index: torch.Tensor,
    ) -> torch.Tensor:
        """Annotated targets (NaN = masked) when the dataset has them, else the label's prior.

        Unlike MTAC and POI, rows without annotations in an annotated dataset stay masked.
        """
        annotated = None if annotations is None else annotations[index.cpu()].to(labels.device)
        targets = get_aux_targets(annotated, prior, labels)
        return targets.derived if annotated is None else targets.annotated

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self._encode(images)
        return {
            "probs": torch.softmax(out["logits"].float(), dim=1),
            "embedding": out["embedding"],
            "au": torch.sigmoid(out["au_logits"].float()),
            "va": out["va"].float(),
            "gates": out["gates"],
        }

    # ---- epoch hooks -----------------------------------------------------------------

    def on_epoch_start(self, epoch: int) -> None:
        self.epoch = epoch
        self.lambda_now = self.options.lambda_max * sigmoid_rampup(epoch, self.ramp_epochs)

    def on_epoch_end(self, epoch: int) -> None:
        """Sync the per-sample rows (DDP), rebuild the kNN graphs, freeze neighbour targets."""
        self.topology.end_epoch()

    # ---- readout -------------------------------------------------------------------------

    @torch.no_grad()
    def readout(
        self, outputs: dict[str, np.ndarray], given_labels: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Neighbour-aggregated soft labels, support of the given label, entropy, gates.

        `outputs` holds `predict`'s arrays over the N scored samples; an optional `index`
        (N,) of training-table rows lets annotated AU/VA (from the context) replace the
        heads' predictions in the kNN spaces, as in training.
        """
        device = self.task_logits.device
        probs = torch.as_tensor(outputs["probs"], device=device).float()  # (N, C)
        q = get_topology_soft_labels(
            probs,
            self.topology.get_spaces(outputs, device),
            torch.softmax(self.task_logits.float(), dim=0),
            k=self.options.k,
            self_weight=self.options.readout_self_weight,
        )
        q = q.cpu().numpy().astype(np.float32)
        rows = np.arange(len(given_labels))
        support = np.clip(q[rows, np.asarray(given_labels)], 0.0, 1.0)
        entropy = get_normalized_entropy(q)
        gates = np.asarray(outputs["gates"], dtype=np.float32)  # (N, R)
        result: dict[str, np.ndarray] = {
            "pred_probs": probs.cpu().numpy().astype(np.float32),
            "soft_label": q,
            "uncertainty": entropy.astype(np.float32),
            "label_quality_signal": support.astype(np.float32),
            "support": support.astype(np.float32),
            "entropy": entropy.astype(np.float32),
            "occlusion": (1.0 - gates.mean(axis=1)).astype(np.float32),
        }
        for r, name in enumerate(REGION_NAMES):
            result[f"gate_{name}"] = gates[:, r]
        return result

    # ---- checkpoint state ------------------------------------------------------------

    def extra_state(self) -> dict[str, Any]:
        return {
            "topology": self.topology.state_dict(),
            "epoch": self.epoch,
            "lambda_now": self.lambda_now,
        }

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.topology.load_state_dict(state["topology"])
        self.epoch = int(state["epoch"])
        self.lambda_now = float(state["lambda_now"])
