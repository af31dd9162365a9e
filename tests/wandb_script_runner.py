"""Run W&B-style scripts as their users do: ``python script.py`` in a working directory
of its own, against a real daemon, with nothing but the environment a cluster sets.

Used by test_wandb_examples.py (W&B's documentation examples, tests/wandb_examples/)
and test_wandb_scripts.py (scripts written the way W&B's quickstarts write them,
tests/wandb_scripts/). Each script says ``import artisync as wandb`` and nothing else
of artisync; the test gives it the home (``ARTISYNC_HOME``) and the entity
(``WANDB_ENTITY``, as a cluster would), then reads what the registry holds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon_harness import DaemonProcess, clean_env, short_home

# The entity every script runs under: W&B's "entity" placeholders become this one.
ENTITY = "ml-team"

SCRIPT_DEADLINE = 90.0


def script_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a script: this one without artisync's or W&B's settings
    (the test's ``AWS_*`` and ``STORAGE_EMULATOR_HOST`` stay), the daemon's home, the
    entity, and ``extra``."""
    env = {k: v for k, v in clean_env().items() if not k.startswith("WANDB_")}
    env["ARTISYNC_HOME"] = str(home)
    env["WANDB_ENTITY"] = ENTITY
    env.update(extra)
    return env


def run_script(
    script: Path, home: Path, cwd: Path, check: bool = True, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    """``python script`` in ``cwd``; with ``check`` a failure is an AssertionError that
    shows the script's output (its first error is the last line of stderr)."""
    cwd.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        env=script_env(home, **extra_env),
        capture_output=True,
        text=True,
        timeout=SCRIPT_DEADLINE,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"{script.name} exited with {done.returncode}: {first_error(done)}\n"
            f"--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"
        )
    return done


def first_error(done: subprocess.CompletedProcess[str]) -> str:
    """The line a traceback ends with: what went wrong, in one line."""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"exit code {done.returncode}, no stderr"


def printed_json(done: subprocess.CompletedProcess[str]) -> Any:
    """The last line of the script's stdout, as JSON (read-only examples print what
    they found on their last line, for the test to check)."""
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines, f"the script printed nothing:\n{done.stderr}"
    return json.loads(lines[-1])


def write_files(root: Path, files: dict[str, bytes | str]) -> None:
    """Create ``files`` (relative path -> content) under ``root``."""
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        path.write_bytes(data)


def started_daemon() -> Iterator[DaemonProcess]:
    """A daemon on a fresh home, killed at the end (a fixture's body). Start it after
    ``s3`` where a script logs S3 references: it takes the ``AWS_*`` environment it
    starts with."""
    for home in short_home():
        process = DaemonProcess(home)
        process.start()
        try:
            yield process
        finally:
            process.kill()


def set_entity(monkeypatch: pytest.MonkeyPatch) -> str:
    """``WANDB_ENTITY`` in this process too, so the test's own reads and set-ups name
    the scripts' entity; W&B's other variables are hidden."""
    for name in list(os.environ):
        if name.startswith("WANDB_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("WANDB_ENTITY", ENTITY)
    return ENTITY


__all__ = [
    "ENTITY",
    "first_error",
    "printed_json",
    "run_script",
    "script_env",
    "set_entity",
    "started_daemon",
    "write_files",
]
