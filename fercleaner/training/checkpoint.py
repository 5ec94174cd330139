"""Per-epoch checkpoints: written atomically, loaded `weights_only=True`, checked against the run.

A checkpoint carries everything needed to continue a killed run bit-for-bit: model,
optimizer, grad-scaler and method extra state, RNG states, the epochs of training
dynamics so far (their values are files beside it, `fold<k>.dynamics/`, written an epoch
at a time), and the resolved recipe + class list + data fingerprint it belongs to. A kill
during a save leaves the previous checkpoint and a stray temp file, which
`remove_stale_checkpoint_temporaries` clears before a run (re)starts.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fercleaner.atomic import atomic_path, remove_stale_temporaries
from fercleaner.config import Recipe, recipe_to_dict
from fercleaner.errors import CheckpointError

#: Bumped when the checkpoint layout changes incompatibly (2: dynamics as epoch files).
CHECKPOINT_FORMAT = 2


def get_data_fingerprint(sample_ids: np.ndarray, labels: np.ndarray, train_mask: np.ndarray) -> str:
    """Short hash of what a run trains on, so a checkpoint is never resumed on other data."""
    digest = hashlib.sha256()
    digest.update("\n".join(map(str, sample_ids)).encode())
    digest.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(train_mask, dtype=bool).tobytes())
    return digest.hexdigest()[:16]


#: Recipe keys that change how a trained model is read out or how fast it trains, never
#: its weights: `--resume` accepts new values for them (e.g. a smaller `score.batch_size`
#: after running out of memory at prediction time).
RESUMABLE_KEYS: tuple[str, ...] = ("score", "train.num_threads")


def get_checkpoint_recipe(recipe: Recipe) -> dict[str, Any]:
    """The part of the recipe a checkpoint must match on resume: all but `RESUMABLE_KEYS`."""
    return drop_resumable_keys(recipe_to_dict(recipe))


def drop_resumable_keys(plain: dict[str, Any]) -> dict[str, Any]:
    """A copy of a plain recipe without `RESUMABLE_KEYS` (those it lacks are skipped).

    Also applied to the recipe a checkpoint stores, so one written before a key became
    resumable (it stored the whole recipe) still resumes.
    """
    plain = copy.deepcopy(plain)
    for key in RESUMABLE_KEYS:
        *sections, name = key.split(".")
        node: Any = plain
        for section in sections:
            node = node.get(section) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(name, None)
    return plain


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically write `state` (tensors and plain data only) to `path`."""
    state = {"format": CHECKPOINT_FORMAT, **state}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def remove_stale_checkpoint_temporaries(checkpoints_dir: str | Path) -> list[Path]:
    """Delete the `.foldK.pt.XXXXXXXX.tmp` files a kill during `save_checkpoint` left behind.

    The checkpoint itself is intact (the rename never happened); only its temp file is
    garbage. Call before training resumes, while nothing else writes to `checkpoints_dir`.
    """
    return remove_stale_temporaries(checkpoints_dir, recursive=True)


def load_checkpoint(path: str | Path, *, expect: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read a checkpoint and check that its `expect` keys (recipe, classes, ...) match.

    Raises:
        CheckpointError: unreadable file, other format, or a mismatch (named key by key).
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist; run without --resume.") from None
    except Exception as exc:  # torch raises many types for a torn or foreign file
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); delete it and"
            " run without --resume."
        ) from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"checkpoint {path} is not a fercleaner checkpoint of format {CHECKPOINT_FORMAT}"
            " (another version wrote it); run without --resume."
        )
    found = dict(state)
    if isinstance(found.get("recipe"), dict):
        found["recipe"] = drop_resumable_keys(found["recipe"])
    mismatched = [k for k, v in (expect or {}).items() if found.get(k) != v]
    if mismatched:
        details = "; ".join(_describe_mismatch(k, found.get(k), expect[k]) for k in mismatched)
        raise CheckpointError(
            f"checkpoint {path} belongs to another run ({details}); resume with the same"
            " dataset, recipe and overrides, or use a new --out folder."
        )
    return state


def _describe_mismatch(key: str, found: Any, wanted: Any) -> str:
    if isinstance(found, dict) and isinstance(wanted, dict):
        diffs = _dict_diff(found, wanted)
        return f"{key} differs at {', '.join(diffs[:5])}"
    return f"{key} is {found!r}, this run has {wanted!r}"


def _dict_diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b), key=str):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out.extend(_dict_diff(va, vb, f"{prefix}{key}."))
        elif va != vb:
            out.append(f"{prefix}{key} ({va!r} vs {vb!r})")
    return out
