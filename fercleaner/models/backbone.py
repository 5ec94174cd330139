"""Build a timm backbone returning every stage's feature map, with weights from the hub or a file.

Methods need more than pooled features (UAPL and POI crop regions of mid-level maps),
so backbones are built with timm's `features_only=True`. Weights come from the timm hub
(`pretrained=True`, needs internet once) or a local file (safetensors or a torch
checkpoint, loaded with `weights_only=True`), never from pickled code.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from fercleaner.config.recipe import BackboneSpec
from fercleaner.errors import ConfigError, RegistryError


class Backbone(nn.Module):
    """timm feature extractor: `forward(x)` -> list of (B, C_s, H_s, W_s) maps, shallow to deep."""

    def __init__(self, features: nn.Module) -> None:
        super().__init__()
        self.features = features
        info = features.feature_info
        self.stage_channels: list[int] = list(info.channels())
        self.stage_reductions: list[int] = list(info.reduction())

    @property
    def num_features(self) -> int:
        """Channels of the deepest stage (the global feature size after pooling)."""
        return self.stage_channels[-1]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.features(x))


def create_backbone(spec: BackboneSpec, *, in_chans: int, max_stage: int | None = None) -> Backbone:
    """Build `spec.name` from timm with `in_chans` input channels and the requested weights.

    `max_stage` keeps stages 0..max_stage only (timm then builds no deeper layers), for a
    network that reads a mid-level map and would otherwise pay for stages it never uses.

    Raises:
        RegistryError: timm has no model of that name (the message lists close names).
        ConfigError: the weights file is missing or does not fit the model.
    """
    import timm

    if spec.name not in timm.list_models() and spec.name not in timm.list_models(pretrained=True):
        close = timm.list_models(f"*{spec.name.split('.')[0][:6]}*")[:8]
        raise RegistryError(
            f"unknown backbone {spec.name!r}; timm has no such model."
            + (f" Close names: {', '.join(close)}." if close else "")
            + " List them with: python -c 'import timm; print(timm.list_models())'"
        )
    kwargs: dict = {"features_only": True, "in_chans": in_chans, "drop_rate": spec.drop_rate}
    if max_stage is not None:
        kwargs["out_indices"] = tuple(range(max_stage + 1))
    if spec.weights:
        weights = Path(spec.weights).expanduser()
        if not weights.is_file():
            raise ConfigError(
                f"weights file {str(weights)!r} does not exist; pass an existing .safetensors or"
                " .pth file with --weights, or drop --weights to train from scratch."
            )
        # timm loads local files through the pretrained-cfg overlay, which also adapts the
        # first conv to `in_chans` and drops a classifier that does not fit.
        kwargs.update(pretrained=True, pretrained_cfg_overlay={"file": str(weights)})
    else:
        kwargs["pretrained"] = spec.pretrained
    try:
        model = timm.create_model(spec.name, **kwargs)
    except (RuntimeError, KeyError, ValueError) as exc:
        if spec.weights:
            raise ConfigError(
                f"weights file {spec.weights!r} does not fit backbone {spec.name!r}: {exc}"
            ) from exc
        raise
    return Backbone(model)
