"""Fixtures shared by the test files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon_harness import DaemonProcess, short_home

pytest_plugins = [
    "servers",
    "postgres_server",
    "registry_backends",
    "server_process",
    "granted_team",
]

# Tests start the daemons they want themselves: a client that finds none must not start
# one of its own (tests of that set ARTISYNC_AUTOSTART=1 where they need it).
os.environ["ARTISYNC_AUTOSTART"] = "0"

# Every `artisync server` a test starts makes its first admin with this key, and every
# client sends it (tests of keys and rights set their own): the contract and node tests
# act as a site admin, whom access control lets do everything.
TEST_API_KEY = "ask_test-site-admin-key-0123456789abcdefghijklmnop"
os.environ["ARTISYNC_SERVER_BOOTSTRAP_KEY"] = TEST_API_KEY
os.environ["ARTISYNC_API_KEY"] = TEST_API_KEY

# W&B's variables change what artisync.init does (project, mode, run id…): tests that
# want them set them; none leaks in from the machine that runs the suite.
for _name in [n for n in os.environ if n.startswith("WANDB_")]:
    del os.environ[_name]


@pytest.fixture(autouse=True)
def _no_run_left_active() -> Iterator[None]:
    """A test that fails with a run active leaves it to nobody: W&B's ``init`` returns
    an active run, so the next test would get this one."""
    yield
    import artisync.sdk.top_level

    if (run := artisync.sdk.top_level.current_run()) is not None:
        run._abandon()


@pytest.fixture
def home() -> Iterator[Path]:
    """A fresh ARTISYNC_HOME under a short /tmp path (Unix socket paths stay short)."""
    yield from short_home()


@pytest.fixture
def daemon(home: Path) -> Iterator[DaemonProcess]:
    """A daemon on the test's home with its defaults (a test file may define its own)."""
    d = DaemonProcess(home)
    d.start()
    yield d
    d.kill()
