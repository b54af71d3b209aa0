"""The whole protocol on a small planted-community graph: every model, every slice, one table."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import HeteroData

from gnn.comparison import ComparisonConfig, compare_models
from gnn.evaluation import METRIC_COLUMNS, SLICES
from gnn.fusion import NodeFeatures
from gnn.training import TrainConfig


def planted_graph(n_users=120, n_items=150, n_comm=4, dim=32, seed=0):
    """Users mostly interact inside their community; text, entities and links carry it too."""
    rng = np.random.default_rng(seed)
    cent = rng.normal(size=(n_comm, dim))
    ic, uc = rng.integers(0, n_comm, n_items), rng.integers(0, n_comm, n_users)
    pop = rng.zipf(1.6, n_items).clip(1, 50).astype(float)

    def text(c, noise):
        x = cent[c] + noise * rng.normal(size=(len(c), dim))
        return torch.tensor(x / np.linalg.norm(x, axis=1, keepdims=True), dtype=torch.float32)

    us, its = [], []
    for u in range(n_users):
        own = np.flatnonzero(ic == uc[u])
        k = min(len(own), int(rng.integers(4, 16)))
        chosen = np.r_[rng.choice(own, k, replace=False, p=pop[own] / pop[own].sum()), rng.integers(0, n_items, 2)]
        chosen = np.unique(chosen)
        us += [u] * len(chosen)
        its += chosen.tolist()
    data = HeteroData()
    for t, n in (("user", n_users), ("item", n_items), ("entity", n_comm * 2), ("category", n_comm)):
        data[t].num_nodes = n
    e = data["user", "interacted", "item"]
    e.edge_index = torch.tensor([us, its])
    e.edge_weight = torch.ones(len(us))
    e.ts = torch.tensor(rng.integers(0, 10**6, len(us)))
    data["item", "mentions", "entity"].edge_index = torch.tensor(np.stack([np.arange(n_items), ic * 2 + rng.integers(0, 2, n_items)]))
    data["item", "mentions", "entity"].edge_weight = torch.ones(n_items)
    data["item", "in_category", "category"].edge_index = torch.tensor(np.stack([np.arange(n_items), ic]))
    src = np.arange(n_users)
    dst = np.array([rng.choice(np.flatnonzero(uc == uc[u])) for u in src])
    data["user", "follows", "user"].edge_index = torch.tensor(np.stack([src, dst]))
    features = NodeFeatures(x_item=text(ic, 1.0), x_user=text(uc, 2.0), has_text_user=torch.tensor(rng.random(n_users) < 0.5),
                            x_entity=text(np.repeat(np.arange(n_comm), 2), 0.5), x_category=text(np.arange(n_comm), 0.5))
    return data, features


@pytest.fixture(scope="module")
def result():
    data, features = planted_graph()
    quick = TrainConfig(dim=16, epochs=6, eval_every=2, batch_size=256, num_negatives=32, device="cpu")
    cfg = ComparisonConfig(kgrec=quick, lightgcn=quick.model_copy(update={"loss": "bpr"}),
                           ablations=("no_residual", "no_gnn"), blend_betas=(0.0, 1.0), blend_shifts=(0.0, 1.0))
    return compare_models(data, features, cfg)


def test_one_tidy_table_with_every_model_and_slice(result):
    t = result.table
    assert list(t.columns) == ["model", "slice", "users", *METRIC_COLUMNS]
    models = {"popular", "itemknn", "ease", "lightgcn", "text", "kgrec", "kgrec-no_residual", "kgrec-no_gnn"}
    assert models <= set(t.model)
    for m in models:
        assert set(SLICES) <= set(t[t.model == m].slice)
    assert {"kgrec", "kgrec-gnn_only", "common_friends"} <= set(t[t.slice == "people_to_follow"].model)
    vals = t[list(METRIC_COLUMNS)].drop(columns="mrr").to_numpy()
    assert ((vals >= 0) & (vals <= 1)).all()


def test_id_only_baselines_cannot_reach_cold_items(result):
    t = result.table.set_index(["model", "slice"])
    for m in ("itemknn", "ease", "lightgcn", "popular"):
        assert t.loc[(m, "cold_item"), "recall@20"] == 0.0     # new items sit below every scored item
    assert t.loc[("kgrec", "cold_item"), "recall@20"] > 0.0


def test_tuning_stayed_inside_the_budget_and_timings_are_reported(result):
    assert len(result.tuned["ease"]["val"]) <= 4 and len(result.tuned["itemknn"]["val"]) <= 4
    assert result.timings["kgrec"]["s_per_epoch"] > 0 and result.timings["lightgcn"]["s_per_epoch"] > 0
    assert result.split["cold_users"] > 0 and result.split["cold_items"] > 0
    guard = result.tuned["warm_guard"]      # the blend's guard: 0.98× EASE with 1.645 standard errors
    assert (guard["share"], guard["z"]) == (0.98, 1.645) and 0 < guard["val_ease_warm_ndcg"] <= 1
    # measured from an inner validation split, for the full model and every ablation
    assert all(-1 < result.tuned[m]["warm_drift"] < 1 for m in ("kgrec", "kgrec-no_residual", "kgrec-no_gnn"))


def test_fit_recommender_publishes_k_unseen_rows_for_every_user_with_reasons():
    from gnn.recommender import fit_recommender

    data, features = planted_graph(n_users=60, n_items=80)
    quick = TrainConfig(dim=16, epochs=4, eval_every=2, batch_size=256, num_negatives=32, device="cpu")
    rec = fit_recommender(data, features, ComparisonConfig(kgrec=quick, blend_betas=(1.0,), blend_shifts=(0.0,)))
    recs = rec.recommend(k=10)
    assert recs.groupby("user_idx").size().reindex(range(60)).eq(10).all()
    seen = rec.seen
    assert not np.asarray(seen[recs.user_idx.to_numpy(), recs.item_idx.to_numpy()]).any()
    assert set(recs["reason"]) <= {"gnn", "text", "friends", "nearby", "popular"}
    assert {"ease_lambda", "epochs", "beta", "shift", "residual", "people_weight"} <= set(rec.tuned)
    # the planted graph has follow links: people to follow for everyone, never self or a friend
    people = rec.suggest_people(k=5)
    assert people.groupby("user_idx").size().reindex(range(60)).eq(5).all()
    links = data["user", "follows", "user"].edge_index.numpy()
    known = set(zip(links[0], links[1])) | set(zip(links[1], links[0]))
    assert not any(u == o or (u, o) in known for u, o in zip(people.user_idx, people.other_idx))
    assert set(people["reason"]) <= {"friends", "gnn"}
    two = fit_recommender(data, features, ComparisonConfig(kgrec=quick, blend_betas=(1.0,), blend_shifts=(0.0,),
                                                           validation_folds=2))
    assert two.recommend(k=10).groupby("user_idx").size().reindex(range(60)).eq(10).all()


def test_a_sampled_evaluation_ranks_fewer_users_against_the_whole_catalogue():
    data, features = planted_graph()
    quick = TrainConfig(dim=16, epochs=2, eval_every=2, batch_size=256, num_negatives=32, device="cpu")
    cfg = ComparisonConfig(kgrec=quick, baselines=("popular",), ablations=(), reference_rows=False,
                           timing_rounds=0, blend_betas=(0.0,), blend_shifts=(0.0,), max_eval_users=40)
    r = compare_models(data, features, cfg)
    assert r.split["evaluated_users"] == 40 and r.split["evaluated_pairs"] < r.split["test"]
    t = r.table.set_index(["model", "slice"])
    assert t.loc[("kgrec", "all"), "users"] == 40 and t.loc[("popular", "all"), "users"] == 40


def test_several_validation_folds_tune_every_model_on_the_mean(result):
    """Each tuned number is the mean over independently drawn validation splits, the same rule
    for the baselines and for kgrec's blend."""
    from gnn import baselines as B
    from gnn.comparison import _Context
    from gnn.evaluation import Interactions, split_interactions, validation_ndcg

    data, features = planted_graph()
    quick = TrainConfig(dim=16, epochs=2, eval_every=2, batch_size=256, num_negatives=32, device="cpu")
    cfg = ComparisonConfig(kgrec=quick, baselines=("popular", "ease", "text"), ablations=(), reference_rows=False,
                           timing_rounds=0, blend_betas=(0.5, 2.0), blend_shifts=(0.0,), validation_folds=2)
    r = compare_models(data, features, cfg)
    n_users, n_items = int(data["user"].num_nodes), int(data["item"].num_nodes)
    split = split_interactions(Interactions.from_hetero(data).dedupe(), n_users, n_items, cfg.split)
    per_fold = []
    for f in (0, 1):
        ctx = _Context(data, split.validation(f), None, None, None)
        ease = B.EASEScorer(ctx.train, n_users, n_items, r.tuned["ease"]["lambda"], cfg.ease_max_items)
        per_fold.append(validation_ndcg(ctx.with_pop(ease), ctx.split))
    assert per_fold[0] != per_fold[1]
    assert r.tuned["ease"]["val"][r.tuned["ease"]["lambda"]] == pytest.approx(np.mean(per_fold))
    # 3 half-lives × (new items by transfer from 10 or 100 neighbours, or by text) × 2 weights
    assert r.tuned["kgrec"]["validation_folds"] == 2 and r.tuned["kgrec"]["grid_points"] == 18
    # the one-fold run of the module fixture reports where its cold-item numbers come from
    for m in ("kgrec", "text"):
        d = result.diagnostics[m]
        assert 0.0 <= d["new_item_share"] <= 1.0 and 0.0 <= d["cold_item_recall_among_new"] <= 1.0
    t = result.table.set_index(["model", "slice"])
    assert result.diagnostics["kgrec"]["cold_item_recall_among_new"] >= t.loc[("kgrec", "cold_item"), "recall@20"]


def test_a_refit_with_the_tuned_settings_publishes_the_same_lists():
    """Given settings, fit_recommender skips tuning and builds the model tuning would have built."""
    from gnn.recommender import SETTINGS, fit_recommender

    data, features = planted_graph(n_users=60, n_items=80)
    quick = TrainConfig(dim=16, epochs=4, eval_every=2, batch_size=256, num_negatives=32, device="cpu")
    cfg = ComparisonConfig(kgrec=quick, blend_betas=(0.0, 1.0), blend_shifts=(0.0, 1.0))
    tuned = fit_recommender(data, features, cfg)
    given = {k: tuned.tuned[k] for k in SETTINGS} | {"source": "test"}
    refit = fit_recommender(data, features, cfg, settings=given)
    a, b = tuned.recommend(k=10), refit.recommend(k=10)
    assert (a[["user_idx", "rank", "item_idx", "reason"]].to_numpy() == b[["user_idx", "rank", "item_idx", "reason"]].to_numpy()).all()
    np.testing.assert_allclose(a["score"].to_numpy(), b["score"].to_numpy(), rtol=1e-5, atol=1e-6)
    pa, pb = tuned.suggest_people(k=5), refit.suggest_people(k=5)
    assert (pa[["user_idx", "rank", "other_idx"]].to_numpy() == pb[["user_idx", "rank", "other_idx"]].to_numpy()).all()
    assert refit.tuned["source"] == "test" and "val_ndcg" not in refit.tuned
    with pytest.raises(ValueError, match="residual"):
        fit_recommender(data, features, cfg, settings={k: v for k, v in given.items() if k != "residual"})


def test_the_evaluated_settings_map_onto_the_refit(result):
    from gnn.recommender import SETTINGS, settings_from_evaluation

    s = settings_from_evaluation(result.tuned)
    assert set(s) == set(SETTINGS)
    kg = result.tuned["kgrec"]
    assert (s["epochs"], s["residual"], s["beta"], s["shift"]) == (kg["epochs"], kg["residual"], kg["beta"], kg["shift"])
    assert s["ease_lambda"] == result.tuned["ease"]["lambda"] and s["text_recent"] == result.tuned["text"]["recent"]
    # the people-to-follow weight was chosen on links the validation model never saw
    people = result.tuned["people"]
    assert s["people_weight"] == people["weight"] and set(people["val"]) == set(ComparisonConfig().people_weights)


def test_epoch_timing_alone_alternates_rounds_of_both_models():
    from gnn.comparison import epoch_timing

    data, features = planted_graph(n_users=60, n_items=80)
    quick = TrainConfig(dim=16, epochs=6, batch_size=256, num_negatives=32, device="cpu")
    t = epoch_timing(data, features, ComparisonConfig(kgrec=quick, lightgcn=quick.model_copy(update={"loss": "bpr"}),
                                                     timing_rounds=2))
    assert t["rounds"] == 2 and t["batch_size"] == 256
    assert t["kgrec_s_per_epoch"] > 0 and t["lightgcn_s_per_epoch"] > 0
    assert t["ratio"] == pytest.approx(t["kgrec_s_per_epoch"] / t["lightgcn_s_per_epoch"])
