"""The project's own Neo4j server (kg/server.py) against the real thing: auth, Browser, restart."""

from __future__ import annotations

import logging
import os
import socket
import urllib.request
import uuid
from xml.etree import ElementTree
from urllib.parse import urlsplit

import pytest
from neo4j import GraphDatabase
from neo4j.exceptions import AuthError
from pydantic import SecretStr

from kg.server import NEO4J_VERSION, POM, Neo4jServer, Neo4jServerError, Neo4jSettings


def _server_for(settings: Neo4jSettings) -> Neo4jServer:
    """The manager of the server the fixture started or joined (its home holds the password file)."""
    assert settings.password_file is not None
    return Neo4jServer(
        settings.password_file.parent,
        bolt_port=urlsplit(settings.uri).port,
        http_port=urlsplit(settings.http_url).port,
    )


# -- no server needed ------------------------------------------------------------------------------


def test_settings_never_show_the_password():
    secret = "not-a-real-password-" + uuid.uuid4().hex
    s = Neo4jSettings(uri="bolt://127.0.0.1:7687", password=SecretStr(secret),
                      http_url="http://127.0.0.1:7474", browser_url="http://127.0.0.1:7474/browser/",
                      password_file=None)
    for text in (repr(s), str(s), s.model_dump_json()):
        assert secret not in text
    assert s.auth() == ("neo4j", secret)


def test_from_env_reads_the_password_file(tmp_path, monkeypatch):
    secret = uuid.uuid4().hex
    (tmp_path / "password").write_text(secret + "\n")
    monkeypatch.setenv("KGREC_NEO4J_HOME", str(tmp_path))
    monkeypatch.setenv("KGREC_NEO4J_URI", "bolt://127.0.0.1:17687")
    for name in ("KGREC_NEO4J_PASSWORD", "KGREC_NEO4J_PASSWORD_FILE", "KGREC_NEO4J_HTTP_URL"):
        monkeypatch.delenv(name, raising=False)
    s = Neo4jSettings.from_env()
    assert s.password.get_secret_value() == secret and s.password_file == tmp_path / "password"
    assert s.browser_url == "http://127.0.0.1:7474/browser/"
    monkeypatch.setenv("KGREC_NEO4J_HOME", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="KGREC_NEO4J_PASSWORD"):
        Neo4jSettings.from_env()


def test_pom_pins_the_server_version():
    props = ElementTree.parse(POM).getroot().find("{http://maven.apache.org/POM/4.0.0}properties")
    assert props.findtext("{http://maven.apache.org/POM/4.0.0}neo4j.version") == NEO4J_VERSION


def test_stale_pid_file_is_ignored(tmp_path):
    server = Neo4jServer(tmp_path, bolt_port=17697, http_port=17484)
    server.pid_file.parent.mkdir(parents=True)
    # Our own PID: alive, but not a Neo4j of this home, exactly like a recycled PID.
    server.pid_file.write_text(f"{os.getpid()}\n")
    assert server.status().startswith("Neo4j not running")
    assert not server.pid_file.exists()
    assert server.stop() is False


def test_taken_port_is_named(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = Neo4jServer(tmp_path, bolt_port=port, http_port=port + 1 if port < 65535 else port - 1)
        with pytest.raises(Neo4jServerError, match=f"Bolt port {port} .* already in use"):
            server.start(timeout=5)
    assert not (tmp_path / "lib").exists()  # failed before fetching anything


# -- against the real server ----------------------------------------------------------------------


@pytest.mark.neo4j
def test_server_answers_with_generated_password(neo4j_server):
    assert neo4j_server.password_file.stat().st_mode & 0o777 == 0o600
    with GraphDatabase.driver(neo4j_server.uri, auth=neo4j_server.auth()) as driver:
        records, _, _ = driver.execute_query("RETURN 40 + 2 AS answer", database_=neo4j_server.database)
    assert records[0]["answer"] == 42
    with GraphDatabase.driver(neo4j_server.uri, auth=neo4j_server.auth()) as driver:
        records, _, _ = driver.execute_query("CALL dbms.components() YIELD versions, edition RETURN *")
    assert (records[0]["versions"], records[0]["edition"]) == ([NEO4J_VERSION], "community")


@pytest.mark.neo4j
def test_wrong_password_is_refused_without_leaking(neo4j_server, caplog, capfd):
    real = neo4j_server.password.get_secret_value()
    wrong = "wrong-" + uuid.uuid4().hex
    caplog.set_level(logging.DEBUG)  # the driver's own debug logging must not carry it either
    with GraphDatabase.driver(neo4j_server.uri, auth=(neo4j_server.user, wrong)) as driver:
        with pytest.raises(AuthError) as excinfo:
            driver.execute_query("RETURN 1", database_=neo4j_server.database)
    out, err = capfd.readouterr()
    shown = "\n".join([str(excinfo.value), repr(excinfo.value), excinfo.exconly(), caplog.text, out, err])
    assert excinfo.value.code == "Neo.ClientError.Security.Unauthorized"
    assert "authentication failure" in str(excinfo.value)
    assert wrong not in shown and real not in shown


@pytest.mark.neo4j
def test_status_reports_running(neo4j_server):
    line = _server_for(neo4j_server).status()
    assert line.startswith("Neo4j running:") and neo4j_server.uri in line and neo4j_server.browser_url in line


@pytest.mark.neo4j
def test_the_running_server_caps_its_transaction_logs(neo4j_server):
    # The stock retention ("2 days") let repeated benchmark builds fill the disk.
    with GraphDatabase.driver(neo4j_server.uri, auth=neo4j_server.auth()) as driver:
        records, _, _ = driver.execute_query(
            "SHOW SETTINGS YIELD name, value WHERE name = $name RETURN value",
            name="db.tx_log.rotation.retention_policy", database_="system")
    assert [r["value"] for r in records] == ["1G size"]


@pytest.mark.neo4j
def test_browser_is_served(neo4j_server):
    with urllib.request.urlopen(neo4j_server.browser_url, timeout=10) as resp:
        html = resp.read().decode("utf-8")
    assert resp.status == 200 and "<title>Neo4j Browser</title>" in html
    # The page must be the real app, not an empty shell: its script bundles are served too.
    bundle = next(part.split('"')[0] for part in html.split('src="')[1:] if part.split('"')[0].endswith(".js"))
    with urllib.request.urlopen(neo4j_server.browser_url + bundle, timeout=10) as resp:
        assert resp.status == 200 and len(resp.read()) > 10_000


@pytest.mark.neo4j
def test_restart_keeps_data(neo4j_server):
    server = _server_for(neo4j_server)
    if others := server.other_lease_holders():
        pytest.skip(f"pytest sessions {others} are using this Neo4j server; restarting it would break them")
    marker = f"restart-{uuid.uuid4().hex}"
    with GraphDatabase.driver(neo4j_server.uri, auth=neo4j_server.auth()) as driver:
        driver.execute_query("CREATE (:KgrecServerProbe {marker: $m})", m=marker, database_=neo4j_server.database)
    assert server.stop() is True
    assert server.status().startswith("Neo4j not running")
    settings = server.start()
    assert settings.password.get_secret_value() == neo4j_server.password.get_secret_value()
    with GraphDatabase.driver(settings.uri, auth=settings.auth()) as driver:
        records, _, _ = driver.execute_query(
            "MATCH (n:KgrecServerProbe {marker: $m}) WITH n, count(*) AS c DELETE n RETURN c",
            m=marker, database_=settings.database)
    assert [r["c"] for r in records] == [1]
    assert server.start().uri == settings.uri  # already running: joins, starts nothing new
    assert server.launched is False


@pytest.mark.neo4j
def test_a_password_that_looks_like_an_option_still_works(neo4j_server, tmp_path, request):
    """A user-chosen password may start with "-" and hold quotes; the first start must take it.

    One generated password in 64 used to start with "-", and the admin tool then read it as an
    option and failed the first start (CI failure of session 3).
    """
    shared = _server_for(neo4j_server).home
    home = tmp_path / "neo4j"
    home.mkdir()
    for name in ("lib", "plugins"):
        (home / name).symlink_to(shared / name, target_is_directory=True)
    chosen = '-h"q\\x ' + uuid.uuid4().hex
    (home / "password").write_text(chosen + "\n")
    (home / "password").chmod(0o600)
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    server = Neo4jServer(home, bolt_port=ports[0], http_port=ports[1], heap="256m", pagecache="64m")
    try:
        settings = server.start(timeout=300)
        assert settings.password.get_secret_value() == chosen
        with GraphDatabase.driver(settings.uri, auth=(settings.user, chosen)) as driver:
            records, _, _ = driver.execute_query("RETURN 1 AS one")
        assert records[0]["one"] == 1
    finally:
        server.stop()
