"""The API key a client sends to ``artisync server``: where it comes from.

In order: a key the process gave (``Api(api_key=...)``, :func:`use_key`), then
``ARTISYNC_API_KEY``, then ``WANDB_API_KEY`` (so a cluster set up for W&B
works unchanged), then the key ``artisync login`` saved for that server in the user's
config directory (``$XDG_CONFIG_HOME/artisync/keys``, default ``~/.config``), a 0600
file of ``URL KEY`` lines, as ``wandb login`` keeps keys per host in ``~/.netrc``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Final

from artisync import atomic_files

__all__ = ["ENV_KEYS", "api_key_for", "keys_file", "save_key", "use_key"]

ENV_KEYS: Final = ("ARTISYNC_API_KEY", "WANDB_API_KEY")
"""The environment variables a key is read from, first found wins."""


_given: str | None = None


def use_key(key: str) -> None:
    """Send ``key`` from this process from now on, before any other (W&B's
    ``Api(api_key=...)``)."""
    global _given
    _given = key


def keys_file() -> Path:
    """Where ``artisync login`` keeps keys."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "artisync" / "keys"


def _normal(url: str) -> str:
    return url.rstrip("/")


def api_key_for(url: str) -> str | None:
    """The key to send to the server at ``url``, or None when none is set."""
    if _given is not None:
        return _given
    for variable in ENV_KEYS:
        if value := os.environ.get(variable, "").strip():
            return value
    try:
        lines = keys_file().read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        where, _, key = line.strip().partition(" ")
        if _normal(where) == _normal(url) and key.strip():
            return key.strip()
    return None


def save_key(url: str, key: str) -> Path:
    """Keep ``key`` for ``url`` (replacing the one kept before); the file stays 0600."""
    path = keys_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    kept = []
    with contextlib.suppress(FileNotFoundError):
        kept = [
            line
            for line in path.read_text().splitlines()
            if line.strip() and _normal(line.split(" ", 1)[0]) != _normal(url)
        ]
    text = "\n".join([*kept, f"{_normal(url)} {key}"]) + "\n"
    atomic_files.replace(path, text.encode(), 0o600)
    return path
