"""A real ``artisync daemon`` subprocess for end-to-end tests, and checks on its output.

The home lives under a short ``/tmp`` path so the Unix socket stays under the
100-byte limit whatever the test is called.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from artisync.config import Config
from artisync.registry import SqliteRegistry, Version
from artisync.sdk.client import UnixHTTPConnection
from artisync.spool import ArtifactInfo, Spool, StagedEntry, Submission, next_seq

STARTUP_DEADLINE = 20.0


def clean_env() -> dict[str, str]:
    """This environment without artisync's settings, for a process the test configures
    itself; autostart stays off, so a client in it never starts a daemon of its own, and
    the tests' API key stays, so it reaches the servers tests start."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARTISYNC_")}
    env["ARTISYNC_AUTOSTART"] = "0"
    if "ARTISYNC_API_KEY" in os.environ:  # the tests' key for the servers they start
        env["ARTISYNC_API_KEY"] = os.environ["ARTISYNC_API_KEY"]
    return env


def wait_for(condition: Callable[[], Any], deadline: float = 30.0, what: str = "") -> Any:
    """Poll ``condition`` until it returns something truthy, or fail after ``deadline``."""
    end = time.monotonic() + deadline
    delay = 0.005
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline}s waiting for {what or condition}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


class DaemonProcess:
    """Start, stop, kill and query one daemon on one home."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.config = Config.load(home)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home / "daemon.log"

    def start(
        self,
        env: dict[str, str] | None = None,
        wait_ready: bool = True,
        prefix: list[str] | None = None,
        store: str | None = None,
    ) -> None:
        """Start the daemon; ``prefix`` runs it under another command (e.g. setpriv);
        ``store`` is given as ``--store`` (e.g. ``s3://bucket/prefix``), and again on
        later starts."""
        full_env = clean_env()
        full_env.update(env or {})
        self._prefix = prefix if prefix is not None else getattr(self, "_prefix", [])
        command = [sys.executable, "-m", "artisync.cli", "--home", str(self.home), "daemon"]
        self._store = store if store is not None else getattr(self, "_store", None)
        if self._store is not None:
            command += ["--store", self._store]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [*self._prefix, *command],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=full_env,
            )
        if wait_ready:
            wait_for(self._ready, STARTUP_DEADLINE, f"the daemon to answer\n{self.logs()}")

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"the daemon exited with {self.proc.returncode}:\n{self.logs()}")
        try:
            return self.request("GET", "/v1/status")[0] == 200
        except OSError:
            return False

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        conn = UnixHTTPConnection(self.config.socket, timeout=60)
        try:
            payload = None if body is None else json.dumps(body)
            conn.request(method, path, body=payload, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, json.loads(response.read())
        finally:
            conn.close()

    def wait_exit(self, deadline: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(deadline)

    def stop(self) -> int:
        """SIGTERM and wait: a clean stop."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit()

    def kill(self) -> None:
        """kill -9."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def registry(self) -> SqliteRegistry:
        return SqliteRegistry(self.config.registry, read_only=True)


def short_home() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="as-", dir="/tmp"))
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def staged_submission(
    spool: Spool, project: str, name: str, files: dict[str, bytes], **artifact: Any
) -> Submission:
    """A submission as the SDK's mutable policy makes it, without the SDK."""
    sub_id = os.urandom(16).hex()
    staging = spool.staging_dir(sub_id)
    entries = []
    for i, (path, data) in enumerate(files.items()):
        (staging / str(i)).write_bytes(data)
        digest = base64.b64encode(hashlib.md5(data).digest()).decode()
        entries.append(StagedEntry(path, f"staging/{sub_id}/{i}", digest, len(data)))
    return Submission(
        id=sub_id,
        created_ns=time.time_ns(),
        project=project,
        artifact=ArtifactInfo(name=name, type=artifact.pop("type", "dataset"), **artifact),
        entries=list(entries),
    )


def drop(spool: Spool, sub: Submission) -> Path:
    """Publish a submission into new/ as the SDK does when the daemon is down."""
    return spool.publish(spool.write_tmp(sub), next_seq())


def result_of(spool: Spool, sub_id: str, deadline: float = 60.0) -> dict[str, Any]:
    return dict(wait_for(lambda: spool.find_result(sub_id), deadline, f"submission {sub_id}"))


def check_store_consistent(home: Path, versions: list[Version]) -> None:
    """Every blob a committed manifest names is in the store and has that content."""
    store = home / "store"
    for v in versions:
        manifest = json.loads((store / v.manifest_key).read_bytes())
        for path, entry in manifest["contents"].items():
            if entry.get("ref"):
                continue
            md5_hex = base64.b64decode(entry["digest"]).hex()
            blob = store / "blobs" / "md5" / md5_hex[:2] / md5_hex
            assert blob.exists(), f"{v.name}:{v.version} {path}: blob {md5_hex} missing"
            assert hashlib.md5(blob.read_bytes()).hexdigest() == md5_hex, f"{blob} corrupt"
