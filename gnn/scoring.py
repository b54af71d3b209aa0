"""Scoring and recommending: the ``Scorer`` protocol, cold-start fallback, top-K for everyone.

Every scorer works on contiguous indices (the ``*_idx`` of the exported vocabularies) and
returns a ``[n_users, n_items]`` float array with NaN wherever it cannot score: an unknown user
or item (index ``-1`` or out of range), a user with nothing to go on, an item it never saw.
It never returns 0 or -inf for "unknown".

:class:`ColdStartFallback` chains scorers in a declared order (fused GNN → text/entity
similarity → friends → nearby → popular in the segment). For each cell the first layer with a
finite score wins, and the cell's *reason* is that layer's name. Scores of different layers
are not on one scale, so the fallback ranks lexicographically: every cell a better layer
scored ranks above every cell a later layer filled. Its output score is
``tier + normalised score`` with ``tier = n_layers - layer`` and the layer's score min-max
normalised per user into ``[0, 0.999]``; that makes one number per cell that sorts correctly.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

REASONS = ("gnn", "text", "friends", "nearby", "popular")


def csr_cells(m: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of a CSR matrix's stored cells, to set those cells of a dense
    ``[rows, n_items]`` array at once (a batch's seen items, for instance)."""
    return np.repeat(np.arange(m.shape[0]), np.diff(m.indptr)), m.indices


@runtime_checkable
class Scorer(Protocol):
    """Anything that scores (user, item) index pairs; NaN where it cannot."""

    n_users: int
    n_items: int

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Scores ``[len(users), len(items)]`` (all items when ``items`` is None)."""
        ...


class IndexScorer:
    """Base class: handles unknown indices and candidate subsets, so subclasses only implement
    :meth:`_score` for known users over the whole catalogue."""

    name = "scorer"
    n_users: int
    n_items: int

    def _score(self, users: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64).reshape(-1)
        if items is None and len(users) and users.min() >= 0 and users.max() < self.n_users:
            # every user known, whole catalogue: _score's own (fresh) array is the answer
            return np.asarray(self._score(users), dtype=np.float64)
        items = np.arange(self.n_items) if items is None else np.asarray(items, dtype=np.int64).reshape(-1)
        out = np.full((len(users), len(items)), np.nan, dtype=np.float64)
        ku = (users >= 0) & (users < self.n_users)
        ki = (items >= 0) & (items < self.n_items)
        if ku.any() and ki.any():
            s = np.asarray(self._score(users[ku]), dtype=np.float64)
            out[np.ix_(ku, ki)] = s[:, items[ki]]
        return out

    def __call__(self, users: np.ndarray) -> np.ndarray:
        """Full-catalogue scores: lets a scorer be passed where a score function is expected."""
        return self.score(users)


class ColdStartFallback(IndexScorer):
    """Fill the NaNs of one scorer with the next, in a declared order, and say which one scored.

    Args:
        layers: ``(reason, scorer)`` pairs, best first; reasons are usually from :data:`REASONS`.
            The last layer should score everything (popularity) so that no cell stays NaN.

    Example:
        >>> chain = ColdStartFallback([("gnn", fused), ("text", text), ("popular", pop)])
        >>> scores, reason = chain.score_with_reason(np.array([0, 5]))
    """

    name = "fallback"

    def __init__(self, layers: Sequence[tuple[str, Scorer]]) -> None:
        if not layers:
            raise ValueError("ColdStartFallback needs at least one (reason, scorer) layer")
        sizes = {(s.n_users, s.n_items) for _, s in layers}
        if len(sizes) != 1:
            raise ValueError(f"all layers must share (n_users, n_items); found {sorted(sizes)}")
        self.layers = list(layers)
        self.reasons = tuple(r for r, _ in layers)
        self.n_users, self.n_items = sizes.pop()

    def score_with_reason(self, users: np.ndarray, items: np.ndarray | None = None
                          ) -> tuple[np.ndarray, np.ndarray]:
        """Combined scores and, per cell, the index into :attr:`reasons` (-1: nobody scored)."""
        users = np.asarray(users, dtype=np.int64).reshape(-1)
        n_items = self.n_items if items is None else len(np.asarray(items).reshape(-1))
        key = np.full((len(users), n_items), np.nan)
        reason = np.full((len(users), n_items), -1, dtype=np.int8)
        n_layers = len(self.layers)
        for li, (_, scorer) in enumerate(self.layers):
            todo = np.isnan(key)
            rows = np.flatnonzero(todo.any(1))
            if not len(rows):
                break
            whole = len(rows) == len(users)
            s = scorer.score(users if whole else users[rows], items)
            ok = ~np.isnan(s)
            tier = self._tier(s, ok, n_layers - li)
            fill = ok & (todo if whole else todo[rows])
            if whole:  # in place: no copies of the (users x items) block
                np.copyto(key, tier, where=fill)
                reason[fill] = li
                continue
            sub = key[rows]
            sub[fill] = tier[fill]
            key[rows] = sub
            rsub = reason[rows]
            rsub[fill] = li
            reason[rows] = rsub
        return key, reason

    @staticmethod
    def _tier(s: np.ndarray, ok: np.ndarray, level: int) -> np.ndarray:
        """``level + 0.999 · (s min-max scaled per row over its scored cells)``, NaN where unscored."""
        with np.errstate(invalid="ignore"):
            lo = np.fmin.reduce(s, axis=1, keepdims=True)     # NaN-skipping; NaN for an empty row
            hi = np.fmax.reduce(s, axis=1, keepdims=True)
        if np.isfinite(lo).all() and np.isfinite(hi).all():  # the common case: all scores finite
            span = np.where(np.isfinite(hi - lo) & (hi > lo), hi - lo, 1.0)
            out = s - lo
            out /= span
            out *= 0.999
            out += level
            return out
        with np.errstate(invalid="ignore"):
            span = np.where(np.isfinite(hi - lo) & (hi > lo), hi - lo, 1.0)
            norm = np.where(ok, (np.nan_to_num(s) - np.where(np.isfinite(lo), lo, 0.0)) / span, np.nan)
        return level + 0.999 * norm

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        return self.score_with_reason(users, items)[0]


class FusedScorer(IndexScorer):
    """Dot products of final GNN states; NaN for users/items the model had nothing on.

    Args:
        z_user: ``[n_users, d]`` user states.
        z_item: ``[n_items, d]`` item states.
        user_ok: bool ``[n_users]``: users with text, train interactions or links.
        item_ok: bool ``[n_items]``: items with text, train interactions or KG edges.
    """

    name = "gnn"

    def __init__(self, z_user: torch.Tensor, z_item: torch.Tensor, user_ok: np.ndarray, item_ok: np.ndarray) -> None:
        self.z_user = z_user.detach().float().cpu()
        self.z_item = z_item.detach().float().cpu()
        self.user_ok = np.asarray(user_ok, bool)
        self.item_ok = np.asarray(item_ok, bool)
        self.n_users, self.n_items = len(self.z_user), len(self.z_item)

    def _score(self, users: np.ndarray) -> np.ndarray:
        s = (self.z_user[torch.from_numpy(users)] @ self.z_item.T).double().numpy()
        s[~self.user_ok[users]] = np.nan
        s[:, ~self.item_ok] = np.nan
        return s


class ResidualBlendScorer(IndexScorer):
    """A primary scorer plus a weighted residual scorer, both standardised per user.

    ``score = z(primary) + beta · z(residual) + new_item_shift · [item has no train interactions]``
    where ``z`` standardises a user's row over the items it scored. Cells the residual cannot
    score (new items, users without history) contribute 0 from it; cells the primary cannot
    score stay NaN. With ``new_item_slots`` > 0 the rows are then re-ordered by
    :func:`reserve_new_item_slots`: the last ``new_item_slots`` places of each top-``list_k``
    list go to the user's best new items (by that score) that did not reach the list on
    their own. ``beta``, ``new_item_shift`` and ``new_item_slots`` are chosen on validation
    (:func:`gnn.training.tune_blend`).

    Args:
        seen: ``[n_users, n_items]`` train interactions; the slots are placed in the list as it
            is after these are excluded (without it, seen items count as list places).
    """

    name = "blend"

    def __init__(self, primary: Scorer, residual: Scorer | None, beta: float = 0.0,
                 new_items: np.ndarray | None = None, new_item_shift: float = 0.0,
                 new_item_slots: int = 0, list_k: int = 20, seen: sp.csr_matrix | None = None) -> None:
        self.primary, self.residual = primary, residual
        self.beta, self.new_item_shift = float(beta), float(new_item_shift)
        self.new_item_slots, self.list_k = int(new_item_slots), int(list_k)
        self.n_users, self.n_items = primary.n_users, primary.n_items
        self.new_items = np.zeros(self.n_items, bool) if new_items is None else np.asarray(new_items, bool)
        self.seen = None if seen is None else sp.csr_matrix(seen)

    @staticmethod
    def standardise(s: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)     # all-NaN rows: "mean of empty slice"
            mu = np.nanmean(s, 1, keepdims=True)
            sd = np.nanstd(s, 1, keepdims=True)
        sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
        return (s - np.nan_to_num(mu)) / sd

    def parts(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Standardised primary and residual rows (residual NaN → 0)."""
        p = self.standardise(self.primary.score(users))
        if self.residual is None:
            return p, np.zeros_like(p)
        r = self.residual.score(users)
        return p, np.nan_to_num(self.standardise(r))

    def combine(self, p: np.ndarray, r: np.ndarray, beta: float, shift: float, slots: int = 0,
                users: np.ndarray | None = None) -> np.ndarray:
        """The blended rows of ``users`` (needed for the slots: their seen items)."""
        s = p + beta * r + shift * self.new_items[None, :]
        if slots > 0 and self.new_items.any():
            seen = None if self.seen is None or users is None else self.seen[users]
            s = reserve_new_item_slots(s, self.new_items, slots, self.list_k, seen)
        return s

    def _score(self, users: np.ndarray) -> np.ndarray:
        p, r = self.parts(users)
        return self.combine(p, r, self.beta, self.new_item_shift, self.new_item_slots, users)


def reserve_new_item_slots(s: np.ndarray, new_items: np.ndarray, slots: int, k: int,
                           seen: sp.csr_matrix | None = None) -> np.ndarray:
    """Rows of ``s`` re-scored so that the last ``slots`` of the top ``k`` places go to new items.

    Per row, the list is the ``k - slots`` best items (seen items excluded), then the ``slots``
    best new items not already among them, then everything else; each part keeps its own
    order. New items reach users only from text and the graph, so against items with a
    history they rarely make a list on scores alone: a fixed number of places at the end of
    the list shows them without moving the items at its head. A row with fewer candidates
    fills what it can. Returns a new array; NaN stays NaN and finite scores stay finite.

    Args:
        s: ``[n, n_items]`` scores, higher first.
        new_items: bool ``[n_items]``: items without train interactions.
        slots: places reserved (at most ``k``).
        k: the list length the places are counted in.
        seen: ``[n, n_items]`` items excluded from each row's list (its train items).
    """
    slots = min(int(slots), int(k))
    if slots <= 0 or len(s) == 0:
        return s
    finite = np.isfinite(s)
    m = np.where(finite, s, -np.inf)
    if seen is not None and seen.nnz:
        seen = sp.csr_matrix(seen)
        m[csr_cells(seen)] = -np.inf
    n_items = s.shape[1]
    head_n = k - slots
    if head_n > 0:
        cut = -np.partition(-m, min(head_n, n_items) - 1, axis=1)[:, min(head_n, n_items) - 1]
        head = (m >= cut[:, None]) & np.isfinite(m)
    else:
        head = np.zeros_like(finite)
    cand = np.where(new_items[None, :] & ~head, m, -np.inf)
    n_slot = min(slots, n_items)
    idx = np.argpartition(-cand, n_slot - 1, axis=1)[:, :n_slot]
    val = np.take_along_axis(cand, idx, 1)
    order = np.lexsort((idx, -val), axis=1)             # best first, ties by item index
    idx, val = np.take_along_axis(idx, order, 1), np.take_along_axis(val, order, 1)
    ok = np.isfinite(val)
    if not ok.any():
        return s
    slot = np.zeros_like(finite)
    rows = np.repeat(np.arange(len(s))[:, None], n_slot, 1)
    slot[rows[ok], idx[ok]] = True
    # the floor of the head (or above every score when the whole list is slots)
    top = np.where(head, s, np.inf).min(1)
    top = np.where(np.isfinite(top), top, np.where(finite, s, -np.inf).max(1) + 1.0)
    rest = finite & ~head & ~slot
    rest_max = np.where(rest, s, -np.inf).max(1)
    out = s.copy()
    # slots just under the head's floor, in their order; the rest shifted below them
    step = np.arange(1, n_slot + 1)[None, :] / (2.0 * (n_slot + 1))
    out[rows[ok], idx[ok]] = (top[:, None] - step)[ok]
    drop = np.where(np.isfinite(rest_max), rest_max - top + 1.0, 0.0)
    out = np.where(rest, s - drop[:, None], out)
    return out


class ContentTransferScorer(IndexScorer):
    """Carry a collaborative scorer over to new items through their content neighbours.

    A new item (no train interactions) gets the similarity-weighted mean of the scores of its
    ``k`` nearest items *with* interactions, nearest by cosine of the text embeddings: if a user
    is predicted to like the items a new one resembles, they probably like the new one. Items
    with interactions keep the base score. This is the item-to-item content mapping used for
    cold start in e.g. Gantner et al. 2010 ("Learning Attribute-to-Feature Mappings for
    Cold-Start Recommendations"), with the mapping taken as a k-NN average instead of learned.

    Args:
        base: the collaborative scorer (NaN for new items, NaN rows for users it cannot score;
            those rows stay NaN).
        x_item: ``[n_items, d]`` text embeddings.
        new_items: bool ``[n_items]``: items to transfer scores to.
        has_text_item: bool ``[n_items]``; new items without text stay NaN.
        k: neighbours per new item.
    """

    name = "transfer"

    def __init__(self, base: Scorer, x_item, new_items: np.ndarray, has_text_item: np.ndarray | None = None,
                 k: int = 10) -> None:
        self.base = base
        self.n_users, self.n_items = base.n_users, base.n_items
        x = torch.nn.functional.normalize(torch.as_tensor(x_item, dtype=torch.float32), dim=1)
        has = np.ones(self.n_items, bool) if has_text_item is None else np.asarray(has_text_item, bool)
        self.new = np.asarray(new_items, bool)
        src = np.flatnonzero(self.new & has)
        warm = np.flatnonzero(~self.new & has)
        rows, cols, vals = [], [], []
        kk = min(k, len(warm))
        for c0 in range(0, len(src), 2048):
            c = src[c0:c0 + 2048]
            sim = (x[torch.from_numpy(c)] @ x[torch.from_numpy(warm)].T).numpy()
            if kk == 0:
                break
            top = np.argpartition(-sim, kk - 1, axis=1)[:, :kk]
            v = np.take_along_axis(sim, top, 1).clip(min=0.0)
            v = v / np.maximum(v.sum(1, keepdims=True), 1e-9)
            rows.append(np.repeat(c, kk))
            cols.append(warm[top].ravel())
            vals.append(v.ravel())
        self.neighbours = sp.csr_matrix(
            (np.concatenate(vals) if vals else np.empty(0), (np.concatenate(rows) if rows else np.empty(0, int),
                                                            np.concatenate(cols) if cols else np.empty(0, int))),
            shape=(self.n_items, self.n_items))
        self.targets = src

    def on(self, base: Scorer) -> ContentTransferScorer:
        """The same neighbours carrying another base scorer over (the neighbours depend only on
        the text, so several bases share one nearest-neighbour search)."""
        if base.n_items != self.n_items:
            raise ValueError(f"base covers {base.n_items} items, the neighbours {self.n_items}")
        other = copy.copy(self)
        other.base, other.n_users = base, base.n_users
        return other

    def _score(self, users: np.ndarray) -> np.ndarray:
        s = self.base.score(users)
        dead = np.isnan(s).all(1)
        moved = np.asarray(self.neighbours @ np.nan_to_num(s).T).T
        s[:, self.targets] = moved[:, self.targets]
        s[dead] = np.nan
        return s


class SplitResidualScorer(IndexScorer):
    """One scorer for items with train interactions, another for new items, each standardised
    per user over its own items, so the two halves of a row share one scale.

    Args:
        warm: scorer for items with interactions (e.g. EASE).
        new: scorer for the new items (e.g. text similarity, or a content transfer).
        new_items: bool ``[n_items]``.
    """

    name = "split"

    def __init__(self, warm: Scorer, new: Scorer, new_items: np.ndarray) -> None:
        self.warm, self.new = warm, new
        self.n_users, self.n_items = warm.n_users, warm.n_items
        self.new_items = np.asarray(new_items, bool)

    def _score(self, users: np.ndarray) -> np.ndarray:
        w = self.warm.score(users)
        dead = np.isnan(w).all(1)
        out = np.full_like(w, np.nan)
        for mask, s in ((~self.new_items, w), (self.new_items, self.new.score(users))):
            if mask.any():
                out[:, mask] = ResidualBlendScorer.standardise(s[:, mask])
        out[dead] = np.nan
        return out


class FriendsScorer(IndexScorer):
    """What a user's friends interacted with: the number of friends per item (NaN when none).

    Args:
        links: ``[2, L]`` user–user links (direction ignored).
        train: user × item train matrix (binary).
    """

    name = "friends"

    def __init__(self, links: np.ndarray, train: sp.csr_matrix) -> None:
        self.n_users, self.n_items = train.shape
        links = np.asarray(links, dtype=np.int64).reshape(2, -1)
        a, b = np.r_[links[0], links[1]], np.r_[links[1], links[0]]
        keep = a != b
        f = sp.csr_matrix((np.ones(keep.sum(), np.float32), (a[keep], b[keep])), shape=(self.n_users,) * 2)
        f.data[:] = 1.0
        self.friends = f
        self.train = train.astype(np.float32)

    def _score(self, users: np.ndarray) -> np.ndarray:
        s = (self.friends[users] @ self.train).toarray().astype(np.float64)
        s[s == 0] = np.nan
        return s


def haversine_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance in km (broadcasting)."""
    lat1, lon1, lat2, lon2 = (np.radians(np.asarray(v, dtype=np.float64)) for v in (lat1, lon1, lat2, lon2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


class NearbyScorer(IndexScorer):
    """Popular places near the user: ``log1p(popularity) - distance / decay_km``.

    NaN for users or items without a position (lat/lon NaN).

    Args:
        user_pos: ``[n_users, 2]`` (lat, lon), NaN when unknown.
        item_pos: ``[n_items, 2]`` (lat, lon), NaN when unknown.
        popularity: ``[n_items]`` train interaction counts.
        decay_km: distance that costs as much as a factor e of popularity.
    """

    name = "nearby"

    def __init__(self, user_pos: np.ndarray, item_pos: np.ndarray, popularity: np.ndarray, decay_km: float = 2.0) -> None:
        self.user_pos = np.asarray(user_pos, dtype=np.float64).reshape(-1, 2)
        self.item_pos = np.asarray(item_pos, dtype=np.float64).reshape(-1, 2)
        self.pop = np.log1p(np.asarray(popularity, dtype=np.float64))
        self.decay_km = float(decay_km)
        self.n_users, self.n_items = len(self.user_pos), len(self.item_pos)

    def _score(self, users: np.ndarray) -> np.ndarray:
        up = self.user_pos[users]
        d = haversine_km(up[:, :1], up[:, 1:], self.item_pos[None, :, 0], self.item_pos[None, :, 1])
        return self.pop[None, :] - d / self.decay_km


def recommend_all(scorer: Scorer, seen: sp.csr_matrix, users: np.ndarray | None = None, k: int = 20,
                  batch_size: int = 512, reasons: Sequence[str] | None = None) -> pd.DataFrame:
    """Top-K for every user, in batches, never an item the user already has.

    Args:
        scorer: any scorer; a :class:`ColdStartFallback` also gives the reason of each row.
        seen: user × item matrix of the interactions to exclude (the training interactions).
        users: user indices (all users by default).
        k: list length.
        batch_size: users scored at once.
        reasons: the reason name for a plain scorer (default: its ``name``).

    Returns:
        Frame ``user_idx, rank (1..k), item_idx, score, reason``. Every user gets ``k`` rows
        unless fewer than ``k`` scorable unseen items exist. Ties are broken by item index.
    """
    users = np.arange(scorer.n_users) if users is None else np.asarray(users, dtype=np.int64)
    if seen.shape != (scorer.n_users, scorer.n_items):
        raise ValueError(f"seen has shape {seen.shape}, scorer covers {(scorer.n_users, scorer.n_items)}")
    seen = seen.tocsr()
    names = list(scorer.reasons) if isinstance(scorer, ColdStartFallback) else [reasons[0] if reasons else getattr(scorer, "name", "model")]
    out = {c: [] for c in ("user_idx", "rank", "item_idx", "score", "reason")}
    for b0 in range(0, len(users), batch_size):
        ub = users[b0:b0 + batch_size]
        if isinstance(scorer, ColdStartFallback):
            s, r = scorer.score_with_reason(ub)
        else:
            s = scorer.score(ub)
            r = np.where(np.isnan(s), -1, 0).astype(np.int8)
        s = np.asarray(s, dtype=np.float64).copy()
        sub = seen[ub]
        s[csr_cells(sub)] = np.nan
        key = torch.from_numpy(np.where(np.isnan(s), -np.inf, s))
        kk = min(k, s.shape[1])
        order = torch.sort(key, dim=1, descending=True, stable=True).indices[:, :kk].numpy()
        top_s = np.take_along_axis(s, order, 1)
        top_r = np.take_along_axis(r, order, 1)
        valid = ~np.isnan(top_s)
        rr, cc = np.nonzero(valid)
        out["user_idx"].append(ub[rr])
        out["rank"].append(cc + 1)
        out["item_idx"].append(order[rr, cc])
        out["score"].append(top_s[rr, cc])
        out["reason"].append(np.asarray(names, dtype=object)[top_r[rr, cc]])
    cols = {c: (np.concatenate(v) if v else np.empty(0)) for c, v in out.items()}
    frame = pd.DataFrame(cols)
    return frame.astype({"user_idx": "int64", "rank": "int64", "item_idx": "int64", "score": "float64"})


def rerank_by_distance(recs: pd.DataFrame, item_pos: np.ndarray, point: tuple[float, float],
                       max_km: float | None = None, decay_km: float | None = 5.0,
                       k: int | None = None) -> pd.DataFrame:
    """Filter and re-rank recommendations by distance from a point (travel).

    Scores of different users and layers are not on one scale, so the re-rank uses each row's
    original position: ``weight = 1 / log2(rank + 1) · exp(-distance / decay_km)`` (the DCG
    position discount times a distance decay), then sorts by weight. Items beyond ``max_km`` or
    without a position are dropped.

    Args:
        recs: a :func:`recommend_all` frame (ask it for more than ``k`` rows to leave room).
        item_pos: ``[n_items, 2]`` (lat, lon).
        point: (lat, lon) to measure from.
        max_km: drop items farther than this (no limit when None).
        decay_km: distance scale of the re-rank (no re-rank, filter only, when None).
        k: keep at most this many rows per user.

    Returns:
        The frame with ``distance_km`` added and ``rank`` renumbered.
    """
    pos = np.asarray(item_pos, dtype=np.float64)[recs["item_idx"].to_numpy()]
    d = haversine_km(point[0], point[1], pos[:, 0], pos[:, 1])
    out = recs.assign(distance_km=d)
    out = out[np.isfinite(d) & ((d <= max_km) if max_km is not None else True)].copy()
    adj = 1.0 / np.log2(out["rank"].to_numpy() + 1.0)
    if decay_km:
        adj = adj * np.exp(-out["distance_km"].to_numpy() / decay_km)
    out = out.assign(_adj=adj).sort_values(["user_idx", "_adj", "item_idx"], ascending=[True, False, True])
    out["rank"] = out.groupby("user_idx").cumcount() + 1
    if k is not None:
        out = out[out["rank"] <= k]
    return out.drop(columns="_adj").reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# people to follow (social)

def split_links(links: np.ndarray, share: float = 0.2, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """Hold out a share of undirected user–user links: (train_links, test_links), each ``[2, n]``.

    A link present in both directions counts once and is held out in both.
    """
    links = np.asarray(links, dtype=np.int64).reshape(2, -1)
    a, b = np.minimum(links[0], links[1]), np.maximum(links[0], links[1])
    keep = a != b
    pairs = np.unique(np.stack([a[keep], b[keep]], 1), axis=0)
    rng = np.random.default_rng(seed)
    test = rng.random(len(pairs)) < share
    return pairs[~test].T.copy(), pairs[test].T.copy()


def people_scores_from_embeddings(z_user: torch.Tensor) -> IndexScorer:
    """User→user scorer: dot products of user states (for "people to follow")."""

    class _PeopleScorer(IndexScorer):
        name = "gnn"

        def __init__(self) -> None:
            self.z = z_user.detach().float().cpu()
            self.n_users = self.n_items = len(self.z)

        def _score(self, users):
            return (self.z[torch.from_numpy(users)] @ self.z.T).double().numpy()

    return _PeopleScorer()


class CommonFriendsScorer(IndexScorer):
    """User→user baseline: number of common friends plus a small in-degree tie-break (NaN-free)."""

    name = "common_friends"

    def __init__(self, train_links: np.ndarray, n_users: int) -> None:
        train_links = np.asarray(train_links, dtype=np.int64).reshape(2, -1)
        a, b = np.r_[train_links[0], train_links[1]], np.r_[train_links[1], train_links[0]]
        self.adj = sp.csr_matrix((np.ones(len(a), np.float32), (a, b)), shape=(n_users, n_users))
        self.adj.data[:] = 1.0
        deg = np.asarray(self.adj.sum(0)).ravel()
        self.tie = deg / (deg.max() + 1.0) if len(deg) and deg.max() > 0 else np.zeros(n_users)
        self.n_users = self.n_items = n_users

    def common(self, users: np.ndarray) -> np.ndarray:
        """``[len(users), n_users]`` counts of friends shared with every user."""
        return (self.adj[users] @ self.adj).toarray().astype(np.float64)

    def _score(self, users):
        return self.common(users) + self.tie[None, :]


class PeopleScorer(IndexScorer):
    """People to follow: friends of friends, ordered and extended by how alike the GNN finds them.

    ``score = z(common friends) + weight · z(user-state dot product)``, each standardised over
    the user's row. Shared friends are the strongest single signal (the ``common_friends``
    baseline), but most pairs share none or tie; the GNN's states (tastes, tags, the friend
    graph) order those ties and reach people two hops cannot. ``weight`` 0 is the baseline
    itself; it is chosen on held-out links of the validation split (:func:`tune_people_weight`).

    Args:
        links: ``[2, L]`` known user–user links (direction ignored).
        n_users: users in the vocabulary.
        z_user: ``[n_users, d]`` final user states (None: common friends only).
        weight: the states' weight.
    """

    name = "people"

    def __init__(self, links: np.ndarray, n_users: int, z_user=None, weight: float = 1.0) -> None:
        self.friends = CommonFriendsScorer(links, n_users)
        self.z = None if z_user is None else torch.as_tensor(z_user).detach().float().cpu()
        if self.z is not None and len(self.z) != n_users:
            raise ValueError(f"z_user has {len(self.z)} rows, expected n_users={n_users}")
        self.weight = float(weight)
        self.n_users = self.n_items = n_users

    def parts(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Common-friend counts and state dot products (None without states) of ``users``' rows."""
        c = self.friends.common(users)
        g = None if self.z is None else (self.z[torch.from_numpy(users)] @ self.z.T).double().numpy()
        return c, g

    @staticmethod
    def combine(c: np.ndarray, g: np.ndarray | None, weight: float, tie: np.ndarray) -> np.ndarray:
        if g is None or weight == 0:
            return c + tie[None, :]
        return ResidualBlendScorer.standardise(c) + weight * ResidualBlendScorer.standardise(g)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.combine(*self.parts(users), self.weight, self.friends.tie)


PEOPLE_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
"""State-similarity weights :func:`tune_people_weight` tries (0: common friends alone)."""


def tune_people_weight(links: np.ndarray, held_out: np.ndarray, n_users: int, z_user,
                       weights: Sequence[float] = PEOPLE_WEIGHTS, k: int = 20) -> tuple[float, dict]:
    """The :class:`PeopleScorer` weight with the best NDCG@k on ``held_out`` links.

    Args:
        links: the links the model was trained with (known friends: never suggested).
        held_out: ``[2, H]`` links hidden from that model, to be found again.
        z_user: user states of a model trained without ``held_out``.

    Returns:
        ``(weight, {weight: NDCG@k})``; ties go to the smaller weight.
    """
    table = {}
    for w in weights:
        row = evaluate_people(PeopleScorer(links, n_users, z_user, w), links, held_out, n_users, "people", k)
        table[float(w)] = row["ndcg@20"]          # evaluate_people's column name; computed at k
    best = max(table, key=lambda w: (table[w], -w))
    return best, table


def suggest_people(scorer: PeopleScorer, links: np.ndarray, users: np.ndarray | None = None, k: int = 20,
                   batch_size: int = 512) -> pd.DataFrame:
    """Top-k people to follow for each user: never themselves, never someone they already link to.

    Returns:
        Frame ``user_idx, rank (1..k), other_idx, score, reason`` with ``reason`` "friends" where
        the two share a friend, "gnn" where only the model's similarity put them there.
    """
    n = scorer.n_users
    users = np.arange(n) if users is None else np.asarray(users, dtype=np.int64)
    links = np.asarray(links, dtype=np.int64).reshape(2, -1)
    known = sp.csr_matrix((np.ones(2 * links.shape[1], np.float32),
                           (np.r_[links[0], links[1]], np.r_[links[1], links[0]])), shape=(n, n))
    cols = {c: [] for c in ("user_idx", "rank", "other_idx", "score", "reason")}
    kk = min(k, max(n - 1, 0))
    for b0 in range(0, len(users), batch_size):
        ub = users[b0:b0 + batch_size]
        c, g = scorer.parts(ub)
        s = scorer.combine(c, g, scorer.weight, scorer.friends.tie)
        s[np.arange(len(ub)), ub] = -np.inf
        s[csr_cells(known[ub])] = -np.inf
        order = torch.sort(torch.from_numpy(s), dim=1, descending=True, stable=True).indices[:, :kk].numpy()
        top = np.take_along_axis(s, order, 1)
        rr, cc = np.nonzero(np.isfinite(top))
        cols["user_idx"].append(ub[rr])
        cols["rank"].append(cc + 1)
        cols["other_idx"].append(order[rr, cc])
        cols["score"].append(top[rr, cc])
        cols["reason"].append(np.where(np.take_along_axis(c, order, 1)[rr, cc] > 0, "friends", "gnn"))
    frame = pd.DataFrame({c: np.concatenate(v) if v else np.empty(0) for c, v in cols.items()})
    return frame.astype({"user_idx": np.int64, "rank": np.int64, "other_idx": np.int64, "score": np.float64})


def evaluate_people(scorer: Scorer, train_links: np.ndarray, test_links: np.ndarray, n_users: int,
                    model: str, k: int = 20) -> dict:
    """Recall/NDCG@k of held-out friend links; self and known friends are excluded.

    Each held-out undirected link is relevant for both of its users.
    """
    from gnn import metrics as M

    a, b = np.r_[test_links[0], test_links[1]], np.r_[test_links[1], test_links[0]]
    users = np.unique(a)
    known = sp.csr_matrix((np.ones(2 * train_links.shape[1], np.float32),
                           (np.r_[train_links[0], train_links[1]], np.r_[train_links[1], train_links[0]])),
                          shape=(n_users, n_users))
    topk = np.full((len(users), k), -1, np.int64)
    for b0 in range(0, len(users), 512):
        ub = users[b0:b0 + 512]
        s = np.asarray(scorer.score(ub), dtype=np.float64)
        s = np.where(np.isnan(s), -1e300, s)
        s[np.arange(len(ub)), ub] = -np.inf
        sub = known[ub]
        s[csr_cells(sub)] = -np.inf
        topk[b0:b0 + len(ub)] = torch.sort(torch.from_numpy(s), dim=1, descending=True, stable=True).indices[:, :k].numpy()
    row = np.searchsorted(users, a)
    o = np.argsort(row, kind="stable")
    n_rel = np.bincount(row, minlength=len(users))
    indptr = np.r_[0, np.cumsum(n_rel)]
    hits = M.topk_hits(topk, indptr, b[o], n_users)
    return {"model": model, "slice": "people_to_follow", "users": int(len(users)),
            "recall@20": float(M.recall_at_k(hits, n_rel).mean()),
            "ndcg@20": float(M.ndcg_at_k(hits, n_rel).mean()),
            "hit@20": float(M.hit_rate_at_k(hits).mean()), "mrr": math.nan,
            "coverage": M.catalogue_coverage(topk, n_users)}
