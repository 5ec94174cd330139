"""The recipe's shape: frozen dataclasses, one docstring per field, and the value rules they obey.

Types are checked while a recipe is built (`config.fields`); the ranges and choices here
are checked afterwards on the typed recipe, so every problem is reported together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fercleaner.scoring.flags import FLAG_RULES


@dataclass(frozen=True)
class BackboneSpec:
    """Which timm backbone to build and where its weights come from."""

    name: str = "resnet18"
    """timm model name (any model timm can build with features_only=True)."""
    pretrained: bool = False
    """Load timm hub weights (needs internet on first use)."""
    weights: str | None = None
    """Local weights file (.safetensors or torch file), loaded with weights_only=True."""
    drop_rate: float = 0.0
    """Dropout before the classifier heads, in [0, 1) (1 would drop every feature)."""


@dataclass(frozen=True)
class DataConfig:
    """What to read and how to decode it."""

    image_size: int = 48
    """Square side in pixels the cache resizes every image to."""
    channels: int | str = "auto"
    """1 (grayscale), 3 (RGB) or `auto` (1 when every probed image is grey)."""
    splits: tuple[str, ...] = ("train", "val", "test")
    """Splits to train on; every ingested sample is scored either way (cleaning covers all
    splits)."""
    layout: str | None = None
    """Dataset layout name; None detects it."""


@dataclass(frozen=True)
class MethodConfig:
    """Which registered method to train, and its options."""

    name: str = "baseline"
    """Registered method name (`fercleaner.methods.list_methods()`), or `all`."""
    options: dict[str, Any] = field(default_factory=dict)
    """Options of `name`, checked against the dataclass registered with it (`method_options`)."""
    options_for: str = ""
    """The method `options` belong to when `name` lists several (`all`, `a,b`); set when
    `--method` widens a recipe's method, empty = `name`."""


@dataclass(frozen=True)
class AugmentConfig:
    """Batched on-device augmentation applied to training images."""

    flip: bool = True
    """Random horizontal flip (faces are roughly symmetric)."""
    shift: int = 4
    """Maximum random translation in pixels (pad-and-crop)."""
    erase_prob: float = 0.25
    """Probability of erasing one random rectangle per image."""
    erase_max_area: float = 0.25
    """Largest erased area as a fraction of the image."""


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, schedule, cross-fitting, precision and seeds."""

    epochs: int | str = 10
    """Passes over the training samples (per fold), or `auto`: sized to the number of
    training images (`fercleaner.training.budget`), resolved before training."""
    batch_size: int = 128
    """Images per optimizer step per process; at least 2, since BatchNorm normalises over the
    batch."""
    lr: float = 1e-3
    """Peak learning rate (after warm-up)."""
    weight_decay: float = 0.05
    """Decoupled weight decay (AdamW) or L2 (SGD)."""
    optimizer: str = "adamw"
    """`adamw` or `sgd` (momentum 0.9, nesterov)."""
    schedule: str = "cosine"
    """`cosine` (decay to 0 after warm-up), `constant` or `onecycle` (torch's OneCycleLR)."""
    warmup_epochs: float | str = 1.0
    """Warm-up length in epochs (may be fractional), or `auto`: 15% of the epochs."""
    folds: int = 1
    """Cross-fitting K: >1 predicts every sample with a model that never saw it; 1 = in-sample
    with dynamics."""
    seed: int = 0
    """Seed for initialisation, shuffling, augmentation and fold assignment; >= 0 (numpy
    refuses negative seeds)."""
    precision: str = "auto"
    """`auto` (bf16 where the device supports it), `bf16` or `fp32`."""
    channels_last: bool = True
    """Use channels-last memory format (faster convolutions on CPU and recent GPUs)."""
    device: str = "auto"
    """`auto` (CUDA when present), `cpu` or `cuda`."""
    num_threads: int = 0
    """CPU threads for torch ops; 0 keeps torch's default (one per core), at most the
    machine's cores (checked before reading). 1 is faster on a busy shared machine."""
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """Training augmentation."""


@dataclass(frozen=True)
class ScoreConfig:
    """How every sample is predicted after training."""

    tta_flip: bool = True
    """Average predictions over the image and its mirror."""
    batch_size: int = 256
    """Images per inference batch."""
    dynamics: bool = False
    """Also rank by the training-dynamics source (late AUM): on in the default recipe, where
    it raised AP on real annotator noise (docs/benchmarks.md). Ignored with folds > 1 (no
    in-sample signal then); with `--method all` it is the first method's."""
    flag_rule: str = "noise_rate"
    """`noise_rate` (per given/true pair, by margin) or `class` (per class, by label quality);
    docs/scoring.md."""


@dataclass(frozen=True)
class Recipe:
    """A complete, resolved scoring recipe."""

    data: DataConfig = field(default_factory=DataConfig)
    """Reading and decoding."""
    backbone: BackboneSpec = field(default_factory=BackboneSpec)
    """timm backbone and its weights."""
    method: MethodConfig = field(default_factory=MethodConfig)
    """Method and options."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Training."""
    score: ScoreConfig = field(default_factory=ScoreConfig)
    """Prediction."""


#: Allowed values for string options, checked together with types.
_CHOICES: dict[str, tuple[Any, ...]] = {
    "data.channels": ("auto", 1, 3),
    "train.optimizer": ("adamw", "sgd"),
    "train.schedule": ("cosine", "constant", "onecycle"),
    "train.precision": ("auto", "bf16", "fp32"),
    "train.device": ("auto", "cpu", "cuda"),
    "score.flag_rule": FLAG_RULES,
}
#: The value of `train.epochs` / `train.warmup_epochs` that sizes training to the dataset.
AUTO = "auto"
#: Keys whose value must be positive (> 0).
_POSITIVE = (
    "data.image_size",
    "train.lr",
    "train.folds",
    "score.batch_size",
)


def check_values(recipe: Recipe) -> list[str]:
    """Range and choice checks on a type-correct recipe."""
    errors = []
    for key, choices in _CHOICES.items():
        value = _get(recipe, key)
        if value not in choices:
            errors.append(f"{key}: {value!r} is not one of {', '.join(map(str, choices))}")
    for key, low in (("train.epochs", 1), ("train.warmup_epochs", 0)):
        value = _get(recipe, key)
        if value != AUTO and (isinstance(value, str) or value < low):
            errors.append(f"{key}: must be `auto` or a number >= {low}, got {value!r}")
    if isinstance(recipe.train.epochs, float) and not recipe.train.epochs.is_integer():
        errors.append(f"train.epochs: must be a whole number, got {recipe.train.epochs!r}")
    for key in _POSITIVE:
        if not _get(recipe, key) > 0:
            errors.append(f"{key}: must be > 0, got {_get(recipe, key)!r}")
    if recipe.train.batch_size < 2:  # a one-image batch has one value per channel at 1x1 maps
        errors.append(
            "train.batch_size: must be >= 2 (BatchNorm normalises over the batch), got"
            f" {recipe.train.batch_size!r}"
        )
    for key in (
        "train.weight_decay",
        "train.augment.shift",
        "train.num_threads",
        "train.seed",
    ):
        if _get(recipe, key) < 0:
            errors.append(f"{key}: must be >= 0, got {_get(recipe, key)!r}")
    for key in ("train.augment.erase_prob", "train.augment.erase_max_area"):
        if not 0 <= _get(recipe, key) <= 1:
            errors.append(f"{key}: must be in [0, 1], got {_get(recipe, key)!r}")
    if not 0 <= recipe.backbone.drop_rate < 1:
        errors.append(
            "backbone.drop_rate: must be in [0, 1) (1 would drop every feature), got"
            f" {recipe.backbone.drop_rate!r}"
        )
    bad_splits = [s for s in recipe.data.splits if s not in ("train", "val", "test")]
    if bad_splits or not recipe.data.splits:
        errors.append(
            f"data.splits: {list(recipe.data.splits)!r} must be a non-empty list of "
            "train, val, test"
        )
    return errors


def _get(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj
