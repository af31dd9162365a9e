"""Prometheus metrics: on the socket (``GET /metrics``) and over TCP with
``--metrics-addr``, each daemon with its own registry."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import artisync
from artisync.daemon.metrics import DaemonMetrics
from artisync.daemon.progress import ProgressBoard
from artisync.daemon.server import parse_address
from artisync.errors import InvalidInputError, RegistryError
from artisync.spool import FileEntry, Spool
from artisync.store import StoreUnavailableError
from daemon_harness import drop, result_of, staged_submission, wait_for
from flagged_daemon import FlaggedDaemon, free_port


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape by (name, sorted labels), parsed by prometheus_client."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_commits_rejects_latency_and_bytes_are_served_on_the_socket_and_over_tcp(
    home: Path, tmp_path: Path
) -> None:
    port = free_port()
    daemon = FlaggedDaemon(home, "--metrics-addr", f"127.0.0.1:{port}")
    daemon.start()
    try:
        sizes = [300_000, 5_000]
        with artisync.init(project="proj", home=home) as run:
            for i, size in enumerate(sizes):
                (tmp_path / f"w{i}").write_bytes(os.urandom(size))
                artifact = artisync.Artifact("model", "model")
                artifact.add_file(tmp_path / f"w{i}", policy="immutable")
                run.log_artifact(artifact)
                artifact.wait(timeout=60)
            again = artisync.Artifact("model", "model")  # identical: the existing version
            again.add_file(tmp_path / "w1", policy="immutable")
            run.log_artifact(again)
            assert again.wait(timeout=60).version == "v1"
        spool = Spool(daemon.config.spool)
        bad = staged_submission(spool, "proj", "data", {})
        bad.entries.append(FileEntry("gone", str(tmp_path / "gone"), 1, 1, 1))
        drop(spool, bad)
        assert result_of(spool, bad.id)["status"] == "rejected"

        # The rejection file is written before the counters move: wait for them.
        def settled() -> bytes | None:
            status, body = daemon.get_raw("/metrics")
            assert status == 200
            m = _samples(body.decode())
            done = _value(m, "artisync_queue_depth") == 0 and _value(
                m, "artisync_rejects_total", stage="hash"
            )
            return body if done else None

        body = wait_for(settled, 30, "the metrics to count the rejection")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
            assert answer.headers["Content-Type"].startswith("text/plain")
            over_tcp = answer.read().decode()
        # Only the metrics go over TCP; the API stays on the socket.
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/status", timeout=30)
        assert refused.value.code == 404
        refused.value.close()
    finally:
        assert daemon.stop() == 0

    for text in (body.decode(), over_tcp):
        m = _samples(text)
        assert _value(m, "artisync_submissions_accepted_total") == 4
        assert _value(m, "artisync_commits_total", kind="new") == 2
        assert _value(m, "artisync_commits_total", kind="existing") == 1
        assert _value(m, "artisync_commits_total", kind="part") == 0
        assert _value(m, "artisync_rejects_total", stage="hash") == 1  # the file is gone
        assert _value(m, "artisync_rejects_total", stage="validate") == 0
        assert _value(m, "artisync_retries_total", cause="store") == 0
        assert _value(m, "artisync_commit_latency_seconds_count") == 3
        assert 0 < _value(m, "artisync_commit_latency_seconds_sum") < 60
        assert _value(m, "artisync_commit_latency_seconds_bucket", le="+Inf") == 3
        assert _value(m, "artisync_bytes_hashed_total") == sum(sizes) + sizes[1]
        assert _value(m, "artisync_bytes_stored_total") == sum(sizes) + sizes[1]
        assert _value(m, "artisync_queue_depth") == 0
        assert _value(m, "artisync_submissions_in_flight", stage="hash") == 0
        assert _value(m, "artisync_stage_seconds_count", stage="commit") == 3
        assert _value(m, "process_resident_memory_bytes") > 0


def test_two_daemons_in_one_process_keep_separate_counts() -> None:
    first, second = ProgressBoard(), ProgressBoard()
    metrics = DaemonMetrics(first), DaemonMetrics(second)
    first.claimed("a" * 32, "1")
    assert (
        _value(_samples(metrics[0].exposition().decode()), "artisync_submissions_accepted_total")
        == 1
    )
    assert (
        _value(_samples(metrics[1].exposition().decode()), "artisync_submissions_accepted_total")
        == 0
    )


def test_retries_are_counted_by_cause_and_store_failures_as_store_errors() -> None:
    board = ProgressBoard()
    metrics = DaemonMetrics(board)
    sub = "b" * 32
    board.claimed(sub, "00000000000000000001.1.1")
    board.retried(sub, StoreUnavailableError("s3://bucket/x", "connection refused"))
    board.retried(sub, StoreUnavailableError("s3://bucket/x", "connection refused"))
    board.retried(sub, RegistryError("database is locked"))
    board.retried(sub, OSError(28, "No space left on device"))
    board.store_failed(StoreUnavailableError("/store", "Input/output error"))
    m = _samples(metrics.exposition().decode())
    assert _value(m, "artisync_retries_total", cause="store") == 2
    assert _value(m, "artisync_retries_total", cause="registry") == 1
    assert _value(m, "artisync_retries_total", cause="disk_full") == 1
    assert _value(m, "artisync_store_errors_total") == 3
    assert _value(m, "artisync_queue_depth") == 1
    assert _value(m, "artisync_submissions_in_flight", stage="queued") == 1
    assert _value(m, "artisync_oldest_submission_age_seconds") > 1e6  # seq from 1970


@pytest.mark.parametrize("text", ["9464", "localhost", "127.0.0.1:http", ":9464", "h:99999"])
def test_a_malformed_metrics_address_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(InvalidInputError, match=r"is not HOST:PORT; use e\.g\. --metrics-addr"):
        parse_address(text)
    assert parse_address("[::1]:9464") == ("::1", 9464)


def test_a_metrics_address_in_use_stops_the_daemon_with_a_clear_error(home: Path) -> None:
    port = free_port()
    blocker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import socket,time; s=socket.socket(); "
            f"s.bind(('127.0.0.1',{port})); s.listen(); print('up', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert blocker.stdout is not None and blocker.stdout.readline() == "up\n"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "artisync.cli",
                "--home",
                str(home),
                "daemon",
                "--metrics-addr",
                f"127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        blocker.kill()
        blocker.communicate()
    assert done.returncode == 2, done.stderr
    assert f"cannot serve metrics on 127.0.0.1:{port}: Address already in use" in done.stderr
