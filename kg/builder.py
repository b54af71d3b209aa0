"""The graph builder: a validated ``Dataset`` (plus entity mentions) → node and relationship rows,
and the ordered write of those rows into a :class:`~kg.store.GraphStore`.

:func:`build_rows` is pure: it reads the dataset and returns frames, touching no store.
:func:`build_graph` writes them.

Refresh semantics
-----------------
Every build has a *stamp*: a hash of the dataset's content hash, the mention rows and
:data:`~kg.schema.SCHEMA_VERSION`. The build merges every node and relationship, replacing
their properties and setting ``build`` to the stamp, then deletes the domain's built
relationships and nodes whose stamp differs — exactly what disappeared from the data. So after
a build the domain's graph equals the dataset: changed properties are updated, new rows are
added, vanished rows are gone (with the ``RECOMMENDED`` edges of a vanished user or item).
``RECOMMENDED`` edges themselves are not part of a build; publishing replaces them per run.

The domain's ``KgrecMeta`` node records the stamp with ``complete = false`` before the first
write and ``complete = true`` after the stale rows are gone. A build that is interrupted leaves
``complete = false`` (export refuses such a graph); rerunning it merges over whatever was
written, deletes the leftovers and converges to the graph of a clean run. A rerun of a build
that already completed with the same stamp writes nothing unless ``force=True``.
"""

from __future__ import annotations

import hashlib
import logging
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kg.errors import SchemaError
from kg.schema import (
    CONFIDENCE,
    DESCRIPTION,
    ENTITY_TYPE,
    EVENT,
    ID,
    KIND,
    LAT,
    LON,
    NAME,
    PROFILE_TEXT,
    PUBLISHED_RELS,
    RATING,
    RESERVED_NODE_KEYS,
    SCHEMA_VERSION,
    SOURCE,
    CO_INTERACTION_PARTNERS,
    FIRST_USER,
    SECOND_USER,
    TITLE,
    TS,
    USERS,
    WEIGHT,
    Label,
    RelType,
)
from kg.store import GraphCounts, GraphMeta, GraphStore, check_ids, now_iso
from quality.dataset import Dataset
from quality.errors import DataWarning

log = logging.getLogger(__name__)

#: Columns of the entity-mention frame produced by ``text/`` (``source`` may be absent).
MENTION_COLUMNS = ("item_id", "entity_id", "entity_name", "entity_type", "confidence", "source")

#: Order of writes: every node before any relationship, so relationships find their endpoints.
NODE_ORDER = (Label.USER, Label.ITEM, Label.CATEGORY, Label.ENTITY)
REL_ORDER = (RelType.INTERACTED, RelType.IN_CATEGORY, RelType.MENTIONS, RelType.FOLLOWS,
             RelType.CO_INTERACTED)

#: Multiply-adds of the item × item product computed at once by :func:`co_interactions`; it
#: bounds the memory of a block (about 30 bytes per multiply-add at worst).
_CO_BLOCK_WORK = 4_000_000

# Contract columns that become node properties under another name or not at all.
_USER_COLUMNS = {"user_id": None, "profile_text": PROFILE_TEXT, "lat": LAT, "lon": LON}
_ITEM_COLUMNS = {"item_id": None, "title": TITLE, "description": DESCRIPTION, "category": None,
                 "lat": LAT, "lon": LON}


@dataclass(frozen=True)
class GraphRows:
    """Everything one build writes, as frames (see :mod:`kg.store` for their columns).

    Attributes:
        domain: the dataset's domain.
        build: the build stamp written on every node and relationship.
        nodes: one frame per label.
        rels: one frame per built relationship type.
    """

    domain: str
    build: str
    nodes: dict[Label, pd.DataFrame]
    rels: dict[RelType, pd.DataFrame]

    def expected_counts(self) -> GraphCounts:
        """The counts a store holds for the domain once these rows are written (without
        ``RECOMMENDED`` and ``SUGGESTED``, which publishing owns)."""
        out = GraphCounts()
        for label, frame in self.nodes.items():
            out.nodes[str(label)] = len(frame)
        for rel, frame in self.rels.items():
            out.edges[str(rel)] = len(frame)
        return out


# --------------------------------------------------------------------------- rows


def _unix_seconds(ts: pd.Series) -> pd.Series:
    """Whole unix seconds (floor) of a UTC datetime column, as nullable Int64."""
    secs = (ts - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    return secs.astype("Int64")


def _prop_values(values: pd.Series) -> np.ndarray:
    """Property values of a column; empty text means "no such property" in the graph."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.to_numpy()
    s = values.astype(object)
    return s.where(s.notna() & (s.map(lambda v: v != "")), None).to_numpy()


def _node_frame(label: Label, frame: pd.DataFrame, id_col: str,
                mapping: dict[str, str | None]) -> pd.DataFrame:
    out = pd.DataFrame({ID: frame[id_col].astype(object).to_numpy()})
    for col, prop in mapping.items():
        if prop is not None and col in frame.columns:
            out[prop] = _prop_values(frame[col])
    extra = [c for c in frame.columns if c not in mapping]
    skipped = [c for c in extra if c in RESERVED_NODE_KEYS or c in out.columns]
    if skipped:
        warnings.warn(f"{label} attribute columns {skipped} clash with graph property names and "
                      f"are not stored on {label} nodes; rename them to keep them", DataWarning,
                      stacklevel=4)
    for col in extra:
        if col not in skipped:
            out[col] = _prop_values(frame[col])
    return out


def _users(dataset: Dataset) -> pd.DataFrame:
    return _node_frame(Label.USER, dataset.users, "user_id", _USER_COLUMNS)


def _items(dataset: Dataset) -> pd.DataFrame:
    return _node_frame(Label.ITEM, dataset.items, "item_id", _ITEM_COLUMNS)


def _interactions(dataset: Dataset) -> pd.DataFrame:
    inter = dataset.interactions
    rows = pd.DataFrame({
        "src": inter["user_id"].astype(object).to_numpy(),
        "dst": inter["item_id"].astype(object).to_numpy(),
        TS: _unix_seconds(inter["timestamp"]).to_numpy(),
        WEIGHT: inter["weight"].astype("float64").to_numpy(),
        EVENT: inter["event"].astype(object).to_numpy(),
        RATING: inter["rating"].astype("float64").to_numpy(),
    })
    # The gate drops duplicate (user, item, timestamp) rows; two timestamps within the same
    # second still collapse here because INTERACTED is keyed by whole seconds.
    dup = rows.duplicated(["src", "dst", TS], keep="last")
    if dup.any():
        warnings.warn(f"interactions: {int(dup.sum())} rows share (user_id, item_id, second) with "
                      f"a later row and are merged into it (INTERACTED is keyed by whole seconds)",
                      DataWarning, stacklevel=3)
        rows = rows[~dup]
    return rows.reset_index(drop=True)


def co_interactions(interactions: pd.DataFrame,
                    partners: int = CO_INTERACTION_PARTNERS) -> pd.DataFrame:
    """``CO_INTERACTED`` rows from ``INTERACTED`` rows (``src`` user, ``dst`` item).

    For every item ``i``, one row ``(i, x, users, first_user, second_user)`` for each of the
    ``partners`` items ``x != i`` that the most users interacted with as well as with ``i``
    (``users``: how many distinct users interacted with both; only pairs with at least one such
    user), ties broken by ``x``'s id in code-point order; ``first_user`` and ``second_user`` are
    the two of those users with the smallest ids in code-point order (``None`` when there is one
    user only). The counts are exact; only the choice of partners is bounded. The item × item
    counts are computed as a sparse product a block of items at a time, so memory stays bounded
    whatever the number of items.
    """
    if partners < 1:
        raise ValueError(f"partners must be >= 1, got {partners}")
    import scipy.sparse as sp

    pairs = interactions[["src", "dst"]].drop_duplicates()
    # Codes in code-point order: smaller code, smaller id.
    items = np.array(sorted(set(pairs["dst"])), dtype=object)
    users = np.array(sorted(set(pairs["src"])), dtype=object)
    user_codes = pd.Index(users).get_indexer(pairs["src"])
    item_codes = pd.Index(items).get_indexer(pairs["dst"])
    n_users, n_items = len(users), len(items)
    out_src: list[np.ndarray] = []
    out_dst: list[np.ndarray] = []
    out_n: list[np.ndarray] = []
    if n_items:
        f = sp.csr_matrix((np.ones(len(pairs), np.int32), (user_codes, item_codes)),
                          shape=(n_users, n_items))
        ft = f.T.tocsr()
        # multiply-adds per item row: the degrees of its users
        work = ft @ np.asarray(f.getnnz(axis=1), dtype=np.int64)
        start = 0
        while start < n_items:
            cum = np.cumsum(work[start:])
            stop = start + max(1, int(np.searchsorted(cum, _CO_BLOCK_WORK, side="right")))
            block = (ft[start:stop] @ f).tocsr()
            indptr, indices, data = block.indptr, block.indices, block.data
            for r in range(stop - start):
                cols, n = indices[indptr[r]:indptr[r + 1]], data[indptr[r]:indptr[r + 1]]
                keep = cols != start + r
                cols, n = cols[keep], n[keep]
                if len(n) > partners:  # only counts reaching the partners-th largest can stay
                    keep = n >= np.partition(n, len(n) - partners)[len(n) - partners]
                    cols, n = cols[keep], n[keep]
                order = np.lexsort((cols, -n))[:partners]  # most users first, then id
                out_src.append(np.full(len(order), start + r))
                out_dst.append(cols[order])
                out_n.append(n[order])
            start = stop
    src = np.concatenate(out_src) if out_src else np.zeros(0, np.int64)
    dst = np.concatenate(out_dst) if out_dst else np.zeros(0, np.int64)
    n = np.concatenate(out_n) if out_n else np.zeros(0, np.int64)
    first = np.full(len(src), -1, np.int64)
    second = np.full(len(src), -1, np.int64)
    if len(src):
        fans = ft.tocsr()
        fans.sort_indices()  # each item's users in code-point order
        # (user, item) pairs that exist, as sorted keys for membership tests
        known = np.unique(user_codes.astype(np.int64) * n_items + item_codes)
        sizes = np.diff(fans.indptr)[src]
        start = 0
        while start < len(src):  # chunks of about _CO_BLOCK_WORK (pair, user) rows
            stop = start + max(1, int(np.searchsorted(np.cumsum(sizes[start:]), _CO_BLOCK_WORK,
                                                      side="right")))
            # every user of the pair's first item, in order, kept where they have the second too
            rep = np.repeat(np.arange(start, stop), sizes[start:stop])
            offset = np.arange(len(rep)) - np.repeat(np.cumsum(sizes[start:stop]) - sizes[start:stop],
                                                     sizes[start:stop])
            user = fans.indices[fans.indptr[src[rep]] + offset].astype(np.int64)
            key = user * n_items + dst[rep]
            found = known[np.minimum(np.searchsorted(known, key), len(known) - 1)] == key
            rep, user = rep[found], user[found]
            head = np.r_[True, rep[1:] != rep[:-1]]  # first common user of each pair
            first[rep[head]] = user[head]
            nxt = np.flatnonzero(head) + 1
            nxt = nxt[(nxt < len(rep))]
            nxt = nxt[rep[nxt] == rep[nxt - 1]]
            second[rep[nxt]] = user[nxt]
            start = stop
    users_or_none = np.append(users, None)  # index -1 → None
    return pd.DataFrame({"src": items[src], "dst": items[dst],
                         USERS: pd.array(n.astype(np.int64), dtype="Int64"),
                         FIRST_USER: pd.Series(users_or_none[first], dtype=object),
                         SECOND_USER: pd.Series(users_or_none[second], dtype=object)})


def _categories(dataset: Dataset) -> tuple[pd.DataFrame, pd.DataFrame]:
    cats = dataset.item_categories()
    names = sorted(set(cats["category"].astype(str)))
    nodes = pd.DataFrame({ID: pd.Series(names, dtype=object), NAME: pd.Series(names, dtype=object)})
    rels = pd.DataFrame({"src": cats["item_id"].astype(object).to_numpy(),
                         "dst": cats["category"].astype(object).to_numpy()})
    return nodes, rels.drop_duplicates().reset_index(drop=True)


def _follows(dataset: Dataset) -> pd.DataFrame:
    links = dataset.user_links
    if len(links) == 0:
        return pd.DataFrame({"src": pd.Series(dtype=object), "dst": pd.Series(dtype=object),
                             KIND: pd.Series(dtype=object), TS: pd.Series(dtype="Int64")})
    ts = links["timestamp"] if "timestamp" in links else pd.Series(pd.NaT, index=links.index)
    rows = pd.DataFrame({
        "src": links["src_user_id"].astype(object).to_numpy(),
        "dst": links["dst_user_id"].astype(object).to_numpy(),
        KIND: links["kind"].astype(object).to_numpy(),
        TS: _unix_seconds(pd.to_datetime(ts, utc=True)).to_numpy(),
    })
    dup = rows.duplicated(["src", "dst"], keep="last")
    if dup.any():
        warnings.warn(f"user_links: {int(dup.sum())} repeated (src_user_id, dst_user_id) pairs; "
                      f"FOLLOWS keeps the last row of each pair", DataWarning, stacklevel=3)
        rows = rows[~dup]
    return rows.reset_index(drop=True)


def normalize_mentions(mentions: pd.DataFrame, dataset: Dataset) -> pd.DataFrame:
    """Check entity mentions against the dataset; one row per (item, entity), best confidence.

    Raises:
        ValueError: a required column is missing or a confidence is outside [0, 1].
        SchemaError: mentions name items the dataset does not have, or have empty entity ids.
    """
    required = [c for c in MENTION_COLUMNS if c != "source"]
    if missing := [c for c in required if c not in mentions.columns]:
        raise ValueError(f"mentions need columns {list(MENTION_COLUMNS)}; missing {missing}")
    m = mentions[[c for c in MENTION_COLUMNS if c in mentions.columns]].copy()
    if "source" not in m.columns:
        m["source"] = None
    m["confidence"] = pd.to_numeric(m["confidence"], errors="coerce").astype("float64")
    bad = m["confidence"].isna() | (m["confidence"] < 0) | (m["confidence"] > 1)
    if bad.any():
        ex = mentions.loc[bad.to_numpy(), ["item_id", "entity_id", "confidence"]].head(5)
        raise ValueError(f"mentions: {int(bad.sum())} of {len(m)} confidences are not numbers in "
                         f"[0, 1] (first: {ex.values.tolist()})")
    check_ids("mentions entity_id", m["entity_id"].astype(object))
    known = set(dataset.items["item_id"])
    unknown = ~m["item_id"].isin(known)
    if unknown.any():
        ex = m.loc[unknown, "item_id"].drop_duplicates().head(5).tolist()
        raise SchemaError(f"mentions: {int(unknown.sum())} rows name items missing from dataset "
                          f"{dataset.name!r} (first: {ex}); extract mentions from the same "
                          f"dataset the graph is built from")
    for col in ("item_id", "entity_id", "entity_name", "entity_type", "source"):
        m[col] = m[col].astype(object).where(m[col].notna(), None)
    # Best confidence first, then names in code-point order: the same rows in any order give
    # the same entity names and the same MENTIONS.
    m = m.sort_values(["item_id", "entity_id", "confidence", "entity_name"],
                      ascending=[True, True, False, True], kind="stable", na_position="last")
    return m.drop_duplicates(["item_id", "entity_id"]).reset_index(drop=True)


def _entities(m: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    best = m.sort_values(["entity_id", "confidence", "entity_name"], ascending=[True, False, True],
                         kind="stable", na_position="last").drop_duplicates("entity_id")
    nodes = pd.DataFrame({ID: best["entity_id"].to_numpy(), NAME: best["entity_name"].to_numpy(),
                          ENTITY_TYPE: best["entity_type"].to_numpy()})
    rels = pd.DataFrame({"src": m["item_id"].to_numpy(), "dst": m["entity_id"].to_numpy(),
                         CONFIDENCE: m["confidence"].to_numpy(), SOURCE: m["source"].to_numpy()})
    return nodes.reset_index(drop=True), rels


def _mentions_digest(m: pd.DataFrame | None) -> str:
    if m is None or len(m) == 0:
        return "none"
    hashed = pd.util.hash_pandas_object(m.astype(str), index=False).to_numpy()
    return hashlib.sha256(np.ascontiguousarray(hashed).tobytes()).hexdigest()


def build_stamp(dataset: Dataset, mentions: pd.DataFrame | None = None) -> str:
    """The stamp of a build: equal data, mentions and schema version give equal stamps."""
    m = normalize_mentions(mentions, dataset) if mentions is not None else None
    return _stamp(dataset, m)


def _stamp(dataset: Dataset, m: pd.DataFrame | None) -> str:
    text = f"{SCHEMA_VERSION}|{dataset.domain}|{dataset.content_hash}|{_mentions_digest(m)}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_rows(dataset: Dataset, mentions: pd.DataFrame | None = None) -> GraphRows:
    """Turn a dataset and its entity mentions into the rows of its graph. Pure.

    Args:
        dataset: a dataset that passed the quality gate.
        mentions: linked entity mentions (:data:`MENTION_COLUMNS`), or ``None`` for none.

    Returns:
        The rows, stamped with :func:`build_stamp`.
    """
    m = normalize_mentions(mentions, dataset) if mentions is not None else None
    cat_nodes, cat_rels = _categories(dataset)
    if m is not None and len(m):
        ent_nodes, ent_rels = _entities(m)
    else:
        ent_nodes = pd.DataFrame({ID: pd.Series(dtype=object), NAME: pd.Series(dtype=object),
                                  ENTITY_TYPE: pd.Series(dtype=object)})
        ent_rels = pd.DataFrame({c: pd.Series(dtype=object) for c in ("src", "dst", SOURCE)})
        ent_rels.insert(2, CONFIDENCE, pd.Series(dtype="float64"))
    users = _users(dataset)
    items = _items(dataset)
    interactions = _interactions(dataset)
    for label, frame in ((Label.USER, users), (Label.ITEM, items),
                         (Label.CATEGORY, cat_nodes), (Label.ENTITY, ent_nodes)):
        check_ids(f"{dataset.name}: {label} ids", frame[ID])
    return GraphRows(
        domain=dataset.domain,
        build=_stamp(dataset, m),
        nodes={Label.USER: users, Label.ITEM: items, Label.CATEGORY: cat_nodes,
               Label.ENTITY: ent_nodes},
        rels={RelType.INTERACTED: interactions, RelType.IN_CATEGORY: cat_rels,
              RelType.MENTIONS: ent_rels, RelType.FOLLOWS: _follows(dataset),
              RelType.CO_INTERACTED: co_interactions(interactions)},
    )


# --------------------------------------------------------------------------- writing


def write_rows(store: GraphStore, rows: GraphRows, force: bool = False) -> GraphCounts:
    """Write a build's rows into ``store`` and delete what the build no longer has.

    Args:
        store: the graph store.
        rows: the output of :func:`build_rows`.
        force: rewrite even when the domain's last complete build has the same stamp.

    Returns:
        The domain's counts after the build.

    Raises:
        SchemaError: the domain's graph was written by a newer schema version, or the counts
            after the build differ from the rows (another writer on the same domain).
        GraphStoreError: the store failed; rerunning converges.
    """
    domain, build = rows.domain, rows.build
    store.ensure_schema()
    meta = store.read_meta(domain)
    if meta is not None and meta.schema_version > SCHEMA_VERSION:
        raise SchemaError(f"domain {domain!r} in {store.location} was written with graph schema "
                          f"version {meta.schema_version}, newer than this code's "
                          f"{SCHEMA_VERSION}; upgrade kgrec or drop the domain first")
    expected = rows.expected_counts()
    if (not force and meta is not None and meta.complete and meta.build == build
            and meta.schema_version == SCHEMA_VERSION):
        log.info("graph of domain %s already holds build %s; nothing to write", domain, build)
        return store.counts(domain)
    t0 = time.perf_counter()
    # A domain that holds nothing yet cannot hold anything stale: skip the scan (a full pass
    # over the domain's relationships) on first builds.
    empty = store.counts(domain).total_nodes == 0
    store.write_meta(GraphMeta(domain, SCHEMA_VERSION, build, complete=False, updated_at=now_iso()))
    for label in NODE_ORDER:
        store.write_nodes(label, domain, rows.nodes[label], build)
    for rel in REL_ORDER:
        store.write_rels(rel, domain, rows.rels[rel], build)
    deleted = GraphCounts() if empty else store.delete_stale(domain, build)
    store.write_meta(GraphMeta(domain, SCHEMA_VERSION, build, complete=True, updated_at=now_iso()))
    store.flush()
    counts = store.counts(domain)
    got = GraphCounts(dict(counts.nodes), {**counts.edges, **{str(r): 0 for r in PUBLISHED_RELS}})
    if got != expected:
        raise SchemaError(f"domain {domain!r} in {store.location} holds {got} after build {build}, "
                          f"but the build wrote {expected}; did another process write the same "
                          f"domain? Rerun the build")
    log.info("built graph of domain %s (build %s) in %.1fs: %s; deleted stale %s",
             domain, build, time.perf_counter() - t0, counts, deleted)
    return counts


def build_graph(
    store: GraphStore,
    dataset: Dataset,
    mentions: pd.DataFrame | None = None,
    force: bool = False,
) -> GraphCounts:
    """Build (or refresh) the dataset's domain in ``store``; see the module doc for semantics.

    Args:
        store: where the graph lives.
        dataset: a dataset that passed the quality gate.
        mentions: linked entity mentions from ``text/`` (:data:`MENTION_COLUMNS`), if any.
        force: rewrite even if the same build already completed.

    Returns:
        The domain's node and relationship counts after the build.
    """
    return write_rows(store, build_rows(dataset, mentions), force=force)
