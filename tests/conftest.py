"""Fixtures shared by the test files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon_harness import short_home

pytest_plugins = ["servers", "registry_backends"]


@pytest.fixture
def home() -> Iterator[Path]:
    """A fresh ARTISYNC_HOME under a short /tmp path (Unix socket paths stay short)."""
    yield from short_home()
