"""Production fit: kgrec trained on every interaction, ranking the catalogue for every user.

The evaluation (:mod:`gnn.comparison`) holds out a test part; a refresh publishes for real, so
here the model sees all interactions. Its few choices (epochs, EASE λ for the residual, the blend
weight and new-item shift, the text history window) are made the same way as in the evaluation:
on a protocol split carved from the data (cold users, cold items and a temporal hold-out), then
the model is refitted on everything with those choices. The ranking chain is the one evaluated:
fused GNN → text → friends (social) → nearby (travel) → popular.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from gnn import baselines as B
from gnn.comparison import ComparisonConfig, _Context, _node_pos
from gnn.evaluation import Interactions, ProtocolSplit, split_interactions, validation_ndcg
from gnn.fusion import NodeFeatures
from gnn.models import FOLLOWS
from gnn.scoring import ColdStartFallback, ContentTransferScorer, ResidualBlendScorer, recommend_all
from gnn.training import KGRecModel, TrainConfig, train_kgrec, tune_blend

log = logging.getLogger(__name__)


@dataclass(eq=False)
class FittedRecommender:
    """A kgrec model fitted on all interactions, with its cold-start chain.

    Attributes:
        chain: the ranking chain (reasons in :attr:`ColdStartFallback.reasons`).
        seen: user × item matrix of the interactions (never recommended back).
        model: the trained kgrec network (places new users from text and friends).
        popularity: interaction count per item.
        choices: what tuning chose (epochs, λ, blend weight, new-item shift, text window).
        timings: seconds per phase.
    """

    chain: ColdStartFallback
    seen: sp.csr_matrix
    model: KGRecModel
    popularity: np.ndarray
    features: NodeFeatures | None
    item_pos: np.ndarray | None
    choices: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)

    def recommend_all(self, k: int = 20, batch_size: int = 512) -> pd.DataFrame:
        """Top-``k`` unseen items for every user: ``user_idx, rank, item_idx, score, reason``."""
        return recommend_all(self.chain, self.seen, k=k, batch_size=batch_size)

    def save(self, folder: str | Path, vocab: dict[str, list[str]]) -> Path:
        """Everything the API needs to answer new users without retraining."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        z = self.model.embeddings()
        payload = {
            "vocab": {k: list(v) for k, v in vocab.items()},
            "z_user": z["user"],
            "z_item": z["item"],
            "user_ok": self.model.user_ok,
            "item_ok": self.model.item_ok,
            "popularity": self.popularity,
            "x_item": None if self.features is None else self.features.x_item,
            "has_text_item": None if self.features is None else self.features.has_text_item,
            "item_pos": self.item_pos,
            "choices": self.choices,
        }
        torch.save(payload, folder / "serving.pt")
        torch.save(self.model, folder / "kgrec_model.pt")
        return folder


def _residuals(ease, new_items: np.ndarray, features: NodeFeatures | None, cfg: ComparisonConfig) -> dict:
    """The residual candidates kgrec is evaluated with (see :func:`gnn.comparison.compare_models`):
    EASE on recency-weighted histories, carried to new items through their text neighbours."""
    out = {}
    for h in cfg.recency_half_lives:
        r = ease.with_recency(h)
        if features is not None:
            r = ContentTransferScorer(r, features.x_item, new_items, features.has_text_item, cfg.transfer_k)
        out[f"half_life={h}"] = r
    return out


def fit_recommender(data, features: NodeFeatures | None, config: TrainConfig | None = None,
                    comparison: ComparisonConfig | None = None) -> FittedRecommender:
    """Tune on a protocol split of all interactions, then refit everything on all of them.

    Args:
        data: the exported HeteroData with every interaction.
        features: text embeddings aligned with the graph (None: ids only).
        config: kgrec's training configuration (``epochs`` is the early-stopping ceiling).
        comparison: the evaluation's settings (split, EASE cap, blend grid, recency, transfer);
            the published model makes its choices with exactly these.
    """
    cfg = config or TrainConfig()
    cmp = comparison or ComparisonConfig()
    sp_cfg = cmp.split.model_copy(update={"seed": cfg.seed + 1})
    n_users, n_items = int(data["user"].num_nodes), int(data["item"].num_nodes)
    inter = Interactions.from_hetero(data).dedupe()
    item_pos, user_pos = _node_pos(data, "item"), _node_pos(data, "user")
    links = None
    if FOLLOWS in data.edge_types and data[FOLLOWS].edge_index.shape[1] > 0:
        links = data[FOLLOWS].edge_index.cpu().numpy()
    timings, choices = {}, {}
    text_kw = {}
    if features is not None:
        text_kw = dict(x_user=features.x_user, has_text_user=features.has_text_user,
                       has_text_item=features.has_text_item)

    # ---- choices, on a protocol split of all interactions
    t0 = time.perf_counter()
    tune = split_interactions(inter, n_users, n_items, sp_cfg)
    ctx = _Context(data, tune, links, item_pos, user_pos)
    text_tune, recent = None, None
    if features is not None:
        vals = {r: validation_ndcg(ctx.with_pop(B.TextSimilarityScorer(features.x_item, ctx.train, n_users,
                                                                       recent=r, **text_kw)), tune)
                for r in B.TEXT_GRID[:B.TUNING_BUDGET]}
        recent = max(vals, key=lambda r: vals[r])
        choices["text_recent"] = recent
        text_tune = B.TextSimilarityScorer(features.x_item, ctx.train, n_users, recent=recent, **text_kw)
    m_tune = train_kgrec(ctx.graph, features, cfg,
                         validate=lambda s: validation_ndcg(ctx.kgrec_chain(s, text_tune), tune))
    choices["epochs"] = int(m_tune.history.best_epoch or cfg.epochs)
    lam_val = {}
    for lam in B.EASE_GRID[:B.TUNING_BUDGET]:
        lam_val[lam] = validation_ndcg(ctx.with_pop(B.EASEScorer(ctx.train, n_users, n_items, lam,
                                                                 cmp.ease_max_items)), tune)
    lam = max(lam_val, key=lam_val.get)
    choices["ease_lambda"] = lam
    ease_tune = B.EASEScorer(ctx.train, n_users, n_items, lam, cmp.ease_max_items)
    new_tune = ~np.isin(np.arange(n_items), ctx.train.item)
    label, beta, shift, _ = tune_blend(m_tune.scorer(), _residuals(ease_tune, new_tune, features, cmp), tune,
                                       cmp.blend_betas, cmp.blend_shifts, new_items=new_tune)
    choices.update(residual=label, beta=beta, shift=shift)
    del ease_tune, m_tune
    timings["tune_s"] = time.perf_counter() - t0

    # ---- the published model, on everything
    t1 = time.perf_counter()
    empty = inter.select(np.zeros(len(inter), bool))
    full = ProtocolSplit(n_users, n_items, inter, empty, np.empty(0, np.int64), np.empty(0, np.int64), sp_cfg)
    fctx = _Context(data, full, links, item_pos, user_pos)
    model = train_kgrec(fctx.graph, features, cfg, epochs=choices["epochs"])
    new_items = ~np.isin(np.arange(n_items), inter.item)
    ease = B.EASEScorer(inter, n_users, n_items, lam, cmp.ease_max_items)
    residual = _residuals(ease, new_items, features, cmp)[label]
    primary = ResidualBlendScorer(model.scorer(), residual, beta, new_items, shift)
    text = None
    if features is not None:
        text = B.TextSimilarityScorer(features.x_item, inter, n_users, recent=recent, **text_kw)
    chain = fctx.kgrec_chain(primary, text)
    timings["fit_s"] = time.perf_counter() - t1
    log.info("kgrec fitted on %d interactions: %s (%.1fs tune, %.1fs fit)", len(inter), choices,
             timings["tune_s"], timings["fit_s"])
    return FittedRecommender(chain=chain, seen=inter.csr(n_users, n_items), model=model,
                             popularity=np.asarray(fctx.pop.counts, dtype=np.float64), features=features,
                             item_pos=item_pos, choices=choices, timings=timings)
