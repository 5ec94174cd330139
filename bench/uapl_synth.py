"""UAPL vs the baseline on synthetic faces with planted flips, occluders and true soft labels.

Trains each method through the real trainer (in-sample, one fold) and prints one JSON
line per method: accuracy against the clean labels, average precision of
1 - label_quality_signal for the planted flips, KL(true soft label || soft_label) (and of
the method's own softmax), and for UAPL the mean eye/mouth gates and occlusion signal by
occluder kind. `--annotated` hands the true AU and VA to the trainer as annotations, the
setting LDL-ALSG's label topology assumes.

    .venv/bin/python bench/uapl_synth.py [--n 1000] [--epochs 15] [--backbone test_resnet]
        [--methods uapl,baseline] [--annotated] [--option lambda_max=0 ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--backbone", default="test_resnet")
    parser.add_argument("--methods", default="uapl,baseline")
    parser.add_argument("--noise-rate", type=float, default=0.2)
    parser.add_argument("--annotated", action="store_true", help="pass true AU/VA as annotations")
    parser.add_argument("--option", action="append", default=[], help="uapl option key=value")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from fercleaner.classes import CANONICAL_CLASSES
    from fercleaner.config import load_recipe
    from fercleaner.priors import AU_IDS, au_column
    from fercleaner.synth import generate_faces
    from fercleaner.training.trainer import TrainData, train_and_score

    classes = CANONICAL_CLASSES[:7]  # contempt is rare in real FER data; keep 7 like FER2013
    images, truth = generate_faces(
        args.n,
        seed=args.seed,
        size=args.size,
        classes=classes,
        occlusion_rate=0.3,
        ambiguity_rate=0.3,
        noise_rate=args.noise_rate,
    )
    code = {c: i for i, c in enumerate(classes)}
    given = truth["given_label"].map(code).to_numpy(dtype=np.int64)
    data = TrainData(
        images=images[..., None],
        rows=np.arange(args.n),
        labels=given,
        train_mask=np.ones(args.n, dtype=bool),
        classes=classes,
        sample_ids=np.array([f"face{i}" for i in range(args.n)]),
    )
    if args.annotated:
        data.au_targets = truth[[au_column(a) for a in AU_IDS]].to_numpy(np.float32)
        data.va_targets = truth[["valence", "arousal"]].to_numpy(np.float32)

    for method in args.methods.split(","):
        overrides = [
            f"method.name={method}",
            f"train.epochs={args.epochs}",
            f"data.image_size={args.size}",
            f"backbone.name={args.backbone}",
            "train.device=cpu",
            "train.precision=fp32",
            f"train.seed={args.seed}",
        ]
        if method == "uapl":
            overrides += [f"method.options.{item}" for item in args.option]
        recipe = load_recipe("quick", overrides=overrides)
        start = time.perf_counter()
        result = train_and_score(data, recipe, method_name=method)
        seconds = round(time.perf_counter() - start, 1)
        out = _summary(args, method, result.readout, seconds, truth=truth, classes=classes)
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()
        torch.manual_seed(args.seed)
    return 0


def _summary(args, method: str, r: dict, seconds: float, *, truth, classes) -> dict:
    """One method's JSON line: accuracy, flip AP, soft-label KL, and gates by occluder."""
    import numpy as np
    from sklearn.metrics import average_precision_score

    code = {c: i for i, c in enumerate(classes)}
    given = truth["given_label"].map(code).to_numpy(dtype=np.int64)
    clean = truth["clean_label"].map(code).to_numpy(dtype=np.int64)
    soft = np.stack(truth["soft_label"].to_numpy()).astype(np.float64)  # (N, C)
    noisy = truth["is_noisy"].to_numpy()
    occluder = truth["occluder"].to_numpy(dtype=object)
    rows = np.arange(len(given))

    def kl(q: np.ndarray) -> float:
        p = np.clip(soft, 1e-12, 1.0)
        return round(float((soft * (np.log(p) - np.log(np.clip(q, 1e-8, 1.0)))).sum(1).mean()), 4)

    out: dict = {
        "method": method,
        "n": args.n,
        "epochs": args.epochs,
        "backbone": args.backbone,
        "annotated": args.annotated,
        "options": args.option if method == "uapl" else [],
        "seconds": seconds,
        "acc_clean": round(float((r["pred_probs"].argmax(1) == clean).mean()), 4),
        "ap_flip": round(float(average_precision_score(noisy, 1 - r["label_quality_signal"])), 4),
        "ap_flip_own_softmax": round(
            float(average_precision_score(noisy, 1 - r["pred_probs"][rows, given])), 4
        ),
        "kl_soft_label": kl(r["soft_label"]),
        "kl_own_softmax": kl(r["pred_probs"]),
        "flip_rate": round(float(noisy.mean()), 4),
    }
    if "gate_mouth" in r:
        eyes = (r["gate_left_eye"] + r["gate_right_eye"]) / 2
        for name, values in (
            ("eye_gate", eyes),
            ("mouth_gate", r["gate_mouth"]),
            ("occlusion", r["occlusion"]),
        ):
            out[name] = {
                kind: round(float(values[occluder == kind].mean()), 4)
                for kind in ("none", "glasses", "hand")
            }
    return out


if __name__ == "__main__":
    raise SystemExit(main())
