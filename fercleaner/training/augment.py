"""Batched tensor augmentation on the training device: flip, shift (pad-and-crop), random erasing.

Everything is vectorised over the batch (no per-image Python), and every random draw
comes from an explicit CPU `torch.Generator`, so a resumed epoch repeats exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: ImageNet statistics; grey images use their channel mean.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def to_model_input(
    images: torch.Tensor, *, device: torch.device | str = "cpu", channels_last: bool = False
) -> torch.Tensor:
    """uint8 (B, H, W, C) -> normalised float32 (B, C, H, W) on `device`."""
    x = images.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)  # (B,C,H,W)
    channels = x.shape[1]
    if channels == 3:
        mean = torch.tensor(_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(_STD, device=x.device).view(1, 3, 1, 1)
    else:
        mean = torch.full((1, channels, 1, 1), sum(_MEAN) / 3, device=x.device)
        std = torch.full((1, channels, 1, 1), sum(_STD) / 3, device=x.device)
    x = (x - mean) / std
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    return x.contiguous(memory_format=memory_format)


def augment_batch(
    x: torch.Tensor,
    *,
    generator: torch.Generator,
    flip: bool = True,
    shift: int = 0,
    erase_prob: float = 0.0,
    erase_max_area: float = 0.25,
) -> torch.Tensor:
    """Augment a normalised (B, C, H, W) batch; returns a new tensor of the same shape.

    Args:
        x: (B, C, H, W) float, already normalised (erased pixels become 0 = the mean).
        generator: CPU generator for every random draw (determinism and resume).
        flip: mirror each image with probability 1/2.
        shift: translate by up to `shift` pixels in each axis (zero padding).
        erase_prob: probability that one random rectangle per image is erased.
        erase_max_area: largest erased area as a fraction of the image.
    """
    b, _, h, w = x.shape
    device = x.device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator).to(device)

    if flip:
        mirror = (rand(b) < 0.5).view(b, 1, 1, 1)  # (B,1,1,1)
        x = torch.where(mirror, x.flip(3), x)
    if shift > 0:
        # Translate with one batched gather: each image reads from (row - dy, col - dx).
        dy = torch.randint(-shift, shift + 1, (b,), generator=generator).to(device)
        dx = torch.randint(-shift, shift + 1, (b,), generator=generator).to(device)
        padded = F.pad(x, (shift, shift, shift, shift))  # (B,C,H+2s,W+2s)
        rows = torch.arange(h, device=device).view(1, h) + shift - dy.view(b, 1)  # (B,H)
        cols = torch.arange(w, device=device).view(1, w) + shift - dx.view(b, 1)  # (B,W)
        bidx = torch.arange(b, device=device).view(b, 1, 1)
        x = padded.permute(0, 2, 3, 1)[bidx, rows.view(b, h, 1), cols.view(b, 1, w)]  # (B,H,W,C)
        x = x.permute(0, 3, 1, 2)
    if erase_prob > 0:
        area = rand(b) * (erase_max_area - 0.02) + 0.02  # fraction of the image
        aspect = torch.exp((rand(b) - 0.5) * 2 * 1.2)  # log-uniform in [e^-1.2, e^1.2]
        eh = (torch.sqrt(area * aspect) * h).clamp(1, h)
        ew = (torch.sqrt(area / aspect) * w).clamp(1, w)
        top = rand(b) * (h - eh)
        left = rand(b) * (w - ew)
        ys = torch.arange(h, device=device).view(1, h, 1)
        xs = torch.arange(w, device=device).view(1, 1, w)
        inside = (
            (ys >= top.view(b, 1, 1))
            & (ys < (top + eh).view(b, 1, 1))
            & (xs >= left.view(b, 1, 1))
            & (xs < (left + ew).view(b, 1, 1))
        )  # (B,H,W)
        erase = inside & (rand(b) < erase_prob).view(b, 1, 1)
        x = x.masked_fill(erase.unsqueeze(1), 0.0)
    return x  # the caller sets the memory format it trains with
