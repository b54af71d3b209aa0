"""Shared pytest fixtures. Each block below is owned by the component named in its header."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


# ---- Neo4j server (owner: kg/server.py) -------------------------------------------------------
# A real Neo4j 5.26 Community server run by the project's own manager (no Docker). Tests marked
# `neo4j` use these. A server already running (e.g. `kgrec neo4j start` in CI) is reused; one this
# session started is stopped at the end unless another pytest session is still using it.


# KGREC_NEO4J_HOME (default: .neo4j at the repository root), KGREC_NEO4J_URI and
# KGREC_NEO4J_HTTP_URL choose the home and ports, so parallel runs can use separate servers.


@pytest.fixture(scope="session")
def neo4j_server(request: pytest.FixtureRequest) -> Iterator["Neo4jSettings"]:  # noqa: F821
    """Settings (URI, user, password as SecretStr, Browser URL) of the running test server."""
    from kg.server import Neo4jServer

    with Neo4jServer.from_env(default_home=request.config.rootpath / ".neo4j").lease() as settings:
        yield settings


@pytest.fixture(scope="session")
def neo4j_driver(neo4j_server) -> Iterator["neo4j.Driver"]:  # noqa: F821
    """One `neo4j.GraphDatabase.driver` for the session, authenticated with the generated password."""
    from neo4j import GraphDatabase

    with GraphDatabase.driver(neo4j_server.uri, auth=neo4j_server.auth()) as driver:
        yield driver


# ---- end Neo4j server -------------------------------------------------------------------------
