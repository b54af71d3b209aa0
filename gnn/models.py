"""The kgrec model: fused text + id node states propagated LightGCN-style over the typed KG.

``KGRecGNN`` follows LightGCN (He et al. 2020, "LightGCN: Simplifying and Powering Graph
Convolution Network for Recommendation", SIGIR): no feature transforms or non-linearities
between layers, symmetric degree normalisation, and the final state of a node is the mean of
its states over layers 0..L. It differs in two ways:

* the graph is heterogeneous: user–item interactions, item–entity mentions, item–category
  membership and user–user links are all propagated, each relation normalised by its own
  degrees (so a high-degree category does not drown an item's interactions) and scaled by a
  fixed relation weight;
* layer 0 is not a free embedding table but :class:`gnn.fusion.FusedNodeEncoder`: projected
  text plus an id embedding that training drops at random. A new item is therefore placed by
  its text and by what it mentions, a new user by profile text and friends.

The propagation matrix is symmetric, so the backward pass of each sparse product is the same
sparse product; :class:`_SymmetricSpMM` uses that to avoid a transpose. All of it is plain
``torch`` (CSR ``@`` dense), which works on CPU and CUDA without pyg-lib or torch-sparse.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from gnn.fusion import NODE_TYPES, FusedNodeEncoder

INTERACTED = ("user", "interacted", "item")
MENTIONS = ("item", "mentions", "entity")
IN_CATEGORY = ("item", "in_category", "category")
FOLLOWS = ("user", "follows", "user")


@dataclass(eq=False)
class PropagationGraph:
    """A symmetric, per-relation normalised adjacency over all node types, in CSR form.

    Attributes:
        num_nodes: node count per type, in the order of ``offsets``.
        offsets: first global row of each node type.
        crow, col, values: the CSR structure and normalised values.
        row: the row of every stored entry (COO form of ``crow``).
        is_interaction: True for entries that are user–item interaction edges (the ones a
            simulated cold node loses in training).
        relations: the relations that were propagated.
    """

    num_nodes: dict[str, int]
    offsets: dict[str, int]
    crow: Tensor
    col: Tensor
    values: Tensor
    row: Tensor
    is_interaction: Tensor
    relations: tuple[tuple[str, str, str], ...]

    @property
    def size(self) -> int:
        return sum(self.num_nodes.values())

    def to(self, device) -> PropagationGraph:
        return PropagationGraph(self.num_nodes, self.offsets, self.crow.to(device), self.col.to(device),
                                self.values.to(device), self.row.to(device), self.is_interaction.to(device),
                                self.relations)

    def adjacency(self, keep: Tensor | None = None) -> Tensor:
        """The CSR matrix; ``keep`` (bool per entry) zeroes dropped entries, keeping the structure."""
        vals = self.values if keep is None else self.values * keep.to(self.values.dtype)
        with warnings.catch_warnings():     # "CSR support is in beta": the ops used here are stable
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(self.crow, self.col, vals, (self.size, self.size),
                                           check_invariants=False)

    def degree(self, node_type: str, relation: tuple[str, str, str] | None = None) -> Tensor:
        """Number of stored entries per node of ``node_type``; with ``relation``, only the
        interaction entries (``INTERACTED``) or only the side-information entries (any other)."""
        off, n = self.offsets[node_type], self.num_nodes[node_type]
        sel = (self.row >= off) & (self.row < off + n)
        if relation is not None:
            sel = sel & (self.is_interaction if relation == INTERACTED else ~self.is_interaction)
        return torch.bincount(self.row[sel] - off, minlength=n)


def _relation_entries(src: np.ndarray, dst: np.ndarray, n_src: int, n_dst: int,
                      symmetric_same_type: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deduplicated (src, dst, 1/sqrt(deg_src·deg_dst)) for one relation."""
    if symmetric_same_type:     # user–user links are treated as undirected friendships
        a, b = np.minimum(src, dst), np.maximum(src, dst)
        keep = a != b
        src, dst = a[keep], b[keep]
    key = np.unique(src.astype(np.int64) * max(n_dst, 1) + dst)
    src, dst = key // max(n_dst, 1), key % max(n_dst, 1)
    if symmetric_same_type:
        deg = np.bincount(np.r_[src, dst], minlength=n_src).astype(np.float64)
        norm = 1.0 / np.sqrt(deg[src] * deg[dst])
    else:
        ds = np.bincount(src, minlength=n_src).astype(np.float64)
        dd = np.bincount(dst, minlength=n_dst).astype(np.float64)
        norm = 1.0 / np.sqrt(ds[src] * dd[dst])
    return src, dst, norm


def build_propagation_graph(data, relations: tuple[tuple[str, str, str], ...],
                            relation_weights: dict[str, float] | None = None,
                            min_kg_degree: int = 2) -> PropagationGraph:
    """Build the symmetric propagation matrix from a HeteroData.

    Args:
        data: the (train) HeteroData; node types missing from it get zero nodes.
        relations: the edge types to propagate (absent or empty ones are skipped).
        relation_weights: scale per relation name (``interacted``, ``mentions``, ...);
            missing names weigh 1.
        min_kg_degree: entity and category nodes linked to fewer items are left out of the
            propagation: a node mentioned by one item only echoes that item's own state back
            to it (in ml-latest-small 81% of the extracted entities are such singletons, and
            dropping them halves the cost of a step without changing what is propagated
            between items).

    Returns:
        The graph over the node types of :data:`gnn.fusion.NODE_TYPES`.
    """
    weights = relation_weights or {}
    num_nodes = {t: int(data[t].num_nodes) if t in data.node_types and data[t].num_nodes else 0
                 for t in NODE_TYPES}
    offsets, o = {}, 0
    for t in NODE_TYPES:
        offsets[t] = o
        o += num_nodes[t]
    rows, cols, vals, inter = [], [], [], []
    used = []
    for rel in relations:
        if rel not in data.edge_types or "edge_index" not in data[rel]:
            continue
        ei = data[rel].edge_index.cpu().numpy()
        if ei.shape[1] == 0:
            continue
        s_t, name, d_t = rel
        if d_t in ("entity", "category") and min_kg_degree > 1:
            pairs = np.unique(ei[0].astype(np.int64) * max(num_nodes[d_t], 1) + ei[1])
            deg = np.bincount(pairs % max(num_nodes[d_t], 1), minlength=num_nodes[d_t])
            ei = ei[:, deg[ei[1]] >= min_kg_degree]
            if ei.shape[1] == 0:
                continue
        s, d, norm = _relation_entries(ei[0], ei[1], num_nodes[s_t], num_nodes[d_t], s_t == d_t)
        norm = norm * float(weights.get(name, 1.0))
        gs, gd = s + offsets[s_t], d + offsets[d_t]
        rows += [gd, gs]
        cols += [gs, gd]
        vals += [norm, norm]
        flag = rel == INTERACTED
        inter += [np.full(len(s), flag), np.full(len(s), flag)]
        used.append(rel)
    n = o
    if rows:
        r, c = np.concatenate(rows), np.concatenate(cols)
        v, it = np.concatenate(vals), np.concatenate(inter)
    else:
        r = c = np.empty(0, np.int64)
        v, it = np.empty(0), np.empty(0, bool)
    order = np.lexsort((c, r))
    r, c, v, it = r[order], c[order], v[order], it[order]
    crow = np.r_[0, np.cumsum(np.bincount(r, minlength=n))]
    return PropagationGraph(num_nodes, offsets, torch.from_numpy(crow).long(), torch.from_numpy(c).long(),
                            torch.from_numpy(v).float(), torch.from_numpy(r).long(),
                            torch.from_numpy(it), tuple(used))


class _SymmetricSpMM(torch.autograd.Function):
    """``A @ h`` for a constant symmetric sparse ``A``: the gradient is ``A @ grad``.

    Both products run in float32: under CUDA autocast the incoming gradient is bfloat16, and
    cuSPARSE has no float32 × bfloat16 SpMM ("operation not supported"), so mixed precision
    stops at the sparse propagation and the gradient goes back in the input's dtype.
    """

    @staticmethod
    def forward(ctx, adj: Tensor, h: Tensor) -> Tensor:  # type: ignore[override]
        ctx.adj = adj
        ctx.in_dtype = h.dtype
        return adj @ h.float()

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        return None, (ctx.adj @ grad.float()).to(ctx.in_dtype)


class KGRecGNN(nn.Module):
    """Fused text + id states propagated over the typed knowledge graph (see module docstring).

    Args:
        num_nodes: node count per type.
        text_dim: width of the text embeddings (0 when no text is used).
        dim: embedding width.
        num_layers: propagation layers (0 gives the fused two-tower model without a GNN).
        text_types: node types whose text is used.
        id_types: node types with learnable id embeddings.
    """

    def __init__(self, num_nodes: dict[str, int], text_dim: int, dim: int = 64, num_layers: int = 2,
                 text_types: tuple[str, ...] = NODE_TYPES, id_types: tuple[str, ...] = ("user", "item")) -> None:
        super().__init__()
        self.num_layers = num_layers
        self.encoder = FusedNodeEncoder(num_nodes, text_dim, dim, text_types, id_types)

    def layer0(self, text: dict[str, tuple[Tensor, Tensor]], id_mask: dict[str, Tensor]) -> Tensor:
        h = self.encoder(text, id_mask)
        return torch.cat([h[t] for t in NODE_TYPES if t in h], 0)

    def forward(self, graph: PropagationGraph, text: dict[str, tuple[Tensor, Tensor]],
                id_mask: dict[str, Tensor], keep: Tensor | None = None) -> dict[str, Tensor]:
        """Final node states per type.

        Args:
            graph: the propagation graph.
            text: ``(x, has_text)`` per node type.
            id_mask: per id type, which id embeddings are used in this pass.
            keep: optional bool per adjacency entry; False entries are dropped for this pass.
        """
        h = self.layer0(text, id_mask)
        return self.split(graph, self.propagate(graph, h, keep))

    def propagate(self, graph: PropagationGraph, h: Tensor, keep: Tensor | None = None) -> Tensor:
        if self.num_layers == 0 or graph.values.numel() == 0:
            return h
        adj = graph.adjacency(keep)
        # sparse products run in float32 (CSR kernels have no half/bfloat16 path everywhere)
        h = h.float()
        acc = h
        for _ in range(self.num_layers):
            h = _SymmetricSpMM.apply(adj, h)
            acc = acc + h
        return acc / (self.num_layers + 1)

    @staticmethod
    def split(graph: PropagationGraph, z: Tensor) -> dict[str, Tensor]:
        return {t: z[graph.offsets[t]:graph.offsets[t] + graph.num_nodes[t]] for t in NODE_TYPES}
