"""Cold-start fallback, recommending for everyone, travel re-ranking and people to follow."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from contracts import ScorerContract, make_scorer_toy
from gnn.baselines import PopularityScorer
from gnn.scoring import (ColdStartFallback, CommonFriendsScorer, FriendsScorer, IndexScorer, NearbyScorer,
                         PeopleScorer, ResidualBlendScorer, evaluate_people, haversine_km, recommend_all,
                         rerank_by_distance, reserve_new_item_slots, split_links, suggest_people,
                         tune_people_weight)


class _Table(IndexScorer):
    """A scorer that returns a fixed table: lets the fallback order be checked cell by cell."""

    name = "table"

    def __init__(self, table):
        self.table = np.asarray(table, dtype=np.float64)
        self.n_users, self.n_items = self.table.shape

    def _score(self, users):
        return self.table[users]


def test_fallback_fills_nans_in_declared_order_and_names_the_reason():
    nan = np.nan
    first = _Table([[3.0, nan, 1.0], [nan, nan, nan]])
    second = _Table([[9.0, 5.0, nan], [nan, 2.0, nan]])
    last = _Table([[0.0, 0.0, 0.0], [1.0, 1.0, 7.0]])
    chain = ColdStartFallback([("gnn", first), ("text", second), ("popular", last)])
    key, reason = chain.score_with_reason(np.array([0, 1]))
    assert [[chain.reasons[r] for r in row] for row in reason] == [["gnn", "text", "gnn"],
                                                                   ["popular", "text", "popular"]]
    # every cell of a better layer ranks above every cell a later layer filled
    assert key[0, 0] > key[0, 2] > key[0, 1]
    assert key[1, 1] > key[1, 2] > key[1, 0]
    assert not np.isnan(key).any()
    with pytest.raises(ValueError, match="n_users, n_items"):
        ColdStartFallback([("a", first), ("b", _Table(np.zeros((2, 4))))])


def test_recommend_all_gives_every_user_k_unseen_rows_with_reasons():
    toy = make_scorer_toy()
    pop = PopularityScorer(toy.train, toy.n_users, toy.n_items)
    nan_for_even = _Table(np.where(np.arange(toy.n_users)[:, None] % 2 == 0, np.nan,
                                   np.random.default_rng(0).random((toy.n_users, toy.n_items))))
    chain = ColdStartFallback([("gnn", nan_for_even), ("popular", pop)])
    seen = toy.seen()
    recs = recommend_all(chain, seen, k=3)
    assert recs.groupby("user_idx").size().eq(3).all() and recs["user_idx"].nunique() == toy.n_users
    assert not np.asarray(seen[recs.user_idx.to_numpy(), recs.item_idx.to_numpy()]).any()
    assert set(recs.loc[recs.user_idx % 2 == 0, "reason"]) == {"popular"}
    assert set(recs.loc[recs.user_idx % 2 == 1, "reason"]) == {"gnn"}
    assert (recs.groupby("user_idx")["rank"].apply(list).map(lambda r: r == [1, 2, 3])).all()
    # batches do not change the answer
    pd_small = recommend_all(chain, seen, k=3, batch_size=2)
    assert pd_small.equals(recs)


def test_residual_blend_standardises_and_shifts_new_items():
    p = _Table([[1.0, 2.0, 3.0, np.nan]])
    r = _Table([[np.nan, 10.0, 0.0, 0.0]])
    blend = ResidualBlendScorer(p, r, beta=1.0, new_items=np.array([True, False, False, False]), new_item_shift=5.0)
    s = blend.score(np.array([0]))[0]
    assert np.isnan(s[3])                      # the primary could not score it: stays NaN
    assert s[0] == pytest.approx(-np.sqrt(1.5) + 5.0)   # z(1) of [1,2,3] + no residual + shift


def _list_of(row: np.ndarray, excluded: np.ndarray) -> list[int]:
    """Finite, non-excluded items of a row, best first, ties by index."""
    cand = np.flatnonzero(np.isfinite(row) & ~excluded)
    return cand[np.lexsort((cand, -row[cand]))].tolist()


def test_new_item_slots_take_the_end_of_the_list_and_leave_its_head_alone():
    rng = np.random.default_rng(3)
    for trial in range(200):
        s = rng.normal(size=(4, 25))
        s[rng.random(s.shape) < 0.1] = np.nan
        new = rng.random(25) < 0.3
        seen = sp.csr_matrix((rng.random(s.shape) < 0.2) & ~new[None, :])
        k, slots = int(rng.integers(1, 12)), int(rng.integers(1, 6))
        out = reserve_new_item_slots(s, new, slots, k, seen)
        assert np.array_equal(np.isnan(out), np.isnan(s)), trial
        for i in range(len(s)):
            excluded = seen[i].toarray()[0].astype(bool)
            before = _list_of(s[i], excluded)
            head = before[:k - min(slots, k)]
            reserved = [j for j in before if new[j] and j not in head][:min(slots, k)]
            rest = [j for j in before if j not in head and j not in reserved]
            assert _list_of(out[i], excluded) == head + reserved + rest, trial


def test_blend_with_slots_shows_new_items_behind_the_head_of_each_list():
    # item 0 is new and scores worst; items 1-4 are old; user 0 has seen item 1
    p = _Table([[0.0, 5.0, 4.0, 3.0, 2.0], [0.0, 5.0, 4.0, 3.0, 2.0]])
    new = np.array([True, False, False, False, False])
    seen = sp.csr_matrix(np.array([[0, 1, 0, 0, 0], [0, 0, 0, 0, 0]]))
    plain = ResidualBlendScorer(p, None, new_items=new, list_k=3, seen=seen).score(np.array([0, 1]))
    slotted = ResidualBlendScorer(p, None, new_items=new, new_item_slots=1, list_k=3, seen=seen).score(np.array([0, 1]))
    none = np.zeros(5, bool)
    assert _list_of(plain[0], seen[0].toarray()[0] > 0)[:3] == [2, 3, 4]
    # the list after the seen item is excluded: two old items, then the new one in the last place
    assert _list_of(slotted[0], seen[0].toarray()[0] > 0)[:3] == [2, 3, 0]
    assert _list_of(slotted[1], none)[:3] == [1, 2, 0]
    # without new items in the catalogue the slots change nothing
    same = ResidualBlendScorer(p, None, new_items=none, new_item_slots=2, list_k=3).score(np.array([0, 1]))
    np.testing.assert_array_equal(same, ResidualBlendScorer(p, None, list_k=3).score(np.array([0, 1])))


def test_friends_and_nearby_scorers():
    train = sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 1], [0, 0, 0]], dtype=np.float32))
    friends = FriendsScorer(np.array([[2, 2], [0, 1]]), train)
    s = friends.score(np.array([2, 0]))
    np.testing.assert_array_equal(s[0], [1.0, 1.0, 1.0])
    assert np.isnan(s[1, 1:]).all() and np.isnan(s[1, 0])   # user 0's only friend (2) has no items
    near = NearbyScorer(np.array([[48.85, 2.35], [np.nan, np.nan]]),
                        np.array([[48.86, 2.35], [51.5, -0.12], [np.nan, np.nan]]), np.array([1, 1, 1]))
    s = near.score(np.array([0, 1]))
    assert s[0, 0] > s[0, 1] and np.isnan(s[0, 2]) and np.isnan(s[1]).all()


def test_rerank_by_distance_filters_and_reorders():
    assert haversine_km(48.8566, 2.3522, 51.5074, -0.1278) == pytest.approx(343.5, abs=1.0)
    import pandas as pd

    recs = pd.DataFrame({"user_idx": [0, 0, 0], "rank": [1, 2, 3], "item_idx": [0, 1, 2],
                         "score": [3.0, 2.9, 1.0], "reason": ["gnn"] * 3})
    pos = np.array([[48.95, 2.35], [48.857, 2.352], [60.0, 10.0]])    # 11 km, 0 km, far away
    out = rerank_by_distance(recs, pos, (48.8566, 2.3522), max_km=50, decay_km=5)
    assert out["item_idx"].tolist() == [1, 0] and out["rank"].tolist() == [1, 2]


def test_people_to_follow_is_evaluated_on_held_out_links():
    rng = np.random.default_rng(0)
    # two cliques of 10 users: held-out links are inside a clique, common friends finds them
    links = np.array([(a, b) for c in (0, 10) for a in range(c, c + 10) for b in range(a + 1, c + 10)]).T
    train, test = split_links(links, 0.2, seed=1)
    assert train.shape[1] + test.shape[1] == links.shape[1] and test.shape[1] > 0
    row = evaluate_people(CommonFriendsScorer(train, 20), train, test, 20, "common_friends")
    assert row["recall@20"] == pytest.approx(1.0)
    rand = _Table(rng.random((20, 20)))
    assert evaluate_people(rand, train, test, 20, "random")["ndcg@20"] <= row["ndcg@20"]


def _people_toy():
    """Six users: 0-1-2 a chain of friends, 3 and 4 strangers to everyone, 5 nobody's friend.
    States: 0 and 4 alike (the same taste, no common friend); 3 unlike 0."""
    links = np.array([[0, 1], [1, 2]]).T
    z = np.array([[1.0, 0.0], [0.2, 0.2], [0.3, 0.1], [-1.0, 0.0], [0.9, 0.1], [0.0, 0.1]])
    return links, z


def test_people_scorer_puts_friends_of_friends_first_then_alike_users():
    links, z = _people_toy()
    got = suggest_people(PeopleScorer(links, 6, z, weight=1.0), links, np.array([0]), k=10)
    others = got["other_idx"].tolist()
    # never themselves, never a friend they already have
    assert 0 not in others and 1 not in others
    # 2 shares friend 1 with user 0; 4 shares none but has 0's taste; 3 has the opposite taste
    assert others[:2] == [2, 4] and others[-1] == 3
    assert got["reason"].tolist()[:2] == ["friends", "gnn"]
    assert got["rank"].tolist() == list(range(1, len(got) + 1))
    assert np.isfinite(got["score"]).all() and got["score"].is_monotonic_decreasing
    # weight 0 is the common-friends baseline: same order as CommonFriendsScorer
    base = suggest_people(PeopleScorer(links, 6, z, weight=0.0), links, np.array([0]), k=10)
    assert base["other_idx"].iloc[0] == 2
    assert np.allclose(PeopleScorer(links, 6, None).score(np.array([0, 3])),
                       CommonFriendsScorer(links, 6).score(np.array([0, 3])))


def test_every_user_gets_k_people_unless_fewer_are_left():
    links, z = _people_toy()
    got = suggest_people(PeopleScorer(links, 6, z), links, k=3)
    sizes = got.groupby("user_idx").size()
    assert sizes.to_dict() == {0: 3, 1: 3, 2: 3, 3: 3, 4: 3, 5: 3}
    known = {(0, 1), (1, 0), (1, 2), (2, 1)}
    assert not any((u, o) in known or u == o for u, o in zip(got["user_idx"], got["other_idx"]))


def test_people_weight_is_tuned_on_links_the_model_did_not_see():
    rng = np.random.default_rng(3)
    # two communities of 12; within each, links are sparse (few common friends), and the user
    # states know the communities: the weight that uses them must win on held-out links
    links = np.array([(a, b) for c in (0, 12) for a in range(c, c + 12) for b in range(a + 1, c + 12)
                      if rng.random() < 0.3]).T
    train, held = split_links(links, 0.3, seed=2)
    z = np.r_[np.tile([1.0, 0.0], (12, 1)), np.tile([0.0, 1.0], (12, 1))] + rng.normal(0, 0.05, (24, 2))
    w, table = tune_people_weight(train, held, 24, z, (0.0, 1.0, 4.0))
    assert set(table) == {0.0, 1.0, 4.0} and all(0 <= v <= 1 for v in table.values())
    assert w > 0 and table[w] > table[0.0]


class TestPopularityScorer(ScorerContract):
    @pytest.fixture(scope="class")
    def scorer(self, scorer_toy):
        return PopularityScorer(scorer_toy.train, scorer_toy.n_users, scorer_toy.n_items)

    def test_segments_rank_their_own_favourites_first(self, scorer_toy):
        pop = PopularityScorer(scorer_toy.train, scorer_toy.n_users, scorer_toy.n_items,
                               segments=scorer_toy.user_comm)
        s = pop.score(np.array([0, scorer_toy.n_per]))
        assert scorer_toy.item_comm[np.argmax(s[0])] == 0 and scorer_toy.item_comm[np.argmax(s[1])] == 1


class TestFallbackChain(ScorerContract):
    @pytest.fixture(scope="class")
    def scorer(self, scorer_toy):
        nan_table = _Table(np.full((scorer_toy.n_users, scorer_toy.n_items), np.nan))
        return ColdStartFallback([("gnn", nan_table),
                                  ("popular", PopularityScorer(scorer_toy.train, scorer_toy.n_users, scorer_toy.n_items))])


def test_content_transfer_gives_new_items_their_text_neighbours_scores():
    from gnn.scoring import ContentTransferScorer

    # items 0, 1 have interactions; item 2 is new and its text equals item 1's
    x = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    base = _Table([[5.0, 1.0, np.nan], [np.nan, np.nan, np.nan]])
    t = ContentTransferScorer(base, x, new_items=np.array([False, False, True]), k=1)
    s = t.score(np.array([0, 1]))
    np.testing.assert_allclose(s[0], [5.0, 1.0, 1.0])
    assert np.isnan(s[1]).all()          # a user the base cannot score stays unscored
    # another base through the same neighbours: its own scores carried over, the first untouched
    other = t.on(_Table([[2.0, 7.0, np.nan], [1.0, 3.0, np.nan]]))
    np.testing.assert_allclose(other.score(np.array([0, 1])), [[2.0, 7.0, 7.0], [1.0, 3.0, 3.0]])
    np.testing.assert_allclose(t.score(np.array([0]))[0], [5.0, 1.0, 1.0])


def test_split_residual_standardises_each_half_on_its_own():
    from gnn.scoring import SplitResidualScorer

    warm = _Table([[100.0, 200.0, np.nan, np.nan]])
    new = _Table([[np.nan, np.nan, 0.1, 0.3]])
    s = SplitResidualScorer(warm, new, np.array([False, False, True, True])).score(np.array([0]))[0]
    np.testing.assert_allclose(s, [-1.0, 1.0, -1.0, 1.0])


def test_recency_weights_favour_the_latest_items():
    from gnn.baselines import EASEScorer, recency_weights
    from gnn.evaluation import Interactions

    t = Interactions.from_arrays([0, 0, 0, 1], [0, 1, 2, 0], ts=[10, 30, 20, 5])
    w = recency_weights(t, half_life=1.0, floor=0.0)
    np.testing.assert_allclose(w, [0.25, 1.0, 0.5, 1.0])
    ease = EASEScorer(t, 2, 3, lam=1.0)
    x = ease.with_recency(1.0, floor=0.0).x.toarray()
    np.testing.assert_allclose(x[0, np.searchsorted(ease.items, [0, 1, 2])], [0.25, 1.0, 0.5])
    assert ease.with_recency(None).x is ease.x
    with pytest.raises(ValueError, match="half_life"):
        recency_weights(t, 0.0)
