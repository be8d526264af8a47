"""Hyperparameter choice on the validation split only (never on test)."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import scipy.sparse as sp


def choose_on_validation(
    candidates: Sequence[Any],
    scorer_for: Callable[[Any], Callable[[sp.csr_matrix], Any]],
    train: sp.csr_matrix,
    validation: sp.csr_matrix | None,
    metric: str = "ndcg@20",
) -> tuple[Any, dict[str, float]]:
    """The candidate whose scorer (`scorer_for(candidate)`, built on `train`, maps histories to
    scores) does best on `validation`; ties go to the first. With no validation interactions, the
    first candidate, unscored."""
    from genrec.evaluation import evaluate_scores

    if validation is None or validation.nnz == 0 or len(candidates) == 1:
        return candidates[0], {}
    k = int(metric.split("@")[1])
    scores: dict[str, float] = {}
    best, best_score = candidates[0], float("-inf")
    for candidate in candidates:
        scorer = scorer_for(candidate)
        result = evaluate_scores(lambda u: scorer(train[u]), train, validation, ks=(k,))
        score = result.metrics[metric]
        scores[str(candidate)] = round(score, 6)
        if score > best_score:
            best, best_score = candidate, score
    return best, scores


def refit_matrix(train: sp.csr_matrix, validation: sp.csr_matrix | None) -> sp.csr_matrix:
    """Train and validation together (0/1), what a model is refitted on once tuned."""
    full = train.copy() if validation is None else (train + validation).tocsr()
    full.data[:] = 1.0
    return full
