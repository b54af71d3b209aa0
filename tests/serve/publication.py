"""Build a real publication of a dataset folder with the refresh steps (no Prefect server needed).

The same steps ``refresh-domain`` runs (gate, entities, graph, embeddings, training, publish),
called in order, so the serving tests and the latency benchmark read exactly what a refresh
writes, without paying for a Prefect API start.
"""

from __future__ import annotations

import os
from pathlib import Path

from flows.publishing import Publication, latest_publication, new_run_id
from flows import steps


def build_publication(dataset_dir: Path, out: Path, cache: Path, graph: str = "embedded",
                      epochs: int = 8, extractor: str = "ner", k: int = 20, explain_paths: int = 4,
                      explain_history: int | None = 200) -> Publication:
    """Refresh ``dataset_dir`` into ``out`` (``evaluate=False``) and return the new ``latest``
    (with ``explain_paths`` published paths per item, none when 0, as the flow's settings)."""
    from quality.gate import content_hash, open_dataset

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    dataset = open_dataset(dataset_dir)
    chash = content_hash(dataset_dir)[:16]
    work = cache / dataset.domain
    mentions = None
    if extractor != "none":
        batch = work / f"mentions-{chash}.parquet"
        if not batch.exists():
            steps.extract_item_batch(dataset, extractor, 0, len(dataset.items), batch, cache)
        mentions = work / f"linked-{chash}.parquet"
        if not mentions.exists():
            steps.link_mentions([batch], mentions, cache)
    _, build, export = steps.build_domain_graph(dataset, graph, out, mentions, cache)
    features = work / f"features-{build[:16]}.npz"
    if not features.exists():
        steps.embed_graph_nodes(dataset, export, mentions, "default", "cpu", features, cache)
    params = {"dataset_dir": str(dataset_dir), "graph": graph, "out": str(out), "k": k,
              "device": "cpu", "epochs": epochs, "evaluate": False, "seed": 42}
    model = work / f"model-{build[:16]}-{epochs}-{k}"
    if not (model / "recommendations.parquet").exists():
        steps.recommend_domain(dataset, export, features, params, model)
    explanations = None
    if explain_paths:
        # the graph was just rebuilt (its stamp may be the same): explain it every time
        explanations = work / f"explanations-{build[:16]}-{epochs}-{k}.parquet"
        steps.explain_domain(graph, out, dataset.domain, model, explain_paths, explain_history, explanations)
    steps.publish_domain(dataset, graph, out, new_run_id(), model, None, params, explanations)
    pub = latest_publication(out, dataset.domain)
    assert pub is not None
    return pub


if __name__ == "__main__":  # python tests/serve/publication.py DATASET_DIR OUT CACHE
    import sys

    p = build_publication(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
    print(p)
