"""Benchmark harness: noise protocols, metrics, the plain cross-entropy references, reports, suites.

`run_benchmark(...)` (one protocol) and `run_suite(...)` (mean ± sd over several runs) are
the front doors (used by `fercleaner bench`); the protocols and metrics are pure functions
usable on their own.
"""

from __future__ import annotations

from fercleaner.bench.materialize import write_noisy_dataset
from fercleaner.bench.metrics import (
    get_consensus_metrics,
    get_correction_accuracy,
    get_detection_metrics,
    get_issue_type_metrics,
    get_reliability_curve,
    get_soft_label_metrics,
    get_soft_label_reliability,
    get_vote_entropy,
)
from fercleaner.bench.protocols import (
    PAIRFLIP_PARTNERS,
    PROTOCOLS,
    NoisyDataset,
    make_annotator_noise,
    make_noisy,
    make_pairflip_noise,
    make_symmetric_noise,
    make_vote_noise,
)
from fercleaner.bench.references import REFERENCES
from fercleaner.bench.resources import ProcessResult, run_measured
from fercleaner.bench.runner import plan_systems, run_benchmark
from fercleaner.bench.suite import SUITES, run_suite
from fercleaner.bench.systems import SystemScores, evaluate_system, get_reference_scores
from fercleaner.bench.votes import VOTE_SYSTEMS

__all__ = [
    "PAIRFLIP_PARTNERS",
    "PROTOCOLS",
    "REFERENCES",
    "SUITES",
    "VOTE_SYSTEMS",
    "NoisyDataset",
    "ProcessResult",
    "SystemScores",
    "evaluate_system",
    "get_consensus_metrics",
    "get_correction_accuracy",
    "get_detection_metrics",
    "get_issue_type_metrics",
    "get_reference_scores",
    "get_reliability_curve",
    "get_soft_label_metrics",
    "get_soft_label_reliability",
    "get_vote_entropy",
    "make_annotator_noise",
    "make_noisy",
    "make_pairflip_noise",
    "make_symmetric_noise",
    "make_vote_noise",
    "plan_systems",
    "run_benchmark",
    "run_measured",
    "run_suite",
    "write_noisy_dataset",
]
