"""The kgrec model: known answers on the two-community toy, cold start, seeds, NaN, devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from contracts import ScorerContract, make_scorer_toy
from gnn.baselines import PopularityScorer
from gnn.errors import TrainingError
from gnn.fusion import NodeFeatures
from gnn.scoring import ColdStartFallback, recommend_all
from gnn.training import TrainConfig, resolve_device, train_kgrec

# Small and fast: the toy has 13 users and 13 items; a batch of 16 pairs gives ~5 steps/epoch.
TOY_CONFIG = TrainConfig(dim=16, epochs=40, batch_size=16, lr=0.02, num_negatives=8, id_dropout=0.2,
                         device="cpu", seed=3)


@pytest.fixture(scope="module")
def toy():
    return make_scorer_toy()


@pytest.fixture(scope="module")
def model(toy):
    return train_kgrec(toy.data, toy.features, TOY_CONFIG)


def test_withheld_item_ranks_first_for_every_warm_user(model, toy):
    # among the items with interactions, the withheld item is the only unseen one of the user's
    # community; every other unseen one belongs to the other community. (The new item is left
    # out: for a B user a new B item is as plausible as the withheld one.)
    users = np.arange(2 * toy.n_per)
    s = model.scorer().score(users)
    s[toy.seen()[users].toarray() > 0] = -np.inf
    s[:, toy.cold_item] = -np.inf
    assert (s.argmax(1) == toy.withheld).all()


def test_cold_user_is_placed_by_profile_text_and_friend(model, toy):
    s = model.scorer().score(np.array([toy.cold_user]))[0]
    assert np.isfinite(s).all()
    top = np.argsort(-s)[:toy.n_per]
    assert (toy.item_comm[top] == 0).mean() >= 5 / 6      # A text, friend of an A user


def test_cold_item_is_placed_by_text_and_entities(model, toy):
    col = model.scorer().score(np.arange(2 * toy.n_per), np.array([toy.cold_item]))[:, 0]
    assert np.isfinite(col).all()
    b_users = toy.user_comm[:2 * toy.n_per] == 1
    assert col[b_users].min() > col[~b_users].max()       # B text, mentions B's entity


def test_new_users_from_free_text_and_friends(model, toy):
    query = toy.features.x_item[toy.item_comm == 1].mean(0, keepdim=True)   # "something like B"
    s = model.score_new_users(query)[0]
    assert toy.item_comm[np.argmax(s)] == 1
    s = model.score_new_users(None, friends=[[0, 1, 2]])[0]                # friends in A
    assert toy.item_comm[np.argmax(s)] == 0


def test_same_seed_same_top_k(toy):
    a = recommend_all(train_kgrec(toy.data, toy.features, TOY_CONFIG.model_copy(update={"epochs": 5})).scorer(),
                      toy.seen(), k=4)
    b = recommend_all(train_kgrec(toy.data, toy.features, TOY_CONFIG.model_copy(update={"epochs": 5})).scorer(),
                      toy.seen(), k=4)
    assert a[["user_idx", "rank", "item_idx"]].equals(b[["user_idx", "rank", "item_idx"]])


def test_every_user_gets_k_rows_through_the_fallback(model, toy):
    pop = PopularityScorer(toy.train, toy.n_users, toy.n_items)
    chain = ColdStartFallback([("gnn", model.scorer()), ("popular", pop)])
    recs = recommend_all(chain, toy.seen(), k=5)
    assert recs.groupby("user_idx").size().reindex(range(toy.n_users)).eq(5).all()
    assert set(recs["reason"]) == {"gnn"}        # every toy node has text or edges


def test_nan_training_raises_naming_the_epoch(toy):
    huge = NodeFeatures(x_item=toy.features.x_item * 3e38, x_user=toy.features.x_user,
                        has_text_user=toy.features.has_text_user)
    with pytest.raises(TrainingError, match="epoch 1") as err:
        train_kgrec(toy.data, huge, TOY_CONFIG.model_copy(update={"epochs": 3}))
    assert err.value.epoch == 1


def test_bad_inputs_are_refused_with_a_reason(toy):
    bad = NodeFeatures(x_item=torch.full_like(toy.features.x_item, float("nan")))
    with pytest.raises(ValueError, match="NaN"):
        train_kgrec(toy.data, bad, TOY_CONFIG)
    short = NodeFeatures(x_item=toy.features.x_item[:3])
    with pytest.raises(ValueError, match="3 rows"):
        train_kgrec(toy.data, short, TOY_CONFIG)
    with pytest.raises(ValueError, match="eval_every"):
        TrainConfig(epochs=1, eval_every=2)


def test_early_stopping_restores_the_best_epoch(toy):
    calls = []

    def validate(scorer):             # a validation curve that peaks at the 2nd evaluation
        calls.append(len(calls))
        return [0.1, 0.5, 0.2, 0.2, 0.2][len(calls) - 1]

    m = train_kgrec(toy.data, toy.features, TOY_CONFIG.model_copy(update={"eval_every": 1, "patience": 3}),
                    validate=validate)
    assert m.history.best_epoch == 2 and m.history.epochs_run == 5 and m.history.best_val == 0.5


def test_device_auto_and_cuda_request():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_with_mixed_precision_gives_the_cpu_known_answers(toy):
    # The same known answers as on CPU (see the first test: the cold item is left out of the
    # argmax because for a B user a new B item is as plausible as the withheld one). CUDA draws
    # its negatives from another random stream and runs in bfloat16, so the scores are not the
    # CPU's bit for bit; the answers must be.
    m = train_kgrec(toy.data, toy.features, TOY_CONFIG.model_copy(update={"device": "cuda"}))
    assert m.history.epochs_run > 0
    users = np.arange(2 * toy.n_per)
    s = m.scorer().score(users)
    assert np.isfinite(s).all()
    s[toy.seen()[users].toarray() > 0] = -np.inf
    s[:, toy.cold_item] = -np.inf
    assert (s.argmax(1) == toy.withheld).all()
    cold_user = m.scorer().score(np.array([toy.cold_user]))[0]
    assert (toy.item_comm[np.argsort(-cold_user)[:toy.n_per]] == 0).mean() >= 5 / 6
    cold_item = m.scorer().score(users, np.array([toy.cold_item]))[:, 0]
    b_users = toy.user_comm[users] == 1
    assert cold_item[b_users].min() > cold_item[~b_users].max()


class TestKGRecScorer(ScorerContract):
    @pytest.fixture(scope="class")
    def scorer(self, scorer_toy):
        return train_kgrec(scorer_toy.data, scorer_toy.features, TOY_CONFIG).scorer()

    def test_ablation_without_text_still_scores_warm_nodes(self, scorer_toy):
        m = train_kgrec(scorer_toy.data, scorer_toy.features,
                        TOY_CONFIG.model_copy(update={"use_text": False, "epochs": 5}))
        s = m.scorer().score(np.array([0]))
        assert np.isfinite(s[0, np.unique(scorer_toy.train.item)]).all()


def test_blend_tuning_respects_the_warm_guard(toy):
    from gnn.evaluation import Interactions, split_interactions, SplitConfig
    from gnn.training import tune_blend
    from gnn.baselines import EASEScorer

    split = split_interactions(toy.train, toy.n_users, toy.n_items,
                               SplitConfig(cold_user_share=0, cold_item_share=0, test_share=0.3))
    ease = EASEScorer(split.train, toy.n_users, toy.n_items, lam=1.0)
    gnn = train_kgrec(toy.data, toy.features, TOY_CONFIG.model_copy(update={"epochs": 3})).scorer()
    from gnn.evaluation import validation_user_ndcgs
    from gnn.training import WarmGuard

    free = tune_blend(gnn, {"ease": ease}, split, betas=(0.5, 4.0), shifts=(0.0,), new_items=None)
    ref = validation_user_ndcgs(ease, split, ("warm",))["warm"]
    unreachable = WarmGuard((ref,), share=50.0)         # falls back to the point nearest to passing
    guarded = tune_blend(gnn, {"ease": ease}, split, betas=(0.5, 4.0), shifts=(0.0,), new_items=None,
                         guard=unreachable)
    assert free[0] == "ease" and len(free.table) == 2 and free.drift is None
    assert guarded[1] in (0.5, 4.0)
    # an inner split identical to the validation split shows no drift, and changes nothing
    same = tune_blend(gnn, {"ease": ease}, split, betas=(0.5, 4.0), shifts=(0.0,), new_items=None,
                      guard=WarmGuard((ref,)), inner=(gnn, {"ease": ease}, split, None, ref))
    plain = tune_blend(gnn, {"ease": ease}, split, betas=(0.5, 4.0), shifts=(0.0,), new_items=None,
                       guard=WarmGuard((ref,)))
    assert same.drift == 0.0 and same[:4] == plain[:4]


def test_blend_tuning_scores_new_item_slots_as_the_blend_would(toy):
    from gnn.baselines import EASEScorer
    from gnn.evaluation import SplitConfig, split_interactions, validation_ndcg
    from gnn.scoring import ResidualBlendScorer
    from gnn.training import tune_blend

    split = split_interactions(toy.train, toy.n_users, toy.n_items,
                               SplitConfig(cold_user_share=0, cold_item_share=0.2, test_share=0.3, k=3))
    new = ~np.isin(np.arange(toy.n_items), split.train.item)
    assert new.any()
    ease = EASEScorer(split.train, toy.n_users, toy.n_items, lam=1.0)
    gnn = train_kgrec(toy.data, toy.features, TOY_CONFIG.model_copy(update={"epochs": 3})).scorer()
    label, beta, shift, slots, table, _ = tune_blend(gnn, {"ease": ease}, split, betas=(1.0,), shifts=(0.0,),
                                                  new_items=new, slots=(0, 1, 2))
    assert set(table) == {("ease", 1.0, 0.0, n) for n in (0, 1, 2)}
    for n in (0, 1, 2):   # each grid point is what the scorer built from it would score
        blend = ResidualBlendScorer(gnn, ease, 1.0, new, 0.0, n, list_k=3, seen=split.train_matrix())
        assert table[("ease", 1.0, 0.0, n)] == pytest.approx(validation_ndcg(blend, split))
    assert (label, beta, shift) == ("ease", 1.0, 0.0) and table[(label, beta, shift, slots)] == max(table.values())


class TestWarmGuard:
    """The guard on kgrec's blend: a lower confidence bound of the per-user warm margin."""

    def test_without_confidence_it_is_the_ratio_of_the_means(self):
        from gnn.training import WarmGuard

        rng = np.random.default_rng(0)
        ref = rng.random(400)
        for scale in (0.95, 0.979, 0.981, 1.02):
            blend = ref * scale + rng.normal(0, 0.05, 400)
            g = WarmGuard((ref,), share=0.98, z=0.0)
            assert (g.bound([blend]) >= 0) == (blend.mean() >= 0.98 * ref.mean())

    def test_a_thin_noisy_margin_fails_where_a_clear_one_passes(self):
        from gnn.training import WarmGuard

        rng = np.random.default_rng(1)
        ref = rng.random(300)
        noisy = ref + rng.normal(0.0, 0.3, 300)
        noisy += 0.985 * ref.mean() - noisy.mean()             # 0.985× on the means: passes the plain ratio
        clear = ref * 1.0 + rng.normal(0, 0.01, 300)
        assert WarmGuard((ref,), z=0.0).bound([noisy]) > 0
        assert WarmGuard((ref,)).bound([noisy]) < 0            # margin well inside its standard error
        assert WarmGuard((ref,)).bound([clear]) > 0

    def test_folds_average_their_means_and_add_their_variances(self):
        from gnn.training import WarmGuard

        a_ref, b_ref = np.array([0.5, 0.7, 0.2, 0.9]), np.array([0.4, 0.1, 0.6])
        a, b = a_ref + np.array([0.1, 0.0, 0.2, 0.1]), b_ref + np.array([0.0, 0.3, 0.0])
        g = WarmGuard((a_ref, b_ref), share=1.0, z=2.0)
        da, db = a - a_ref, b - b_ref
        expected = (da.mean() + db.mean()) / 2 - 2.0 * np.sqrt(da.var(ddof=1) / 4 + db.var(ddof=1) / 3) / 2
        assert g.bound([a, b]) == pytest.approx(expected)

    def test_a_negative_drift_raises_the_line_and_a_positive_one_is_not_counted_on(self):
        from gnn.training import WarmGuard, warm_drift, warm_ratios

        rng = np.random.default_rng(2)
        ref = rng.random(200)
        blend = ref * 1.0 + rng.normal(0, 0.05, 200)
        assert WarmGuard((ref,), 0.98, drift=-0.05).line == pytest.approx(1.03)
        assert WarmGuard((ref,), 0.98, drift=-0.05).bound([blend]) == pytest.approx(
            WarmGuard((ref,), 1.03).bound([blend]))
        assert WarmGuard((ref,), 0.98, drift=0.05).bound([blend]) == WarmGuard((ref,), 0.98).bound([blend])
        # the drift: median over the grid of each point's outer minus inner warm ratio
        outer = {"a": 1.00, "b": 0.95, "c": 0.90, "d": 0.99}
        inner = {"a": 1.04, "b": 0.99, "c": 1.00, "e": 2.0}      # "d" and "e" are not in both
        assert warm_drift(outer, inner) == pytest.approx(-0.04)
        ratios = warm_ratios({"a": np.array([0.4, 0.4]), "b": np.array([0.2, 0.2])}, np.array([0.5, 0.3]))
        assert ratios == pytest.approx({"a": 1.0, "b": 0.5})

    def test_pick_blend_takes_the_best_passing_point_or_the_nearest_to_passing(self):
        from gnn.training import pick_blend

        table = {("r", 1.0, 0.0, 0): 0.30, ("r", 2.0, 0.0, 0): 0.25, ("r", 4.0, -1.0, 0): 0.20}
        bounds = {("r", 1.0, 0.0, 0): -0.01, ("r", 2.0, 0.0, 0): 0.002, ("r", 4.0, -1.0, 0): 0.05}
        assert pick_blend(table) == ("r", 1.0, 0.0, 0)
        assert pick_blend(table, bounds) == ("r", 2.0, 0.0, 0)
        assert pick_blend(table, {k: v - 1 for k, v in bounds.items()}) == ("r", 4.0, -1.0, 0)
