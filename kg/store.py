"""The ``GraphStore`` protocol every graph backend implements, and the row handling they share.

Rows travel as pandas frames. A node frame has an ``id`` column plus one column per property;
a relationship frame has ``src`` and ``dst`` (the endpoint ids) plus the properties its
:class:`~kg.schema.RelSpec` lists. Missing values (``None``/``NaN``) mean "no such property".
Both backends turn frames into records with :func:`node_records` / :func:`rel_frame` and shape
what they read back with :func:`finish_node_rows` / :func:`finish_rel_rows`, so the same graph
reads back as equal frames from either store.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from kg.errors import SchemaError
from kg.schema import (
    BUILD,
    DOMAIN,
    ID,
    MAX_ID_BYTES,
    PROP_DTYPES,
    RELS,
    RESERVED_NODE_KEYS,
    RUN_ID,
    Label,
    PathKind,
    RelType,
)

#: The columns :meth:`GraphStore.path_rows_many` returns for each kind: one row per group of
#: paths from the user to one of the items (``item_id``). Groups, and the count each is ranked by:
#:
#: * ``co_interaction``: per ``via_item`` among the item's ``CO_INTERACTED`` partners (see
#:   :data:`kg.schema.CO_INTERACTION_PARTNERS`), ``n_users`` distinct other users, of whom
#:   ``other_user`` has the smallest id in code-point order;
#: * ``entity``: one row per path, ranked by ``via_confidence * item_confidence``;
#: * ``friend``: per ``friend``, ``n_times`` interactions with the item, the latest at ``ts``;
#: * ``category``: per ``category``, ``n_items`` of the user's items in it (the item itself left
#:   out), the latest liked at ``ts`` (``latest_items``: those liked at ``ts``, sorted).
PATH_GROUP_COLUMNS: dict[PathKind, tuple[str, ...]] = {
    PathKind.CO_INTERACTION: ("item_id", "via_item", "n_users", "other_user"),
    PathKind.ENTITY: ("item_id", "via_item", "entity", "via_confidence", "item_confidence"),
    PathKind.FRIEND: ("item_id", "friend", "n_times", "ts"),
    PathKind.CATEGORY: ("item_id", "category", "n_items", "ts", "latest_items"),
}

#: Columns of the frame :meth:`GraphStore.write_recommendations` takes.
RECOMMENDATION_COLUMNS = ("user_id", "item_id", "rank", "score", "reason")
PEOPLE_COLUMNS = ("user_id", "suggested_user_id", "rank", "score", "reason")


def _zero_nodes() -> dict[str, int]:
    return {str(label): 0 for label in Label}


def _zero_edges() -> dict[str, int]:
    return {str(rel): 0 for rel in RelType}


@dataclass(frozen=True)
class GraphCounts:
    """Node counts per label and relationship counts per type, for one domain.

    Every label and type is present (zero when absent), so two counts compare with ``==``.

    Attributes:
        nodes: ``{"User": n, "Item": n, "Category": n, "Entity": n}``.
        edges: ``{"INTERACTED": n, "IN_CATEGORY": n, "MENTIONS": n, "FOLLOWS": n,
            "RECOMMENDED": n, "CO_INTERACTED": n, "SUGGESTED": n}``.
    """

    nodes: dict[str, int] = field(default_factory=_zero_nodes)
    edges: dict[str, int] = field(default_factory=_zero_edges)

    @property
    def total_nodes(self) -> int:
        return sum(self.nodes.values())

    @property
    def total_edges(self) -> int:
        return sum(self.edges.values())

    def __str__(self) -> str:
        nodes = ", ".join(f"{k}={v}" for k, v in self.nodes.items())
        edges = ", ".join(f"{k}={v}" for k, v in self.edges.items())
        return f"nodes: {nodes}; relationships: {edges}"


@dataclass(frozen=True)
class GraphMeta:
    """What the graph records about one domain (the ``KgrecMeta`` node).

    Attributes:
        domain: the domain.
        schema_version: :data:`kg.schema.SCHEMA_VERSION` of the code that wrote the graph.
        build: stamp of the last build that started (see :mod:`kg.builder`).
        complete: whether that build finished; ``False`` after an interrupted build.
        updated_at: ISO-8601 UTC time of the last change.
    """

    domain: str
    schema_version: int
    build: str
    complete: bool
    updated_at: str


@runtime_checkable
class GraphStore(Protocol):
    """Where the knowledge graph lives: Neo4j (:class:`~kg.neo4j_store.Neo4jStore`) or an
    embedded networkx graph (:class:`~kg.networkx_store.NetworkXStore`).

    Every method is scoped to one ``domain``; nothing written for one domain is visible
    through another. Writes are idempotent (merge by ``(label, domain, id)`` for nodes and by
    endpoints plus :attr:`RelSpec.key` for relationships). Failures raise
    :class:`~kg.errors.GraphStoreError` (backend trouble) or :class:`~kg.errors.SchemaError`
    (rows that do not fit the schema); nothing fails silently.

    Attributes:
        location: where the graph lives (a URI or a file path), for messages and refs.
    """

    location: str

    def ensure_schema(self) -> None:
        """Create constraints and indexes if missing (idempotent)."""

    def read_meta(self, domain: str) -> GraphMeta | None:
        """The domain's meta record, or ``None`` when nothing was ever built for it."""

    def write_meta(self, meta: GraphMeta) -> None:
        """Create or replace the domain's meta record."""

    def write_nodes(self, label: Label, domain: str, rows: pd.DataFrame, build: str) -> int:
        """Merge nodes (``id`` + property columns), replacing their properties and stamping
        ``build``. Returns the number of rows written. Raises ``ValueError`` for a repeated id
        and ``SchemaError`` for an empty or over-long one."""

    def write_rels(self, rel: RelType, domain: str, rows: pd.DataFrame, build: str) -> int:
        """Merge relationships (``src``, ``dst`` + properties) between existing nodes, stamping
        ``build``. Raises ``SchemaError`` when an endpoint does not exist and ``ValueError``
        when two rows share endpoints and key."""

    def delete_stale(self, domain: str, build: str) -> GraphCounts:
        """Delete the domain's built relationships, then nodes, whose stamp is not ``build``.
        Returns what was deleted."""

    def drop_domain(self, domain: str) -> GraphCounts:
        """Delete everything of the domain (meta included). Returns what was deleted."""

    def counts(self, domain: str) -> GraphCounts:
        """Nodes per label and relationships per type of the domain."""

    def node_rows(self, label: Label, domain: str) -> pd.DataFrame:
        """All nodes of a label: ``id`` then properties (sorted by name), rows sorted by id."""

    def rel_rows(self, rel: RelType, domain: str) -> pd.DataFrame:
        """All relationships of a type: ``src``, ``dst`` then the spec's properties, sorted."""

    def node_props(self, label: Label, domain: str, ids: Sequence[str]) -> dict[str, dict]:
        """Properties of the given nodes by id (unknown ids are left out)."""

    def path_groups_many(self, domain: str, user_id: str, item_ids: Sequence[str], limit: int,
                         kinds: Sequence[PathKind] = tuple(PathKind),
                         history: int | None = None) -> dict[PathKind, list[tuple]]:
        """Path groups from a user to each of several items, per kind, as tuples in
        :data:`PATH_GROUP_COLUMNS` order,
        read in one go (one query per kind, in one transaction where the backend has them).

        For each item, only its best ``limit`` groups of each kind are kept, in
        :func:`path_group_key` order (ties broken on ids there, so no more than ``limit``):
        exactly the groups the best ``limit`` paths of each kind come from
        (:func:`cut_path_groups` applies the cut).
        With ``history``, the paths that pass through the user's own items (co-interaction,
        entity, category) use only the items of their ``history`` most recent interactions
        (:func:`history_cut`); counts such as a category's ``n_items`` are then counts among
        those.
        Unknown users or items give no rows."""

    def path_rows_many(self, domain: str, user_id: str, item_ids: Sequence[str], limit: int,
                       kinds: Sequence[PathKind] = tuple(PathKind),
                       history: int | None = None) -> dict[PathKind, pd.DataFrame]:
        """:meth:`path_groups_many` as one frame per kind (:func:`path_group_frame`)."""

    def write_recommendations(self, domain: str, run_id: str, rows: pd.DataFrame) -> int:
        """Replace the domain's ``RECOMMENDED`` relationships with ``rows``
        (:data:`RECOMMENDATION_COLUMNS`): the new ones are written first, then those of
        other runs are deleted. Returns the number written."""

    def write_people(self, domain: str, run_id: str, rows: pd.DataFrame) -> int:
        """Replace the domain's ``SUGGESTED`` relationships (people to follow) with ``rows``
        (:data:`PEOPLE_COLUMNS`), as :meth:`write_recommendations` does for the lists; no rows
        removes the previous run's. Returns the number written."""

    def flush(self) -> None:
        """Make every write so far durable (a no-op where each write already is)."""

    def close(self) -> None:
        """Flush and release the backend."""


# --------------------------------------------------------------------------- shared row handling


def now_iso() -> str:
    """The current UTC time as ISO-8601 (the ``updated_at`` of meta records)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def check_ids(what: str, ids: pd.Series) -> None:
    """Refuse empty, missing or over-long ids (every backend indexes them)."""
    s = pd.Series(ids, dtype=object)
    bad = s.isna() | (s.map(lambda v: not isinstance(v, str) or v == ""))
    if bad.any():
        ex = s[bad].head(5).tolist()
        raise SchemaError(f"{what}: {int(bad.sum())} of {len(s)} ids are empty or not strings "
                          f"(first: {ex}); every node needs a non-empty string id")
    nbytes = s.map(lambda v: len(v.encode("utf-8")))
    if (long := nbytes > MAX_ID_BYTES).any():
        ex = [v[:40] + "…" for v in s[long].head(5)]
        raise SchemaError(f"{what}: {int(long.sum())} ids are longer than {MAX_ID_BYTES} UTF-8 "
                          f"bytes (longest {int(nbytes.max())}; first: {ex}); shorten or hash "
                          f"them before building the graph")


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns of native Python values, ``None`` wherever a value is missing."""
    obj = frame.astype(object)
    return obj.where(frame.notna(), None)


def batches(frame: pd.DataFrame, size: int) -> Iterator[pd.DataFrame]:
    """Consecutive slices of at most ``size`` rows."""
    if size < 1:
        raise ValueError(f"batch size must be >= 1, got {size}")
    for start in range(0, len(frame), size):
        yield frame.iloc[start:start + size]


def node_records(label: Label, rows: pd.DataFrame) -> list[dict[str, Any]]:
    """``[{"id": ..., "props": {...}}]`` with missing properties left out of ``props``."""
    if ID not in rows.columns:
        raise ValueError(f"{label} rows need an '{ID}' column; got {list(rows.columns)}")
    if clash := [c for c in rows.columns if c in RESERVED_NODE_KEYS and c != ID]:
        raise ValueError(f"{label} rows must not carry {clash}: the store sets them itself")
    check_ids(f"{label} rows", rows[ID])
    if (dup := rows[ID].duplicated()).any():
        raise ValueError(f"{label} rows: {int(dup.sum())} repeated ids "
                         f"(first: {rows.loc[dup, ID].head(5).tolist()}); ids are unique per domain")
    plain = _plain(rows)
    ids = plain[ID].tolist()
    props = plain.drop(columns=[ID]).to_dict("records")
    return [{"id": i, "props": {k: v for k, v in p.items() if v is not None}}
            for i, p in zip(ids, props)]


def rel_frame(rel: RelType, rows: pd.DataFrame) -> pd.DataFrame:
    """Relationship rows checked and reduced to ``src``, ``dst`` and the spec's properties, as
    native Python values with ``None`` for missing ones: exactly what every store writes.

    Raises:
        ValueError: a column is missing, or two rows have the same endpoints and key.
        SchemaError: a key property is missing.
    """
    spec = RELS[rel]
    if missing := [c for c in ("src", "dst", *spec.key) if c not in rows.columns]:
        raise ValueError(f"{rel} rows need columns {['src', 'dst', *spec.key]}; "
                         f"missing {missing}")
    cols = ["src", "dst"] + [p for p in spec.props if p != RUN_ID or p in rows.columns]
    frame = rows.reindex(columns=cols)
    for k in spec.key:
        if frame[k].isna().any():
            raise SchemaError(f"{rel} rows: {int(frame[k].isna().sum())} rows have no '{k}', "
                              f"which tells {rel} relationships between one pair apart")
    if (dup := frame.duplicated(["src", "dst", *spec.key])).any():
        ex = frame.loc[dup, ["src", "dst", *spec.key]].head(5).values.tolist()
        raise ValueError(f"{rel} rows: {int(dup.sum())} repeat the endpoints"
                         f"{' and ' + '/'.join(spec.key) if spec.key else ''} of an earlier row "
                         f"(first: {ex}); one row per relationship")
    return _plain(frame)


def rel_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One dict per row of a :func:`rel_frame` frame."""
    names = list(frame.columns)
    return [dict(zip(names, values)) for values in zip(*(frame[c].tolist() for c in names))]


def finish_node_rows(records: list[tuple[str, Mapping[str, Any]]]) -> pd.DataFrame:
    """The frame :meth:`GraphStore.node_rows` returns, from ``(id, properties)`` pairs."""
    records = sorted(records, key=lambda r: r[0])
    props = [{k: v for k, v in p.items() if k not in (DOMAIN, BUILD, ID)} for _, p in records]
    frame = pd.DataFrame.from_records(props) if props else pd.DataFrame(index=range(0))
    frame = frame.reindex(columns=sorted(frame.columns))
    frame.insert(0, ID, pd.Series([r[0] for r in records], dtype=object))
    return frame.reset_index(drop=True)


def finish_rel_rows(rel: RelType, columns: dict[str, list]) -> pd.DataFrame:
    """The frame :meth:`GraphStore.rel_rows` returns: typed columns, sorted by endpoints and key."""
    spec = RELS[rel]
    names = ["src", "dst", *spec.props]
    frame = pd.DataFrame({n: pd.Series(columns.get(n, []), dtype=object) for n in names})
    for p in spec.props:
        dtype = PROP_DTYPES[p]
        if dtype == "object":
            frame[p] = frame[p].astype(object).where(frame[p].notna(), None)
        else:
            frame[p] = pd.to_numeric(frame[p]).astype(dtype)
    # (src, dst, key) is unique per relationship, so this order is total and both stores agree.
    # Sorting integer codes is much faster than comparing a million strings; factorize with
    # sort=True orders the codes as Python orders the strings (by code point).
    if len(frame):
        keys = [pd.factorize(frame[c], sort=True)[0] for c in ("src", "dst")]
        keys += [frame[k].to_numpy() for k in spec.key]
        frame = frame.iloc[np.lexsort(keys[::-1])]
    return frame.reset_index(drop=True)


def id_order(id_: str) -> str:
    """Sort key of an id in Neo4j's string order: UTF-16 code units, which differs from Python's
    code-point order only between characters above U+FFFF and those from U+E000 to U+FFFF.
    Path groups break ties in this order, so Cypher can cut them with ``ORDER BY``.

    The key is a str of the id's code units: the id itself unless it has a character above
    U+FFFF (the common case costs no copy; encoding every id took a tenth of an explanation)."""
    if id_.isascii() or max(id_) <= "\uffff":
        return id_
    units = id_.encode("utf-16-be", "surrogatepass")
    return "".join(chr(int.from_bytes(units[n:n + 2], "big")) for n in range(0, len(units), 2))


def check_history(history: int | None) -> None:
    """Refuse a history cap below 1 (``None``, no cap, is fine)."""
    if history is not None and history < 1:
        raise ValueError(f"history must be >= 1 or None, got {history}")


def history_cut(times: Iterable[Any], history: int | None) -> Any:
    """The time from which a user's interactions count when explanations look at their
    ``history`` most recent ones: the ``history``-th latest of ``times`` (one per interaction,
    None for a missing time, which counts as the oldest). ``None`` keeps every interaction: when
    there are no more than ``history``, when ``history`` is None, or when that interaction has
    no time. An item is kept when some interaction with it is at or after the cut, so ties at
    the cut are all kept. The Cypher of :func:`kg.cypher.path_groups` computes the same cut."""
    check_history(history)
    if history is None:
        return None
    times = list(times)
    if len(times) <= history:
        return None
    known = [t for t in times if t is not None]
    if len(known) < history:
        return None
    return heapq.nlargest(history, known)[-1]


def path_group_key(kind: PathKind, row: Sequence[Any]) -> tuple:
    """The rank of a group of :data:`PATH_GROUP_COLUMNS` (as a tuple), best first; a total order.

    * ``co_interaction``: most ``n_users``, then ``via_item``;
    * ``entity``: largest confidence product (a missing or NaN confidence last), then
      ``via_item``, then ``entity``;
    * ``friend``: most ``n_times``, then the latest ``ts``, then ``friend``;
    * ``category``: most ``n_items``, then ``category``.

    Ids compare in :func:`id_order`."""
    if kind is PathKind.ENTITY:
        a, b = row[3], row[4]
        p = math.nan if a is None or b is None else float(a) * float(b)
        missing = p != p
        return (missing, 0.0 if missing else -p, id_order(row[1]), id_order(row[2]))
    if kind is PathKind.FRIEND:
        return (-row[2], -row[3], id_order(row[1]))
    return (-row[2], id_order(row[1]))


def cut_path_groups(kind: PathKind, records: list[Sequence[Any]], limit: int) -> list[tuple]:
    """What :meth:`GraphStore.path_groups_many` returns for one kind, from tuples in
    :data:`PATH_GROUP_COLUMNS` order: id lists sorted, each item's groups cut to its best
    ``limit`` in :func:`path_group_key` order (ties broken there, so exactly ``limit`` where it
    has more), rows sorted by every column but the lists.

    Every store passes its rows through here, so the same graph gives equal rows."""
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    cols = PATH_GROUP_COLUMNS[kind]
    lists = [n for n, c in enumerate(cols) if c == "latest_items"]
    by_item: dict[str, list[tuple]] = {}
    for r in records:
        r = tuple(sorted(v) if n in lists else v for n, v in enumerate(r)) if lists else tuple(r)
        by_item.setdefault(r[0], []).append(r)
    kept: list[tuple] = []
    for rows in by_item.values():
        if len(rows) > limit:
            rows = sorted(rows, key=lambda r: path_group_key(kind, r))[:limit]
        kept.extend(rows)
    order = [n for n in range(len(cols)) if n not in lists]
    kept.sort(key=lambda r: tuple((r[n] is None, r[n]) for n in order))  # None last
    return kept


def path_group_frame(kind: PathKind, rows: list[tuple]) -> pd.DataFrame:
    """Rows of :func:`cut_path_groups` as the frame :meth:`GraphStore.path_rows_many` returns."""
    return pd.DataFrame.from_records(rows, columns=list(PATH_GROUP_COLUMNS[kind]))


def recommendation_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """A recommendations frame (:data:`RECOMMENDATION_COLUMNS`) as ``RECOMMENDED`` rows."""
    return _ranked_frame(RelType.RECOMMENDED, rows, RECOMMENDATION_COLUMNS, "recommendation",
                         "each item is recommended once per user")


def people_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """A people-to-follow frame (:data:`PEOPLE_COLUMNS`) as ``SUGGESTED`` rows."""
    return _ranked_frame(RelType.SUGGESTED, rows, PEOPLE_COLUMNS, "people",
                         "each person is suggested once per user")


def _ranked_frame(rel: RelType, rows: pd.DataFrame, columns: tuple[str, ...], what: str,
                  once: str) -> pd.DataFrame:
    if missing := [c for c in columns if c not in rows.columns]:
        raise ValueError(f"{what} rows need columns {list(columns)}; missing {missing}")
    src, dst = columns[:2]
    frame = rows[list(columns)].rename(columns={src: "src", dst: "dst"})
    frame = frame.assign(rank=frame["rank"].astype("int64"), score=frame["score"].astype("float64"))
    if (dup := frame.duplicated(["src", "dst"])).any():
        ex = frame.loc[dup, ["src", "dst"]].head(5).values.tolist()
        raise ValueError(f"{what} rows: {int(dup.sum())} duplicated ({src}, {dst}) pairs (first: {ex}); {once}")
    return rel_frame(rel, frame)


def endpoint_error(rel: RelType, domain: str, missing: list[tuple[str, str]], total: int) -> SchemaError:
    spec = RELS[rel]
    return SchemaError(
        f"{rel} in domain {domain!r}: {len(missing)} of {total} rows point at {spec.src} or "
        f"{spec.dst} nodes that do not exist (first: {missing[:5]}); write {spec.src} and "
        f"{spec.dst} nodes before {rel} relationships")


def _best(pairs: list[tuple[float, Any]], limit: int) -> list[Any]:
    """The values whose key reaches the ``limit``-th largest key (ties kept): a superset of what
    :func:`kg.store.cut_path_groups` keeps, so cutting here first changes nothing."""
    if len(pairs) <= limit:
        return [v for _, v in pairs]
    cut = heapq.nlargest(limit, (k for k, _ in pairs))[-1]
    return [v for k, v in pairs if k >= cut]


class PathTables:
    """The part of one domain's graph an explanation read joins over, as plain dicts and sets.

    Nodes are ``(label, domain, id)`` tuples. The embedded store holds the whole domain
    (:class:`kg.networkx_store.NetworkXStore`); the Neo4j store fills one for a user and a list
    of items from a single read (``Neo4jStore.path_groups_many``). :meth:`groups` is the one
    definition of the path groups both then cut with :func:`cut_path_groups`.

    Attributes:
        liked: user → {item: (number of interactions, latest ts)}.
        fans: item → users who interacted with it.
        mentions: item → {entity: confidence}.
        categories: item → its categories.
        co: item → {partner: (users, first_user, second_user)} of its ``CO_INTERACTED``
            relationships.
        follows: user → the users they follow (themselves left out).
    """

    def __init__(self) -> None:
        self.liked: dict[tuple, dict[tuple, tuple[int, Any]]] = {}
        self.fans: dict[tuple, set[tuple]] = defaultdict(set)
        self.mentions: dict[tuple, dict[tuple, Any]] = {}
        self.categories: dict[tuple, list[tuple]] = {}
        self.co: dict[tuple, dict[tuple, Any]] = {}
        self.follows: dict[tuple, set[tuple]] = {}

    def groups(self, kind: PathKind, u: tuple, items: list[tuple], limit: int,
               liked: dict[tuple, tuple[int, Any]]) -> list[tuple]:
        """Rows of :data:`kg.store.PATH_GROUP_COLUMNS` for ``kind``, already cut per item, through
        ``liked``: the user's items the paths may go through (:meth:`recent`)."""
        out: list[tuple] = []
        if kind is PathKind.CO_INTERACTION:
            # Mirrors the co-interaction body of cypher.path_groups: the item's CO_INTERACTED partners that the
            # user liked, counted without the user, named by the smallest other user stored.
            mine = liked    # (kept) items the user interacted with, tested by membership
            for i in items:
                own = 1 if u in self.fans.get(i, ()) else 0
                pairs = []
                for x, (c, first, second) in self.co.get(i, {}).items():
                    if c is not None and x in mine and (n := c - own) > 0:
                        pairs.append((n, (x, n, second if first == u[2] else first)))
                out.extend((i[2], x[2], n, other) for x, n, other in _best(pairs, limit))
        elif kind is PathKind.ENTITY:
            by_entity: dict[tuple, list[tuple[tuple, Any]]] = defaultdict(list)
            for x in liked:
                for e, c in self.mentions.get(x, {}).items():
                    by_entity[e].append((x, c))
            for i in items:
                pairs = []
                for e, c2 in self.mentions.get(i, {}).items():
                    for x, c1 in by_entity.get(e, ()):
                        if x != i:
                            bad = c1 is None or c2 is None or c1 != c1 or c2 != c2
                            pairs.append((-1.0 if bad else float(c1) * float(c2), (x, e, c1, c2)))
                out.extend((i[2], x[2], e[2], c1, c2) for x, e, c1, c2 in _best(pairs, limit))
        elif kind is PathKind.FRIEND:
            friends = self.follows.get(u, set())
            for i in items:
                pairs = [(n, (f, n, ts)) for f in friends
                         if (got := self.liked.get(f, {}).get(i)) is not None for n, ts in [got]]
                out.extend((i[2], f[2], n, ts) for f, n, ts in _best(pairs, limit))
        else:  # CATEGORY
            by_cat: dict[tuple, list[tuple[tuple, Any]]] = defaultdict(list)
            for x, (_, ts) in liked.items():
                for c in self.categories.get(x, ()):
                    by_cat[c].append((x, ts))
            for i in items:
                pairs = []
                for c in self.categories.get(i, ()):
                    if xs := [(x, ts) for x, ts in by_cat.get(c, ()) if x != i]:
                        latest = max(ts for _, ts in xs)
                        pairs.append((len(xs), (c, len(xs), latest, [x[2] for x, ts in xs if ts == latest])))
                out.extend((i[2], c[2], n, ts, latest) for c, n, ts, latest in _best(pairs, limit))
        return out
