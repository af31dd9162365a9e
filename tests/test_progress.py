"""Progress: counters that move inside one large file's hashing, the daemon's
``GET /v1/progress``, and ``artisync status`` / ``artisync log`` drawing it."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from artisync import _core
from artisync.daemon import progress as progress_module
from artisync.daemon.progress import ProgressBoard
from artisync.sdk.client import DaemonClient
from artisync.spool import ReferenceEntry, Spool
from daemon_harness import DaemonProcess, drop, result_of, staged_submission, wait_for

BIG = 768 << 20  # sparse: no disk used, and hashing it takes about a second


def _sparse(path: Path, size: int = BIG) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def _watch(read: Callable[[], int], until: threading.Event, seen: list[int]) -> None:
    """Append what ``read()`` gives to ``seen`` until ``until`` is set."""
    while not until.is_set():
        seen.append(read())
        time.sleep(0.002)


def test_hashing_one_large_file_reports_progress_before_the_call_returns(tmp_path: Path) -> None:
    big = _sparse(tmp_path / "big")
    counter = _core.Progress()
    done = threading.Event()
    seen: list[int] = []
    watcher = threading.Thread(target=_watch, args=(lambda: counter.bytes, done, seen))
    watcher.start()
    try:
        (digest,) = _core.hash_files([big], progress=counter)
    finally:
        done.set()
        watcher.join()
    assert digest.size == BIG
    assert (counter.bytes, counter.files) == (BIG, 1)
    assert any(0 < value < BIG for value in seen), "no value between 0 and the end was seen"


def test_copies_count_bytes_and_files_and_python_can_add_its_own(tmp_path: Path) -> None:
    (tmp_path / "src" / "d").mkdir(parents=True)
    sizes = {"a": 10, "d/b": 3 << 20, "d/c": 0}
    for name, size in sizes.items():
        (tmp_path / "src" / name).write_bytes(os.urandom(size))
    counter = _core.Progress()
    _core.copy_tree_and_hash(tmp_path / "src", tmp_path / "dst", progress=counter)
    assert (counter.bytes, counter.files) == (sum(sizes.values()), 3)
    one = _core.Progress()
    _core.copy_and_hash(tmp_path / "src" / "d" / "b", tmp_path / "b2", progress=one)
    assert (one.bytes, one.files) == (3 << 20, 1)
    one.add(5, files=2)
    assert (one.bytes, one.files, repr(one)) == (
        (3 << 20) + 5,
        3,
        f"Progress(bytes={(3 << 20) + 5}, files=3)",
    )
    with pytest.raises(OverflowError):
        one.add(-1)


class _Clock:
    """Stands in for the ``time`` module of :mod:`artisync.daemon.progress`."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return 1_700_000_000.0 + self.now


def test_a_submission_moves_through_stages_with_rate_and_eta(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock()
    monkeypatch.setattr(progress_module, "time", clock)
    board = ProgressBoard()
    statuses: list[str] = []
    on_status = board.observe(lambda sub_id, status, result: statuses.append(status))
    sub = staged_submission(Spool(tmp_path / "spool"), "proj", "model", {})
    seq = f"{int(clock.time() * 1e9):020d}.0000000001.0000000000"
    progress = board.claimed(sub.id, seq)
    board.identify(sub)
    on_status(sub.id, "working", None)
    assert board.snapshot()["by_stage"]["waiting"] == 1
    progress.begin("expand")
    # Three files: "a" (600 bytes) to hash and store, "b" (400) hashed before (a
    # snapshot) and to store, a file:// reference (50) to hash only.
    progress.sized(files=3, hash_total=650, store_total=1000)
    clock.now += 0.5
    progress.lap("expand")
    progress.tracked.hashed.add(325)
    clock.now += 1.0
    (item,) = board.snapshot()["active"]
    assert (item["project"], item["name"], item["stage"], item["files"]) == (
        "proj",
        "model",
        "hash",
        3,
    )
    assert item["hash"] == {
        "total": 650,
        "done": 325,
        "files_done": 0,
        "bytes_per_second": 325,
        "eta_seconds": 1.0,
    }
    assert item["store"]["total"] == 1000 and item["stages"] == {"expand": 0.5}
    progress.lap("hash")  # a store that hashes without counting: the stage end completes it
    progress.tracked.stored.add(1500)  # a part sent twice: the bar stops at the total
    assert board.snapshot()["active"][0]["store"]["done"] == 1000
    on_status(sub.id, "retrying", {"reason": "the store is down"})
    assert board.snapshot()["active"][0]["retrying"] == "the store is down"
    on_status(sub.id, "committed", {"created": True})
    assert statuses == ["working", "retrying", "committed"]
    assert board.snapshot() | {"by_stage": None} == {
        "queue_depth": 0,
        "by_stage": None,
        "bytes_hashed": 650,
        "bytes_stored": 1500,
        "active": [],
    }


def test_the_daemon_shows_a_single_large_files_hash_moving(home: Path, tmp_path: Path) -> None:
    _sparse(tmp_path / "data" / "huge.bin")
    daemon = DaemonProcess(home)
    daemon.start()
    try:
        spool = Spool(daemon.config.spool)
        sub = staged_submission(spool, "proj", "huge", {})
        sub.entries.append(ReferenceEntry("", (tmp_path / "data").as_uri()))
        client = DaemonClient(daemon.config)
        drop(spool, sub)
        seen: list[dict[str, Any]] = []

        def moving() -> bool:
            for item in (client.progress() or {}).get("active", []):
                if item["id"] == sub.id:
                    seen.append(item)
            return any(0 < s["hash"]["done"] < s["hash"]["total"] for s in seen)

        wait_for(moving, 60, "the hash to be seen between 0 and its total")
        moving_item = next(s for s in seen if 0 < s["hash"]["done"] < BIG)
        assert moving_item["stage"] == "hash" and moving_item["hash"]["total"] == BIG
        assert (moving_item["project"], moving_item["name"]) == ("proj", "huge")
        assert result_of(spool, sub.id)["status"] == "committed"
        # The receipt is written before the board lets the submission go: wait for the board.
        after = wait_for(
            lambda: (p := client.progress()) is not None and p["queue_depth"] == 0 and p,
            30,
            "the board to let the committed submission go",
        )
        assert after["bytes_hashed"] == BIG
        as_json = _cli(home, "status", "--json")
        assert json.loads(as_json.stdout)["progress"]["bytes_hashed"] == BIG
        as_text = _cli(home, "status")
        assert "queue 0; since start: committed 1, rejected 0, stored " in as_text.stdout
        assert ", hashed 768.0 MiB" in as_text.stdout
    finally:
        daemon.stop()


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "artisync.cli", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def _interruptible() -> None:
    """In the child: Ctrl-C back to its default, as at a terminal. A test run started
    in the background by a shell without job control inherits SIGINT ignored, and
    Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class _Terminal:
    """A command on a pseudo-terminal, as a person at a terminal runs it."""

    def __init__(self, *args: str) -> None:
        self.master, slave = pty.openpty()
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "artisync.cli", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            close_fds=True,
            preexec_fn=_interruptible,
        )
        os.close(slave)
        self.output = b""

    def read(self) -> str:
        """Everything the command wrote so far."""
        while self.master >= 0 and select.select([self.master], [], [], 0.05)[0]:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the command exited and closed its end
                break
            if not chunk:
                break
            self.output += chunk
        return self.output.decode(errors="replace")

    def finish(self, deadline: float = 60) -> int:
        end = time.monotonic() + deadline
        while self.proc.poll() is None and time.monotonic() < end:
            self.read()
        self.read()
        os.close(self.master)
        self.master = -1
        return self.proc.wait(1)


def test_status_draws_live_bars_on_a_terminal_until_ctrl_c(home: Path, tmp_path: Path) -> None:
    daemon = DaemonProcess(home)
    daemon.start()
    terminal = _Terminal("--home", str(home), "status", "--interval", "0.1")
    try:
        wait_for(lambda: "queue 0" in terminal.read(), 30, "the live view")
        spool = Spool(daemon.config.spool)
        _sparse(tmp_path / "data" / "huge.bin")
        sub = staged_submission(spool, "proj", "huge", {})
        sub.entries.append(ReferenceEntry("", (tmp_path / "data").as_uri()))
        drop(spool, sub)
        wait_for(lambda: f"{sub.id[:8]} proj/huge hash" in terminal.read(), 60, "a hash bar")
        result_of(spool, sub.id)
        terminal.proc.send_signal(signal.SIGINT)
        assert terminal.finish() == 0
    finally:
        if terminal.proc.poll() is None:
            terminal.proc.kill()
        daemon.stop()
    assert "━" in terminal.read()  # drawn as a bar, not printed as text


def test_log_shows_a_bar_while_it_waits_on_a_terminal_and_none_when_quiet(
    home: Path, tmp_path: Path
) -> None:
    daemon = DaemonProcess(home)
    daemon.start()
    try:
        data = tmp_path / "data"
        _sparse(data / "huge.bin", 256 << 20)  # copied into the store: smaller
        shown = _Terminal("--home", str(home), "log", str(data), "--project", "proj", "--type", "t")
        assert shown.finish() == 0, shown.read()
        assert "proj/data store" in shown.read() and "━" in shown.read()
        assert "proj/data:v0 (" in shown.read()
        (data / "more.bin").write_bytes(b"x")
        quiet = _Terminal(
            "--home", str(home), "log", str(data), "--project", "proj", "--type", "t", "--quiet"
        )
        assert quiet.finish() == 0, quiet.read()
        assert re.fullmatch(r"proj/data:v1 \([0-9a-f]{32}\)\s*", quiet.read()), quiet.read()
    finally:
        daemon.stop()


def test_status_without_a_terminal_prints_text_and_json_snapshots(home: Path) -> None:
    daemon = DaemonProcess(home)
    daemon.start()
    try:
        text = _cli(home, "status").stdout
        assert text.startswith(f"daemon pid {daemon.proc.pid if daemon.proc else ''} on {home}")
        watched = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "artisync.cli",
                "--home",
                str(home),
                "status",
                "--json",
                "--watch",
                "--interval",
                "0.1",
            ],
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=_interruptible,
        )
        assert watched.stdout is not None
        lines = [watched.stdout.readline() for _ in range(3)]
        watched.send_signal(signal.SIGINT)
        watched.communicate(timeout=30)
        assert watched.returncode == 0
        assert all(json.loads(line)["progress"]["queue_depth"] == 0 for line in lines)
        bad = subprocess.run(
            [
                sys.executable,
                "-m",
                "artisync.cli",
                "--home",
                str(home),
                "status",
                "--interval",
                "0",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert bad.returncode == 2 and "'0' is not a number of seconds from 0.05" in bad.stderr
    finally:
        daemon.stop()


def test_the_local_stores_batch_put_counts_as_it_hashes_and_writes(tmp_path: Path) -> None:
    """An immutable file's blob goes in through one ``put_blobs`` call: its hashing
    moves the counter before the call returns, and every byte and file is counted."""
    sizes = {"big.bin": 96 << 20, "small.txt": 1000, "again.txt": 1000}
    payloads = {name: os.urandom(size) for name, size in sizes.items()}
    payloads["again.txt"] = payloads["small.txt"]  # found stored: counted, not written
    for name, data in payloads.items():
        (tmp_path / name).write_bytes(data)
    blobs, tmp = tmp_path / "store" / "blobs" / "md5", tmp_path / "store" / "tmp"
    blobs.mkdir(parents=True)
    tmp.mkdir()
    hashed, stored = _core.Progress(), _core.Progress()
    done, seen = threading.Event(), list[int]()
    watcher = threading.Thread(target=_watch, args=(lambda: hashed.bytes, done, seen))
    watcher.start()
    try:
        requests = [(tmp_path / name, None, None, None, False, False) for name in sizes]
        outcomes = _core.put_blobs(
            blobs, tmp, requests, tag="t", threads=1, hashed=hashed, stored=stored
        )
    finally:
        done.set()
        watcher.join()
    assert [o.status for o in outcomes] == ["stored", "stored", "present"]
    assert (hashed.bytes, hashed.files) == (sum(sizes.values()), 3)
    assert (stored.bytes, stored.files) == (sum(sizes.values()), 3)
    assert any(0 < value < sizes["big.bin"] for value in seen), "the hash never moved mid-file"
