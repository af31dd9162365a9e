"""``artisync server`` as a subprocess on 127.0.0.1, for the tests that need one: the
``start_server`` fixture (registered for every test file by conftest.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import urllib3

from servers import free_port

DEADLINE = 30.0


class Server:
    """One ``artisync server`` subprocess: ``url``, ``log()``, ``stop()``."""

    def __init__(
        self,
        dsn: str,
        log: Path,
        *extra: str,
        env: dict[str, str] | None = None,
        ca_file: Path | None = None,
        port: int | None = None,
    ) -> None:
        self.dsn = dsn
        self.port = port or free_port()
        self.http = urllib3.PoolManager(ca_certs=str(ca_file) if ca_file else None)
        self.log_path = log
        scheme = "https" if "--tls-cert" in extra else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "artisync.cli", "server", "--db", dsn]
        command += ["--listen", f"127.0.0.1:{self.port}", *extra]
        # The servers of one test share a secret (their keys must agree), in its tmp dir.
        secret = {"ARTISYNC_SERVER_SECRET_FILE": str(log.parent / "server-secret")}
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **secret, **(env or {})},
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str) -> urllib3.BaseHTTPResponse:
        return self.http.request("GET", self.url + path, retries=False, timeout=10)

    def wait_until(self, path: str, status: int) -> None:
        end = time.monotonic() + DEADLINE
        while True:
            assert self.proc.poll() is None, f"server exited:\n{self.log()}"
            try:
                if self.get(path).status == status:
                    return
            except urllib3.exceptions.HTTPError:
                pass
            assert time.monotonic() < end, f"{path} never answered {status}:\n{self.log()}"
            time.sleep(0.05)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start ``artisync server`` subprocesses (stopped at the end), each answering
    ``/healthz`` before it is returned."""
    started: list[Server] = []

    def start(
        dsn: str, *extra: str, ca_file: Path | None = None, port: int | None = None
    ) -> Server:
        log = tmp_path / f"server-{len(started)}.log"
        server = Server(dsn, log, *extra, ca_file=ca_file, port=port)
        started.append(server)
        server.wait_until("/healthz", 200)
        return server

    yield start
    for server in started:
        server.stop()
