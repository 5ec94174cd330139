"""The bench's references: plain cross-entropy in-sample and with cleanlab on K folds, cached.

Both come from `fercleaner.bench.plain_reference` (one frozen training protocol), run as a
measured child process, so fercleaner is compared with the strongest plain peer rather
than with its own trainer:

- `plain_ce`: one model scored on its own training data; label quality = p[given] after
  flip averaging, flags = argmax != given, proposal = argmax.
- `cleanlab_cv<K>`: the same trainer per fold (seed + fold), out-of-fold probabilities ->
  `cleanlab.filter.find_label_issues` and `cleanlab.rank.get_label_quality_scores`.

A reference costs up to half an hour of CPU per run, and variants of fercleaner are
compared many times against the same noisy labels, so each result is cached under
`<cache root>/bench-references/<key>.parquet` (+ `.json` with the cost measured when it
was trained). The key hashes the protocol version, the recipe, folds, seed and every
(sample_id, given_label) pair, so a different slice, noise draw or protocol never hits.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fercleaner.arrays import get_normalized_entropy, to_matrix
from fercleaner.bench.plain_reference import PROTOCOL_VERSION, PlainRecipe
from fercleaner.bench.resources import run_measured
from fercleaner.bench.systems import (
    SystemScores,
    align_columns,
    get_reference_scores,
)
from fercleaner.errors import FercleanerError

#: The child process's entry point (`python -c`).
_ENTRY = "import sys; from fercleaner.bench.plain_reference import main; main(sys.argv[1:])"
#: Reference names `run_benchmark` accepts.
REFERENCES = ("plain", "cleanlab")


@dataclass(frozen=True)
class ReferenceSpec:
    """One reference system: which probabilities (in-sample or K-fold) and which rule reads them."""

    name: str
    folds: int
    rule: str
    """`plain` (p[given], argmax != given) or `cleanlab`."""


def plan_references(references: list[str] | tuple[str, ...], *, folds: int) -> list[ReferenceSpec]:
    """The reference systems for the requested names, in a fixed order."""
    unknown = sorted(set(references) - set(REFERENCES))
    if unknown:
        raise FercleanerError(f"unknown references {unknown}; choose from {', '.join(REFERENCES)}")
    if "cleanlab" in references and folds < 2:
        raise FercleanerError(f"the cross-validated reference needs folds >= 2; got {folds}")
    specs = []
    if "plain" in references:
        specs.append(ReferenceSpec("plain_ce", 1, "plain"))
    if "cleanlab" in references:
        specs.append(ReferenceSpec(f"cleanlab_cv{folds}", folds, "cleanlab"))
    return specs


def get_reference_system(
    spec: ReferenceSpec,
    manifest: Path,
    truth: pd.DataFrame,
    classes: list[str],
    *,
    recipe: PlainRecipe,
    seed: int,
    cache_root: Path | None,
    log_path: Path,
) -> SystemScores:
    """Train (or read from the cache) the reference's probabilities and turn them into scores."""
    table, meta = _get_probs(
        manifest,
        truth,
        folds=spec.folds,
        recipe=recipe,
        seed=seed,
        cache_root=cache_root,
        log_path=log_path,
    )
    # the noisy dataset may lack a rare class: the reference never predicts it
    probs = align_columns(
        to_matrix(table["pred_probs"]),
        meta["classes"],
        classes,
    )
    index = {name: i for i, name in enumerate(classes)}
    labels = table["given_label"].astype(str).map(index).to_numpy(dtype=np.int64)
    ids = table["sample_id"].astype(str).to_numpy()
    if spec.rule == "cleanlab":
        system = get_reference_scores(spec.name, ids, labels, probs, classes, quality="cleanlab")
    else:
        system = get_plain_scores(spec.name, ids, labels, probs, classes)
    system.cost = {key: meta[key] for key in ("wall_s", "cpu_s", "peak_rss_mb") if key in meta}
    system.cost["cached"] = bool(meta.get("cached", False))
    return system


def get_plain_scores(
    name: str,
    sample_ids: np.ndarray,
    labels: np.ndarray,
    pred_probs: np.ndarray,
    classes: list[str],
) -> SystemScores:
    """The plain reference's reading: quality p[given], flag where argmax != given."""
    probs = np.asarray(pred_probs, dtype=np.float64)
    probs = probs / probs.sum(axis=1, keepdims=True)
    labels = np.asarray(labels, dtype=np.int64)
    predicted = probs.argmax(axis=1)
    return SystemScores(
        name=name,
        sample_ids=np.asarray(sample_ids, dtype=object),
        label_quality=probs[np.arange(len(labels)), labels],
        is_label_issue=predicted != labels,
        proposed_label=np.array(classes, dtype=object)[predicted],
        soft_label=probs,
        uncertainty=get_normalized_entropy(probs),
    )


def reference_cache_key(
    truth: pd.DataFrame, *, folds: int, recipe: PlainRecipe, seed: int, images: str = ""
) -> str:
    """A hash of everything the reference's probabilities depend on.

    Args:
        truth: the bench's truth table (`sample_id`, `given_label`).
        images: `get_images_digest` of the noisy dataset: other pixels, other key.
    """
    import timm
    import torch

    pairs = sorted(
        zip(truth["sample_id"].astype(str), truth["given_label"].astype(str), strict=True)
    )
    digest = hashlib.sha256()
    header = {
        "v": PROTOCOL_VERSION,
        "recipe": asdict(recipe),
        "folds": folds,
        "seed": seed,
        "images": images,
        "torch": torch.__version__,
        "timm": timm.__version__,
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    for sample_id, label in pairs:
        digest.update(f"{sample_id}\t{label}\n".encode())
    return digest.hexdigest()[:24]


def get_images_digest(folder: Path, sample_ids: list[str]) -> str:
    """SHA-256 over the bytes of every image, in sample_id order (a re-rendered set differs)."""
    digest = hashlib.sha256()
    for sample_id in sorted(sample_ids):
        digest.update(sample_id.encode())
        digest.update((folder / sample_id).read_bytes())
    return digest.hexdigest()


def get_default_reference_cache() -> Path:
    """Where `fercleaner bench` keeps reference results unless told otherwise."""
    from fercleaner.cache import default_cache_root

    return default_cache_root() / "bench-references"


def read_cached_references(
    bench_out: Path, cache: Path, classes: list[str], *, folds: Sequence[int] = (1,)
) -> dict[int, pd.DataFrame]:
    """The probabilities a finished bench run's references left in the cache (offline analysis).

    Args:
        bench_out: one bench run's output folder (its bench.json and noisy/ copy).
        folds: which references: 1 for the plain one (in-sample), K for cleanlab's K-fold
            (out-of-fold). The run's images are hashed once for all of them.

    Returns:
        folds -> a frame of sample_id -> `pred_probs` ((C,) arrays in `classes` order), for
        each reference the run trained with this cache (the others are left out).
    """
    header = json.loads((bench_out / "bench.json").read_text())
    truth = pd.read_parquet(bench_out / "noisy" / "truth.parquet")
    images = get_images_digest(
        bench_out / "noisy" / "dataset", truth["sample_id"].astype(str).tolist()
    )
    found = {}
    for k in folds:
        key = reference_cache_key(
            truth,
            folds=k,
            recipe=PlainRecipe(epochs=header["reference_epochs"]),
            seed=header["protocol"]["seed"],
            images=images,
        )
        path = cache / f"{key}.parquet"
        if not path.is_file() or not path.with_suffix(".json").is_file():
            continue
        classes_there = json.loads(path.with_suffix(".json").read_text())["classes"]
        table = pd.read_parquet(path).set_index("sample_id")
        probs = align_columns(np.stack(table["pred_probs"].to_list()), classes_there, classes)
        found[k] = pd.DataFrame({"pred_probs": list(probs)}, index=table.index)
    return found


def _get_probs(
    manifest: Path,
    truth: pd.DataFrame,
    *,
    folds: int,
    recipe: PlainRecipe,
    seed: int,
    cache_root: Path | None,
    log_path: Path,
) -> tuple[pd.DataFrame, dict]:
    images = get_images_digest(manifest.parent, truth["sample_id"].astype(str).tolist())
    key = reference_cache_key(truth, folds=folds, recipe=recipe, seed=seed, images=images)
    cached = cache_root / f"{key}.parquet" if cache_root is not None else None
    if cached is not None and cached.is_file() and cached.with_suffix(".json").is_file():
        meta = json.loads(cached.with_suffix(".json").read_text())
        return pd.read_parquet(cached), {**meta, "cached": True}
    out = log_path.with_suffix(".parquet")
    command = [
        # not `-m`: the package imports the module first and runpy would warn about it
        sys.executable,
        "-c",
        _ENTRY,
        str(manifest),
        "--out",
        str(out),
        "--folds",
        str(folds),
        "--seed",
        str(seed),
        "--epochs",
        str(recipe.epochs),
    ]
    if recipe != PlainRecipe(epochs=recipe.epochs):
        raise FercleanerError("only the epochs of the plain reference can be changed")
    result = run_measured(command, log_path=log_path)
    if result.returncode != 0:
        raise FercleanerError(
            f"the plain reference failed (exit {result.returncode}): {' '.join(command)}\n"
            f"last output ({result.log_path}):\n{result.tail()}"
        )
    meta = json.loads(out.with_name(out.name + ".json").read_text())
    meta.update(wall_s=result.wall_s, cpu_s=result.cpu_s, peak_rss_mb=result.peak_rss_mb)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out, cached.with_suffix(".parquet.tmp"))
        cached.with_suffix(".json.tmp").write_text(json.dumps(meta, indent=2))
        # the probabilities first: a .json beside a parquet is what marks an entry complete
        cached.with_suffix(".parquet.tmp").replace(cached)
        cached.with_suffix(".json.tmp").replace(cached.with_suffix(".json"))
    return pd.read_parquet(out), {**meta, "cached": False}
