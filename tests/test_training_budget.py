"""`train.epochs: auto`: the reference's 30 epochs on small data, fewer on large, never under 10."""

from __future__ import annotations

from fercleaner.training.budget import get_auto_epochs, get_auto_warmup_epochs


def test_small_datasets_get_the_reference_budget():
    assert get_auto_epochs(120) == get_auto_epochs(3_400) == get_auto_epochs(5_000) == 30
    assert get_auto_warmup_epochs(30) == 4.5


def test_larger_datasets_get_fewer_epochs_but_more_steps():
    sizes = [5_000, 10_000, 32_000, 280_000, 1_000_000, 10_000_000]
    epochs = [get_auto_epochs(n) for n in sizes]
    assert epochs == sorted(epochs, reverse=True)
    assert epochs[2] == 19 and epochs[3] == 11 and epochs[-1] == 10
    images_seen = [n * e for n, e in zip(sizes, epochs, strict=True)]
    assert images_seen == sorted(images_seen)  # a bigger dataset never trains on fewer images


def test_auto_resolves_from_the_training_images_of_one_fold():
    from fercleaner.config import load_recipe
    from fercleaner.training.budget import resolve_train_budget

    auto = ["train.epochs=auto", "train.warmup_epochs=auto"]
    recipe = resolve_train_budget(load_recipe("quick", overrides=auto), n_train=32_000)
    assert (recipe.train.epochs, recipe.train.warmup_epochs) == (19, 2.85)
    # 5 folds train on 4/5 of 7,000 images: 5,600, just above the full-budget size
    five = load_recipe("quick", overrides=[*auto, "train.folds=5"])
    assert resolve_train_budget(five, n_train=7_000).train.epochs == 30
    fixed = load_recipe("quick", overrides=["train.epochs=7"])
    assert resolve_train_budget(fixed, n_train=32_000) is fixed
    partly = load_recipe("quick", overrides=["train.epochs=20", "train.warmup_epochs=auto"])
    assert resolve_train_budget(partly, n_train=100).train.warmup_epochs == 3.0


def test_train_and_score_resolves_auto_for_api_callers():
    import numpy as np

    from fercleaner.config import load_recipe
    from fercleaner.training.trainer import TrainData, train_and_score

    rng = np.random.default_rng(0)
    n = 24
    data = TrainData(
        images=rng.integers(0, 255, (n, 16, 16, 1), dtype=np.uint8),
        rows=np.arange(n),
        labels=np.arange(n) % 2,
        train_mask=np.ones(n, dtype=bool),
        classes=("neutral", "happiness"),
        sample_ids=np.array([f"s{i}" for i in range(n)]),
    )
    tiny = ["backbone.name=test_resnet", "data.image_size=16", "train.batch_size=8"]
    recipe = load_recipe("default", overrides=[*tiny, "train.epochs=auto"])
    assert recipe.train.epochs == "auto"
    result = train_and_score(data, recipe, method_name="baseline")
    assert result.readout["pred_probs"].shape == (n, 2)
    assert result.dynamics_table()["epoch"].max() == 29  # 30 epochs for 24 images
