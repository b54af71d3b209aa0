"""The publishable recommender: kgrec tuned on a carve-out of all interactions, refitted on all.

:func:`fit_recommender` is what a refresh runs. It applies the evaluation protocol's
validation carve-out to *all* interactions (the same cold users, cold items and temporal
hold-out rules), chooses every setting there exactly as :func:`gnn.comparison.compare_models`
does for kgrec, refits on all interactions, and returns the cold-start chain
(gnn → text → friends → nearby → popular) with the interactions to exclude. Nothing here is
evaluated on held-out data: use :func:`gnn.comparison.compare_models` for that.

A refresh that has just evaluated passes the evaluation's choices as ``settings`` instead
(:func:`settings_from_evaluation`): the published model is then the measured one, refitted
on all interactions, and the tuning is not done twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from gnn import baselines as B
from gnn.comparison import (FULL_MODEL, ComparisonConfig, _Context, _node_pos, mean_validation_ndcg,
                            InnerSplit, residual_candidates, validation_links, warm_guard)
from gnn.evaluation import Interactions, ProtocolSplit, validation_ndcg
from gnn.fusion import NodeFeatures
from gnn.models import FOLLOWS
from gnn.scoring import (ColdStartFallback, PeopleScorer, ResidualBlendScorer, recommend_all, suggest_people,
                         tune_people_weight)
from gnn.training import KGRecModel, train_kgrec, tune_blend

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Recommender:
    """A fitted kgrec behind its cold-start chain.

    Attributes:
        chain: the scorer to publish from (:class:`gnn.scoring.ColdStartFallback`).
        seen: user × item interactions that are never recommended back.
        model: the trained GNN (for new-user inference: text, query, friends).
        tuned: every setting chosen on the validation carve-out.
        people: people to follow (domains with user links; None elsewhere).
        links: the user links ``people`` knows (never suggested again).
    """

    chain: ColdStartFallback
    seen: sp.csr_matrix
    model: KGRecModel
    tuned: dict = field(default_factory=dict)
    people: PeopleScorer | None = None
    links: np.ndarray | None = None

    def recommend(self, k: int = 20, users: np.ndarray | None = None) -> pd.DataFrame:
        """Top-k for every user (``user_idx, rank, item_idx, score, reason``)."""
        return recommend_all(self.chain, self.seen, users, k)

    def suggest_people(self, k: int = 20, users: np.ndarray | None = None) -> pd.DataFrame | None:
        """Top-k people to follow per user (``user_idx, rank, other_idx, score, reason``), or None
        where the domain has no user links."""
        if self.people is None:
            return None
        return suggest_people(self.people, self.links, users, k)

    def save(self, folder, vocab: dict, features: NodeFeatures | None = None, item_pos=None):
        """Write what the HTTP API needs to answer users it has never seen, without retraining.

        ``serving.pt`` holds plain tensors and arrays (final GNN states, masks, popularity,
        item text vectors, coordinates, the vocabularies); ``kgrec_model.pt`` the trained
        network, which places new users from text and friends.
        """
        from pathlib import Path

        import torch

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        z = self.model.embeddings()
        torch.save({
            "vocab": {k: list(v) for k, v in vocab.items()},
            "z_user": z["user"],
            "z_item": z["item"],
            "user_ok": self.model.user_ok,
            "item_ok": self.model.item_ok,
            "popularity": np.asarray(self.seen.sum(0)).ravel().astype(np.float64),
            "x_item": None if features is None else features.x_item,
            "has_text_item": None if features is None else features.has_text_item,
            "item_pos": item_pos,
            "choices": self.tuned,
        }, folder / "serving.pt")
        torch.save(self.model, folder / "kgrec_model.pt")
        return folder


SETTINGS = ("ease_lambda", "text_recent", "epochs", "residual", "beta", "shift", "slots", "people_weight")
"""What :func:`fit_recommender` chooses on validation, and what ``settings`` may hand it instead
(``slots`` may be left out: no places reserved for new items, as before it existed;
``people_weight`` too: :data:`DEFAULT_PEOPLE_WEIGHT` then, and only where there are user links)."""

OPTIONAL_SETTINGS = ("slots", "people_weight")

DEFAULT_PEOPLE_WEIGHT = 1.0
"""The people-to-follow weight of settings that predate it (an evaluation record without one)."""


def settings_from_evaluation(tuned: dict) -> dict:
    """The settings kgrec was evaluated with, from ``compare_models``' ``tuned`` record.

    A refresh that has just run the evaluation publishes the model it measured: the same
    λ, text recency, epoch count and blend, refitted on all interactions. Raises ``KeyError``
    naming the missing entry when the record lacks kgrec's choices.
    """
    kg = tuned["kgrec"]
    out = {"ease_lambda": float(tuned["ease"]["lambda"]), "epochs": int(kg["epochs"]),
           "residual": kg["residual"], "beta": float(kg["beta"]), "shift": float(kg["shift"]),
           "slots": int(kg.get("slots", 0))}
    if "text" in tuned:
        out["text_recent"] = tuned["text"]["recent"]
    if "people" in tuned:
        out["people_weight"] = float(tuned["people"]["weight"])
    return out


def fit_recommender(data, features: NodeFeatures | None, config: ComparisonConfig | None = None,
                    settings: dict | None = None) -> Recommender:
    """Tune on a validation carve-out of all interactions, refit on all, build the chain.

    Args:
        data: the exported HeteroData with every interaction.
        features: text embeddings aligned with the graph (None: ids and graph only).
        config: the same configuration the comparison uses (its ``split`` gives the carve-out).
        settings: the choices already made on validation (see :data:`SETTINGS` and
            :func:`settings_from_evaluation`); given, nothing is tuned again and only the
            refit on all interactions runs. ``text_recent`` is needed only with features.

    Returns:
        The fitted :class:`Recommender`.
    """
    cfg = config or ComparisonConfig()
    if settings is not None:
        return _refit(data, features, cfg, settings)
    full_ctx = _full_context(data, cfg)
    n_users, n_items = full_ctx.n_users, full_ctx.n_items
    item_pos, user_pos = _node_pos(data, "item"), _node_pos(data, "user")
    # the carve-out hides a share of the links too, for the people-to-follow weight
    val_links, held = validation_links(full_ctx.links, cfg)
    val_ctxs = [_Context(data, full_ctx.split.validation(f), val_links, item_pos, user_pos)
                for f in range(cfg.validation_folds)]
    val_ctx, val = val_ctxs[0], val_ctxs[0].split
    tuned: dict = {}

    def on_val(scorers: list, slice_name: str = "all") -> float:
        return mean_validation_ndcg(val_ctxs, scorers, slice_name)

    vals = {lam: on_val([B.EASEScorer(c.train, n_users, n_items, lam, cfg.ease_max_items) for c in val_ctxs])
            for lam in B.EASE_GRID[:B.TUNING_BUDGET]}
    lam = max(vals, key=vals.get)
    tuned["ease_lambda"] = lam
    text_vals, text_full, recent, kw = [None] * len(val_ctxs), None, None, {}
    x_item = has_text_item = None
    if features is not None:
        x_item, has_text_item = features.x_item, features.has_text_item
        kw = dict(x_user=features.x_user, has_text_user=features.has_text_user, has_text_item=has_text_item)
        tv = {r: on_val([B.TextSimilarityScorer(x_item, c.train, n_users, recent=r, **kw) for c in val_ctxs])
              for r in B.TEXT_GRID[:B.TUNING_BUDGET]}
        recent = max(tv, key=tv.get)
        tuned["text_recent"] = recent
        text_vals = [B.TextSimilarityScorer(x_item, c.train, n_users, recent=recent, **kw) for c in val_ctxs]
        text_full = B.TextSimilarityScorer(x_item, full_ctx.train, n_users, recent=recent, **kw)

    m_val = train_kgrec(val_ctx.graph, features, cfg.kgrec,
                        validate=lambda s: validation_ndcg(val_ctx.kgrec_chain(s, text_vals[0]), val))
    tuned["epochs"] = m_val.history.best_epoch
    if held is not None and held.shape[1]:
        tuned["people_weight"], _ = tune_people_weight(val_links, held, n_users, m_val.embeddings()["user"],
                                                       cfg.people_weights)
    m_vals = [m_val] + [train_kgrec(c.graph, features, cfg.kgrec, epochs=m_val.history.best_epoch)
                        for c in val_ctxs[1:]]
    ease_vals = [B.EASEScorer(c.train, n_users, n_items, lam, cfg.ease_max_items) for c in val_ctxs]
    guard = warm_guard(cfg, val_ctxs, ease_vals)
    folds = []
    for m, e, tv, c in zip(m_vals, ease_vals, text_vals, val_ctxs):
        new_val = ~np.isin(np.arange(n_items), c.train.item)
        folds.append((m.scorer(), residual_candidates(e, new_val, x_item, has_text_item, tv, cfg, FULL_MODEL),
                      c.split, new_val))
    inner_fold = None
    if guard is not None and cfg.warm_drift:
        inner = InnerSplit.of(data, val, val_links, item_pos, user_pos, cfg, lam, x_item, recent, kw)
        m_inner = train_kgrec(inner.ctx.graph, features, cfg.kgrec, epochs=m_val.history.best_epoch)
        inner_fold = inner.fold(m_inner, residual_candidates(inner.ease, inner.new, x_item, has_text_item, inner.text,
                                                             cfg, FULL_MODEL))
    label, beta, shift, slots, table, drift = tune_blend(
        *folds[0][:3], cfg.blend_betas, cfg.blend_shifts, new_items=folds[0][3], guard=guard,
        slots=cfg.blend_slots, extra_folds=folds[1:], inner=inner_fold)
    tuned.update(residual=label, beta=beta, shift=shift, slots=slots, val_ndcg=table[(label, beta, shift, slots)],
                 warm_drift=drift)
    log.info("recommender tuned on validation: %s", tuned)
    return _final_fit(full_ctx, features, cfg, tuned, text_full)


def _full_context(data, cfg: ComparisonConfig) -> _Context:
    n_users, n_items = int(data["user"].num_nodes), int(data["item"].num_nodes)
    inter = Interactions.from_hetero(data).dedupe()
    empty = inter.select(np.zeros(len(inter), bool))
    everything = ProtocolSplit(n_users, n_items, inter, empty, np.empty(0, np.int64), np.empty(0, np.int64), cfg.split)
    links = data[FOLLOWS].edge_index.cpu().numpy() if FOLLOWS in data.edge_types else None
    return _Context(data, everything, links, _node_pos(data, "item"), _node_pos(data, "user"))


def _refit(data, features: NodeFeatures | None, cfg: ComparisonConfig, settings: dict) -> Recommender:
    """Refit on all interactions with choices made elsewhere (the evaluation's, usually)."""
    missing = [k for k in SETTINGS if k not in settings and k not in OPTIONAL_SETTINGS
               and not (k == "text_recent" and features is None)]
    if missing:
        raise ValueError(f"fit_recommender: settings lack {missing}; expected {list(SETTINGS)}")
    full_ctx = _full_context(data, cfg)
    text_full = None
    if features is not None:
        text_full = B.TextSimilarityScorer(
            features.x_item, full_ctx.train, full_ctx.n_users, recent=settings["text_recent"],
            x_user=features.x_user, has_text_user=features.has_text_user, has_text_item=features.has_text_item)
    tuned = {k: settings[k] for k in SETTINGS if k in settings} | {"source": settings.get("source", "given")}
    log.info("recommender refitted with given settings: %s", tuned)
    return _final_fit(full_ctx, features, cfg, tuned, text_full)


def _final_fit(full_ctx: _Context, features: NodeFeatures | None, cfg: ComparisonConfig, tuned: dict,
               text_full) -> Recommender:
    n_users, n_items = full_ctx.n_users, full_ctx.n_items
    x_item = features.x_item if features is not None else None
    has_text_item = features.has_text_item if features is not None else None
    new_full = ~np.isin(np.arange(n_items), full_ctx.train.item)
    model = train_kgrec(full_ctx.graph, features, cfg.kgrec, epochs=int(tuned["epochs"]))
    ease_full = B.EASEScorer(full_ctx.train, n_users, n_items, float(tuned["ease_lambda"]), cfg.ease_max_items)
    residual = residual_candidates(ease_full, new_full, x_item, has_text_item, text_full, cfg,
                                   FULL_MODEL)[tuned["residual"]]
    primary = ResidualBlendScorer(model.scorer(), residual, float(tuned["beta"]), new_full, float(tuned["shift"]),
                                  int(tuned.get("slots", 0)), list_k=cfg.split.k, seen=full_ctx.matrix)
    people, links = None, full_ctx.links
    if links is not None and links.shape[1]:
        tuned.setdefault("people_weight", DEFAULT_PEOPLE_WEIGHT)
        people = PeopleScorer(links, n_users, model.embeddings()["user"], float(tuned["people_weight"]))
    return Recommender(full_ctx.kgrec_chain(primary, text_full), full_ctx.matrix, model, tuned, people, links)
