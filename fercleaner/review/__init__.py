"""Human review of flagged samples: the decision store, queue queries and run loading."""

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
    "DECISION_ACTIONS",
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
    "join_decisions",
    "open_run",
]
