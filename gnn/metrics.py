"""Top-K ranking metrics on index arrays: Recall, NDCG, HitRate, MRR and catalogue coverage.

All functions take per-user arrays and return per-user values (averaging is the caller's
choice), except :func:`catalogue_coverage`, which is a property of a whole set of lists.

Definitions (binary relevance, ``k`` = list length):

* ``hits[u, j]`` is True when the item at rank ``j + 1`` of user ``u``'s list is relevant.
* Recall@k = hits in the list / number of relevant items of the user (not capped at k).
* NDCG@k = DCG / IDCG with DCG = sum_j hits[u, j] / log2(j + 2) and IDCG the DCG of a perfect
  list, i.e. of min(n_relevant, k) hits at the top (Järvelin & Kekäläinen 2002).
* HitRate@k = 1 when the list holds at least one relevant item.
* MRR = 1 / rank of the first relevant item in the *full* ranking (no cut-off).
* Coverage = distinct items recommended to anyone / catalogue size.
"""

from __future__ import annotations

import numpy as np


def topk_hits(topk: np.ndarray, rel_indptr: np.ndarray, rel_items: np.ndarray, n_items: int) -> np.ndarray:
    """Mark which recommended items are relevant.

    Args:
        topk: ``[n_users, k]`` recommended item indices per user, best first.
        rel_indptr: ``[n_users + 1]`` CSR row pointer of each user's relevant items.
        rel_items: relevant item indices, row ``u`` is ``rel_items[rel_indptr[u]:rel_indptr[u+1]]``.
        n_items: catalogue size (used to build unique (user, item) keys).

    Returns:
        ``[n_users, k]`` bool array.
    """
    topk = np.asarray(topk, dtype=np.int64)
    n, k = topk.shape
    if len(rel_indptr) != n + 1:
        raise ValueError(f"rel_indptr must have n_users + 1 = {n + 1} entries, found {len(rel_indptr)}")
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(rel_indptr))
    rel_keys = rows * n_items + np.asarray(rel_items, dtype=np.int64)
    keys = np.arange(n, dtype=np.int64)[:, None] * n_items + topk
    return np.isin(keys, rel_keys) & (topk >= 0)


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """Per-user Recall@k: hits / number of relevant items (0 for users with none)."""
    n_relevant = np.asarray(n_relevant, dtype=np.float64)
    return np.divide(hits.sum(1), n_relevant, out=np.zeros(len(n_relevant)), where=n_relevant > 0)


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """Per-user NDCG@k with binary relevance; IDCG uses min(n_relevant, k) ideal hits."""
    k = hits.shape[1]
    disc = _discounts(k)
    dcg = (hits * disc).sum(1)
    ideal = np.concatenate([[0.0], np.cumsum(disc)])
    idcg = ideal[np.minimum(np.asarray(n_relevant, dtype=np.int64), k)]
    return np.divide(dcg, idcg, out=np.zeros(len(dcg)), where=idcg > 0)


def hit_rate_at_k(hits: np.ndarray) -> np.ndarray:
    """Per-user HitRate@k: 1.0 when at least one relevant item is in the list."""
    return hits.any(1).astype(np.float64)


def reciprocal_rank(first_rank: np.ndarray) -> np.ndarray:
    """Per-user reciprocal rank from the 1-based full-ranking rank of the first relevant item.

    A rank of 0 or less (the user had no rankable relevant item) gives 0.
    """
    first_rank = np.asarray(first_rank, dtype=np.float64)
    return np.divide(1.0, first_rank, out=np.zeros(len(first_rank)), where=first_rank > 0)


def catalogue_coverage(topk: np.ndarray, n_items: int) -> float:
    """Share of the catalogue that appears in at least one list (indices < 0 are padding)."""
    if n_items <= 0:
        raise ValueError(f"n_items must be positive, found {n_items}")
    items = np.unique(np.asarray(topk).ravel())
    return float((items >= 0).sum()) / n_items
