"""Every model through the same protocol: baselines, kgrec and its ablations, one tidy table.

Tuning rule, identical for every model (the "budget"):

* at most :data:`gnn.baselines.TUNING_BUDGET` fitted settings per model are scored on the
  validation split (all-slice NDCG@20 of the model behind its popularity fallback): ItemKNN
  tries 4 neighbourhood sizes, EASE 4 values of λ, text-only 3 history windows, popularity
  nothing, LightGCN and kgrec one architecture each;
* iterative models (LightGCN, kgrec and its ablations) early-stop on validation NDCG@20 with
  the same ``epochs`` / ``eval_every`` / ``patience`` and batch size;
* the chosen setting is refitted on the whole train part (iterative models for the epoch count
  validation chose) and evaluated once on test;
* kgrec additionally has two post-hoc numbers that need no refit, the weight of its EASE
  residual and its new-item shift, chosen on a 5 × 4 grid on validation. They are part of the
  model, so the ablation table shows kgrec without the residual as well.

Everything that is tuned sees only the train part; the test part is scored once per model.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from gnn import baselines as B
from gnn.evaluation import (INTERACTED, Interactions, ProtocolSplit, SplitConfig, evaluate_scores,
                            split_interactions, validation_ndcg, with_train_edges)
from gnn.fusion import NodeFeatures
from gnn.models import FOLLOWS
from gnn.scoring import (ColdStartFallback, CommonFriendsScorer, FriendsScorer, NearbyScorer,
                         ResidualBlendScorer, evaluate_people, people_scores_from_embeddings, split_links)
from gnn.training import TrainConfig, train_kgrec, train_lightgcn, tune_blend

log = logging.getLogger(__name__)

BASELINES = ("popular", "itemknn", "ease", "lightgcn", "text")
ABLATIONS = ("no_residual", "no_text", "no_entities", "no_gnn", "no_id_dropout")


class ComparisonConfig(BaseModel):
    """What to run and with which settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    split: SplitConfig = SplitConfig()
    """The evaluation protocol."""
    kgrec: TrainConfig = TrainConfig()
    """kgrec's training configuration (ablations change one field each)."""
    lightgcn: TrainConfig = TrainConfig(loss="bpr", lr=0.005)
    """The PyG LightGCN baseline's configuration (same epochs/batch/early-stopping rules)."""
    baselines: tuple[str, ...] = BASELINES
    """Baselines to run."""
    ablations: tuple[str, ...] = ABLATIONS
    """kgrec ablations to run."""
    ease_max_items: int = Field(5000, ge=1)
    """Items modelled by EASE (the most popular); the cap applies to the baseline and to
    kgrec's residual alike."""
    people_share: float = Field(0.2, ge=0, lt=1)
    """Share of user–user links held out to evaluate people-to-follow (0: no social eval)."""
    blend_betas: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0)
    """Residual weights tried for kgrec."""
    blend_shifts: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0)
    """New-item shifts tried for kgrec (in per-user standard deviations)."""


@dataclass(eq=False)
class ComparisonResult:
    """The table plus how it was produced."""

    table: pd.DataFrame
    split: dict
    tuned: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)


def _node_pos(data, node_type: str) -> np.ndarray | None:
    if node_type in data.node_types and "pos" in data[node_type]:
        pos = data[node_type].pos.cpu().numpy().astype(np.float64)
        if pos.ndim == 2 and pos.shape[1] == 2 and np.isfinite(pos).any():
            return pos
    return None


class _Context:
    """The pieces every model needs for one split (fit/validation or train/test)."""

    def __init__(self, data, split: ProtocolSplit, links: np.ndarray | None, item_pos, user_pos) -> None:
        self.split = split
        self.train = split.train
        self.n_users, self.n_items = split.n_users, split.n_items
        self.graph = with_train_edges(data, split.train)
        if links is not None and FOLLOWS in self.graph.edge_types:
            import torch

            self.graph[FOLLOWS].edge_index = torch.from_numpy(links).long()
        self.links = links
        self.pop = B.PopularityScorer(split.train, split.n_users, split.n_items)
        self.matrix = split.train_matrix()
        self.friends = FriendsScorer(links, self.matrix) if links is not None and links.shape[1] else None
        self.nearby = None
        if item_pos is not None and user_pos is not None and np.isfinite(user_pos).all(1).any():
            self.nearby = NearbyScorer(user_pos, item_pos, self.pop.counts)

    def with_pop(self, scorer) -> ColdStartFallback:
        return ColdStartFallback([(getattr(scorer, "name", "model"), scorer), ("popular", self.pop)])

    def kgrec_chain(self, primary, text) -> ColdStartFallback:
        layers = [("gnn", primary)]
        if text is not None:
            layers.append(("text", text))
        if self.friends is not None:
            layers.append(("friends", self.friends))
        if self.nearby is not None:
            layers.append(("nearby", self.nearby))
        layers.append(("popular", self.pop))
        return ColdStartFallback(layers)


def compare_models(data, features: NodeFeatures | None, config: ComparisonConfig | None = None) -> ComparisonResult:
    """Run the protocol for every configured baseline, kgrec and its ablations.

    Args:
        data: the exported HeteroData (all interactions; the split happens here).
        features: text embeddings aligned with the graph (None: id-only models only).
        config: what to run.

    Returns:
        The tidy table (``model, slice, users, recall@20, ndcg@20, hit@20, mrr, coverage``)
        with tuned settings and timings.
    """
    cfg = config or ComparisonConfig()
    n_users, n_items = int(data["user"].num_nodes), int(data["item"].num_nodes)
    inter = Interactions.from_hetero(data).dedupe()
    split = split_interactions(inter, n_users, n_items, cfg.split)
    val = split.validation()
    item_pos, user_pos = _node_pos(data, "item"), _node_pos(data, "user")

    links = test_links = None
    if FOLLOWS in data.edge_types and data[FOLLOWS].edge_index.shape[1] > 0:
        all_links = data[FOLLOWS].edge_index.cpu().numpy()
        if cfg.people_share > 0:
            links, test_links = split_links(all_links, cfg.people_share, cfg.split.seed)
        else:
            links = all_links
    test_ctx = _Context(data, split, links, item_pos, user_pos)
    val_ctx = _Context(data, val, links, item_pos, user_pos)

    frames, tuned, timings = [], {}, {}
    x_item = features.x_item if features is not None else None
    text_kw = {}
    if features is not None:
        text_kw = dict(x_user=features.x_user, has_text_user=features.has_text_user,
                       has_text_item=features.has_text_item)

    def add(name: str, scorer, ctx: _Context) -> None:
        frames.append(evaluate_scores(scorer, ctx.split, name))

    # ---- popularity
    if "popular" in cfg.baselines:
        t0 = time.perf_counter()
        add("popular", test_ctx.pop, test_ctx)
        timings["popular"] = {"fit_s": time.perf_counter() - t0}

    # ---- ItemKNN
    if "itemknn" in cfg.baselines:
        t0 = time.perf_counter()
        vals = {k: validation_ndcg(val_ctx.with_pop(B.ItemKNNScorer(val_ctx.train, n_users, n_items, k)), val)
                for k in B.ITEMKNN_GRID[:B.TUNING_BUDGET]}
        best_k = max(vals, key=vals.get)
        tuned["itemknn"] = {"k": best_k, "val": vals}
        t1 = time.perf_counter()
        add("itemknn", test_ctx.with_pop(B.ItemKNNScorer(test_ctx.train, n_users, n_items, best_k)), test_ctx)
        timings["itemknn"] = {"tune_s": t1 - t0, "fit_s": time.perf_counter() - t1}

    # ---- EASE (also kgrec's residual)
    # tuned even when the EASE row is not requested: kgrec's residual uses the same λ
    t0 = time.perf_counter()
    vals, ease_by_lam = {}, {}
    for lam in B.EASE_GRID[:B.TUNING_BUDGET]:
        ease_by_lam[lam] = B.EASEScorer(val_ctx.train, n_users, n_items, lam, cfg.ease_max_items)
        vals[lam] = validation_ndcg(val_ctx.with_pop(ease_by_lam[lam]), val)
    best_lam = max(vals, key=vals.get)
    tuned["ease"] = {"lambda": best_lam, "val": vals, "max_items": cfg.ease_max_items}
    ease_val = ease_by_lam[best_lam]
    del ease_by_lam
    t1 = time.perf_counter()
    ease_test = B.EASEScorer(test_ctx.train, n_users, n_items, best_lam, cfg.ease_max_items)
    timings["ease"] = {"tune_s": t1 - t0, "fit_s": time.perf_counter() - t1}
    if "ease" in cfg.baselines:
        add("ease", test_ctx.with_pop(ease_test), test_ctx)

    # ---- LightGCN (PyG, ids only)
    if "lightgcn" in cfg.baselines:
        t0 = time.perf_counter()
        m = train_lightgcn(val_ctx.train.user, val_ctx.train.item, n_users, n_items, cfg.lightgcn,
                           validate=lambda s: validation_ndcg(val_ctx.with_pop(s), val))
        best_epoch = m.history.best_epoch
        t1 = time.perf_counter()
        m = train_lightgcn(test_ctx.train.user, test_ctx.train.item, n_users, n_items, cfg.lightgcn,
                           epochs=best_epoch)
        tuned["lightgcn"] = {"epochs": best_epoch, "val": m.history.best_val}
        timings["lightgcn"] = {"tune_s": t1 - t0, "fit_s": time.perf_counter() - t1,
                               "s_per_epoch": m.history.seconds_per_epoch, "epochs": m.history.epochs_run}
        add("lightgcn", test_ctx.with_pop(m.scorer()), test_ctx)

    # ---- text-only
    text_val = text_test = None
    if x_item is not None:
        t0 = time.perf_counter()
        vals = {}
        for recent in B.TEXT_GRID[:B.TUNING_BUDGET]:
            s = B.TextSimilarityScorer(x_item, val_ctx.train, n_users, recent=recent, **text_kw)
            vals[recent] = validation_ndcg(val_ctx.with_pop(s), val)
        best_recent = max(vals, key=lambda r: vals[r])
        tuned["text"] = {"recent": best_recent, "val": {str(k): v for k, v in vals.items()}}
        text_val = B.TextSimilarityScorer(x_item, val_ctx.train, n_users, recent=best_recent, **text_kw)
        text_test = B.TextSimilarityScorer(x_item, test_ctx.train, n_users, recent=best_recent, **text_kw)
        timings["text"] = {"tune_s": time.perf_counter() - t0}
        if "text" in cfg.baselines:
            add("text", test_ctx.with_pop(text_test), test_ctx)

    # ---- kgrec and ablations
    variants = {"kgrec": (cfg.kgrec, True)}
    ab = {
        "no_residual": (cfg.kgrec, False),
        "no_text": (cfg.kgrec.model_copy(update={"use_text": False}), True),
        "no_entities": (cfg.kgrec.model_copy(update={"use_entities": False}), True),
        "no_gnn": (cfg.kgrec.model_copy(update={"num_layers": 0}), True),
        "no_id_dropout": (cfg.kgrec.model_copy(update={"id_dropout": 0.0}), True),
    }
    for a in cfg.ablations:
        variants[f"kgrec-{a}"] = ab[a]
    fitted: dict[tuple, tuple] = {}
    for name, (tcfg, residual) in variants.items():
        t0 = time.perf_counter()
        key = tcfg.model_dump_json()
        if key not in fitted:
            m_val = train_kgrec(val_ctx.graph, features, tcfg,
                                validate=lambda s: validation_ndcg(s, val))
            t1 = time.perf_counter()
            m_test = train_kgrec(test_ctx.graph, features, tcfg, epochs=m_val.history.best_epoch)
            fitted[key] = (m_val, m_test, t1 - t0, time.perf_counter() - t1)
        m_val, m_test, tune_s, fit_s = fitted[key]
        new_val = ~np.isin(np.arange(n_items), val_ctx.train.item)
        new_test = ~np.isin(np.arange(n_items), test_ctx.train.item)
        beta, shift, table = tune_blend(m_val.scorer(), ease_val if residual else None, val,
                                        cfg.blend_betas, cfg.blend_shifts, new_items=new_val)
        primary = ResidualBlendScorer(m_test.scorer(), ease_test if residual else None, beta, new_test, shift)
        chain = test_ctx.kgrec_chain(primary, text_test)
        add(name, chain, test_ctx)
        tuned[name] = {"epochs": m_val.history.best_epoch, "val_gnn": m_val.history.best_val,
                       "beta": beta, "shift": shift, "val_blend": table[(beta, shift)]}
        timings[name] = {"tune_s": tune_s, "fit_s": fit_s, "s_per_epoch": m_test.history.seconds_per_epoch,
                         "epochs": m_test.history.epochs_run, "total_s": time.perf_counter() - t0}
        if name == "kgrec" and test_links is not None and test_links.shape[1]:
            z = m_test.embeddings()["user"]
            frames.append(pd.DataFrame([
                evaluate_people(people_scores_from_embeddings(z), links, test_links, n_users, "kgrec"),
                evaluate_people(CommonFriendsScorer(links, n_users), links, test_links, n_users, "common_friends"),
            ]))
    table = pd.concat(frames, ignore_index=True)
    return ComparisonResult(table, split.summary() | {"val_" + k: v for k, v in val.summary().items()},
                            tuned, timings)
