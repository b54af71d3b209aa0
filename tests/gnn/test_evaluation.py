"""The evaluation protocol: proportions, no leakage, slices, determinism, exact metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gnn.evaluation import (COLD_ITEM, COLD_USER, WARM, Interactions, SplitConfig, evaluate_scores,
                            split_interactions, with_train_edges)


@pytest.fixture(scope="module")
def random_log() -> tuple[Interactions, int, int]:
    rng = np.random.default_rng(3)
    n_users, n_items = 300, 120
    n_per = rng.integers(1, 30, n_users)
    users = np.repeat(np.arange(n_users), n_per)
    items = rng.integers(0, n_items, len(users))
    ts = rng.integers(0, 10_000, len(users))
    return Interactions.from_arrays(users, items, ts), n_users, n_items


def test_pairs_are_deduplicated_keeping_first_time_and_summed_weight():
    log = Interactions.from_arrays([0, 0, 0, 1], [5, 5, 6, 5], ts=[30, 10, 20, 5], weight=[1, 2, 4, 8])
    d = log.dedupe()
    assert list(zip(d.user, d.item, d.ts, d.weight)) == [(0, 5, 10, 3.0), (0, 6, 20, 4.0), (1, 5, 5, 8.0)]


def test_split_proportions(random_log):
    log, n_users, n_items = random_log
    cfg = SplitConfig()
    split = split_interactions(log, n_users, n_items, cfg)
    pairs = log.dedupe()
    counts = np.bincount(pairs.user, minlength=n_users)
    eligible = (counts >= cfg.cold_user_min_interactions).sum()
    assert len(split.cold_users) == round(0.1 * eligible)
    assert (counts[split.cold_users] >= 5).all()
    assert len(split.cold_items) == round(0.1 * len(np.unique(pairs.item)))
    assert len(split.train) + len(split.test) == len(pairs)
    # warm users with n >= 2 remaining pairs hold out exactly ceil(0.2 n) of them
    codes = split.test_slices()
    warm_test = split.test.select(codes == WARM)
    for u in np.setdiff1d(np.unique(pairs.user), split.cold_users)[:50]:
        n_rest = (split.train.user == u).sum() + (warm_test.user == u).sum()
        expected = math.ceil(0.2 * n_rest - 1e-9) if n_rest >= 2 else 0
        assert (warm_test.user == u).sum() == expected


def test_no_leakage(random_log):
    log, n_users, n_items = random_log
    split = split_interactions(log, n_users, n_items)
    assert not np.isin(split.train.user, split.cold_users).any()    # cold users: no train edge
    assert not np.isin(split.train.item, split.cold_items).any()    # cold items: no train edge
    train_keys = set(zip(split.train.user.tolist(), split.train.item.tolist()))
    assert not any(k in train_keys for k in zip(split.test.user.tolist(), split.test.item.tolist()))
    # temporal: a warm user's test pairs are never older than their train pairs
    codes = split.test_slices()
    for u in np.unique(split.test.user[codes == WARM])[:50]:
        assert split.test.ts[(split.test.user == u) & (codes == WARM)].min() >= split.train.ts[split.train.user == u].max()


def test_slices_follow_the_documented_precedence(random_log):
    log, n_users, n_items = random_log
    split = split_interactions(log, n_users, n_items)
    codes = split.test_slices()
    cu = np.isin(split.test.user, split.cold_users)
    ci = np.isin(split.test.item, split.cold_items)
    assert (codes[cu] == COLD_USER).all()
    assert (codes[~cu & ci] == COLD_ITEM).all()
    assert (codes[~cu & ~ci] == WARM).all()


def test_same_seed_same_split_and_validation_is_carved_from_train(random_log):
    log, n_users, n_items = random_log
    a, b = split_interactions(log, n_users, n_items), split_interactions(log, n_users, n_items)
    assert np.array_equal(a.cold_users, b.cold_users) and np.array_equal(a.test.item, b.test.item)
    c = split_interactions(log, n_users, n_items, SplitConfig(seed=7))
    assert not np.array_equal(a.cold_items, c.cold_items)
    val = a.validation()
    assert len(val.train) + len(val.test) == len(a.train)
    assert not np.isin(val.train.item, val.cold_items).any()


def test_validation_folds_are_other_draws_from_the_same_train_part(random_log):
    log, n_users, n_items = random_log
    a = split_interactions(log, n_users, n_items)
    first, again, other = a.validation(), a.validation(0), a.validation(1)
    assert np.array_equal(first.cold_items, again.cold_items) and np.array_equal(first.test.item, again.test.item)
    assert not np.array_equal(first.cold_items, other.cold_items)
    assert other.config.seed == a.config.seed + 1001
    for v in (first, other):
        assert len(v.train) + len(v.test) == len(a.train)
        both = np.r_[v.train.user * n_items + v.train.item, v.test.user * n_items + v.test.item]
        assert np.array_equal(np.sort(both), np.sort(a.train.user * n_items + a.train.item))


def test_new_item_view_separates_the_list_share_from_the_order_among_new_items():
    from gnn.evaluation import ProtocolSplit, new_item_view

    # items 0-3 have train pairs; 4-7 are new, 6 and 7 are cold items that users 0 and 1 took
    train_u, train_i = [0, 0, 1, 1, 2, 2, 3, 3], [0, 1, 1, 2, 2, 3, 3, 0]
    log = Interactions.from_arrays(train_u + [0, 1, 2, 3, 3], train_i + [6, 7, 6, 7, 6],
                                   ts=[0] * 8 + [1] * 5)
    split = ProtocolSplit(4, 8, log.select(log.ts == 0), log.select(log.ts == 1), np.empty(0, np.int64),
                          np.array([6, 7]), SplitConfig(k=2))
    new = ~np.isin(np.arange(8), split.train.item)
    assert new.tolist() == [False] * 4 + [True] * 4

    def warm_first(users):   # every warm item above every new item; among new: 7, 6, 5, 4
        return np.tile(np.array([9.0, 8.0, 7.0, 6.0, 1.0, 2.0, 3.0, 4.0]), (len(users), 1))

    view = new_item_view(warm_first, split, new)
    # lists of 2 from the unseen items: each user has 2 unseen warm items, so no new item is shown
    assert view["new_item_share"] == 0.0
    # among new items only, the top 2 are 7 and 6: every cold pair is found
    assert view["cold_item_recall_among_new"] == pytest.approx(1.0)
    row = evaluate_scores(warm_first, split, "m").set_index("slice").loc["cold_item"]
    assert row["recall@20"] == 0.0


def test_oracle_scores_are_perfect_and_metrics_exact():
    # user 0: one test item (3); user 1: two test items (0, 4); 6 items, train items excluded
    split = split_interactions(Interactions.from_arrays([0, 0, 1, 1, 1], [1, 3, 2, 0, 4], ts=[0, 1, 0, 1, 2]),
                               2, 6, SplitConfig(cold_user_share=0, cold_item_share=0, test_share=0.5, k=2))
    assert sorted(zip(split.test.user.tolist(), split.test.item.tolist())) == [(0, 3), (1, 0), (1, 4)]
    relevant = {(0, 3), (1, 0), (1, 4)}

    def oracle(users):
        return np.array([[1.0 if (u, i) in relevant else 0.0 for i in range(6)] for u in users])

    row = evaluate_scores(oracle, split, "oracle").set_index("slice").loc["all"]
    assert row["ndcg@20"] == pytest.approx(1.0) and row["recall@20"] == pytest.approx(1.0)
    assert row["mrr"] == pytest.approx(1.0) and row["users"] == 2

    def backwards(users):   # ranks items by index descending: 5 (unseen for both), then 4, 3, ...
        return np.tile(np.arange(6, dtype=float), (len(users), 1))

    row = evaluate_scores(backwards, split, "backwards").set_index("slice").loc["all"]
    # user 0 (train item 1): ranking 5,4,3 -> item 3 at rank 3 -> outside k=2; MRR 1/3
    # user 1 (train item 2): ranking 5,4,3,1,0 -> item 4 at rank 2 (hit), first relevant rank 2
    ndcg_u1 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert row["recall@20"] == pytest.approx((0 + 0.5) / 2)
    assert row["ndcg@20"] == pytest.approx((0 + ndcg_u1) / 2)
    assert row["mrr"] == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert row["coverage"] == pytest.approx(2 / 6)     # both lists are [5, 4]


def test_with_train_edges_keeps_side_information():
    from contracts import make_scorer_toy

    toy = make_scorer_toy()
    fewer = toy.train.select(toy.train.user != 0)
    g = with_train_edges(toy.data, fewer)
    assert not (g["user", "interacted", "item"].edge_index[0] == 0).any()
    assert g["item", "mentions", "entity"].edge_index.shape == toy.data["item", "mentions", "entity"].edge_index.shape
    assert g["user", "follows", "user"].edge_index.shape[1] == 1


def test_fast_validation_ndcg_matches_the_full_evaluation(random_log):
    from gnn.evaluation import validation_ndcg

    log, n_users, n_items = random_log
    split = split_interactions(log, n_users, n_items)
    rng = np.random.default_rng(0)
    table = rng.random((n_users, n_items))      # continuous scores: no ties at the cut

    def fn(users):
        return table[users]

    full = evaluate_scores(fn, split, "random").set_index("slice")
    for name in ("all", "warm", "cold_item"):
        assert validation_ndcg(fn, split, name) == pytest.approx(full.loc[name, "ndcg@20"], rel=1e-9)


def test_per_user_validation_ndcg_pairs_users_across_models(random_log):
    from gnn.evaluation import WARM, validation_user_ndcgs

    log, n_users, n_items = random_log
    split = split_interactions(log, n_users, n_items)
    rng = np.random.default_rng(1)
    a, b = rng.random((n_users, n_items)), rng.random((n_users, n_items))
    got_a = validation_user_ndcgs(lambda u: a[u], split, ("all", "warm"))
    got_b = validation_user_ndcgs(lambda u: b[u], split, ("warm",))
    warm_users = np.unique(split.test.user[split.test_slices() == WARM])
    assert len(got_a["warm"]) == len(got_b["warm"]) == len(warm_users)     # one value per warm user, both models
    assert len(got_a["all"]) == len(np.unique(split.test.user))
    assert ((got_a["warm"] >= 0) & (got_a["warm"] <= 1)).all()
    full = evaluate_scores(lambda u: a[u], split, "random").set_index("slice")
    assert got_a["warm"].mean() == pytest.approx(full.loc["warm", "ndcg@20"], rel=1e-9)
    # users in id order: a model that puts one user's test items first moves only that user's value
    u = warm_users[len(warm_users) // 2]
    c = a.copy()
    c[u, split.test.item[(split.test.user == u) & (split.test_slices() == WARM)]] = 10.0
    got_c = validation_user_ndcgs(lambda us: c[us], split, ("warm",))["warm"]
    i = int(np.searchsorted(warm_users, u))
    assert got_c[i] == pytest.approx(1.0) and np.delete(got_c, i) == pytest.approx(np.delete(got_a["warm"], i))


def _ranked_by_full_sort(fn, split, k=20):
    """The reference: a stable descending sort of every whole row (what the protocol means)."""
    test = split.test
    users = np.unique(test.user)
    seen = split.train_matrix()
    s = np.where(np.isnan(fn(users)), -1e300, fn(users)).astype(np.float64)
    for r, u in enumerate(users):
        s[r, seen[u].indices] = -np.inf
    order = np.argsort(-s, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(1, split.n_items + 1)[None, :].repeat(len(users), 0), axis=1)
    n_valid = np.isfinite(s).sum(1)
    top = order[:, :k].copy()
    top[np.arange(k)[None, :] >= n_valid[:, None]] = -1
    rows = np.searchsorted(users, test.user)
    return top, rank[rows, test.item]


@pytest.mark.parametrize("batch_size", [7, 256])
def test_ranking_matches_a_full_stable_sort_with_ties_gaps_and_seen_items(random_log, batch_size):
    from gnn.evaluation import rank_test_pairs

    log, n_users, n_items = random_log
    split = split_interactions(log, n_users, n_items)
    rng = np.random.default_rng(5)
    # few distinct values (many ties, also at the k-th place), unscored cells, and rows with
    # fewer scored-and-unseen items than k
    table = rng.integers(0, 6, (n_users, n_items)).astype(np.float64)
    table[rng.random((n_users, n_items)) < 0.3] = np.nan
    table[::9, 15:] = np.nan

    def fn(users):
        return table[users]

    ranked = rank_test_pairs(fn, split, batch_size=batch_size)
    top, ranks = _ranked_by_full_sort(fn, split)
    assert np.array_equal(ranked.topk, top)
    assert np.array_equal(ranked.pair_rank, ranks)


def test_a_user_sample_keeps_whole_users_and_is_seeded(random_log):
    log, n_users, n_items = random_log
    split = split_interactions(log, n_users, n_items)
    all_users = np.unique(split.test.user)
    small = split.sample_test_users(50, seed=1)
    users = np.unique(small.test.user)
    assert len(users) == 50 and np.isin(users, all_users).all()
    # every test pair of a sampled user is kept, nothing else changes
    assert len(small.test) == np.isin(split.test.user, users).sum()
    assert small.train is split.train and np.array_equal(small.cold_items, split.cold_items)
    assert np.array_equal(users, np.unique(split.sample_test_users(50, seed=1).test.user))
    assert not np.array_equal(users, np.unique(split.sample_test_users(50, seed=2).test.user))
    assert split.sample_test_users(None, seed=1) is split
    assert split.sample_test_users(len(all_users), seed=1) is split
