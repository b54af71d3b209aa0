"""Baselines in the same harness: popularity, ItemKNN, EASE, text-only similarity, LightGCN (ids).

All take the train interactions as index arrays (:class:`gnn.evaluation.Interactions`) and are
:class:`gnn.scoring.IndexScorer` s, so they return NaN where they cannot score: id-only models
for users without train history and for items without train interactions, the text model for
users with neither history nor profile text. In the harness the id-only ones are wrapped in a
:class:`gnn.scoring.ColdStartFallback` to popularity, as deployed systems do; that leaves new
items at the bottom of their lists, so they score about zero on the cold-item slice.

Tuning budget (identical for every model, see :func:`gnn.evaluation.evaluate_all`): at most
:data:`TUNING_BUDGET` settings per model are tried on the validation split; iterative models
additionally early-stop on validation NDCG@20 under the same ``epochs``/``eval_every``/
``patience`` rules; the chosen setting is then refitted on the full train part.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import scipy.sparse as sp
import torch

from gnn.evaluation import Interactions
from gnn.scoring import IndexScorer

log = logging.getLogger(__name__)

TUNING_BUDGET = 4
"""Maximum number of hyper-parameter settings any model may try on validation."""

ITEMKNN_GRID = (20, 50, 100, 200)
"""Neighbourhood sizes tried for ItemKNN."""
EASE_GRID = (50.0, 200.0, 800.0, 3200.0)
"""L2 strengths tried for EASE (factor 4 apart)."""
TEXT_GRID = (None, 50, 10)
"""History windows tried for the text-only model: whole history, or the last n items."""


class PopularityScorer(IndexScorer):
    """Most-popular items: the number of distinct train users per item, optionally per segment.

    Args:
        train: train interactions.
        n_users: user vocabulary size.
        n_items: item vocabulary size.
        segments: optional ``[n_users]`` segment id per user (``-1`` = none); a user with a
            segment gets that segment's counts (plus a global tie-break), others the global ones.
    """

    name = "popular"

    def __init__(self, train: Interactions, n_users: int, n_items: int, segments: np.ndarray | None = None) -> None:
        self.n_users, self.n_items = n_users, n_items
        t = train.dedupe()
        self.counts = np.bincount(t.item, minlength=n_items).astype(np.float64)
        self.segments = None if segments is None else np.asarray(segments, dtype=np.int64)
        if self.segments is not None:
            if len(self.segments) != n_users:
                raise ValueError(f"segments has {len(self.segments)} entries, expected n_users={n_users}")
            seg = self.segments[t.user]
            ok = seg >= 0
            n_seg = int(self.segments.max()) + 1 if len(self.segments) else 0
            self.seg_counts = np.zeros((max(n_seg, 1), n_items))
            np.add.at(self.seg_counts, (seg[ok], t.item[ok]), 1.0)

    def _score(self, users: np.ndarray) -> np.ndarray:
        glob = self.counts / (self.counts.max() + 1.0)       # < 1: only breaks segment ties
        if self.segments is None:
            return np.broadcast_to(self.counts, (len(users), self.n_items)).copy()
        seg = self.segments[users]
        out = np.broadcast_to(glob, (len(users), self.n_items)).copy()
        has = seg >= 0
        out[has] += self.seg_counts[seg[has]]
        out[~has] = self.counts
        return out


def _history_matrix(train: Interactions, n_users: int, n_items: int) -> sp.csr_matrix:
    return train.csr(n_users, n_items)


class ItemKNNScorer(IndexScorer):
    """Item-based k-nearest neighbours with cosine similarity on the binary train matrix.

    ``score(u, i) = sum over j in history(u) of sim(j, i)`` where each item keeps only its
    ``k`` most similar items (Sarwar et al. 2001, "Item-based collaborative filtering
    recommendation algorithms"; Deshpande & Karypis 2004).

    Args:
        train: train interactions.
        n_users: user vocabulary size.
        n_items: item vocabulary size.
        k: neighbours kept per item.
        chunk: items processed at once when computing similarities.
    """

    name = "itemknn"

    def __init__(self, train: Interactions, n_users: int, n_items: int, k: int = 100, chunk: int = 1024) -> None:
        self.n_users, self.n_items, self.k = n_users, n_items, k
        x = _history_matrix(train, n_users, n_items)
        self.x = x
        xt = x.T.tocsr()
        norms = np.sqrt(np.asarray(x.sum(0)).ravel())
        self.item_ok = norms > 0
        self.user_ok = np.diff(x.indptr) > 0
        rows, cols, vals = [], [], []
        kk = min(k, n_items - 1) if n_items > 1 else 0
        for c0 in range(0, n_items, chunk):
            c1 = min(c0 + chunk, n_items)
            co = (xt @ x[:, c0:c1]).toarray()                      # [n_items, chunk]
            denom = norms[:, None] * norms[None, c0:c1]
            sim = np.divide(co, denom, out=np.zeros_like(co), where=denom > 0)
            sim[np.arange(c0, c1), np.arange(c1 - c0)] = 0.0      # no self-similarity
            if kk == 0:
                continue
            top = np.argpartition(-sim, kk - 1, axis=0)[:kk]       # [kk, chunk]
            v = np.take_along_axis(sim, top, 0)
            keep = v > 0
            # row = the history item j (column of this chunk), col = neighbour i
            rows.append(np.broadcast_to(np.arange(c0, c1), top.shape)[keep])
            cols.append(top[keep])
            vals.append(v[keep])
        if rows:
            self.sim = sp.csr_matrix((np.concatenate(vals).astype(np.float32),
                                      (np.concatenate(rows), np.concatenate(cols))), shape=(n_items, n_items))
        else:
            self.sim = sp.csr_matrix((n_items, n_items), dtype=np.float32)

    def with_k(self, k: int) -> ItemKNNScorer:
        """The same model keeping only the ``k <= self.k`` best neighbours per item (no refit)."""
        if k > self.k:
            raise ValueError(f"with_k({k}) needs k <= the fitted k ({self.k}); refit instead")
        out = copy.copy(self)
        out.k = k
        sim = self.sim.tocsr()
        rows, cols, vals = [], [], []
        for j in range(sim.shape[0]):
            a, b = sim.indptr[j], sim.indptr[j + 1]
            if b - a > k:
                top = np.argpartition(-sim.data[a:b], k - 1)[:k]
                cols.append(sim.indices[a:b][top])
                vals.append(sim.data[a:b][top])
            else:
                cols.append(sim.indices[a:b])
                vals.append(sim.data[a:b])
            rows.append(np.full(len(cols[-1]), j))
        out.sim = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                shape=sim.shape) if rows else sim
        return out

    def _score(self, users: np.ndarray) -> np.ndarray:
        s = (self.x[users] @ self.sim).toarray().astype(np.float64)
        s[~self.user_ok[users]] = np.nan
        s[:, ~self.item_ok] = np.nan
        return s


def recency_weights(train: Interactions, half_life: float, floor: float = 0.2) -> np.ndarray:
    """Per train row: ``floor + (1 - floor) · 0.5 ** (j / half_life)`` with ``j`` the row's
    position in its user's history counted from the most recent (ties by row order)."""
    if half_life <= 0:
        raise ValueError(f"half_life must be positive, found {half_life}")
    order = np.lexsort((-np.arange(len(train)), -train.ts, train.user))
    u = train.user[order]
    n_users = int(u.max()) + 1 if len(u) else 0
    starts = np.r_[0, np.cumsum(np.bincount(u, minlength=n_users))[:-1]] if len(u) else np.empty(0, np.int64)
    pos = np.empty(len(train))
    pos[order] = np.arange(len(u)) - starts[u]
    return floor + (1.0 - floor) * 0.5 ** (pos / half_life)


class EASEScorer(IndexScorer):
    """EASE: a closed-form item-item linear autoencoder with a zero diagonal (Steck 2019,
    "Embarrassingly Shallow Autoencoders for Sparse Data", WWW).

    ``B = I - P · diag(1 / diag(P))`` with ``P = (XᵀX + λI)⁻¹`` over the ``max_items`` most
    popular train items (the inverse costs ``O(n³)``; on two CPU cores 5,000 items take a few
    seconds, 17,000 several minutes, and items with one or two interactions get near-zero
    weights anyway). Items outside that set score NaN.

    Args:
        train: train interactions.
        n_users: user vocabulary size.
        n_items: item vocabulary size.
        lam: the L2 strength λ.
        max_items: cap on the modelled items.
        device: torch device for the inverse.
    """

    name = "ease"

    def __init__(self, train: Interactions, n_users: int, n_items: int, lam: float = 200.0,
                 max_items: int = 5000, device: str | torch.device = "cpu") -> None:
        self.n_users, self.n_items, self.lam = n_users, n_items, lam
        x = _history_matrix(train, n_users, n_items)
        counts = np.asarray(x.sum(0)).ravel()
        cand = np.flatnonzero(counts > 0)
        if len(cand) > max_items:
            cand = np.sort(cand[np.argsort(-counts[cand], kind="stable")[:max_items]])
        self.items = cand
        self.x = x[:, cand].tocsr()
        self.user_ok = np.diff(x.indptr) > 0
        self.train = train
        self.half_life = None
        g = torch.from_numpy((self.x.T @ self.x).toarray().astype(np.float64)).to(device)
        self.B = self._solve(g, lam)

    def with_recency(self, half_life: float | None, floor: float = 0.2) -> EASEScorer:
        """The same ``B`` applied to recency-weighted histories (no refit).

        A user's ``j``-th most recent item (``j = 0`` the latest) enters with weight
        ``floor + (1 - floor) · 0.5 ** (j / half_life)`` instead of 1, so the latest items
        dominate what is predicted next. ``None`` gives the plain model. This is not part of
        Steck's EASE; kgrec uses it in its residual, and the benchmark reports it separately.
        """
        out = copy.copy(self)
        out.half_life = half_life
        if half_life is None:
            return out
        w = recency_weights(self.train, half_life, floor)
        col = np.full(self.n_items, -1)
        col[self.items] = np.arange(len(self.items))
        t = self.train
        keep = col[t.item] >= 0
        x = sp.csr_matrix((w[keep].astype(np.float32), (t.user[keep], col[t.item[keep]])),
                          shape=(self.n_users, len(self.items)))
        x.sum_duplicates()
        out.x = x
        return out

    @staticmethod
    def _solve(gram: torch.Tensor, lam: float) -> torch.Tensor:
        g = gram.clone()
        g.diagonal().add_(lam)
        p = torch.cholesky_inverse(torch.linalg.cholesky(g))
        b = -p / p.diagonal().unsqueeze(0)
        b.diagonal().zero_()
        return b.float().cpu()

    def _score(self, users: np.ndarray) -> np.ndarray:
        out = np.full((len(users), self.n_items), np.nan)
        xu = torch.from_numpy(self.x[users].toarray())
        out[:, self.items] = (xu @ self.B).double().numpy()
        out[~self.user_ok[users]] = np.nan
        return out


class TextSimilarityScorer(IndexScorer):
    """Text-only: cosine between a user's profile and the item text embeddings.

    The profile is the normalised mean of the text vectors of the user's train items (the last
    ``recent`` of them by time, or all), plus their own profile text vector when they have one.
    Users with neither score NaN; items without text score NaN.

    Args:
        x_item: ``[n_items, d]`` L2-normalised item embeddings.
        train: train interactions.
        n_users: user vocabulary size.
        x_user: optional ``[n_users, d]`` profile embeddings.
        has_text_user: bool mask of real profiles.
        has_text_item: bool mask of items with text.
        recent: history window (None: whole history).
    """

    name = "text"

    def __init__(self, x_item, train: Interactions, n_users: int, x_user=None, has_text_user=None,
                 has_text_item=None, recent: int | None = None) -> None:
        xi = torch.as_tensor(x_item, dtype=torch.float32)
        self.n_users, self.n_items = n_users, len(xi)
        self.x_item = torch.nn.functional.normalize(xi, dim=1)
        self.item_ok = np.ones(self.n_items, bool) if has_text_item is None else np.asarray(has_text_item, bool)
        t = train.dedupe()
        t = t.select(self.item_ok[t.item])
        if recent is not None and len(t):
            order = np.lexsort((-t.ts, t.user))
            u = t.user[order]
            starts = np.r_[0, np.cumsum(np.bincount(u, minlength=n_users))[:-1]]
            pos = np.arange(len(u)) - starts[u]
            t = t.select(order[pos < recent])
        prof = torch.zeros(n_users, self.x_item.shape[1])
        prof.index_add_(0, torch.from_numpy(t.user), self.x_item[torch.from_numpy(t.item)])
        has = np.bincount(t.user, minlength=n_users) > 0
        prof = torch.nn.functional.normalize(prof, dim=1)
        if x_user is not None:
            xu = torch.nn.functional.normalize(torch.as_tensor(x_user, dtype=torch.float32), dim=1)
            m = np.ones(n_users, bool) if has_text_user is None else np.asarray(has_text_user, bool)
            prof[torch.from_numpy(m)] += xu[torch.from_numpy(m)]
            has = has | m
        self.profile = torch.nn.functional.normalize(prof, dim=1)
        self.user_ok = has

    def _score(self, users: np.ndarray) -> np.ndarray:
        s = (self.profile[torch.from_numpy(users)] @ self.x_item.T).double().numpy()
        s[~self.user_ok[users]] = np.nan
        s[:, ~self.item_ok] = np.nan
        return s


class LightGCNScorer(IndexScorer):
    """PyG LightGCN (He et al. 2020) on user/item ids only, trained with BPR (Rendle et al.
    2009); NaN for users and items without train interactions.

    Build it with :func:`gnn.training.train_lightgcn`.
    """

    name = "lightgcn"

    def __init__(self, z_user: torch.Tensor, z_item: torch.Tensor, user_ok: np.ndarray, item_ok: np.ndarray) -> None:
        self.z_user, self.z_item = z_user.detach().float().cpu(), z_item.detach().float().cpu()
        self.user_ok, self.item_ok = np.asarray(user_ok, bool), np.asarray(item_ok, bool)
        self.n_users, self.n_items = len(self.z_user), len(self.z_item)

    def _score(self, users: np.ndarray) -> np.ndarray:
        s = (self.z_user[torch.from_numpy(users)] @ self.z_item.T).double().numpy()
        s[~self.user_ok[users]] = np.nan
        s[:, ~self.item_ok] = np.nan
        return s
