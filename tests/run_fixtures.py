"""Generate small scored run directories for review and export tests (and the startup bench).

A run here is what `fercleaner score` leaves behind, minus training: tiny PNG faces and a
contract-conformant `scores.parquet` (with `fercleaner` file metadata) whose suspects are
planted at known rows, so tests can assert what the queue and the export do with them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from fercleaner.scoring import write_scores

CLASSES: list[str] = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear"]
RUN_ID = "run-test-0001"
#: Recipe overrides for a real but tiny training run (one epoch of a small test network).
TINY_TRAINING = [
    "backbone.name=test_resnet",
    "data.image_size=32",
    "train.batch_size=16",
    "train.epochs=1",
    "score.batch_size=64",
    "train.num_threads=1",
]
FINGERPRINT = "sha256:test-fingerprint"


def write_faces(root: Path, n_images: int, *, size: int = 48, seed: int = 0) -> list[Path]:
    """Write `n_images` distinct little grey 'faces' (PNG) under `root/img` and return paths."""
    rng = np.random.default_rng(seed)
    out = root / "img"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n_images):
        img = Image.new("L", (size, size), int(rng.integers(30, 90)))
        draw = ImageDraw.Draw(img)
        draw.ellipse((6, 4, size - 6, size - 2), fill=int(rng.integers(140, 220)))
        eye = int(rng.integers(2, 5))
        draw.ellipse((14, 16, 14 + eye * 2, 16 + eye), fill=20)
        draw.ellipse((size - 20, 16, size - 20 + eye * 2, 16 + eye), fill=20)
        smile = int(rng.integers(-6, 7))
        draw.arc(
            (14, 26 - abs(smile), size - 14, 36 + abs(smile)),
            0 if smile > 0 else 180,
            180 if smile > 0 else 360,
            fill=30,
            width=2,
        )
        path = out / f"face_{i:05d}.png"
        img.save(path)
        paths.append(path)
    return paths


def make_scores_frame(n: int, *, image_paths: list[Path], seed: int = 0) -> pd.DataFrame:
    """A scores table of `n` rows; rows 0-5 are planted suspects (see the assignments below).

    Row 0: mislabeled happiness -> surprise, row 1: mislabeled happiness -> surprise,
    row 2: mislabeled happiness -> surprise, row 3: mislabeled sadness -> fear,
    row 4: ambiguous anger (proposed disgust), row 5: outlier neutral (proposed neutral).
    Every other row is clean (`issue_type` none, high `label_quality`).
    """
    rng = np.random.default_rng(seed)
    c = len(CLASSES)
    given = rng.integers(0, c, n)
    probs = rng.dirichlet(np.full(c, 0.3), n).astype(np.float32)
    probs = 0.3 * probs
    probs[np.arange(n), given] += 0.7  # clean rows: the model agrees with the given label
    idx = {name: i for i, name in enumerate(CLASSES)}
    issue = np.array(["none"] * n, dtype=object)
    proposed = given.copy()
    planted = [
        ("happiness", "surprise", "mislabeled"),
        ("happiness", "surprise", "mislabeled"),
        ("happiness", "surprise", "mislabeled"),
        ("sadness", "fear", "mislabeled"),
        ("anger", "disgust", "ambiguous"),
        ("neutral", "neutral", "outlier"),
    ]
    for row, (g, p, kind) in enumerate(planted[: min(n, len(planted))]):
        given[row], proposed[row], issue[row] = idx[g], idx[p], kind
        vec = np.full(c, 0.02, dtype=np.float32)
        if kind == "mislabeled":
            vec[idx[p]], vec[idx[g]] = 0.8 - 0.1 * (row % 3), 0.05
        elif kind == "ambiguous":
            vec[idx[g]], vec[idx[p]] = 0.4, 0.45
        else:
            vec[:] = 1.0 / c
        probs[row] = vec / vec.sum()
    quality = probs[np.arange(n), given].astype(np.float64)
    predicted = probs.argmax(1)
    soft = (0.5 * probs + 0.5 * np.eye(c, dtype=np.float32)[given]).astype(np.float32)
    splits = np.array(["train", "val", "test"])[np.arange(n) % 3]
    names = np.array(CLASSES, dtype=object)
    paths = [str(image_paths[i % len(image_paths)]) for i in range(n)]
    return pd.DataFrame(
        {
            "sample_id": [f"img/face_{i:05d}.png" for i in range(n)],
            "split": splits,
            "given_label": names[given],
            "predicted_label": names[predicted],
            "proposed_label": names[proposed],
            "label_quality": quality,
            "is_label_issue": issue != "none",
            "issue_type": issue,
            "uncertainty": 1.0 - probs.max(1).astype(np.float64),
            "pred_probs": list(probs),
            "soft_label": list(soft),
            "mtac_confidence": rng.random(n),
            "dynamics_label_quality_signal": quality,
            "path": paths,
        }
    )


def write_scores_file(path: Path, frame: pd.DataFrame, *, dataset_root: Path) -> None:
    """Write `frame` as scores.parquet with the contract's `fercleaner` metadata."""
    meta = {
        "classes": CLASSES,
        "method": "mtac",
        "recipe": {"method": "mtac", "backbone": "resnet18", "epochs": 1},
        "run_id": RUN_ID,
        "dataset_root": str(dataset_root),
        "dataset_fingerprint": FINGERPRINT,
        "layout": "imagefolder",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_scores(frame, path, metadata=meta)


def make_run(tmp: Path, *, n: int = 36, n_images: int | None = None, seed: int = 0) -> Path:
    """Write a dataset folder and a scored run for it under `tmp`; return the run dir."""
    data_root = tmp / "faces"
    image_paths = write_faces(data_root, n if n_images is None else n_images, seed=seed)
    run_dir = tmp / "run"
    write_scores_file(
        run_dir / "scores.parquet",
        make_scores_frame(n, image_paths=image_paths, seed=seed),
        dataset_root=data_root,
    )
    return run_dir
