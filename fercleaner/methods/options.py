"""Each built-in method's `method.options`: frozen dataclasses, one docstring per field.

They live apart from the methods so that a recipe is checked without importing torch
(`fercleaner.config.method_options`; a `fercleaner score --predictions` run trains
nothing and never imports it). Each method module registers its class with
`register_method(name, options=...)`; `BUILTIN_OPTIONS` names them for the registry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar

from fercleaner.config.options import Check, at_least, greater_than, in_range, one_of


@dataclass(frozen=True)
class BaselineOptions:
    """The baseline's `method.options`; empty = plain cross-entropy."""

    small_loss_fraction: float = 0.0
    """Share of each batch's highest losses left out of the loss (0 = plain cross-entropy)."""
    small_loss_start: float = 0.4
    """Fraction of the epochs trained on every sample before the selection starts."""

    #: Range rules, checked with the recipe (`fercleaner.config.options_from_dict`).
    checks: ClassVar[dict[str, Check]] = {
        "small_loss_fraction": in_range(0, 1, high_open=True),
        "small_loss_start": in_range(0, 1, high_open=True),
    }


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
    """Weight the CE by 1/sqrt(class count) (mean 1); off by default: it cost label-error AP on
    FERPlus."""
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
    """Share of the prototype softmax in label_quality_signal (the rest: the classifier's
    p_given)."""

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


@dataclass(frozen=True)
class POIOptions:
    """POI's `method.options`; every field can be set from a recipe."""

    trn_backbone: str = "shared"
    """`shared` (one backbone pass for PIN and TRN) or `separate` (TRN has its own backbone, ~2x
    cost)."""
    region_stage: int | None = None
    """Backbone stage whose map PIN crops; None = deepest non-final stage at least 6 cells wide."""
    whole_from_last: bool = False
    """Feed PIN's whole-face branch the deepest stage instead of the region stage's map."""
    region_dim: int = 128
    """Channels of each region branch's conv."""
    tau: float = 4.0
    """Initial scale of the prior evidence (learnable per region)."""
    kappa: float = 0.5
    """Softening of the AU norm in the evidence (0 = plain |a|)."""
    temperature: float = 2.0
    """Distillation temperature T of the PIN -> TRN transfer."""
    ramp_epochs: float | None = None
    """Epochs over which the transfer weight ramps up; None = a quarter of the run (at least 1)."""
    dml_weight: float = 1.0
    """Weight of the mutual-learning KL between region branches."""
    au_weight: float = 1.0
    """Weight of the AU loss on annotated AUs."""
    weak_au_weight: float = 0.5
    """Weight of the AU loss on targets derived from the label (rows with no AU annotation)."""
    uncertainty: str = "js"
    """`js` (parameter-free JS(q, onehot(y))/ln 2) or `learned` (a head trained to predict it)."""
    quality_blend: float = 0.0
    """Weight of TRN's p[given] in `label_quality_signal` (0 = PIN's q[given] only)."""

    #: Range and choice rules, checked with the recipe (`fercleaner.config.options_from_dict`).
    checks: ClassVar[dict[str, Check]] = {
        "trn_backbone": one_of("shared", "separate"),
        "uncertainty": one_of("js", "learned"),
        "region_stage": at_least(0),
        "region_dim": at_least(1),
        "tau": greater_than(0),
        "kappa": at_least(0),
        "temperature": greater_than(0),
        "ramp_epochs": greater_than(0),
        "dml_weight": at_least(0),
        "au_weight": at_least(0),
        "weak_au_weight": at_least(0),
        "quality_blend": in_range(0, 1),
    }


@dataclass(frozen=True)
class UaplOptions:
    """UAPL's `method.options`; every field can be set in a recipe."""

    k: int = 8
    """Neighbours per sample in each kNN graph."""
    lambda_max: float = 1.0
    """Weight of the task-guidance KL once ramped up."""
    ramp_epochs: int | None = None
    """Epochs over which lambda ramps up; None = epochs // 2 (at least 1)."""
    margin: float = 0.1
    """Required gap between the mean of a face's top-half gates and the rest."""
    margin_weight: float = 1.0
    """Weight of the gate margin loss."""
    region_weight: float = 0.5
    """Weight of the per-region auxiliary CE (each patch classifies the face on its own)."""
    gate_target_weight: float = 1.0
    """Weight of the BCE pulling each gate towards its region's certainty (0 = RAN-only gates)."""
    au_weight: float = 0.5
    """Weight of the AU head's BCE (annotated or weak prior targets)."""
    va_weight: float = 0.5
    """Weight of the VA head's MSE (annotated or centroid targets)."""
    patch_stage: int | None = None
    """Backbone stage to crop patches from; None = `choose_patch_stage`."""
    patch_dim: int = 64
    """Channels of each region's feature f_r."""
    crop_size: int = 3
    """Side of each roi crop on the patch stage map."""
    neck_dim: int = 128
    """Width of the embedding the heads (and the embedding kNN space) use."""
    readout_self_weight: float = 0.5
    """Share of the sample's own prediction in the readout soft label q (rest: neighbours)."""

    #: Range rules, checked with the recipe (`fercleaner.config.options_from_dict`).
    checks: ClassVar[dict[str, Check]] = {
        "k": at_least(1),
        "lambda_max": at_least(0),
        "ramp_epochs": at_least(0),
        "margin": at_least(0),
        "patch_stage": at_least(0),
        "patch_dim": at_least(4),
        "crop_size": at_least(1),
        "neck_dim": at_least(2),
        "readout_self_weight": in_range(0, 1),
    }


#: Built-in method name -> its options dataclass (what `registry.get_options_class`
#: answers without importing the method's module).
BUILTIN_OPTIONS: dict[str, type] = {
    "baseline": BaselineOptions,
    "mtac": MTACOptions,
    "poi": POIOptions,
    "uapl": UaplOptions,
}
