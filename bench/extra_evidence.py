"""Does evidence beyond one trained model help rank wrong labels? Offline, on finished suite runs.

Issue 14 asks for evidence the given label does not already carry. Two cheap kinds are
checked here on the runs of a `fercleaner bench --suite` output, without training:

- a second model: the cached plain reference (same data and labels, another network and
  seed), combined with fercleaner's ranking (rank mean) or its probabilities (mean);
- label-independent image neighbours: for each face, the share of its k nearest faces
  (cosine, on HOG descriptors or on whitened pixel PCA; the labels play no part in the
  features) whose given label agrees with its own, alone and fused with fercleaner's
  ranking (weights 2:1).

Prints one JSON object: per run and on the mean, the AP of `1 - label_quality` for each
variant, and the F1 of argmax flags (argmax != given) of fercleaner's probabilities alone
(`f1_fercleaner`, not its own `is_label_issue` flags) and of the two-model mean. The plain
reference is the cache entry the bench itself wrote for the run (same key: labels,
images, seed, epochs), so each run needs the `plain` reference and the cache it used.

    .venv/bin/python bench/extra_evidence.py DIR/val-s0 DIR/train0-s0 ... [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.decomposition import PCA
from sklearn.metrics import average_precision_score, f1_score
from sklearn.neighbors import NearestNeighbors

from fercleaner.bench.references import get_default_reference_cache, read_cached_references


def get_hog(images: np.ndarray, *, cell: int = 6, bins: int = 9) -> np.ndarray:
    """(N, D) HOG descriptors of (N, H, W) uint8 faces: unsigned gradients, 2x2-cell blocks."""
    x = images.astype(np.float32) / 255.0
    gx, gy = np.zeros_like(x), np.zeros_like(x)
    gx[:, :, 1:-1] = x[:, :, 2:] - x[:, :, :-2]
    gy[:, 1:-1, :] = x[:, 2:, :] - x[:, :-2, :]
    magnitude = np.hypot(gx, gy)
    which = np.minimum((np.arctan2(gy, gx) % np.pi / np.pi * bins).astype(int), bins - 1)
    n, h, w = x.shape
    rows, cols = h // cell, w // cell
    cells = np.zeros((n, rows, cols, bins), np.float32)
    for i in range(rows):
        for j in range(cols):
            m = magnitude[:, i * cell : (i + 1) * cell, j * cell : (j + 1) * cell].reshape(n, -1)
            b = which[:, i * cell : (i + 1) * cell, j * cell : (j + 1) * cell].reshape(n, -1)
            for k in range(bins):
                cells[:, i, j, k] = (m * (b == k)).sum(axis=1)
    blocks = []
    for i in range(rows - 1):
        for j in range(cols - 1):
            v = cells[:, i : i + 2, j : j + 2, :].reshape(n, -1)
            blocks.append(v / np.sqrt((v**2).sum(axis=1, keepdims=True) + 1e-6))
    return np.concatenate(blocks, axis=1)


def get_neighbour_agreement(features: np.ndarray, labels: np.ndarray, *, k: int) -> np.ndarray:
    """(N,) share of each sample's k nearest others (cosine) that carry its given label."""
    index = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(features)
    _, neighbours = index.kneighbors(features)
    return (labels[neighbours[:, 1:]] == labels[:, None]).mean(axis=1)


def score_run(bench_out: Path, cache: Path) -> dict[str, float]:
    """AP of each variant (and F1 of the argmax flags) on one bench run."""
    from fercleaner.cache import build_cache
    from fercleaner.datasets import read_dataset
    from fercleaner.scoring import read_scores

    scored = read_scores(bench_out / "runs" / "fercleaner" / "scores.parquet")
    scores, classes = scored.frame, list(scored.classes)  # pred_probs' column order
    ids = scores["sample_id"].astype(str).to_numpy()
    truth = pd.read_parquet(bench_out / "noisy" / "truth.parquet").set_index("sample_id").loc[ids]
    labels = scores["given_label"].astype(str).map({c: i for i, c in enumerate(classes)})
    labels = labels.to_numpy()
    wrong = truth["is_noisy"].to_numpy(bool)
    rows = np.arange(len(ids))
    ours = scores["label_quality"].to_numpy(float)
    mine = np.stack(scores["pred_probs"].to_list())
    plain = read_cached_references(bench_out, cache, classes).get(1)
    if plain is None:
        header = json.loads((bench_out / "bench.json").read_text())
        raise SystemExit(
            f"no cached plain reference in {cache} for {bench_out}; rerun its bench command"
            f" ({header.get('command')}) with the plain reference, or pass the --cache it used"
        )
    plain = plain.loc[ids, "pred_probs"]
    plain = np.stack(plain.to_list())
    both = (mine + plain) / 2

    def ap(quality: np.ndarray) -> float:
        return float(average_precision_score(wrong, -quality))

    result = {
        "fercleaner": ap(ours),
        "plain": ap(plain[rows, labels]),
        "two_models_rank_mean": ap(rankdata(ours) + rankdata(plain[rows, labels])),
        "two_models_prob_mean": ap(both[rows, labels]),
        "f1_fercleaner": float(f1_score(wrong, mine.argmax(1) != labels)),
        "f1_two_models_prob_mean": float(f1_score(wrong, both.argmax(1) != labels)),
    }
    source = read_dataset(bench_out / "noisy" / "dataset" / "labels.csv")
    cached = build_cache(source.samples, size=48, channels=1)
    images = np.asarray(cached.images[cached.rows(ids)])[..., 0]
    pixels = images.reshape(len(images), -1).astype(np.float32)
    features = {
        "hog": get_hog(images),
        "pixel_pca": PCA(64, whiten=True, random_state=0).fit_transform(pixels),
    }
    for name, x in features.items():
        for k in (10, 30):
            agreement = get_neighbour_agreement(x, labels, k=k)
            result[f"{name}_knn{k}"] = ap(agreement)
            result[f"{name}_knn{k}_fused"] = ap(2 * rankdata(ours) + rankdata(agreement))
    return result


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: one JSON object on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench_out", type=Path, nargs="+", help="bench output folder (one run)")
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="the bench's reference cache (default: $FERCLEANER_CACHE/bench-references)",
    )
    args = parser.parse_args(argv)
    if args.cache is None:
        args.cache = get_default_reference_cache()
    runs = {path.name: score_run(path, args.cache) for path in args.bench_out}
    frame = pd.DataFrame(runs).T
    summary = {
        name: {"mean": float(frame[name].mean()), "sd": float(frame[name].std(ddof=1))}
        for name in frame.columns
    }
    json.dump({"runs": runs, "summary": summary}, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
