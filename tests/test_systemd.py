"""The daemon under systemd, with systemd played by the test: sd_notify messages on a
datagram socket the test binds, socket activation with a socket the test opens, the
signals a unit sends (SIGTERM to stop, SIGHUP to reload), and the unit files
themselves checked by ``systemd-analyze verify``."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import artisync
from artisync.daemon import systemd
from daemon_harness import DaemonProcess, wait_for

UNITS = Path(__file__).parent.parent / "contrib" / "systemd"


class NotifySocket:
    """What systemd listens on: every datagram the daemon sends, in order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[str] = []

    def receive(self, timeout: float) -> str | None:
        self.sock.settimeout(timeout)
        try:
            message = self.sock.recv(4096).decode()
        except TimeoutError:
            return None
        self.messages.append(message)
        return message

    def wait_for(self, fragment: str, timeout: float = 30.0) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            message = self.receive(max(0.01, end - time.monotonic()))
            if message is not None and fragment in message:
                return message
        raise AssertionError(f"no {fragment!r} in {self.messages}")


@pytest.fixture
def daemon(home: Path) -> Iterator[DaemonProcess]:
    d = DaemonProcess(home)
    yield d
    d.kill()


@pytest.fixture
def notify(daemon: DaemonProcess) -> Iterator[NotifySocket]:
    listening = NotifySocket(daemon.home / "notify.sock")
    yield listening
    listening.sock.close()


def _log_one(home: Path, tmp_path: Path, name: str = "data") -> artisync.Artifact:
    (tmp_path / f"{name}.txt").write_text(f"{name} {time.time_ns()}")
    with artisync.init(project="svc", home=home) as run:
        artifact = artisync.Artifact(name, "dataset")
        artifact.add_file(str(tmp_path / f"{name}.txt"))
        run.log_artifact(artifact)
        artifact.wait(timeout=60)
    return artifact


def test_ready_watchdog_status_and_stopping_reach_systemd(
    daemon: DaemonProcess, notify: NotifySocket, tmp_path: Path
) -> None:
    env = {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "200000"}
    daemon.start(env, wait_ready=False)
    ready = notify.wait_for("READY=1")
    # READY means serving: the API answers at once, with no retry.
    assert daemon.request("GET", "/v1/status")[0] == 200
    assert "STATUS=0 queued, 0 working, 0 committed, 0 rejected" in ready
    start = time.monotonic()
    notify.wait_for("WATCHDOG=1")
    notify.wait_for("WATCHDOG=1")
    assert time.monotonic() - start < 2.0, "pings every WATCHDOG_USEC / 2"

    _log_one(daemon.home, tmp_path)
    notify.wait_for("STATUS=0 queued, 0 working, 1 committed, 0 rejected")

    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGTERM)
    notify.wait_for("STOPPING=1")
    assert daemon.wait_exit() == 0


def test_notify_reaches_an_abstract_socket_and_is_silent_without_systemd(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = f"artisync-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert systemd.notify("READY=1", "STATUS=up")
        assert sock.recv(100) == b"READY=1\nSTATUS=up"
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert not systemd.notify("READY=1")
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", "1")  # another process is watched, not us
    assert systemd.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert systemd.watchdog_interval() == 15.0


# Plays systemd's part after fork: the socket on fd 3, and LISTEN_PID naming the process
# that execs the daemon.
_ACTIVATE = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); "
    "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1'); "
    "os.execv(sys.argv[2], sys.argv[2:])"
)


def test_socket_activation_serves_on_the_socket_systemd_opened(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    path = daemon.config.socket
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(16)
    inode = path.stat().st_ino
    with open(daemon.log, "ab") as log:
        daemon.proc = subprocess.Popen(
            [sys.executable, "-c", _ACTIVATE, str(listener.fileno()), sys.executable,
             "-m", "artisync.cli", "--home", str(daemon.home), "daemon"],
            pass_fds=(listener.fileno(),),
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    listener.close()  # the daemon holds it now
    artifact = _log_one(daemon.home, tmp_path)
    assert artifact.version == "v0"
    assert path.stat().st_ino == inode, "the daemon served the passed socket, not its own"
    assert daemon.stop() == 0


def test_sighup_applies_live_settings_and_names_those_needing_a_restart(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    config = daemon.home / "config.toml"
    config.write_text("gc_grace = 100\n")
    daemon.start()
    config.write_text(f'gc_grace = 200\nexpire_interval = 5\nstore = "{tmp_path / "other"}"\n')
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "event=config_reloaded" in daemon.logs(), what="the reload")
    logs = daemon.logs()
    assert "applied=gc_grace,expire_interval" in logs or "applied=expire_interval,gc_grace" in logs
    assert "event=config_needs_restart" in logs and "settings=store" in logs

    config.write_text("gc_grace = [not toml")
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "event=config_reload_failed" in daemon.logs(), what="the failed reload")
    # Still the running configuration, still serving (the SDK reads the file too).
    config.write_text("gc_grace = 200\n")
    assert _log_one(daemon.home, tmp_path).version == "v0"
    assert daemon.stop() == 0


def test_sigterm_mid_submission_exits_0_and_the_next_start_commits_it_once(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    (daemon.home / "config.toml").write_text("shutdown_deadline = 1\n")
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:  # sparse: hashing 2 GiB takes seconds and no disk
        f.truncate(2 << 30)
    daemon.start()
    with artisync.init(project="svc", home=daemon.home) as run:
        artifact = artisync.Artifact("big", "model")
        artifact.add_file(str(big), policy="immutable")
        run.log_artifact(artifact)
        wait_for(lambda: "stage=expand" in daemon.logs(), what="the submission to start")
        started = time.monotonic()
        assert daemon.stop() == 0
        assert time.monotonic() - started < 10, "stopped within the deadline"
        assert "event=checkpointed" in daemon.logs()
        daemon.start()
        assert artifact.wait(timeout=120).version == "v0"
    with daemon.registry() as registry:
        assert [v.version for v in registry.list_versions("svc", "big")] == ["v0"]


def test_a_second_daemon_on_the_same_home_refuses_with_a_clear_message(
    daemon: DaemonProcess,
) -> None:
    daemon.start()
    second = subprocess.run(
        [sys.executable, "-m", "artisync.cli", "--home", str(daemon.home), "daemon"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 2
    assert f"another artisync daemon (pid {daemon.proc.pid if daemon.proc else 0})" in (
        second.stderr
    )
    assert daemon.request("GET", "/v1/status")[0] == 200, "the first one is unharmed"


@pytest.mark.parametrize("user", [False, True], ids=["system", "user"])
def test_the_units_pass_systemd_analyze_verify(tmp_path: Path, user: bool) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze comes with the systemd package (Makefile installs it)"
    source = UNITS / "user" if user else UNITS
    artisync_bin = shutil.which("artisync")
    assert artisync_bin is not None
    for unit in ("artisync.service", "artisync.socket"):
        text = (source / unit).read_text()
        text = text.replace("/usr/local/bin/artisync", artisync_bin)
        text = text.replace("%h/.local/bin/artisync", artisync_bin)
        (tmp_path / unit).write_text(text)
    runtime = tmp_path / "run"
    runtime.mkdir()
    command = [analyze, *(["--user"] if user else []), "verify"]
    result = subprocess.run(
        [*command, str(tmp_path / "artisync.service"), str(tmp_path / "artisync.socket")],
        capture_output=True,
        text=True,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
        timeout=60,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
