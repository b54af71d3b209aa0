"""The ``kgrec`` command line: thin wrappers that call library functions and print results."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer

# Offline, quiet, and no OpenMP spin-waiting on small shared machines (see DEPS.md).
for _k, _v in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "OMP_WAIT_POLICY": "PASSIVE",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
}.items():
    os.environ.setdefault(_k, _v)

app = typer.Typer(
    help=(
        "kgrec: knowledge-graph recommendations with cold start.\n\n"
        "Typical path: `kgrec import` a public dataset (or `kgrec generate` a synthetic one), "
        "`kgrec validate` it, then `kgrec refresh` to build the graph, train and publish."
    ),
    no_args_is_help=True,
    add_completion=False,
)
neo4j_app = typer.Typer(help="Run the project's own Neo4j server (no Docker needed).", no_args_is_help=True)
app.add_typer(neo4j_app, name="neo4j")


@contextmanager
def _progress_bars(enabled: bool | None) -> Iterator[object | None]:
    """Progress bars of the refresh steps on stderr (default: when stderr is a terminal).

    Prefect's console log lines are printed above the bars through the same console, so the
    two do not overwrite each other.
    """
    import logging
    import sys

    from flows import progress

    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield None
        return
    from prefect.logging.handlers import PrefectConsoleHandler

    reporter = progress.RichReporter()
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    consoles = [h.console for h in handlers]
    for h in handlers:
        h.console = reporter.console
    previous = progress.install(reporter)
    try:
        with reporter:
            yield reporter
    finally:
        progress.install(previous)
        for h, c in zip(handlers, consoles):
            h.console = c


_PROGRESS_HELP = "Progress bars of the steps on stderr (default: only when stderr is a terminal)."


@app.command("import")
def import_cmd(
    fmt: str = typer.Argument(..., help="Source format: movielens, lastfm, amazon, yfcc."),
    src: Path = typer.Argument(..., help="Folder (or file) of the public dataset as published."),
    dest: Path = typer.Argument(..., help="Dataset folder to write in kgrec's input contract."),
) -> None:
    """Convert a public dataset into a kgrec dataset folder and print what was cleaned."""
    from quality.importers import import_dataset

    stats = import_dataset(fmt, src, dest)
    typer.echo(stats.summary())


@app.command()
def validate(
    folder: Path = typer.Argument(..., help="Dataset folder (dataset.yaml + users/items/interactions)."),
    out: Path = typer.Option(Path("out"), help="Output folder; Data Docs go to OUT/<domain>/quality/."),
) -> None:
    """Run the Great Expectations quality gate on a dataset folder and write Data Docs."""
    from quality.errors import DataQualityError
    from quality.gate import read_manifest, validate_folder

    try:
        manifest = read_manifest(folder)
    except DataQualityError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(1) from e
    docs = out / manifest.domain / "quality" / "data_docs"
    _, report, failures = validate_folder(folder, docs_dir=docs)
    typer.echo(report.summary())
    if failures:
        typer.echo(str(DataQualityError(str(folder), failures, report.docs_path)), err=True)
        raise typer.Exit(1)


@app.command()
def generate(
    domain: str = typer.Argument(..., help="ecommerce, content, social or travel."),
    dest: Path = typer.Argument(..., help="Dataset folder to write."),
    users: int = typer.Option(300, help="Number of users."),
    items: int = typer.Option(400, help="Number of items."),
    interactions: int = typer.Option(6000, help="Approximate number of interactions."),
    seed: int = typer.Option(42, help="Random seed: the same seed writes the same folder."),
) -> None:
    """Write a realistic synthetic dataset (taste communities, entities, cold users)."""
    from quality.synth import SynthConfig, generate_dataset

    cfg = SynthConfig(domain=domain, n_users=users, n_items=items, n_interactions=interactions, seed=seed)
    path = generate_dataset(cfg, dest)
    typer.echo(f"wrote {domain} dataset to {path}")


@app.command()
def refresh(
    dataset_dir: Path = typer.Argument(..., help="Dataset folder in kgrec's input contract."),
    graph: str = typer.Option("embedded", help="'embedded' (networkx under --out) or a bolt:// URI; "
                              "credentials from KGREC_NEO4J_USER/KGREC_NEO4J_PASSWORD or a Prefect Secret."),
    out: Path = typer.Option(Path("out"), help="Output root."),
    k: int = typer.Option(20, help="Recommendations per user."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    extractor: str = typer.Option("ner", help="Entity extraction: ner (offline default), llm-local, llm-http, none."),
    evaluate: bool = typer.Option(True, help="Evaluate against the baselines before publishing."),
    eval_max_users: int = typer.Option(10_000, help="Evaluate on a seeded sample of at most this many "
                                       "test users, each ranked against the whole catalogue (0: all)."),
    epochs: int = typer.Option(60, help="Upper bound on training epochs."),
    explain_paths: int = typer.Option(4, help="Explanation paths published per recommended item "
                                      "(0: none; the API then reads the graph on every request)."),
    task_runner: str = typer.Option("thread", help="thread (default) or dask (local cluster, or --dask-address)."),
    dask_address: Optional[str] = typer.Option(None, help="Address of an existing Dask scheduler."),
    cache_dir: Optional[Path] = typer.Option(None, help="Text/model cache (default: OUT/cache); share it "
                                             "between output folders to skip recomputing."),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help=_PROGRESS_HELP),
) -> None:
    """Refresh one domain: gate, graph, entities, embeddings, model, evaluation, explanations, publication."""
    from flows.refresh import RefreshParams, run_refresh

    params = RefreshParams(dataset_dir=str(dataset_dir), graph=graph, out=str(out), k=k, device=device,
                           extractor=extractor, evaluate=evaluate, epochs=epochs,
                           eval_max_users=eval_max_users or None, explain_paths=explain_paths,
                           cache_dir=str(cache_dir) if cache_dir else None)
    with _progress_bars(progress):
        summary = run_refresh(params, task_runner=task_runner, dask_address=dask_address)
    _print_summary([summary])


@app.command("evaluate")
def evaluate_cmd(
    dataset_dir: Path = typer.Argument(..., help="Dataset folder in kgrec's input contract."),
    out: Path = typer.Option(Path("out"), help="Output root (metrics go to OUT/<domain>/metrics/)."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    ablations: bool = typer.Option(False, help="Also evaluate kgrec without text/entities/GNN/id dropout."),
    eval_max_users: int = typer.Option(0, help="Evaluate a seeded sample of at most this many test users, "
                                       "each ranked against the whole catalogue (0: all of them)."),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help=_PROGRESS_HELP),
) -> None:
    """Run the evaluation protocol (kgrec vs popularity, ItemKNN, EASE, LightGCN, text) and print it."""
    import pandas as pd

    from flows.refresh import RefreshParams, evaluate_domain

    params = RefreshParams(dataset_dir=str(dataset_dir), out=str(out), device=device,
                           eval_max_users=eval_max_users or None,
                           ablations=("no_residual", "no_text", "no_entities", "no_gnn", "no_id_dropout") if ablations else ())
    with _progress_bars(progress):
        path = evaluate_domain(params)
    typer.echo(pd.read_csv(path).round(4).to_string(index=False))
    typer.echo(f"\nsaved to {path}")


@app.command()
def demo(
    out: Path = typer.Option(Path("out"), help="Output root."),
    domains: str = typer.Option("ecommerce,content,social,travel", help="Comma-separated bundled domains."),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help=_PROGRESS_HELP),
) -> None:
    """Refresh the four bundled sample domains on the embedded graph and local Prefect."""
    from flows.refresh import RefreshParams, run_refresh
    from quality.synth import sample_path

    summaries = []
    with _progress_bars(progress) as bars:
        for domain in [d.strip() for d in domains.split(",") if d.strip()]:
            heading = f"==> refreshing {domain} ({sample_path(domain)})"
            if bars is not None:
                bars.title(heading)
            else:
                typer.echo(heading)
            params = RefreshParams(dataset_dir=str(sample_path(domain)), out=str(out))
            summaries.append(run_refresh(params))
    _print_summary(summaries)


def _print_summary(summaries: list[dict]) -> None:
    typer.echo("")
    for s in summaries:
        typer.echo(f"[{s['domain']}] run {s['run_id']}")
        typer.echo(f"  recommendations: {s['publication']}/recommendations.parquet "
                   f"(latest: {Path(s['publication']).parent / 'latest'})")
        if (Path(s["publication"]) / "people.parquet").exists():
            typer.echo(f"  people to follow: {s['publication']}/people.parquet")
        typer.echo(f"  data docs:       {s['data_docs']}")
        if s.get("metrics"):
            typer.echo(f"  metrics:         {s['metrics']}")
        typer.echo(f"  graph:           {s['graph']}")


@app.command()
def deploy(
    data_root: Optional[Path] = typer.Option(None, help="Folder with one dataset folder per domain "
                                             "(default: the bundled samples)."),
    out: Path = typer.Option(Path("out"), help="Output root the scheduled runs publish to."),
    graph: str = typer.Option("embedded", help="'embedded' or a bolt:// URI."),
    serve: bool = typer.Option(True, help="Keep running and execute the deployments' runs here "
                               "(--no-serve only registers them; then start a worker)."),
    paused: bool = typer.Option(False, help="Register the schedules paused."),
) -> None:
    """Register one scheduled `refresh-domain` deployment per domain on the Prefect server."""
    from flows.deploy import build_deployments, register, serve as serve_deployments

    deps = build_deployments(data_root, str(out), graph, paused=paused)
    if serve:
        serve_deployments(deps)
    else:
        for d, dep_id in zip(deps, register(deps)):
            typer.echo(f"registered refresh-domain/{d.name} ({dep_id}) schedule {d.schedules[0].schedule.cron}")


@neo4j_app.command("start")
def neo4j_start(home: Path = typer.Option(Path(".neo4j"), help="Server home (jars, config, data).")) -> None:
    """Fetch the Neo4j jars from Maven Central once, then start the server and wait for Bolt."""
    from kg.server import Neo4jServer, Neo4jServerError

    try:
        settings = Neo4jServer(home).start()
    except Neo4jServerError as e:
        typer.echo(f"could not start Neo4j: {e}", err=True)
        raise typer.Exit(1) from e
    typer.echo(f"Neo4j is up at {settings.uri} (user {settings.user}; password in {settings.password_file})")
    typer.echo(f"Neo4j Browser: {settings.browser_url}")


@neo4j_app.command("stop")
def neo4j_stop(home: Path = typer.Option(Path(".neo4j"), help="Server home.")) -> None:
    """Stop the server started by `kgrec neo4j start` (by its PID)."""
    from kg.server import Neo4jServer

    stopped = Neo4jServer(home).stop()
    typer.echo("stopped" if stopped else "not running")


@neo4j_app.command("status")
def neo4j_status(home: Path = typer.Option(Path(".neo4j"), help="Server home.")) -> None:
    """Say whether the server is running and where."""
    from kg.server import Neo4jServer

    typer.echo(Neo4jServer(home).status())


@app.command()
def serve(
    out: Path = typer.Option(Path("out"), help="Output root: every <out>/<domain>/latest publication is served."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    api_key: Optional[str] = typer.Option(None, envvar="KGREC_API_KEY", show_default=False,
                                          help="Require this X-API-Key on every route but health (or set KGREC_API_KEY)."),
    graph: str = typer.Option("embedded", help="Explanations from 'embedded' (the networkx graph under --out) "
                              "or a bolt:// URI (credentials from KGREC_NEO4J_*)."),
    cors_origin: list[str] = typer.Option([], help="Allow this browser origin (repeatable); CORS is off without it."),
    check_interval: float = typer.Option(2.0, help="Seconds between checks for a new publication."),
    threads: int = typer.Option(1, help="torch threads per process: 1 keeps concurrent requests from competing."),
    text_parallel: Optional[int] = typer.Option(None, min=1, show_default=False,
                                                help="Text encoder passes run at once, one core each; "
                                                     "waiting queries share a pass (default: half the "
                                                     "cores this process may use)."),
    explain_history: int = typer.Option(200, min=0, help="Explanations go through the items of the user's this many latest "
                                        "interactions (0: the whole history; slower for heavy users)."),
) -> None:
    """Run the HTTP API over the latest publications (docs at /docs); new runs are picked up live."""
    import torch
    import uvicorn
    from pydantic import SecretStr

    from serve.app import create_app
    from serve.config import ServeConfig

    torch.set_num_threads(threads)
    config = ServeConfig(out=out, graph=graph, api_key=SecretStr(api_key) if api_key else None,
                         cors_origins=tuple(cors_origin), check_interval_s=check_interval,
                         explain_history=explain_history or None,
                         **({"text_parallel": text_parallel} if text_parallel else {}))
    uvicorn.run(create_app(config), host=host, port=port, log_level="info", access_log=False)


if __name__ == "__main__":
    app()
