"""The project's own Neo4j 5.26 Community server: jars from Maven Central, one JVM, one PID we own.

Docker is not available on the development and CI machines, so tests and CI run a real server
assembled by ``tools/neo4j/pom.xml``. The recipe and the measurements behind it are in
``kg/NEO4J_SERVER.md``.

Example:
    >>> settings = Neo4jServer().start()           # fetches the jars on first use
    >>> settings.uri, settings.browser_url
    ('bolt://127.0.0.1:7687', 'http://127.0.0.1:7474/browser/')
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

log = logging.getLogger(__name__)

NEO4J_VERSION = "5.26.29"
"""Server version; must equal ``neo4j.version`` in ``tools/neo4j/pom.xml``."""

ENTRY_POINT = "org.neo4j.server.CommunityEntryPoint"
ADMIN_ENTRY_POINT = "org.neo4j.server.startup.Neo4jAdminCommand"
READINESS_QUERY = "RETURN 1 AS ready"
"""The only Cypher here: a liveness probe, not a graph query (those live in ``kg/cypher.py``)."""

POM = Path(__file__).resolve().parent.parent / "tools" / "neo4j" / "pom.xml"

# The flags the 5.x launcher (``Neo4jCommand console``) would add from the stock neo4j.conf,
# minus -XX:+AlwaysPreTouch, which touches every heap page up front and slows startup on
# 2-core machines. Running CommunityEntryPoint directly skips the launcher's second JVM.
_JVM_FLAGS = (
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+UnlockExperimentalVMOptions",
    "-XX:+TrustFinalNonStaticFields",
    "-XX:+DisableExplicitGC",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Djdk.tls.ephemeralDHKeySize=2048",
    "-Djdk.tls.rejectClientInitiatedRenegotiation=true",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--enable-native-access=ALL-UNNAMED",
    "-Dlog4j2.disable.jmx=true",
    "-Dfile.encoding=UTF-8",
)


class Neo4jServerError(RuntimeError):
    """The server could not be installed, started or reached. Never carries a password."""


class Neo4jSettings(BaseModel):
    """How to reach a Neo4j server; shared by the server manager, the Neo4j store and flows."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    uri: str
    """Bolt URI, e.g. ``bolt://127.0.0.1:7687``."""
    user: str = "neo4j"
    """Database user."""
    password: SecretStr
    """The user's password; shown as ``**********`` by repr, str and JSON dumps."""
    database: str = "neo4j"
    """Database that queries run against."""
    http_url: str
    """Base URL of the HTTP connector, e.g. ``http://127.0.0.1:7474``."""
    browser_url: str
    """Where Neo4j Browser is served, e.g. ``http://127.0.0.1:7474/browser/``."""
    password_file: Path | None = None
    """File the password was read from, if any (so a person can find it without it being printed)."""

    @field_validator("uri")
    @classmethod
    def _bolt_scheme(cls, uri: str) -> str:
        allowed = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
        parts = urlsplit(uri)
        if parts.scheme not in allowed or not parts.hostname:
            raise ValueError(f"uri must look like bolt://host:port with a scheme in {allowed}, got {uri!r}")
        return uri

    @field_validator("http_url", "browser_url")
    @classmethod
    def _http_scheme(cls, url: str) -> str:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"expected an http(s):// URL, got {url!r}")
        return url

    def auth(self) -> tuple[str, str]:
        """Return ``(user, password)`` for ``neo4j.GraphDatabase.driver(uri, auth=...)``."""
        return self.user, self.password.get_secret_value()

    @classmethod
    def from_env(cls) -> Neo4jSettings:
        """Read ``KGREC_NEO4J_URI``, ``_USER``, ``_PASSWORD``, ``_DATABASE`` (and ``_HTTP_URL``).

        Without ``KGREC_NEO4J_PASSWORD`` the password is read from ``KGREC_NEO4J_PASSWORD_FILE``,
        else from ``<KGREC_NEO4J_HOME or .neo4j>/password``, the file ``kgrec neo4j start`` writes.

        Raises:
            ValueError: no password is given and no password file exists.
        """
        env = os.environ
        uri = env.get("KGREC_NEO4J_URI", "bolt://127.0.0.1:7687")
        http_url = env.get("KGREC_NEO4J_HTTP_URL") or f"http://{urlsplit(uri).hostname}:7474"
        http_url = http_url.rstrip("/")
        password_file: Path | None = None
        password = env.get("KGREC_NEO4J_PASSWORD")
        if password is None:
            password_file = Path(
                env.get("KGREC_NEO4J_PASSWORD_FILE")
                or Path(env.get("KGREC_NEO4J_HOME", ".neo4j")) / "password"
            )
            if not password_file.is_file():
                raise ValueError(
                    f"KGREC_NEO4J_PASSWORD is not set and {password_file} does not exist; "
                    "set the variable, or start the local server with `kgrec neo4j start`"
                )
            password = password_file.read_text(encoding="utf-8").strip()
        return cls(
            uri=uri,
            user=env.get("KGREC_NEO4J_USER", "neo4j"),
            password=SecretStr(password),
            database=env.get("KGREC_NEO4J_DATABASE", "neo4j"),
            http_url=http_url,
            browser_url=f"{http_url}/browser/",
            password_file=password_file,
        )


class Neo4jServer:
    """Installs, starts and stops one Neo4j Community server whose files all live under ``home``.

    Args:
        home: server home: ``lib/`` and ``plugins/`` (jars), ``conf/``, ``data/``, ``logs/``,
            ``run/`` (PID file) and ``password``. Relative paths are taken from the current
            directory at construction time.
        bolt_port: Bolt port on 127.0.0.1.
        http_port: HTTP port on 127.0.0.1 (Neo4j Browser is served at ``/browser/``).
        heap: JVM heap, initial and maximum (Neo4j size syntax, e.g. ``768m``).
        pagecache: page cache size. Heap plus page cache must fit in RAM or Neo4j refuses to start.
    """

    def __init__(
        self,
        home: Path = Path(".neo4j"),
        bolt_port: int = 7687,
        http_port: int = 7474,
        heap: str = "768m",
        pagecache: str = "512m",
    ) -> None:
        if bolt_port == http_port:
            raise ValueError(f"bolt_port and http_port must differ, both are {bolt_port}")
        self.home = Path(home).absolute()
        self.bolt_port = bolt_port
        self.http_port = http_port
        self.heap = heap
        self.pagecache = pagecache
        self.launched = False
        """True once :meth:`start` of this object has launched a JVM (False when it joined one)."""

    @classmethod
    def from_env(cls, default_home: Path = Path(".neo4j")) -> Neo4jServer:
        """The server named by ``KGREC_NEO4J_HOME``, ``KGREC_NEO4J_URI`` and ``KGREC_NEO4J_HTTP_URL``.

        Unset variables fall back to ``default_home`` and ports 7687/7474. Separate homes and
        ports let several servers (parallel CI jobs) run on one machine.
        """
        env = os.environ
        home = Path(env["KGREC_NEO4J_HOME"]) if env.get("KGREC_NEO4J_HOME") else default_home
        bolt = urlsplit(env.get("KGREC_NEO4J_URI", "")).port or 7687
        http = urlsplit(env.get("KGREC_NEO4J_HTTP_URL", "")).port or 7474
        return cls(home, bolt_port=bolt, http_port=http)

    # -- paths ------------------------------------------------------------------------------
    @property
    def password_file(self) -> Path:
        return self.home / "password"

    @property
    def pid_file(self) -> Path:
        return self.home / "run" / "kgrec-neo4j.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "neo4j.log"

    @property
    def _stdout_file(self) -> Path:
        return self.home / "logs" / "stdout.log"

    @property
    def _install_stamp(self) -> Path:
        return self.home / "lib" / ".kgrec-installed"

    # -- public API -------------------------------------------------------------------------
    def settings(self) -> Neo4jSettings:
        """Connection settings for this server (the password is read from ``home/password``).

        Raises:
            Neo4jServerError: the server was never started, so no password exists yet.
        """
        if not self.password_file.is_file():
            raise Neo4jServerError(
                f"no password file at {self.password_file}: the server in {self.home} was never "
                "started; run `kgrec neo4j start` first"
            )
        http_url = f"http://127.0.0.1:{self.http_port}"
        return Neo4jSettings(
            uri=f"bolt://127.0.0.1:{self.bolt_port}",
            password=SecretStr(self._read_password()),
            http_url=http_url,
            browser_url=f"{http_url}/browser/",
            password_file=self.password_file,
        )

    def install(self) -> None:
        """Copy the server jars from Maven (``tools/neo4j/pom.xml``) into ``lib/`` and ``plugins/``.

        Cached: the install is stamped with the pom's hash, so a second call returns at once and a
        changed pom reinstalls. Jars land in a staging folder first, so an interrupted fetch never
        leaves a half-filled ``lib/``.

        Raises:
            Neo4jServerError: Maven is missing or could not resolve the jars.
        """
        want = self._pom_digest()
        if self._install_stamp.is_file() and self._install_stamp.read_text().strip() == want:
            return
        mvn = shutil.which("mvn")
        if mvn is None:
            raise Neo4jServerError(
                "Maven (`mvn`) is not on PATH; it fetches the Neo4j jars from Maven Central. "
                "Install Maven 3.8+ (Debian: apt-get install maven)"
            )
        self.home.mkdir(parents=True, exist_ok=True)
        staging = self.home / ".install"
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [mvn, "-B", "-q", "-f", str(POM), "package", f"-Dneo4j.home={staging}"]
        log.info("fetching Neo4j %s jars with Maven into %s (first time only)", NEO4J_VERSION, self.home)
        started = time.monotonic()
        done = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if done.returncode != 0 or not (staging / "lib").is_dir():
            tail = _tail_text(done.stdout + done.stderr, 30)
            raise Neo4jServerError(
                f"Maven could not fetch the Neo4j jars (exit {done.returncode}) with "
                f"`{' '.join(cmd)}`; last lines:\n{tail}"
            )
        for name in ("lib", "plugins"):
            shutil.rmtree(self.home / name, ignore_errors=True)
            if (staging / name).is_dir():
                (staging / name).rename(self.home / name)
        shutil.rmtree(staging, ignore_errors=True)
        self._install_stamp.write_text(want + "\n")
        log.info("Neo4j jars installed in %.0f s", time.monotonic() - started)

    def start(self, timeout: float = 180) -> Neo4jSettings:
        """Start the server in the background and wait until Bolt answers ``RETURN 1``.

        Installs the jars if needed, writes ``conf/neo4j.conf`` and, before the very first start,
        sets a generated password (kept in ``home/password``, mode 600, never logged). If the
        server of this home is already running, waits for it to answer and returns its settings
        without starting another.

        Args:
            timeout: seconds to wait for Bolt to answer, install time not included.

        Returns:
            Settings to connect with.

        Raises:
            Neo4jServerError: a port is taken, the JVM exits, the stored password is rejected,
                or the server does not answer in time (a server this call started is stopped).
        """
        self.launched = False
        with self._lock():
            pid = self._running_pid()
            if pid is not None:
                settings = self.settings()
                log.info("Neo4j already running in %s (pid %d); waiting for it to answer", self.home, pid)
                self._wait_ready(settings, pid, timeout, started_here=False)
                return settings
            self._check_ports_free()
            self.install()
            self._prepare_home()
            settings = self.settings()
            pid = self._launch()
            self.launched = True
            owner = _read_pid(self._owner_file)
            if owner is not None and not _alive(owner):
                # Left by a test session that died; this server is not its to stop.
                self._owner_file.unlink(missing_ok=True)
            try:
                self._wait_ready(settings, pid, timeout, started_here=True)
            except BaseException:
                self._terminate(pid, 30)
                raise
            return settings

    def stop(self, timeout: float = 60) -> bool:
        """Stop the server of this home: SIGTERM by PID, then SIGKILL after ``timeout`` seconds.

        Returns:
            True if a server was running and is now stopped, False if none was running.
        """
        with self._lock():
            pid = self._running_pid()
            if pid is None:
                return False
            self._terminate(pid, timeout)
            return True

    def status(self) -> str:
        """One line for a person: running or not, PID, Bolt URI and Browser URL."""
        pid = self._running_pid()
        uri = f"bolt://127.0.0.1:{self.bolt_port}"
        browser = f"http://127.0.0.1:{self.http_port}/browser/"
        if pid is None:
            return f"Neo4j not running (home {self.home}; would listen on {uri})"
        state = "running"
        if self.password_file.is_file() and not _answers(self.settings()):
            state = "running, not answering yet"
        return f"Neo4j {state}: pid {pid}, {uri}, Browser {browser} (home {self.home})"

    @contextlib.contextmanager
    def lease(self, timeout: float = 180) -> Iterator[Neo4jSettings]:
        """Use the server for the length of a block (a pytest session), sharing it with other processes.

        Starts the server if needed. On exit it is stopped only if some lease started it and no
        other live process still holds a lease, so one developer's finished test session does not
        pull the server from under another's. A server started by ``kgrec neo4j start`` (no
        lease) is left running.

        Yields:
            Settings to connect with.
        """
        me = os.getpid()
        leases = self.home / "run" / "leases"
        mine = leases / str(me)
        with self._lock("leases"):
            leases.mkdir(parents=True, exist_ok=True)
            mine.touch()
        try:
            settings = self.start(timeout)
            if self.launched:
                with self._lock("leases"):
                    _write_atomic(self._owner_file, f"{os.getpid()}\n")
            yield settings
        finally:
            # A child forked while the block ran (Prefect, dask, multiprocessing) may finalize this
            # generator when it exits; only the process that took the lease may give it back.
            if os.getpid() == me:
                self._release_lease(mine)

    def _release_lease(self, mine: Path) -> None:
        with self._lock("leases"):
            mine.unlink(missing_ok=True)
            owner = _read_pid(self._owner_file)
            started_by_a_lease = owner is not None and (owner == os.getpid() or not _alive(owner))
            if started_by_a_lease and not self.other_lease_holders():
                self.stop()
                self._owner_file.unlink(missing_ok=True)

    def other_lease_holders(self) -> list[int]:
        """PIDs of other live processes holding a :meth:`lease` on this server (dead ones are pruned)."""
        leases = self.home / "run" / "leases"
        holders = []
        for entry in leases.iterdir() if leases.is_dir() else ():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            if _alive(int(entry.name)):
                holders.append(int(entry.name))
            else:
                entry.unlink(missing_ok=True)
        return sorted(holders)

    # -- internals --------------------------------------------------------------------------
    @property
    def _owner_file(self) -> Path:
        return self.home / "run" / "kgrec-neo4j.owner"

    @contextlib.contextmanager
    def _lock(self, name: str = "server") -> Iterator[None]:
        """Serialize start/stop (or lease bookkeeping) between processes sharing a home."""
        run = self.home / "run"
        run.mkdir(parents=True, exist_ok=True)
        with open(run / f"kgrec-neo4j-{name}.lock", "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("another process holds the Neo4j %s lock in %s; waiting", name, self.home)
                fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _pom_digest(self) -> str:
        if not POM.is_file():
            raise Neo4jServerError(f"{POM} is missing; kg.server needs the kgrec source tree (editable install)")
        return hashlib.sha256(POM.read_bytes()).hexdigest()

    def _read_password(self) -> str:
        if self.password_file.stat().st_mode & 0o077:
            self.password_file.chmod(0o600)
        return self.password_file.read_text(encoding="utf-8").strip()

    def _running_pid(self) -> int | None:
        """PID of this home's server, from the PID file, else found in /proc; clears a stale file."""
        pid = _read_pid(self.pid_file)
        if pid is not None and not self._is_our_server(pid):
            log.info("removing stale PID file %s (pid %d is not a Neo4j of this home)", self.pid_file, pid)
            self.pid_file.unlink(missing_ok=True)
            pid = None
        if pid is None:
            # A server whose PID file was lost still holds the store lock; find it by its command line.
            pid = next((p for p in _java_pids() if self._is_our_server(p)), None)
            if pid is not None:
                _write_atomic(self.pid_file, f"{pid}\n")
        return pid

    def _is_our_server(self, pid: int) -> bool:
        if not _alive(pid):
            return False
        args = _cmdline(pid)
        return ENTRY_POINT in args and f"--home-dir={self.home}" in args

    def _check_ports_free(self) -> None:
        for name, port in (("Bolt", self.bolt_port), ("HTTP", self.http_port)):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", port))
                except OSError as e:
                    raise Neo4jServerError(
                        f"cannot start Neo4j from {self.home}: {name} port {port} on 127.0.0.1 is "
                        f"already in use by another process ({e.strerror}); stop that process or "
                        f"choose another port (Neo4jServer(..., {name.lower()}_port=...))"
                    ) from None

    def _prepare_home(self) -> None:
        for name in ("conf", "data", "logs", "run", "import", "plugins"):
            (self.home / name).mkdir(parents=True, exist_ok=True)
        _write_atomic(self.home / "conf" / "neo4j.conf", self._config_text())
        first_start = not (self.home / "data" / "databases" / "system").exists()
        if not self.password_file.is_file():
            if not first_start:
                raise Neo4jServerError(
                    f"{self.home / 'data'} holds a store but {self.password_file} is missing, so its "
                    f"password is unknown; delete {self.home / 'data'} to start with an empty graph"
                )
            fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                # A letter first: a token_urlsafe string starts with "-" one time in 64, and the
                # admin tool would read such a password as an option.
                fh.write("k" + secrets.token_urlsafe(24) + "\n")
            log.info("generated a Neo4j password in %s", self.password_file)
        if first_start:
            self._set_initial_password()

    def _config_text(self) -> str:
        bolt = f"127.0.0.1:{self.bolt_port}"
        http = f"127.0.0.1:{self.http_port}"
        return "\n".join(
            [
                "# Written by kg/server.py on every start: change Neo4jServer's arguments, not this file.",
                "# 5.x setting names only (strict validation rejects unknown keys).",
                "server.default_listen_address=127.0.0.1",
                "server.default_advertised_address=127.0.0.1",
                f"server.bolt.listen_address={bolt}",
                f"server.bolt.advertised_address={bolt}",
                f"server.http.listen_address={http}",
                f"server.http.advertised_address={http}",
                "server.https.enabled=false",
                "dbms.security.auth_enabled=true",
                f"server.memory.heap.initial_size={self.heap}",
                f"server.memory.heap.max_size={self.heap}",
                f"server.memory.pagecache.size={self.pagecache}",
                "dbms.usage_report.enabled=false",
                # Keep at most about 1 GB of transaction logs (pruned at each checkpoint, every
                # 15 min by default). The stock "2 days" kept 55 GB after an hour and a half of
                # repeated 1M-row builds and drops in graph_ingest.py.
                "db.tx_log.rotation.retention_policy=1G size",
                "dbms.security.procedures.unrestricted=apoc.*",
                "",
            ]
        )

    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
        if not java or not Path(java).exists():
            raise Neo4jServerError("no `java` found (JAVA_HOME or PATH); Neo4j 5.26 needs Java 17 or 21")
        return java

    def _classpath(self) -> str:
        return ":".join(str(self.home / d / "*") for d in ("plugins", "conf", "lib"))

    def server_command(self) -> list[str]:
        """The exact JVM command line that runs the server (no secrets in it)."""
        return [
            self._java(),
            f"-Xms{self.heap}",
            f"-Xmx{self.heap}",
            *_JVM_FLAGS,
            self._class_archive_flag(),
            "-cp",
            self._classpath(),
            ENTRY_POINT,
            f"--home-dir={self.home}",
            f"--config-dir={self.home / 'conf'}",
        ]

    def _class_archive_flag(self) -> str:
        """Use the class-data-sharing archive of this install, or record one when this JVM exits.

        Loading and verifying ~30k classes from 219 jars is most of the start-up cost: on a busy
        2-core box a start took 54-58 s without the archive and 18 s with it. The archive is tied
        to the jars (it lives in ``lib/``, which a reinstall replaces) and to the JVM build (its
        name carries a digest of both); it is written at the first clean stop, as ``.partial``,
        and only renamed into use by :meth:`_terminate` after the JVM exited on its own.
        """
        java = Path(self._java()).resolve()
        libjvm = java.parent.parent / "lib" / "server" / "libjvm.so"
        marker = libjvm if libjvm.is_file() else java
        key = hashlib.sha256(f"{java}|{marker.stat().st_mtime_ns}|{self._pom_digest()}".encode()).hexdigest()[:12]
        archive = self.home / "lib" / f".kgrec-cds-{key}.jsa"
        if archive.is_file():
            return f"-XX:SharedArchiveFile={archive}"
        return f"-XX:ArchiveClassesAtExit={archive}.partial"

    def _set_initial_password(self) -> None:
        """Run ``neo4j-admin dbms set-initial-password`` before the first start.

        The password goes through a picocli ``@file`` argument (mode 600, deleted afterwards) so
        it never shows in a process listing. This way the server never accepts neo4j/neo4j.
        """
        password = self._read_password()
        argfile = self.home / "run" / "initial-password.args"
        argfile.unlink(missing_ok=True)
        fd = os.open(argfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            # "--" ends the options, so a password that starts with "-" is still the password.
            fh.write("--\n" + '"' + password.replace("\\", "\\\\").replace('"', '\\"') + '"\n')
        env = {**os.environ, "NEO4J_HOME": str(self.home), "NEO4J_CONF": str(self.home / "conf")}
        env.pop("JAVA_OPTS", None)
        env["HEAP_SIZE"] = "256m"
        cmd = [self._java(), "-Xmx256m", "-cp", str(self.home / "lib" / "*"), ADMIN_ENTRY_POINT,
               "dbms", "set-initial-password", f"@{argfile}"]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
        finally:
            argfile.unlink(missing_ok=True)
        if done.returncode != 0:
            tail = _tail_text((done.stdout + done.stderr).replace(password, "***"), 20)
            raise Neo4jServerError(f"setting the initial Neo4j password failed (exit {done.returncode}):\n{tail}")

    def _launch(self) -> int:
        """Start the JVM detached (own session, parent exits at once) and record its PID."""
        cmd = self.server_command()
        keep = {a.split("=", 1)[1] for a in cmd if a.startswith("-XX:SharedArchiveFile=")}
        for stale in (self.home / "lib").glob(".kgrec-cds-*"):
            if str(stale) not in keep:  # archives of older jars or JVMs, or an interrupted dump
                stale.unlink(missing_ok=True)
        log.info("starting Neo4j %s in %s: %s", NEO4J_VERSION, self.home, " ".join(cmd))
        # sh backgrounds the JVM and exits, so the server is not our child: it outlives the CLI
        # that started it, and no zombie is left in a long-lived pytest process.
        spawn = 'log=$1; shift; "$@" >>"$log" 2>&1 </dev/null & echo $!'
        done = subprocess.run(
            ["/bin/sh", "-c", spawn, "sh", str(self._stdout_file), *cmd],
            capture_output=True, text=True, start_new_session=True, stdin=subprocess.DEVNULL, cwd=self.home,
        )
        if done.returncode != 0 or not done.stdout.strip().isdigit():
            raise Neo4jServerError(f"could not launch the Neo4j JVM: {done.stderr.strip()}")
        pid = int(done.stdout.strip())
        _write_atomic(self.pid_file, f"{pid}\n")
        return pid

    def _wait_ready(self, settings: Neo4jSettings, pid: int, timeout: float, started_here: bool) -> None:
        from neo4j.exceptions import AuthError, ClientError, DriverError, Neo4jError, ServiceUnavailable

        started = time.monotonic()
        deadline = started + timeout
        last_error = "no answer yet"
        while True:
            if not _alive(pid):
                self.pid_file.unlink(missing_ok=True)
                raise Neo4jServerError(
                    f"the Neo4j JVM (pid {pid}) exited before answering on {settings.uri}; "
                    f"see {self.log_file} and {self._stdout_file}. Last lines:\n{self._log_tail()}"
                )
            try:
                _probe(settings)
                if started_here:
                    log.info("Neo4j answered on %s after %.1f s (pid %d)", settings.uri,
                             time.monotonic() - started, pid)
                return
            except AuthError:
                if started_here:
                    self._terminate(pid, 30)
                raise Neo4jServerError(
                    f"Neo4j on {settings.uri} rejected the password in {self.password_file}; the store in "
                    f"{self.home / 'data'} was created with another one. Delete {self.home / 'data'} "
                    "to start with an empty graph and a fresh password"
                ) from None
            except ClientError as e:
                if "CredentialsExpired" not in (e.code or ""):
                    raise
                if started_here:
                    self._terminate(pid, 30)
                raise Neo4jServerError(
                    f"Neo4j on {settings.uri} still has its default password (the store in "
                    f"{self.home / 'data'} was not created by kg.server); delete that folder and start again"
                ) from None
            except (ServiceUnavailable, Neo4jError, DriverError, OSError) as e:
                # Transient while the JVM boots: port not open yet, system DB still starting.
                last_error = f"{type(e).__name__}: {_first_line(str(e))}"
            if time.monotonic() > deadline:
                raise Neo4jServerError(
                    f"Neo4j (pid {pid}) did not answer on {settings.uri} within {timeout:.0f} s "
                    f"(last: {last_error}); see {self.log_file}"
                )
            time.sleep(1.0)

    def _terminate(self, pid: int, timeout: float) -> None:
        prefix = "-XX:ArchiveClassesAtExit="
        dump = next((a[len(prefix):] for a in _cmdline(pid) if a.startswith(prefix)), None)
        if dump is not None:
            timeout += 120  # writing the class archive (~120 MB) makes this one stop slower
            log.info("stopping Neo4j (pid %d) in %s; it writes its class archive first", pid, self.home)
        else:
            log.info("stopping Neo4j (pid %d) in %s", pid, self.home)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        clean = _wait_gone(pid, timeout)
        if not clean:
            log.warning("Neo4j (pid %d) did not stop within %.0f s of SIGTERM; sending SIGKILL", pid, timeout)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            if not _wait_gone(pid, 15):
                raise Neo4jServerError(f"Neo4j (pid {pid}) survived SIGKILL")
        self.pid_file.unlink(missing_ok=True)
        if dump is not None and Path(dump).is_file():
            if clean:
                Path(dump).rename(dump.removesuffix(".partial"))
            else:
                Path(dump).unlink(missing_ok=True)

    def _log_tail(self, lines: int = 15) -> str:
        out = []
        for path in (self.log_file, self._stdout_file):
            if path.is_file():
                out.append(f"--- {path.name}\n{_tail_text(path.read_text(errors='replace'), lines)}")
        text = "\n".join(out) or "(no log written)"
        if self.password_file.is_file():
            text = text.replace(self._read_password(), "***")
        return text


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # Field 3 of /proc/<pid>/stat is the state; an exited, unreaped process is a zombie (Z).
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _java_pids() -> Iterator[int]:
    proc = Path("/proc")
    if not proc.is_dir():
        return
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                if b"java" in (entry / "cmdline").read_bytes().split(b"\0", 1)[0]:
                    yield int(entry.name)
            except OSError:
                continue


def _answers(settings: Neo4jSettings) -> bool:
    from neo4j.exceptions import DriverError, Neo4jError

    try:
        _probe(settings)
        return True
    except (Neo4jError, DriverError, OSError):
        return False


def _probe(settings: Neo4jSettings) -> None:
    """Run the readiness query once. An auto-commit ``session.run`` is used because
    ``execute_query`` retries with back-off for up to 30 s, which would hide when Bolt came up."""
    from neo4j import GraphDatabase

    with GraphDatabase.driver(settings.uri, auth=settings.auth(), connection_timeout=3.0,
                              connection_acquisition_timeout=5.0) as driver:
        with driver.session(database=settings.database) as session:
            session.run(READINESS_QUERY).consume()


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _tail_text(text: str, lines: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def main(argv: list[str] | None = None) -> int:
    """``python -m kg.server start|stop|status [--home DIR]``: the same as ``kgrec neo4j ...``."""
    parser = argparse.ArgumentParser(prog="python -m kg.server", description=main.__doc__)
    parser.add_argument("command", choices=("start", "stop", "status"))
    parser.add_argument("--home", type=Path, default=None,
                        help="server home (default: KGREC_NEO4J_HOME or .neo4j)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds to wait (start: 180, stop: 60)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("neo4j").setLevel(logging.WARNING)
    server = Neo4jServer.from_env()
    if args.home is not None:
        server = Neo4jServer(args.home, bolt_port=server.bolt_port, http_port=server.http_port)
    wait = {"timeout": args.timeout} if args.timeout else {}
    try:
        if args.command == "start":
            settings = server.start(**wait)
            print(f"Neo4j is up at {settings.uri} (user {settings.user}; "
                  f"password in {settings.password_file})")
            print(f"Neo4j Browser: {settings.browser_url}")
        elif args.command == "stop":
            print("stopped" if server.stop(**wait) else "not running")
        else:
            print(server.status())
    except Neo4jServerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
