"""The evaluation protocol as code: seeded cold/temporal split, full-catalogue ranking, slices.

Protocol (DESIGN.md "Evaluation protocol"), applied by :func:`split_interactions`:

1. Interactions are reduced to unique (user, item) pairs first: the pair keeps its *first*
   timestamp (when the user discovered the item) and the sum of its weights. Repeated events
   (listens, re-visits) therefore never put the same item in train and test.
2. ``cold_user_share`` of the users with at least ``cold_user_min_interactions`` pairs become
   **cold users**: every pair of theirs goes to test. Their side information (profile text,
   friend links, location) stays in the graph.
3. ``cold_item_share`` of the items that have at least one pair become **cold items**: every
   pair with them goes to test. Their text and entity/category edges stay.
4. For every other user, the last ``test_share`` of their remaining pairs by time go to test:
   ``ceil(test_share * n)`` pairs when the user has ``n >= 2`` remaining pairs, none when
   ``n == 1``. Equal timestamps are ordered by a seeded random key, so datasets without real
   times still get a reproducible split.

The validation split (:meth:`ProtocolSplit.validation`) applies exactly the same rules to the
train part with ``seed + 1``: models are fitted on its train part, tuned and early-stopped on
its test part, then refitted on the full train part.

Ranking: every item of the catalogue is ranked for every evaluated user (no sampled
negatives); the items the user has in the (fitting) train part are removed from the ranking.
Items a model cannot score (NaN) rank after every scored item, in index order.

Slices: each test pair belongs to exactly one slice, by precedence

* ``cold_user``: the user is a cold user (whatever the item);
* ``cold_item``: otherwise, the item is a cold item;
* ``warm``: otherwise (a warm user's later pair with a warm item).

For a slice, a user's relevant set is their test pairs in that slice and the user is evaluated
in the slice when that set is non-empty. Lists are still ranked over the whole catalogue, so
e.g. the ``cold_item`` slice asks: among the 20 items recommended to a warm user from the full
catalogue, how many are the cold items they went on to interact with. The ``all`` slice uses
every test pair of the user. Metrics are averaged over the users of each slice
(see :mod:`gnn.metrics` for the definitions).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from pydantic import BaseModel, ConfigDict, Field

from gnn import metrics as M
from gnn.scoring import csr_cells

log = logging.getLogger(__name__)

INTERACTED = ("user", "interacted", "item")
SLICES = ("all", "warm", "cold_user", "cold_item")
METRIC_COLUMNS = ("recall@20", "ndcg@20", "hit@20", "mrr", "coverage")

# slice codes of single test pairs
WARM, COLD_USER, COLD_ITEM = 0, 1, 2


@dataclass(frozen=True, eq=False)
class Interactions:
    """(user, item) interaction pairs as aligned index arrays.

    Attributes:
        user: ``int64`` user indices (from the user Vocabulary).
        item: ``int64`` item indices.
        ts: ``int64`` unix seconds.
        weight: ``float32`` interaction strength (1.0 when the data has none).
    """

    user: np.ndarray
    item: np.ndarray
    ts: np.ndarray
    weight: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.user)
        for name in ("item", "ts", "weight"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Interactions.{name} has {len(getattr(self, name))} entries, user has {n}")

    def __len__(self) -> int:
        return len(self.user)

    @classmethod
    def from_arrays(cls, user, item, ts=None, weight=None) -> Interactions:
        user = np.asarray(user, dtype=np.int64)
        n = len(user)
        ts = np.zeros(n, np.int64) if ts is None else np.asarray(ts, dtype=np.int64)
        weight = np.ones(n, np.float32) if weight is None else np.asarray(weight, dtype=np.float32)
        return cls(user, np.asarray(item, dtype=np.int64), ts, weight)

    @classmethod
    def from_hetero(cls, data) -> Interactions:
        """Read the ``('user', 'interacted', 'item')`` edges of a HeteroData."""
        store = data[INTERACTED]
        ei = store.edge_index.cpu().numpy()
        n = ei.shape[1]
        ts = store.ts.cpu().numpy() if "ts" in store else None
        w = store.edge_weight.cpu().numpy() if "edge_weight" in store else None
        return cls.from_arrays(ei[0], ei[1], ts if ts is not None and len(ts) == n else None,
                               w if w is not None and len(w) == n else None)

    def select(self, mask: np.ndarray) -> Interactions:
        return Interactions(self.user[mask], self.item[mask], self.ts[mask], self.weight[mask])

    def dedupe(self) -> Interactions:
        """One row per (user, item): first timestamp, summed weight, sorted by (user, item)."""
        if len(self) == 0:
            return self
        key = self.user * (int(self.item.max()) + 1) + self.item
        order = np.lexsort((self.ts, key))
        key_s = key[order]
        first = np.r_[True, key_s[1:] != key_s[:-1]]
        starts = np.flatnonzero(first)
        weight = np.add.reduceat(self.weight[order].astype(np.float64), starts).astype(np.float32)
        o = order[starts]
        return Interactions(self.user[o], self.item[o], self.ts[o], weight)

    def csr(self, n_users: int, n_items: int, weighted: bool = False) -> sp.csr_matrix:
        """User × item matrix (binary unless ``weighted``; duplicates are summed)."""
        vals = self.weight.astype(np.float32) if weighted else np.ones(len(self), np.float32)
        m = sp.csr_matrix((vals, (self.user, self.item)), shape=(n_users, n_items), dtype=np.float32)
        m.sum_duplicates()
        if not weighted:
            m.data[:] = 1.0
        return m

    def concat(self, other: Interactions) -> Interactions:
        return Interactions(*(np.concatenate([getattr(self, f), getattr(other, f)])
                              for f in ("user", "item", "ts", "weight")))


class SplitConfig(BaseModel):
    """Parameters of the evaluation protocol (defaults are the protocol of DESIGN.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cold_user_share: float = Field(0.1, ge=0.0, lt=1.0)
    """Share of the eligible users whose whole history goes to test."""
    cold_user_min_interactions: int = Field(5, ge=1)
    """A user is eligible to become cold only with at least this many distinct items."""
    cold_item_share: float = Field(0.1, ge=0.0, lt=1.0)
    """Share of the interacted items whose every interaction goes to test."""
    test_share: float = Field(0.2, gt=0.0, lt=1.0)
    """Share of each remaining user's latest interactions that goes to test."""
    seed: int = 42
    """Seed for the choice of cold users, cold items and for breaking timestamp ties."""
    k: int = Field(20, ge=1)
    """List length of the @k metrics."""


@dataclass(frozen=True, eq=False)
class ProtocolSplit:
    """A train/test split of one domain's interactions under the protocol.

    Attributes:
        n_users: size of the user vocabulary (every user, interacting or not).
        n_items: size of the item vocabulary (the catalogue that is ranked).
        train: deduplicated train pairs.
        test: deduplicated test pairs (never a pair that is in train).
        cold_users: sorted indices of the cold users.
        cold_items: sorted indices of the cold items.
        config: the configuration that produced the split.
    """

    n_users: int
    n_items: int
    train: Interactions
    test: Interactions
    cold_users: np.ndarray
    cold_items: np.ndarray
    config: SplitConfig

    def test_slices(self) -> np.ndarray:
        """Slice code (``WARM``, ``COLD_USER``, ``COLD_ITEM``) of each test pair."""
        code = np.full(len(self.test), WARM, dtype=np.int8)
        code[np.isin(self.test.item, self.cold_items)] = COLD_ITEM
        code[np.isin(self.test.user, self.cold_users)] = COLD_USER
        return code

    def validation(self, fold: int = 0) -> ProtocolSplit:
        """The same protocol applied to the train part (seed + 1): fit / validation pairs.

        ``fold`` > 0 draws another validation split of the same train part (seed
        ``seed + 1 + 1000 * fold``), for tuning on the mean of several.
        """
        cfg = self.config.model_copy(update={"seed": self.config.seed + 1 + 1000 * fold})
        return split_interactions(self.train, self.n_users, self.n_items, cfg)

    def train_matrix(self) -> sp.csr_matrix:
        return self.train.csr(self.n_users, self.n_items)

    def sample_test_users(self, max_users: int | None, seed: int) -> ProtocolSplit:
        """The same split with the test pairs of at most ``max_users`` test users, drawn
        uniformly with ``seed`` (all of them when there are fewer, or ``max_users`` is None).

        Metrics are means over users, so a uniform sample of users estimates them without
        bias; each sampled user is still ranked against the whole catalogue, and training
        keeps every train pair. This is what makes evaluation affordable on large datasets.
        """
        users = np.unique(self.test.user)
        if max_users is None or len(users) <= max_users:
            return self
        keep = np.random.default_rng(seed).choice(users, max_users, replace=False)
        return replace(self, test=self.test.select(np.isin(self.test.user, keep)))

    def summary(self) -> dict[str, float]:
        codes = self.test_slices()
        n = len(self.train) + len(self.test)
        return {
            "pairs": n,
            "train": len(self.train),
            "test": len(self.test),
            "test_share": len(self.test) / max(n, 1),
            "cold_users": len(self.cold_users),
            "cold_items": len(self.cold_items),
            "test_warm": int((codes == WARM).sum()),
            "test_cold_user": int((codes == COLD_USER).sum()),
            "test_cold_item": int((codes == COLD_ITEM).sum()),
        }


def split_interactions(inter: Interactions, n_users: int, n_items: int,
                       config: SplitConfig | None = None) -> ProtocolSplit:
    """Split interactions into train and test under the protocol (see the module docstring).

    Args:
        inter: the interactions (any order; duplicates are merged first).
        n_users: user vocabulary size.
        n_items: item vocabulary size.
        config: protocol parameters.

    Returns:
        The split; the same inputs and seed always give the same split.
    """
    cfg = config or SplitConfig()
    if len(inter) and (inter.user.max() >= n_users or inter.item.max() >= n_items or
                       inter.user.min() < 0 or inter.item.min() < 0):
        raise ValueError(
            f"interaction indices out of range: users in [{inter.user.min()}, {inter.user.max()}] "
            f"for n_users={n_users}, items in [{inter.item.min()}, {inter.item.max()}] for n_items={n_items}")
    pairs = inter.dedupe()
    rng = np.random.default_rng(cfg.seed)

    counts = np.bincount(pairs.user, minlength=n_users)
    eligible = np.flatnonzero(counts >= cfg.cold_user_min_interactions)
    n_cold_u = int(round(cfg.cold_user_share * len(eligible)))
    cold_users = np.sort(rng.choice(eligible, size=n_cold_u, replace=False)) if n_cold_u else np.empty(0, np.int64)

    interacted = np.unique(pairs.item)
    n_cold_i = int(round(cfg.cold_item_share * len(interacted)))
    cold_items = np.sort(rng.choice(interacted, size=n_cold_i, replace=False)) if n_cold_i else np.empty(0, np.int64)

    is_test = np.isin(pairs.user, cold_users) | np.isin(pairs.item, cold_items)

    # temporal hold-out of the remaining pairs, per user
    rest = np.flatnonzero(~is_test)
    tie = rng.random(len(rest))
    order = rest[np.lexsort((tie, pairs.ts[rest], pairs.user[rest]))]
    u_sorted = pairs.user[order]
    n_rest = np.bincount(u_sorted, minlength=n_users)
    starts = np.r_[0, np.cumsum(n_rest)[:-1]]
    pos = np.arange(len(order)) - starts[u_sorted]
    n_u = n_rest[u_sorted]
    n_test_u = np.where(n_u >= 2, np.ceil(cfg.test_share * n_u - 1e-9).astype(np.int64), 0)
    is_test[order[pos >= n_u - n_test_u]] = True

    return ProtocolSplit(n_users, n_items, pairs.select(~is_test), pairs.select(is_test),
                         cold_users.astype(np.int64), cold_items.astype(np.int64), cfg)


# ----------------------------------------------------------------------------------------------
# ranking and metrics

ScoreFn = Callable[[np.ndarray], np.ndarray]
"""Maps user indices ``[B]`` to ranking scores ``[B, n_items]`` (higher is better; NaN = unscored)."""


@dataclass(frozen=True)
class RankedLists:
    """Top-k lists and the full-ranking rank of every test pair of the evaluated users."""

    users: np.ndarray          # [n] evaluated users
    topk: np.ndarray           # [n, k] item indices
    pair_row: np.ndarray       # [P] row in `users` of each test pair
    pair_item: np.ndarray      # [P]
    pair_rank: np.ndarray      # [P] 1-based rank in the full ranking (0: item excluded as seen)
    pair_slice: np.ndarray     # [P] slice code


def rank_test_pairs(score_fn: ScoreFn, split: ProtocolSplit, k: int | None = None,
                    batch_size: int = 256) -> RankedLists:
    """Rank the whole catalogue for every user with a test pair, excluding their train items.

    Args:
        score_fn: ranking scores for a batch of users (NaN where the model cannot score).
        split: the split whose train part is excluded and whose test part is ranked.
        k: list length (the split's ``k`` by default).
        batch_size: users scored at once (memory is ``batch_size × n_items`` float64).

    Returns:
        The lists and ranks; ties are broken by item index, unscored items rank last.
    """
    k = k or split.config.k
    test = split.test
    users = np.unique(test.user)
    seen = split.train_matrix()
    codes = split.test_slices()
    row_of = np.full(split.n_users, -1, np.int64)
    row_of[users] = np.arange(len(users))
    pair_row = row_of[test.user]
    pair_rank = np.zeros(len(test), np.int64)
    topk = np.full((len(users), k), -1, np.int64)
    by_row = np.argsort(pair_row, kind="stable")
    row_starts = np.searchsorted(pair_row[by_row], np.arange(len(users) + 1))
    kk = min(k, split.n_items)
    for b0 in range(0, len(users), batch_size):
        ub = users[b0:b0 + batch_size]
        s = np.asarray(score_fn(ub), dtype=np.float64)
        if s.shape != (len(ub), split.n_items):
            raise ValueError(f"score_fn returned shape {s.shape}, expected {(len(ub), split.n_items)}")
        s = np.where(np.isnan(s), -1e300, s)
        sub = seen[ub]
        s[csr_cells(sub)] = -np.inf
        st = torch.from_numpy(s)
        n_valid = torch.isfinite(st).sum(1).numpy()
        top = _stable_topk(st, kk).numpy()
        top[np.arange(kk)[None, :] >= n_valid[:, None]] = -1
        topk[b0:b0 + len(ub), :kk] = top
        p = by_row[row_starts[b0]:row_starts[min(b0 + len(ub), len(users))]]
        pair_rank[p] = _ranks_of(s, pair_row[p] - b0, test.item[p])
    return RankedLists(users, topk, pair_row, test.item.copy(), pair_rank, codes)


def _stable_topk(s: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of each row's ``k`` highest scores, best first, ties by lower index first: the
    first ``k`` of a stable descending sort, without sorting the whole row."""
    if k == 0:
        return torch.empty((s.shape[0], 0), dtype=torch.int64)
    values, idx = torch.topk(s, k, dim=1)
    kth = values[:, k - 1:k]
    # Rows where more than k entries reach the k-th value have a tie straddling the cut, and
    # topk may have kept any of the tied entries: keep the lowest-indexed ones instead.
    for r in torch.nonzero((s >= kth).sum(1) > k).flatten().tolist():
        row, v = s[r], kth[r, 0]
        above = torch.nonzero(row > v).flatten()
        tied = torch.nonzero(row == v).flatten()[:k - len(above)]
        idx[r] = torch.cat([above, tied])
    # order each list by score, ties by index (sort the indices first, then stably by score)
    idx = torch.sort(idx, dim=1).values
    order = torch.sort(s.gather(1, idx), dim=1, descending=True, stable=True).indices
    return idx.gather(1, order)


def _ranks_of(s: np.ndarray, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
    """1-based position of ``items[i]`` in the stable descending order of row ``rows[i]`` of
    ``s``: one plus the entries scored higher, plus the lower-indexed entries scored the same.

    Sorting the values alone (no indices) is several times cheaper than comparing every row
    with each of its pairs; ties, which need the indices, are counted directly.
    """
    out = np.empty(len(rows), np.int64)
    if not len(rows):
        return out
    n = s.shape[1]
    v = s[rows, items]
    distinct, row_at = np.unique(rows, return_inverse=True)
    ordered = np.sort(s[distinct], axis=1)
    for j, r in enumerate(distinct):
        m = np.flatnonzero(row_at == j)
        lo = np.searchsorted(ordered[j], v[m], side="left")
        hi = np.searchsorted(ordered[j], v[m], side="right")
        out[m] = n - hi + 1
        for t in m[hi - lo > 1]:
            out[t] += int(np.count_nonzero(s[r, :items[t]] == v[t]))
    return out


def slice_metrics(ranked: RankedLists, n_items: int) -> list[dict]:
    """Metric rows (one per slice) from ranked lists; see the module docstring for slices."""
    rows = []
    n = len(ranked.users)
    for name in SLICES:
        if name == "all":
            sel = np.ones(len(ranked.pair_row), bool)
        else:
            sel = ranked.pair_slice == {"warm": WARM, "cold_user": COLD_USER, "cold_item": COLD_ITEM}[name]
        r, it, rk = ranked.pair_row[sel], ranked.pair_item[sel], ranked.pair_rank[sel]
        n_rel_all = np.bincount(r, minlength=n)
        rows_in = np.flatnonzero(n_rel_all > 0)
        row = {"slice": name, "users": int(len(rows_in))}
        if len(rows_in) == 0:
            rows.append(row | {m: np.nan for m in METRIC_COLUMNS})
            continue
        o = np.argsort(r, kind="stable")
        indptr = np.r_[0, np.cumsum(n_rel_all)]
        hits = M.topk_hits(ranked.topk, indptr, it[o], n_items)[rows_in]
        n_rel = n_rel_all[rows_in]
        first = np.full(n, np.iinfo(np.int64).max)
        np.minimum.at(first, r, np.where(rk > 0, rk, np.iinfo(np.int64).max))
        first = np.where(first == np.iinfo(np.int64).max, 0, first)[rows_in]
        row.update({
            "recall@20": float(M.recall_at_k(hits, n_rel).mean()),
            "ndcg@20": float(M.ndcg_at_k(hits, n_rel).mean()),
            "hit@20": float(M.hit_rate_at_k(hits).mean()),
            "mrr": float(M.reciprocal_rank(first).mean()),
            "coverage": M.catalogue_coverage(ranked.topk[rows_in], n_items),
        })
        rows.append(row)
    return rows


def evaluate_scores(score_fn: ScoreFn, split: ProtocolSplit, model: str,
                    batch_size: int = 256) -> pd.DataFrame:
    """Rank, then compute every metric for every slice.

    Returns:
        A tidy frame with columns ``model, slice, users`` and :data:`METRIC_COLUMNS`. The
        metric names say ``@20`` for the protocol's default ``k``; another ``k`` keeps the names.
    """
    return metrics_frame(rank_test_pairs(score_fn, split, batch_size=batch_size), split, model)


def metrics_frame(ranked: RankedLists, split: ProtocolSplit, model: str) -> pd.DataFrame:
    """:func:`evaluate_scores`' frame from lists already ranked."""
    rows = slice_metrics(ranked, split.n_items)
    return pd.DataFrame([{"model": model} | r for r in rows],
                        columns=["model", "slice", "users", *METRIC_COLUMNS])


def new_item_view(score_fn: ScoreFn, split: ProtocolSplit, new_items: np.ndarray,
                  batch_size: int = 256, ranked: RankedLists | None = None) -> dict[str, float]:
    """Where a model's cold-item numbers come from: how much of its lists it gives to new items,
    and how well it orders the new items among themselves.

    Args:
        score_fn: the model, as :func:`evaluate_scores` takes it.
        split: the evaluation split.
        new_items: bool ``[n_items]``: items without pairs in ``split.train`` (cold items among them).
        ranked: ``score_fn``'s lists on ``split`` when already ranked (saves one ranking).

    Returns:
        ``new_item_share``: the share of the places in the evaluated users' top-k lists that hold
        a new item; ``cold_item_recall_among_new`` / ``cold_item_ndcg_among_new``: the
        ``cold_item`` slice's Recall@k and NDCG@k when only the new items are ranked (every other
        item unscored), which isolates the ordering from the share.
    """
    new_items = np.asarray(new_items, bool)
    ranked = ranked if ranked is not None else rank_test_pairs(score_fn, split, batch_size=batch_size)
    valid = ranked.topk >= 0
    on_new = new_items[np.where(valid, ranked.topk, 0)] & valid
    share = float(on_new.sum() / max(int(valid.sum()), 1))

    def only_new(users):
        s = np.array(score_fn(users), dtype=np.float64)
        s[:, ~new_items] = np.nan
        return s

    rows = {r["slice"]: r for r in slice_metrics(rank_test_pairs(only_new, split, batch_size=batch_size), split.n_items)}
    ci = rows["cold_item"]
    return {"new_item_share": share, "cold_item_recall_among_new": float(ci["recall@20"]),
            "cold_item_ndcg_among_new": float(ci["ndcg@20"])}


def validation_ndcg(score_fn: ScoreFn, split: ProtocolSplit, slice_name: str = "all",
                    batch_size: int = 512) -> float:
    """NDCG@k of one slice: the single number used for tuning and early stopping.

    Computes only the top-k lists (``torch.topk``), not the full ranking that MRR needs, so a
    tuning grid costs a fraction of a full evaluation. Same tie rule as :func:`rank_test_pairs`
    except that ties exactly at the k-th place may be broken differently.
    """
    return validation_ndcgs(score_fn, split, (slice_name,), batch_size)[slice_name]


def validation_ndcgs(score_fn: ScoreFn, split: ProtocolSplit, slices: tuple[str, ...] = ("all",),
                     batch_size: int = 512) -> dict[str, float]:
    """NDCG@k of several slices from one pass of top-k lists (see :func:`validation_ndcg`)."""
    per_user = validation_user_ndcgs(score_fn, split, slices, batch_size)
    return {name: float(v.mean()) if len(v) else 0.0 for name, v in per_user.items()}


def validation_user_ndcgs(score_fn: ScoreFn, split: ProtocolSplit, slices: tuple[str, ...] = ("all",),
                          batch_size: int = 512) -> dict[str, np.ndarray]:
    """Per-user NDCG@k of several slices: for each slice, one value per user with a test pair in
    it, in increasing user id (so two models' arrays on the same split pair up user by user)."""
    k = split.config.k
    codes = split.test_slices()
    rel, users = {}, set()
    for name in slices:
        keep = np.ones(len(codes), bool) if name == "all" else \
            codes == {"warm": WARM, "cold_user": COLD_USER, "cold_item": COLD_ITEM}[name]
        t = split.test.select(keep)
        rel[name] = t.csr(split.n_users, split.n_items)
        users.update(np.unique(t.user).tolist())
    users = np.array(sorted(users), dtype=np.int64)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in slices}
    if len(users) == 0:
        return {name: np.zeros(0) for name in slices}
    seen = split.train_matrix()
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.r_[0.0, np.cumsum(disc)]
    for b0 in range(0, len(users), batch_size):
        ub = users[b0:b0 + batch_size]
        s = np.asarray(score_fn(ub), dtype=np.float64)
        s = np.where(np.isnan(s), -1e300, s)
        sub = seen[ub]
        s[csr_cells(sub)] = -np.inf
        top = torch.topk(torch.from_numpy(s), min(k, split.n_items), dim=1).indices.numpy()
        for name in slices:
            r = rel[name][ub]
            n_rel = np.diff(r.indptr)
            ok = n_rel > 0
            if not ok.any():
                continue
            hits = M.topk_hits(top, r.indptr, r.indices, split.n_items)
            dcg = (hits * disc[:hits.shape[1]]).sum(1)
            parts[name].append(dcg[ok] / ideal[np.minimum(n_rel[ok], k)])
    return {name: np.concatenate(v) if v else np.zeros(0) for name, v in parts.items()}


def with_train_edges(data, train: Interactions):
    """A copy of ``data`` whose interaction edges are exactly the ``train`` pairs.

    Every other edge type (mentions, categories, follows) and every node are kept: the side
    information of cold users and cold items stays visible, their interactions do not.
    """
    out = data.clone()
    store = out[INTERACTED]
    store.edge_index = torch.from_numpy(np.stack([train.user, train.item])).long()
    store.edge_weight = torch.from_numpy(train.weight.astype(np.float32))
    store.ts = torch.from_numpy(train.ts.astype(np.int64))
    for et in list(out.edge_types):
        if et[0] == "item" and et[2] == "user":     # a reverse copy would leak test edges
            del out[et]
    return out
