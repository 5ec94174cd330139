"""POI (prior-based objective inference): a prior network infers soft labels a target learns from.

Paper (arXiv 2411.13024, abstract only; the method section and code are not public):
a Prior Inference Network (PIN) uses AU-emotion prior knowledge and key facial
sub-regions with mutual learning to infer an "objective" soft label distribution q;
a Target Recognition Network (TRN) learns from the subjective (given) labels plus q by
dynamic knowledge transfer; an uncertainty module balances the two per sample.

Reconstruction (docs/methods.md; each choice below is ours, not the paper's):
- PIN (`poi_pin.py`) regions are crops of one mid-level backbone feature map (upper
  face, nose, mouth, whole face at fixed fractions of an aligned face; `REGIONS`). Each
  region branch is a 3x3 conv + pooling, then K AU logits restricted to the AUs that
  region can see, so a^r = sigmoid(logits) * mask_r.
- Evidence z^r = tau_r * M a^r / sqrt(|a^r|^2 + kappa^2) + residual_r(f^r): M is the fixed
  AU prior matrix, tau_r a learnable scale, the linear residual classifier lets PIN
  correct the prior where the table is wrong (neutral has an empty prototype and gets
  all its evidence there). kappa > 0 keeps a face with no active AU from turning noise
  into confident evidence (`poi_losses.prior_evidence`).
- Fusion: per-sample softmax weights over regions from a linear gate on each region's
  pooled feature; q = softmax(sum_r w_r z^r). Per-sample weights (rather than one global
  weight per region) let an occluded region be weighted down, and are read out.
- Deep mutual learning: pairwise KL between region predictions (Zhang et al. 2018).
  CE on the training labels for the fused and every region prediction.
- AU supervision: dataset AUs (`MethodContext.au_targets`, NaN = missing) where a row
  has any; otherwise weak targets M[y] from the label, weighted by `weak_au_weight`.
- TRN: (1 - w_i) CE(p_i, y_i) + w_i T^2 KL(q_i^T || p_i^T) with w_i = ramp(t) * u_i and
  u_i = JS(q_i, onehot(y_i)) / ln 2 (or a learned head's estimate of it), T = 2, the
  ramp sigmoid-shaped over the first `ramp_epochs` epochs.
- Compute: PIN and TRN share the backbone by default (`trn_backbone: shared`); PIN's
  region branches sit on a mid-level stage and TRN's head on the pooled deepest stage,
  so the two networks differ in what they see and in their losses but pay for one
  backbone pass. `trn_backbone: separate` gives TRN its own backbone, as two separate
  networks in the paper would be, at about twice the training cost on CPU.
- Readout: PIN's q is `soft_label`, u is `uncertainty`, TRN's p is `pred_probs`, and
  `label_quality_signal` = (1 - quality_blend) q[given] + quality_blend p[given].

Measured (CPU, synthetic faces, 20% symmetric flips, in-sample scoring; scripts and
commands in the POI report, docs/benchmarks.md for the benchmark suite):
- cost per training step, ResNet-18, 48 px, batch 64, 1 thread, CPU seconds: baseline
  0.24, POI shared 0.28 (1.17x), POI separate 0.39 (1.6x; PIN's copy stops at layer2).
- small data (320 faces, 4 classes, test_resnet 32 px, 10 epochs, 2 seeds): POI beats
  the baseline: q argmax accuracy 0.57/0.55 vs 0.53/0.47, flip AUROC 0.76/0.80 vs
  0.61/0.62, KL(true soft || q) 0.87/0.92 vs 0.98/1.03. q[given] detects flips better
  than p[given] here (AUROC 0.76/0.80 vs 0.73/0.73), hence `quality_blend` = 0.
- larger (1,600 faces, 8 classes, ResNet-18 48 px, 10 epochs): the baseline wins:
  held-out accuracy 0.58 (TRN p) = 0.58 (baseline) but 0.51 for PIN's q; flip AP 0.72
  (q[given]) / 0.78 (p[given]) vs 0.84; KL(true soft || q) 1.30 vs 1.02. PIN, whose
  regions read a 6x6 layer2 map through one conv, is weaker than a full backbone
  once the data supports one; blending in p[given] then helps (AP rises monotonically
  to 0.78 at quality_blend = 1). `whole_from_last` (800 faces, 8 epochs) did not close
  the gap: q accuracy 0.31 and flip AP 0.55 vs the baseline's 0.35 and 0.61.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fercleaner.errors import ConfigError
from fercleaner.methods.base import Batch, Method, MethodContext
from fercleaner.methods.losses import get_aux_targets, sigmoid_rampup
from fercleaner.methods.options import POIOptions
from fercleaner.methods.patches import choose_patch_stage
from fercleaner.methods.poi_losses import js_uncertainty, mutual_learning_kl, transfer_loss
from fercleaner.methods.poi_pin import REGIONS, PriorInferenceNetwork
from fercleaner.methods.registry import register_method
from fercleaner.models import create_backbone
from fercleaner.priors import AU_IDS, get_au_prior_matrix


@register_method("poi", options=POIOptions)
class POI(Method):
    """Prior Inference Network (regions x AU prior) teaching a Target Recognition Network."""

    signal_columns: ClassVar[tuple[str, ...]] = (
        "pin_given_prob",
        "trn_given_prob",
        "suspect",
        "pin_predicted",
        "region_weights",
        "au",
    )

    def __init__(self, context: MethodContext) -> None:
        super().__init__(context)
        opts = self.options
        # Full backbone first: it fixes the stage layout. With `separate` it is TRN's, and
        # PIN gets its own copy cut after the region stage (deeper stages would be unused).
        full = create_backbone(context.backbone, in_chans=context.in_chans)
        stages = len(full.stage_channels)
        if opts.region_stage is not None and opts.region_stage >= stages - 1:
            raise ConfigError(
                f"method.options.region_stage: expected a stage of backbone"
                f" {context.backbone.name!r} before its last, TRN's (0..{stages - 2}), got"
                f" {opts.region_stage}; or leave it unset to choose automatically."
            )
        self.region_stage = (
            opts.region_stage
            if opts.region_stage is not None
            # the regions need a few cells each (upper/nose/mouth overlap on a 6x6 map), and
            # the final stage is left to TRN so the two networks do not see the same map
            else choose_patch_stage(full.stage_reductions, image_size=context.image_size)
        )
        if opts.trn_backbone == "separate":
            self.trn_backbone: nn.Module | None = full
            self.backbone = create_backbone(
                context.backbone,
                in_chans=context.in_chans,
                max_stage=None if opts.whole_from_last else self.region_stage,
            )
        else:
            self.trn_backbone = None
            self.backbone = full
        self.register_buffer(
            "prior", torch.from_numpy(get_au_prior_matrix(context.classes)), persistent=False
        )
        self.regions = PriorInferenceNetwork(
            in_channels=self.backbone.stage_channels[self.region_stage],
            last_channels=full.stage_channels[-1],
            dim=opts.region_dim,
            num_classes=self.num_classes,
            tau=opts.tau,
            drop_rate=context.backbone.drop_rate,
            whole_from_last=opts.whole_from_last,
        )
        trn_features = full.num_features
        self.trn_head = nn.Sequential(
            nn.Dropout(context.backbone.drop_rate), nn.Linear(trn_features, self.num_classes)
        )
        self.uncertainty_head = (
            nn.Linear(trn_features, self.num_classes) if opts.uncertainty == "learned" else None
        )
        au_targets = context.au_targets
        if au_targets is not None:
            au_targets = np.asarray(au_targets, dtype=np.float32)
            if au_targets.shape != (context.num_samples, len(AU_IDS)):
                raise ConfigError(
                    f"au_targets has shape {au_targets.shape}, expected"
                    f" ({context.num_samples}, {len(AU_IDS)}) (one column per priors.AU_IDS)"
                )
            self.register_buffer("au_targets", torch.from_numpy(au_targets), persistent=False)
        else:
            self.au_targets = None
        self.ramp_epochs = (
            opts.ramp_epochs if opts.ramp_epochs is not None else max(1.0, context.epochs / 4)
        )
        self._step = 0

    # ------------------------------------------------------------------ networks
    def _networks(self, images: torch.Tensor) -> dict[str, Any]:
        """Run PIN and TRN on a batch: fused and per-region PIN logits, TRN logits and features."""
        feats = self.backbone(images)
        pin = self.regions(
            feats, region_stage=self.region_stage, prior=self.prior, kappa=self.options.kappa
        )
        trn_feats = self.trn_backbone(images) if self.trn_backbone is not None else feats
        pooled = trn_feats[-1].mean(dim=(2, 3))  # (B, F)
        return {
            **pin,
            "trn_logits": self.trn_head(pooled).float(),
            "pooled": pooled,
        }

    def _au_loss(
        self, branches: list[dict[str, torch.Tensor]], labels: torch.Tensor, index: torch.Tensor
    ) -> torch.Tensor:
        """PIN's AU BCE: dataset AUs where a row has any, label-derived ones elsewhere."""
        targets = get_aux_targets(
            None if self.au_targets is None else self.au_targets[index], self.prior, labels
        )
        return self.regions.get_au_loss(
            branches,
            targets,
            au_weight=self.options.au_weight,
            weak_au_weight=self.options.weak_au_weight,
        )

    # ------------------------------------------------------------------ training
    def transfer_weight(self) -> float:
        """Current ramp factor of the PIN -> TRN transfer, from the optimizer step count."""
        steps = max(1, self.context.steps_per_epoch)
        return sigmoid_rampup(self._step, self.ramp_epochs * steps)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """PIN loss + TRN transfer loss.

        PIN: CE on the fused and on each region's logits, mutual learning, AUs; TRN: the
        transfer loss (+ the uncertainty head's loss when there is one).
        """
        labels = batch.labels
        net = self._networks(batch.images)
        pin_logits = net["pin_logits"]
        region_logits = net["region_logits"]  # (B, R, C)
        num_regions = region_logits.shape[1]
        pin_ce = F.cross_entropy(pin_logits, labels)
        region_ce = F.cross_entropy(
            region_logits.reshape(-1, self.num_classes), labels.repeat_interleave(num_regions)
        )
        dml = mutual_learning_kl(list(region_logits.unbind(dim=1)))
        au = self._au_loss(net["branches"], labels, batch.index)

        js = js_uncertainty(torch.softmax(pin_logits.detach(), dim=1), labels)  # (B,)
        uncertainty = js
        loss_terms = {}
        if self.uncertainty_head is not None:
            head = torch.sigmoid(self.uncertainty_head(net["pooled"].detach()).float())  # (B, C)
            predicted = head.gather(1, labels.view(-1, 1)).squeeze(1)
            loss_terms["u_head"] = F.mse_loss(predicted, js)
            uncertainty = predicted.detach()
        ramp = self.transfer_weight()
        trn = transfer_loss(
            net["trn_logits"],
            pin_logits,
            labels,
            ramp * uncertainty,
            temperature=self.options.temperature,
        )
        loss = pin_ce + region_ce + self.options.dml_weight * dml + au + trn
        loss = loss + sum(loss_terms.values(), torch.zeros((), device=loss.device))
        if self.training:
            self._step += 1
        terms = {
            "pin_ce": pin_ce,
            "region_ce": region_ce,
            "dml": dml,
            "au": au,
            "trn": trn,
            "uncertainty": uncertainty.mean(),
            "ramp": torch.tensor(ramp),
            **loss_terms,
        }
        return {
            "loss": loss,
            "logits": net["trn_logits"],
            **{k: v.detach() for k, v in terms.items()},
        }

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """`probs` (TRN p), `pin_probs` (PIN q), `region_weights` (B, R), whole-face `au` (B, K)."""
        net = self._networks(images)
        out = {
            "probs": torch.softmax(net["trn_logits"], dim=1),
            "pin_probs": torch.softmax(net["pin_logits"].float(), dim=1),
            "region_weights": net["region_weights"].float(),
            "au": net["branches"][list(REGIONS).index("whole")]["au"],
        }
        if self.uncertainty_head is not None:
            out["uncertainty_by_class"] = torch.sigmoid(
                self.uncertainty_head(net["pooled"]).float()
            )
        return out

    def on_epoch_start(self, epoch: int) -> None:
        """Re-derive the step counter from the epoch so a resumed run ramps as an unbroken one."""
        self._step = epoch * max(1, self.context.steps_per_epoch)

    # ------------------------------------------------------------------ scoring
    def readout(
        self, outputs: dict[str, np.ndarray], given_labels: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Score arrays: `soft_label` q, `uncertainty` u, `pred_probs` p, quality q[given] (blend).

        Method columns: `pin_given_prob` q[given], `trn_given_prob` p[given], `suspect`
        (argmax q != given), `pin_predicted` (argmax q, class index), `region_weights`
        (N, R) in `REGIONS` order, `au` (N, K) whole-face AU activations in `AU_IDS`
        order, and with the learned head `js_uncertainty` (the parameter-free value).
        """
        q = np.asarray(outputs["pin_probs"], dtype=np.float32)
        p = np.asarray(outputs["probs"], dtype=np.float32)
        given = np.asarray(given_labels, dtype=np.int64)
        rows = np.arange(len(given))
        js = js_uncertainty(torch.from_numpy(q), torch.from_numpy(given)).numpy()
        if "uncertainty_by_class" in outputs:
            uncertainty = np.asarray(outputs["uncertainty_by_class"], dtype=np.float32)[rows, given]
        else:
            uncertainty = js
        q_given = q[rows, given]
        p_given = p[rows, given]
        blend = self.options.quality_blend
        result = {
            "pred_probs": p,
            "soft_label": q,
            "uncertainty": uncertainty.astype(np.float32),
            "label_quality_signal": ((1.0 - blend) * q_given + blend * p_given).astype(np.float32),
            "pin_given_prob": q_given,
            "trn_given_prob": p_given,
            "suspect": q.argmax(axis=1) != given,
            "pin_predicted": q.argmax(axis=1).astype(np.int64),
            "region_weights": np.asarray(outputs["region_weights"], dtype=np.float32),
            "au": np.asarray(outputs["au"], dtype=np.float32),
        }
        if "uncertainty_by_class" in outputs:
            result["js_uncertainty"] = js.astype(np.float32)
        return result

    def extra_state(self) -> dict[str, Any]:
        """The optimizer step count that drives the transfer ramp."""
        return {"step": int(self._step)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore the step count saved by `extra_state`."""
        self._step = int(state["step"])
