"""The S3 store goes down in the middle of a run and comes back: every submission still
commits exactly once, in order, with every blob in the bucket.

The daemon reaches moto through ``tcp_relay.py``, a relay process on a port of its
own; killing the relay is the outage (refused connections, requests cut mid-way),
starting it again on the same port ends it. moto itself keeps running, so the bucket
still holds what was stored before (a restarted moto would start empty). Two training
scripts (``fault_client.py``) keep logging throughout.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from artisync.spool import Spool
from consistency import Logged, check_consistency
from daemon_harness import DaemonProcess, clean_env, drop, result_of, staged_submission, wait_for
from servers import S3, ServerProcess

CLIENTS = 2
PER_CLIENT = 20
# Seconds the store stays down once the daemon has noticed: several retries' worth.
OUTAGE = 2.0


@pytest.fixture
def relay(s3: S3, tmp_path: Path) -> Iterator[ServerProcess]:
    """A relay to moto; ``stop()`` and ``start()`` take the store down and back."""
    target = urlparse(s3.endpoint)
    script = str(Path(__file__).with_name("tcp_relay.py"))
    server = ServerProcess(
        lambda port: [sys.executable, script, str(port), str(target.hostname), str(target.port)],
        "/moto-api/",
        tmp_path / "relay.log",
    )
    server.start()
    yield server
    server.stop()


def _client(home: Path, n: int, tmp_path: Path) -> subprocess.Popen[bytes]:
    (tmp_path / "locks").mkdir(exist_ok=True)
    script = Path(__file__).with_name("fault_client.py")
    args = [home, n, PER_CLIENT, "ckpt,data", tmp_path / f"client-{n}.jsonl"]
    args += [tmp_path / "locks", 11, 0.15]
    env = clean_env()
    return subprocess.Popen(
        [sys.executable, str(script), *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _retrying(daemon: DaemonProcess) -> bool:
    _, status = daemon.request("GET", "/v1/status")
    return any(s["status"] == "retrying" for s in status["active"])


def test_an_s3_store_down_mid_run_then_back_commits_everything_exactly_once(
    s3: S3, relay: ServerProcess, home: Path, tmp_path: Path
) -> None:
    store_url = f"s3://{s3.bucket()}/node"
    daemon = DaemonProcess(home)
    daemon.start({"AWS_ENDPOINT_URL": relay.url}, store=store_url)
    spool = Spool(daemon.config.spool)
    clients = [_client(home, n, tmp_path) for n in range(CLIENTS)]
    try:
        wait_for(lambda: len(list(spool.folder("done").glob("*.json"))) >= 5, what="commits")
        relay.stop()
        # Logged now, this one needs the store during the outage whatever the clients
        # have left to do.
        during_outage = staged_submission(spool, "faults", "outage", {"x": b"1"})
        drop(spool, during_outage)
        wait_for(lambda: _retrying(daemon), what="the daemon to notice the outage")
        time.sleep(OUTAGE)
        relay.start()
        for client in clients:
            output = client.communicate(timeout=120)[0].decode(errors="replace")
            assert client.returncode == 0, output
        logged = [
            Logged.from_json(json.loads(line))
            for n in range(CLIENTS)
            for line in (tmp_path / f"client-{n}.jsonl").read_text().splitlines()
        ]
        assert len(logged) == CLIENTS * PER_CLIENT
        logged.append(Logged(during_outage.id, "faults", "outage"))
        for item in logged:
            assert result_of(spool, item.sub_id, deadline=90)["status"] == "committed", item
        check_consistency(home, logged, tmp_path / "downloads", store_url=store_url)
        assert "internal_error" not in daemon.logs()
    finally:
        for client in clients:
            client.kill()
            client.wait()
        daemon.kill()
