"""Are synthetic faces learnable? Train a tiny CNN on clean labels, print held-out accuracy as JSON.

The check behind "classes differ visibly": at 48 px a 3-layer CNN should beat chance
(1/8) by far within a few CPU epochs. Also reports accuracy on occluded and ambiguous
faces, which should be lower (they are meant to be harder).

    .venv/bin/python bench/synth_learnability.py [--n-train 4000] [--n-test 1000] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=4000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch
    from torch import nn

    from fercleaner.classes import CANONICAL_CLASSES
    from fercleaner.synth import generate_faces

    torch.manual_seed(args.seed)
    n = args.n_train + args.n_test
    images, truth = generate_faces(
        n, seed=args.seed, size=args.size, occlusion_rate=0.1, ambiguity_rate=0.2
    )
    x = torch.from_numpy(images).float().div(255).unsqueeze(1)  # (N, 1, H, W)
    x = (x - x.mean(dim=(2, 3), keepdim=True)) / (x.std(dim=(2, 3), keepdim=True) + 1e-6)
    y = torch.tensor([CANONICAL_CLASSES.index(c) for c in truth["clean_label"]])
    train, test = slice(0, args.n_train), slice(args.n_train, n)

    def block(c_in: int, c_out: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)
        )

    side = args.size // 8  # keep where features are: brow height vs eyes is the signal
    model = nn.Sequential(
        block(1, 16),
        block(16, 32),
        block(32, 32),
        nn.Flatten(),
        nn.Dropout(0.3),
        nn.Linear(32 * side * side, 8),
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-3)
    t0 = time.perf_counter()
    for _ in range(args.epochs):
        model.train()
        order = torch.randperm(args.n_train)
        for start in range(0, args.n_train, 64):
            idx = order[start : start + 64]
            xb = x[train][idx]
            xb = torch.where(torch.rand(len(idx), 1, 1, 1) < 0.5, xb, xb.flip(3))  # mirror
            loss = nn.functional.cross_entropy(model(xb), y[train][idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    train_s = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        pred = model(x[test]).argmax(1).numpy()
    correct = pred == y[test].numpy()
    held = truth.iloc[args.n_train :]
    occluded = held["occluded"].to_numpy()
    ambiguous = held["ambiguous"].to_numpy()
    result = {
        "bench": "synth_learnability",
        "n_train": args.n_train,
        "n_test": args.n_test,
        "epochs": args.epochs,
        "size": args.size,
        "chance": round(1 / len(CANONICAL_CLASSES), 3),
        "test_accuracy": round(float(correct.mean()), 3),
        "accuracy_occluded": round(float(correct[occluded].mean()), 3) if occluded.any() else None,
        "accuracy_ambiguous": round(float(correct[ambiguous].mean()), 3)
        if ambiguous.any()
        else None,
        "accuracy_plain": round(float(correct[~occluded & ~ambiguous].mean()), 3),
        "per_class": {
            c: round(float(correct[held["clean_label"].to_numpy() == c].mean()), 3)
            for c in CANONICAL_CLASSES
        },
        "train_s": round(train_s, 1),
        "torch_threads": torch.get_num_threads(),
    }
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
