"""Human review of flagged samples: decision store, action meanings, queue queries, run loading.

The app reaches runs, decisions and the action table through this package.
"""

from fercleaner.review.actions import (
    ACTION_TABLE,
    OUTCOMES,
    Action,
    get_action,
    get_outcomes,
    get_weights,
    make_decision,
)
from fercleaner.review.queue import (
    QueueFilter,
    find_members,
    find_pairs,
    find_queue,
    join_decisions,
)
from fercleaner.review.run import ImageNotInRunError, ReviewRun, RunError, open_run
from fercleaner.review.store import (
    ACTIONS,
    DECISION_ACTIONS,
    Decision,
    DecisionStore,
    Event,
    ReviewStoreBusyError,
    ReviewStoreError,
    estimate_reviewer_agreement,
)

__all__ = [
    "ACTIONS",
    "ACTION_TABLE",
    "DECISION_ACTIONS",
    "OUTCOMES",
    "Action",
    "Decision",
    "DecisionStore",
    "Event",
    "ImageNotInRunError",
    "QueueFilter",
    "ReviewRun",
    "ReviewStoreBusyError",
    "ReviewStoreError",
    "RunError",
    "estimate_reviewer_agreement",
    "find_members",
    "find_pairs",
    "find_queue",
    "get_action",
    "get_outcomes",
    "get_weights",
    "join_decisions",
    "make_decision",
    "open_run",
]
