"""Every shipped recipe loads and validates; overrides and errors behave as documented."""

from __future__ import annotations

import pytest

from fercleaner.config import (
    Recipe,
    find_recipe,
    list_recipes,
    load_recipe,
    method_options,
    recipe_from_dict,
    recipe_to_dict,
)
from fercleaner.errors import ConfigError
from fercleaner.methods.registry import list_methods


def test_the_three_recipes_ship():
    assert {"default", "quick", "ferplus", "paper"} <= set(list_recipes())


@pytest.mark.parametrize("name", list_recipes())
def test_shipped_recipe_is_valid_and_documented(name):
    recipe = load_recipe(name)
    assert isinstance(recipe, Recipe)
    assert recipe.method.name in list_methods()
    text = find_recipe(name).read_text(encoding="utf-8")
    header = text.splitlines()[:4]
    assert all(line.startswith("#") for line in header), "recipes open with a comment header"
    for word in ("Purpose:", "Needs:", "Command:", "Cost:"):
        assert word in text, f"{name}.yaml header lacks {word}"


def test_a_recipe_file_given_by_path_wins_over_a_shipped_name(tmp_path, monkeypatch):
    """Users keep their own recipes anywhere; a file named like a shipped recipe is theirs."""
    mine = tmp_path / "quick"
    mine.write_text("train:\n  epochs: 2\n", encoding="utf-8")
    assert load_recipe(mine).train.epochs == 2
    monkeypatch.chdir(tmp_path)
    assert load_recipe("quick").train.epochs == 2  # ./quick exists, so it is the user's file
    monkeypatch.chdir(tmp_path.parent)
    assert find_recipe("quick").name == "quick.yaml"  # no such file here: the shipped one
    assert load_recipe("quick").train.epochs != 2


def test_round_trip_through_plain_data():
    recipe = load_recipe("paper")
    assert recipe_from_dict(recipe_to_dict(recipe)) == recipe


def test_dotted_overrides_parse_yaml_values():
    recipe = load_recipe(
        "quick",
        overrides=[
            "train.epochs=3",
            "data.splits=[train, val]",
            "method.options.small_loss_start=0.5",
            "backbone.weights=/tmp/w.pth",
            "train.augment.flip=false",
        ],
    )
    assert recipe.train.epochs == 3
    assert recipe.data.splits == ("train", "val")
    assert recipe.method.options == {"small_loss_fraction": 0.1, "small_loss_start": 0.5}
    assert recipe.backbone.weights == "/tmp/w.pth"
    assert recipe.train.augment.flip is False


def test_all_errors_are_reported_together_naming_the_key():
    with pytest.raises(ConfigError) as info:
        load_recipe(
            "quick",
            overrides=[
                "train.epochz=3",
                "train.lr=fast",
                "data.channels=2",
                "train.folds=0",
                "oops",
            ],
        )
    message = str(info.value)
    assert "5 problem(s)" in message
    assert "train.epochz: unknown key (did you mean train.epochs?)" in message
    assert "train.lr: expected a finite float, got 'fast'" in message
    assert "data.channels: 2 is not one of auto, 1, 3" in message
    assert "train.folds: must be > 0" in message
    assert "'oops' is not key=value" in message


def test_out_of_range_values_name_the_key_the_value_and_the_range():
    """These reached torch (dropout, BatchNorm, numpy's seed) and ended in exit 3."""
    with pytest.raises(ConfigError) as info:
        load_recipe(
            "quick",
            overrides=["backbone.drop_rate=1.5", "train.seed=-1", "train.batch_size=1"],
        )
    message = str(info.value)
    assert "3 problem(s)" in message
    assert "backbone.drop_rate: must be in [0, 1) (1 would drop every feature), got 1.5" in message
    assert "train.seed: must be >= 0, got -1" in message
    assert "train.batch_size: must be >= 2 (BatchNorm normalises over the batch), got 1" in message
    for bad in ("-0.1", "1.0"):
        with pytest.raises(ConfigError, match=rf"backbone.drop_rate: .*got {bad}"):
            load_recipe("quick", overrides=[f"backbone.drop_rate={bad}"])
    edge = load_recipe(
        "quick", overrides=["backbone.drop_rate=0.99", "train.seed=0", "train.batch_size=2"]
    )
    assert (edge.backbone.drop_rate, edge.train.seed, edge.train.batch_size) == (0.99, 0, 2)


def test_float_fields_take_an_exponent_without_a_dot(tmp_path):
    """YAML 1.1 reads `1e-3` as text; a float field takes it as the number it is."""
    recipe = load_recipe(
        "quick",
        overrides=["train.lr=1e-3", "train.warmup_epochs=5E-1", "train.weight_decay=+5e-4"],
    )
    assert (recipe.train.lr, recipe.train.warmup_epochs) == (0.001, 0.5)
    assert recipe.train.weight_decay == 0.0005
    method = load_recipe("quick", overrides=["method.options.small_loss_start=4e-1"]).method
    assert method_options(method, "baseline").small_loss_start == 0.4
    mine = tmp_path / "mine.yaml"
    mine.write_text("train:\n  lr: 2e-3\n", encoding="utf-8")
    assert load_recipe(mine).train.lr == 0.002
    with pytest.raises(ConfigError, match="train.lr: expected a finite float, got '1e'"):
        load_recipe("quick", overrides=["train.lr=1e"])
    with pytest.raises(ConfigError, match="train.batch_size: expected int, got '1e2'"):
        load_recipe("quick", overrides=["train.batch_size=1e2"])  # ints stay whole numbers
    for infinite in ("1e999", ".inf", ".nan"):  # would pass every "> 0" check
        with pytest.raises(ConfigError, match="train.lr: expected a finite float"):
            load_recipe("quick", overrides=[f"train.lr={infinite}"])


def test_a_mapping_override_replaces_the_whole_mapping():
    """Documented (docs/engine.md): `method.options={}` gives plain cross-entropy, which
    the bench's references rely on; keys a section override leaves out take defaults."""
    assert load_recipe("quick", overrides=["method.options={}"]).method.options == {}
    augment = load_recipe("quick", overrides=["train.augment={flip: false}"]).train.augment
    assert augment.flip is False and augment.erase_prob == 0.25  # the default, not quick's 0.0


def test_unknown_section_and_recipe_name(tmp_path):
    with pytest.raises(ConfigError, match="trian: unknown key"):
        recipe_from_dict({"trian": {"epochs": 1}})
    with pytest.raises(ConfigError, match="shipped recipes: .*quick"):
        load_recipe("no-such-recipe")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_recipe(bad)


def test_recipes_are_frozen():
    recipe = load_recipe("quick")
    with pytest.raises(AttributeError):
        recipe.train.epochs = 5  # type: ignore[misc]


def test_training_another_method_drops_the_recipes_method_options():
    """quick's options are the baseline's; MTAC would reject them, so they stay behind."""
    assert load_recipe("quick").method.options["small_loss_fraction"] == 0.1
    mtac = load_recipe("quick", overrides=["method.name=mtac", "method.options.relabel_warmup=1"])
    assert mtac.method.name == "mtac" and mtac.method.options == {"relabel_warmup": 1}
    same = load_recipe("quick", overrides=["method.name=baseline"])
    assert same.method.options == load_recipe("quick").method.options
