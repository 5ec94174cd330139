"""Reading recipes: shipped names and files, YAML parsing, `key=value` overrides, round trips.

`load_recipe` is the front door; every problem in the file and the overrides is collected
and raised as one `ConfigError` naming the file.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.resources
from collections.abc import Sequence
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

from fercleaner.config.fields import build_dataclass, raise_problems
from fercleaner.config.options import method_option_problems, without_foreign_options
from fercleaner.config.recipe import Recipe, check_values
from fercleaner.errors import ConfigError

#: The package holding the shipped recipes: the repository's `recipes/` folder, installed
#: as `fercleaner.recipes` (setup.py), so wheel and editable installs read the same files.
RECIPES_PACKAGE = "fercleaner.recipes"


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
    raw = _apply_overrides(without_foreign_options(raw, overrides), overrides, errors)
    # Fields with a type error fall back to their default, so the value checks below
    # still run on everything else and all problems are reported together.
    recipe = build_dataclass(Recipe, raw, "", errors)
    errors.extend(check_values(recipe))
    errors.extend(method_option_problems(recipe.method))
    raise_problems(errors, source)
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


def _apply_overrides(
    raw: dict[str, Any], overrides: Sequence[str], errors: list[str]
) -> dict[str, Any]:
    """Return a copy of `raw` with each `a.b.c=value` set (value parsed as YAML)."""
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
