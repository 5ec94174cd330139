"""Scoring: pure numpy/pandas numerics that turn method readouts into the scores.parquet contract.

Per-class thresholds and the confident joint (`thresholds`), label quality (`quality`),
the `is_label_issue` decision (`flags`), issue types and proposals (`issue_types`),
the combination of several sources (`combine`), the scores as columns and as a frame
(`columns`, `assemble`), the scores file I/O (`scores_file`) and `score_labels` (`api`),
the whole scoring on a user's own probabilities with cleanlab's argument conventions;
crowd votes and the model's consensus (`consensus`) and what it changes in the scores
(`crowd`). No torch, no I/O outside `scores_file`.
"""

from __future__ import annotations

from fercleaner.scoring.api import score_labels
from fercleaner.scoring.assemble import SCORE_COLUMNS, assemble_columns, assemble_scores
from fercleaner.scoring.columns import ScoreColumns
from fercleaner.scoring.combine import COMBINE_RULES, CombinedReadout, combine_sources
from fercleaner.scoring.crowd import (
    CROWD_COLUMNS,
    apply_crowd_votes,
    find_consensus_issues,
    get_sample_votes,
)
from fercleaner.scoring.flags import FLAG_RULES, find_label_issues
from fercleaner.scoring.issue_types import ISSUE_TYPES, get_issue_type, propose_labels
from fercleaner.scoring.quality import LABEL_QUALITY_METHODS, get_label_quality
from fercleaner.scoring.scores_file import (
    SCORES_ORDER,
    SCORES_ROW_GROUP_ROWS,
    ScoresFile,
    ScoresStream,
    is_most_suspect_first,
    open_scores,
    read_scores,
    sort_most_suspect_first,
    write_scores,
)
from fercleaner.scoring.thresholds import (
    estimate_confident_joint,
    estimate_issue_counts,
    estimate_noise_rates,
    estimate_per_class_thresholds,
)

__all__ = [
    "COMBINE_RULES",
    "CROWD_COLUMNS",
    "ISSUE_TYPES",
    "LABEL_QUALITY_METHODS",
    "SCORES_ORDER",
    "SCORES_ROW_GROUP_ROWS",
    "SCORE_COLUMNS",
    "CombinedReadout",
    "ScoreColumns",
    "apply_crowd_votes",
    "ScoresFile",
    "ScoresStream",
    "assemble_columns",
    "assemble_scores",
    "combine_sources",
    "estimate_confident_joint",
    "estimate_issue_counts",
    "estimate_noise_rates",
    "estimate_per_class_thresholds",
    "FLAG_RULES",
    "find_consensus_issues",
    "find_label_issues",
    "get_issue_type",
    "get_label_quality",
    "get_sample_votes",
    "is_most_suspect_first",
    "propose_labels",
    "open_scores",
    "read_scores",
    "score_labels",
    "sort_most_suspect_first",
    "write_scores",
]
