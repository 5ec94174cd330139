"""bench/scale.py's data: N cheap images in the `affectnet` and `csv` layouts and a scored run.

A few hundred distinct 48x48 PNGs hard-linked to N paths, a model's predictions for the
csv dataset, and a run (10% flagged) whose review store already holds decisions. Each
part is written by a child process of `bench/scale.py` (`generate:<part>`); numpy,
pandas and PIL are imported inside the functions so the parent stays small.
"""

from __future__ import annotations

import os
from pathlib import Path

N_TILES = 256
IMAGE_PX = 48
PER_FOLDER = 1000
FLAG_RATE = 0.1
CLASSES = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear"]
#: The csv dataset's predictions file (`fercleaner score --predictions`), under the work dir.
PREDICTIONS_FILE = "csv-predictions.npz"


def generate_part(work: Path, part: str, n: int, decisions: int) -> dict:
    """Write one part under `work`: the `affectnet` or `csv` dataset, a model's
    `predictions` for the csv dataset, or the scored `run`."""
    tiles = _write_tiles(work / "tiles")
    if part == "affectnet":
        _write_affectnet(work / "affectnet", tiles, n)
    elif part == "csv":
        _write_csv(work / "csv", tiles, n)
    elif part == "predictions":
        _write_predictions(work / PREDICTIONS_FILE, work / "csv" / "labels.csv")
    else:
        return {"decisions_in_store": _write_run(work / "run", work / "tiles", tiles, n, decisions)}
    return {}


def _write_tiles(folder: Path) -> list[Path]:
    """`N_TILES` distinct little grey PNGs (noise over a gradient), written once."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    ramp = np.linspace(40, 200, IMAGE_PX, dtype=np.float32)[None, :]
    paths = []
    for i in range(N_TILES):
        path = folder / f"t{i:03d}.png"
        if not path.exists():
            pixels = ramp + rng.normal(0, 25, (IMAGE_PX, IMAGE_PX))
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "L").save(path)
        paths.append(path)
    return paths


def _link_images(image_root: Path, tiles: list[Path], n: int) -> list[str]:
    """Hard-link tile i % N_TILES to `<image_root>/<i // 1000>/<i>.png`; relative names."""
    names = []
    for i in range(n):
        folder = f"{i // PER_FOLDER:04d}"
        if i % PER_FOLDER == 0:
            (image_root / folder).mkdir(parents=True, exist_ok=True)
        name = f"{folder}/{i:07d}.png"
        target = image_root / name
        if not target.exists():
            os.link(tiles[i % N_TILES], target)
        names.append(name)
    return names


def _write_affectnet(root: Path, tiles: list[Path], n: int) -> None:
    """training.csv (90%) and validation.csv (10%) over Manually_Annotated_Images/."""
    import numpy as np

    names = _link_images(root / "Manually_Annotated_Images", tiles, n)
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 8, n)
    va = np.round(rng.uniform(-1, 1, (n, 2)), 3)
    header = (
        "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,"
        "expression,valence,arousal\n"
    )
    cut = n - n // 10
    for file, lo, hi in (("training.csv", 0, cut), ("validation.csv", cut, n)):
        lines = [
            f'{names[i]},2,2,44,44,"",{codes[i]},{va[i, 0]},{va[i, 1]}\n' for i in range(lo, hi)
        ]
        (root / file).write_text(header + "".join(lines))


def _write_csv(root: Path, tiles: list[Path], n: int) -> None:
    """labels.csv with path,label,split over images/: 60% train, 39% test, and every 100th
    image `val`, the split the `infer` stage trains on (so its training stays small)."""
    import numpy as np

    names = _link_images(root / "images", tiles, n)
    rng = np.random.default_rng(2)
    labels = np.array(CLASSES)[rng.integers(0, len(CLASSES), n)]
    splits = np.array(["train", "train", "train", "test", "test"])[np.arange(n) % 5]
    splits[np.arange(n) % 100 == 1] = "val"
    lines = [f"images/{names[i]},{labels[i]},{splits[i]}\n" for i in range(n)]
    (root / "labels.csv").write_text("path,label,split\n" + "".join(lines))


def _write_predictions(path: Path, labels_csv: Path) -> None:
    """A model's probabilities for every image of the csv dataset (`fercleaner score
    --predictions`): the given class at ~0.7, and 10% of rows confident in another class."""
    import numpy as np
    import pandas as pd

    labels = pd.read_csv(labels_csv)
    given = labels["label"].map({name: i for i, name in enumerate(CLASSES)}).to_numpy()
    probs, _, _ = _model_probs(np.random.default_rng(4), given)
    np.savez(path, sample_id=labels["path"].to_numpy(dtype=str), pred_probs=probs)


def _model_probs(rng, given):
    """(probs (N, C) float32, flagged (N,) bool, proposed (N,)): a model that gives the
    given class ~0.7, except on `FLAG_RATE` of the rows, where it is confident (0.95) in
    another class, the proposal."""
    import numpy as np

    n, c = len(given), len(CLASSES)
    probs = (0.3 * rng.dirichlet(np.full(c, 0.3), n)).astype(np.float32)
    probs[np.arange(n), given] += 0.7
    flag = rng.random(n) < FLAG_RATE
    proposed = given.copy()
    proposed[flag] = (given[flag] + rng.integers(1, c, int(flag.sum()))) % c
    probs[flag] = 0.05 / c
    probs[flag, proposed[flag]] += 0.95
    return probs, flag, proposed


def _write_run(run_dir: Path, root: Path, tiles: list[Path], n: int, decisions: int) -> int:
    """scores.parquet (10% flagged, most suspect first) and a store with up to `decisions`
    decisions (the most suspect stay undecided); returns how many it holds."""
    import numpy as np
    import pandas as pd

    from fercleaner.review.store import Decision, DecisionStore
    from fercleaner.scoring import sort_most_suspect_first, write_scores

    rng = np.random.default_rng(3)
    c = len(CLASSES)
    given = rng.integers(0, c, n)
    probs, flag, proposed = _model_probs(rng, given)
    quality = probs[np.arange(n), given].astype(np.float64)
    names = np.array(CLASSES, dtype=object)
    soft = (0.5 * probs + 0.5 * np.eye(c, dtype=np.float32)[given]).astype(np.float32)
    frame = pd.DataFrame(
        {
            "sample_id": [f"img/{i:07d}.png" for i in range(n)],
            "split": np.array(["train", "val", "test"])[np.arange(n) % 3],
            "given_label": names[given],
            "predicted_label": names[probs.argmax(1)],
            "proposed_label": names[proposed],
            "label_quality": quality,
            "is_label_issue": flag,
            "issue_type": np.where(flag, "mislabeled", "none"),
            "uncertainty": 1.0 - probs.max(1).astype(np.float64),
            "pred_probs": list(probs),
            "soft_label": list(soft),
            "mtac_confidence": rng.random(n),
            "path": [str(tiles[i % N_TILES]) for i in range(n)],
        }
    )
    meta = {
        "classes": CLASSES,
        "method": "mtac",
        "recipe": {"method": "mtac"},
        "run_id": f"scale-{n}",
        "dataset_root": str(root),
        "dataset_fingerprint": "sha256:scale",
        "layout": "csv",
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "review.sqlite").unlink(missing_ok=True)
    # stored most suspect first, as `fercleaner score` stores a run
    write_scores(sort_most_suspect_first(frame), run_dir / "scores.parquet", metadata=meta)
    # the 1,000 most suspect (half of a small run) stay undecided: the queue has work in it
    order = np.argsort(quality, kind="stable")[min(1000, n // 2) :][:decisions]
    actions = np.array(["keep", "accept", "exclude"])[rng.integers(0, 3, len(order))]
    batch = [
        Decision(
            frame["sample_id"].iat[i],
            str(a),
            None if a == "exclude" else str(names[given[i]] if a == "keep" else names[proposed[i]]),
        )
        for i, a in zip(order.tolist(), actions.tolist(), strict=True)
    ]
    with DecisionStore(run_dir / "review.sqlite") as store:
        for start in range(0, len(batch), 100_000):
            store.record_many(batch[start : start + 100_000], reviewer="bench")
    return len(batch)
