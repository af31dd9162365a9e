"""``artisync login``: keep an API key for a server, as ``wandb login`` does.

The key is checked with the server (``GET /api/v1/viewer``) before it is kept, so a
typo is caught here and not at the first commit; it goes to the user's own 0600 file
(``artisync.credentials``), one line per server. ``ARTISYNC_API_KEY`` or
``WANDB_API_KEY`` in the environment still win over it.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from artisync.config import Config
from artisync.credentials import ENV_KEYS, save_key
from artisync.errors import InvalidInputError
from artisync.registry.http import HttpRegistry
from artisync.views.terminal import printable

__all__ = ["add_command"]


def _login(args: argparse.Namespace) -> int:
    host = args.host or Config.load(args.home).registry
    if not isinstance(host, str):
        raise InvalidInputError(
            "no server to log in to: this home's registry is the embedded one; pass "
            '--host https://HOST:PORT, or set registry = "https://…" in config.toml'
        )
    key = args.key
    if key is None:
        prompt = f"API key for {host} (from `artisync server admin create-key`): "
        key = getpass.getpass(prompt) if sys.stdin.isatty() else sys.stdin.readline()
    key = key.strip()
    if not key:
        raise InvalidInputError("no API key given: pass it, or paste it when asked")
    with HttpRegistry(host, api_key=key) as server:
        viewer = server.viewer()
    path = save_key(host, key)
    teams = ", ".join(f"{t} ({r})" for t, r in viewer["teams"].items()) or "none"
    print(f"logged in to {printable(host)} as {printable(viewer['user'])}; teams: {teams}")
    print(f"key kept in {path}")
    if shadowing := [v for v in ENV_KEYS if os.environ.get(v)]:
        print(f"note: {shadowing[0]} is set and is used instead of this key")
    return 0


def add_command(commands: Any) -> None:
    """Add ``login`` to the ``artisync`` parser."""
    login = commands.add_parser(
        "login", help="keep an API key for the registry server (as wandb login does)"
    )
    login.add_argument("key", nargs="?", help="the key (asked for when left out)")
    login.add_argument(
        "--host", help="the server, https://HOST:PORT (default: this home's registry setting)"
    )
    login.set_defaults(run=_login)
