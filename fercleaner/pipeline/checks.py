"""What `fercleaner score` checks before any work: recipe, method names, weights file, folds.

A bad command fails in seconds: the recipe, the method names and the weights file before
the dataset is read; the training splits' classes (two at least) and `train.folds`
against their counts, and the run directory's review decisions against the dataset,
right after reading (classes and folds again after decoding).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import yaml

from fercleaner.atomic import check_output_dir
from fercleaner.config import Recipe, load_recipe, recipe_to_dict
from fercleaner.errors import ConfigError, DatasetError, FercleanerError, OutputError


def check_before_work(
    recipe: str | Path | Recipe | None,
    overrides: Sequence[str],
    *,
    method: str | None,
    weights: str | Path | None,
    layout: str | None,
    out_dir: str | Path,
) -> tuple[Recipe, list[str], Path]:
    """Resolve the recipe and the method names, and check RUN_DIR and the weights file.

    Returns:
        (resolved recipe, method names with the primary first, absolute run directory).

    Raises:
        ConfigError: bad recipe or override, unknown method, unusable weights file.
        OutputError: `out_dir` is a file or not writable.
    """
    from fercleaner.methods.registry import check_method, list_methods

    extra = [f"backbone.weights={weights}"] * bool(weights) + [f"data.layout={layout}"] * bool(
        layout
    )
    if method:
        extra.append(f"method.name={method}")
    resolved = resolve_recipe(recipe, [*extra, *overrides])
    method_names = list_method_names(resolved.method.name, list_methods())
    for name in method_names:
        check_method(name)  # fail on a typo before any work
    run_dir = check_output_dir(out_dir, what="run directory")
    check_weights(resolved.backbone.weights)
    return resolved, method_names, run_dir


def check_review_matches(run_dir: Path, dataset_root: str | Path) -> None:
    """Refuse to score a dataset into a run whose review decisions belong to another one.

    Decisions are keyed by sample id, and ids such as `happy/0001.png` recur across
    datasets: re-scoring another dataset into the run would hand its samples the earlier
    reviewer's decisions. Re-scoring the same dataset (a new recipe) keeps them.

    Raises:
        OutputError: `run_dir` holds review.sqlite and its scores are from another dataset
            root, or cannot be read to tell.
    """
    from fercleaner.runs.layout import SCORES_FILE, STORE_FILE
    from fercleaner.scoring.scores_file import open_scores

    if not (run_dir / STORE_FILE).is_file():
        return
    try:
        earlier = open_scores(run_dir / SCORES_FILE).metadata.get("dataset_root")
    except (FercleanerError, OSError):
        earlier = None
    if earlier is not None and str(earlier) == str(dataset_root):
        return
    scored = f"scored from {earlier}" if earlier else "whose scores name no dataset"
    raise OutputError(
        f"{run_dir} holds review decisions ({STORE_FILE}) for a run {scored}; scoring "
        f"{dataset_root} there would apply them to its samples. Give --out a new folder, "
        f"or move {run_dir / STORE_FILE} away if those decisions are no longer wanted."
    )


def get_predictions_flag_rule(
    recipe: str | Path | Recipe | None, overrides: Sequence[str], resolved: Recipe
) -> str:
    """The flag rule for a `--predictions` run: the user's choice, else `noise_rate`.

    A user's model gives out-of-sample probabilities, for which cleanlab's rule is right;
    the shipped recipes' rules are set for fercleaner's own in-sample training (the
    default's `argmax`), so they are no choice of the user's. An override, a `Recipe`
    object, or a recipe file of the user's own that names `score.flag_rule` is.
    """
    chosen = any(o.partition("=")[0].strip() == "score.flag_rule" for o in overrides)
    chosen = chosen or isinstance(recipe, Recipe)
    if not chosen and recipe is not None and Path(str(recipe)).expanduser().is_file():
        raw = yaml.safe_load(Path(str(recipe)).expanduser().read_text(encoding="utf-8"))
        section = raw.get("score") if isinstance(raw, dict) else None
        chosen = isinstance(section, dict) and "flag_rule" in section
    return resolved.score.flag_rule if chosen else "noise_rate"


def check_weights(weights: str | None) -> None:
    """Fail before any work unless `weights` (if set) loads as safetensors or a torch state dict.

    The backbone loads it again when the first model is built; this only makes a missing
    or garbage file a one-line `ConfigError` up front instead of after reading and decoding.
    """
    if not weights:
        return
    path = Path(weights).expanduser()
    fix = (
        "pass a .safetensors or torch .pth/.pt weights file, or drop --weights to train"
        " from scratch."
    )
    if not path.is_file():
        raise ConfigError(f"weights file {str(path)!r} does not exist (or is not a file); {fix}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            import torch

            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # safetensors, pickle and zip readers raise many types
        reason = (str(exc).strip().splitlines() or [""])[0].split(". ")[0][:200]
        raise ConfigError(
            f"weights file {str(path)!r} cannot be read as"
            f" {'safetensors' if path.suffix == '.safetensors' else 'a torch state dict'}"
            f" ({type(exc).__name__}: {reason}); {fix}"
        ) from None
    if not isinstance(state, dict) or not state:
        raise ConfigError(
            f"weights file {str(path)!r} holds {type(state).__name__}, not a state dict of"
            f" named tensors; {fix}"
        )


def check_folds(samples: pd.DataFrame, recipe: Recipe, *, decoded: bool) -> None:
    """The training splits can train `recipe`: two classes, and every class in every fold.

    A model trained on one class predicts it for every image, so no label can be found
    wrong (and UAPL's region certainty divides by ln 1 = 0); two classes also mean two
    images, so no training batch is a single image (BatchNorm fails on those).
    Cross-fitting puts every class in every fold: with K folds, model k trains without
    fold k and predicts it. K above the number of training samples leaves folds empty; K
    above a class's count leaves that class out of some folds (and with one sample, out
    of the model that predicts it). Counted over the training splits, before decoding
    (`decoded=False`) and again after it.

    Raises:
        DatasetError: the training splits hold a single class.
        ConfigError: `train.folds` is above the smallest class's count.
    """
    if samples.empty:
        return
    training = samples["split"].astype(str).isin(recipe.data.splits).to_numpy()
    counts = samples.loc[training, "given_label"].astype(str).value_counts()
    if counts.empty:
        return  # no training samples at all: reported after decoding with its own message
    which = "decodable training samples" if decoded else "training samples"
    splits = ", ".join(recipe.data.splits)
    if len(counts) == 1:
        every_split = set(recipe.data.splits) >= {"train", "val", "test"}
        widen = "" if every_split else ", or train on more splits (data.splits=[train,val,test])"
        raise DatasetError(
            f"the training splits ({splits}) hold a single class, {counts.index[0]!r}"
            f" ({int(counts.iloc[0])} {which}); a model trained on one class predicts it for"
            f" every image and cannot find a wrong label. Add images of another class{widen}."
        )
    folds = recipe.train.folds
    if folds <= int(counts.min()):
        return
    smallest, n = str(counts.idxmin()), int(counts.min())
    instead = f"train.folds={n} or fewer, or " if n >= 2 else ""
    raise ConfigError(
        f"train.folds={folds} is more than the {n} {which} of class {smallest!r} (splits"
        f" {splits}); cross-fitting needs every class in every fold, so"
        f" folds can be at most the smallest class count. Use {instead}train.folds=1"
        " (in-sample)."
    )


def resolve_recipe(recipe: str | Path | Recipe | None, overrides: Sequence[str]) -> Recipe:
    """A shipped name, YAML path, `Recipe` or None (the defaults), with `overrides` applied."""
    if isinstance(recipe, Recipe):
        from fercleaner.config import recipe_from_dict

        return recipe_from_dict(recipe_to_dict(recipe), overrides=overrides)
    return load_recipe(recipe, overrides=overrides)


def list_method_names(spec: str, registered: list[str]) -> list[str]:
    """`all` -> every registered method (baseline first); `a,b` -> [a, b].

    Raises:
        ConfigError: `spec` names no method (`""`, `","`): there would be nothing to train.
    """
    if spec == "all":
        return sorted(registered, key=lambda name: (name != "baseline", name))
    names = [part.strip() for part in spec.split(",") if part.strip()]
    if not names:
        raise ConfigError(
            f"method.name / --method {spec!r} names no method; give a registered method"
            f" ({', '.join(registered)}), a comma-separated list of them, or all."
        )
    return names
