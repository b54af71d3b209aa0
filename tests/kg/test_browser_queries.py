"""The ready-made Neo4j Browser queries run against a real graph and show what they promise."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from contracts import toy_dataset, toy_mentions

import kg
from kg.builder import build_graph
from kg.neo4j_store import Neo4jStore
from quality.contract import DOMAINS

BROWSER = Path(kg.__file__).resolve().parent / "browser"


def statements() -> list[str]:
    """The queries of queries.cypher (comments and :param lines left out)."""
    text = (BROWSER / "queries.cypher").read_text(encoding="utf-8")
    body = "\n".join(line for line in text.splitlines()
                     if not line.lstrip().startswith(("//", ":param")))
    return [s.strip() for s in body.split(";") if s.strip()]


def test_the_file_declares_every_parameter_it_uses():
    text = (BROWSER / "queries.cypher").read_text(encoding="utf-8")
    declared = set(re.findall(r"^:param (\w+) =>", text, flags=re.M))
    used = {p for s in statements() for p in re.findall(r"\$(\w+)", s)}
    assert used == declared == {"domain", "user_id", "item_id"}
    assert len(statements()) == 8


def test_the_style_covers_every_label_and_type():
    grass = (BROWSER / "style.grass").read_text(encoding="utf-8")
    for name in [*map(str, kg.Label), "KgrecMeta"]:
        assert re.search(rf"node\.{name} \{{[^}}]*caption:", grass), name
    for name in map(str, kg.RelType):
        assert f"relationship.{name} {{" in grass


@pytest.mark.neo4j
def test_every_query_runs_and_answers(neo4j_server, neo4j_driver):
    store = Neo4jStore(neo4j_server)
    try:
        for domain in DOMAINS:
            store.drop_domain(domain)
        build_graph(store, toy_dataset(), toy_mentions())
        store.write_recommendations("social", "run-1", pd.DataFrame(
            {"user_id": ["ana"], "item_id": ["i4"], "rank": [1], "score": [0.9],
             "reason": ["gnn"]}))
        store.write_people("social", "run-1", pd.DataFrame(
            {"user_id": ["ana"], "suggested_user_id": ["dee"], "rank": [1], "score": [0.5],
             "reason": ["gnn"]}))
        params = {"domain": "social", "user_id": "ana", "item_id": "i4"}
        results = []
        for query in statements():
            records, _, _ = neo4j_driver.execute_query(query, params,
                                                       database_=neo4j_server.database)
            results.append(records)
        assert all(results), [i + 1 for i, r in enumerate(results) if not r]
        # 3: why i4 was recommended to ana: the edge and paths of all four kinds.
        why = results[2]
        assert why[0]["rec"] is not None
        kinds = {tuple(rel.type for rel in r["p"].relationships) for r in why}
        assert kinds == {("INTERACTED", "INTERACTED", "INTERACTED"), ("FOLLOWS", "INTERACTED"),
                         ("INTERACTED", "MENTIONS", "MENTIONS"),
                         ("INTERACTED", "IN_CATEGORY", "IN_CATEGORY")}
        # 4: the recommendation table; 5: e:desert is mentioned by three items.
        assert [(r["rank"], r["item_id"], r["reason"]) for r in results[3]] == [(1, "i4", "gnn")]
        assert (results[4][0]["entity_id"], results[4][0]["items"]) == ("e:desert", 3)
        # 7: the glance table agrees with the store's counts.
        glance = {r["what"]: r["n"] for r in results[6]}
        counts = store.counts("social")
        assert glance["User"] == counts.nodes["User"]
        assert glance["INTERACTED"] == counts.edges["INTERACTED"]
        # 8: the people suggested to ana
        assert [(r["o"]["id"], r["s"]["rank"]) for r in results[7]] == [("dee", 1)]
    finally:
        for domain in DOMAINS:
            store.drop_domain(domain)
        store.close()
