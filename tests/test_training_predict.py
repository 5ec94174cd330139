"""Prediction outputs: written into one array per output, put back in the caller's order."""

from __future__ import annotations

import numpy as np

from fercleaner.training.predict import _in_caller_order, _put_rows


def test_batches_fill_one_array_per_output_in_order() -> None:
    outputs: dict[str, np.ndarray] = {}
    _put_rows(outputs, {"probs": np.ones((2, 3), np.float32), "au": np.zeros(2)}, 0, 5)
    _put_rows(outputs, {"probs": np.full((3, 3), 2, np.float32), "au": np.ones(3)}, 2, 5)
    assert outputs["probs"].dtype == np.float32 and outputs["probs"].shape == (5, 3)
    assert outputs["probs"][:, 0].tolist() == [1, 1, 2, 2, 2]
    assert outputs["au"].tolist() == [0, 0, 1, 1, 1]


def test_ranks_outputs_come_back_in_the_callers_order() -> None:
    eval_idx = np.array([7, 3, 5, 0, 9])
    # two ranks predicted strided shares: rank 0 rows 0, 2, 4 of eval_idx; rank 1 rows 1, 3
    gathered = [
        (eval_idx[0::2], {"probs": np.array([[0.7], [0.5], [0.9]])}),
        (eval_idx[1::2], {"probs": np.array([[0.3], [0.0]])}),
    ]
    merged = _in_caller_order(gathered, eval_idx, n=10)
    assert merged["probs"][:, 0].tolist() == [0.7, 0.3, 0.5, 0.0, 0.9]


def test_one_process_in_order_gets_its_own_arrays_back_without_a_copy() -> None:
    eval_idx = np.array([4, 1, 2])
    probs = np.arange(3.0)[:, None]
    merged = _in_caller_order([(eval_idx.copy(), {"probs": probs})], eval_idx, n=5)
    assert merged["probs"] is probs
