"""`score_dataset(..., predictions=FILE)`: score a dataset with a user's own model, no training.

Reading the dataset, its problems table and the run directory are the same as for a
trained run, so review and export cannot tell the difference; only the probabilities
come from FILE (`fercleaner.predictions`) and the scoring source is named `predictions`.
Images are not decoded: the user's model has already seen them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fercleaner.arrays import get_probability_readout
from fercleaner.config import Recipe, recipe_to_dict
from fercleaner.predictions import read_predictions
from fercleaner.runs import build_scores_metadata, write_run_info, write_run_tables
from fercleaner.runs.record import build_predictions_run_info
from fercleaner.scoring.api import PREDICTIONS_SOURCE, get_outlier_score


def write_predictions_run(
    dataset: Any,
    predictions_path: str | Path,
    run_dir: Path,
    recipe: Recipe,
    *,
    started: float,
    timings: dict[str, float],
) -> dict[str, Any]:
    """Score the dataset with the file's probabilities and write the run; returns run.json."""
    from fercleaner.scoring.assemble import assemble_columns
    from fercleaner.scoring.crowd import apply_crowd_votes, get_sample_votes

    samples = dataset.samples.reset_index(drop=True)
    classes = list(dataset.classes)
    ids = samples["sample_id"].astype(str).tolist()
    predictions = read_predictions(predictions_path, classes=classes, sample_ids=ids)
    # Rows passed the reader's check within a rounding tolerance; clip the tiny negatives
    # it lets through so every written distribution is one that review and export accept.
    probs = np.clip(predictions.pred_probs, 0.0, None)
    probs /= probs.sum(axis=1, keepdims=True)
    index = {name: i for i, name in enumerate(classes)}
    labels = samples["given_label"].astype(str).map(index).to_numpy(dtype=np.int64)
    readout = get_probability_readout(probs, labels)
    if predictions.embeddings is not None:
        readout["outlier_score"] = get_outlier_score(predictions.embeddings)
    scores = assemble_columns(
        samples,
        classes,
        {PREDICTIONS_SOURCE: readout},
        method_name=PREDICTIONS_SOURCE,
        flag_rule=recipe.score.flag_rule,
    )
    crowd = apply_crowd_votes(scores, get_sample_votes(samples, classes), classes)
    scores = crowd.scores  # written most suspect first, a row group at a time
    metadata = build_scores_metadata(
        classes=classes,
        methods=[PREDICTIONS_SOURCE],
        sources=[PREDICTIONS_SOURCE],
        recipe=recipe_to_dict(recipe),
        dataset_root=str(dataset.root),
        layout=dataset.layout,
        samples=samples,
    )
    write_run_tables(
        run_dir,
        scores=scores,
        metadata=metadata,
        problems=dataset.problems,
        dynamics=pd.DataFrame(),
        events=pd.DataFrame(),
    )
    timings["total_s"] = time.perf_counter() - started
    run_info = build_predictions_run_info(
        metadata,
        scores=scores,
        counts={
            "rows_listed": dataset.rows_listed,
            "ingested": len(samples),
            "problems": len(dataset.problems),
        },
        timings=timings,
        predictions_file=str(Path(predictions_path).absolute()),
        rows_ignored=predictions.ignored_ids,
        consensus=crowd.summary,
    )
    write_run_info(run_dir, run_info)
    return run_info
