"""The server secret: the key API keys are hashed under, kept in a file of its own.

Every process of one server, and the admin commands, must read the same secret, or a
key made by one is unknown to another: deployments copy the file to each host (or
mount it), as they would a TLS key. The first start of a server that finds no file
makes one (32 random bytes, mode 0600, linked into place whole, so two processes starting
together agree on one). Losing it invalidates every key; nothing else.
"""

from __future__ import annotations

import secrets
import stat
from pathlib import Path
from typing import Final

from artisync import atomic_files
from artisync.errors import InvalidInputError

__all__ = ["SECRET_BYTES", "load_secret", "make_secret"]

SECRET_BYTES: Final = 32


def make_secret(path: Path) -> bool:
    """Make the secret file if there is none; True when this call made it (whole and
    exclusively: :func:`~artisync.atomic_files.create_once`)."""
    return atomic_files.create_once(path, secrets.token_bytes(SECRET_BYTES))


def load_secret(path: Path) -> bytes:
    """The secret in ``path``; :class:`InvalidInputError` naming the file when it is
    missing, short, or readable by others than its owner."""
    try:
        info = path.stat()
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidInputError(
            f"no server secret at {path}: start `artisync server` once to make one, or copy "
            "the one the server's other processes use (secret_file setting)"
        ) from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read the server secret {path}: {exc}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InvalidInputError(
            f"the server secret {path} is readable by others (mode "
            f"{stat.S_IMODE(info.st_mode):o}); make it private: chmod 600 {path}"
        )
    if len(data) < SECRET_BYTES:
        raise InvalidInputError(
            f"the server secret {path} holds {len(data)} bytes, fewer than {SECRET_BYTES}: "
            "it is not one this server made; restore the right file"
        )
    return data
