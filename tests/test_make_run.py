"""`make run` as a newcomer meets it: the example's results (the daemon's log goes to a
file), the command that stops the daemon, and nothing left behind by Ctrl-C or SIGTERM.

Make is run with ``-o install-run``: the test environment has artisync installed already,
and reinstalling it would rebuild the Rust core under the running suite.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from artisync.home_lock import lock_holder
from daemon_harness import wait_for

_REPO = Path(__file__).resolve().parents[1]
_STOP_HINT = "from another terminal:"


class MakeRun:
    """``make run`` in its own process group, its output in a file."""

    def __init__(self, home: Path, out: Path) -> None:
        self.home, self.out = home, out
        env = {**os.environ, "ARTISYNC_HOME": str(home)}
        command = ["make", "--no-print-directory", "-o", "install-run", "run"]
        command.append(f"PYTHON={sys.executable}")
        with open(out, "wb") as sink:
            self.proc = subprocess.Popen(
                command, cwd=_REPO, env=env, stdout=sink, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def text(self) -> str:
        return self.out.read_text()

    def wait_for_line(self, needle: str) -> str:
        def shown() -> bool:
            assert self.proc.poll() is None or needle in self.text(), self.text()
            return needle in self.text()

        wait_for(shown, deadline=120, what=f"{needle!r} in make run's output")
        return self.text()

    def nothing_left(self) -> bool:
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return True
        return False

    def end(self) -> None:
        if not self.nothing_left():
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


@pytest.fixture
def make_run(home: Path, tmp_path: Path) -> Iterator[MakeRun]:
    run = MakeRun(home, tmp_path / "make-run.out")
    yield run
    run.end()


def _example_leftovers() -> set[Path]:
    return set(Path(os.environ.get("TMPDIR", "/tmp")).glob("artisync-example-*"))


def test_make_run_shows_the_results_and_a_stop_command_that_works(
    home: Path, tmp_path: Path
) -> None:
    before = _example_leftovers()
    make_run = MakeRun(home, tmp_path / "make-run.out")
    try:
        _results_and_stop(make_run)
    finally:
        make_run.end()
    assert _example_leftovers() <= before, "the example left its files behind"


def _results_and_stop(make_run: MakeRun) -> None:
    text = make_run.wait_for_line(_STOP_HINT)
    results = [
        line for line in text.splitlines() if re.match(r"example/\w+:v\d+  [0-9a-f]{32}$", line)
    ]
    assert len(results) == 6, text
    assert "evaluating model:" in text and "logged by run" in text
    assert f"its log: {make_run.home / 'daemon.log'}" in text
    # The daemon's own lines went to its log, not between the results.
    assert '"event"' not in text and "ready" not in text, text
    assert "ready" in (make_run.home / "daemon.log").read_text()
    stop_command = text.split(_STOP_HINT, 1)[1].strip().splitlines()[0]
    stopped = subprocess.run(shlex.split(stop_command), capture_output=True, text=True)
    assert stopped.returncode == 0, stopped.stderr
    assert make_run.proc.wait(timeout=60) == 0
    wait_for(make_run.nothing_left, what="every process of make run to end")
    assert lock_holder(make_run.home) is None
    assert not (make_run.home / "daemon.sock").exists()


@pytest.mark.parametrize(
    "how", ["SIGTERM to make", "Ctrl-C to the group", "SIGTERM while the example runs"]
)
def test_make_run_stopped_by_a_signal_leaves_no_process_behind(make_run: MakeRun, how: str) -> None:
    if how == "SIGTERM while the example runs":
        make_run.wait_for_line("example/pets:v0")
    else:
        make_run.wait_for_line(_STOP_HINT)
    if how == "Ctrl-C to the group":
        os.killpg(make_run.proc.pid, signal.SIGINT)
    else:
        os.kill(make_run.proc.pid, signal.SIGTERM)
    make_run.proc.wait(timeout=60)
    wait_for(make_run.nothing_left, what="every process of make run to end")
    assert lock_holder(make_run.home) is None


def test_make_run_beside_a_running_daemon_logs_through_it_and_leaves_it(
    make_run: MakeRun, home: Path, tmp_path: Path
) -> None:
    make_run.wait_for_line(_STOP_HINT)
    daemon = lock_holder(home)
    second = MakeRun(home, tmp_path / "second.out")
    try:
        assert second.proc.wait(timeout=120) == 0, second.text()
        text = second.text()
        assert "was already running" in text and "Error" not in text
        assert lock_holder(home) == daemon
    finally:
        second.end()


def test_make_with_a_python_too_old_says_which_and_what_to_do(tmp_path: Path) -> None:
    old = tmp_path / "python3.10"
    old.write_text('#!/bin/sh\n[ "$1" = --version ] && echo "Python 3.10.12"\nexit 1\n')
    old.chmod(0o755)
    venv = tmp_path / "venv"
    done = subprocess.run(
        ["make", "--no-print-directory", "venv", f"BOOTSTRAP={old}", f"VENV={venv}"],
        cwd=_REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "needs Python 3.11 or newer" in done.stderr and "Python 3.10.12" in done.stderr
    assert "BOOTSTRAP=" in done.stderr
    assert not venv.exists()
