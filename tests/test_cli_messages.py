"""What a person sees from the ``artisync`` command when they get something wrong, or
log the same content twice: one or two lines that say what to do, never a traceback."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from artisync.cli.main import _parser
from daemon_harness import DaemonProcess


@pytest.fixture
def daemon(home: Path) -> Iterator[DaemonProcess]:
    process = DaemonProcess(home)
    yield process
    process.kill()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "artisync.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def log_folder(daemon: DaemonProcess, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``artisync log`` of the folder ``data`` (one file) as ``p/data``, through a
    daemon started first if it is not running yet."""
    if daemon.proc is None:
        daemon.start()
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "a.txt").write_text("a")
    return run("log", str(data), "--project", "p", "--type", "d", "--home", str(daemon.home))


def _no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2, done.stderr


def test_every_option_of_every_command_has_help() -> None:
    parser = _parser()
    subcommands = next(
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    ).choices
    for name, command in {"artisync": parser, **subcommands}.items():
        for action in command._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"


def test_global_options_work_after_the_subcommand_too(home: Path) -> None:
    before = run("--home", str(home), "ls")
    after = run("ls", "--home", str(home))
    assert before.returncode == after.returncode == 0, after.stderr
    assert before.stdout == after.stdout == "no projects yet\n"


def test_an_empty_project_is_refused_before_anything_is_logged(home: Path, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    done = run("log", str(tmp_path / "f.txt"), "--project", "", "--type", "d", "--home", str(home))
    assert done.returncode == 2
    assert "Invalid project name '': must not be empty" in done.stderr
    _no_traceback(done)


def test_a_folder_name_that_is_no_artifact_name_says_to_give_one(
    home: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "my data"
    folder.mkdir()
    done = run("log", str(folder), "--project", "p", "--type", "d", "--home", str(home))
    assert done.returncode == 2
    assert "Invalid artifact name 'my data'" in done.stderr
    assert "give one with --name NAME" in done.stderr
    _no_traceback(done)


def test_a_project_nothing_was_logged_to_is_not_found_like_an_artifact(home: Path) -> None:
    project = run("--home", str(home), "ls", "nosuchproj")
    artifact = run("--home", str(home), "ls", "nosuchproj/data")
    assert project.returncode == artifact.returncode == 2
    assert "project 'local/nosuchproj' has no artifacts yet" in project.stderr
    _no_traceback(project)


def test_a_file_system_error_is_one_line_and_debug_shows_the_traceback(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    home = str(daemon.home)
    assert log_folder(daemon, tmp_path).returncode == 0
    target = tmp_path / "afile"
    target.write_text("in the way")
    done = run("get", "p/data:latest", "-o", str(target), "--home", home)
    assert done.returncode == 1
    assert str(target) in done.stderr and "--debug" in done.stderr
    _no_traceback(done)
    debug = run("get", "p/data:latest", "-o", str(target), "--home", home, "--debug")
    assert "Traceback" in debug.stderr


def test_logging_identical_content_says_no_new_version_was_made(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    first = log_folder(daemon, tmp_path)
    again = log_folder(daemon, tmp_path)
    assert first.returncode == again.returncode == 0, again.stderr
    assert first.stdout.startswith("p/data:v0 (") and "identical" not in first.stdout
    assert again.stdout.startswith("p/data:v0 (")
    assert "identical to v0, no new version" in again.stdout


def test_stop_ends_the_homes_daemon_and_says_so(daemon: DaemonProcess) -> None:
    daemon.start()
    assert daemon.proc is not None
    pid = daemon.proc.pid
    done = run("stop", "--home", str(daemon.home))
    assert done.returncode == 0, done.stderr
    assert f"stopped the artisync daemon (pid {pid})" in done.stdout
    assert daemon.wait_exit() == 0, "a clean stop, as SIGTERM gives"
    assert not daemon.config.socket.exists(), "a clean stop takes its socket file along"
    again = run("stop", "--home", str(daemon.home))
    assert again.returncode == 0 and "nothing to stop" in again.stdout
