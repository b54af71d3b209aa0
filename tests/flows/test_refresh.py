"""refresh-domain end to end on the bundled samples: real Prefect, real GX, real models and graph."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from flows.publishing import latest_publication
from flows.refresh import RefreshParams, refresh_domain, run_refresh
from quality.synth import sample_path

FAST = dict(evaluate=False, epochs=8)


def params(domain: str, out: Path, cache: Path, **kw) -> RefreshParams:
    return RefreshParams(dataset_dir=str(sample_path(domain)), out=str(out), cache_dir=str(cache), **{**FAST, **kw})


def check_publication(out: Path, domain: str, k: int = 20) -> pd.DataFrame:
    from quality.gate import open_dataset

    pub = latest_publication(out, domain)
    assert pub is not None
    recs = pd.read_parquet(pub.recommendations)
    ds = open_dataset(sample_path(domain))
    # every user (cold ones included) gets K rows ranked 1..K
    assert set(recs["user_id"]) == set(ds.users["user_id"])
    assert recs.groupby("user_id").size().eq(k).all()
    assert recs.groupby("user_id")["rank"].apply(lambda r: sorted(r) == list(range(1, k + 1))).all()
    # never an item the user already interacted with
    seen = ds.interactions[["user_id", "item_id"]].drop_duplicates()
    assert len(recs.merge(seen, on=["user_id", "item_id"])) == 0
    assert recs["item_id"].isin(ds.items["item_id"]).all()
    assert recs["run_id"].eq(pub.run_id).all() and recs["domain"].eq(domain).all()
    # users with no interactions still get recommendations, with a cold-start reason
    cold = set(ds.users["user_id"]) - set(ds.interactions["user_id"])
    assert cold and recs[recs.user_id.isin(cold)]["reason"].isin(["gnn", "text", "friends", "nearby", "popular"]).all()
    return recs


@pytest.mark.parametrize("domain", ["ecommerce", "content", "social", "travel"])
def test_each_bundled_domain_refreshes_end_to_end(prefect_api, shared_cache, tmp_path, domain):
    out = tmp_path / "out"
    summary = refresh_domain(params(domain, out, shared_cache))
    recs = check_publication(out, domain)
    assert Path(summary["data_docs"]).exists()
    # the embedded graph holds the RECOMMENDED edges of this run
    from kg.networkx_store import NetworkXStore

    store = NetworkXStore(out / domain / "graph" / "graph.pkl")
    assert store.counts(domain).edges["RECOMMENDED"] == len(recs)
    # and the published explanations are the graph's paths of every published item
    from kg.explain import explain_lists

    published = pd.read_parquet(latest_publication(out, domain).path / "explanations.parquet")
    ranked = recs.sort_values(["user_id", "rank"])
    lists = {u: g.tolist() for u, g in ranked.groupby("user_id", sort=False)["item_id"]}
    want = explain_lists(store, domain, lists, k=4, history=200)
    pd.testing.assert_frame_equal(published, want)
    assert published["kind"].nunique() >= 2, published["kind"].value_counts()
    store.close()
    # the social domain also publishes people to follow, for every user; the others have no links
    people_file = latest_publication(out, domain).path / "people.parquet"
    if domain == "social":
        from quality.gate import open_dataset

        ds = open_dataset(sample_path(domain))
        people = pd.read_parquet(people_file)
        assert set(people["user_id"]) == set(ds.users["user_id"])
        assert people.groupby("user_id").size().eq(20).all()
        links = set(zip(ds.user_links.src_user_id, ds.user_links.dst_user_id))
        assert not any(u == o or (u, o) in links or (o, u) in links
                       for u, o in zip(people.user_id, people.suggested_user_id))
        # mirrored into the graph as (:User)-[:SUGGESTED]->(:User)
        store = NetworkXStore(out / domain / "graph" / "graph.pkl")
        assert store.counts(domain).edges["SUGGESTED"] == len(people)
        store.close()
    else:
        assert not people_file.exists()


def test_evaluation_artifacts_and_metrics_table(prefect_api, shared_cache, tmp_path):
    out = tmp_path / "out"
    summary = refresh_domain(params("ecommerce", out, shared_cache, evaluate=True,
                                    baselines=("popular", "ease", "text")))
    table = pd.read_csv(summary["metrics"])
    assert {"popular", "ease", "text", "kgrec"} <= set(table["model"])
    assert {"all", "warm", "cold_user", "cold_item"} <= set(table["slice"])
    assert (Path(summary["publication"]) / "metrics.csv").exists()
    # the published model is the evaluated one: kgrec's settings come from the evaluation record
    import json

    import torch

    from gnn.recommender import settings_from_evaluation

    record = json.loads(Path(summary["metrics"]).with_suffix(".json").read_text())
    choices = torch.load(Path(summary["publication"]) / "model" / "serving.pt", weights_only=False)["choices"]
    assert choices["source"].startswith("evaluation metrics-")
    assert {k: v for k, v in choices.items() if k != "source"} == settings_from_evaluation(record["tuned"])


def test_unchanged_rerun_skips_expensive_steps(prefect_api, shared_cache, tmp_path):
    from prefect.client.orchestration import get_client

    out = tmp_path / "out"
    p = params("social", out, shared_cache)
    first = refresh_domain(p)
    state = refresh_domain(p, return_state=True)
    second = state.result()
    assert second["run_id"] != first["run_id"]

    import anyio

    async def task_states(flow_run_id):
        async with get_client() as client:
            from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

            runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            return {r.name.rsplit("-", 1)[0]: r.state.name for r in runs}

    states = anyio.run(task_states, state.state_details.flow_run_id)
    for name in ("embed-nodes", "train-and-recommend", "link-entities"):
        assert states[name] == "Cached", states
    assert states["publish"] == "Completed"


def test_refused_dataset_fails_the_run_and_keeps_latest(prefect_api, shared_cache, tmp_path):
    out = tmp_path / "out"
    refresh_domain(params("travel", out, shared_cache))
    before = latest_publication(out, "travel")
    bad = tmp_path / "bad"
    shutil.copytree(sample_path("travel"), bad)
    items = pd.read_csv(bad / "items.csv", dtype=str)
    items.loc[3, "lat"] = None
    items.to_csv(bad / "items.csv", index=False)
    state = refresh_domain(RefreshParams(dataset_dir=str(bad), out=str(out), cache_dir=str(shared_cache), **FAST),
                           return_state=True)
    assert state.is_failed()
    assert "items.csv column 'lat' breaks rule 'not_null'" in str(state.message) or \
        "not_null" in repr(state.result(raise_on_failure=False))
    after = latest_publication(out, "travel")
    assert after.run_id == before.run_id
    assert pd.read_parquet(after.recommendations)["run_id"].eq(before.run_id).all()


def test_dask_task_runner_gives_the_same_recommendations(prefect_api, shared_cache, tmp_path):
    a = run_refresh(params("content", tmp_path / "a", shared_cache, batch_items=150))
    b = run_refresh(params("content", tmp_path / "b", shared_cache, batch_items=150), task_runner="dask")
    ra = pd.read_parquet(Path(a["publication"]) / "recommendations.parquet")
    rb = pd.read_parquet(Path(b["publication"]) / "recommendations.parquet")
    cols = ["user_id", "rank", "item_id", "reason"]
    pd.testing.assert_frame_equal(ra[cols].reset_index(drop=True), rb[cols].reset_index(drop=True))


def test_rerun_after_output_folder_was_deleted(prefect_api, tmp_path):
    # Prefect's task cache outlives the files it points to; a deleted output folder must make
    # the cached steps run again, not hand out paths to files that are gone.
    out = tmp_path / "out"
    p = RefreshParams(dataset_dir=str(sample_path("travel")), out=str(out), **FAST)
    refresh_domain(p)
    shutil.rmtree(out)
    again = refresh_domain(p)
    check_publication(out, "travel")
    assert Path(again["publication"]).exists()
