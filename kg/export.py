"""Graph export: one domain of a :class:`~kg.store.GraphStore` → PyG ``HeteroData`` + vocabularies.

The contract ``gnn`` relies on (names from :mod:`kg.schema`):

* node types ``'user'``, ``'item'``, ``'entity'``, ``'category'``, each with ``num_nodes``;
  ``data['item'].pos`` / ``data['user'].pos`` (float32 ``[n, 2]``, latitude then longitude,
  NaN where unknown) when that node type has any coordinate;
* ``('user', 'interacted', 'item')``: ``edge_index`` long ``[2, E]``, ``edge_weight``
  float32 ``[E]``, ``ts`` long ``[E]`` (unix seconds);
* ``('item', 'mentions', 'entity')``: ``edge_index``, ``edge_weight`` (the confidence);
* ``('item', 'in_category', 'category')``: ``edge_index``;
* ``('user', 'follows', 'user')``: ``edge_index`` (``[2, 0]`` when there are no links).

Every edge type is present, empty or not. Node indices come from one :class:`Vocabulary` per
node type with ids sorted by code point, and edges are sorted by (source id, target id, ts), so
the same dataset exports identically from every store.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import HeteroData

from kg.errors import SchemaError
from kg.schema import (
    CONFIDENCE,
    EDGE_TYPES,
    LAT,
    LON,
    NODE_TYPES,
    SCHEMA_VERSION,
    TS,
    WEIGHT,
    Label,
    RelType,
    Vocabulary,
)
from kg.store import GraphStore

__all__ = ["GraphExport", "Vocabulary", "export_graph"]


@dataclass(frozen=True)
class GraphExport:
    """One domain's graph as tensors.

    Attributes:
        domain: the domain exported.
        build: the build stamp of the graph (equal stamps, equal exports).
        data: the heterogeneous graph (see the module doc for its exact layout).
        vocab: ``{'user': Vocabulary, 'item': …, 'entity': …, 'category': …}``.
    """

    domain: str
    build: str
    data: HeteroData
    vocab: dict[str, Vocabulary]


def _positions(rows: pd.DataFrame) -> torch.Tensor | None:
    if LAT not in rows.columns and LON not in rows.columns:
        return None
    cols = [pd.to_numeric(rows[c], errors="coerce").astype("float64") if c in rows.columns
            else pd.Series(np.nan, index=rows.index) for c in (LAT, LON)]
    pos = np.stack([c.to_numpy() for c in cols], axis=1).astype(np.float32)
    if np.isnan(pos).all():
        return None
    return torch.from_numpy(pos.reshape(len(rows), 2))


def _edge_index(rel: RelType, rows: pd.DataFrame, src: Vocabulary, dst: Vocabulary) -> torch.Tensor:
    s = src.indices_of(rows["src"].to_numpy())
    d = dst.indices_of(rows["dst"].to_numpy())
    if (bad := (s < 0) | (d < 0)).any():
        ex = rows.loc[bad, ["src", "dst"]].head(5).values.tolist()
        raise SchemaError(f"{rel}: {int(bad.sum())} relationships point outside the exported "
                          f"nodes (first: {ex}); the graph is inconsistent, rebuild it")
    return torch.from_numpy(np.stack([s, d]).astype(np.int64).reshape(2, len(rows)))


def export_graph(store: GraphStore, domain: str) -> GraphExport:
    """Export one domain's graph for the GNN.

    Args:
        store: the graph store holding a completed build of ``domain``.
        domain: the domain to export.

    Returns:
        The ``HeteroData`` and its vocabularies (see the module doc for the layout).

    Raises:
        SchemaError: the domain has no graph, its last build did not complete, or it was
            written by another schema version.
    """
    meta = store.read_meta(domain)
    if meta is None:
        raise SchemaError(f"{store.location} has no graph for domain {domain!r}; "
                          f"run build_graph first")
    if not meta.complete:
        raise SchemaError(f"the graph of domain {domain!r} in {store.location} is incomplete: "
                          f"build {meta.build} was interrupted; rerun build_graph")
    if meta.schema_version != SCHEMA_VERSION:
        raise SchemaError(f"the graph of domain {domain!r} in {store.location} has schema "
                          f"version {meta.schema_version}, this code reads {SCHEMA_VERSION}; "
                          f"rebuild it with build_graph")
    data = HeteroData()
    vocab: dict[str, Vocabulary] = {}
    for label, ntype in NODE_TYPES.items():
        rows = store.node_rows(label, domain)
        vocab[ntype] = Vocabulary(rows["id"])
        data[ntype].num_nodes = len(rows)
        if label in (Label.USER, Label.ITEM) and (pos := _positions(rows)) is not None:
            data[ntype].pos = pos
    for rel, etype in EDGE_TYPES.items():
        rows = store.rel_rows(rel, domain)
        store_ = data[etype]
        store_.edge_index = _edge_index(rel, rows, vocab[etype[0]], vocab[etype[2]])
        if rel is RelType.INTERACTED:
            store_.edge_weight = torch.from_numpy(rows[WEIGHT].to_numpy(np.float32, na_value=1.0))
            store_.ts = torch.from_numpy(rows[TS].to_numpy(np.int64))
        elif rel is RelType.MENTIONS:
            store_.edge_weight = torch.from_numpy(rows[CONFIDENCE].to_numpy(np.float32))
    return GraphExport(domain=domain, build=meta.build, data=data, vocab=vocab)
