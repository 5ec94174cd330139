"""Recipes: frozen dataclasses loaded from YAML, with `key=value` overrides and all-at-once validation.

A recipe is data only. It names registry entries (`method.name: mtac`,
`backbone.name: resnet18`), never import paths. Unknown keys and bad values are
collected and reported together, each naming the dotted key the user typed.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from fercleaner.errors import ConfigError
from fercleaner.methods.base import BackboneSpec
from fercleaner.scoring.flags import FLAG_RULES

#: The package holding the shipped recipes: the repository's `recipes/` folder, installed
#: as `fercleaner.recipes` (setup.py), so wheel and editable installs read the same files.
RECIPES_PACKAGE = "fercleaner.recipes"


@dataclass(frozen=True)
class DataConfig:
    """What to read and how to decode it."""

    image_size: int = 48
    """Square side in pixels the cache resizes every image to."""
    channels: int | str = "auto"
    """1 (grayscale), 3 (RGB) or `auto` (1 when every probed image is grey)."""
    splits: tuple[str, ...] = ("train", "val", "test")
    """Splits to train on; every ingested sample is scored either way (cleaning covers all splits)."""
    layout: str | None = None
    """Dataset layout name; None detects it."""


@dataclass(frozen=True)
class MethodConfig:
    """Which registered method to train, and its options."""

    name: str = "baseline"
    """Registered method name (`fercleaner.methods.list_methods()`), or `all`."""
    options: dict[str, Any] = field(default_factory=dict)
    """Options of `name`, checked against the dataclass registered with it (`method_options`)."""


@dataclass(frozen=True)
class AugmentConfig:
    """Batched on-device augmentation applied to training images."""

    flip: bool = True
    """Random horizontal flip (faces are roughly symmetric)."""
    shift: int = 4
    """Maximum random translation in pixels (pad-and-crop)."""
    erase_prob: float = 0.25
    """Probability of erasing one random rectangle per image."""
    erase_max_area: float = 0.25
    """Largest erased area as a fraction of the image."""


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, schedule, cross-fitting, precision and seeds."""

    epochs: int | str = 10
    """Passes over the training samples (per fold), or `auto`: sized to the number of
    training images (`fercleaner.training.budget`), resolved before training."""
    batch_size: int = 128
    """Images per optimizer step per process."""
    lr: float = 1e-3
    """Peak learning rate (after warm-up)."""
    weight_decay: float = 0.05
    """Decoupled weight decay (AdamW) or L2 (SGD)."""
    optimizer: str = "adamw"
    """`adamw` or `sgd` (momentum 0.9, nesterov)."""
    schedule: str = "cosine"
    """`cosine` (decay to 0 after warm-up), `constant` or `onecycle` (torch's OneCycleLR)."""
    warmup_epochs: float | str = 1.0
    """Warm-up length in epochs (may be fractional), or `auto`: 15% of the epochs."""
    folds: int = 1
    """Cross-fitting K: >1 predicts every sample with a model that never saw it; 1 = in-sample with dynamics."""
    seed: int = 0
    """Seed for initialisation, shuffling, augmentation and fold assignment."""
    precision: str = "auto"
    """`auto` (bf16 where the device supports it), `bf16` or `fp32`."""
    channels_last: bool = True
    """Use channels-last memory format (faster convolutions on CPU and recent GPUs)."""
    device: str = "auto"
    """`auto` (CUDA when present), `cpu` or `cuda`."""
    num_threads: int = 0
    """CPU threads for torch ops; 0 keeps torch's default (one per core). 1 is faster on a busy shared machine."""
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """Training augmentation."""


@dataclass(frozen=True)
class ScoreConfig:
    """How every sample is predicted after training."""

    tta_flip: bool = True
    """Average predictions over the image and its mirror."""
    batch_size: int = 256
    """Images per inference batch."""
    dynamics: bool = False
    """Also score with the training-dynamics source (folds == 1); off: it lowered AP when combined."""
    flag_rule: str = "noise_rate"
    """`noise_rate` (per given/true pair, by margin) or `class` (per class, by label quality); docs/scoring.md."""


@dataclass(frozen=True)
class Recipe:
    """A complete, resolved scoring recipe."""

    data: DataConfig = field(default_factory=DataConfig)
    """Reading and decoding."""
    backbone: BackboneSpec = field(default_factory=BackboneSpec)
    """timm backbone and its weights."""
    method: MethodConfig = field(default_factory=MethodConfig)
    """Method and options."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Training."""
    score: ScoreConfig = field(default_factory=ScoreConfig)
    """Prediction."""


#: Allowed values for string options, checked together with types.
_CHOICES: dict[str, tuple[Any, ...]] = {
    "data.channels": ("auto", 1, 3),
    "train.optimizer": ("adamw", "sgd"),
    "train.schedule": ("cosine", "constant", "onecycle"),
    "train.precision": ("auto", "bf16", "fp32"),
    "train.device": ("auto", "cpu", "cuda"),
    "score.flag_rule": FLAG_RULES,
}
#: The value of `train.epochs` / `train.warmup_epochs` that sizes training to the dataset.
AUTO = "auto"
#: Keys whose value must be positive (> 0).
_POSITIVE = (
    "data.image_size",
    "train.batch_size",
    "train.lr",
    "train.folds",
    "score.batch_size",
)


def list_recipes() -> list[str]:
    """Names of the shipped recipes (the YAML files of `fercleaner.recipes`)."""
    shipped = importlib.resources.files(RECIPES_PACKAGE).iterdir()
    return sorted(f.name.removesuffix(".yaml") for f in shipped if f.name.endswith(".yaml"))


def find_recipe(name_or_file: str | Path) -> Path | Traversable:
    """The YAML file for a path to a recipe file or a shipped recipe name (a file wins)."""
    path = Path(name_or_file).expanduser()
    if path.is_file():
        return path
    shipped = importlib.resources.files(RECIPES_PACKAGE) / f"{name_or_file}.yaml"
    if shipped.is_file():
        return shipped
    raise ConfigError(
        f"recipe {str(name_or_file)!r} is neither a file nor a shipped recipe; "
        f"shipped recipes: {', '.join(list_recipes()) or '(none)'}."
    )


def load_recipe(
    name_or_file: str | Path | None = "default", *, overrides: Sequence[str] = ()
) -> Recipe:
    """Read a recipe (shipped name, file, or None for the defaults) and apply `key=value` overrides.

    Raises:
        ConfigError: listing every unknown key, wrong type and bad value at once.
    """
    raw: dict[str, Any] = {}
    source = "defaults"
    if name_or_file is not None:
        path = find_recipe(name_or_file)
        source = str(path)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"recipe {source} is not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"recipe {source} must be a mapping of sections, got {loaded!r}")
        raw = loaded or {}
    return recipe_from_dict(raw, overrides=overrides, source=source)


def recipe_from_dict(
    raw: dict[str, Any], *, overrides: Sequence[str] = (), source: str = "recipe"
) -> Recipe:
    """Build a validated `Recipe` from nested plain data plus `key=value` overrides."""
    errors: list[str] = []
    raw = _apply_overrides(_without_foreign_options(raw, overrides), overrides, errors)
    # Fields with a type error fall back to their default, so the value checks below
    # still run on everything else and all problems are reported together.
    recipe = _build(Recipe, raw, "", errors)
    errors.extend(_check_values(recipe))
    errors.extend(_method_option_problems(recipe.method))
    _raise_problems(errors, source)
    return recipe


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """Plain nested data (tuples as lists) that `recipe_from_dict` turns back into `recipe`."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(recipe))


#: A method's options dataclass (each method registers one, see `methods.registry`).
_Options = TypeVar("_Options")


def method_options(method: MethodConfig, name: str) -> Any:
    """The typed options the registered method `name` trains with under `method`.

    The one home of the rule "a recipe's options belong to its method": `method.options`
    are `method.name`'s; any other method (the others of a `--method all` run, or one
    trained from a recipe named for another) gets its defaults instead of options it
    would reject. `_without_foreign_options` applies the same rule to a recipe file
    whose method an override replaces.

    Raises:
        RegistryError: `name` is not a registered method.
        ConfigError: the options do not fit `name`'s options dataclass.
    """
    from fercleaner.methods.registry import get_method_class

    options_class = get_method_class(name).options_class
    return options_from_dict(options_class, method.options if name == method.name else {})


def options_from_dict(
    options_class: type[_Options], raw: Mapping[str, Any] | None, *, source: str | None = None
) -> _Options:
    """Build a method's frozen options dataclass from plain data, checked like a recipe.

    Every unknown key, wrong type and out-of-range value is reported at once, one line
    per key: `method.options.KEY: expected WHAT, got VALUE`. Range and choice rules come
    from the dataclass's `checks` table (`at_least`, `greater_than`, `in_range`, `one_of`).

    Raises:
        ConfigError: listing every problem.
    """
    errors: list[str] = []
    options = _build_options(options_class, raw, errors)
    _raise_problems(errors, source or f"{options_class.__name__}")
    return options


@dataclass(frozen=True)
class Check:
    """A value rule for one method option; `expected` completes "expected a number ..."."""

    accepts: Callable[[Any], bool]
    """True when a value of the field's type is allowed."""
    expected: str
    """The rule in words, e.g. `>= 0` or `in [0, 1)`."""
    names_type: bool = False
    """`expected` already says the whole expectation (choices), so no type noun goes before it."""


def at_least(low: float) -> Check:
    """Value >= `low`."""
    return Check(lambda v: v >= low, f">= {low}")


def greater_than(low: float) -> Check:
    """Value > `low`."""
    return Check(lambda v: v > low, f"> {low}")


def in_range(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Check:
    """Value in the interval from `low` to `high`, each end closed unless marked open."""

    def accepts(v: Any) -> bool:
        above = v > low if low_open else v >= low
        below = v < high if high_open else v <= high
        return above and below

    brackets = ("(" if low_open else "[", ")" if high_open else "]")
    return Check(accepts, f"in {brackets[0]}{low}, {high}{brackets[1]}")


def one_of(*choices: Any) -> Check:
    """Value is one of `choices`."""
    return Check(lambda v: v in choices, "one of " + ", ".join(map(repr, choices)), True)


def _method_option_problems(method: MethodConfig) -> list[str]:
    """Problems in `method.options` against the options dataclass registered with `method.name`.

    Only a single registered name owns options; `all`, a comma list or an unknown name
    (refused later by the registry, with the closest match) are not checked here.
    """
    from fercleaner.methods.registry import get_method_class, list_methods

    if method.name not in list_methods():
        return []
    errors: list[str] = []
    _build_options(get_method_class(method.name).options_class, method.options, errors)
    return errors


def _build_options(options_class: type[_Options], raw: Any, errors: list[str]) -> _Options:
    """Instantiate `options_class` from `raw`, appending one line per problem to `errors`.

    A field with a problem keeps its default, so the other fields are still checked.
    """
    prefix = "method.options."
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        errors.append(f"method.options: expected a mapping of option names, got {raw!r}")
        return options_class()
    names = {f.name for f in dataclasses.fields(options_class)}
    errors.extend(_unknown_keys(raw, names, prefix))
    hints = typing.get_type_hints(options_class)
    checks: Mapping[str, Check] = getattr(options_class, "checks", {})
    kwargs: dict[str, Any] = {}
    for name in (key for key in raw if key in names):
        value, hint, check = raw[name], hints[name], checks.get(name)
        converted, ok = _convert(value, hint)
        if ok and (converted is None or check is None or check.accepts(converted)):
            kwargs[name] = converted
        else:
            errors.append(f"{prefix}{name}: expected {_expectation(hint, check)}, got {value!r}")
    return options_class(**kwargs)


def _expectation(hint: Any, check: Check | None) -> str:
    """What an option of type `hint` under `check` must be, in words (`null or an integer >= 1`)."""
    args = (
        typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else ()
    )
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    nouns = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    noun = nouns.get(base, _type_name(base))
    if check is None:
        what = noun
    elif check.names_type:
        what = check.expected
    else:
        what = f"{noun} {check.expected}"
    return f"null or {what}" if optional else what


def _raise_problems(errors: list[str], source: str) -> None:
    if errors:
        raise ConfigError(f"{len(errors)} problem(s) in {source}:\n  - " + "\n  - ".join(errors))


def _without_foreign_options(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Drop the recipe's `method.options` when an override trains another method.

    A recipe's options belong to its `method.name` (`method_options`; `quick` sets
    baseline options); with `method.name=mtac` (or `--method mtac`) they would be
    rejected by MTAC. Options given as overrides are applied afterwards, so
    `method.options.x=1` still reaches the new method.
    """
    method = raw.get("method")
    names = [
        o.partition("=")[2].strip()
        for o in overrides
        if o.partition("=")[0].strip() == "method.name"
    ]
    if not isinstance(method, dict) or not names or names[-1] == method.get("name", "baseline"):
        return raw
    return {**raw, "method": {k: v for k, v in method.items() if k != "options"}}


def _apply_overrides(
    raw: dict[str, Any], overrides: Sequence[str], errors: list[str]
) -> dict[str, Any]:
    """Return a copy of `raw` with each `a.b.c=value` set (value parsed as YAML)."""
    import copy

    result = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            errors.append(f"override {item!r} is not key=value (e.g. train.epochs=3)")
            continue
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                errors.append(f"override {item!r}: {part!r} is a value, not a section")
                break
            node = child
        else:
            node[parts[-1]] = value
    return result


def _build(cls: type, raw: Any, prefix: str, errors: list[str]) -> Any:
    """Instantiate dataclass `cls` from `raw`, appending every problem to `errors`."""
    where = prefix.rstrip(".") or "recipe"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        errors.append(f"{where}: expected a mapping of keys, got {raw!r}")
        return cls()
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    errors.extend(_unknown_keys(raw, names, prefix))
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in raw:
            continue
        key = f"{prefix}{f.name}"
        value = raw[f.name]
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            kwargs[f.name] = _build(hint, value, key + ".", errors)
            continue
        converted, ok = _convert(value, hint)
        if ok:
            kwargs[f.name] = converted
        else:
            errors.append(f"{key}: expected {_type_name(hint)}, got {value!r}")
    return cls(**kwargs)


def _unknown_keys(raw: Mapping[str, Any], names: set[str], prefix: str) -> list[str]:
    """One line per key of `raw` that is not in `names`, with the closest valid key."""
    import difflib

    lines = []
    for key in raw:
        if key not in names:
            close = difflib.get_close_matches(str(key), sorted(names), n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
            lines.append(
                f"{prefix}{key}: unknown key{hint}; valid keys here: {', '.join(sorted(names))}"
            )
    return lines


def _convert(value: Any, hint: Any) -> tuple[Any, bool]:
    """Check `value` against a simple type hint; return (converted value, ok)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            converted, ok = _convert(value, option)
            if ok:
                return converted, True
        return value, False
    if hint is type(None):
        return None, value is None
    if hint is bool:
        return value, isinstance(value, bool)
    if hint is int:
        return value, isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return (float(value) if ok else value), ok
    if hint is str:
        return value, isinstance(value, str)
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            return value, False
        (item_type, *_) = typing.get_args(hint)
        items = [_convert(v, item_type) for v in value]
        return tuple(v for v, _ in items), all(ok for _, ok in items)
    if origin is dict:
        return dict(value or {}), value is None or isinstance(value, dict)
    return value, False


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(h) for h in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if typing.get_origin(hint) is tuple:
        return "a list of " + _type_name(typing.get_args(hint)[0])
    if typing.get_origin(hint) is dict:
        return "a mapping"
    return getattr(hint, "__name__", str(hint))


def _check_values(recipe: Recipe) -> list[str]:
    """Range and choice checks on a type-correct recipe."""
    errors = []
    for key, choices in _CHOICES.items():
        value = _get(recipe, key)
        if value not in choices:
            errors.append(f"{key}: {value!r} is not one of {', '.join(map(str, choices))}")
    for key, low in (("train.epochs", 1), ("train.warmup_epochs", 0)):
        value = _get(recipe, key)
        if value != AUTO and (isinstance(value, str) or value < low):
            errors.append(f"{key}: must be `auto` or a number >= {low}, got {value!r}")
    if isinstance(recipe.train.epochs, float) and not recipe.train.epochs.is_integer():
        errors.append(f"train.epochs: must be a whole number, got {recipe.train.epochs!r}")
    for key in _POSITIVE:
        if not _get(recipe, key) > 0:
            errors.append(f"{key}: must be > 0, got {_get(recipe, key)!r}")
    for key in (
        "train.weight_decay",
        "train.augment.shift",
        "train.num_threads",
    ):
        if _get(recipe, key) < 0:
            errors.append(f"{key}: must be >= 0, got {_get(recipe, key)!r}")
    for key in ("train.augment.erase_prob", "train.augment.erase_max_area"):
        if not 0 <= _get(recipe, key) <= 1:
            errors.append(f"{key}: must be in [0, 1], got {_get(recipe, key)!r}")
    bad_splits = [s for s in recipe.data.splits if s not in ("train", "val", "test")]
    if bad_splits or not recipe.data.splits:
        errors.append(
            f"data.splits: {list(recipe.data.splits)!r} must be a non-empty list of train, val, test"
        )
    return errors


def _get(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj
