"""One real publication per bundled domain used here, built once per session with the refresh steps.

Text embeddings, entity mentions and the trained model are cached under pytest's cache folder
(keyed by content hash), so a second session only rebuilds the graph and publishes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))

from publication import build_publication  # noqa: E402


@pytest.fixture(scope="session")
def serve_cache(request) -> Path:
    return Path(request.config.cache.mkdir("kgrec-serve"))


@pytest.fixture(scope="session")
def served_out(tmp_path_factory, serve_cache) -> Path:
    """An output root with real ecommerce, travel and social publications (entity extraction off:
    it triples the build time and explanations still have co-interaction and category paths;
    social's are not needed, only its people to follow)."""
    from quality.synth import sample_path

    out = tmp_path_factory.mktemp("served") / "out"
    build_publication(sample_path("ecommerce"), out, serve_cache, extractor="none")
    build_publication(sample_path("travel"), out, serve_cache, extractor="none")
    build_publication(sample_path("social"), out, serve_cache, extractor="none", explain_paths=0)
    return out


@pytest.fixture(scope="session")
def app(served_out):
    from serve.app import create_app
    from serve.config import ServeConfig

    return create_app(ServeConfig(out=served_out, check_interval_s=0))


@pytest.fixture(scope="session")
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c
