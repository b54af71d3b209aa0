"""Task bodies of the refresh flow: load what a reference points to, call the library, save.

Kept apart from the Prefect decorators so each step can be called (and tested) on its own; the
logic itself lives in ``quality``, ``text``, ``kg`` and ``gnn``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quality.dataset import Dataset


# --------------------------------------------------------------------------- graph target


def open_store(target: str, out: Path, domain: str):
    """The graph store for ``target``: ``embedded`` (networkx under ``out``) or a Bolt URI.

    Bolt credentials come from the Prefect Secret block ``kgrec-neo4j-password`` when one
    exists, else from ``KGREC_NEO4J_USER`` / ``KGREC_NEO4J_PASSWORD``; never from parameters.
    """
    if target == "embedded":
        from kg.networkx_store import NetworkXStore

        return NetworkXStore(Path(out) / domain / "graph" / "graph.pkl")
    if not target.startswith(("bolt://", "neo4j://", "bolt+s://", "neo4j+s://")):
        raise ValueError(f"graph target must be 'embedded' or a bolt:// URI; got {target!r}")
    from kg.neo4j_store import Neo4jStore
    from kg.server import Neo4jSettings

    password = _secret_password()
    settings = Neo4jSettings.from_env()
    update: dict[str, Any] = {"uri": target}
    if password is not None:
        update["password"] = password
    return Neo4jStore(settings.model_copy(update=update))


def _secret_password():
    from pydantic import SecretStr

    try:
        from prefect.blocks.system import Secret

        return SecretStr(Secret.load("kgrec-neo4j-password").get())
    except Exception:  # no block registered (or no API): fall back to the environment
        return None


# --------------------------------------------------------------------------- text


def extract_item_batch(dataset: Dataset, backend: str, start: int, stop: int, path: Path,
                       cache_dir: Path) -> int:
    """Extract mentions for items ``start:stop`` and write them to ``path`` (Parquet)."""
    from text.cache import TextCache
    from text.extraction import ExtractionConfig, make_extractor, mentions_frame

    texts = dataset.item_text().iloc[start:stop]
    cache = TextCache(cache_dir / "text")
    try:
        extractor = make_extractor(dataset.domain, ExtractionConfig(backend=backend), cache)
        frame = mentions_frame(extractor.extract(list(texts.index), list(texts.values)))
    finally:
        cache.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return len(frame)


def link_mentions(paths: list[Path], out_path: Path, cache_dir: Path) -> int:
    """Merge batch mentions and link them into entities (``MENTION_COLUMNS`` of the builder)."""
    from text.linking import link_entities

    frames = [pd.read_parquet(p) for p in paths]
    raw = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    linked = link_entities(raw).mentions if len(raw) else pd.DataFrame(
        columns=["item_id", "entity_id", "entity_name", "entity_type", "confidence", "source"])
    out_path.parent.mkdir(parents=True, exist_ok=True)
    linked.to_parquet(out_path, index=False)
    return len(linked)


# --------------------------------------------------------------------------- graph


def build_domain_graph(dataset: Dataset, target: str, out: Path, mentions_path: Path | None,
                       cache_dir: Path | None = None):
    """Build the domain's graph and export it to tensors; returns (counts, build stamp, export path)."""
    import torch

    from kg.builder import build_graph
    from kg.export import export_graph

    mentions = pd.read_parquet(mentions_path) if mentions_path else None
    store = open_store(target, out, dataset.domain)
    try:
        counts = build_graph(store, dataset, mentions)
        export = export_graph(store, dataset.domain)
    finally:
        store.close()
    path = (cache_dir or out / "cache") / dataset.domain / f"export-{export.build[:16]}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"data": export.data, "vocab": {k: list(v.ids) for k, v in export.vocab.items()},
                "build": export.build, "domain": export.domain}, tmp)
    os.replace(tmp, path)
    return counts, export.build, path


def load_export(path: Path) -> dict:
    import torch

    return torch.load(path, weights_only=False)


# --------------------------------------------------------------------------- features


def embed_texts_ahead(dataset: Dataset, model: str, device: str, cache_dir: Path) -> int:
    """Embed the item and user texts into the text cache; returns how many texts it holds for them.

    Item and user texts need nothing but the gated dataset, so a refresh embeds them while the
    entity extraction runs (spaCy holds the GIL and keeps about one core busy; the encoder takes
    the other). :func:`embed_graph_nodes` then finds them in the cache and embeds only entities
    and categories. The vectors are the ones it would compute itself: same texts, same calls.
    """
    from text.cache import TextCache
    from text.encoders import EncoderConfig, TextEncoder
    from text.features import embed_in_order, node_texts

    texts = node_texts(dataset)
    cache = TextCache(cache_dir / "text")
    try:
        encoder = TextEncoder(EncoderConfig(model=model, device=device), cache=cache)
        items = embed_in_order(encoder, list(texts.item.index), texts.item)
        users = embed_in_order(encoder, list(texts.user.index), texts.user, queries=True)
    finally:
        cache.close()
    return int(items.has_text.sum() + users.has_text.sum())


def embed_snapshot_texts_ahead(snapshot: str, model: str, device: str, cache_dir: str) -> int:
    """:func:`embed_texts_ahead` on a gated snapshot folder (picklable arguments, for a child process)."""
    from quality.gate import load_snapshot

    return embed_texts_ahead(load_snapshot(snapshot), model, device, Path(cache_dir))


def embed_graph_nodes(dataset: Dataset, export_path: Path, mentions_path: Path | None, model: str,
                      device: str, path: Path, cache_dir: Path) -> None:
    """Embed every node's text in the export's vocabulary order; write one ``.npz``."""
    from text.cache import TextCache
    from text.encoders import EncoderConfig, TextEncoder
    from text.features import embed_nodes, node_texts

    export = load_export(export_path)
    mentions = pd.read_parquet(mentions_path) if mentions_path else None
    cache = TextCache(cache_dir / "text")
    try:
        encoder = TextEncoder(EncoderConfig(model=model, device=device), cache=cache)
        tables = embed_nodes(encoder, node_texts(dataset, mentions), export["vocab"])
    finally:
        cache.close()
    arrays = {}
    for node_type, table in tables.items():
        arrays[f"x_{node_type}"] = table.vectors
        arrays[f"has_text_{node_type}"] = table.has_text
    arrays["model_id"] = np.array(encoder.model_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load_features(path: Path):
    """``NodeFeatures`` for the model from an ``.npz`` written by :func:`embed_graph_nodes`."""
    import torch

    from gnn.fusion import NodeFeatures

    z = np.load(path)

    def t(name):
        return torch.from_numpy(z[name]) if name in z.files and len(z[name]) else None

    return NodeFeatures(
        x_item=torch.from_numpy(z["x_item"]),
        x_user=t("x_user"),
        has_text_user=t("has_text_user"),
        x_entity=t("x_entity"),
        x_category=t("x_category"),
        has_text_item=t("has_text_item"),
    )


# --------------------------------------------------------------------------- model


def _train_config(params: dict):
    from gnn.training import TrainConfig

    return TrainConfig(device=params.get("device", "auto"), seed=params.get("seed", 42),
                       epochs=params.get("epochs", 60))


def evaluate_domain(export_path: Path, features_path: Path, params: dict, out_csv: Path) -> pd.DataFrame:
    """Run the protocol with the baselines and kgrec; write and return the metrics table."""
    from gnn.comparison import ComparisonConfig, compare_models
    from gnn.evaluation import SplitConfig

    export = load_export(export_path)
    features = load_features(features_path)
    cfg = ComparisonConfig(split=SplitConfig(seed=params.get("seed", 42)), kgrec=_train_config(params),
                           baselines=tuple(params.get("baselines", ())),
                           ablations=tuple(params.get("ablations", ())),
                           max_eval_users=params.get("eval_max_users"),
                           # the side-by-side epoch timing is for benchmarks/accuracy.py, not a refresh
                           timing_rounds=0)
    result = compare_models(export["data"], features, cfg)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    result.table.to_csv(out_csv, index=False)
    (out_csv.with_suffix(".json")).write_text(
        json.dumps({"split": result.split, "tuned": result.tuned, "timings": result.timings},
                   indent=2, default=str), encoding="utf-8")
    return result.table


def recommend_domain(dataset: Dataset, export_path: Path, features_path: Path, params: dict,
                     folder: Path, metrics_path: Path | None = None) -> int:
    """Fit on all interactions, recommend for every user, save recommendations + serving model.

    With ``metrics_path`` (the evaluation this run just made), the published model is the one
    that was measured: kgrec's settings are taken from the evaluation's record and only the
    refit on all interactions runs. Without it, the settings are tuned on a carve-out here.
    """
    from gnn.comparison import ComparisonConfig, _node_pos
    from gnn.evaluation import SplitConfig
    from gnn.recommender import fit_recommender, settings_from_evaluation

    export = load_export(export_path)
    features = load_features(features_path)
    cfg = ComparisonConfig(split=SplitConfig(seed=params.get("seed", 42)), kgrec=_train_config(params))
    settings = None
    if metrics_path is not None:
        record = json.loads(metrics_path.with_suffix(".json").read_text(encoding="utf-8"))
        settings = settings_from_evaluation(record["tuned"]) | {"source": f"evaluation {metrics_path.name}"}
    rec = fit_recommender(export["data"], features, cfg, settings=settings)
    frame = rec.recommend(k=int(params.get("k", 20)))
    vocab = export["vocab"]
    users = np.asarray(vocab["user"], dtype=object)
    items = np.asarray(vocab["item"], dtype=object)
    out = pd.DataFrame({
        "user_id": users[frame["user_idx"].to_numpy()],
        "rank": frame["rank"].to_numpy(),
        "item_id": items[frame["item_idx"].to_numpy()],
        "score": frame["score"].to_numpy(),
        "reason": frame["reason"].astype(str).to_numpy(),
    })
    folder.mkdir(parents=True, exist_ok=True)
    out.to_parquet(folder / "recommendations.parquet", index=False)
    people = rec.suggest_people(k=int(params.get("k", 20)))
    if people is not None:
        pd.DataFrame({
            "user_id": users[people["user_idx"].to_numpy()],
            "rank": people["rank"].to_numpy(),
            "suggested_user_id": users[people["other_idx"].to_numpy()],
            "score": people["score"].to_numpy(),
            "reason": people["reason"].astype(str).to_numpy(),
        }).to_parquet(folder / "people.parquet", index=False)
    rec.save(folder / "model", vocab, features, _node_pos(export["data"], "item"))
    return len(out)


# --------------------------------------------------------------------------- explain

def file_sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def explain_domain(target: str, out: Path, domain: str, recs_folder: Path, paths: int,
                   history: int | None, path: Path) -> int:
    """Explain every published list from the graph once, so that the API answers a list with
    its explanations from memory instead of reading the graph on each request.

    Writes ``path`` (rows of :data:`kg.explain.EXPLANATION_COLUMNS`) with its settings and the
    SHA-256 of the ``recommendations.parquet`` it explains in the schema metadata; returns the
    number of paths.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kg.explain import EXPLANATIONS_META, explain_lists

    recs_file = Path(recs_folder) / "recommendations.parquet"
    recs = pd.read_parquet(recs_file, columns=["user_id", "rank", "item_id"])
    recs = recs.sort_values(["user_id", "rank"], kind="stable")
    lists = {str(u): g.astype(str).tolist() for u, g in recs.groupby("user_id", sort=False)["item_id"]}
    store = open_store(target, out, domain)
    try:
        table = explain_lists(store, domain, lists, k=paths, history=history)
    finally:
        store.close()
    meta = {"paths": paths, "history": history, "recommendations_sha256": file_sha256(recs_file)}
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}),
                                           EXPLANATIONS_META: json.dumps(meta).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(arrow, tmp)
    os.replace(tmp, path)
    return len(table)


# --------------------------------------------------------------------------- publish


def publish_domain(dataset: Dataset, target: str, out: Path, run_id: str, recs_folder: Path,
                   metrics_path: Path | None, params: dict, explanations: Path | None = None):
    """Check the contract, publish atomically, mirror RECOMMENDED (and SUGGESTED: people to follow)
    edges; returns (publication, sample).

    ``explanations`` (from :func:`explain_domain`) is published beside the lists; it must explain
    exactly these lists.
    """
    from flows.publishing import (
        PublicationError,
        check_people,
        check_recommendations,
        publish,
    )
    from kg.explain import read_explanations_meta
    from kg.store import PEOPLE_COLUMNS

    if explanations is not None:
        made_for = read_explanations_meta(explanations).get("recommendations_sha256")
        if made_for != file_sha256(recs_folder / "recommendations.parquet"):
            raise PublicationError(f"{explanations} explains other lists than "
                                   f"{recs_folder / 'recommendations.parquet'}; nothing was published")
    recs = pd.read_parquet(recs_folder / "recommendations.parquet")
    recs.insert(0, "domain", dataset.domain)
    recs["run_id"] = run_id
    k = int(params.get("k", 20))
    check_recommendations(recs, dataset.domain, run_id, dataset.users["user_id"], k,
                          seen=dataset.interactions[["user_id", "item_id"]])
    people = None
    if (recs_folder / "people.parquet").exists():
        people = pd.read_parquet(recs_folder / "people.parquet")
        people.insert(0, "domain", dataset.domain)
        people["run_id"] = run_id
        check_people(people, dataset.domain, run_id, dataset.users["user_id"], k,
                     dataset.user_links[["src_user_id", "dst_user_id"]])
    store = open_store(target, out, dataset.domain)
    try:
        store.write_recommendations(dataset.domain, run_id, recs)
        # an empty frame still clears the suggestions of an earlier run
        store.write_people(dataset.domain, run_id, people if people is not None else
                           pd.DataFrame(columns=list(PEOPLE_COLUMNS)))
    finally:
        store.close()
    extra: dict[str, Any] = {"params.json": params}
    if metrics_path is not None and metrics_path.exists():
        extra["metrics.csv"] = pd.read_csv(metrics_path)
    if (recs_folder / "model").exists():
        extra["model"] = recs_folder / "model"
    if explanations is not None:
        extra["explanations.parquet"] = explanations
    if people is not None:
        extra["people.parquet"] = people
    # What the API needs beside the lists: item metadata, histories and links (for new users
    # who bring a history or friends), so a publication is self-contained.
    extra["items.parquet"] = dataset.items
    extra["interactions.parquet"] = dataset.interactions[["user_id", "item_id", "timestamp", "weight"]]
    extra["user_links.parquet"] = dataset.user_links[["src_user_id", "dst_user_id", "kind"]]
    pub = publish(out, dataset.domain, run_id, recs, extra_files=extra,
                  run_info={"dataset": dataset.name, "content_hash": dataset.content_hash,
                            "graph": target})
    titles = dataset.items.set_index("item_id")["title"]
    sample = recs[recs["rank"] <= 3].head(15).copy()
    sample["title"] = titles.reindex(sample["item_id"]).to_numpy()
    rows = sample[["user_id", "rank", "item_id", "title", "score", "reason"]].round({"score": 4})
    return pub, rows.to_dict("records")
