"""The same dataset gives the same graph, export and explanations from Neo4j and networkx."""

from __future__ import annotations

import pandas as pd
import pytest
from contracts import (
    assert_same_export,
    assert_same_graph,
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
from quality.contract import DOMAINS

pytestmark = pytest.mark.neo4j

CASES = {
    "toy": (toy_dataset, toy_mentions),
    "nasty": (nasty_dataset, lambda: None),
    "travel": (travel_dataset, lambda: None),
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


@pytest.mark.parametrize("case", ["toy", "nasty"])
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
