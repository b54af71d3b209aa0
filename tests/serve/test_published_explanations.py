"""Explanations published with the lists: equal to the graph's, served without reading it."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from flows.publishing import PublicationError, latest_publication, new_run_id
from serve.app import create_app
from serve.config import ServeConfig


def rows(paths) -> list[tuple]:
    """API path dicts or kg.explain paths as comparable tuples."""
    if paths is None:
        return None
    return [(p["kind"], p["sentence"], list(p["node_ids"]), list(p["labels"])) if isinstance(p, dict)
            else (str(p.kind), p.sentence, list(p.node_ids), [str(x) for x in p.labels]) for p in paths]


@pytest.fixture(scope="module")
def ecommerce(served_out):
    from kg.networkx_store import NetworkXStore

    pub = latest_publication(served_out, "ecommerce")
    recs = pd.read_parquet(pub.recommendations).sort_values(["user_id", "rank"])
    inter = pd.read_parquet(pub.path / "interactions.parquet")
    store = NetworkXStore(served_out / "ecommerce" / "graph" / "graph.pkl")
    yield pub, recs, inter, store
    store.close()


def test_the_published_table_is_the_graphs_explanation_of_every_list(ecommerce):
    from kg.explain import explain_lists

    pub, recs, _, store = ecommerce
    published = pd.read_parquet(pub.path / "explanations.parquet")
    lists = {u: g.tolist() for u, g in recs.groupby("user_id", sort=False)["item_id"]}
    want = explain_lists(store, "ecommerce", lists, k=4, history=200)
    assert len(want) > len(lists), "the sample's lists have paths"
    pd.testing.assert_frame_equal(published.reset_index(drop=True), want.reset_index(drop=True))


def test_lists_are_explained_as_the_graph_would(client, ecommerce):
    """What the API returns for a list (from the publication) equals a live read of the graph
    with the API's settings (3 paths, the last 200 interactions), heavy user included."""
    from kg.explain import explain_many

    _, recs, inter, store = ecommerce
    heavy = inter["user_id"].value_counts().index[0]
    users = list(dict.fromkeys([heavy, *recs["user_id"].drop_duplicates().head(30)]))
    explained = 0
    for u in users:
        got = client.get(f"/v1/ecommerce/users/{u}/recommendations", params={"k": 20}).json()["items"]
        ids = [i["item_id"] for i in got]
        want = explain_many(store, "ecommerce", u, ids, k=3, history=200)
        assert {i["item_id"]: rows(i["explanations"]) for i in got} == \
               {i: rows(p) for i, p in want.items()}, u
        explained += sum(bool(i["explanations"]) for i in got)
    assert explained > len(users), "most lists have paths"


def test_published_explanations_need_no_graph(served_out, ecommerce, tmp_path):
    """Without the graph, a published list still comes with its paths; only items from beyond
    it (brought in by diversity) and pairs the publication lacks have none."""
    from kg.explain import explain

    _, recs, _, store = ecommerce
    out = tmp_path / "out"
    shutil.copytree(served_out / "ecommerce", out / "ecommerce", symlinks=True,
                    ignore=shutil.ignore_patterns("graph"))
    user = recs["user_id"].iloc[0]
    mine = recs.loc[recs.user_id == user, "item_id"].tolist()
    url = f"/v1/ecommerce/users/{user}/recommendations"
    with TestClient(create_app(ServeConfig(out=out, check_interval_s=0))) as c:
        got = c.get(url, params={"k": 20}).json()["items"]
        assert [i["item_id"] for i in got] == mine
        assert all(i["explanations"] is not None for i in got)
        assert any(i["explanations"] for i in got)
        varied = c.get(url, params={"k": 20, "diversity": 1.0}).json()["items"]
        outside = [i for i in varied if i["item_id"] not in mine]
        assert outside, "full diversity reaches beyond the published list"
        assert all(i["explanations"] is None for i in outside)
        assert all(i["explanations"] is not None for i in varied if i["item_id"] in mine)
        # the pair endpoint: a published pair answers from memory (4 paths were published) ...
        r = c.get(f"/v1/ecommerce/users/{user}/items/{mine[0]}/explanation")
        assert r.status_code == 200
        assert rows(r.json()["explanations"]) == rows(explain(store, "ecommerce", user, mine[0], k=4, history=200))
        # ... more paths than were published, or another item, need the graph
        assert c.get(f"/v1/ecommerce/users/{user}/items/{mine[0]}/explanation", params={"k": 5}).status_code == 503
        r = c.get(f"/v1/ecommerce/users/{user}/items/{outside[0]['item_id']}/explanation")
        assert r.status_code == 503 and "graph store" in r.json()["detail"]
    # another history cap than the published one reads the graph, which is not there
    with TestClient(create_app(ServeConfig(out=out, explain_history=None))) as c:
        got = c.get(url, params={"k": 20}).json()["items"]
        assert all(i["explanations"] is None for i in got)


def test_explanations_of_other_lists_are_refused(served_out, ecommerce, tmp_path):
    """publish_domain refuses an explanations file made for other lists, before it writes."""
    from flows import steps
    from quality.gate import open_dataset
    from quality.synth import sample_path

    pub, recs, _, _ = ecommerce
    folder = tmp_path / "model"
    folder.mkdir()
    other = recs.drop(columns=["domain", "run_id"])
    other = other.assign(score=other["score"] + 1.0)    # same items, other bytes
    other.to_parquet(folder / "recommendations.parquet", index=False)
    out = tmp_path / "out"
    with pytest.raises(PublicationError, match="explains other lists"):
        steps.publish_domain(open_dataset(sample_path("ecommerce")), "embedded", out, new_run_id(), folder,
                             None, {"k": 20}, pub.path / "explanations.parquet")
    assert latest_publication(out, "ecommerce") is None
    assert not (out / "ecommerce" / "graph").exists(), "no RECOMMENDED edge was written"
