"""The Neo4j store against a real Neo4j 5.26 server: the shared contract, bad input and faults."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from contracts import GraphStoreContract, snapshot, toy_dataset, toy_mentions
from pydantic import SecretStr

from kg.builder import build_graph, build_rows
from kg.errors import GraphStoreError, SchemaError
from kg.neo4j_store import Neo4jStore
from kg.schema import SCHEMA_VERSION, Label, RelType
from kg.store import GraphStore
from quality.contract import DOMAINS, DatasetManifest, write_dataset
from quality.gate import open_dataset

pytestmark = pytest.mark.neo4j


def _clean(store: Neo4jStore) -> None:
    for domain in DOMAINS:
        store.drop_domain(domain)


@pytest.fixture
def neo4j_store(neo4j_server):
    store = Neo4jStore(neo4j_server)
    _clean(store)
    yield store
    _clean(store)
    store.close()


class TestNeo4jStore(GraphStoreContract):
    @pytest.fixture
    def store(self, neo4j_server):
        # Tiny batches, so every write in the contract spans several transactions.
        s = Neo4jStore(neo4j_server, batch_size=4)
        _clean(s)
        yield s
        _clean(s)
        s.close()

    def reopen(self, store: GraphStore) -> GraphStore:
        return Neo4jStore(self._settings, batch_size=4)

    @pytest.fixture(autouse=True)
    def _keep_settings(self, neo4j_server):
        self._settings = neo4j_server


def test_is_a_graph_store(neo4j_store):
    assert isinstance(neo4j_store, GraphStore)


def test_constraints_and_schema_version_are_in_the_graph(neo4j_store, neo4j_driver, neo4j_server):
    build_graph(neo4j_store, toy_dataset())
    records, _, _ = neo4j_driver.execute_query(
        "SHOW CONSTRAINTS YIELD labelsOrTypes, properties, type RETURN *",
        database_=neo4j_server.database)
    unique = {(r["labelsOrTypes"][0], tuple(r["properties"])) for r in records
              if r["type"] == "UNIQUENESS"}
    for label in Label:
        assert (str(label), ("domain", "id")) in unique
    records, _, _ = neo4j_driver.execute_query(
        "MATCH (m:KgrecMeta {domain: $d}) RETURN m.schema_version AS v, m.complete AS c",
        d="social", database_=neo4j_server.database)
    assert [(r["v"], r["c"]) for r in records] == [(SCHEMA_VERSION, True)]


def test_the_constraint_refuses_a_duplicate_node(neo4j_store, neo4j_driver, neo4j_server):
    from neo4j.exceptions import ConstraintError

    build_graph(neo4j_store, toy_dataset())
    with pytest.raises(ConstraintError):
        neo4j_driver.execute_query("CREATE (:User {domain: $d, id: $id})", d="social", id="ana",
                                   database_=neo4j_server.database)


def test_a_first_build_links_only_its_own_domain_and_names_missing_nodes(neo4j_store):
    # First builds create relationships between nodes found by internal id; the same ids in
    # another domain must not be linked, and a missing node is named before anything is sent.
    users = pd.DataFrame({"id": ["ana", "bo"]})
    items = pd.DataFrame({"id": ["i1", "i2"], "title": ["one", "two"]})
    for domain in ("social", "content"):
        neo4j_store.write_nodes(Label.USER, domain, users, "b")
        neo4j_store.write_nodes(Label.ITEM, domain, items, "b")
    rows = pd.DataFrame({"src": ["ana", "ana", "bo"], "dst": ["i1", "i2", "i2"], "ts": [1, 2, 3],
                         "weight": [1.0, 0.5, 1.0], "event": ["view", "rate", "view"],
                         "rating": [None, 4.0, None]})
    assert neo4j_store.write_rels(RelType.INTERACTED, "social", rows, "b") == 3
    assert neo4j_store.counts("social").edges["INTERACTED"] == 3
    assert neo4j_store.counts("content").edges["INTERACTED"] == 0
    back = neo4j_store.rel_rows(RelType.INTERACTED, "social")
    assert back[["src", "dst", "ts", "weight", "event"]].values.tolist() == \
        rows[["src", "dst", "ts", "weight", "event"]].values.tolist()
    assert back["rating"].isna().tolist() == [True, False, True]
    ghost = rows.assign(src=["ana", "ghost", "bo"])
    with pytest.raises(SchemaError, match="ghost"):
        neo4j_store.write_rels(RelType.INTERACTED, "content", ghost, "b")
    assert neo4j_store.counts("content").edges["INTERACTED"] == 0


def test_a_create_batch_resolves_internal_ids_only_to_its_own_domain_and_labels(
        neo4j_store, neo4j_driver, neo4j_server):
    # The CREATE query finds its endpoints by internal id alone (no index can serve it), then
    # checks label and domain: ids of another domain's nodes, or of nodes with the wrong
    # label, create nothing.
    from kg import cypher
    from kg.neo4j_store import _by_node_id, packed_batches
    from kg.store import rel_frame

    users = pd.DataFrame({"id": ["ana"]})
    items = pd.DataFrame({"id": ["i1"], "title": ["one"]})
    for domain in ("social", "content"):
        neo4j_store.write_nodes(Label.USER, domain, users, "b")
        neo4j_store.write_nodes(Label.ITEM, domain, items, "b")
    ids = {(label, domain): neo4j_store._node_ids(label, domain)
           for label in (Label.USER, Label.ITEM) for domain in ("social", "content")}
    rows = pd.DataFrame({"src": ["ana"], "dst": ["i1"], "ts": [1], "weight": [1.0],
                         "event": ["view"], "rating": [None]})
    (batch, _), = packed_batches(RelType.INTERACTED, rel_frame(RelType.INTERACTED, rows), 10)

    def create(src_ids, dst_ids) -> int:
        params = {**_by_node_id(batch, src_ids, dst_ids), "domain": "social", "build": "b",
                  "src_label": "User", "dst_label": "Item"}
        records, _, _ = neo4j_driver.execute_query(cypher.CREATE_INTERACTED_RELS.text, params,
                                                   database_=neo4j_server.database)
        return records[0]["written"]

    assert create(ids[Label.USER, "content"], ids[Label.ITEM, "social"]) == 0
    assert create(ids[Label.USER, "social"], ids[Label.ITEM, "content"]) == 0
    swapped = {"ana": ids[Label.ITEM, "social"]["i1"]}, {"i1": ids[Label.USER, "social"]["ana"]}
    assert create(*swapped) == 0
    assert neo4j_store.counts("social").edges["INTERACTED"] == 0
    assert create(ids[Label.USER, "social"], ids[Label.ITEM, "social"]) == 1
    assert neo4j_store.counts("social").edges["INTERACTED"] == 1
    assert neo4j_store.counts("content").edges["INTERACTED"] == 0


def test_create_queries_seek_their_endpoints_by_id_even_with_empty_labels(
        neo4j_store, neo4j_driver, neo4j_server):
    # Planned while the labels are empty (as right after a drop), a query with the label in
    # its pattern chose an index seek on (domain) and filtered on id: a scan of the domain per
    # endpoint. The CREATE queries must plan the seek by id and touch no index or scan.
    from kg import cypher

    def operators(plan: dict) -> list[str]:
        return [plan["operatorType"].split("@")[0]] + [
            op for child in plan.get("children", []) for op in operators(child)]

    for rel, query in cypher.CREATE_RELS.items():
        _, summary, _ = neo4j_driver.execute_query(
            "EXPLAIN " + query.text, database_=neo4j_server.database,
            parameters_={"domain": "nowhere", "sep": ",", "src": "0", "offsets": "0,1",
                         "targets": "0", "dst": "0", "build": "b", "src_label": "X",
                         "dst_label": "Y"})
        ops = operators(summary.plan)
        assert ops.count("NodeByIdSeek") == 2, (rel, ops)
        assert not [op for op in ops if "Index" in op or "Scan" in op], (rel, ops)


def test_nasty_strings_did_not_change_the_schema(neo4j_store, neo4j_driver, neo4j_server):
    from contracts import nasty_dataset

    build_graph(neo4j_store, nasty_dataset())
    records, _, _ = neo4j_driver.execute_query(
        "MATCH (n) WHERE n:Pwned OR n:X RETURN count(n) AS n", database_=neo4j_server.database)
    assert records[0]["n"] == 0
    records, _, _ = neo4j_driver.execute_query(
        "SHOW CONSTRAINTS YIELD name RETURN collect(name) AS names",
        database_=neo4j_server.database)
    assert "user_domain_id" in records[0]["names"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_server_fails_after_bounded_retries(neo4j_server):
    uri = f"bolt://127.0.0.1:{_closed_port()}"
    settings = neo4j_server.model_copy(update={"uri": uri})
    t0 = time.monotonic()
    with pytest.raises(GraphStoreError) as info:
        Neo4jStore(settings, connect_attempts=3, retry_delay_s=0.1)
    assert time.monotonic() - t0 < 15
    err = info.value
    assert uri in str(err) and "3 connection attempts" in str(err)
    assert err.uri == uri and err.query == "connect"
    assert err.__cause__ is not None


def test_a_wrong_password_is_a_clear_error_without_the_password(neo4j_server, caplog):
    wrong = "not-the-password-7f3a9c"
    settings = neo4j_server.model_copy(update={"password": SecretStr(wrong)})
    caplog.set_level(logging.DEBUG)
    with pytest.raises(GraphStoreError, match="refused the login of user 'neo4j'") as info:
        Neo4jStore(settings, connect_attempts=2)
    real = neo4j_server.password.get_secret_value()
    texts = [str(info.value), repr(info.value), str(info.value.__cause__), caplog.text]
    for text in texts:
        assert wrong not in text and real not in text


def test_a_failed_query_is_named_and_never_shows_the_password(neo4j_store, neo4j_server):
    real = neo4j_server.password.get_secret_value()
    assert real not in repr(neo4j_store)
    # A map is not a storable property value: the server refuses the write.
    rows = pd.DataFrame({"id": ["a"], "nested": [{"secret_payload": 1}]})
    with pytest.raises(GraphStoreError, match="CREATE_USER_NODES failed on bolt://") as info:
        neo4j_store.write_nodes(Label.USER, "social", rows, "b")
    assert info.value.query == "CREATE_USER_NODES" and info.value.__cause__ is not None
    assert real not in str(info.value)
    assert neo4j_store.counts("social").total_nodes == 0


# --------------------------------------------------------------------------- interrupted writes

_WRITER = """
import sys
from pathlib import Path
from kg.builder import build_graph
from kg.neo4j_store import Neo4jStore
from kg.server import Neo4jServer
from quality.gate import open_dataset
home, folder, bolt_port = sys.argv[1], sys.argv[2], int(sys.argv[3])
dataset = open_dataset(folder)
with Neo4jStore(Neo4jServer(Path(home), bolt_port=bolt_port).settings(), batch_size=500) as store:
    print("writing", flush=True)
    build_graph(store, dataset)
"""


def _medium_dataset(folder: Path, n_users=400, n_items=600, n_inter=40_000):
    rng = np.random.default_rng(7)
    users = pd.DataFrame({"user_id": [f"u{i}" for i in range(n_users)]})
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)],
                          "title": [f"item {i}" for i in range(n_items)],
                          "category": [f"c{i % 7}|c{i % 3 + 10}" for i in range(n_items)]})
    inter = pd.DataFrame({"user_id": users.user_id.to_numpy()[rng.integers(0, n_users, n_inter)],
                          "item_id": items.item_id.to_numpy()[rng.integers(0, n_items, n_inter)],
                          "timestamp": 1_600_000_000 + np.arange(n_inter)})
    return write_dataset(folder, DatasetManifest("content", "medium"), users, items, inter)


@pytest.mark.parametrize("writers", [1, 4])
def test_concurrent_writers_create_exactly_the_rows_of_the_dataset(neo4j_server, tmp_path, writers):
    # 40,000 interactions in batches of 500 over 400 users and 600 items: many transactions
    # touch the same items at once, so waits and retried deadlocks happen for real with 4.
    dataset = open_dataset(_medium_dataset(tmp_path / "medium"))
    want = build_rows(dataset)
    with Neo4jStore(neo4j_server, batch_size=500, writers=writers) as store:
        store.drop_domain("content")
        try:
            counts = build_graph(store, dataset)
            assert counts == want.expected_counts()
            got = store.rel_rows("INTERACTED", "content")
            exp = want.rels["INTERACTED"]
            assert sorted(zip(got.src, got.dst, got.ts, got.weight)) == \
                sorted(zip(exp.src, exp.dst, exp.ts, exp.weight))
        finally:
            store.drop_domain("content")


def test_writers_must_be_positive(neo4j_server):
    with pytest.raises(ValueError, match="writers must be >= 1"):
        Neo4jStore(neo4j_server, writers=0)


def test_a_build_killed_mid_write_converges_when_rerun(neo4j_store, neo4j_server, tmp_path, request):
    folder = _medium_dataset(tmp_path / "medium")
    dataset = open_dataset(folder)
    expected = build_rows(dataset).expected_counts()
    home = request.config.rootpath / ".neo4j"
    home = Path(os.environ.get("KGREC_NEO4J_HOME", home))
    bolt_port = int(neo4j_server.uri.rsplit(":", 1)[1])
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(home), str(folder), str(bolt_port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=request.config.rootpath)
    try:
        deadline = time.monotonic() + 240
        written = 0
        while time.monotonic() < deadline and proc.poll() is None:
            written = neo4j_store.counts("content").edges["INTERACTED"]
            if written >= 2_000:
                break
            time.sleep(0.2)
        assert proc.poll() is None, f"the writer ended before it was killed:\n{proc.stdout.read()}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    partial = neo4j_store.counts("content").edges["INTERACTED"]
    assert 0 < partial < expected.edges["INTERACTED"]
    assert neo4j_store.read_meta("content").complete is False
    counts = build_graph(neo4j_store, dataset)
    assert counts.nodes == expected.nodes
    assert counts.edges == expected.edges
    converged = snapshot(neo4j_store, "content")
    neo4j_store.drop_domain("content")
    assert build_graph(neo4j_store, dataset) == counts
    clean = snapshot(neo4j_store, "content")
    for key in clean:
        pd.testing.assert_frame_equal(converged[key], clean[key], obj=key)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_server_killed_mid_write_then_restarted_converges(neo4j_server, tmp_path, request):
    """kill -9 of the server during a large write, a restart, then the same build again."""
    from kg.server import Neo4jServer

    # A private server (own home and ports, the shared jars), so killing it disturbs nobody.
    shared = Path(os.environ.get("KGREC_NEO4J_HOME", request.config.rootpath / ".neo4j"))
    home = tmp_path / "neo4j"
    home.mkdir()
    for name in ("lib", "plugins"):
        (home / name).symlink_to(shared / name, target_is_directory=True)
    server = Neo4jServer(home, bolt_port=_free_port(), http_port=_free_port(), heap="512m",
                         pagecache="256m")
    folder = _medium_dataset(tmp_path / "medium")
    dataset = open_dataset(folder)
    expected = build_rows(dataset).expected_counts()
    settings = server.start(timeout=300)
    try:
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(home), str(folder),
                                 str(server.bolt_port)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                cwd=request.config.rootpath)
        with Neo4jStore(settings) as watcher:
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and proc.poll() is None:
                if watcher.counts("content").edges["INTERACTED"] >= 2_000:
                    break
                time.sleep(0.2)
            assert proc.poll() is None, f"the write ended before the kill:\n{proc.stdout.read()}"
            os.kill(int(server.pid_file.read_text().strip()), signal.SIGKILL)
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode != 0 and "GraphStoreError" in out and settings.uri in out
        assert settings.password.get_secret_value() not in out
        settings = server.start(timeout=300)  # recovers the store from its transaction log
        with Neo4jStore(settings, batch_size=2_000) as store:
            meta = store.read_meta("content")
            assert meta is not None and meta.complete is False
            partial = store.counts("content").edges["INTERACTED"]
            assert 0 < partial < expected.edges["INTERACTED"]
            counts = build_graph(store, dataset)
            assert counts.nodes == expected.nodes and counts.edges == expected.edges
            got = store.rel_rows("INTERACTED", "content")
            want = build_rows(dataset).rels["INTERACTED"]
            assert sorted(zip(got.src, got.dst, got.ts)) == sorted(zip(want.src, want.dst, want.ts))
    finally:
        server.stop()


class _Proxy:
    """A TCP relay on loopback in front of the real server, to cut the network under a store:
    ``cut()`` closes every relayed connection and refuses new ones, ``restore()`` accepts again."""

    def __init__(self, target_port: int) -> None:
        import threading

        self.target = target_port
        self.port = _closed_port()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        import threading

        listener = socket.create_server(("127.0.0.1", self.port))
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        import threading

        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)   # wakes the blocked accept(); close alone does not
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def test_explanation_reads_retry_a_dropped_connection_then_name_the_uri(neo4j_store, neo4j_server):
    # The API's explanation read runs outside a managed transaction (one exchange fewer), so
    # kgrec retries it itself: a connection cut under it is retried until the network is back,
    # and a network that stays down ends, after the bounded retry time, in an error naming it.
    from urllib.parse import urlsplit

    from kg.explain import KIND_ORDER

    build_graph(neo4j_store, toy_dataset(), mentions=toy_mentions())
    want = neo4j_store.path_groups_many("social", "ana", ["i4"], limit=4, kinds=KIND_ORDER)
    assert any(want.values())
    proxy = _Proxy(urlsplit(neo4j_server.uri).port)
    uri = f"bolt://127.0.0.1:{proxy.port}"
    store = Neo4jStore(neo4j_server.model_copy(update={"uri": uri}), max_retry_time_s=3.0)
    try:
        assert store.path_groups_many("social", "ana", ["i4"], limit=4, kinds=KIND_ORDER) == want
        proxy.cut()
        import threading

        threading.Timer(0.6, proxy.restore).start()     # back while the read is retrying
        t0 = time.monotonic()
        assert store.path_groups_many("social", "ana", ["i4"], limit=4, kinds=KIND_ORDER) == want
        assert time.monotonic() - t0 >= 0.5               # it did wait for the network
        proxy.cut()                                       # and now for good
        t0 = time.monotonic()
        with pytest.raises(GraphStoreError) as info:
            store.path_groups_many("social", "ana", ["i4"], limit=4, kinds=KIND_ORDER)
        assert 2.5 <= time.monotonic() - t0 < 15
        assert uri in str(info.value)
        assert neo4j_server.password.get_secret_value() not in str(info.value)
    finally:
        store.close()
