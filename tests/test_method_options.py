"""Method options: each method registers a frozen options dataclass; recipes are checked at load."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import subprocess
import sys
import textwrap

import pytest

from fercleaner.config import load_recipe, method_options, options_from_dict, recipe_from_dict
from fercleaner.config.recipe import MethodConfig
from fercleaner.errors import ConfigError
from fercleaner.methods.baseline import BaselineOptions
from fercleaner.methods.mtac import MTACOptions
from fercleaner.methods.poi import POIOptions
from fercleaner.methods.registry import get_method_class


def _field_docstrings(cls: type) -> dict[str, str]:
    """field name -> the string literal right below it in the class body."""
    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body
    docs = {}
    for node, following in zip(body, body[1:], strict=False):
        value = following.value if isinstance(following, ast.Expr) else None
        if isinstance(node, ast.AnnAssign) and isinstance(value, ast.Constant):
            docs[node.target.id] = str(value.value)
    return docs


@pytest.mark.parametrize("name", ["baseline", "mtac", "uapl", "poi"])
def test_every_method_registers_a_documented_frozen_options_dataclass(name):
    options_class = get_method_class(name).options_class
    assert dataclasses.is_dataclass(options_class)
    assert options_class.__dataclass_params__.frozen
    names = [f.name for f in dataclasses.fields(options_class)]
    docs = _field_docstrings(options_class)
    assert [n for n in names if not docs.get(n, "").strip()] == []
    assert set(getattr(options_class, "checks", {})) <= set(names)
    assert options_from_dict(options_class, {}) == options_class()  # defaults are valid


def test_the_torch_free_options_table_is_what_each_method_registers():
    from fercleaner.methods.options import BUILTIN_OPTIONS
    from fercleaner.methods.registry import list_methods

    assert set(BUILTIN_OPTIONS) == set(list_methods())
    for name, options_class in BUILTIN_OPTIONS.items():
        assert get_method_class(name).options_class is options_class


def test_checking_a_recipe_its_options_and_method_names_imports_no_torch(tmp_path):
    # a `--predictions` run trains nothing: its checks must not cost torch's import
    code = (
        "import sys\n"
        "from fercleaner.config import load_recipe, method_options\n"
        "from fercleaner.errors import RegistryError\n"
        "from fercleaner.pipeline.checks import check_before_work\n"
        "from fercleaner.runs.record import get_versions\n"
        "recipe = load_recipe('default', overrides=['method.options.tau=2'])\n"
        "method_options(recipe.method, 'mtac')\n"
        "check_before_work('quick', [], method='all', weights=None, layout=None,"
        f" out_dir={str(tmp_path / 'run')!r})\n"
        "try:\n"
        "    check_before_work('quick', [], method='mtak', weights=None, layout=None,"
        f" out_dir={str(tmp_path / 'run')!r})\n"
        "except RegistryError as exc:\n"
        "    assert \"Did you mean 'mtac'\" in str(exc), exc\n"
        "else:\n"
        "    raise AssertionError('a misspelt method passed')\n"
        "assert 'torch' in get_versions()\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_bad_poi_option_is_one_line_at_load_not_a_type_error(tmp_path):
    recipe = tmp_path / "poi.yaml"
    recipe.write_text("method:\n  name: poi\n  options:\n    tau: fast\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_recipe(recipe)
    assert str(info.value) == (
        f"1 problem(s) in {recipe}:\n  - method.options.tau: expected a number > 0, got 'fast'"
    )


def test_option_problems_are_reported_with_the_recipes_own():
    with pytest.raises(ConfigError) as info:
        load_recipe(
            "quick",
            overrides=[
                "train.folds=0",
                "method.name=mtac",
                "method.options.relabel_warmup=0",
                "method.options.soft_label=mean",
                "method.options.high_ratoi=0.5",
            ],
        )
    message = str(info.value)
    assert "4 problem(s)" in message
    assert "train.folds: must be > 0" in message
    assert "method.options.relabel_warmup: expected null or an integer >= 1, got 0" in message
    assert "method.options.soft_label: expected one of 'probs', 'blend', got 'mean'" in message
    assert "method.options.high_ratoi: unknown key (did you mean method.options.high_ratio?)" in (
        message
    )


def test_bad_options_fail_before_the_dataset_is_read(tmp_path):
    from fercleaner.pipeline import score_dataset

    with pytest.raises(ConfigError, match=r"method.options.tau: expected a number > 0, got -1"):
        score_dataset(
            tmp_path / "no-such-dataset",
            tmp_path / "run",
            recipe=None,
            method="poi",
            overrides=["method.options.tau=-1"],
        )


def test_options_belong_to_the_recipes_method_and_others_get_defaults():
    recipe = load_recipe("quick")  # baseline with small-loss selection
    own = method_options(recipe.method, "baseline")
    assert own == BaselineOptions(small_loss_fraction=0.1, small_loss_start=0.4)
    assert method_options(recipe.method, "mtac") == MTACOptions()  # e.g. a --method all run
    poi = recipe_from_dict({"method": {"name": "poi", "options": {"tau": 2, "ramp_epochs": 3}}})
    typed = method_options(poi.method, "poi")
    assert typed == POIOptions(tau=2.0, ramp_epochs=3.0)
    assert isinstance(typed.tau, float)  # converted like recipe fields: ints become floats


def test_all_or_a_list_keeps_the_recipes_options_with_the_recipes_method():
    """`--method all` used to drop quick's baseline options (issue 14: small-loss went off)."""
    for spec in ("all", "baseline,mtac"):
        recipe = load_recipe("quick", overrides=[f"method.name={spec}"])
        assert recipe.method.options_for == "baseline"
        assert method_options(recipe.method, "baseline").small_loss_fraction == 0.1
        assert method_options(recipe.method, "mtac") == method_options(MethodConfig("mtac"), "mtac")
    other = load_recipe("quick", overrides=["method.name=mtac"])
    assert other.method.options == {} and other.method.options_for == ""
