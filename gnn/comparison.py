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
* with ``validation_folds`` > 1, every choice above takes the mean of its validation NDCG@20
  over that many validation splits of the train part (early stopping stays on the first);
* kgrec's blend is chosen for validation all-slice NDCG@20 among the grid points that keep
  validation warm-slice NDCG@20 at least ``warm_guard`` × the tuned EASE's, with confidence
  ``warm_guard_z`` over the warm users (:class:`gnn.training.WarmGuard`; the issue: "do not
  give warm users away"), the line raised by the fall of the warm ratios an inner validation
  split foresees (``warm_drift``); the guard uses validation data only;
* kgrec additionally has post-hoc numbers that need no refit, chosen together on validation:
  which residual (EASE with the tuned λ, on histories weighted by recency with a half-life of
  ``recency_half_lives``), its weight (``blend_betas``) and the new-item shift
  (``blend_shifts``), and what new items get in the residual's place (the residual carried
  over through text neighbours, or the text-only similarity): 3 × 2 × 5 × 5 = 150 grid
  points of top-20 lists, no retraining. They are
  part of the model, so the ablation rows show kgrec without each of them.

What "kgrec" is in this table: the fused text + id heterogeneous GNN
(:mod:`gnn.models`), plus a residual of EASE scores on recency-weighted histories
(:meth:`gnn.baselines.EASEScorer.with_recency`), carried to new items through their text
neighbours (:class:`gnn.scoring.ContentTransferScorer`), combined by
:class:`gnn.scoring.ResidualBlendScorer`, behind the cold-start chain gnn → text → friends →
nearby → popular. ``ref:ease+recency`` is EASE given the same recency weighting: a reference
row, not a baseline, so that the gain that weighting brings is visible on its own.

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
from gnn.evaluation import (Interactions, ProtocolSplit, SplitConfig, metrics_frame, new_item_view,
                            rank_test_pairs, split_interactions, validation_ndcg, validation_user_ndcgs,
                            with_train_edges)
from gnn.fusion import NodeFeatures
from gnn.models import FOLLOWS
from gnn.scoring import (PEOPLE_WEIGHTS, ColdStartFallback, CommonFriendsScorer, ContentTransferScorer, FriendsScorer,
                         NearbyScorer, PeopleScorer, ResidualBlendScorer, SplitResidualScorer, evaluate_people,
                         people_scores_from_embeddings, split_links, tune_people_weight)
from gnn.training import WARM_GUARD_Z, TrainConfig, WarmGuard, train_kgrec, train_lightgcn, tune_blend

log = logging.getLogger(__name__)

BASELINES = ("popular", "itemknn", "ease", "lightgcn", "text")
ABLATIONS = ("no_residual", "no_recency", "no_transfer", "no_text", "no_entities", "no_gnn", "no_id_dropout")


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
    """Share of user–user links held out to evaluate people-to-follow (0: no social eval); the
    same share of the remaining links is hidden from the validation graphs."""
    people_weights: tuple[float, ...] = PEOPLE_WEIGHTS
    """Weights of the GNN's user-state similarity beside common friends tried for people to
    follow (:class:`gnn.scoring.PeopleScorer`; 0 = common friends alone)."""
    blend_betas: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
    """Residual weights tried for kgrec (relative to the GNN's, both standardised per user)."""
    blend_shifts: tuple[float, ...] = (-4.0, -2.0, -1.0, 0.0, 1.0)
    """New-item shifts tried for kgrec (in per-user standard deviations). The new items' residual
    is standardised over the new items alone, so the best of ``n`` of them sits near
    ``sqrt(2 ln n)`` deviations, about 3.8 for Amazon's 1,400 new items: only -4 keeps them out
    of lists that do not want them. With (-2, -1, 0, 1), Amazon's mean over five splits was
    0.997× EASE on all users and 0.977× on warm ones; with -4 added, 1.007× and 0.987×."""
    blend_slots: tuple[int, ...] = (0,)
    """Places at the end of each top-k list reserved for new items, tried for kgrec (see
    :func:`gnn.scoring.reserve_new_item_slots`). Off by default: chosen on validation from
    (0, 2, 4, 6, 8), they lifted cold-item recall on Amazon (0.034 → 0.091) and YFCC
    (0.54 → 0.74) but cost warm NDCG on test (×0.988 → ×0.950 and ×0.995 → ×0.974 of
    EASE), and MovieLens' validation chose none."""
    recency_half_lives: tuple[float | None, ...] = (None, 5.0, 20.0)
    """History half-lives (in items) tried for kgrec's residual; None = unweighted history."""
    transfer_ks: tuple[int, ...] = (10, 100)
    """Text neighbours through which a new item inherits the residual's scores, each tried on
    validation as its own residual (label ``new=transfer`` for 10, ``new=transfer<k>`` for the
    others). Which orders new items best depends on the data: ranking new items only, on the
    validation splits of seeds 42 and 43, 100 neighbours beat 10 on MovieLens and Last.fm and
    the two were mixed on Amazon and YFCC."""
    warm_guard: float | None = Field(0.98, gt=0)
    """kgrec's blend must keep validation warm-slice NDCG@20 at or above this share of the
    tuned EASE's (None: no guard, pure all-slice NDCG)."""
    warm_guard_z: float = Field(WARM_GUARD_Z, ge=0)
    """How sure the guard must be: the blend's per-user warm margin over ``warm_guard`` × EASE
    must stay non-negative this many standard errors below its mean
    (:class:`gnn.training.WarmGuard`; 0: the plain ratio of the means)."""
    warm_drift: bool = True
    """Raise the guard's line by the warm drift kgrec's blends show from an inner validation split
    (a validation split of the validation split) to the validation split, when it is negative
    (:func:`gnn.training.warm_drift`): on Last.fm every blend's warm ratio to EASE falls by about
    0.04 from validation to test, and the inner split shows the same fall one step earlier.
    Costs one more training per model."""
    reference_rows: bool = True
    """Also report ``ref:ease+recency``: EASE given the same recency weighting as kgrec's
    residual (a reference, not a baseline: it shows how much of kgrec's gain that weighting is)."""
    max_eval_users: int | None = Field(None, ge=1)
    """Evaluate (and tune on) a seeded uniform sample of at most this many test users, each
    still ranked against the whole catalogue (None: every test user). Training is unaffected."""
    validation_folds: int = Field(1, ge=1)
    """Validation splits drawn from the train part (:meth:`ProtocolSplit.validation` folds). Every
    tuned choice (ItemKNN's k, EASE's λ, the text window, kgrec's blend) takes the mean of its
    validation NDCG@20 over the folds; early stopping (LightGCN's and kgrec's epochs) uses the
    first fold only, and kgrec is trained on the others for that many epochs."""
    timing_rounds: int = Field(3, ge=0)
    """Alternating one-epoch runs of PyG LightGCN and kgrec on the test-time train graph, for a
    side-by-side seconds-per-epoch comparison under the same machine load (median reported)."""


@dataclass(eq=False)
class ComparisonResult:
    """The table plus how it was produced."""

    table: pd.DataFrame
    split: dict
    tuned: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)
    """Per model (kgrec, text): :func:`gnn.evaluation.new_item_view` on the test split."""


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


def mean_validation_ndcg(ctxs: list[_Context], scorers: list, slice_name: str = "all") -> float:
    """Mean validation NDCG@20 over validation folds, ``scorers[f]`` fitted on ``ctxs[f]``'s train
    part, each behind its popularity fallback (the tuning rule every model shares)."""
    return float(np.mean([validation_ndcg(c.with_pop(s), c.split, slice_name) for c, s in zip(ctxs, scorers)]))


def warm_guard(cfg: ComparisonConfig, ctxs: list[_Context], ease: list) -> WarmGuard | None:
    """kgrec's warm guard against the tuned EASE (``ease[f]`` fitted on ``ctxs[f]``), behind its
    popularity fallback as EASE is tuned; None when ``cfg.warm_guard`` is None."""
    if cfg.warm_guard is None:
        return None
    refs = tuple(validation_user_ndcgs(c.with_pop(e), c.split, ("warm",))["warm"] for c, e in zip(ctxs, ease))
    return WarmGuard(refs, cfg.warm_guard, cfg.warm_guard_z)


@dataclass(eq=False)
class InnerSplit:
    """A validation split of the validation split's train part, for the warm guard's drift
    (:func:`gnn.training.warm_drift`): EASE and text fitted there with the tuned settings, and
    EASE's per-user warm NDCG@20 (the guard's reference on it)."""

    ctx: _Context
    ease: object
    text: object | None
    new: np.ndarray
    reference: np.ndarray

    @classmethod
    def of(cls, data, val: ProtocolSplit, links, item_pos, user_pos, cfg: ComparisonConfig, lam: float,
           x_item=None, recent=None, text_kw: dict | None = None) -> InnerSplit:
        ctx = _Context(data, val.validation(), links, item_pos, user_pos)
        ease = B.EASEScorer(ctx.train, ctx.n_users, ctx.n_items, lam, cfg.ease_max_items)
        text = None if x_item is None else B.TextSimilarityScorer(x_item, ctx.train, ctx.n_users, recent=recent,
                                                                  **(text_kw or {}))
        ref = validation_user_ndcgs(ctx.with_pop(ease), ctx.split, ("warm",))["warm"]
        return cls(ctx, ease, text, ~np.isin(np.arange(ctx.n_items), ctx.train.item), ref)

    def fold(self, model, residuals: dict) -> tuple:
        """:func:`gnn.training.tune_blend`'s ``inner`` for ``model`` (trained on ``ctx.graph``)."""
        return model.scorer(), residuals, self.ctx.split, self.new, self.reference


FULL_MODEL = {"residual": True, "recency": True, "transfer": True, "text_layer": True}
"""The parts of kgrec beyond the GNN; the ablations switch them off one at a time."""


def residual_candidates(ease, new: np.ndarray, x_item, has_text_item, text, cfg: ComparisonConfig,
                        opts: dict = FULL_MODEL) -> dict:
    """kgrec's candidate residuals by label: EASE on recency-weighted histories, with new items
    scored by the residual carried over through text neighbours or by text similarity."""
    if not opts["residual"]:
        return {"none": None}
    out = {}
    transfers: dict[int, ContentTransferScorer] = {}        # one neighbour search per k
    for h in (cfg.recency_half_lives if opts["recency"] else (None,)):
        r = ease.with_recency(h)
        if opts["transfer"] and x_item is not None:
            for k in cfg.transfer_ks:
                t = transfers[k].on(r) if k in transfers else ContentTransferScorer(r, x_item, new, has_text_item, k)
                transfers.setdefault(k, t)
                out[f"half_life={h},new=transfer{'' if k == 10 else k}"] = SplitResidualScorer(r, t, new)
            if text is not None:
                out[f"half_life={h},new=text"] = SplitResidualScorer(r, text, new)
        else:
            out[f"half_life={h}"] = r
    return out


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
    folds = [split.validation(f).sample_test_users(cfg.max_eval_users, cfg.split.seed + 1 + 1000 * f)
             for f in range(cfg.validation_folds)]
    val = folds[0]
    summary = split.summary()
    split = split.sample_test_users(cfg.max_eval_users, cfg.split.seed)
    summary["evaluated_users"] = int(len(np.unique(split.test.user)))
    summary["evaluated_pairs"] = int(len(split.test))
    item_pos, user_pos = _node_pos(data, "item"), _node_pos(data, "user")

    links, test_links = _follow_links(data, cfg)
    # validation hides links from the training links as the test hides them from all links, so
    # the people-to-follow weight is chosen by a model that never saw the links it must find
    val_links, val_held = validation_links(links, cfg)
    log.info("split: %s", summary)
    test_ctx = _Context(data, split, links, item_pos, user_pos)
    val_ctxs = [_Context(data, v, val_links, item_pos, user_pos) for v in folds]
    val_ctx = val_ctxs[0]

    def on_val(scorers: list, slice_name: str = "all") -> float:
        return mean_validation_ndcg(val_ctxs, scorers, slice_name)

    frames, tuned, timings, diagnostics = [], {}, {}, {}
    new_test = ~np.isin(np.arange(n_items), test_ctx.train.item)
    x_item = features.x_item if features is not None else None
    text_kw = {}
    if features is not None:
        text_kw = dict(x_user=features.x_user, has_text_user=features.has_text_user,
                       has_text_item=features.has_text_item)

    def add(name: str, scorer, ctx: _Context, view_new: bool = False) -> None:
        t = time.perf_counter()
        ranked = rank_test_pairs(scorer, ctx.split)
        frame = metrics_frame(ranked, ctx.split, name)
        frames.append(frame)
        if view_new:
            diagnostics[name] = new_item_view(scorer, ctx.split, new_test, ranked=ranked)
        row = frame.set_index("slice").loc["all"]
        log.info("%s: test NDCG@20 %.4f recall@20 %.4f (scored in %.1fs; tuned %s)", name, row["ndcg@20"],
                 row["recall@20"], time.perf_counter() - t, tuned.get(name, {}))

    # ---- popularity
    if "popular" in cfg.baselines:
        t0 = time.perf_counter()
        add("popular", test_ctx.pop, test_ctx)
        timings["popular"] = {"fit_s": time.perf_counter() - t0}

    # ---- ItemKNN
    if "itemknn" in cfg.baselines:
        t0 = time.perf_counter()
        grid = B.ITEMKNN_GRID[:B.TUNING_BUDGET]
        widest = [B.ItemKNNScorer(c.train, n_users, n_items, max(grid)) for c in val_ctxs]     # truncated per k
        vals = {k: on_val([w.with_k(k) for w in widest]) for k in grid}
        best_k = max(vals, key=vals.get)
        tuned["itemknn"] = {"k": best_k, "val": vals}
        t1 = time.perf_counter()
        add("itemknn", test_ctx.with_pop(B.ItemKNNScorer(test_ctx.train, n_users, n_items, best_k)), test_ctx)
        timings["itemknn"] = {"tune_s": t1 - t0, "fit_s": time.perf_counter() - t1}

    # ---- EASE (also kgrec's residual)
    # tuned even when the EASE row is not requested: kgrec's residual uses the same λ
    t0 = time.perf_counter()
    vals, ease_vals = {}, None
    for lam in B.EASE_GRID[:B.TUNING_BUDGET]:
        fits = [B.EASEScorer(c.train, n_users, n_items, lam, cfg.ease_max_items) for c in val_ctxs]
        vals[lam] = on_val(fits)
        if vals[lam] == max(vals.values()):       # keep only the best so far (dense item × item)
            ease_vals = fits
        del fits
    best_lam = max(vals, key=vals.get)
    tuned["ease"] = {"lambda": best_lam, "val": vals, "max_items": cfg.ease_max_items}
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
        best_epoch, best_val = m.history.best_epoch, m.history.best_val
        t1 = time.perf_counter()
        m = train_lightgcn(test_ctx.train.user, test_ctx.train.item, n_users, n_items, cfg.lightgcn,
                           epochs=best_epoch)
        tuned["lightgcn"] = {"epochs": best_epoch, "val": best_val}
        timings["lightgcn"] = {"tune_s": t1 - t0, "fit_s": time.perf_counter() - t1,
                               "s_per_epoch": m.history.seconds_per_epoch, "epochs": m.history.epochs_run}
        add("lightgcn", test_ctx.with_pop(m.scorer()), test_ctx)

    # ---- text-only
    text_vals, text_test, best_recent = [None] * len(folds), None, None
    if x_item is not None:
        t0 = time.perf_counter()
        vals = {}
        for recent in B.TEXT_GRID[:B.TUNING_BUDGET]:
            vals[recent] = on_val([B.TextSimilarityScorer(x_item, c.train, n_users, recent=recent, **text_kw)
                                   for c in val_ctxs])
        best_recent = max(vals, key=lambda r: vals[r])
        tuned["text"] = {"recent": best_recent, "val": {str(k): v for k, v in vals.items()}}
        text_vals = [B.TextSimilarityScorer(x_item, c.train, n_users, recent=best_recent, **text_kw)
                     for c in val_ctxs]
        text_test = B.TextSimilarityScorer(x_item, test_ctx.train, n_users, recent=best_recent, **text_kw)
        timings["text"] = {"tune_s": time.perf_counter() - t0}
        if "text" in cfg.baselines:
            add("text", test_ctx.with_pop(text_test), test_ctx, view_new=True)

    # ---- kgrec and ablations
    has_text_item = features.has_text_item if features is not None else None
    new_vals = [~np.isin(np.arange(n_items), c.train.item) for c in val_ctxs]

    def residuals(ease, new, opts: dict, text) -> dict:
        return residual_candidates(ease, new, x_item, has_text_item, text, cfg, opts)

    full = FULL_MODEL
    variants = {"kgrec": (cfg.kgrec, full)}
    ab = {
        "no_residual": (cfg.kgrec, full | {"residual": False}),
        "no_recency": (cfg.kgrec, full | {"recency": False}),
        "no_transfer": (cfg.kgrec, full | {"transfer": False}),
        "no_text": (cfg.kgrec.model_copy(update={"use_text": False}),
                    full | {"transfer": False, "text_layer": False}),
        "no_entities": (cfg.kgrec.model_copy(update={"use_entities": False}), full),
        "no_gnn": (cfg.kgrec.model_copy(update={"num_layers": 0}), full),
        "no_id_dropout": (cfg.kgrec.model_copy(update={"id_dropout": 0.0}), full),
    }
    for a in cfg.ablations:
        if a not in ab:
            raise ValueError(f"unknown ablation {a!r}; expected one of {sorted(ab)}")
        variants[f"kgrec-{a}"] = ab[a]
    guard = warm_guard(cfg, val_ctxs, ease_vals)
    if guard is not None:
        tuned["warm_guard"] = {"share": guard.share, "z": guard.z,
                               "val_ease_warm_ndcg": float(np.mean([r.mean() for r in guard.reference]))}
    inner = None
    if guard is not None and cfg.warm_drift and variants:
        # a validation split of the validation split: how the warm ratios move as train grows
        inner = InnerSplit.of(data, val, val_links, item_pos, user_pos, cfg, best_lam, x_item, best_recent, text_kw)
    fitted: dict[str, tuple] = {}
    for name, (tcfg, opts) in variants.items():
        t0 = time.perf_counter()
        key = tcfg.model_dump_json()
        text_layer_val = text_vals[0] if opts["text_layer"] else None
        text_layer_test = text_test if opts["text_layer"] else None
        if key not in fitted:
            # early stopping sees the model as it serves: behind its cold-start fallback
            m_val = train_kgrec(val_ctx.graph, features, tcfg,
                                validate=lambda s: validation_ndcg(val_ctx.kgrec_chain(s, text_layer_val), val))
            m_vals = [m_val] + [train_kgrec(c.graph, features, tcfg, epochs=m_val.history.best_epoch)
                                for c in val_ctxs[1:]]
            m_inner = None if inner is None else train_kgrec(inner.ctx.graph, features, tcfg,
                                                              epochs=m_val.history.best_epoch)
            t1 = time.perf_counter()
            m_test = train_kgrec(test_ctx.graph, features, tcfg, epochs=m_val.history.best_epoch)
            fitted[key] = (m_vals, m_inner, m_test, t1 - t0, time.perf_counter() - t1)
        m_vals, m_inner, m_test, tune_s, fit_s = fitted[key]
        m_val = m_vals[0]
        t2 = time.perf_counter()
        per_fold = [(m.scorer(), residuals(e, nv, opts, tv), c.split, nv)
                    for m, e, nv, tv, c in zip(m_vals, ease_vals, new_vals, text_vals, val_ctxs)]
        inner_fold = None if inner is None else inner.fold(m_inner, residuals(inner.ease, inner.new, opts, inner.text))
        label, beta, shift, slots, table, drift = tune_blend(
            *per_fold[0][:3], cfg.blend_betas, cfg.blend_shifts, new_items=per_fold[0][3], guard=guard,
            slots=cfg.blend_slots, extra_folds=per_fold[1:], inner=inner_fold)
        blend_s = time.perf_counter() - t2
        res_test = residuals(ease_test, new_test, opts, text_test)[label]
        primary = ResidualBlendScorer(m_test.scorer(), res_test, beta, new_test, shift, slots,
                                      list_k=cfg.split.k, seen=test_ctx.matrix)
        chain = test_ctx.kgrec_chain(primary, text_layer_test)
        tuned[name] = {"epochs": m_val.history.best_epoch, "val_gnn": m_val.history.best_val,
                       "residual": label, "beta": beta, "shift": shift, "slots": slots,
                       "val_blend": table[(label, beta, shift, slots)], "grid_points": len(table),
                       "validation_folds": len(folds), "warm_drift": drift}
        add(name, chain, test_ctx, view_new=name == "kgrec")
        timings[name] = {"tune_s": tune_s, "fit_s": fit_s, "blend_tune_s": blend_s,
                         "s_per_epoch": m_test.history.seconds_per_epoch,
                         "epochs": m_test.history.epochs_run, "total_s": time.perf_counter() - t0}
        if name == "kgrec" and test_links is not None and test_links.shape[1]:
            weight, wvals = tune_people_weight(val_links, val_held, n_users, m_val.embeddings()["user"],
                                               cfg.people_weights)
            tuned["people"] = {"weight": weight, "val": wvals}
            z = m_test.embeddings()["user"]
            frames.append(pd.DataFrame([
                evaluate_people(PeopleScorer(links, n_users, z, weight), links, test_links, n_users, "kgrec"),
                evaluate_people(people_scores_from_embeddings(z), links, test_links, n_users, "kgrec-gnn_only"),
                evaluate_people(CommonFriendsScorer(links, n_users), links, test_links, n_users, "common_friends"),
            ]))

    # ---- reference (not a baseline): EASE with the recency weighting kgrec's residual uses
    if cfg.reference_rows and "ease" in cfg.baselines:
        vals = {h: on_val([e.with_recency(h) for e in ease_vals]) for h in cfg.recency_half_lives[:B.TUNING_BUDGET]}
        h = max(vals, key=vals.get)
        tuned["ref:ease+recency"] = {"half_life": h, "val": {str(k): v for k, v in vals.items()}}
        add("ref:ease+recency", test_ctx.with_pop(ease_test.with_recency(h)), test_ctx)

    if cfg.timing_rounds and "lightgcn" in cfg.baselines and "kgrec" in variants:
        timings["side_by_side"] = time_epochs(test_ctx, features, cfg, cfg.timing_rounds)
    table = pd.concat(frames, ignore_index=True)
    return ComparisonResult(table, summary | {"val_" + k: v for k, v in val.summary().items()},
                            tuned, timings, diagnostics)


def _follow_links(data, cfg: ComparisonConfig) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(training links, held-out links)`` of the follow graph (None where there are none);
    ``cfg.people_share`` of them are held out to evaluate people to follow."""
    if FOLLOWS not in data.edge_types or data[FOLLOWS].edge_index.shape[1] == 0:
        return None, None
    links = data[FOLLOWS].edge_index.cpu().numpy()
    if cfg.people_share > 0:
        return split_links(links, cfg.people_share, cfg.split.seed)
    return links, None


def validation_links(links: np.ndarray | None,
                     cfg: ComparisonConfig) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(links the validation graphs keep, links they hide)``: the test's hold-out rule applied
    to the links a model trains with (seed + 1). Without links or a share, nothing is hidden."""
    if links is None or not links.shape[1] or cfg.people_share <= 0:
        return links, None
    return split_links(links, cfg.people_share, cfg.split.seed + 1)


def epoch_timing(data, features: NodeFeatures | None, config: ComparisonConfig | None = None) -> dict:
    """The side-by-side epoch timing of :func:`compare_models` alone (no tuning, no evaluation):
    the same split and training graph, ``config.timing_rounds`` alternating epochs of each."""
    cfg = config or ComparisonConfig()
    n_users, n_items = int(data["user"].num_nodes), int(data["item"].num_nodes)
    inter = Interactions.from_hetero(data).dedupe()
    split = split_interactions(inter, n_users, n_items, cfg.split)
    ctx = _Context(data, split, _follow_links(data, cfg)[0], _node_pos(data, "item"), _node_pos(data, "user"))
    return time_epochs(ctx, features, cfg, max(1, cfg.timing_rounds))


def time_epochs(ctx: _Context, features: NodeFeatures | None, cfg: ComparisonConfig, rounds: int) -> dict:
    """Median seconds per epoch of PyG LightGCN and kgrec, alternating one epoch of each.

    Alternating makes both see the same machine load (the benchmark box is shared), which a
    comparison of two separate training runs cannot promise.
    """
    lg, kg = [], []
    for _ in range(rounds):
        m = train_lightgcn(ctx.train.user, ctx.train.item, ctx.n_users, ctx.n_items, cfg.lightgcn, epochs=1)
        lg.append(m.history.seconds)
        k = train_kgrec(ctx.graph, features, cfg.kgrec, epochs=1)
        kg.append(k.history.seconds)
    lg_s, kg_s = float(np.median(lg)), float(np.median(kg))
    return {"lightgcn_s_per_epoch": lg_s, "kgrec_s_per_epoch": kg_s, "ratio": kg_s / lg_s,
            "rounds": rounds, "batch_size": cfg.kgrec.batch_size}
