"""Metrics against values computed by hand."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from genrec.evaluation import evaluate_scores, ranking_metrics, top_k


def test_hand_computed_user():
    # truth {1, 3, 7}; ranking 3, 5, 1, 9, 2: hits at ranks 1 and 3.
    truth = sp.csr_matrix(([1, 1, 1], ([0, 0, 0], [1, 3, 7])), shape=(1, 10))
    ranked = np.array([[3, 5, 1, 9, 2]])
    m = {k: v[0] for k, v in ranking_metrics(ranked, truth, (1, 3, 5)).items()}
    assert m["precision@1"] == 1.0 and m["recall@1"] == pytest.approx(1 / 3)
    assert m["precision@5"] == pytest.approx(2 / 5)
    assert m["recall@5"] == pytest.approx(2 / 3)
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg3 = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["ndcg@5"] == pytest.approx(dcg / idcg3)
    assert m["ndcg@3"] == pytest.approx(dcg / idcg3)
    # ideal DCG over min(|test|, K) items: at K=1 one item
    assert m["ndcg@1"] == pytest.approx(1.0)
    assert m["mrr@5"] == 1.0


def test_first_hit_rank_and_misses():
    truth = sp.csr_matrix(([1, 1], ([0, 1], [4, 0])), shape=(2, 6))
    ranked = np.array([[1, 2, 4, 3], [5, 4, 3, 2]])
    m = ranking_metrics(ranked, truth, (2, 4))
    assert m["mrr@4"].tolist() == [pytest.approx(1 / 3), 0.0]
    assert m["mrr@2"].tolist() == [0.0, 0.0]
    assert m["ndcg@4"][0] == pytest.approx(1 / math.log2(4))
    assert m["recall@4"].tolist() == [1.0, 0.0]


def test_padding_never_hits():
    truth = sp.csr_matrix(([1], ([0], [0])), shape=(1, 3))
    m = ranking_metrics(np.array([[-1, -1]]), truth, (2,))
    assert m["precision@2"][0] == 0.0


def test_top_k_is_the_head_of_a_longer_list_whatever_the_ties():
    """A tie at the k-th place keeps the lower indices, so metrics @10 do not depend on max(ks)."""
    assert top_k(np.zeros((1, 50)), 3).tolist() == [[0, 1, 2]]
    scores = np.random.default_rng(0).integers(0, 4, size=(200, 300)).astype(float)  # ties everywhere
    scores[:, ::7] = -np.inf
    longest = top_k(scores, 40)
    for k in (1, 5, 10, 20):
        assert np.array_equal(top_k(scores, k), longest[:, :k])
    assert np.array_equal(longest, np.argsort(-scores, axis=1, kind="stable")[:, :40])
    # Rows with and without a tie at the k-th place in one block, float32 as the scorers give them.
    some = np.round(np.random.default_rng(1).random((300, 500)), 3).astype(np.float32)
    assert np.array_equal(top_k(some, 20), np.argsort(-some, axis=1, kind="stable")[:, :20])


def test_top_k_breaks_ties_by_index():
    scores = np.array([[0.1, 0.5, 0.5, 0.9, -np.inf]])
    assert top_k(scores, 3).tolist() == [[3, 1, 2]]


def test_evaluate_scores_masks_known_items_and_skips_users_without_test_items():
    known = sp.csr_matrix(([1, 1], ([0, 1], [0, 0])), shape=(3, 4))
    truth = sp.csr_matrix(([1, 1], ([0, 1], [1, 3])), shape=(3, 4))
    # Item 0 scores highest for everyone but is known: it must not take the first rank.
    scores = np.array([[9.0, 5.0, 1.0, 0.0]] * 3)
    result = evaluate_scores(lambda users: scores[users], known, truth, ks=(1,))
    assert result.users.tolist() == [0, 1]
    assert result.metrics["precision@1"] == pytest.approx(0.5)  # user 0 hits item 1, user 1 misses
