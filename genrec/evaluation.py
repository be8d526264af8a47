"""Full-ranking evaluation: SPEC's metrics, computed the way published results compute them.

For each user with at least one held-out item, every item not in the user's known history is ranked.
P@K = hits/K; R@K = hits/|test_u|; NDCG@K with binary gains and the ideal DCG over min(|test_u|, K);
MRR@K = 1/rank of the first hit within K. Means over users.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import scipy.sparse as sp
import torch

METRICS = ("precision", "recall", "ndcg", "mrr")


@dataclass
class EvalResult:
    """Mean metrics plus the per-user values behind them (for paired comparisons)."""

    metrics: dict[str, float]
    users: np.ndarray
    per_user: dict[str, np.ndarray] = field(repr=False, default_factory=dict)


def as_tensor(scores: np.ndarray, dtype=None) -> torch.Tensor:
    """`scores` (as `dtype` if given) as a tensor sharing their memory where it can (a read-only
    block, as pandas 3 and broadcasting hand out, is copied)."""
    scores = np.asarray(scores, dtype=dtype)
    return torch.from_numpy(scores if scores.flags.writeable else scores.copy())


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best scores per row, best first, ties broken by lower index: the first k of
    a longer list, whatever k (so a metric @10 does not depend on the largest cut-off asked for)."""
    width = scores.shape[1]
    k = min(k, width)
    # torch's top-k selects in one pass per row, threaded (about 20x numpy's argpartition at 30K
    # items). Taking one more than k tells the rows where a tie crosses the k-th place (the extra
    # score equals the k-th): which tied items torch took there is arbitrary, so those are redone.
    whole = as_tensor(scores)
    values, part = torch.topk(whole, min(k + 1, width), dim=1, sorted=True)
    values, part = values.numpy(), part.numpy()
    tied = np.flatnonzero(values[:, k - 1] == values[:, k]) if k < width else np.empty(0, dtype=np.int64)
    part, part_scores = part[:, :k], values[:, :k]
    top = np.take_along_axis(part, np.lexsort((part, -part_scores), axis=1), axis=1)
    kth = part_scores[:, k - 1 : k]
    if len(tied):
        # The tied items with the lowest indices, in one pass over each such row (not a sort).
        rows, at = scores[tied], kth[tied]
        above = rows > at
        level = rows == at
        take = above | (level & (np.cumsum(level, axis=1) <= k - above.sum(axis=1, keepdims=True)))
        chosen = np.nonzero(take)[1].reshape(len(tied), k)
        chosen_scores = np.take_along_axis(rows, chosen, axis=1)
        top[tied] = np.take_along_axis(chosen, np.lexsort((chosen, -chosen_scores), axis=1), axis=1)
    return top


def top_k_unseen(scores: np.ndarray, rows: np.ndarray, items: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """`top_k` of `scores` with the entries (rows, items) ranked out (a user's known items), and the
    scores as ranked (-inf where a row had fewer than k others). The entries are set to -inf in
    place for the ranking and put back after it, so a block of scores is neither copied nor changed
    (a read-only or integer block is copied)."""
    if not scores.flags.writeable or not np.issubdtype(scores.dtype, np.floating):
        scores = scores.astype(np.result_type(scores, np.float32))
    kept = scores[rows, items]
    scores[rows, items] = -np.inf
    try:
        top = top_k(scores, k)
        return top, np.take_along_axis(scores, top, axis=1)
    finally:
        scores[rows, items] = kept


def ranking_metrics(ranked: np.ndarray, truth: sp.csr_matrix, ks: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Per-user metrics of ranked item lists against `truth` rows (one row per ranked list).

    `ranked` holds item indices, best first; -1 pads lists shorter than max(ks) and never hits.
    """
    n_users, width = ranked.shape
    truth = truth.tocsr()
    n_true = np.diff(truth.indptr).astype(np.float64)
    rows = np.repeat(np.arange(n_users), width)
    flat = ranked.ravel()
    valid = flat >= 0
    hit = np.zeros(n_users * width, dtype=bool)
    if valid.any():
        hit[valid] = np.asarray(truth[rows[valid], flat[valid]]).ravel() > 0
    hits = hit.reshape(n_users, width)
    discounts = 1.0 / np.log2(np.arange(2, width + 2))
    out: dict[str, np.ndarray] = {}
    for k in ks:
        h = hits[:, :k]
        n_hits = h.sum(axis=1)
        dcg = (h * discounts[:k]).sum(axis=1)
        ideal_n = np.minimum(n_true, k).astype(int)
        idcg = np.cumsum(discounts[:k])[np.maximum(ideal_n, 1) - 1]
        first = np.where(h.any(axis=1), h.argmax(axis=1) + 1, 0)
        out[f"precision@{k}"] = n_hits / k
        out[f"recall@{k}"] = n_hits / np.maximum(n_true, 1)
        out[f"ndcg@{k}"] = np.where(ideal_n > 0, dcg / idcg, 0.0)
        out[f"mrr@{k}"] = np.where(first > 0, 1.0 / np.maximum(first, 1), 0.0)
    return out


BLOCK_CELLS = 8_000_000
"""Scores ranked at once (users x items of a block): a block of float64 scores stays near 64 MB
whatever the catalogue."""


def block_rows(n_items: int, at_most: int = 1024) -> int:
    """How many users' scores to hold at once for a catalogue of `n_items`."""
    return max(1, min(at_most, BLOCK_CELLS // max(n_items, 1)))


def sample_rows(matrix: sp.csr_matrix, at_most: int | None, seed: int = 0) -> sp.csr_matrix:
    """`matrix` with the interactions of at most `at_most` of its non-empty rows, a seeded sample
    (the others emptied); `matrix` itself where it has no more (or `at_most` is None)."""
    rows = np.flatnonzero(np.diff(matrix.indptr) > 0)
    if at_most is None or len(rows) <= at_most:
        return matrix
    keep = np.zeros(matrix.shape[0], dtype=np.float32)
    keep[np.random.default_rng(seed).choice(rows, at_most, replace=False)] = 1.0
    out = (sp.diags(keep) @ matrix).tocsr()
    out.eliminate_zeros()
    return out


def evaluate_scores(
    score_fn: Callable[[np.ndarray], np.ndarray],
    known: sp.csr_matrix,
    truth: sp.csr_matrix,
    ks: tuple[int, ...] = (5, 10, 20),
    batch_size: int | None = None,
    candidates: np.ndarray | None = None,
) -> EvalResult:
    """Score users with held-out items in batches, mask what they already know, rank, measure.

    `score_fn(users)` returns a dense (len(users), n_items) block for those users only (blocks of
    `batch_size` users, by default as many as `block_rows` allows). With `candidates` (a flag per
    item), only those items are ranked, and `truth` is cut to them.
    """
    return evaluate_many(lambda users: {"": score_fn(users)}, ("",), known, truth, ks, batch_size, candidates)[""]


def evaluate_many(
    score_fn: Callable[[np.ndarray], dict[str, np.ndarray]],
    names: tuple[str, ...],
    known: sp.csr_matrix,
    truth: sp.csr_matrix,
    ks: tuple[int, ...] = (5, 10, 20),
    batch_size: int | None = None,
    candidates: np.ndarray | None = None,
) -> dict[str, EvalResult]:
    """`evaluate_scores` for several score blocks of the same users at once: `score_fn(users)`
    returns one per name of `names` (e.g. a blend's and each of its parts', each part scored once)."""
    batch_size = batch_size or block_rows(truth.shape[1])
    if candidates is not None:
        truth = (truth.tocsr() @ sp.diags(np.asarray(candidates, dtype=np.float32))).tocsr()
        truth.eliminate_zeros()
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    max_k = max(ks)
    ranked = {name: np.empty((len(users), min(max_k, truth.shape[1])), dtype=np.int64) for name in names}
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size]
        seen = known[batch]
        blocks = score_fn(batch)
        rows = np.repeat(np.arange(len(batch)), np.diff(seen.indptr))
        for name in names:
            scores = blocks[name]
            if candidates is not None:
                scores = np.array(scores, copy=True)
                scores[:, ~np.asarray(candidates, dtype=bool)] = -np.inf
            ranked[name][start : start + len(batch)] = top_k_unseen(scores, rows, seen.indices, max_k)[0]
    return {name: evaluate_ranked(r, users, truth, ks) for name, r in ranked.items()}


def evaluate_ranked(ranked: np.ndarray, users: np.ndarray, truth: sp.csr_matrix, ks: tuple[int, ...]) -> EvalResult:
    """Metrics of precomputed rankings (one per user in `users`), e.g. from a served model."""
    per_user = ranking_metrics(ranked, truth[users], ks)
    metrics = {name: float(values.mean()) if len(values) else 0.0 for name, values in per_user.items()}
    metrics["coverage@" + str(max(ks))] = float(len(np.unique(ranked[ranked >= 0])) / truth.shape[1])
    return EvalResult(metrics=metrics, users=users, per_user=per_user)
