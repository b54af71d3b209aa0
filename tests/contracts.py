"""Contract test classes: each implementation's test class inherits one, so every backend passes
the same tests."""

from __future__ import annotations

# ============================================================================ GraphStoreContract
# Owned by the knowledge-graph package (kg/). Other contracts go in their own blocks below.

import atexit
import functools
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from kg.builder import build_graph, build_rows
from kg.errors import SchemaError
from kg.explain import explain
from kg.export import export_graph
from kg.schema import BUILD, SCHEMA_VERSION, Label, RelType
from kg.store import GraphMeta, GraphStore, now_iso
from quality.contract import DatasetManifest, write_dataset
from quality.dataset import Dataset
from quality.gate import GateConfig, open_dataset

_GRAPH_ROOT = Path(tempfile.mkdtemp(prefix="kgrec-graph-tests-"))
atexit.register(shutil.rmtree, _GRAPH_ROOT, True)
# A fixed clock keeps the gate's future-timestamp rule deterministic.
_GATE = GateConfig(now=datetime(2026, 1, 1, tzinfo=timezone.utc))
T0 = 1_600_000_000

#: Ids and titles that would break a query built by string formatting.
NASTY_IDS = (
    "it's",
    'say "hi"',
    "back`tick`",
    "})-[:X]->(n) DETACH DELETE n //",
    "MATCH (n) RETURN n",
    "$domain",
    "ünïcødé 🎉🚀",
    "x" * 1000,
)
NASTY_TITLES = (
    "O'Brien & \"Sons\"",
    "`; DROP CONSTRAINT user_domain_id; //",
    "'}) MERGE (x:Pwned {a:'1'}) //",
    "CREATE INDEX FOR (n:Item) ON (n.title)",
    "Emoji 🧪✨ title",
    "long " + "λ" * 5000,
    "\\u0027 escaped backslash \\",
    "{title}",
)


def _dataset(name: str, domain: str, users, items, interactions, links=None) -> Dataset:
    folder = write_dataset(_GRAPH_ROOT / name, DatasetManifest(domain, name), pd.DataFrame(users),
                           pd.DataFrame(items), pd.DataFrame(interactions),
                           pd.DataFrame(links) if links is not None else None)
    return open_dataset(folder, _GATE)


def _inter(rows) -> dict:
    return {"user_id": [r[0] for r in rows], "item_id": [r[1] for r in rows],
            "timestamp": [T0 + r[2] for r in rows],
            "rating": [r[3] if len(r) > 3 else None for r in rows]}


_TOY_USERS = {"user_id": ["ana", "ben", "cy", "dee", "eve"],
              "profile_text": ["reads science fiction", "", "likes long novels", "", "new here"]}
_TOY_ITEMS = {
    "item_id": ["i1", "i2", "i3", "i4", "i5"],
    "title": ["Dune", "Solaris", "Emma", "Neuromancer", "Unread"],
    "category": ["scifi|books", "scifi", "romance", "scifi|cyberpunk", "romance"],
}
_TOY_INTERACTIONS = [
    ("ana", "i1", 0, 5.0), ("ana", "i3", 100, 3.0),
    ("ben", "i1", 200, 4.0), ("ben", "i2", 300, 4.0), ("ben", "i4", 350, 5.0),
    ("cy", "i2", 400, 2.0), ("cy", "i3", 500, 4.0), ("cy", "i4", 600, 4.0), ("cy", "i4", 700, 5.0),
]
_TOY_LINKS = {"src_user_id": ["ana", "cy"], "dst_user_id": ["ben", "ana"],
              "kind": ["friend", "follow"]}


@functools.cache
def toy_dataset() -> Dataset:
    """A social domain with known paths.

    5 users (dee and eve cold), 5 items (i5 cold), 4 categories, 9 interactions (cy read i4
    twice), 2 links. From ana to i4: co-interaction via i1 (ben) and via i3 (cy); friend ben;
    entity ``e:desert`` via i1 (0.6 × 0.5); category scifi via i1.
    """
    return _dataset("toy", "social", _TOY_USERS, _TOY_ITEMS, _inter(_TOY_INTERACTIONS), _TOY_LINKS)


def toy_mentions() -> pd.DataFrame:
    rows = [("i1", "e:herbert", "Frank Herbert", "person", 0.9),
            ("i2", "e:lem", "Stanisław Lem", "person", 0.8),
            ("i4", "e:cyberspace", "cyberspace", "topic", 0.7),
            ("i1", "e:desert", "desert", "topic", 0.6),
            ("i4", "e:desert", "deserts", "topic", 0.5),
            ("i5", "e:desert", "desert", "topic", 0.4),
            ("i1", "e:desert", "desert planet", "topic", 0.2)]  # a weaker duplicate pair
    m = pd.DataFrame(rows, columns=["item_id", "entity_id", "entity_name", "entity_type", "confidence"])
    return m.assign(source="test")


@functools.cache
def toy_dataset_v2() -> Dataset:
    """``toy_dataset`` a day later: i1 retitled, cy gone (with cy's reads and link), item i6 and
    ben's read of it new, i4 no longer in cyberpunk (so that category disappears)."""
    items = {k: list(v) for k, v in _TOY_ITEMS.items()}
    items["title"][0] = "Dune (1965)"
    items["category"][3] = "scifi"
    for k, v in {"item_id": "i6", "title": "Hyperion", "category": "scifi"}.items():
        items[k].append(v)
    users = {k: [v for u, v in zip(_TOY_USERS["user_id"], vals) if u != "cy"]
             for k, vals in _TOY_USERS.items()}
    inter = [r for r in _TOY_INTERACTIONS if r[0] != "cy"] + [("ben", "i6", 800, 5.0)]
    links = {"src_user_id": ["ana"], "dst_user_id": ["ben"], "kind": ["friend"]}
    return _dataset("toy_v2", "social", users, items, _inter(inter), links)


def toy_mentions_v2() -> pd.DataFrame:
    m = toy_mentions()
    return m[m["entity_id"] != "e:lem"].reset_index(drop=True)


_HISTORY_INTERACTIONS = [
    # hal: seven interactions with five items; two share the 3rd latest time (h2, h3), h1 twice
    ("hal", "h1", 10), ("hal", "h2", 50), ("hal", "h3", 50), ("hal", "h4", 60), ("hal", "h1", 70),
    ("hal", "h5", 5), ("hal", "h6", 80),
    ("ivy", "h1", 1), ("ivy", "h2", 2), ("ivy", "h4", 3), ("ivy", "h5", 4), ("ivy", "h6", 5),
    ("jo", "h2", 6), ("jo", "h3", 7), ("jo", "h5", 8), ("jo", "h6", 9),
]


@functools.cache
def history_dataset() -> Dataset:
    """A content domain for explanation history caps: hal's latest interactions are h6 (80),
    h1 (70, read twice), h4 (60), then h2 and h3 tied (50), then h1 again (10) and h5 (5); every
    item shares a category and an entity with the others, and ivy and jo link them."""
    items = {"item_id": [f"h{n}" for n in range(1, 7)],
             "title": ["Alpha", "Beta", "Gamma", "Delta", "Epsilon", "Zeta"],
             "category": ["drama|noir", "drama", "drama|noir", "noir", "drama", "drama|noir"]}
    users = {"user_id": ["hal", "ivy", "jo"]}
    return _dataset("history", "content", users, items, _inter(_HISTORY_INTERACTIONS))


def history_mentions() -> pd.DataFrame:
    rows = [(f"h{n}", "e:rain", "rain", "topic", 0.5 + n / 20) for n in range(1, 7)]
    rows += [("h1", "e:city", "city", "place", 0.9), ("h6", "e:city", "city", "place", 0.8),
             ("h5", "e:city", "city", "place", 0.7)]
    m = pd.DataFrame(rows, columns=["item_id", "entity_id", "entity_name", "entity_type", "confidence"])
    return m.assign(source="test")


@functools.cache
def other_domain_dataset() -> Dataset:
    """The toy's ids in another domain, with other titles and no links."""
    items = dict(_TOY_ITEMS, title=[f"Film {i}" for i in range(5)])
    return _dataset("other", "content", _TOY_USERS, items, _inter(_TOY_INTERACTIONS[:4]))


@functools.cache
def nasty_dataset() -> Dataset:
    """Ids and titles full of quotes, backticks, Cypher fragments, emoji and long strings."""
    n = len(NASTY_IDS)
    users = {"user_id": list(NASTY_IDS)}
    items = {"item_id": list(NASTY_IDS), "title": list(NASTY_TITLES),
             "category": [NASTY_IDS[(i + 1) % n] for i in range(n)]}
    inter = [(NASTY_IDS[i], NASTY_IDS[(i * 3 + 1) % n], i) for i in range(n)]
    inter += [(NASTY_IDS[i], NASTY_IDS[(i * 5 + 2) % n], 100 + i) for i in range(n)]
    return _dataset("nasty", "ecommerce", users, items, _inter(inter))


@functools.cache
def travel_dataset() -> Dataset:
    """Places with coordinates; users with a home location where known."""
    users = {"user_id": ["t1", "t2", "t3"], "lat": [48.85, None, 41.9], "lon": [2.35, None, 12.5]}
    items = {"item_id": ["p1", "p2", "p3"], "title": ["Louvre", "Colosseum", "Prado"],
             "category": ["museum", "landmark", "museum"],
             "lat": [48.8606, 41.8902, 40.4138], "lon": [2.3376, 12.4922, -3.6921]}
    inter = [("t1", "p1", 0), ("t1", "p2", 10), ("t2", "p2", 20), ("t3", "p3", 30)]
    return _dataset("travel", "travel", users, items, _inter(inter))


def snapshot(store: GraphStore, domain: str) -> dict:
    """Every node and relationship row of a domain (build stamps left out)."""
    out: dict = {}
    for label in Label:
        out[str(label)] = store.node_rows(label, domain)
    for rel in RelType:
        out[str(rel)] = store.rel_rows(rel, domain)
    return out


def assert_same_graph(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        pd.testing.assert_frame_equal(a[key], b[key], check_dtype=True, obj=key)


def assert_same_export(a, b) -> None:
    assert a.vocab == b.vocab
    assert set(a.data.node_types) == set(b.data.node_types)
    assert set(a.data.edge_types) == set(b.data.edge_types)
    for nt in a.data.node_types:
        assert a.data[nt].num_nodes == b.data[nt].num_nodes
        assert set(a.data[nt].keys()) == set(b.data[nt].keys())
        for key in a.data[nt].keys():
            if key != "num_nodes":
                assert torch.equal(a.data[nt][key].nan_to_num(-999), b.data[nt][key].nan_to_num(-999))
    for et in a.data.edge_types:
        assert set(a.data[et].keys()) == set(b.data[et].keys()), et
        for key in a.data[et].keys():
            assert torch.equal(a.data[et][key], b.data[et][key]), (et, key)


class GraphStoreContract:
    """What every :class:`~kg.store.GraphStore` must do. Subclasses provide a ``store`` fixture
    (empty for the four domains) and :meth:`reopen`."""

    @pytest.fixture
    def store(self) -> GraphStore:
        raise NotImplementedError("subclasses provide a `store` fixture")

    def reopen(self, store: GraphStore) -> GraphStore:
        """A second store object over the same graph (a later step or the API opening it)."""
        raise NotImplementedError

    # ----------------------------------------------------------------------- build and counts

    def test_empty_domain_has_zero_counts_and_no_meta(self, store: GraphStore):
        counts = store.counts("social")
        assert counts.total_nodes == 0 and counts.total_edges == 0
        assert set(counts.nodes) == {str(x) for x in Label}
        assert set(counts.edges) == {str(x) for x in RelType}
        assert store.read_meta("social") is None

    def test_build_counts_follow_from_the_dataset(self, store: GraphStore):
        counts = build_graph(store, toy_dataset(), toy_mentions())
        assert counts.nodes == {"User": 5, "Item": 5, "Category": 4, "Entity": 4}
        # 9 reads (cy's two reads of i4 are two relationships), 7 item-category pairs, 6 distinct
        # item-entity pairs (the weaker duplicate of (i1, e:desert) merges), 2 links, and 12
        # CO_INTERACTED: both directions of the 6 item pairs some user read both of (every item
        # has fewer partners than CO_INTERACTION_PARTNERS, so none is left out).
        assert counts.edges == {"INTERACTED": 9, "IN_CATEGORY": 7, "MENTIONS": 6, "FOLLOWS": 2,
                                "RECOMMENDED": 0, "CO_INTERACTED": 12, "SUGGESTED": 0}
        assert store.counts("social") == counts
        meta = store.read_meta("social")
        assert meta.complete and meta.schema_version == SCHEMA_VERSION
        assert meta.build == build_rows(toy_dataset(), toy_mentions()).build

    def test_rebuild_is_idempotent(self, store: GraphStore):
        first = build_graph(store, toy_dataset(), toy_mentions())
        before = snapshot(store, "social")
        again = build_graph(store, toy_dataset(), toy_mentions(), force=True)
        assert again == first
        assert_same_graph(snapshot(store, "social"), before)

    def test_properties_are_read_back(self, store: GraphStore):
        build_graph(store, toy_dataset(), toy_mentions())
        items = store.node_rows(Label.ITEM, "social")
        assert items["id"].tolist() == ["i1", "i2", "i3", "i4", "i5"]
        assert items["title"].tolist() == ["Dune", "Solaris", "Emma", "Neuromancer", "Unread"]
        assert BUILD not in items.columns and "domain" not in items.columns
        users = store.node_rows(Label.USER, "social").set_index("id")
        assert users.loc["ana", "profile_text"] == "reads science fiction"
        assert pd.isna(users.loc["ben", "profile_text"])  # empty text is no property
        inter = store.rel_rows(RelType.INTERACTED, "social")
        cy = inter[(inter.src == "cy") & (inter.dst == "i4")]
        assert cy["ts"].tolist() == [T0 + 600, T0 + 700]
        assert cy["rating"].tolist() == [4.0, 5.0]
        ents = store.node_rows(Label.ENTITY, "social").set_index("id")
        assert ents.loc["e:desert", "name"] == "desert"  # the name of its best mention
        mentions = store.rel_rows(RelType.MENTIONS, "social")
        best = mentions[(mentions.src == "i1") & (mentions.dst == "e:desert")]
        assert best["confidence"].tolist() == [0.6]

    # ----------------------------------------------------------------------- refresh

    def test_refresh_updates_adds_and_removes(self, store: GraphStore):
        build_graph(store, toy_dataset(), toy_mentions())
        counts = build_graph(store, toy_dataset_v2(), toy_mentions_v2())
        assert counts.nodes == {"User": 4, "Item": 6, "Category": 3, "Entity": 3}
        assert counts.edges["INTERACTED"] == 6 and counts.edges["FOLLOWS"] == 1
        items = store.node_rows(Label.ITEM, "social").set_index("id")
        assert items.loc["i1", "title"] == "Dune (1965)" and "i6" in items.index
        assert "cy" not in set(store.node_rows(Label.USER, "social")["id"])
        assert "cyberpunk" not in set(store.node_rows(Label.CATEGORY, "social")["id"])
        refreshed = snapshot(store, "social")
        store.drop_domain("social")
        build_graph(store, toy_dataset_v2(), toy_mentions_v2())
        assert_same_graph(refreshed, snapshot(store, "social"))

    def test_interrupted_build_converges_to_a_clean_build(self, store: GraphStore):
        build_graph(store, toy_dataset(), toy_mentions())
        rows = build_rows(toy_dataset_v2(), toy_mentions_v2())
        # The v2 build dies after half its users and a third of its reads.
        store.write_meta(GraphMeta("social", SCHEMA_VERSION, rows.build, False, now_iso()))
        store.write_nodes(Label.USER, "social", rows.nodes[Label.USER].iloc[:2], rows.build)
        store.write_nodes(Label.ITEM, "social", rows.nodes[Label.ITEM], rows.build)
        store.write_rels(RelType.INTERACTED, "social", rows.rels[RelType.INTERACTED].iloc[:2],
                         rows.build)
        store.flush()
        with pytest.raises(SchemaError, match="incomplete"):
            export_graph(store, "social")
        counts = build_graph(store, toy_dataset_v2(), toy_mentions_v2())
        assert counts.nodes == {"User": 4, "Item": 6, "Category": 3, "Entity": 3}
        converged = snapshot(store, "social")
        store.drop_domain("social")
        assert build_graph(store, toy_dataset_v2(), toy_mentions_v2()) == counts
        assert_same_graph(converged, snapshot(store, "social"))

    def test_domains_do_not_mix(self, store: GraphStore):
        build_graph(store, toy_dataset(), toy_mentions())
        build_graph(store, other_domain_dataset())
        social = store.node_rows(Label.ITEM, "social")
        content = store.node_rows(Label.ITEM, "content")
        assert social["title"].tolist()[0] == "Dune" and content["title"].tolist()[0] == "Film 0"
        assert store.counts("content").edges["INTERACTED"] == 4
        assert store.counts("social").edges["INTERACTED"] == 9
        store.drop_domain("content")
        assert store.counts("content").total_nodes == 0
        assert store.counts("social").nodes["User"] == 5
        assert store.read_meta("content") is None and store.read_meta("social") is not None

    # ----------------------------------------------------------------------- bad input

    def test_nasty_strings_are_stored_verbatim(self, store: GraphStore):
        data = nasty_dataset()
        counts = build_graph(store, data)
        assert counts.nodes["User"] == len(NASTY_IDS) and counts.nodes["Item"] == len(NASTY_IDS)
        assert counts.edges["INTERACTED"] == 2 * len(NASTY_IDS)
        items = store.node_rows(Label.ITEM, "ecommerce").set_index("id")
        assert sorted(items.index) == sorted(NASTY_IDS)
        for id_, title in zip(NASTY_IDS, NASTY_TITLES):
            assert items.loc[id_, "title"] == title
        inter = store.rel_rows(RelType.INTERACTED, "ecommerce")
        assert set(zip(inter.src, inter.dst)) == set(zip(data.interactions.user_id,
                                                         data.interactions.item_id))
        assert set(store.node_props(Label.USER, "ecommerce", list(NASTY_IDS))) == set(NASTY_IDS)

    def test_ids_with_control_characters_round_trip(self, store: GraphStore):
        # Neo4j batches travel as joined strings; ids holding every usual separator force the
        # store to pick another one.
        users = ["a\x1fb", "c\x1ed\x1de", "\x1c", "plain", "tab\tnew\nline"]
        items = ["x\x1f", "\x1fy\x1e\x1d\x1c", "z"]
        store.write_nodes(Label.USER, "social", pd.DataFrame({"id": users}), "b1")
        store.write_nodes(Label.ITEM, "social", pd.DataFrame({"id": items, "title": items}), "b1")
        rows = pd.DataFrame({"src": [u for u in users for _ in items],
                             "dst": [i for _ in users for i in items]})
        rows = rows.assign(ts=range(len(rows)), weight=0.5, event="view")
        assert store.write_rels(RelType.INTERACTED, "social", rows, "b1") == len(rows)
        back = store.rel_rows(RelType.INTERACTED, "social")
        assert sorted(zip(back.src, back.dst, back.ts)) == sorted(zip(rows.src, rows.dst, rows.ts))
        assert sorted(store.node_rows(Label.USER, "social")["id"]) == sorted(users)

    def test_relationship_to_a_missing_node_is_refused(self, store: GraphStore):
        build_graph(store, toy_dataset())
        rows = pd.DataFrame({"src": ["ana", "nobody"], "dst": ["i1", "i1"], "ts": [1, 2],
                             "weight": [1.0, 1.0], "event": ["view", "view"]})
        with pytest.raises(SchemaError, match="nobody"):
            store.write_rels(RelType.INTERACTED, "social", rows, "b")

    def test_overlong_and_empty_ids_are_refused(self, store: GraphStore):
        with pytest.raises(SchemaError, match="longer than"):
            store.write_nodes(Label.USER, "social", pd.DataFrame({"id": ["x" * 5000]}), "b")
        with pytest.raises(SchemaError, match="empty"):
            store.write_nodes(Label.USER, "social", pd.DataFrame({"id": [""]}), "b")
        assert store.counts("social").total_nodes == 0

    def test_newer_schema_version_is_refused(self, store: GraphStore):
        store.write_meta(GraphMeta("social", SCHEMA_VERSION + 1, "future", True, now_iso()))
        with pytest.raises(SchemaError, match="newer"):
            build_graph(store, toy_dataset())

    # ----------------------------------------------------------------------- recommendations

    def test_recommendations_replace_the_previous_run(self, store: GraphStore):
        build_graph(store, toy_dataset())
        first = pd.DataFrame({"user_id": ["ana", "ana", "dee"], "item_id": ["i2", "i4", "i1"],
                              "rank": [1, 2, 1], "score": [0.9, 0.5, 0.3],
                              "reason": ["gnn", "gnn", "popular"]})
        assert store.write_recommendations("social", "run-1", first) == 3
        second = first.iloc[[1]].assign(rank=1, score=0.7)
        assert store.write_recommendations("social", "run-2", second) == 1
        recs = store.rel_rows(RelType.RECOMMENDED, "social")
        assert recs[["src", "dst", "rank", "run_id"]].values.tolist() == [["ana", "i4", 1, "run-2"]]
        assert recs["score"].tolist() == [0.7]
        # A rebuild keeps recommendations (publishing owns them) …
        assert build_graph(store, toy_dataset(), force=True).edges["RECOMMENDED"] == 1
        # … and an unknown user is refused, not dropped.
        with pytest.raises(SchemaError, match="ghost"):
            store.write_recommendations("social", "run-3", second.assign(user_id="ghost"))

    def test_people_suggestions_replace_the_previous_run(self, store: GraphStore):
        build_graph(store, toy_dataset())
        a, b, c = "ana", "cy", "dee"
        first = pd.DataFrame({"user_id": [a, a, b], "suggested_user_id": [b, c, c], "rank": [1, 2, 1],
                              "score": [0.9, 0.5, 0.3], "reason": ["friends", "gnn", "gnn"]})
        assert store.write_people("social", "run-1", first) == 3
        assert store.write_people("social", "run-2", first.iloc[[1]].assign(rank=1)) == 1
        got = store.rel_rows(RelType.SUGGESTED, "social")
        assert got[["src", "dst", "rank", "reason", "run_id"]].values.tolist() == [[a, c, 1, "gnn", "run-2"]]
        # the lists are another relationship: writing people leaves them alone, and back
        store.write_recommendations("social", "run-2", pd.DataFrame(
            {"user_id": [a], "item_id": ["i1"], "rank": [1], "score": [1.0], "reason": ["gnn"]}))
        counts = build_graph(store, toy_dataset(), force=True)
        assert (counts.edges["SUGGESTED"], counts.edges["RECOMMENDED"]) == (1, 1)
        # a run without suggestions removes the old ones; an unknown user is refused
        assert store.write_people("social", "run-3", first.iloc[:0]) == 0
        assert store.counts("social").edges["SUGGESTED"] == 0
        with pytest.raises(SchemaError, match="ghost"):
            store.write_people("social", "run-4", first.iloc[[0]].assign(suggested_user_id="ghost"))

    # ----------------------------------------------------------------------- persistence

    def test_a_reopened_store_sees_the_graph(self, store: GraphStore):
        counts = build_graph(store, toy_dataset(), toy_mentions())
        before = snapshot(store, "social")
        other = self.reopen(store)
        try:
            assert other.counts("social") == counts
            assert other.read_meta("social") == store.read_meta("social")
            assert_same_graph(snapshot(other, "social"), before)
        finally:
            other.close()

    # ----------------------------------------------------------------------- export and explain

    def test_export_follows_the_contract(self, store: GraphStore):
        build_graph(store, toy_dataset(), toy_mentions())
        out = export_graph(store, "social")
        data, vocab = out.data, out.vocab
        assert set(data.node_types) == {"user", "item", "entity", "category"}
        assert {nt: data[nt].num_nodes for nt in data.node_types} == {
            "user": 5, "item": 5, "entity": 4, "category": 4}
        assert vocab["item"].ids.tolist() == ["i1", "i2", "i3", "i4", "i5"]
        inter = data["user", "interacted", "item"]
        assert inter.edge_index.dtype == torch.long and inter.edge_index.shape == (2, 9)
        assert inter.edge_weight.dtype == torch.float32 and inter.ts.dtype == torch.long
        ana, i1 = vocab["user"].index_of("ana"), vocab["item"].index_of("i1")
        first = inter.edge_index[:, 0].tolist()
        assert first == [ana, i1] and inter.ts[0].item() == T0
        ment = data["item", "mentions", "entity"]
        assert ment.edge_index.shape == (2, 6)
        assert ment.edge_weight.dtype == torch.float32
        assert ment.edge_weight.max().item() == pytest.approx(0.9)
        assert data["item", "in_category", "category"].edge_index.shape == (2, 7)
        assert data["user", "follows", "user"].edge_index.tolist() == [
            [vocab["user"].index_of("ana"), vocab["user"].index_of("cy")],
            [vocab["user"].index_of("ben"), vocab["user"].index_of("ana")]]
        assert "pos" not in data["item"] and "pos" not in data["user"]
        data.validate()

    def test_export_has_positions_when_the_domain_has_coordinates(self, store: GraphStore):
        build_graph(store, travel_dataset())
        out = export_graph(store, "travel")
        pos = out.data["item"].pos
        assert pos.dtype == torch.float32 and pos.shape == (3, 2)
        assert pos[out.vocab["item"].index_of("p2")].tolist() == pytest.approx([41.8902, 12.4922])
        upos = out.data["user"].pos
        assert torch.isnan(upos[out.vocab["user"].index_of("t2")]).all()
        assert out.data["user", "follows", "user"].edge_index.shape == (2, 0)
        assert out.data["item", "mentions", "entity"].edge_index.shape == (2, 0)
        assert out.data["entity"].num_nodes == 0

    def test_export_refuses_a_missing_graph(self, store: GraphStore):
        with pytest.raises(SchemaError, match="run build_graph"):
            export_graph(store, "travel")

    def test_explain_finds_every_kind_of_path(self, store: GraphStore):
        build_graph(store, toy_dataset(), toy_mentions())
        paths = explain(store, "social", "ana", "i4", k=10)
        assert [(p.kind, p.node_ids) for p in paths] == [
            ("co_interaction", ("ana", "i1", "ben", "i4")),
            ("friend", ("ana", "ben", "i4")),
            ("entity", ("ana", "i1", "e:desert", "i4")),
            ("category", ("ana", "i1", "scifi", "i4")),
            ("co_interaction", ("ana", "i3", "cy", "i4")),
        ]
        assert paths[0].sentence == "You liked Dune; 1 person who liked Dune also liked Neuromancer."
        assert paths[1].sentence == "ben, whom you follow, liked Neuromancer."
        assert paths[2].score == pytest.approx(0.6 * 0.5)
        assert "desert" in paths[2].sentence and "scifi" in paths[3].sentence
        assert len(explain(store, "social", "ana", "i4", k=2)) == 2
        assert explain(store, "social", "dee", "i1") == []  # a cold user has no path
        assert explain(store, "social", "nobody", "i1") == []


# ==================================================================== end GraphStoreContract


# ============================================================================ EncoderContract
# Owned by the text package (text/). Appended after the GraphStore block; edit only this block.
# An encoder test class inherits EncoderContract and overrides the `encoder` fixture with a
# ready TextEncoder (a private copy per test: tests attach caches and read counters).


class EncoderContract:
    """What every text encoder must do, whatever model or loader sits behind it."""

    @pytest.fixture
    def encoder(self):
        raise NotImplementedError("a subclass provides the encoder under test")

    def test_documents_are_float32_unit_rows_in_id_order(self, encoder):
        table = encoder.encode_documents(["b", "a", "c"], ["red shoes", "a blue lamp", "jazz"])
        assert table.ids.tolist() == ["b", "a", "c"]
        assert table.vectors.dtype == np.float32 and table.vectors.shape == (3, encoder.dim)
        np.testing.assert_allclose(np.linalg.norm(table.vectors, axis=1), 1.0, atol=1e-5)
        assert table.model_id == encoder.model_id

    def test_queries_and_documents_return_the_same_type(self, encoder):
        q = encoder.encode_queries(["something warm to wear"])
        d = encoder.encode_documents(["i1"], ["a wool sweater"])
        assert type(q) is type(d) and q.ids.tolist() == ["0"] and q.dim == d.dim == encoder.dim

    def test_empty_input_gives_zero_rows_of_the_right_width(self, encoder):
        for table in (encoder.encode_queries([]), encoder.encode_documents([], [])):
            assert table.vectors.shape == (0, encoder.dim) and table.vectors.dtype == np.float32

    def test_a_paraphrase_ranks_above_an_unrelated_sentence(self, encoder):
        triples = [
            ("How do I reset my password?", "What are the steps to change my login password?",
             "The recipe needs two cups of flour."),
            ("I like buying high-quality electronics", "premium headphones and laptops",
             "a paperback romance novel"),
            ("cheap flights to Rome", "low-cost airfare to Italy's capital",
             "how to repot a cactus"),
        ]
        for query, para, other in triples:
            q = encoder.encode_queries([query]).vectors[0]
            d = encoder.encode_documents(["para", "other"], [para, other]).vectors
            assert d[0] @ q > d[1] @ q + 0.1, (query, d @ q)

    def test_a_batch_equals_one_text_at_a_time(self, encoder):
        texts = ["short", "a somewhat longer text about garden furniture and teak benches", "x"]
        together = encoder.encode_documents(["a", "b", "c"], texts).vectors
        alone = np.stack([encoder.encode_documents([i], [t]).vectors[0] for i, t in zip("abc", texts)])
        np.testing.assert_allclose(together, alone, atol=1e-5)  # padding only, float noise

    def test_empty_text_is_a_real_unit_vector_flagged_as_no_text(self, encoder):
        table = encoder.encode_documents(["full", "empty", "blank"], ["a red bike", "", "   "])
        assert table.has_text.tolist() == [True, False, False]
        np.testing.assert_allclose(np.linalg.norm(table.vectors, axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(table.vectors[1], table.vectors[2], atol=1e-6)

    def test_a_text_over_max_chars_is_cut_with_a_warning_naming_the_item(self, encoder):
        from quality.errors import DataWarning

        huge = "word " * 200_000  # 1 MB
        with pytest.warns(DataWarning, match="'huge-item'"):
            table = encoder.encode_documents(["ok", "huge-item"], ["fine", huge])
        cut = encoder.encode_documents(["cut"], [huge[: encoder.config.max_chars]])
        np.testing.assert_allclose(table.vectors[1], cut.vectors[0], atol=1e-5)

    def test_a_cache_makes_the_second_run_skip_the_model(self, encoder, tmp_path):
        from text.cache import TextCache

        encoder.cache = TextCache(tmp_path / "cache")
        ids, texts = ["i1", "i2", "i3"], ["oak table", "steel chair", "oak table"]
        first = encoder.encode_documents(ids, texts)
        calls = encoder.texts_encoded
        assert calls == 2  # the repeated text is embedded once
        second = encoder.encode_documents(ids, texts)
        assert encoder.texts_encoded == calls and encoder.cache.stats.hits == 2
        np.testing.assert_array_equal(first.vectors, second.vectors)


# ======================================================================== end EncoderContract


# ============================================================================ ScorerContract
# Owned by the model package (gnn/). Appended after the EncoderContract block; edit only this
# block. A scorer test class inherits ScorerContract and overrides the class-scoped `scorer`
# fixture: it receives `scorer_toy` (a ScorerToy) and returns a fitted gnn.scoring.Scorer.


from dataclasses import dataclass as _dataclass  # noqa: E402


@_dataclass(frozen=True, eq=False)
class ScorerToy:
    """Two taste communities A and B, plus one cold user and one cold item.

    Users ``0..n-1`` like community A, ``n..2n-1`` community B; each user interacted with every
    item of their community except one (``withheld[u]``, a different one per user), so that
    withheld item is the only unseen item their community liked: it must rank first for them.
    User ``2n`` is cold (profile text of A, a link to user 0, no interactions); item ``2n`` is
    cold (text of B, mentions B's entity, no interactions). Even users have profile text, odd
    users have history only.
    """

    data: object             # HeteroData with the train interactions only
    features: object         # gnn.fusion.NodeFeatures
    train: object            # gnn.evaluation.Interactions
    n_users: int
    n_items: int
    n_per: int
    withheld: np.ndarray     # [2n] the withheld item of each warm user
    user_comm: np.ndarray    # [n_users]
    item_comm: np.ndarray    # [n_items]

    @property
    def cold_user(self) -> int:
        return self.n_users - 1

    @property
    def cold_item(self) -> int:
        return self.n_items - 1

    @property
    def known_user(self) -> int:
        return 0           # history and profile text

    @property
    def history_only_user(self) -> int:
        return 1           # history, no profile text, no links

    def seen(self):
        return self.train.csr(self.n_users, self.n_items)


def make_scorer_toy(n_per: int = 6, dim: int = 16, seed: int = 0) -> ScorerToy:
    """Build the :class:`ScorerToy` (deterministic for a seed)."""
    from torch_geometric.data import HeteroData

    from gnn.evaluation import Interactions
    from gnn.fusion import NodeFeatures

    rng = np.random.default_rng(seed)
    n_users, n_items = 2 * n_per + 1, 2 * n_per + 1
    user_comm = np.r_[np.repeat([0, 1], n_per), 0]
    item_comm = np.r_[np.repeat([0, 1], n_per), 1]
    withheld = np.array([user_comm[u] * n_per + (u % n_per) for u in range(2 * n_per)])
    us, its = [], []
    for u in range(2 * n_per):
        for i in range(2 * n_per):
            if item_comm[i] == user_comm[u] and i != withheld[u]:
                us.append(u)
                its.append(i)
    train = Interactions.from_arrays(us, its, ts=np.arange(len(us)))
    axes = np.eye(dim)[:2]

    def text(comm):
        x = axes[comm] + 0.3 * rng.normal(size=(len(comm), dim))
        return torch.tensor(x / np.linalg.norm(x, axis=1, keepdims=True), dtype=torch.float32)

    data = HeteroData()
    for t, n in (("user", n_users), ("item", n_items), ("entity", 2), ("category", 2)):
        data[t].num_nodes = n
    inter = data["user", "interacted", "item"]
    inter.edge_index = torch.tensor(np.stack([train.user, train.item]), dtype=torch.long)
    inter.edge_weight = torch.ones(len(train))
    inter.ts = torch.tensor(train.ts)
    data["item", "mentions", "entity"].edge_index = torch.tensor(np.stack([np.arange(n_items), item_comm]))
    data["item", "mentions", "entity"].edge_weight = torch.ones(n_items)
    data["item", "in_category", "category"].edge_index = torch.tensor(np.stack([np.arange(n_items), item_comm]))
    data["user", "follows", "user"].edge_index = torch.tensor([[n_users - 1], [0]])
    has_text_user = torch.tensor([u % 2 == 0 for u in range(n_users)])
    has_text_user[-1] = True
    features = NodeFeatures(x_item=text(item_comm), x_user=text(user_comm), has_text_user=has_text_user,
                            x_entity=text(np.array([0, 1])), x_category=text(np.array([0, 1])))
    return ScorerToy(data, features, train, n_users, n_items, n_per, withheld, user_comm, item_comm)


class ScorerContract:
    """What every scorer must do: NaN for what it cannot score, never a seen item."""

    #: set False in scorers that cannot score users without history (none so far)
    scores_history_only_users = True

    @pytest.fixture(scope="class")
    def scorer_toy(self) -> ScorerToy:
        return make_scorer_toy()

    @pytest.fixture(scope="class")
    def scorer(self, scorer_toy):
        raise NotImplementedError("a subclass provides the fitted scorer")

    def test_known_user_gets_finite_scores_for_known_items(self, scorer, scorer_toy):
        warm_items = np.unique(scorer_toy.train.item)
        s = scorer.score(np.array([scorer_toy.known_user]), warm_items)
        assert s.shape == (1, len(warm_items))
        assert np.isfinite(s).all()

    def test_unknown_user_scores_nan_never_zero(self, scorer, scorer_toy):
        s = scorer.score(np.array([-1, scorer_toy.n_users, scorer_toy.n_users + 7]))
        assert s.shape == (3, scorer_toy.n_items)
        assert np.isnan(s).all()

    def test_unknown_item_scores_nan_and_leaves_the_others_alone(self, scorer, scorer_toy):
        u = np.array([scorer_toy.known_user])
        items = np.array([0, -1, 1, scorer_toy.n_items])
        s = scorer.score(u, items)
        assert np.isnan(s[0, [1, 3]]).all()
        np.testing.assert_allclose(s[0, [0, 2]], scorer.score(u, np.array([0, 1]))[0], rtol=1e-6)

    def test_history_only_user_is_scored(self, scorer, scorer_toy):
        if not self.scores_history_only_users:
            pytest.skip("this scorer declares it cannot score history-only users")
        s = scorer.score(np.array([scorer_toy.history_only_user]))
        assert np.isfinite(s[0, np.unique(scorer_toy.train.item)]).all()

    def test_empty_candidate_list(self, scorer, scorer_toy):
        s = scorer.score(np.array([scorer_toy.known_user, -1]), np.array([], dtype=np.int64))
        assert s.shape == (2, 0)
        assert scorer.score(np.array([], dtype=np.int64)).shape == (0, scorer_toy.n_items)

    def test_never_recommends_a_seen_item(self, scorer, scorer_toy):
        from gnn.scoring import recommend_all

        seen = scorer_toy.seen()
        recs = recommend_all(scorer, seen, k=5)
        hit = np.asarray(seen[recs["user_idx"].to_numpy(), recs["item_idx"].to_numpy()]).ravel()
        assert len(recs) > 0 and not hit.any()
        assert recs["item_idx"].between(0, scorer_toy.n_items - 1).all()


# ======================================================================== end ScorerContract
