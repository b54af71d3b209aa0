"""The embedded graph store: a networkx ``MultiDiGraph`` persisted as one file.

The default backend when no Neo4j server is configured. The graph lives in memory and is
written to ``path`` by :meth:`NetworkXStore.flush` (and :meth:`~NetworkXStore.close`): pickled
to a temporary file in the same folder, fsynced, then renamed over the old file, so a reader
(a later flow step, the API) always opens either the previous or the new graph, never half of
one. One process writes a given file at a time.

Node keys are ``(label, domain, id)`` tuples, so domains cannot collide. Edge keys are the
relationship type, or ``(type, *key values)`` for types with a merge key (``INTERACTED`` is
keyed by ``ts``), which gives the same merge semantics as the Cypher ``MERGE`` of
:mod:`kg.cypher`.
"""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import pandas as pd

from kg.errors import GraphStoreError
from kg.schema import (
    BUILD,
    BUILT_RELS,
    CONFIDENCE,
    DOMAIN,
    FIRST_USER,
    ID,
    RELS,
    RUN_ID,
    SECOND_USER,
    TS,
    USERS,
    Label,
    PathKind,
    RelType,
)
from kg.store import (
    PathTables,
    GraphCounts,
    GraphMeta,
    batches,
    endpoint_error,
    finish_node_rows,
    cut_path_groups,
    path_group_frame,
    finish_rel_rows,
    node_records,
    check_history,
    history_cut,
    people_frame,
    recommendation_frame,
    rel_frame,
    rel_records,
)

log = logging.getLogger(__name__)

#: Marks a pickle as a kgrec graph, so that opening some other pickle fails clearly.
_FORMAT = "kgrec-networkx-graph"
_LABELS = frozenset(str(label) for label in Label)


def _rel_type(key: Any) -> str:
    return key if isinstance(key, str) else key[0]


class NetworkXStore:
    """A :class:`~kg.store.GraphStore` kept in memory and persisted to one file.

    Args:
        path: the graph file (conventionally ``<out>/graph/kgrec-graph.pickle``); it is read
            if it exists, and created by the first :meth:`flush`.
        batch_size: rows per write batch (bounds the memory of the record conversion).

    Raises:
        GraphStoreError: ``path`` exists but is not a readable kgrec graph.

    Example:
        >>> with NetworkXStore(tmp / "graph.pickle") as store:  # doctest: +SKIP
        ...     counts = build_graph(store, dataset)
    """

    def __init__(self, path: str | Path, batch_size: int = 50_000):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.path = Path(path)
        self.location = str(self.path)
        self.batch_size = batch_size
        self._dirty = False
        self._graph = self._load() if self.path.exists() else self._empty()
        self._indexes: dict[str, _PathIndex] = {}
        self._index_token: str | None = None

    def __repr__(self) -> str:
        return (f"NetworkXStore({self.location!r}, nodes={self._graph.number_of_nodes()}, "
                f"edges={self._graph.number_of_edges()})")

    def __enter__(self) -> NetworkXStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------------- persistence

    @staticmethod
    def _empty() -> nx.MultiDiGraph:
        g = nx.MultiDiGraph()
        g.graph.update(format=_FORMAT, meta={})
        return g

    def _load(self) -> nx.MultiDiGraph:
        # Only files this class wrote are opened: pickle runs code from the file, so the path
        # must be the project's own output folder, never user-supplied input.
        try:
            with self.path.open("rb") as fh:
                graph = pickle.load(fh)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as e:
            raise GraphStoreError(f"cannot read the graph file {self.path}: {type(e).__name__}: "
                                  f"{e}; rebuild the graph or point at another file",
                                  query="open", uri=self.location) from e
        if not isinstance(graph, nx.MultiDiGraph) or graph.graph.get("format") != _FORMAT:
            raise GraphStoreError(f"{self.path} is not a kgrec graph file (found "
                                  f"{type(graph).__name__})", query="open", uri=self.location)
        return graph

    def flush(self) -> None:
        if not self._dirty and self.path.exists():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                   dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(self._graph, fh, protocol=pickle.HIGHEST_PROTOCOL)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException as e:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(e, OSError):
                raise GraphStoreError(f"cannot write the graph file {self.path}: {e}",
                                      query="flush", uri=self.location) from e
            raise
        self._dirty = False

    def close(self) -> None:
        if self._dirty:
            self.flush()

    # ----------------------------------------------------------------------- schema and meta

    def ensure_schema(self) -> None:
        # Uniqueness of (label, domain, id) is the node key itself; nothing to create.
        return None

    def read_meta(self, domain: str) -> GraphMeta | None:
        raw = self._graph.graph["meta"].get(domain)
        return GraphMeta(**raw) if raw else None

    def write_meta(self, meta: GraphMeta) -> None:
        self._graph.graph["meta"][meta.domain] = dict(
            domain=meta.domain, schema_version=int(meta.schema_version), build=meta.build,
            complete=bool(meta.complete), updated_at=meta.updated_at)
        self._dirty = True

    # ----------------------------------------------------------------------- writes

    def _ids(self, domain: str, label: Label) -> set[str]:
        return {key[2] for key, _ in self._domain_nodes(domain, label)}

    def write_nodes(self, label: Label, domain: str, rows: pd.DataFrame, build: str) -> int:
        label = Label(label)
        g = self._graph
        written = 0
        for batch in batches(rows, self.batch_size):
            for rec in node_records(label, batch):
                attrs = {**rec["props"], DOMAIN: domain, ID: rec["id"], BUILD: build}
                key = (str(label), domain, rec["id"])
                if key in g._node:
                    node = g._node[key]
                    node.clear()
                    node.update(attrs)
                else:
                    g.add_node(key, **attrs)
                written += 1
        self._dirty = True
        return written

    def write_rels(self, rel: RelType, domain: str, rows: pd.DataFrame, build: str) -> int:
        rel = RelType(rel)
        return self._write_rels(rel, domain, rel_frame(rel, rows), stamp={BUILD: build})

    def _write_rels(self, rel: RelType, domain: str, frame: pd.DataFrame,
                    stamp: dict[str, Any]) -> int:
        spec = RELS[rel]
        g = self._graph
        succ, pred = g._succ, g._pred
        src_label, dst_label, name = str(spec.src), str(spec.dst), str(rel)
        src_ok = frame["src"].isin(self._ids(domain, spec.src))
        dst_ok = frame["dst"].isin(self._ids(domain, spec.dst))
        if (bad := ~(src_ok & dst_ok)).any():
            missing = list(zip(frame.loc[bad, "src"], frame.loc[bad, "dst"]))
            raise endpoint_error(rel, domain, missing, len(frame))
        written = 0
        for batch in batches(frame, self.batch_size):
            for rec in rel_records(batch):
                u = (src_label, domain, rec.pop("src"))
                v = (dst_label, domain, rec.pop("dst"))
                key = (name, *(rec[k] for k in spec.key)) if spec.key else name
                attrs = {k: val for k, val in rec.items() if val is not None}
                attrs.update(stamp)
                # MultiDiGraph.add_edge, inlined (it runs once per relationship): the key dict
                # of a node pair is shared by the successor and predecessor maps.
                keyed = succ[u].get(v)
                if keyed is None:
                    keyed = succ[u][v] = pred[v][u] = {}
                data = keyed.get(key)
                if data is None:
                    keyed[key] = attrs
                else:
                    data.clear()
                    data.update(attrs)
                written += 1
        nx._clear_cache(g)
        self._dirty = True
        return written

    def write_recommendations(self, domain: str, run_id: str, rows: pd.DataFrame) -> int:
        return self._replace_run(RelType.RECOMMENDED, domain, run_id, recommendation_frame(rows))

    def write_people(self, domain: str, run_id: str, rows: pd.DataFrame) -> int:
        return self._replace_run(RelType.SUGGESTED, domain, run_id, people_frame(rows))

    def _replace_run(self, rel: RelType, domain: str, run_id: str, frame: pd.DataFrame) -> int:
        written = self._write_rels(rel, domain, frame, stamp={RUN_ID: run_id}) if len(frame) else 0
        old = [(u, v, k) for u, v, k, d in self._domain_edges(domain, rel) if d.get(RUN_ID) != run_id]
        self._graph.remove_edges_from(old)
        self._dirty = True
        return written

    # ----------------------------------------------------------------------- deletes

    def _domain_nodes(self, domain: str, label: Label | None = None):
        want = str(label) if label is not None else None
        for key, data in self._graph._node.items():
            if key[1] == domain and key[0] in _LABELS and (want is None or key[0] == want):
                yield key, data

    def _domain_edges(self, domain: str, rel: RelType):
        """``(u, v, key, data)`` of one type, walked from the domain's start nodes."""
        spec = RELS[rel]
        name = str(rel)
        succ = self._graph._succ
        for u, _ in self._domain_nodes(domain, spec.src):
            for v, keyed in succ[u].items():
                for k, d in keyed.items():
                    if _rel_type(k) == name:
                        yield u, v, k, d

    def delete_stale(self, domain: str, build: str) -> GraphCounts:
        deleted = GraphCounts()
        for rel in BUILT_RELS:
            stale = [(u, v, k) for u, v, k, d in self._domain_edges(domain, rel)
                     if d.get(BUILD) != build]
            self._graph.remove_edges_from(stale)
            deleted.edges[str(rel)] = len(stale)
        for label in Label:
            stale_nodes = [k for k, d in self._domain_nodes(domain, label) if d.get(BUILD) != build]
            self._graph.remove_nodes_from(stale_nodes)
            deleted.nodes[str(label)] = len(stale_nodes)
        self._dirty = True
        return deleted

    def drop_domain(self, domain: str) -> GraphCounts:
        deleted = self.counts(domain)
        self._graph.remove_nodes_from([k for k, _ in self._domain_nodes(domain)])
        self._graph.graph["meta"].pop(domain, None)
        self._dirty = True
        return deleted

    # ----------------------------------------------------------------------- reads

    def counts(self, domain: str) -> GraphCounts:
        out = GraphCounts()
        for key, _ in self._domain_nodes(domain):
            out.nodes[key[0]] += 1
        succ = self._graph._succ
        for key, _ in self._domain_nodes(domain):
            for keyed in succ[key].values():
                for k in keyed:
                    out.edges[_rel_type(k)] += 1
        return out

    def node_rows(self, label: Label, domain: str) -> pd.DataFrame:
        return finish_node_rows([(k[2], d) for k, d in self._domain_nodes(domain, Label(label))])

    def rel_rows(self, rel: RelType, domain: str) -> pd.DataFrame:
        rel = RelType(rel)
        spec = RELS[rel]
        name, props = str(rel), spec.props
        src_ids: list[str] = []
        dst_ids: list[str] = []
        cols: dict[str, list] = {p: [] for p in props}
        appends = [(cols[p].append, p) for p in props]
        succ = self._graph._succ
        # The export reads every relationship of a domain: a plain loop, no generator per edge.
        for u, _ in self._domain_nodes(domain, spec.src):
            uid = u[2]
            for v, keyed in succ[u].items():
                for k, d in keyed.items():
                    if (k if k.__class__ is str else k[0]) == name:
                        src_ids.append(uid)
                        dst_ids.append(v[2])
                        for append, p in appends:
                            append(d.get(p))
        return finish_rel_rows(rel, {"src": src_ids, "dst": dst_ids, **cols})

    def node_props(self, label: Label, domain: str, ids: Sequence[str]) -> dict[str, dict]:
        nodes = self._graph._node
        out = {}
        for id_ in ids:
            data = nodes.get((str(label), domain, id_))
            if data is not None:
                out[id_] = {k: v for k, v in data.items() if k not in (DOMAIN, BUILD)}
        return out

    def _read_index(self, domain: str) -> _PathIndex:
        """The domain's adjacency for explanation reads, built on first use and rebuilt after any
        change: networkx empties ``__networkx_cache__`` whenever the graph is mutated (and
        :meth:`_write_rels` empties it too), and that is where the index's token lives."""
        cache = self._graph.__dict__.setdefault("__networkx_cache__", {})
        token = cache.get(_INDEX_TOKEN)
        held = self._indexes.get(domain) if token is not None and token == self._index_token else None
        if held is None:
            if token is None or token != self._index_token:
                self._indexes.clear()
                self._index_token = cache[_INDEX_TOKEN] = f"{id(self)}-{time.monotonic_ns()}"
            held = self._indexes[domain] = _PathIndex(self._graph, domain)
        return held

    def path_rows_many(self, domain: str, user_id: str, item_ids: Sequence[str], limit: int,
                       kinds: Sequence[PathKind] = tuple(PathKind),
                       history: int | None = None) -> dict[PathKind, pd.DataFrame]:
        groups = self.path_groups_many(domain, user_id, item_ids, limit, kinds, history)
        return {k: path_group_frame(k, rows) for k, rows in groups.items()}

    def path_groups_many(self, domain: str, user_id: str, item_ids: Sequence[str], limit: int,
                         kinds: Sequence[PathKind] = tuple(PathKind),
                         history: int | None = None) -> dict[PathKind, list[tuple]]:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        check_history(history)
        kinds = [PathKind(k) for k in kinds]
        rows: dict[PathKind, list[tuple]] = {k: [] for k in kinds}
        u = (str(Label.USER), domain, user_id)
        items = [i for i in dict.fromkeys((str(Label.ITEM), domain, i) for i in item_ids)
                 if i in self._graph._node]
        if u in self._graph._node and items:
            index = self._read_index(domain)
            liked = index.recent(u, history)    # the cut once for every kind
            for kind in kinds:
                rows[kind] = index.groups(kind, u, items, limit, liked)
        return {k: cut_path_groups(k, rows[k], limit) for k in kinds}


#: Key, in the graph's ``__networkx_cache__``, of the token that says a read index is current.
_INDEX_TOKEN = "kgrec-path-index"


class _PathIndex(PathTables):
    """One domain's whole graph as :class:`~kg.store.PathTables`, for the explanation reads."""

    def __init__(self, graph: nx.MultiDiGraph, domain: str):
        user_l, item_l = str(Label.USER), str(Label.ITEM)
        inter, mentions, in_cat, follows = (str(RelType.INTERACTED), str(RelType.MENTIONS),
                                            str(RelType.IN_CATEGORY), str(RelType.FOLLOWS))
        co = str(RelType.CO_INTERACTED)
        super().__init__()
        self._graph = graph     # a history cap reads a user's interaction times from it
        for node, nbrs in graph._succ.items():
            if node[1] != domain:
                continue
            if node[0] == user_l:
                liked, friends = {}, set()
                for v, keyed in nbrs.items():
                    if v[0] == item_l:
                        ts = [d.get(TS) for k, d in keyed.items() if k.__class__ is not str and k[0] == inter]
                        if ts:
                            liked[v] = (len(ts), max(ts))
                            self.fans[v].add(node)
                    elif v[0] == user_l and v != node and follows in keyed:
                        friends.add(v)
                self.liked[node] = liked
                self.follows[node] = friends
            elif node[0] == item_l:
                self.mentions[node] = {e: keyed[mentions].get(CONFIDENCE)
                                       for e, keyed in nbrs.items() if mentions in keyed}
                self.categories[node] = [c for c, keyed in nbrs.items() if in_cat in keyed]
                self.co[node] = {x: (d.get(USERS), d.get(FIRST_USER), d.get(SECOND_USER))
                                 for x, keyed in nbrs.items() if (d := keyed.get(co)) is not None}

    def recent(self, u: tuple, history: int | None) -> dict[tuple, tuple[int, Any]]:
        """``liked[u]`` cut to the items of the user's ``history`` latest interactions
        (:func:`kg.store.history_cut`; all of them when ``history`` is None)."""
        liked = self.liked.get(u, {})
        if history is None or sum(n for n, _ in liked.values()) <= history:
            return liked
        inter = str(RelType.INTERACTED)
        cut = history_cut((d.get(TS) for x in liked for k, d in self._graph._succ[u][x].items()
                           if k.__class__ is not str and k[0] == inter), history)
        if cut is None:
            return liked
        return {x: v for x, v in liked.items() if v[1] is not None and v[1] >= cut}
