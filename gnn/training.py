"""Training: ``TrainConfig``, the kgrec trainer, the PyG LightGCN baseline trainer, blend tuning.

Both trainers are full-graph: every step propagates over the whole (train) graph and takes a
batch of positive (user, item) pairs. One *epoch* is one pass over the train pairs in batches
of ``batch_size``, for both models, so their seconds per epoch compare like for like.

Losses: sampled softmax over ``num_negatives`` items drawn uniformly (shared by the batch), or
BPR (Rendle et al. 2009, "BPR: Bayesian Personalized Ranking from Implicit Feedback", UAI) with
one negative per positive. By default negatives come only from items with train interactions:
an item nobody interacted with in train is exactly what a new item looks like, and using such
items as negatives teaches the model that "no interactions" means "bad", which buries new items
(on ml-latest-small validation: warm NDCG@20 0.121 with negatives from the whole catalogue,
0.134 from interacted items only). The text path is calibrated instead by id dropout, which
turns random positives and negatives into text-only nodes at every step.

The same code runs on CUDA and CPU (``device="auto"`` picks CUDA when present); on CUDA the
dense parts run under ``torch.autocast`` (bfloat16) while sparse products stay float32.

Mini-batch path for graphs that do not fit (decision): we do **not** build torch-sparse or
pyg-lib (source builds of 20+ minutes per torch version, no PyPI wheels, and nothing to cache
in CI). Full-graph training keeps one CSR adjacency plus ``O(n·dim)`` states per layer; at
``dim=64`` and 2 layers that is well under 1 GB for a few million nodes and tens of millions of
edges, which covers every domain we publish. When a graph outgrows that, the plan is our own
sampler in plain torch: take the batch's users and items, expand ``num_layers`` hops by
uniform sampling of at most ``fanout`` CSR neighbours per node (``crow``/``col`` slicing with
``torch.randint`` offsets), and run the same :class:`gnn.models.KGRecGNN` layers on the induced
sub-adjacency. It is not written yet because no dataset here needs it.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gnn.errors import TrainingError
from gnn.fusion import NODE_TYPES, NodeFeatures
from gnn.models import FOLLOWS, IN_CATEGORY, INTERACTED, MENTIONS, KGRecGNN, PropagationGraph, build_propagation_graph
from gnn.scoring import FusedScorer

log = logging.getLogger(__name__)

Validator = Callable[[Callable[[np.ndarray], np.ndarray]], float]
"""Takes a score function (users → ``[B, n_items]``) and returns the validation NDCG."""


class TrainConfig(BaseModel):
    """Hyper-parameters of the kgrec model and of the LightGCN baseline trainer.

    LightGCN uses ``dim``, ``num_layers``, ``lr``, ``l2``, ``batch_size``, ``epochs``,
    ``eval_every``, ``patience``, ``seed``, ``device`` and ``max_seconds``; the rest is kgrec's.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    dim: int = Field(64, ge=1)
    """Width of node states."""
    num_layers: int = Field(2, ge=0)
    """Propagation layers; 0 turns the GNN off (fused text + id towers only)."""
    loss: Literal["softmax", "bpr"] = "softmax"
    """Ranking loss: sampled softmax or BPR."""
    temperature: float = Field(0.2, gt=0)
    """Softmax temperature on dot-product logits."""
    num_negatives: int = Field(256, ge=1)
    """Uniform negatives shared by a batch (softmax loss)."""
    batch_size: int = Field(2048, ge=1)
    """Positive pairs per step."""
    lr: float = Field(0.005, gt=0)
    """Adam learning rate."""
    l2: float = Field(1e-4, ge=0)
    """L2 penalty on the layer-0 states of the batch's nodes (per pair)."""
    epochs: int = Field(60, ge=1)
    """Maximum epochs."""
    eval_every: int = Field(2, ge=1)
    """Validate every this many epochs."""
    patience: int = Field(4, ge=1)
    """Stop after this many validations without improvement; the best state is restored."""
    negatives: Literal["all", "interacted"] = "interacted"
    """Draw negatives from every item, or only from items with train interactions."""
    id_dropout: float = Field(0.3, ge=0, lt=1)
    """Share of users and items that, at each step, lose their id embedding *and* their
    interaction edges, i.e. are treated as new nodes (0 disables id dropout). Only nodes with
    side information (text, KG or social edges) are dropped: a new node without any would be
    served by the popularity fallback, so simulating it teaches the model nothing."""
    use_text: bool = True
    """Use text embeddings as node inputs (False: ids for users/items/entities/categories)."""
    use_entities: bool = True
    """Propagate item–entity mentions."""
    use_categories: bool = True
    """Propagate item–category membership."""
    use_social: bool = True
    """Propagate user–user links."""
    relation_weights: dict[str, float] = Field(default_factory=dict)
    """Scale per relation name (``interacted``, ``mentions``, ``in_category``, ``follows``)."""
    seed: int = 0
    """Seed for initialisation, batching, negatives and dropout."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to train; ``auto`` picks CUDA when available."""
    amp: bool = True
    """Mixed precision (bfloat16 autocast) on CUDA; ignored on CPU."""
    max_seconds: float | None = Field(None, gt=0)
    """Wall-clock budget; training stops at the first epoch end past it."""

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.eval_every > self.epochs:
            raise ValueError(f"eval_every ({self.eval_every}) must not exceed epochs ({self.epochs})")
        return self

    def relations(self) -> tuple[tuple[str, str, str], ...]:
        rel = [INTERACTED]
        if self.use_entities:
            rel.append(MENTIONS)
        if self.use_categories:
            rel.append(IN_CATEGORY)
        if self.use_social:
            rel.append(FOLLOWS)
        return tuple(rel)


def resolve_device(device: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but torch.cuda.is_available() is False; use 'auto' or 'cpu'")
    return torch.device(device)


def _seed_all(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    return torch.Generator().manual_seed(seed)


def _check_finite(loss: torch.Tensor, epoch: int, step: int) -> None:
    if not torch.isfinite(loss):
        raise TrainingError(
            f"training produced a non-finite loss ({loss.item()}) in epoch {epoch}, step {step}; "
            "lower lr or check the input features for NaN/inf", epoch=epoch)


@dataclass(eq=False)
class TrainHistory:
    """What happened during training."""

    epochs_run: int = 0
    best_epoch: int = 0
    best_val: float = float("nan")
    seconds: float = 0.0
    rows: list[dict] = field(default_factory=list)

    @property
    def seconds_per_epoch(self) -> float:
        return self.seconds / max(self.epochs_run, 1)


class _EarlyStopper:
    def __init__(self, patience: int) -> None:
        self.patience, self.best, self.bad, self.state, self.epoch = patience, -math.inf, 0, None, 0

    def update(self, value: float, epoch: int, module: torch.nn.Module) -> bool:
        """Record a validation value; True when training should stop."""
        if value > self.best:
            self.best, self.bad, self.epoch = value, 0, epoch
            self.state = copy.deepcopy({k: v.detach().cpu() for k, v in module.state_dict().items()})
        else:
            self.bad += 1
        return self.bad >= self.patience


# ----------------------------------------------------------------------------------------------
# kgrec

@dataclass(eq=False)
class KGRecModel:
    """A trained kgrec model with everything needed to score, known or new nodes.

    Attributes:
        module: the trained network.
        graph: the propagation graph it was trained on (train edges only).
        text: the node text inputs used ((x, has_text) per type), on the model's device.
        has_id: per id type, which nodes had train interactions (their id embeddings are used).
        user_ok / item_ok: nodes the model can place (text, train interactions or KG edges).
        config: the training configuration.
        history: epochs, timing and validation curve.
    """

    module: KGRecGNN
    graph: PropagationGraph
    text: dict
    has_id: dict
    user_ok: np.ndarray
    item_ok: np.ndarray
    config: TrainConfig
    history: TrainHistory

    @torch.no_grad()
    def layer_states(self) -> list[torch.Tensor]:
        """Node states after each layer 0..L (global node order of the graph)."""
        self.module.eval()
        h = self.module.layer0(self.text, self.has_id).float()
        out = [h]
        if self.module.num_layers and self.graph.values.numel():
            adj = self.graph.adjacency()
            for _ in range(self.module.num_layers):
                h = adj @ h
                out.append(h)
        return out

    @torch.no_grad()
    def embeddings(self) -> dict[str, torch.Tensor]:
        """Final states per node type (mean over layers), on CPU."""
        layers = self.layer_states()
        z = torch.stack(layers).mean(0) if self.module.num_layers and len(layers) > 1 else layers[0]
        return {t: v.cpu() for t, v in KGRecGNN.split(self.graph, z).items()}

    def scorer(self) -> FusedScorer:
        z = self.embeddings()
        return FusedScorer(z["user"], z["item"], self.user_ok, self.item_ok)

    @torch.no_grad()
    def embed_new_users(self, x_text: torch.Tensor | None, friends: list[list[int]] | None = None) -> torch.Tensor:
        """States for users that are not in the graph, from profile/query text and friends.

        The new user's layer ``l+1`` state sums its friends' layer-``l`` states with the same
        symmetric normalisation as the graph (the existing nodes are not updated, so this is
        exact for the new node's own state up to the friends' degrees growing by one).

        Args:
            x_text: ``[q, d]`` text embeddings (profile text or a free-text query), or None.
            friends: per new user, indices of existing users they link to.

        Returns:
            ``[q, dim]`` states comparable with item states by dot product.
        """
        enc = self.module.encoder
        q = len(x_text) if x_text is not None else len(friends or [])
        dev = self.graph.values.device
        if x_text is not None and enc.proj is not None and "user" in enc.text_types:
            h0 = enc.proj(torch.as_tensor(x_text, dtype=torch.float32, device=dev)).float()
        else:
            h0 = enc.blank["user"].detach().float().expand(q, -1).clone()
        L = self.module.num_layers
        if L == 0:
            return h0.cpu()
        layers = self.layer_states()
        off = self.graph.offsets["user"]
        deg = self.graph.degree("user").to(dev).float()
        w = float(self.config.relation_weights.get("follows", 1.0))
        acc, h = h0.clone(), h0
        for layer in range(L):
            nxt = torch.zeros_like(h0)
            for r, fr in enumerate(friends or [[] for _ in range(q)]):
                if not fr:
                    continue
                f = torch.as_tensor(fr, dtype=torch.long, device=dev)
                norm = w / torch.sqrt(len(fr) * (deg[f] + 1.0))
                nxt[r] = (layers[layer][off + f] * norm.unsqueeze(1)).sum(0)
            h = nxt
            acc = acc + h
        return (acc / (L + 1)).cpu()

    def score_new_users(self, x_text: torch.Tensor | None, friends: list[list[int]] | None = None) -> np.ndarray:
        """``[q, n_items]`` scores for new users (NaN for items the model cannot place)."""
        zu = self.embed_new_users(x_text, friends)
        zi = self.embeddings()["item"]
        s = (zu @ zi.T).double().numpy()
        s[:, ~self.item_ok] = np.nan
        return s


def _text_inputs(features: NodeFeatures | None, num_nodes: dict[str, int], use_text: bool,
                 device: torch.device) -> dict:
    text = {}
    if features is None or not use_text:
        return text
    for t in NODE_TYPES:
        got = features.text(t)
        if got is None or num_nodes.get(t, 0) == 0:
            continue
        x, m = got
        if len(x) != num_nodes[t]:
            raise ValueError(f"{t} features have {len(x)} rows but the graph has {num_nodes[t]} {t} nodes")
        if not torch.isfinite(x[m]).all():
            bad = torch.nonzero(~torch.isfinite(x[m]).all(1)).flatten()[:5].tolist()
            raise ValueError(f"{t} text features contain NaN/inf (first rows: {bad})")
        text[t] = (x.to(device), m.to(device))
    return text


def train_kgrec(data, features: NodeFeatures | None, config: TrainConfig | None = None,
                validate: Validator | None = None, epochs: int | None = None) -> KGRecModel:
    """Train the kgrec model on a (train-split) HeteroData.

    Args:
        data: HeteroData whose ``('user','interacted','item')`` edges are the training pairs.
        features: text embeddings aligned with the graph's node indices (None: ids only).
        config: hyper-parameters.
        validate: optional early-stopping callback; without it all ``epochs`` are run.
        epochs: overrides ``config.epochs`` (used to refit for the validated epoch count).

    Returns:
        The trained model, restored to its best validation state when ``validate`` is given.

    Raises:
        TrainingError: the loss became NaN/inf; the message names the epoch.
    """
    cfg = config or TrainConfig()
    n_epochs = epochs or cfg.epochs
    dev = resolve_device(cfg.device)
    gen = _seed_all(cfg.seed)
    graph = build_propagation_graph(data, cfg.relations(), cfg.relation_weights).to(dev)
    num_nodes = graph.num_nodes
    text = _text_inputs(features, num_nodes, cfg.use_text, dev)
    for t in ("entity", "category"):
        if t in text:     # KG nodes left out of the propagation never reach a score
            x, m = text[t]
            text[t] = (x, m & (graph.degree(t) > 0))
    text_dim = features.dim if features is not None and text else 0

    ei = data[INTERACTED].edge_index.cpu()
    users, items = ei[0].long(), ei[1].long()
    if len(users) == 0:
        raise ValueError("the graph has no ('user','interacted','item') edges to train on")
    has_id = {
        "user": (torch.bincount(users, minlength=num_nodes["user"]) > 0).to(dev),
        "item": (torch.bincount(items, minlength=num_nodes["item"]) > 0).to(dev),
    }
    id_types = ["user", "item"]
    for t in ("entity", "category"):
        if num_nodes[t] and t not in text:      # without text, KG nodes need ids to mean anything
            id_types.append(t)
            has_id[t] = torch.ones(num_nodes[t], dtype=torch.bool, device=dev)
    module = KGRecGNN(num_nodes, text_dim, cfg.dim, cfg.num_layers, tuple(text), tuple(id_types)).to(dev)

    deg_user = graph.degree("user").cpu().numpy()
    deg_item = graph.degree("item").cpu().numpy()
    has_text_user = text["user"][1].cpu().numpy() if "user" in text else np.zeros(num_nodes["user"], bool)
    has_text_item = text["item"][1].cpu().numpy() if "item" in text else np.zeros(num_nodes["item"], bool)
    user_ok = has_text_user | (deg_user > 0)
    item_ok = has_text_item | (deg_item > 0)
    side_user = torch.from_numpy(has_text_user) | (graph.degree("user", FOLLOWS).cpu() > 0)
    side_item = torch.from_numpy(has_text_item) | (graph.degree("item", MENTIONS).cpu() > 0)

    opt = torch.optim.Adam(module.parameters(), lr=cfg.lr)
    warm_items = (torch.arange(num_nodes["item"]) if cfg.negatives == "all"
                  else torch.nonzero(has_id["item"].cpu()).flatten())
    n_pairs = len(users)
    steps = math.ceil(n_pairs / cfg.batch_size)
    use_amp = dev.type == "cuda" and cfg.amp
    stopper = _EarlyStopper(cfg.patience)
    hist = TrainHistory()
    # global ids of each stored entry's two endpoints, to drop the edges of simulated new nodes
    ent_row, ent_col = graph.row, graph.col
    off_u, off_i = graph.offsets["user"], graph.offsets["item"]
    model = KGRecModel(module, graph, text, has_id, user_ok, item_ok, cfg, hist)
    t_start = time.perf_counter()
    for epoch in range(1, n_epochs + 1):
        module.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n_pairs, generator=gen)
        total = 0.0
        for step in range(steps):
            idx = perm[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            bu, bi = users[idx].to(dev), items[idx].to(dev)
            id_mask = dict(has_id)
            keep = None
            if cfg.id_dropout > 0:
                drop_u = (torch.rand(num_nodes["user"], generator=gen) < cfg.id_dropout) & side_user
                drop_i = (torch.rand(num_nodes["item"], generator=gen) < cfg.id_dropout) & side_item
                drop = torch.zeros(graph.size, dtype=torch.bool)
                drop[off_u:off_u + num_nodes["user"]] = drop_u
                drop[off_i:off_i + num_nodes["item"]] = drop_i
                drop = drop.to(dev)
                id_mask["user"] = has_id["user"] & ~drop_u.to(dev)
                id_mask["item"] = has_id["item"] & ~drop_i.to(dev)
                keep = ~(graph.is_interaction & (drop[ent_row] | drop[ent_col]))
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=use_amp):
                h0 = module.layer0(text, id_mask)
                z = KGRecGNN.split(graph, module.propagate(graph, h0, keep))
                zu, zi = z["user"][bu], z["item"][bi]
                if cfg.loss == "softmax":
                    neg = warm_items[torch.randint(len(warm_items), (cfg.num_negatives,), generator=gen)].to(dev)
                    pos = (zu * zi).sum(1, keepdim=True)
                    negs = zu @ z["item"][neg].T
                    negs = negs.masked_fill(neg.unsqueeze(0) == bi.unsqueeze(1), float("-inf"))
                    logits = torch.cat([pos, negs], 1).float() / cfg.temperature
                    loss = torch.nn.functional.cross_entropy(
                        logits, torch.zeros(len(bu), dtype=torch.long, device=dev))
                else:
                    neg = warm_items[torch.randint(len(warm_items), (len(bu),), generator=gen)].to(dev)
                    diff = ((zu * zi).sum(1) - (zu * z["item"][neg]).sum(1)).float()
                    loss = -torch.nn.functional.logsigmoid(diff).mean()
                if cfg.l2 > 0:
                    h0u = h0[off_u + bu].float()
                    h0i = h0[off_i + bi].float()
                    loss = loss + cfg.l2 * (h0u.pow(2).sum() + h0i.pow(2).sum()) / (2 * len(bu))
            _check_finite(loss.detach(), epoch, step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
        hist.seconds += time.perf_counter() - t0
        hist.epochs_run = epoch
        row = {"epoch": epoch, "loss": total / steps, "seconds": time.perf_counter() - t0}
        for p in module.parameters():
            if not torch.isfinite(p).all():
                raise TrainingError(f"parameters became NaN/inf in epoch {epoch}", epoch=epoch)
        stop = False
        if validate is not None and (epoch % cfg.eval_every == 0 or epoch == n_epochs):
            val = float(validate(model.scorer()))
            row["val_ndcg"] = val
            stop = stopper.update(val, epoch, module)
            log.info("kgrec epoch %d loss %.4f val %.4f (%.2fs/epoch)", epoch, row["loss"], val, row["seconds"])
        hist.rows.append(row)
        if stop or (cfg.max_seconds and time.perf_counter() - t_start > cfg.max_seconds):
            break
    if stopper.state is not None:
        module.load_state_dict(stopper.state)
        hist.best_epoch, hist.best_val = stopper.epoch, stopper.best
    else:
        hist.best_epoch = hist.epochs_run
    module.eval()
    return model


# ----------------------------------------------------------------------------------------------
# LightGCN baseline (PyG)

@dataclass(eq=False)
class LightGCNModel:
    """A trained PyG LightGCN and its training history."""

    module: torch.nn.Module
    edge_index: torch.Tensor
    n_users: int
    n_items: int
    user_ok: np.ndarray
    item_ok: np.ndarray
    history: TrainHistory

    @torch.no_grad()
    def scorer(self):
        from gnn.baselines import LightGCNScorer

        self.module.eval()
        emb = self.module.get_embedding(self.edge_index).cpu()
        return LightGCNScorer(emb[:self.n_users], emb[self.n_users:], self.user_ok, self.item_ok)


def train_lightgcn(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int,
                   config: TrainConfig | None = None, validate: Validator | None = None,
                   epochs: int | None = None) -> LightGCNModel:
    """Train ``torch_geometric.nn.models.LightGCN`` with BPR on id-only user–item edges.

    Same batching, negatives (uniform over items with train interactions), epochs and early
    stopping rules as :func:`train_kgrec`.
    """
    from torch_geometric.nn.models import LightGCN

    cfg = config or TrainConfig(loss="bpr")
    n_epochs = epochs or cfg.epochs
    dev = resolve_device(cfg.device)
    gen = _seed_all(cfg.seed)
    u = torch.as_tensor(users, dtype=torch.long)
    i = torch.as_tensor(items, dtype=torch.long)
    ei = torch.stack([torch.cat([u, i + n_users]), torch.cat([i + n_users, u])]).to(dev)
    module = LightGCN(n_users + n_items, cfg.dim, cfg.num_layers).to(dev)
    opt = torch.optim.Adam(module.parameters(), lr=cfg.lr)
    user_ok = np.bincount(u.numpy(), minlength=n_users) > 0
    item_ok = np.bincount(i.numpy(), minlength=n_items) > 0
    warm_items = torch.from_numpy(np.flatnonzero(item_ok))
    hist = TrainHistory()
    model = LightGCNModel(module, ei, n_users, n_items, user_ok, item_ok, hist)
    stopper = _EarlyStopper(cfg.patience)
    n_pairs, steps = len(u), math.ceil(len(u) / cfg.batch_size)
    t_start = time.perf_counter()
    for epoch in range(1, n_epochs + 1):
        module.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n_pairs, generator=gen)
        total = 0.0
        for step in range(steps):
            idx = perm[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            bu, bi = u[idx], i[idx]
            neg = warm_items[torch.randint(len(warm_items), (len(idx),), generator=gen)]
            eli = torch.stack([torch.cat([bu, bu]), torch.cat([bi, neg]) + n_users]).to(dev)
            rank = module(ei, eli)
            pos_r, neg_r = rank.chunk(2)
            loss = module.recommendation_loss(pos_r, neg_r, node_id=eli.unique(), lambda_reg=cfg.l2)
            _check_finite(loss.detach(), epoch, step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
        hist.seconds += time.perf_counter() - t0
        hist.epochs_run = epoch
        row = {"epoch": epoch, "loss": total / steps, "seconds": time.perf_counter() - t0}
        stop = False
        if validate is not None and (epoch % cfg.eval_every == 0 or epoch == n_epochs):
            val = float(validate(model.scorer()))
            row["val_ndcg"] = val
            stop = stopper.update(val, epoch, module)
            log.info("lightgcn epoch %d loss %.4f val %.4f (%.2fs/epoch)", epoch, row["loss"], val, row["seconds"])
        hist.rows.append(row)
        if stop or (cfg.max_seconds and time.perf_counter() - t_start > cfg.max_seconds):
            break
    if stopper.state is not None:
        module.load_state_dict(stopper.state)
        hist.best_epoch, hist.best_val = stopper.epoch, stopper.best
    else:
        hist.best_epoch = hist.epochs_run
    module.eval()
    return model


# ----------------------------------------------------------------------------------------------
# blend tuning

WARM_GUARD_Z = 1.645
"""Default confidence of :class:`WarmGuard` (a one-sided 95 % normal bound)."""


@dataclass(frozen=True)
class WarmGuard:
    """Which blends may serve the users the id models already serve well.

    A blend passes when its validation warm-slice NDCG@k is, with confidence, at least
    ``share`` × a reference model's (the tuned EASE) on the same warm users: the lower
    confidence bound of the mean per-user difference ``blend_u − share · reference_u`` (a
    one-sided normal bound, ``z`` standard errors below the mean) must not be negative. With
    ``z = 0`` this is the plain ratio of the two means. Several validation folds average their
    means; their variances add.

    Why a bound and not the ratio: the grid has hundreds of points, and the one with the best
    all-slice NDCG that just clears the ratio on validation is, by selection, the one whose warm
    number is most likely flattered by noise (and on Last.fm validation is optimistic for every
    blend). Requiring the margin to exceed its own uncertainty favours the settings whose warm
    users are kept by a clear margin, and costs nothing where validation is large and the
    margin clear.
    """

    reference: tuple[np.ndarray, ...]
    """Per validation fold: the reference model's warm NDCG@k per warm user, in user-id order."""
    share: float = 0.98
    z: float = WARM_GUARD_Z
    drift: float = 0.0
    """Expected change of a blend's warm ratio to the reference from validation to the refit on
    the whole train part (:func:`warm_drift`). A negative drift raises the line by as much (the
    blend must reach ``share − drift``); a positive one is not counted on."""

    @property
    def line(self) -> float:
        """The warm ratio to the reference a blend must reach on validation."""
        return self.share - min(self.drift, 0.0)

    def bound(self, blend: list[np.ndarray] | tuple[np.ndarray, ...]) -> float:
        """Lower confidence bound of the blend's warm margin (≥ 0: the blend passes)."""
        means, variances = [], []
        for b, r in zip(blend, self.reference, strict=True):
            d = np.asarray(b, np.float64) - self.line * np.asarray(r, np.float64)
            if len(d) == 0:
                continue
            means.append(float(d.mean()))
            variances.append(float(d.var(ddof=1)) / len(d) if len(d) > 1 else 0.0)
        if not means:
            return 0.0
        return float(np.mean(means) - self.z * math.sqrt(sum(variances)) / len(means))


class BlendChoice(NamedTuple):
    """What :func:`tune_blend` chose, and from what."""

    label: str
    beta: float
    shift: float
    slots: int
    table: dict
    """All-slice validation NDCG@20 of every grid point ``(label, beta, shift, slots)``."""
    drift: float | None = None
    """The warm drift the guard's line was raised by (:func:`warm_drift`; None: not measured)."""


def warm_ratios(warm: dict, reference: np.ndarray) -> dict:
    """Each grid point's mean warm NDCG over the reference's, from per-user values on one split."""
    ref = float(np.mean(reference)) if len(reference) else 0.0
    return {k: float(np.mean(v)) / ref if ref > 0 and len(v) else 0.0 for k, v in warm.items()}


def warm_drift(outer: dict, inner: dict) -> float:
    """Median change of the grid points' warm ratios from an inner split to an outer one.

    ``inner`` comes from a model trained (for the same epochs) on a validation split of the
    validation split's train part, ``outer`` from the validation split itself: how the blends'
    warm standing against the reference moves as the train part grows by one step, taken as
    the move to expect from validation to the refit on the whole train part. One number per
    model, the median over the grid, so that single points' noise does not steer it.
    """
    keys = [k for k in outer if k in inner]
    return float(np.median([outer[k] - inner[k] for k in keys])) if keys else 0.0


def tune_blend(primary, residuals: dict, val_split, betas=(0.0, 0.5, 1.0, 2.0, 4.0),
               shifts=(0.0,), new_items: np.ndarray | None = None, guard: WarmGuard | None = None,
               slots=(0,), extra_folds=(), inner=None) -> BlendChoice:
    """Choose the residual, its weight, the new-item shift and the new-item slots of a
    :class:`gnn.scoring.ResidualBlendScorer` on the validation split (all-slice NDCG@20).

    :func:`blend_grid` scores the grid on each validation fold, the folds' tables are averaged
    per grid point, and :func:`pick_blend` chooses from the means.

    Args:
        primary: the GNN scorer (fitted on the validation split's train part).
        residuals: candidate residual scorers by label (``None``: no residual).
        val_split: the validation split.
        betas: residual weights to try.
        shifts: new-item shifts to try (per-user standard deviations).
        slots: places at the end of each top-k list reserved for new items, to try.
        new_items: bool mask of items without train interactions.
        guard: when given, only grid points that pass it are eligible (if none does, the one
            nearest to passing is taken): new items may win places in the lists, but not at
            any price to the users the id models already serve well.
        extra_folds: ``(primary, residuals, val_split, new_items)`` of further validation folds
            (the same residual labels), scored like the first and averaged with it.
        inner: with a guard, ``(primary, residuals, split, new_items, reference)`` of an inner
            split (a validation split of ``val_split``'s train part; ``reference``: the guard's
            reference model's per-user warm NDCG there): the guard's line is raised by the
            :func:`warm_drift` from it to the first validation fold.

    Returns:
        The :class:`BlendChoice`. Ties go to the smaller weight, the shift nearer 0 and the
        fewer slots.
    """
    with_warm = guard is not None
    grids = [blend_grid(p, r, v, betas, shifts, n, slots, with_warm=with_warm)
             for p, r, v, n in [(primary, residuals, val_split, new_items), *extra_folds]]
    table = {k: float(np.mean([g[0][k] for g in grids])) for k in grids[0][0]}
    drift = None
    if guard is not None and inner is not None:
        p_in, r_in, split_in, new_in, ref_in = inner
        _, warm_in = blend_grid(p_in, r_in, split_in, betas, shifts, new_in, slots, with_warm=True)
        drift = warm_drift(warm_ratios(grids[0][1], guard.reference[0]), warm_ratios(warm_in, ref_in))
        guard = dataclasses.replace(guard, drift=drift)
    bounds = {k: guard.bound([g[1][k] for g in grids]) for k in grids[0][0]} if guard is not None else None
    return BlendChoice(*pick_blend(table, bounds), table, drift)


def pick_blend(table: dict, bounds: dict | None = None) -> tuple:
    """The grid point ``(label, beta, shift, slots)`` of highest all-slice NDCG among those whose
    warm-guard bound (:meth:`WarmGuard.bound`) is not negative (all of them when ``bounds`` is
    None; the point of highest bound when none passes). Ties go to the smaller weight, the
    shift nearer 0 and the fewer slots."""
    eligible = [k for k in table if bounds is None or bounds[k] >= 0]
    if eligible:
        return max(eligible, key=lambda k: (table[k], -k[1], -abs(k[2]), -k[3]))
    return max(table, key=lambda k: (bounds[k], table[k]))


def blend_grid(primary, residuals: dict, val_split, betas=(0.0, 0.5, 1.0, 2.0, 4.0), shifts=(0.0,),
               new_items: np.ndarray | None = None, slots=(0,), with_warm: bool = False) -> tuple[dict, dict | None]:
    """Validation NDCG@20 of every blend grid point (see :func:`tune_blend` for the arguments).

    The standardised parts are computed once per validation user and residual, and reused for
    every grid point, so the grid costs top-k selections, not model evaluations.

    Returns:
        ``(table, warm)``: all-slice NDCG@20 by grid point ``(label, beta, shift, slots)`` and
        (with ``with_warm``, else None) by grid point the warm-slice NDCG@20 of each warm
        validation user, in increasing user id.
    """
    from gnn.evaluation import validation_user_ndcgs
    from gnn.scoring import ResidualBlendScorer

    users = np.unique(val_split.test.user)
    row_of = np.full(primary.n_users, -1, np.int64)
    row_of[users] = np.arange(len(users))
    shifts = shifts if new_items is not None and np.any(new_items) else (0.0,)
    slots = slots if new_items is not None and np.any(new_items) else (0,)
    seen = val_split.train_matrix()
    p = None
    table, warm = {}, {}
    for label, residual in residuals.items():
        blend = ResidualBlendScorer(primary, residual, 0.0, new_items, 0.0,
                                    list_k=val_split.config.k, seen=seen)
        pp = np.empty((len(users), primary.n_items), np.float32)
        r = np.empty_like(pp)
        for b0 in range(0, len(users), 256):      # batches keep the float64 temporaries small
            pb, rb = blend.parts(users[b0:b0 + 256])
            pp[b0:b0 + 256], r[b0:b0 + 256] = pb, rb
        p = pp if p is None else p
        for beta in (betas if residual is not None else (0.0,)):
            for shift in shifts:
                for n_slots in slots:
                    def fn(ub, beta=beta, shift=shift, r=r, blend=blend, n_slots=n_slots):
                        rows = row_of[ub]
                        return blend.combine(p[rows].astype(np.float64), r[rows].astype(np.float64), beta, shift,
                                             n_slots, ub)
                    got = validation_user_ndcgs(fn, val_split, ("all", "warm") if with_warm else ("all",))
                    key = (label, beta, shift, n_slots)
                    table[key] = float(got["all"].mean()) if len(got["all"]) else 0.0
                    if with_warm:
                        warm[key] = got["warm"]
    return table, (warm if with_warm else None)
