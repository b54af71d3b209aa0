"""Metrics on hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gnn import metrics as M


def _hits(topk, relevant, n_items=100):
    indptr = np.r_[0, np.cumsum([len(r) for r in relevant])]
    items = np.concatenate([np.asarray(r, dtype=np.int64) for r in relevant])
    return M.topk_hits(np.asarray(topk), indptr, items, n_items)


def test_hits_mark_relevant_positions():
    hits = _hits([[5, 3, 9], [1, 2, 3]], [[3, 7], [4]])
    assert hits.tolist() == [[False, True, False], [False, False, False]]


def test_recall_uses_all_relevant_items_as_denominator():
    # user 0: 1 of 2 relevant found; user 1: 0 of 1; user 2: 2 of 4 (not capped at k = 3)
    hits = _hits([[5, 3, 9], [1, 2, 3], [1, 2, 8]], [[3, 7], [4], [1, 2, 50, 60]])
    np.testing.assert_allclose(M.recall_at_k(hits, [2, 1, 4]), [0.5, 0.0, 0.5])


def test_ndcg_exact_values():
    # relevant at rank 2 of 3, two relevant items: DCG = 1/log2(3), IDCG = 1 + 1/log2(3)
    hits = _hits([[5, 3, 9]], [[3, 7]])
    expected = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert M.ndcg_at_k(hits, [2])[0] == pytest.approx(expected, abs=1e-12)
    # perfect list: 1.0; IDCG is capped at k when there are more relevant items than slots
    hits = _hits([[1, 2]], [[1, 2, 3, 4, 5]])
    assert M.ndcg_at_k(hits, [5])[0] == pytest.approx(1.0)
    # no hit: 0
    assert M.ndcg_at_k(_hits([[9, 8]], [[1]]), [1])[0] == 0.0


def test_hit_rate_and_mrr():
    hits = _hits([[5, 3, 9], [1, 2, 3]], [[3], [4]])
    np.testing.assert_allclose(M.hit_rate_at_k(hits), [1.0, 0.0])
    # first relevant at full-ranking ranks 2 and 40; 0 means "nothing rankable"
    np.testing.assert_allclose(M.reciprocal_rank(np.array([2, 40, 0])), [0.5, 0.025, 0.0])


def test_coverage_counts_distinct_items_and_ignores_padding():
    assert M.catalogue_coverage(np.array([[1, 2], [2, -1]]), 10) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="n_items"):
        M.catalogue_coverage(np.array([[1]]), 0)
