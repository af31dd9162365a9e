"""Reading back, through the SDK, a version a daemon committed to a remote store.

The SDK learns the store from the home's ``config.toml``, as a user's training script
on the node would; every blob comes back from the bucket and is checked against its
MD5 as it is placed.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import artisync
from artisync.sdk.artifact import Artifact


def point_sdk_at(home: Path, store_url: str) -> None:
    """Make ``store_url`` the store of ``home`` in its ``config.toml``."""
    config = home / "config.toml"
    settings = tomllib.loads(config.read_text()) if config.exists() else {}
    if settings.get("store") != store_url:
        with open(config, "a") as f:
            f.write(f'store = "{store_url}"\n')


def download_version(home: Path, store_url: str, qualified_name: str, root: Path) -> Artifact:
    """Download ``project/name:vN`` into ``root`` with ``Api().artifact().download()``;
    the artifact, whose ``manifest`` is the committed one."""
    point_sdk_at(home, store_url)
    artifact = artisync.Api(home=home).artifact(qualified_name)
    artifact.download(root)
    return artifact
