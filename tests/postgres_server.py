"""A real PostgreSQL 15 for the registry tests, as pytest fixtures (DESIGN.md, "Many nodes").

Registered for every test file by ``pytest_plugins`` in conftest.py. Like ``servers.py``,
nothing is mocked: the fixture runs Debian's ``postgresql-15`` binaries (``initdb`` and
``postgres`` from ``/usr/lib/postgresql/15/bin``), and the backend talks to it with psycopg,
as ``artisync server`` will.

Fixtures:

``postgres_server`` (session)
    A :class:`PostgresServer`: a cluster made by ``initdb`` in a fresh directory under
    /tmp, served on a Unix socket in that directory (no TCP port to collide on). As root
    (CI, this machine) it runs as the ``postgres`` user, because ``initdb`` refuses root;
    otherwise as the current user. Stopped (fast shutdown) at the end of the session.
    Missing binaries fail every test that needs them with the command that installs them:
    a skipped backend would let the contract suite pass without checking it.
``postgres_dsn`` (function)
    The DSN of a fresh, empty database on that server, dropped after the test, so tests
    never see each other's rows.

:func:`running_postgres` starts a cluster of a test's own, for tests that stop and
start PostgreSQL (the session's server must stay up for the others).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

POSTGRES_BIN = Path(os.environ.get("ARTISYNC_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
STARTUP_DEADLINE = 30.0
PORT = 5432  # only names the socket file, which lives in the server's own directory

# Durability is pointless for a cluster deleted at the end of the session; without it
# each commit costs no fsync. max_connections leaves room for the concurrency tests'
# many registries, each with its own pool.
_SETTINGS = {
    "listen_addresses": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
}


class PostgresServer:
    """A running ``postgres`` on a Unix socket: :meth:`dsn`, :meth:`create_database`,
    :meth:`drop_database`; :meth:`stop` and :meth:`start` for outage tests."""

    def __init__(self, root: Path, user: str, command: list[str]) -> None:
        self.root = root
        self.user = user
        self._command = command
        self.proc: subprocess.Popen[bytes] = self._launch()

    def _launch(self) -> subprocess.Popen[bytes]:
        with open(self.root / "postgres.log", "ab") as log:
            return subprocess.Popen(
                self._command, user=self.user, stdout=log, stderr=subprocess.STDOUT
            )

    def stop(self) -> None:
        """Stop the server (fast shutdown: sessions are ended, clients see it go)."""
        _stop(self.proc)

    def start(self) -> None:
        """Start the stopped server again on the same data and socket; return once it
        accepts connections."""
        self.proc = self._launch()
        _wait_ready(self)

    def dsn(self, dbname: str = "postgres") -> str:
        """The libpq connection string of database ``dbname``."""
        return f"host={self.root} port={PORT} user={self.user} dbname={dbname}"

    def create_database(self) -> str:
        """A new empty database; returns its name."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name``, closing whatever connections a failed test left open on it."""
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def log(self) -> str:
        """The server's log so far (for failure messages)."""
        path = self.root / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _binary(name: str) -> str:
    path = POSTGRES_BIN / name
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"{path} not found: the PostgreSQL registry tests need Debian's postgresql-15; "
            "install it with: sudo make system-tools (or point ARTISYNC_POSTGRES_BIN at "
            "another PostgreSQL 15 bin directory)",
            pytrace=False,
        )
    return str(path)


def _server_user() -> str:
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail(
            "running as root, and there is no 'postgres' user to run initdb as (it refuses "
            "root); install postgresql-15, which creates it: sudo make system-tools",
            pytrace=False,
        )
    return "postgres"


def _wait_ready(server: PostgresServer) -> None:
    end = time.monotonic() + STARTUP_DEADLINE
    while True:
        if server.proc.poll() is not None:
            raise RuntimeError(f"postgres exited with {server.proc.returncode}:\n{server.log()}")
        try:
            with psycopg.connect(server.dsn(), connect_timeout=2):
                return
        except psycopg.OperationalError:
            pass
        if time.monotonic() > end:
            raise RuntimeError(f"postgres did not accept connections:\n{server.log()}")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    # SIGINT is PostgreSQL's fast shutdown: it ends sessions and exits without waiting
    # for clients to disconnect.
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=STARTUP_DEADLINE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def running_postgres(settings: Mapping[str, str] | None = None) -> Iterator[PostgresServer]:
    """A new PostgreSQL 15 cluster on a Unix socket in its own /tmp directory, stopped
    and deleted afterwards.

    ``settings`` override the tests' (no fsync: see ``_SETTINGS``); the server benchmark
    passes PostgreSQL's durable defaults back, so its figures are a real deployment's."""
    initdb, postgres = _binary("initdb"), _binary("postgres")
    user = _server_user()
    # Not under pytest's tmp_path: its base directory is 0700 to the user running the
    # tests, and the server runs as another user. A short path keeps the socket's path
    # under the 107-byte limit.
    root = Path(tempfile.mkdtemp(prefix="artisync-pg-", dir="/tmp"))
    data = root / "data"
    try:
        shutil.chown(root, user)
        subprocess.run(
            [initdb, "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync"],
            user=user,
            check=True,
            capture_output=True,
        )
        chosen = {**_SETTINGS, **(settings or {})}
        options = [f"-c{key}={value}" for key, value in chosen.items()]
        command = [postgres, "-D", str(data), "-k", str(root), "-p", str(PORT), *options]
        server = PostgresServer(root, user, command)
        try:
            _wait_ready(server)
            yield server
        finally:
            server.stop()
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"initdb failed: {exc.stderr.decode(errors='replace')}") from exc
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL 15 server for the session, on a Unix socket in its own /tmp directory."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> Iterator[str]:
    """The DSN of a fresh, empty database, dropped after the test."""
    name = postgres_server.create_database()
    try:
        yield postgres_server.dsn(name)
    finally:
        postgres_server.drop_database(name)
