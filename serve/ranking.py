"""Request-time ranking: filters, diversity (MMR), new-user scoring and similar items.

Everything here works on one :class:`~serve.publication.LoadedPublication` and returns
:class:`Ranked` rows (item indices, scores, reasons); the app turns them into responses.
Scores of different ranking layers are not on one scale, so re-ranking uses list positions
(as :func:`gnn.scoring.rerank_by_distance` does) and never compares raw scores across reasons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gnn.scoring import NearbyScorer, haversine_km, rerank_by_distance
from serve.errors import InvalidRequestError
from serve.publication import LoadedPublication

#: Candidates considered by filters and MMR beyond the requested ``k``.
POOL = 300
#: Distance scale of the nearby re-rank, in km (as in the published travel lists).
DECAY_KM = 5.0


@dataclass(frozen=True)
class Ranked:
    """Rows of a ranking, best first."""

    items: np.ndarray
    scores: np.ndarray
    reasons: np.ndarray
    distance_km: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.items)

    def take(self, sel: np.ndarray) -> Ranked:
        d = None if self.distance_km is None else self.distance_km[sel]
        return Ranked(self.items[sel], self.scores[sel], self.reasons[sel], d)

    def extend(self, other: Ranked) -> Ranked:
        fresh = ~np.isin(other.items, self.items)
        o = other.take(np.flatnonzero(fresh))
        d = None
        if self.distance_km is not None or o.distance_km is not None:
            d = np.concatenate([self.distance_km if self.distance_km is not None else np.full(len(self), np.nan),
                                o.distance_km if o.distance_km is not None else np.full(len(o), np.nan)])
        return Ranked(np.concatenate([self.items, o.items]), np.concatenate([self.scores, o.scores]),
                      np.concatenate([self.reasons, o.reasons]), d)


def top_of(scores: np.ndarray, exclude: np.ndarray | None, n: int) -> np.ndarray:
    """Indices of the ``n`` best finite scores (ties by index), leaving ``exclude`` out."""
    s = np.where(np.isnan(scores), -np.inf, scores)
    if exclude is not None and len(exclude):
        s = s.copy()
        s[exclude] = -np.inf
    n = min(n, int(np.isfinite(s).sum()))
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    if n < len(s):
        kth = -np.partition(-s, n - 1)[n - 1]
        # every entry reaching the n-th score: argpartition alone keeps an arbitrary few of
        # the ties straddling the cut, and the lowest-indexed ones must win
        part = np.flatnonzero(s >= kth)
    else:
        part = np.arange(len(s))
    return part[np.lexsort((part, -s[part]))][:n]


def standardise(s: np.ndarray) -> np.ndarray:
    """Zero mean, unit spread over the finite entries; NaN stays NaN."""
    s = np.asarray(s, dtype=np.float64)
    f = np.isfinite(s)
    if not f.any():
        return s
    sd = s[f].std()
    return (s - s[f].mean()) / (sd if sd > 1e-12 else 1.0)


def parse_near(near: str | None) -> tuple[float, float] | None:
    """``"lat,lon"`` → a point; :class:`InvalidRequestError` naming ``near`` otherwise."""
    if near is None:
        return None
    parts = near.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        lat, lon = float(parts[0]), float(parts[1])
    except ValueError:
        raise InvalidRequestError(f"near must be 'lat,lon' in degrees, got {near[:60]!r}", "near") from None
    if not (np.isfinite(lat) and np.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise InvalidRequestError(f"near must have -90 <= lat <= 90 and -180 <= lon <= 180, got {near[:60]!r}",
                                  "near")
    return lat, lon


def filter_category(pub: LoadedPublication, r: Ranked, category: str | None) -> Ranked:
    """Keep items in ``category`` (one segment such as ``electronics`` or the full ``a|b``)."""
    if not category:
        return r
    allowed = pub.category_index.get(category.strip().lower())
    if allowed is None:
        return r.take(np.empty(0, dtype=np.int64))
    return r.take(np.flatnonzero(np.isin(r.items, allowed)))


def near_rerank(pub: LoadedPublication, r: Ranked, point: tuple[float, float] | None,
                radius_km: float | None, field: str) -> Ranked:
    """Drop items beyond ``radius_km`` of ``point`` and re-rank the rest by distance and position."""
    if point is None:
        return r
    if pub.item_pos is None:
        raise InvalidRequestError(f"{field}: items of domain {pub.domain!r} have no coordinates", field,
                                  "query" if field == "near" else "body")
    if not len(r):
        return Ranked(r.items, r.scores, r.reasons, np.empty(0))
    frame = pd.DataFrame({"user_idx": 0, "rank": np.arange(1, len(r) + 1), "item_idx": r.items,
                          "row": np.arange(len(r))})
    out = rerank_by_distance(frame, pub.item_pos, point, max_km=radius_km, decay_km=DECAY_KM)
    sel = out["row"].to_numpy()
    t = r.take(sel)
    return Ranked(t.items, t.scores, t.reasons, out["distance_km"].to_numpy())


def mmr(pub: LoadedPublication, r: Ranked, k: int, diversity: float) -> Ranked:
    """Maximal marginal relevance (Carbonell & Goldstein 1998) over item text embeddings.

    Relevance is the DCG discount of each row's position (scores of different layers do not
    compare); similarity is the cosine of the items' text vectors (0 for items without text).
    ``diversity`` 0 keeps the order exactly; 1 picks the best item, then the least similar.
    """
    if diversity <= 0 or len(r) <= 1:
        return r.take(np.arange(min(k, len(r))))
    rel = 1.0 / np.log2(np.arange(len(r)) + 2.0)
    v = pub.x_item[r.items] * pub.has_text_item[r.items, None]
    sim = v @ v.T
    chosen: list[int] = []
    max_sim = np.zeros(len(r))
    free = np.ones(len(r), dtype=bool)
    for _ in range(min(k, len(r))):
        val = np.where(free, (1.0 - diversity) * rel - diversity * max_sim, -np.inf)
        j = int(np.argmax(val))
        chosen.append(j)
        free[j] = False
        max_sim = np.maximum(max_sim, sim[j])
    return r.take(np.asarray(chosen, dtype=np.int64))


def model_candidates(pub: LoadedPublication, u: int, exclude: np.ndarray, n: int) -> Ranked:
    """More items for a known user from the model's states (reason ``gnn``), past their list."""
    if not pub.user_ok[u]:
        return popular(pub, exclude, n)
    s = (pub.z_item @ pub.z_user[u]).astype(np.float64)
    s[~pub.item_ok] = np.nan
    top = top_of(s, exclude, n)
    return Ranked(top, s[top], np.full(len(top), "gnn", dtype=object))


def popular(pub: LoadedPublication, exclude: np.ndarray | None, n: int) -> Ranked:
    """The most interacted-with items (reason ``popular``); score = log1p(count).

    The head of the publication's popularity order (what :func:`top_of` would sort out of
    the scores), skipping ``exclude``.
    """
    order = pub.popular_order
    if exclude is not None and len(exclude):
        head = order[:n + len(exclude)]
        top = head[~np.isin(head, exclude)][:n]
    else:
        top = order[:n]
    return Ranked(top, np.log1p(pub.popularity[top]), np.full(len(top), "popular", dtype=object))


def published(pub: LoadedPublication, user_id: str, k: int, diversity: float, category: str | None,
              point: tuple[float, float] | None, radius_km: float | None) -> Ranked:
    """A known user's published list, filtered, re-ranked and cut to ``k``.

    When filters leave too few items (or diversity needs room), the list continues with the
    model's next best items for that user, never one they already have.
    """
    u = pub.user(user_id)
    lst = pub.lists.get(user_id)
    r = Ranked(lst.items, lst.scores, lst.reasons) if lst is not None else \
        Ranked(np.empty(0, np.int64), np.empty(0), np.empty(0, dtype=object))
    if category or point is not None or diversity > 0 or len(r) < k:
        seen = pub.seen.get(u, np.empty(0, np.int64))
        more = model_candidates(pub, u, np.concatenate([seen, r.items]), POOL)
        r = r.extend(more)
    r = filter_category(pub, r, category)
    r = near_rerank(pub, r, point, radius_km, "near")
    return mmr(pub, r, k, diversity)


def score_new_user(pub: LoadedPublication, x_text: np.ndarray | None, history: np.ndarray,
                   friends: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Scores over the catalogue for someone the model has never seen, with each item's reason.

    Each signal gives standardised scores: the model's placement from text and friends (``gnn``,
    or ``friends`` without text), text similarity to the query (``text``), and for a history
    the similarity of its mean GNN state and mean text vector (``history``). They are averaged
    over the signals that can score an item; the reason is the signal that contributed most.
    Items no signal can score stay NaN (the caller fills them with popular ones).
    """
    total, best, names = _new_user_scores(pub, x_text, history, friends)
    return total, names[best]


def _new_user_scores(pub: LoadedPublication, x_text: np.ndarray | None, history: np.ndarray,
                     friends: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`score_new_user` with the reasons as ``names[best]`` (the caller names only the
    items it keeps, not the whole catalogue)."""
    import torch

    parts: dict[str, np.ndarray] = {}
    if x_text is not None or friends:
        xt = torch.from_numpy(np.array(x_text, dtype=np.float32)) if x_text is not None else None
        s = pub.model.score_new_users(xt, [friends] if friends else None)[0]
        parts["gnn" if x_text is not None else "friends"] = standardise(s)
    if x_text is not None:
        s = (np.asarray(x_text[0], dtype=np.float32) @ pub.x_item_t).astype(np.float64)
        s[~pub.has_text_item] = np.nan
        parts["text"] = standardise(s)
    if len(history):
        zs = pub.z_item[history[pub.item_ok[history]]]
        parts_h = []
        if len(zs):
            zh = pub.z_item @ zs.mean(0)
            zh = zh.astype(np.float64)
            zh[~pub.item_ok] = np.nan
            parts_h.append(standardise(zh))
        xs = pub.x_item[history[pub.has_text_item[history]]]
        if len(xs):
            th = (pub.x_item @ xs.mean(0)).astype(np.float64)
            th[~pub.has_text_item] = np.nan
            parts_h.append(standardise(th))
        if parts_h:
            parts["history"] = np.nanmean(np.stack(parts_h), axis=0) if len(parts_h) > 1 else parts_h[0]
    n = pub.n_items
    if not parts:
        return np.full(n, np.nan), np.zeros(n, dtype=np.intp), np.asarray(["popular"], dtype=object)
    names = list(parts)
    stack = np.stack([parts[p] for p in names])
    finite = np.isfinite(stack)
    count = finite.sum(0)
    total = np.where(count > 0, np.where(finite, stack, 0.0).sum(0) / np.maximum(count, 1), np.nan)
    ranked = np.where(finite, stack, -np.inf)
    # argmax picks the first of equal maxima; for two signals that is "the second only if larger"
    best = (ranked[1] > ranked[0]).astype(np.intp) if len(names) == 2 else np.argmax(ranked, axis=0)
    return total, best, np.asarray(names, dtype=object)


def new_user(pub: LoadedPublication, x_text: np.ndarray | None, history: np.ndarray, friends: list[int],
             point: tuple[float, float] | None, k: int, diversity: float, category: str | None,
             radius_km: float | None) -> Ranked:
    """Top ``k`` for a new user; location alone ranks popular places nearby (``nearby``)."""
    if point is not None and pub.item_pos is None:
        raise InvalidRequestError(f"location: items of domain {pub.domain!r} have no coordinates",
                                  "location", "body")
    total, best, names = _new_user_scores(pub, x_text, history, friends)
    exclude = history
    if np.isfinite(total).any():
        top = top_of(total, exclude, POOL if (category or point is not None or diversity > 0) else max(k, 50))
        r = Ranked(top, total[top], names[best[top]])
    elif point is not None:
        s = NearbyScorer(np.asarray([point]), pub.item_pos, pub.popularity, decay_km=DECAY_KM).score(np.zeros(1, np.int64))[0]
        top = top_of(s, exclude, POOL)
        r = Ranked(top, s[top], np.full(len(top), "nearby", dtype=object))
    else:
        r = Ranked(np.empty(0, np.int64), np.empty(0), np.empty(0, dtype=object))
    # fill with popular items so every request gets k answers when the catalogue has them
    # (a plain request that already has k only keeps its first k: nothing to fill)
    if len(r) < k or category or point is not None or diversity > 0:
        r = r.extend(popular(pub, np.concatenate([exclude, r.items]), POOL))
    r = filter_category(pub, r, category)
    if point is not None:
        if radius_km is not None or r.reasons[:1].tolist() != ["nearby"]:
            r = near_rerank(pub, r, point, radius_km, "location")
        else:
            d = haversine_km(point[0], point[1], pub.item_pos[r.items, 0], pub.item_pos[r.items, 1])
            r = Ranked(r.items, r.scores, r.reasons, d)
    return mmr(pub, r, k, diversity)


def similar_items(pub: LoadedPublication, item_id: str, k: int) -> Ranked:
    """Items related to one item: also-bought complements first, then text and GNN similarity."""
    i = pub.item(item_id)
    parts: dict[str, np.ndarray] = {}
    if pub.has_text_item[i]:
        s = (pub.x_item @ pub.x_item[i]).astype(np.float64)
        s[~pub.has_text_item] = np.nan
        parts["text"] = standardise(s)
    if pub.item_ok[i]:
        z = pub.z_item
        norms = np.linalg.norm(z, axis=1) + 1e-12
        s = (z @ z[i]) / (norms * norms[i])
        s = s.astype(np.float64)
        s[~pub.item_ok] = np.nan
        parts["gnn"] = standardise(s)
    exclude = np.asarray([i], dtype=np.int64)
    if parts:
        names = list(parts)
        stack = np.stack([parts[p] for p in names])
        finite = np.isfinite(stack)
        count = finite.sum(0)
        total = np.where(count > 0, np.where(finite, stack, 0.0).sum(0) / np.maximum(count, 1), np.nan)
        best = np.asarray(names, dtype=object)[np.argmax(np.where(finite, stack, -np.inf), axis=0)]
        top = top_of(total, exclude, k)
        r = Ranked(top, total[top], best[top])
    else:
        r = Ranked(np.empty(0, np.int64), np.empty(0), np.empty(0, dtype=object))
    comp = pub.also_buy.get(i)
    if comp is not None:
        head = float(np.nanmax(r.scores)) + 1.0 if len(r) else 1.0
        c = Ranked(comp, head - np.arange(len(comp)) * 1e-3, np.full(len(comp), "also_buy", dtype=object))
        r = c.extend(r)
    if len(r) < k:
        r = r.extend(popular(pub, np.concatenate([exclude, r.items]), k))
    return r.take(np.arange(min(k, len(r))))
