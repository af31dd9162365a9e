"""A newcomer never starts a daemon: the first client that needs one starts it, and says
at once when it may not. Written from the user's side: real processes, real homes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import artisync
from artisync.errors import NoDaemonWarning
from artisync.home_lock import lock_holder
from daemon_harness import wait_for

_ON = {**os.environ, "ARTISYNC_AUTOSTART": "1"}
_OFF = {**os.environ, "ARTISYNC_AUTOSTART": "0"}


def artisync_command(
    *args: str, env: dict[str, str] = _ON, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "artisync.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)


@pytest.fixture
def autostart_home(home: Path) -> Iterator[Path]:
    """A home whose daemon, if a test's client starts one, is stopped afterwards."""
    yield home
    pid = lock_holder(home)
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: lock_holder(home) is None, what="the started daemon to go")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    return folder


def log(home: Path, data: Path, env: dict[str, str] = _ON) -> subprocess.CompletedProcess[str]:
    return artisync_command(
        "--home", str(home), "log", str(data), "--project", "p", "--type", "d", env=env
    )


def test_log_with_no_daemon_starts_one_that_commits_and_keeps_running(
    autostart_home: Path, data: Path
) -> None:
    home = autostart_home
    started = time.monotonic()
    done = log(home, data)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("p/data:v0 ")
    assert time.monotonic() - started < 30
    pid = lock_holder(home)
    assert pid is not None, "the daemon went with the command"
    assert "ready" in (home / "daemon.log").read_text()
    # Detached: its own session, so the caller's Ctrl-C never reaches it.
    assert os.getsid(pid) == pid
    stopped = artisync_command("--home", str(home), "stop")
    assert stopped.returncode == 0 and f"pid {pid}" in stopped.stdout
    assert lock_holder(home) is None


def test_a_script_that_logs_gets_a_daemon_and_leaves_it_running(autostart_home: Path) -> None:
    home = autostart_home
    script = textwrap.dedent(
        f"""
        import artisync
        with artisync.init(project="p", home={str(home)!r}) as run:
            artifact = artisync.Artifact("model", "model")
            with artifact.new_file("weights.bin") as f:
                f.write("w")
            run.log_artifact(artifact)
            print(artifact.wait(timeout=60).version)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=_ON, timeout=90
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "v0"
    assert "Warning" not in done.stderr
    assert lock_holder(home) is not None


def test_many_clients_at_once_start_one_daemon(autostart_home: Path, tmp_path: Path) -> None:
    home = autostart_home
    clients = []
    for i in range(6):
        folder = tmp_path / f"d{i}"
        folder.mkdir()
        (folder / "f.txt").write_text(str(i))
        command = [sys.executable, "-m", "artisync.cli", "--home", str(home), "log"]
        command += [str(folder), "--project", "p", "--type", "d", "--timeout", "60"]
        clients.append(subprocess.Popen(command, env=_ON, stderr=subprocess.PIPE, text=True))
    for client in clients:
        assert client.wait(timeout=90) == 0, client.stderr.read() if client.stderr else ""
        if client.stderr:
            client.stderr.close()
    launches = (home / "daemon.log").read_text().count("--- started by")
    assert launches == 1


def test_wait_starts_a_new_daemon_when_the_first_one_died(autostart_home: Path) -> None:
    home = autostart_home
    os.environ["ARTISYNC_AUTOSTART"] = "1"
    try:
        with artisync.init(project="p", home=home) as run:
            first = artisync.Artifact("a", "d")
            with first.new_file("x") as f:
                f.write("1")
            run.log_artifact(first)
            first.wait(timeout=60)
            pid = lock_holder(home)
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: lock_holder(home) is None, what="the daemon to die")
            second = artisync.Artifact("b", "d")
            with second.new_file("x") as f:
                f.write("2")
            # The hand-over to the dead daemon's spool starts another: and if that one
            # had died too, wait() would start a third.
            run.log_artifact(second)
            assert second.wait(timeout=60).version == "v0"
        assert lock_holder(home) not in (None, pid)
    finally:
        os.environ["ARTISYNC_AUTOSTART"] = "0"


def test_autostart_off_warns_once_at_log_artifact_naming_the_command(home: Path) -> None:
    with artisync.init(project="p", home=home) as run, pytest.warns(NoDaemonWarning) as warned:
        run.log_artifact(__file__, name="a", type="d")
        run.log_artifact(__file__, name="b", type="d")
    assert len(warned) == 1
    message = str(warned[0].message)
    assert "autostart is off" in message
    assert f"artisync --home {home} daemon" in message
    # It points at the user's line, not at artisync's insides.
    assert warned[0].filename == __file__
    assert lock_holder(home) is None


def test_log_with_autostart_off_says_so_at_once_instead_of_hanging(home: Path, data: Path) -> None:
    started = time.monotonic()
    done = log(home, data, env=_OFF)
    assert time.monotonic() - started < 20
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "Warning" not in done.stderr
    assert "no daemon runs" in done.stderr and "autostart is off" in done.stderr
    assert f"artisync --home {home} daemon" in done.stderr
    assert lock_holder(home) is None
    # Nothing is lost: the queued submission commits once a daemon runs.
    assert list((home / "spool" / "new").iterdir())


def test_a_home_systemd_manages_is_left_to_systemd(home: Path, data: Path) -> None:
    # A daemon systemd started marks its home; a stand-in notify socket is enough.
    env = {**_OFF, "NOTIFY_SOCKET": str(home / "no-such-notify-socket")}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "artisync.cli", "--home", str(home), "daemon"],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: (home / "managed-by-systemd").exists(), what="the marker")
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
    done = log(home, data)
    assert done.returncode == 1
    assert "systemctl start artisync" in done.stderr
    assert lock_holder(home) is None


def test_a_daemon_that_cannot_start_is_reported_with_its_log(home: Path, data: Path) -> None:
    # The daemon refuses this setting at start, every time it is started.
    env = {**_ON, "ARTISYNC_CRASH_AT": "nowhere"}
    done = artisync_command(
        "--home", str(home), "log", str(data), "--project", "p", "--type", "d",
        "--timeout", "3", env=env,
    )  # fmt: skip
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"logs to {home / 'daemon.log'}" in done.stderr
    assert "unknown crash point" in (home / "daemon.log").read_text()


def test_ctrl_c_while_waiting_says_where_the_submission_is(home: Path, data: Path) -> None:
    # A daemon that cannot start: the command waits, and is interrupted by a person.
    env = {**_ON, "ARTISYNC_CRASH_AT": "nowhere"}
    command = [sys.executable, "-m", "artisync.cli", "--home", str(home), "log", str(data)]
    command += ["--project", "p", "--type", "d"]
    waiting = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (home / "daemon.log").exists(), what="a daemon to be started")
    time.sleep(0.5)
    waiting.send_signal(signal.SIGINT)
    _, stderr = waiting.communicate(timeout=30)
    assert waiting.returncode == 130
    assert "Traceback" not in stderr
    assert "stopped waiting for submission" in stderr
    assert f"it waits in {home / 'spool' / 'new'} for a daemon" in stderr
