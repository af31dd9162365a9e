"""A real daemon started with extra flags (``--log-format``, ``--metrics-addr``), and
helpers for the observability tests: free TCP ports, raw socket GETs, log parsing."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from artisync.sdk.client import UnixHTTPConnection
from daemon_harness import STARTUP_DEADLINE, DaemonProcess, clean_env, wait_for


class FlaggedDaemon(DaemonProcess):
    """:class:`DaemonProcess` with extra ``artisync daemon`` flags."""

    def __init__(self, home: Path, *flags: str) -> None:
        super().__init__(home)
        self.flags = list(flags)

    def start(
        self,
        env: dict[str, str] | None = None,
        wait_ready: bool = True,
        prefix: list[str] | None = None,
        store: str | None = None,
    ) -> None:
        """Start with ``self.flags`` after ``daemon`` (``prefix`` and ``store`` unused)."""
        full_env = clean_env()
        full_env.update(env or {})
        command = [sys.executable, "-m", "artisync.cli", "--home", str(self.home), "daemon"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [*command, *self.flags], stdout=log, stderr=subprocess.STDOUT, env=full_env
            )
        if wait_ready:
            wait_for(self._ready, STARTUP_DEADLINE, f"the daemon to answer\n{self.logs()}")

    def get_raw(self, path: str) -> tuple[int, bytes]:
        """``GET path`` on the socket; the status and the body as bytes."""
        conn = UnixHTTPConnection(self.config.socket, timeout=30)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)(?: |$)')


def parse_logfmt(line: str) -> dict[str, Any]:
    """One logfmt line as a dict: bare values as strings, quoted ones JSON-decoded.
    Raises ``ValueError`` for anything that is not ``key=value`` pairs."""
    out: dict[str, Any] = {}
    position = 0
    while position < len(line):
        match = _PAIR.match(line, position)
        if match is None:
            raise ValueError(f"not logfmt at column {position}: {line!r}")
        key, value = match.groups()
        out[key] = json.loads(value) if value.startswith('"') else value
        position = match.end()
    return out
