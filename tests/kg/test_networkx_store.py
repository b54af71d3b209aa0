"""The embedded networkx store: the shared contract plus what only a file-backed store can do."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from contracts import GraphStoreContract, toy_dataset, toy_mentions

from kg.builder import build_graph
from kg.errors import GraphStoreError
from kg.networkx_store import NetworkXStore
from kg.store import GraphStore


class TestNetworkXStore(GraphStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path):
        s = NetworkXStore(tmp_path / "graph" / "kgrec-graph.pickle", batch_size=4)
        yield s
        s.close()

    def reopen(self, store: GraphStore) -> GraphStore:
        store.flush()
        return NetworkXStore(store.path)


def test_is_a_graph_store(tmp_path: Path):
    assert isinstance(NetworkXStore(tmp_path / "g.pickle"), GraphStore)


def test_nothing_is_on_disk_until_flush_and_no_temp_file_is_left(tmp_path: Path):
    path = tmp_path / "g.pickle"
    store = NetworkXStore(path)
    store.write_nodes("User", "social", __import__("pandas").DataFrame({"id": ["a"]}), "b")
    assert not path.exists()
    store.close()
    assert path.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["g.pickle"]


def test_a_failed_flush_keeps_the_previous_file(tmp_path: Path):
    path = tmp_path / "g.pickle"
    store = NetworkXStore(path)
    counts = build_graph(store, toy_dataset(), toy_mentions())
    before = path.read_bytes()
    # An attribute pickle cannot serialise makes the next flush fail half-way through.
    store._graph.graph["unpicklable"] = lambda: None
    store._dirty = True
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        store.flush()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["g.pickle"]
    assert NetworkXStore(path).counts("social") == counts


def test_a_file_that_is_not_a_graph_is_refused(tmp_path: Path):
    bad = tmp_path / "g.pickle"
    bad.write_bytes(b"not a pickle at all")
    with pytest.raises(GraphStoreError, match="cannot read the graph file"):
        NetworkXStore(bad)
    bad.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(GraphStoreError, match="not a kgrec graph"):
        NetworkXStore(bad)
