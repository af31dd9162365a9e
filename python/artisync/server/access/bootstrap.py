"""The first admin: a server whose database has no user yet makes one at start.

The user ``admin`` (a site admin) gets the key the ``bootstrap_key`` setting gives (a
deployment's own secret), or else a new one, written to a 0600 file beside the server
secret, never to the log: the log says where the file is. With that key the operator
makes the team's users and keys (``artisync server admin …`` works on the database
directly too), then deletes the file. Two processes starting together make one admin:
the second finds the name taken and leaves it be.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from artisync.errors import InvalidInputError
from artisync.logs import get_logger
from artisync.server.access.directory import Directory

__all__ = ["BOOTSTRAP_USER", "bootstrap_admin"]

log = get_logger("artisync.server")

BOOTSTRAP_USER: Final = "admin"


def bootstrap_admin(directory: Directory, key_file: Path, key: str = "") -> bool:
    """Make the first admin when there is no user, with ``key`` if given (a deployment's
    own secret), else a new key written to ``key_file``; True if made."""
    if directory.users():
        return False
    try:
        directory.create_user(BOOTSTRAP_USER, site_admin=True)
    except InvalidInputError:  # another process made it first
        return False
    if key:
        directory.create_key(BOOTSTRAP_USER, key)
        log.info("bootstrap_admin", user=BOOTSTRAP_USER, key="the bootstrap_key setting")
        return True
    key = directory.create_key(BOOTSTRAP_USER)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    log.info("bootstrap_admin", user=BOOTSTRAP_USER, key_file=str(key_file))
    return True
