"""The Neo4j graph store: batched, parameterized Cypher over the official driver.

Every write runs in a managed transaction (``session.execute_write``), which the driver retries
on transient errors (deadlocks, leader switches, a dropped connection) for up to
``max_retry_time_s``. Each batch is one transaction that unwinds its parameters and merges, so
a batch is either fully written or not at all, and rerunning any batch changes nothing. While a
label or relationship type has nothing in the domain yet (a first build), batches ``CREATE``
instead of ``MERGE``; see :mod:`kg.cypher` for why that is safe and how relationship batches
are packed.
Opening the store checks the connection a bounded number of times and then raises
:class:`~kg.errors.GraphStoreError` naming the URI; a refused login says so without the password.
"""

from __future__ import annotations

import functools
import logging
import math
import secrets
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from neo4j import GraphDatabase, ManagedTransaction
from neo4j.exceptions import (
    AuthError,
    ConfigurationError,
    DriverError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
)

from kg import cypher
from kg.cypher import Query
from kg.errors import GraphStoreError
from kg.schema import (
    BUILD,
    BUILT_RELS,
    COMPLETE,
    DOMAIN,
    RELS,
    SCHEMA_VERSION_KEY,
    PROP_DTYPES,
    UPDATED_AT,
    Label,
    PathKind,
    RelType,
)
from kg.store import (
    GraphCounts,
    GraphMeta,
    PathTables,
    check_history,
    endpoint_error,
    finish_node_rows,
    cut_path_groups,
    path_group_frame,
    finish_rel_rows,
    node_records,
    people_frame,
    recommendation_frame,
    rel_frame,
)

if TYPE_CHECKING:
    from kg.server import Neo4jSettings

log = logging.getLogger(__name__)

#: Longest server message quoted in an error; messages can echo values, never whole payloads.
_MAX_MESSAGE = 300


#: Separators tried in turn for joining a batch's ids (see ``kg.cypher._rels_head``); the
#: first that occurs in none of the ids wins, and a random one is drawn if all of them occur.
_SEPARATORS = ("\x1f", "\x1e", "\x1d", "\x1c")


def _separator(*id_columns: list[str]) -> str:
    joined = ["".join(col) for col in id_columns]
    for sep in _SEPARATORS:
        if not any(sep in text for text in joined):
            return sep
    while True:
        sep = f"\x1f{secrets.token_hex(8)}\x1f"
        if not any(sep in text for text in joined):
            return sep


def _number_text(values: list, is_float: bool) -> list[str]:
    if not is_float:
        return ["" if v is None else str(int(v)) for v in values]
    out = []
    for v in values:
        if v is None:
            out.append("")
        elif math.isfinite(v):
            out.append(repr(float(v)))
        else:  # the spellings Java's Double.parseDouble (behind toFloat) reads
            out.append("NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity"))
    return out


def packed_batches(rel: RelType, frame: pd.DataFrame, size: int) -> Iterator[tuple[dict[str, Any], int]]:
    """The parameters of each batch of a relationship write (layout: ``kg.cypher._rels_head``).

    Args:
        rel: the relationship type.
        frame: rows from :func:`kg.store.rel_frame`.
        size: relationships per batch.

    Yields:
        ``(parameters, number of relationships)`` per batch.
    """
    if size < 1:
        raise ValueError(f"batch size must be >= 1, got {size}")
    if not len(frame):
        return
    # Group rows by start node (first-seen order, stable inside a group).
    codes, _ = pd.factorize(frame["src"], sort=False)
    order = np.argsort(codes, kind="stable")
    codes = codes[order]
    src = frame["src"].to_numpy(dtype=object)[order].tolist()
    dst = frame["dst"].to_numpy(dtype=object)[order].tolist()
    sep = _separator(src, dst)
    numbers, texts = {}, {}
    for p in cypher.value_props(rel):
        values = frame[p].to_numpy(dtype=object)[order].tolist() if p in frame.columns \
            else [None] * len(frame)
        if PROP_DTYPES[p] == "object":
            texts[p] = values
        else:
            numbers[p] = _number_text(values, PROP_DTYPES[p] == "float64")
    starts = [0, *(np.flatnonzero(np.diff(codes)) + 1).tolist()]
    ends = [*starts[1:], len(codes)]
    # Cut batches at group boundaries once they reach `size`; a start node with more rows
    # than `size` is split into several groups.
    segments: list[tuple[int, int]] = []
    for first, end in zip(starts, ends):
        for start in range(first, end, size):
            segments.append((start, min(end, start + size)))
    batch: list[tuple[int, int]] = []
    n = 0
    for seg in segments:
        batch.append(seg)
        n += seg[1] - seg[0]
        if n >= size:
            yield _pack(batch, src, dst, numbers, texts, sep), n
            batch, n = [], 0
    if batch:
        yield _pack(batch, src, dst, numbers, texts, sep), n


def _pack(segments: list[tuple[int, int]], src: list, dst: list, numbers: dict, texts: dict,
          sep: str) -> dict[str, Any]:
    lo, hi = segments[0][0], segments[-1][1]
    params: dict[str, Any] = {
        "sep": sep,
        "src": sep.join(src[start] for start, _ in segments),
        "offsets": sep.join(str(start - lo) for start in [s for s, _ in segments] + [hi]),
    }
    positions, targets = pd.factorize(pd.Series(dst[lo:hi], dtype=object), sort=False)
    params["targets"] = sep.join(targets)
    params["dst"] = sep.join(map(str, positions.tolist()))
    for p, text in numbers.items():
        params[p] = sep.join(text[lo:hi])
    for p, values in texts.items():
        codes, uniques = pd.factorize(pd.Series(values[lo:hi], dtype=object), sort=False)
        params[p] = sep.join("" if c < 0 else str(c) for c in codes.tolist())
        params[f"{p}_values"] = [str(u) for u in uniques]
    return params


def _by_node_id(batch: dict[str, Any], src_ids: dict[str, int],
                dst_ids: dict[str, int]) -> dict[str, Any] | None:
    """A packed batch with its start and end node ids replaced by internal node ids (the
    layout of ``kg.cypher._rels_head(by_node_id=True)``); ``None`` if a node is missing."""
    sep = batch["sep"]
    try:
        src = sep.join(str(src_ids[s]) for s in batch["src"].split(sep))
        targets = sep.join(str(dst_ids[t]) for t in batch["targets"].split(sep))
    except KeyError:
        return None
    return {**batch, "src": src, "targets": targets}


def _run(tx: ManagedTransaction, text: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    return [record.data() for record in tx.run(text, params)]


def _run_values(tx: ManagedTransaction, text: str, params: dict[str, Any]) -> tuple[list, list]:
    result = tx.run(text, params)
    values = result.values()
    return list(result.keys()), values


def _run_many(tx: ManagedTransaction, queries: list[tuple[str, dict[str, Any]]]) -> list[list]:
    return [[record.data() for record in tx.run(text, params)] for text, params in queries]


@functools.lru_cache(maxsize=64)
def _path_groups_query(kinds: tuple[PathKind, ...], history: bool = False) -> Query:
    return cypher.path_groups(kinds, history=history)


@functools.lru_cache(maxsize=2)
def _path_tables_query(history: bool) -> Query:
    return cypher.path_tables(history)


#: From this many items on, :meth:`Neo4jStore.path_groups_many` reads the tables the paths join
#: over once (:func:`kg.cypher.path_tables`) and joins in Python; below it, one query of per-item
#: bodies is cheaper (it does not bring the user's side back). Median (p90) ms per read on
#: ml-latest-small, 80 users' published lists, history cap 200, per-item query against tables:
#: 1 item 3.0 (6.2) against 6.1 (14.6); 5 items 9.2 (25.6) against 12.9 (26.6); 10 items 18.7
#: (54.0) against 20.5 (40.7); 20 items 26.9 (66.0) against 20.3 (38.9). The tables read moves
#: work from Neo4j into this process: for a list of 20, read alone, 15-18 ms of Python CPU (most
#: of it unpacking some 4,500 values) against 3.5 ms. Where Neo4j has cores to spare and the
#: API does not, ``tables_from_items=None`` keeps every read on the server.
TABLES_FROM_ITEMS = 10


class Neo4jStore:
    """A :class:`~kg.store.GraphStore` in a Neo4j 5 database.

    Args:
        settings: where and how to connect (``uri``, ``user``, ``password`` as a
            ``SecretStr``, ``database``): a :class:`kg.server.Neo4jSettings`.
        batch_size: rows per write transaction.
        connect_attempts: how many times opening the store tries to reach the server.
        retry_delay_s: the first pause between connection attempts; it doubles each time.
        max_retry_time_s: how long the driver keeps retrying a transaction that failed with
            a transient error.
        connection_timeout_s: how long one connection attempt may take.
        writers: concurrent write transactions for a first build's relationships. The rows
            are cut into blocks whose start and end nodes are disjoint between writers, so
            they never wait on each other's locks. Measured on a 2-core machine at 1M
            interactions, two writers wrote 80,000-92,000 INTERACTED rows/s on a warm server
            against 58,000-62,000 for one (``benchmarks/graph_ingest.py``). Merges (a refresh
            of an existing domain) and User-FOLLOWS-User always run one at a time.
        tables_from_items: lists of at least this many items are explained from one read of
            the tables the paths join over (see :data:`TABLES_FROM_ITEMS`); None: never.

    Raises:
        GraphStoreError: the server stayed unreachable after ``connect_attempts`` tries, or it
            refused the login.

    Example:
        >>> with Neo4jStore(settings) as store:  # doctest: +SKIP
        ...     counts = build_graph(store, dataset)
    """

    def __init__(
        self,
        settings: Neo4jSettings,
        batch_size: int = 10_000,
        connect_attempts: int = 4,
        retry_delay_s: float = 0.5,
        max_retry_time_s: float = 30.0,
        connection_timeout_s: float = 5.0,
        writers: int = 2,
        tables_from_items: int | None = TABLES_FROM_ITEMS,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if connect_attempts < 1:
            raise ValueError(f"connect_attempts must be >= 1, got {connect_attempts}")
        if writers < 1:
            raise ValueError(f"writers must be >= 1, got {writers}")
        self.writers = writers
        self.tables_from_items = tables_from_items
        self.uri = str(settings.uri)
        self.location = self.uri
        self.database = settings.database
        self.user = settings.user
        self.batch_size = batch_size
        self.max_retry_time_s = max_retry_time_s
        password = settings.password
        secret = password.get_secret_value() if hasattr(password, "get_secret_value") else password
        auth = (settings.user, secret) if secret else None
        try:
            self._driver = GraphDatabase.driver(
                self.uri, auth=auth,
                max_transaction_retry_time=max_retry_time_s,
                connection_timeout=connection_timeout_s,
                # A closed port would otherwise block each call for the default 60 s.
                connection_acquisition_timeout=max(connection_timeout_s * 2, 10.0),
                notifications_min_severity="OFF",
            )
        except (ValueError, ConfigurationError) as e:
            raise ValueError(f"invalid Neo4j URI {self.uri!r}: {e}") from e
        try:
            self._connect(connect_attempts, retry_delay_s)
        except BaseException:
            self._driver.close()
            raise

    def __repr__(self) -> str:
        return f"Neo4jStore({self.uri!r}, database={self.database!r}, user={self.user!r})"

    def __enter__(self) -> Neo4jStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connect(self, attempts: int, delay: float) -> None:
        t0 = time.monotonic()
        for attempt in range(1, attempts + 1):
            try:
                self._driver.verify_connectivity()
                # verify_connectivity only logs in when the pool opens a new connection; this
                # query makes a wrong password fail here, at open, with a clear message.
                self._driver.execute_query("RETURN 1", database_=self.database)
                return
            except AuthError as e:
                raise self._auth_error(e) from e
            except (ServiceUnavailable, SessionExpired, OSError) as e:
                if attempt == attempts:
                    raise GraphStoreError(
                        f"Neo4j at {self.uri} is unreachable: {attempts} connection attempts over "
                        f"{time.monotonic() - t0:.1f}s failed (last: {type(e).__name__}); is the "
                        f"server running (kgrec neo4j status) and the URI right?",
                        query="connect", uri=self.uri) from e
                log.info("Neo4j at %s not reachable (attempt %d/%d): %s", self.uri, attempt,
                         attempts, type(e).__name__)
                time.sleep(delay * 2 ** (attempt - 1))
            except Neo4jError as e:
                raise self._error(Query("connect", ""), e) from e

    def _auth_error(self, e: Exception) -> GraphStoreError:
        return GraphStoreError(
            f"Neo4j at {self.uri} refused the login of user {self.user!r} "
            f"({type(e).__name__}): check the user and password in the Neo4j settings",
            query="connect", uri=self.uri)

    def _error(self, query: Query, e: Exception) -> GraphStoreError:
        if isinstance(e, AuthError):
            return self._auth_error(e)
        if isinstance(e, (ServiceUnavailable, SessionExpired)):
            return GraphStoreError(
                f"{query.name}: Neo4j at {self.uri} became unreachable ({type(e).__name__}); "
                f"the write is idempotent, so rerun it once the server is back",
                query=query.name, uri=self.uri)
        msg = getattr(e, "message", None) or str(e)
        if len(msg) > _MAX_MESSAGE:
            msg = msg[:_MAX_MESSAGE] + "…"
        code = getattr(e, "code", None)
        code = f" [{code}]" if code else ""
        return GraphStoreError(f"{query.name} failed on {self.uri} (database {self.database!r}): "
                               f"{type(e).__name__}{code}: {msg}", query=query.name, uri=self.uri)

    # ----------------------------------------------------------------------- plumbing

    def _write(self, query: Query, **params: Any) -> list[dict[str, Any]]:
        try:
            with self._driver.session(database=self.database) as session:
                return session.execute_write(_run, query.text, params)
        except (Neo4jError, DriverError) as e:
            raise self._error(query, e) from e

    def _read(self, query: Query, **params: Any) -> list[dict[str, Any]]:
        try:
            with self._driver.session(database=self.database) as session:
                return session.execute_read(_run, query.text, params)
        except (Neo4jError, DriverError) as e:
            raise self._error(query, e) from e

    def _read_autocommit(self, query: Query, params: dict[str, Any]) -> tuple[list, list]:
        """``(keys, values)`` of one read in an auto-commit transaction, for the API's request
        path: one message exchange fewer than a managed transaction's BEGIN/RUN/COMMIT, which
        cut Neo4j's CPU per explanation by about a quarter (6.2 to 4.6 ms on ml-latest-small).
        Retried like a managed transaction: on errors the driver calls retryable, with doubling
        pauses, for up to ``max_retry_time_s``."""
        deadline = time.monotonic() + self.max_retry_time_s
        pause = 0.05
        while True:
            try:
                with self._driver.session(database=self.database, default_access_mode="READ") as session:
                    result = session.run(query.text, params)
                    values = result.values()
                    return list(result.keys()), values
            except (Neo4jError, DriverError) as e:
                if not e.is_retryable() or time.monotonic() + pause > deadline:
                    raise self._error(query, e) from e
                log.debug("retrying %s after %s", query.name, type(e).__name__)
                time.sleep(pause)
                pause = min(2 * pause, 1.0)

    def _read_columns(self, query: Query, **params: Any) -> dict[str, list]:
        try:
            with self._driver.session(database=self.database, fetch_size=10_000) as session:
                keys, values = session.execute_read(_run_values, query.text, params)
        except (Neo4jError, DriverError) as e:
            raise self._error(query, e) from e
        return {k: [row[j] for row in values] for j, k in enumerate(keys)}

    def _delete_in_batches(self, query: Query, **params: Any) -> int:
        # One bounded transaction per round keeps memory flat however much is stale.
        total = 0
        while True:
            rows = self._write(query, limit=self.batch_size, **params)
            n = int(rows[0]["deleted"]) if rows else 0
            total += n
            if n < self.batch_size:
                return total

    # ----------------------------------------------------------------------- schema and meta

    def ensure_schema(self) -> None:
        for query in cypher.SCHEMA_QUERIES:
            self._write(query)
        self._write(cypher.AWAIT_INDEXES, timeout_s=300)

    def read_meta(self, domain: str) -> GraphMeta | None:
        rows = self._read(cypher.READ_META, domain=domain)
        if not rows:
            return None
        p = rows[0]["props"]
        return GraphMeta(domain=p[DOMAIN], schema_version=int(p[SCHEMA_VERSION_KEY]),
                         build=p[BUILD], complete=bool(p[COMPLETE]), updated_at=p[UPDATED_AT])

    def write_meta(self, meta: GraphMeta) -> None:
        self._write(cypher.WRITE_META, domain=meta.domain, schema_version=int(meta.schema_version),
                    build=meta.build, complete=bool(meta.complete), updated_at=meta.updated_at)

    # ----------------------------------------------------------------------- writes

    def _count(self, query: Query, domain: str) -> int:
        rows = self._read(query, domain=domain)
        return int(rows[0]["n"] or 0) if rows else 0

    def write_nodes(self, label: Label, domain: str, rows: pd.DataFrame, build: str) -> int:
        label = Label(label)
        records = node_records(label, rows)
        # A label with no node of the domain yet (a first build) has nothing to merge with.
        fresh = self._count(cypher.COUNT_NODES[label], domain) == 0
        query = (cypher.CREATE_NODES if fresh else cypher.MERGE_NODES)[label]
        for start in range(0, len(records), self.batch_size):
            self._write(query, rows=records[start:start + self.batch_size], domain=domain,
                        build=build)
        return len(records)

    def write_rels(self, rel: RelType, domain: str, rows: pd.DataFrame, build: str) -> int:
        rel = RelType(rel)
        frame = rel_frame(rel, rows)
        if self._count(cypher.COUNT_RELS[rel], domain) == 0:
            return self._write_groups(rel, cypher.CREATE_RELS[rel], domain, frame,
                                      node_ids=self._endpoint_ids(rel, domain), build=build)
        return self._write_groups(rel, cypher.MERGE_RELS[rel], domain, frame, build=build)

    def _node_ids(self, label: Label, domain: str) -> dict[str, int]:
        rows = self._read(cypher.NODE_IDS[label], domain=domain)
        return dict(zip(rows[0]["ids"], rows[0]["nodes"])) if rows else {}

    def _endpoint_ids(self, rel: RelType, domain: str) -> tuple[dict[str, int], dict[str, int]]:
        spec = RELS[rel]
        src = self._node_ids(spec.src, domain)
        return src, (src if spec.dst == spec.src else self._node_ids(spec.dst, domain))

    def _write_groups(self, rel: RelType, query: Query, domain: str, frame: pd.DataFrame,
                      node_ids: tuple[dict[str, int], dict[str, int]] | None = None,
                      **params: Any) -> int:
        spec = RELS[rel]

        def write(batch: dict[str, Any], n_rows: int) -> int:
            sent = batch
            if node_ids is not None:
                sent = _by_node_id(batch, *node_ids)
                if sent is None:
                    raise self._missing(rel, domain, batch)
                sent.update(src_label=str(spec.src), dst_label=str(spec.dst))
            out = self._write(query, domain=domain, **sent, **params)
            n = int(out[0]["written"]) if out else 0
            if n < n_rows:
                raise self._missing(rel, domain, batch)
            return n

        # Only CREATE (node_ids given) runs concurrently: concurrent MERGEs of one pair could
        # both miss and both create. Self-relationships (User-FOLLOWS-User) stay serial too:
        # their two ends share one label, so the blocks below would not be disjoint.
        w = self.writers
        if node_ids is None or w == 1 or spec.src == spec.dst or len(frame) < 2 * self.batch_size:
            return sum(write(batch, n_rows) for batch, n_rows in packed_batches(rel, frame, self.batch_size))
        # Start and end nodes are split into w groups each, and the rows into the w x w blocks
        # of (start group, end group). Round r writes the blocks (g, (g + r) mod w) for every g
        # at once, one writer each: they touch disjoint nodes, so the writers never wait on each
        # other's node locks, and no deadlock makes the server roll a batch back and redo it.
        sg = pd.factorize(frame["src"], sort=False)[0] % w
        dg = pd.factorize(frame["dst"], sort=False)[0] % w
        written = 0
        with ThreadPoolExecutor(w, thread_name_prefix="kgrec-neo4j-writer") as pool:
            for r in range(w):
                blocks = [frame[(sg == g) & (dg == (g + r) % w)] for g in range(w)]
                futures = [pool.submit(lambda b: sum(write(batch, n_rows) for batch, n_rows
                                                     in packed_batches(rel, b, self.batch_size)), b)
                           for b in blocks if len(b)]
                try:
                    written += sum(f.result() for f in futures)
                except BaseException:
                    for f in futures:
                        f.cancel()
                    raise
        return written

    def _missing(self, rel: RelType, domain: str, batch: dict[str, Any]):
        spec = RELS[rel]
        sep = batch["sep"]
        srcs = batch["src"].split(sep)
        offsets = [int(o) for o in batch["offsets"].split(sep)]
        targets = batch["targets"].split(sep)
        dsts = [targets[int(k)] for k in batch["dst"].split(sep)]
        pairs = [(s, dsts[j]) for g, s in enumerate(srcs) for j in range(offsets[g], offsets[g + 1])]
        src = set(self.node_props(spec.src, domain, sorted({p[0] for p in pairs})))
        dst = set(self.node_props(spec.dst, domain, sorted({p[1] for p in pairs})))
        missing = [p for p in pairs if p[0] not in src or p[1] not in dst]
        return endpoint_error(rel, domain, missing, len(pairs))

    def write_recommendations(self, domain: str, run_id: str, rows: pd.DataFrame) -> int:
        return self._replace_run(RelType.RECOMMENDED, cypher.MERGE_RECOMMENDED_RELS, cypher.DELETE_OLD_RECOMMENDED,
                                 domain, run_id, recommendation_frame(rows))

    def write_people(self, domain: str, run_id: str, rows: pd.DataFrame) -> int:
        return self._replace_run(RelType.SUGGESTED, cypher.MERGE_SUGGESTED_RELS, cypher.DELETE_OLD_SUGGESTED,
                                 domain, run_id, people_frame(rows))

    def _replace_run(self, rel: RelType, merge: Query, delete_old: Query, domain: str, run_id: str,
                     frame: pd.DataFrame) -> int:
        written = self._write_groups(rel, merge, domain, frame, run_id=run_id) if len(frame) else 0
        self._delete_in_batches(delete_old, domain=domain, run_id=run_id)
        return written

    # ----------------------------------------------------------------------- deletes

    def delete_stale(self, domain: str, build: str) -> GraphCounts:
        deleted = GraphCounts()
        for rel in BUILT_RELS:
            deleted.edges[str(rel)] = self._delete_in_batches(
                cypher.DELETE_STALE_RELS[rel], domain=domain, build=build)
        for label in Label:
            deleted.nodes[str(label)] = self._delete_in_batches(
                cypher.DELETE_STALE_NODES[label], domain=domain, build=build)
        return deleted

    def drop_domain(self, domain: str) -> GraphCounts:
        deleted = GraphCounts()
        for rel in RelType:
            deleted.edges[str(rel)] = self._delete_in_batches(
                cypher.DELETE_DOMAIN_RELS[rel], domain=domain)
        for label in Label:
            deleted.nodes[str(label)] = self._delete_in_batches(
                cypher.DELETE_DOMAIN_NODES[label], domain=domain)
        self._write(cypher.DELETE_META, domain=domain)
        return deleted

    # ----------------------------------------------------------------------- reads

    def counts(self, domain: str) -> GraphCounts:
        queries = [*cypher.COUNT_NODES.items(), *cypher.COUNT_RELS.items()]
        try:
            with self._driver.session(database=self.database) as session:
                results = session.execute_read(
                    _run_many, [(q.text, {"domain": domain}) for _, q in queries])
        except (Neo4jError, DriverError) as e:
            raise self._error(Query("COUNT_NODES/COUNT_RELS", ""), e) from e
        out = GraphCounts()
        for (key, _), rows in zip(queries, results):
            n = int(rows[0]["n"] or 0) if rows else 0
            (out.nodes if isinstance(key, Label) else out.edges)[str(key)] = n
        return out

    def node_rows(self, label: Label, domain: str) -> pd.DataFrame:
        rows = self._read(cypher.NODE_ROWS[Label(label)], domain=domain)
        return finish_node_rows([(r["id"], r["props"]) for r in rows])

    def rel_rows(self, rel: RelType, domain: str) -> pd.DataFrame:
        rel = RelType(rel)
        return finish_rel_rows(rel, self._read_columns(cypher.REL_ROWS[rel], domain=domain))

    def node_props(self, label: Label, domain: str, ids: Sequence[str]) -> dict[str, dict]:
        rows = self._read(cypher.NODE_PROPS[Label(label)], domain=domain, ids=list(ids))
        return {r["id"]: {k: v for k, v in r["props"].items() if k not in (DOMAIN, BUILD)}
                for r in rows}

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
        params = dict(domain=domain, user_id=user_id, item_ids=list(dict.fromkeys(item_ids)),
                      limit=int(limit))
        if not params["item_ids"] or not kinds:
            return {k: cut_path_groups(k, [], limit) for k in kinds}
        if history is not None:
            params["history"] = int(history)
        if self.tables_from_items is not None and len(params["item_ids"]) >= self.tables_from_items:
            return self._path_groups_from_tables(domain, params, kinds, limit)
        query = _path_groups_query(tuple(kinds), history is not None)
        found = self._read_autocommit(query, params)[1]
        columns = found[0] if found else [[] for _ in kinds]
        return {k: cut_path_groups(k, [(item, *g) for item, groups in per_item for g in groups], limit)
                for k, per_item in zip(kinds, columns)}

    def _path_groups_from_tables(self, domain: str, params: dict[str, Any], kinds: list[PathKind],
                                 limit: int) -> dict[PathKind, list[tuple]]:
        """:meth:`path_groups_many` through one read of :func:`kg.cypher.path_tables` and the
        join of :meth:`kg.store.PathTables.groups`, the embedded store's own definition. The
        read brings every kind's tables back; only ``kinds`` are joined."""
        found = self._read_autocommit(_path_tables_query("history" in params), params)[1]
        if not found:       # unknown user, or none of the items
            return {k: cut_path_groups(k, [], limit) for k in kinds}
        rows, mine_e, mine_c, mine_x = found[0]
        user_l, item_l, ent_l, cat_l = (str(Label.USER), str(Label.ITEM), str(Label.ENTITY),
                                        str(Label.CATEGORY))
        t = PathTables()
        u = (user_l, domain, params["user_id"])
        # the user's kept items that can be on a path; the join reads their ts, not their count
        liked: dict[tuple, tuple[int, Any]] = {}
        for x, ts, e, c in mine_e:
            x = (item_l, domain, x)
            liked[x] = (1, ts)
            t.mentions.setdefault(x, {})[(ent_l, domain, e)] = c
        for x, ts, c in mine_c:
            x = (item_l, domain, x)
            liked[x] = (1, ts)
            t.categories.setdefault(x, []).append((cat_l, domain, c))
        for x, ts in mine_x:
            liked[(item_l, domain, x)] = (1, ts)
        friends: set[tuple] = set()
        known = []
        for item_id, own, mentions, categories, partners, fans in rows:
            i = (item_l, domain, item_id)
            known.append(item_id)
            if own:
                t.fans[i].add(u)
            # an item the user also liked: the same mentions and categories as its rows above
            t.mentions[i] = {(ent_l, domain, e): c for e, c in mentions}
            t.categories[i] = [(cat_l, domain, c) for c in categories]
            t.co[i] = {(item_l, domain, x): (n, first, second) for x, n, first, second in partners}
            for f, n, ts in fans:
                f = (user_l, domain, f)
                friends.add(f)
                t.liked.setdefault(f, {})[i] = (n, ts)
        t.follows[u] = friends
        found_ids = set(known)
        items = [(item_l, domain, i) for i in params["item_ids"] if i in found_ids]
        return {k: cut_path_groups(k, t.groups(k, u, items, limit, liked), limit) for k in kinds}

    # ----------------------------------------------------------------------- lifecycle

    def flush(self) -> None:
        # Every write is committed before its call returns.
        return None

    def close(self) -> None:
        self._driver.close()
