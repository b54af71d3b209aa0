"""The ``refresh-domain`` flow: validate → extract → build graph → embed → evaluate → train → explain → publish.

Each task loads a reference, calls one library function, saves what it made under the output
folder and returns a small reference. Expensive tasks are cached on the content hash of what
they read plus their settings, so re-running on unchanged inputs skips them. Only the I/O
tasks (the graph store, an LLM endpoint) retry.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import get_run_context
from pydantic import BaseModel, ConfigDict, Field

from flows import progress
from flows.refs import ArtifactRef, DatasetRef, GraphRef, digest


class RefreshParams(BaseModel):
    """What one refresh does. Every field is editable when triggering a run from the Prefect UI."""

    model_config = ConfigDict(extra="forbid")

    dataset_dir: str
    """Dataset folder in kgrec's input contract (dataset.yaml, users, items, interactions)."""
    graph: str = "embedded"
    """``embedded`` (a networkx graph under the output folder) or a Bolt URI such as
    ``bolt://127.0.0.1:7687``. Credentials never travel as parameters: they come from the
    Prefect Secret block ``kgrec-neo4j-password`` or ``KGREC_NEO4J_USER``/``KGREC_NEO4J_PASSWORD``."""
    out: str = "out"
    """Output root: recommendations, Data Docs, metrics, caches and the embedded graph."""
    k: int = Field(20, ge=1, le=500)
    """Recommendations published per user."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to embed and train; ``auto`` uses CUDA when present."""
    encoder_model: str = "default"
    """``default`` (all-MiniLM-L6-v2 shipped in a PyPI package) or a local model folder."""
    extractor: Literal["ner", "llm-local", "llm-http", "none"] = "ner"
    """Entity extraction backend; ``ner`` (spaCy + keyphrases) is the offline default."""
    epochs: int = Field(60, ge=1, le=1000)
    """Upper bound on training epochs (early stopping usually ends sooner)."""
    evaluate: bool = True
    """Run the evaluation protocol against the baselines before publishing."""
    baselines: tuple[str, ...] = ("popular", "itemknn", "ease", "lightgcn", "text")
    """Baselines evaluated next to kgrec (same split)."""
    ablations: tuple[str, ...] = ()
    """kgrec ablations to evaluate too (slower): no_residual, no_text, no_entities, no_gnn, no_id_dropout."""
    eval_max_users: int | None = Field(10_000, ge=1)
    """Evaluate on a seeded uniform sample of at most this many test users (each still ranked
    against the whole catalogue); None evaluates every test user. Keeps the evaluation of a
    large dataset affordable; the bundled and shared datasets have fewer test users."""
    batch_items: int = Field(2000, ge=10)
    """Items per extraction batch; batches fan out over the task runner (Dask with --task-runner dask)."""
    seed: int = 42
    """Seed for the split and for training."""
    explain_paths: int = Field(4, ge=0, le=10)
    """Explanation paths published per recommended item, read from the graph once per refresh
    so the API serves a list's explanations from memory; 0 publishes none (the API then reads
    the graph on each request)."""
    explain_history: int | None = Field(200, ge=1)
    """Published explanations go through the items of each user's this many latest interactions
    (None: the whole history); the API uses them when its ``explain_history`` is the same."""
    cache_dir: str | None = None
    """Where snapshots, embeddings, extractions and models are cached (default ``<out>/cache``);
    several output roots may share one."""


def _out(params: RefreshParams, domain: str) -> Path:
    return Path(params.out) / domain


def _cache_dir(params: RefreshParams) -> Path:
    return Path(params.cache_dir) if params.cache_dir else Path(params.out) / "cache"


def _key(*parts) -> str:
    return digest(*parts)


def _where(params: RefreshParams) -> str:
    # Cached refs point at files: a key must never be shared by two cache/output locations.
    return f"{Path(params.out).resolve()}|{_cache_dir(params).resolve()}"


def _fresh(task_, path: Path):
    # A cache hit returns a ref to a file. If that file is gone (an output folder deleted by
    # hand), the task must run again and overwrite its cache entry instead of handing out a
    # dead path; the key alone cannot know, since it is computed before the task writes.
    return task_ if path.exists() else task_.with_options(refresh_cache=True)


def _extract_path(ref: DatasetRef, params: RefreshParams, start: int, stop: int) -> Path:
    return (_cache_dir(params) / ref.domain / "mentions"
            / f"{ref.content_hash[:16]}-{params.extractor}-{start}-{stop}.parquet")


def _link_path(ref: DatasetRef, params: RefreshParams, batches: list[ArtifactRef]) -> Path:
    return _cache_dir(params) / ref.domain / "mentions" / f"linked-{_key(*[b.key for b in batches])[:16]}.parquet"


def _features_path(ref: DatasetRef, graph: GraphRef, params: RefreshParams) -> Path:
    return _cache_dir(params) / ref.domain / f"features-{_key(graph.build, params.encoder_model)[:16]}.npz"


def _metrics_path(graph: GraphRef, features: ArtifactRef, params: RefreshParams) -> Path:
    return Path(params.out) / graph.domain / "metrics" / f"metrics-{_key(graph.build, features.key)[:16]}.csv"


def _model_path(graph: GraphRef, features: ArtifactRef, params: RefreshParams,
                metrics: ArtifactRef | None = None) -> Path:
    tuned_by = metrics.key if metrics is not None else "own-tuning"
    return _cache_dir(params) / graph.domain / f"model-{_key(graph.build, features.key, params.k, tuned_by)[:16]}"


def _explain_path(graph: GraphRef, recs: ArtifactRef, params: RefreshParams) -> Path:
    from flows.steps import file_sha256

    # The lists' own bytes, not just their folder's key: a folder rebuilt under the same key
    # (its files deleted by hand) must not be published with the old lists' explanations.
    lists = file_sha256(Path(recs.path) / "recommendations.parquet")
    key = _key(graph.target, graph.build, lists, params.explain_paths, params.explain_history)
    return _cache_dir(params) / graph.domain / "explanations" / f"explanations-{key[:16]}.parquet"


# --------------------------------------------------------------------------- tasks


@task(name="validate-dataset", cache_policy=NO_CACHE)
def validate_dataset(params: RefreshParams) -> DatasetRef:
    """Run the quality gate (always: it is cheap and its report belongs to this run)."""
    from quality.gate import content_hash, read_manifest, save_snapshot, validate_folder
    from quality.errors import DataQualityError

    folder = Path(params.dataset_dir)
    manifest = read_manifest(folder)
    chash = content_hash(folder)
    docs = _out(params, manifest.domain) / "quality" / "data_docs"
    dataset, report, failures = validate_folder(folder, docs_dir=docs)
    md = f"### Quality gate: {'passed' if not failures else 'REFUSED'}\n\n```\n{report.summary()}\n```\n"
    if failures:
        md += "\n```\n" + str(DataQualityError(str(folder), failures)) + "\n```\n"
    create_markdown_artifact(md, key=f"gate-{manifest.domain}", description="Great Expectations gate")
    if report.docs_path:
        create_link_artifact(Path(report.docs_path).resolve().as_uri(), link_text="Data Docs",
                             key=f"data-docs-{manifest.domain}")
    if failures:
        raise DataQualityError(str(folder), failures, report.docs_path)
    snap = _cache_dir(params) / manifest.domain / f"dataset-{chash[:16]}"
    if not (snap / "dataset.json").exists():
        save_snapshot(dataset, snap)
    get_run_logger().info(report.summary())
    return DatasetRef(path=str(snap), content_hash=chash, domain=manifest.domain,
                      docs=report.docs_path or "")


def _extract_key(ctx, inputs) -> str:
    p: RefreshParams = inputs["params"]
    path = _extract_path(inputs["ref"], p, inputs["start"], inputs["stop"])
    return _key("extract", _where(p), str(path))


@task(name="extract-entities-batch", cache_key_fn=_extract_key, persist_result=True)
def extract_batch(ref: DatasetRef, params: RefreshParams, start: int, stop: int) -> ArtifactRef:
    """Entity mentions for items ``start:stop`` (one batch of the fan-out)."""
    from flows.steps import extract_item_batch

    path = _extract_path(ref, params, start, stop)
    n = extract_item_batch(ref.load(), params.extractor, start, stop, path, _cache_dir(params))
    return ArtifactRef(path=str(path), key=_key(path.name), rows=n)


def _link_key(ctx, inputs) -> str:
    path = _link_path(inputs["ref"], inputs["params"], inputs["batches"])
    return _key("link", _where(inputs["params"]), str(path))


@task(name="link-entities", cache_key_fn=_link_key, persist_result=True)
def link_batches(ref: DatasetRef, params: RefreshParams, batches: list[ArtifactRef]) -> ArtifactRef:
    """Merge batch mentions and link surface forms into entities."""
    from flows.steps import link_mentions

    path = _link_path(ref, params, batches)
    n = link_mentions([Path(b.path) for b in batches], path, _cache_dir(params))
    return ArtifactRef(path=str(path), key=_key("linked", path.name), rows=n)


@task(name="build-graph", retries=2, retry_delay_seconds=[5, 15], cache_policy=NO_CACHE)
def build_graph(ref: DatasetRef, params: RefreshParams, mentions: ArtifactRef | None) -> GraphRef:
    """Write the domain's graph (idempotent: a finished build with the same stamp is skipped)."""
    from flows.steps import build_domain_graph

    counts, stamp, export_path = build_domain_graph(
        ref.load(), params.graph, Path(params.out), Path(mentions.path) if mentions else None,
        _cache_dir(params))
    rows = [{"kind": "node", "label": k, "count": v} for k, v in counts.nodes.items()]
    rows += [{"kind": "relationship", "label": k, "count": v} for k, v in counts.edges.items()]
    create_table_artifact(rows, key=f"graph-{ref.domain}", description=f"graph counts ({params.graph})")
    return GraphRef(target=params.graph, domain=ref.domain, build=stamp, export=str(export_path))


def _texts_ahead_key(ctx, inputs) -> str:
    p: RefreshParams = inputs["params"]
    return _key("embed-texts-ahead", _where(p), inputs["ref"].content_hash, p.encoder_model, p.device)


@task(name="embed-item-texts", cache_key_fn=_texts_ahead_key, persist_result=True)
def embed_texts_ahead(ref: DatasetRef, params: RefreshParams) -> int:
    """Item and user texts into the text cache, beside the entity extraction (see the step).

    The encoding runs in a spawned child process: in this one, the extraction threads hold
    the GIL most of the time and the encoder, which needs it between operators, would crawl.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from flows.steps import embed_snapshot_texts_ahead as ahead

    import pyarrow.parquet as pq

    args = (ref.path, params.encoder_model, params.device, str(_cache_dir(params)))
    n_items = pq.read_metadata(Path(ref.path) / "items.parquet").num_rows
    # A child costs ~10 s to start (torch, the model): worth it only beside a long extraction.
    # A Dask worker is daemonic (may not have children) and has a GIL of its own anyway.
    if params.extractor == "none" or n_items < 2_000 or multiprocessing.current_process().daemon:
        return ahead(*args)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(ahead, *args).result()


def _embed_key(ctx, inputs) -> str:
    p: RefreshParams = inputs["params"]
    path = _features_path(inputs["ref"], inputs["graph"], p)
    return _key("embed", _where(p), str(path))


@task(name="embed-nodes", cache_key_fn=_embed_key, persist_result=True)
def embed(ref: DatasetRef, graph: GraphRef, params: RefreshParams, mentions: ArtifactRef | None) -> ArtifactRef:
    """Text embeddings of every node, aligned with the exported graph's vocabularies."""
    from flows.steps import embed_graph_nodes

    path = _features_path(ref, graph, params)
    embed_graph_nodes(ref.load(), Path(graph.export), Path(mentions.path) if mentions else None,
                      params.encoder_model, params.device, path, _cache_dir(params))
    return ArtifactRef(path=str(path), key=_key("features", path.name))


def _model_key(ctx, inputs) -> str:
    p: RefreshParams = inputs["params"]
    if ctx.task.name == "evaluate-models":
        path = _metrics_path(inputs["graph"], inputs["features"], p)
    else:
        path = _model_path(inputs["graph"], inputs["features"], p, inputs.get("metrics"))
    extra = (p.eval_max_users,) if ctx.task.name == "evaluate-models" else ()
    return _key(ctx.task.name, _where(p), str(path), inputs["graph"].build, inputs["features"].key,
                p.device, p.epochs, p.baselines, p.ablations, p.seed, p.k, *extra)


@task(name="evaluate-models", cache_key_fn=_model_key, persist_result=True)
def evaluate(graph: GraphRef, features: ArtifactRef, params: RefreshParams) -> ArtifactRef:
    """The evaluation protocol: kgrec against the baselines, per slice, on one split."""
    from flows.steps import evaluate_domain, file_sha256

    path = _metrics_path(graph, features, params)
    table = evaluate_domain(Path(graph.export), Path(features.path), params.model_dump(), path)
    create_table_artifact(table.round(4).to_dict("records"), key=f"metrics-{graph.domain}",
                          description="kgrec vs baselines, by slice (full ranking)")
    # The key follows the record's content: the model refitted from it must change with it.
    record = file_sha256(path.with_suffix(".json"))
    return ArtifactRef(path=str(path), key=_key("metrics", path.name, record), rows=len(table))


@task(name="train-and-recommend", cache_key_fn=_model_key, persist_result=True)
def train_and_recommend(graph: GraphRef, features: ArtifactRef, params: RefreshParams,
                        ref: DatasetRef, metrics: ArtifactRef | None = None) -> ArtifactRef:
    """Train on all interactions and rank the catalogue for every user, cold ones included.

    After an evaluation, the model is refitted with the settings that were evaluated.
    """
    from flows.steps import recommend_domain

    folder = _model_path(graph, features, params, metrics)
    n = recommend_domain(ref.load(), Path(graph.export), Path(features.path), params.model_dump(), folder,
                         Path(metrics.path) if metrics is not None else None)
    return ArtifactRef(path=str(folder), key=_key("recs", folder.name), rows=n)


def _explain_key(ctx, inputs) -> str:
    return _key("explain", _where(inputs["params"]),
                str(_explain_path(inputs["graph"], inputs["recs"], inputs["params"])))


@task(name="explain-recommendations", cache_key_fn=_explain_key, persist_result=True,
      retries=2, retry_delay_seconds=[5, 15])
def explain_recommendations(graph: GraphRef, recs: ArtifactRef, params: RefreshParams) -> ArtifactRef:
    """The graph's explanation paths of every recommended item, published with the lists."""
    from flows.steps import explain_domain

    path = _explain_path(graph, recs, params)
    n = explain_domain(graph.target, Path(params.out), graph.domain, Path(recs.path),
                       params.explain_paths, params.explain_history, path)
    return ArtifactRef(path=str(path), key=_key("explanations", path.name), rows=n)


@task(name="publish", retries=2, retry_delay_seconds=[5, 15], cache_policy=NO_CACHE)
def publish(ref: DatasetRef, graph: GraphRef, recs: ArtifactRef, metrics: ArtifactRef | None,
            params: RefreshParams, run_id: str, explanations: ArtifactRef | None = None) -> str:
    """Write ``<out>/<domain>/<run_id>/``, mirror RECOMMENDED edges, then switch ``latest``."""
    from flows.steps import publish_domain

    pub, sample = publish_domain(ref.load(), params.graph, Path(params.out), run_id, Path(recs.path),
                                 Path(metrics.path) if metrics else None, params.model_dump(),
                                 Path(explanations.path) if explanations else None)
    create_table_artifact(sample, key=f"sample-recommendations-{ref.domain}",
                          description="sample recommendations with their reasons")
    return str(pub.path)


# --------------------------------------------------------------------------- the flow


def _run_id() -> str:
    from flows.publishing import new_run_id

    # The run id carries the flow run's start time, so folders sort like the Prefect UI's runs.
    try:
        fr = get_run_context().flow_run
    except Exception:  # outside a run context
        return new_run_id()
    return new_run_id(fr.start_time or fr.expected_start_time)


def _prepare(params: RefreshParams) -> tuple[DatasetRef, ArtifactRef | None, GraphRef, ArtifactRef]:
    """Gate, entities (fanned out in batches over the task runner), graph and embeddings."""
    with progress.step("quality gate"):
        ref = validate_dataset(params)
    # Needs only the gated data: runs on the task runner while entities are extracted.
    texts_ahead = embed_texts_ahead.submit(ref, params)
    mentions = None
    if params.extractor != "none":
        n_items = ref.load().items.shape[0]
        bounds = [(s, min(s + params.batch_items, n_items)) for s in range(0, n_items, params.batch_items)]
        with progress.step(f"entities ({params.extractor})", total=len(bounds)):
            futures = [_fresh(extract_batch, _extract_path(ref, params, s, e)).submit(ref, params, s, e)
                       for s, e in bounds]
            batches = []
            for f in futures:
                batches.append(f.result())
                progress.advance(f"entities ({params.extractor})")
        with progress.step("entity linking"):
            mentions = _fresh(link_batches, _link_path(ref, params, batches))(ref, params, batches)
    with progress.step("knowledge graph"):
        graph = build_graph(ref, params, mentions)
    with progress.step("text embeddings"):
        texts_ahead.result()
        features = _fresh(embed, _features_path(ref, graph, params))(ref, graph, params, mentions)
    return ref, mentions, graph, features


@flow(name="evaluate-domain", log_prints=True)
def evaluate_domain(params: RefreshParams) -> str:
    """The evaluation protocol alone (no publication); returns the metrics CSV path."""
    _, _, graph, features = _prepare(params)
    with progress.step("evaluation vs baselines"):
        return _fresh(evaluate, _metrics_path(graph, features, params))(graph, features, params).path


@flow(name="refresh-domain", log_prints=True)
def refresh_domain(params: RefreshParams) -> dict:
    """Refresh one domain end to end and publish its recommendations.

    A failure in any step fails the run and leaves the previous publication as ``latest``.
    """
    ref, mentions, graph, features = _prepare(params)
    metrics = None
    if params.evaluate:
        with progress.step("evaluation vs baselines"):
            metrics = _fresh(evaluate, _metrics_path(graph, features, params))(graph, features, params)
    with progress.step("training + scoring"):
        recs = _fresh(train_and_recommend, _model_path(graph, features, params, metrics))(
            graph, features, params, ref, metrics)
    explanations = None
    if params.explain_paths:
        with progress.step("explanations"):
            explanations = _fresh(explain_recommendations, _explain_path(graph, recs, params))(graph, recs, params)
    run_id = _run_id()
    with progress.step("publication"):
        path = publish(ref, graph, recs, metrics, params, run_id, explanations)
    summary = {"domain": ref.domain, "run_id": run_id, "publication": path,
               "data_docs": ref.docs, "metrics": metrics.path if metrics else None,
               "graph": graph.target if graph.target != "embedded"
               else str(Path(params.out) / ref.domain / "graph" / "graph.pkl")}
    print(json.dumps(summary, indent=2))
    return summary


def run_refresh(params: RefreshParams, task_runner: str = "thread", dask_address: str | None = None) -> dict:
    """Run ``refresh-domain`` with the chosen task runner (``thread`` or ``dask``)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        runner = DaskTaskRunner(address=dask_address) if dask_address else DaskTaskRunner(
            cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "processes": True})
        return refresh_domain.with_options(task_runner=runner)(params)
    return refresh_domain(params)
