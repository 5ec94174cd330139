"""Batched augmentation: shapes, determinism from the generator, and what each transform does."""

from __future__ import annotations

import torch

from fercleaner.training.augment import augment_batch, to_model_input


def _batch(b: int = 8, c: int = 1, size: int = 16) -> torch.Tensor:
    return torch.randn(b, c, size, size, generator=torch.Generator().manual_seed(1))


def test_to_model_input_layout_and_normalisation():
    images = torch.full((2, 8, 8, 3), 255, dtype=torch.uint8)
    x = to_model_input(images, channels_last=True)
    assert x.shape == (2, 3, 8, 8) and x.dtype == torch.float32
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(
        x[0, :, 0, 0], torch.tensor([(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225])
    )


def test_same_generator_seed_same_result_and_shape():
    x = _batch(c=3)
    kwargs = dict(flip=True, shift=3, erase_prob=0.5, erase_max_area=0.3)
    a = augment_batch(x, generator=torch.Generator().manual_seed(7), **kwargs)
    b = augment_batch(x, generator=torch.Generator().manual_seed(7), **kwargs)
    c = augment_batch(x, generator=torch.Generator().manual_seed(8), **kwargs)
    assert a.shape == x.shape
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_flip_mirrors_a_subset_exactly():
    x = _batch(b=64)
    y = augment_batch(x, generator=torch.Generator().manual_seed(0), flip=True)
    flipped = [torch.equal(y[i], x[i].flip(2)) for i in range(64)]
    kept = [torch.equal(y[i], x[i]) for i in range(64)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 10 < sum(flipped) < 54


def test_shift_translates_with_zero_padding():
    x = torch.zeros(32, 1, 9, 9)
    x[:, :, 4, 4] = 1.0  # one bright pixel in the centre
    y = augment_batch(x, generator=torch.Generator().manual_seed(0), flip=False, shift=2)
    positions = [divmod(int(y[i, 0].argmax()), 9) for i in range(32)]
    assert all(abs(r - 4) <= 2 and abs(c - 4) <= 2 for r, c in positions)
    assert len(set(positions)) > 3
    assert torch.allclose(y.sum(dim=(1, 2, 3)), torch.ones(32))  # moved, not smeared


def test_erasing_zeroes_a_rectangle_in_some_images():
    x = torch.ones(64, 2, 16, 16)
    y = augment_batch(
        x,
        generator=torch.Generator().manual_seed(0),
        flip=False,
        erase_prob=0.5,
        erase_max_area=0.25,
    )
    erased = (y == 0).any(dim=(1, 2, 3))
    assert 10 < int(erased.sum()) < 54
    area = (y[erased, 0] == 0).float().mean(dim=(1, 2))
    assert float(area.max()) <= 0.25 * 1.5 + 1e-6
    assert torch.equal(y[:, 0] == 0, y[:, 1] == 0)  # every channel of a pixel is erased
