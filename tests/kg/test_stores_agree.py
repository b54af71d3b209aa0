"""The same dataset gives the same graph, export and explanations from Neo4j and networkx."""

from __future__ import annotations

import pandas as pd
import pytest
from contracts import (
    assert_same_export,
    assert_same_graph,
    history_dataset,
    history_mentions,
    nasty_dataset,
    snapshot,
    toy_dataset,
    toy_mentions,
    travel_dataset,
)

from kg.builder import build_graph
from kg.explain import explain, explain_many
from kg.export import export_graph
from kg.neo4j_store import Neo4jStore
from kg.networkx_store import NetworkXStore
from kg.schema import CO_INTERACTION_PARTNERS, PathKind
from kg.store import history_cut, id_order
from quality.contract import DOMAINS

pytestmark = pytest.mark.neo4j

CASES = {
    "toy": (toy_dataset, toy_mentions),
    "nasty": (nasty_dataset, lambda: None),
    "travel": (travel_dataset, lambda: None),
    "history": (history_dataset, history_mentions),
}


@pytest.fixture(scope="module")
def built(neo4j_server, tmp_path_factory):
    """Every case built in both stores (Neo4j with small batches)."""
    neo = Neo4jStore(neo4j_server, batch_size=5)
    for domain in DOMAINS:
        neo.drop_domain(domain)
    nx_store = NetworkXStore(tmp_path_factory.mktemp("agree") / "graph.pickle")
    for make_data, make_mentions in CASES.values():
        data, mentions = make_data(), make_mentions()
        assert build_graph(neo, data, mentions) == build_graph(nx_store, data, mentions)
    yield neo, nx_store
    for domain in DOMAINS:
        neo.drop_domain(domain)
    neo.close()
    nx_store.close()


@pytest.mark.parametrize("case", sorted(CASES))
def test_rows_are_identical(built, case):
    neo, nx_store = built
    domain = CASES[case][0]().domain
    assert neo.counts(domain) == nx_store.counts(domain)
    assert_same_graph(snapshot(neo, domain), snapshot(nx_store, domain))


@pytest.mark.parametrize("case", sorted(CASES))
def test_exports_are_identical(built, case):
    neo, nx_store = built
    domain = CASES[case][0]().domain
    a, b = export_graph(neo, domain), export_graph(nx_store, domain)
    assert a.build == b.build
    assert_same_export(a, b)


@pytest.mark.parametrize("case", ["toy", "nasty", "history"])
def test_explanations_are_identical_for_every_pair(built, case):
    neo, nx_store = built
    data = CASES[case][0]()
    found = 0
    for user in data.users["user_id"]:
        for item in data.items["item_id"]:
            a = explain(neo, data.domain, user, item, k=10)
            assert a == explain(nx_store, data.domain, user, item, k=10), (user, item)
            found += len(a)
    assert found > 0


@pytest.mark.parametrize("case", ["toy", "nasty"])
@pytest.mark.parametrize("limit", [1, 2, 10])
def test_path_groups_are_identical_and_batched_explanations_match(built, case, limit):
    """One read for a whole list gives each item what a read of that item alone gives, and both
    stores return equal path groups, cut the same way (limit 1 keeps only the best count and
    its ties, which the nasty ids make many)."""
    neo, nx_store = built
    data = CASES[case][0]()
    items = data.items["item_id"].tolist()
    for user in data.users["user_id"]:
        a = neo.path_rows_many(data.domain, user, items, limit=limit)
        b = nx_store.path_rows_many(data.domain, user, items, limit=limit)
        for kind in a:
            pd.testing.assert_frame_equal(a[kind], b[kind], check_dtype=False, obj=f"{user} {kind}")
        for store in (neo, nx_store):
            many = explain_many(store, data.domain, user, items + items[:1], k=limit)
            assert list(many) == items
            assert many == {i: explain(store, data.domain, user, i, k=limit) for i in items}


@pytest.mark.parametrize("case", ["toy", "nasty"])
def test_co_interaction_groups_count_the_other_users_exactly(built, case):
    """Where every item has fewer partners than CO_INTERACTION_PARTNERS, the groups read from
    CO_INTERACTED are those of the whole graph: for each item the user interacted with, how many
    other users interacted with both it and the item, and the smallest of them by code point."""
    neo, nx_store = built
    data = CASES[case][0]()
    inter = data.interactions
    liked = inter.groupby("user_id")["item_id"].agg(set).to_dict()
    fans = inter.groupby("item_id")["user_id"].agg(set).to_dict()
    assert len(data.items) <= CO_INTERACTION_PARTNERS  # so no partner is left out
    items = data.items["item_id"].tolist()
    for user in data.users["user_id"]:
        expected = []
        for item in items:
            for via in liked.get(user, set()) - {item}:
                others = fans.get(item, set()) & fans[via] - {user}
                if others:
                    expected.append((item, via, len(others), min(others)))
        for store in (neo, nx_store):
            got = store.path_rows_many(data.domain, user, items, limit=len(items) + 1,
                                       kinds=[PathKind.CO_INTERACTION])[PathKind.CO_INTERACTION]
            assert sorted(got.itertuples(index=False, name=None)) == sorted(expected), (store, user)


@pytest.mark.parametrize("history", range(1, 9))
def test_a_history_cap_keeps_the_items_of_the_latest_interactions_in_both_stores(built, history):
    """With ``history``, paths go only through the items of the user's ``history`` latest
    interactions (ties at the cut kept, an item read twice counted by its latest read), both
    stores agree, and counts are counts among the kept items; past the user's history the cap
    changes nothing."""
    neo, nx_store = built
    data = history_dataset()
    inter = data.interactions
    items = data.items["item_id"].tolist()
    cats = {r.item_id: set(r.category.split("|")) for r in data.items.itertuples()}
    changed = 0
    for user, mine in inter.groupby("user_id"):
        cut = history_cut(mine["timestamp"].tolist(), history)
        latest = mine.groupby("item_id")["timestamp"].max()
        kept = set(latest.index if cut is None else latest[latest >= cut].index)
        a = neo.path_rows_many(data.domain, user, items, limit=10, history=history)
        b = nx_store.path_rows_many(data.domain, user, items, limit=10, history=history)
        whole = neo.path_rows_many(data.domain, user, items, limit=10)
        for kind in a:
            pd.testing.assert_frame_equal(a[kind], b[kind], check_dtype=False, obj=f"{user} {kind}")
            changed += not a[kind].equals(whole[kind])
        assert set(a[PathKind.CO_INTERACTION]["via_item"]) <= kept
        assert set(a[PathKind.ENTITY]["via_item"]) <= kept
        for row in a[PathKind.CATEGORY].itertuples():
            in_cat = {x for x in kept - {row.item_id} if row.category in cats[x]}
            assert row.n_items == len(in_cat), (user, history, row)
            assert set(row.latest_items) <= in_cat
        if history >= len(mine):
            for kind in a:
                pd.testing.assert_frame_equal(a[kind], whole[kind], check_dtype=False)
    if history < 7:  # hal has 7 interactions: every smaller cap removes some of hal's paths
        assert changed > 0


def test_id_order_is_neo4js_utf16_order():
    # code-point order puts U+E000 and U+FFFF after the astral characters; UTF-16 puts them last
    ids = ["a", "b", "ab", "", "\ue000", "\uffff", "😀", "x😀", "x\uffff", "ünïcødé 🎉🚀", "\U0010ffff"]
    want = sorted(ids, key=lambda i: i.encode("utf-16-be", "surrogatepass"))
    assert sorted(ids, key=id_order) == want
    assert want.index("\uffff") > want.index("😀") and sorted(ids).index("\uffff") < sorted(ids).index("😀")
    assert id_order("plain-id") == "plain-id"


def test_history_cut_semantics():
    # the 3rd latest of 80, 70, 60, 50, 50 is 60; ties at the cut stay (cut 50 keeps both 50s)
    assert history_cut([50, 80, 50, 60, 70], 3) == 60
    assert history_cut([50, 80, 50, 60, 70], 4) == 50
    assert history_cut([50, 80, 50, 60, 70], 5) is None           # no more than the cap: all
    assert history_cut([50, 80, 50, 60, 70], None) is None
    assert history_cut([None, 80, None, 60], 2) == 60             # a missing time is the oldest
    assert history_cut([None, 80, None, 60], 3) is None            # the cut falls on one: all
    with pytest.raises(ValueError, match="history"):
        history_cut([1, 2], 0)


def test_capped_category_sentences_say_what_they_count(built):
    neo, nx_store = built
    data = history_dataset()
    for store in (neo, nx_store):
        capped = [p.sentence for p in explain(store, data.domain, "hal", "h5", k=10, history=3)
                  if p.kind is PathKind.CATEGORY]
        whole = [p.sentence for p in explain(store, data.domain, "hal", "h5", k=10)
                 if p.kind is PathKind.CATEGORY]
        # drama among hal's items: h1, h2, h3, h6 (h5 is the item itself); the last 3
        # interactions (h6, h1, h4) keep h6 and h1
        assert capped == [("You liked Zeta in drama (and 1 more in your last 3 interactions); "
                           "Epsilon is in drama too.")]
        assert whole == ["You liked Zeta in drama (and 3 more you liked); Epsilon is in drama too."]


def test_a_history_cap_below_one_is_refused_by_both_stores(built):
    for store in built:
        with pytest.raises(ValueError, match="history must be >= 1"):
            store.path_groups_many("content", "hal", ["h1"], limit=3, history=0)


@pytest.fixture(scope="module")
def neo_readers(built, neo4j_server):
    """Two more Neo4jStores on the same graph: one that reads every list with the per-item
    query, one that reads every list, even of one item, through the tables the paths join over."""
    per_item = Neo4jStore(neo4j_server, tables_from_items=None)
    tables = Neo4jStore(neo4j_server, tables_from_items=1)
    yield per_item, tables
    per_item.close()
    tables.close()


@pytest.mark.parametrize("case", sorted(CASES))
def test_path_tables_give_the_same_groups_as_the_per_item_query(built, neo_readers, case):
    """Neo4j's two ways to read a list's path groups (per-item bodies in Cypher, or one read of
    the tables they join over and the embedded store's join in Python) agree with each other
    and with networkx, for every user, cut and history cap, with unknown items and users."""
    _, nx_store = built
    per_item, tables = neo_readers
    data = CASES[case][0]()
    items = data.items["item_id"].tolist() + ["no such item"]
    caps = [None, 1, 2, 3, 8] if case == "history" else [None, 2]
    found = 0
    for user in [*data.users["user_id"], "no such user"]:
        for limit in (1, 2, 10):
            for history in caps:
                a = tables.path_groups_many(data.domain, user, items, limit, history=history)
                b = per_item.path_groups_many(data.domain, user, items, limit, history=history)
                c = nx_store.path_groups_many(data.domain, user, items, limit, history=history)
                assert a == b == c, (user, limit, history)
                found += sum(len(v) for v in a.values())
        many = explain_many(tables, data.domain, user, items, k=3)
        assert many == {i: explain(nx_store, data.domain, user, i, k=3) for i in many}
    assert found > 0
