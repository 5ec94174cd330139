"""Agreement statistics between reviewers, computed from their current decisions.

Pure pandas over `DecisionStore.reviewer_decisions()`: no SQLite, so the statistic can be
tested and reused apart from the store.
"""

from __future__ import annotations

import pandas as pd


def outcome_of(action: str, label: str | None) -> str:
    """What a decision means for the dataset, for comparing reviewers.

    `accept`, `keep` and `relabel` that end on the same class agree; `ambiguous` and
    `exclude` are outcomes of their own.
    """
    if action in ("ambiguous", "exclude"):
        return action
    return str(label)


def estimate_reviewer_agreement(reviewer_decisions: pd.DataFrame) -> pd.DataFrame:
    """Agreement between every pair of reviewers over the samples both decided.

    Args:
        reviewer_decisions: `DecisionStore.reviewer_decisions()`.

    Returns:
        One row per reviewer pair with at least one shared sample: `reviewer_a`,
        `reviewer_b`, `n_shared`, `n_agree`, `agreement` (fraction in [0, 1]) and
        `kappa` (Cohen's kappa over outcomes; NaN when chance agreement is 1).
    """
    columns = ["reviewer_a", "reviewer_b", "n_shared", "n_agree", "agreement", "kappa"]
    if reviewer_decisions.empty:
        return pd.DataFrame(columns=columns)
    table = reviewer_decisions.assign(
        outcome=[
            outcome_of(a, lab)
            for a, lab in zip(
                reviewer_decisions["action"], reviewer_decisions["label"], strict=True
            )
        ]
    ).pivot(index="sample_id", columns="reviewer", values="outcome")
    names = sorted(table.columns)
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            both = table[[a, b]].dropna()
            if both.empty:
                continue
            agree = both[a] == both[b]
            p_o = float(agree.mean())
            pa = both[a].value_counts(normalize=True)
            pb = both[b].value_counts(normalize=True)
            p_e = float((pa * pb.reindex(pa.index, fill_value=0.0)).sum())
            kappa = (p_o - p_e) / (1.0 - p_e) if p_e < 1.0 else float("nan")
            rows.append((a, b, len(both), int(agree.sum()), p_o, kappa))
    return pd.DataFrame(rows, columns=columns)
