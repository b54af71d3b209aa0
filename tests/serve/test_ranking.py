"""Top-n selection of the API: best scores first, ties always to the lower index."""

from __future__ import annotations

import numpy as np

from serve.ranking import top_of


def _reference(scores: np.ndarray, exclude: np.ndarray | None, n: int) -> list[int]:
    s = np.where(np.isnan(scores), -np.inf, scores)
    if exclude is not None:
        s = s.copy()
        s[exclude] = -np.inf
    order = sorted(range(len(s)), key=lambda i: (-s[i], i))
    return [i for i in order if np.isfinite(s[i])][:n]


def test_ties_at_the_cut_go_to_the_lowest_indices():
    scores = np.array([0.1, 0.5, 0.5, 0.9, 0.5, 0.5, 0.5, 0.2])
    assert top_of(scores, None, 3).tolist() == [3, 1, 2]
    assert top_of(scores, np.array([1]), 3).tolist() == [3, 2, 4]


def test_matches_a_full_stable_sort_on_heavily_tied_rows():
    rng = np.random.default_rng(7)
    for _ in range(300):
        m = int(rng.integers(1, 60))
        scores = rng.integers(0, 4, m).astype(float)          # few distinct values: ties everywhere
        scores[rng.random(m) < 0.1] = np.nan
        scores[rng.random(m) < 0.1] = -np.inf
        exclude = rng.choice(m, int(rng.integers(0, m)), replace=False) if m > 1 else None
        n = int(rng.integers(1, m + 3))
        assert top_of(scores, exclude, n).tolist() == _reference(scores, exclude, n)
