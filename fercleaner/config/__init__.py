"""Recipes: frozen dataclasses read from YAML, with `key=value` overrides and all-at-once checks.

A recipe is data only. It names registry entries (`method.name: mtac`,
`backbone.name: resnet18`), never import paths. Unknown keys and bad values are
collected and reported together, each naming the dotted key the user typed.

Modules: `recipe` (the dataclasses and their value rules), `loading` (shipped recipes,
YAML, overrides), `options` (method options and their rules) and `fields` (the typed
building and error lines both share).
"""

from __future__ import annotations

from fercleaner.config.loading import (
    RECIPES_PACKAGE,
    find_recipe,
    list_recipes,
    load_recipe,
    recipe_from_dict,
    recipe_to_dict,
)
from fercleaner.config.options import (
    Check,
    at_least,
    greater_than,
    in_range,
    method_options,
    one_of,
    options_from_dict,
)
from fercleaner.config.recipe import (
    AUTO,
    AugmentConfig,
    BackboneSpec,
    DataConfig,
    MethodConfig,
    Recipe,
    ScoreConfig,
    TrainConfig,
)

__all__ = [
    "AUTO",
    "RECIPES_PACKAGE",
    "AugmentConfig",
    "BackboneSpec",
    "Check",
    "DataConfig",
    "MethodConfig",
    "Recipe",
    "ScoreConfig",
    "TrainConfig",
    "at_least",
    "find_recipe",
    "greater_than",
    "in_range",
    "list_recipes",
    "load_recipe",
    "method_options",
    "one_of",
    "options_from_dict",
    "recipe_from_dict",
    "recipe_to_dict",
]
