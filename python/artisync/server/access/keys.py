"""API keys: how one looks, how it is made, and the only form the server keeps of it.

A key is ``ask_`` and 43 characters of URL-safe base64: 256 random bits with a prefix a
person (and a secret scanner) recognises. The server keeps ``HMAC-SHA256(secret, key)``
and the key's first :data:`PREFIX_LENGTH` characters, never the key: a copy of the
database lets no one in, and the prefix is enough to tell keys apart and revoke one. A
fast keyed hash, not bcrypt or scrypt, because the key is random (nothing to guess) and
is checked on every request (DESIGN.md: a slow hash made MLflow's auth 40-90x slower).

Clients send the key as ``Authorization: Bearer KEY``, or as W&B's client does, HTTP
Basic with the user ``api`` and the key as password, so a ``WANDB_API_KEY`` flow works.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from typing import Final

from artisync.errors import InvalidInputError

__all__ = [
    "KEY_PREFIX",
    "PREFIX_LENGTH",
    "check_chosen",
    "digest",
    "new_key",
    "prefix_of",
    "read_authorization",
]

KEY_PREFIX: Final = "ask_"
"""What every artisync key starts with."""

PREFIX_LENGTH: Final = 12
"""Characters of a key kept in clear (``ask_`` and 8 more: 48 bits, unique in practice
and useless to guess the rest from)."""

_KEY_BYTES: Final = 32
_MAX_KEY_LENGTH: Final = 200  # any longer value is no key of ours; refuse before hashing
_MIN_CHOSEN: Final = 32


def new_key() -> str:
    """A fresh key: :data:`KEY_PREFIX` and 256 random bits."""
    return KEY_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(_KEY_BYTES)).decode().rstrip(
        "="
    )


def check_chosen(key: str) -> str:
    """``key`` if an operator may choose it as a key (the bootstrap admin's), else
    :class:`InvalidInputError`: as long as a made one's random part, one printable word."""
    if len(key) < _MIN_CHOSEN or len(key) > _MAX_KEY_LENGTH or not key.isprintable() or " " in key:
        raise InvalidInputError(
            f"a chosen API key must be {_MIN_CHOSEN} to {_MAX_KEY_LENGTH} printable "
            'characters without spaces; make one with `python -c "import secrets; '
            'print(secrets.token_urlsafe(32))"`'
        )
    return key


def digest(secret: bytes, key: str) -> bytes:
    """What the server stores and looks a key up by: ``HMAC-SHA256(secret, key)``."""
    return hmac.new(secret, key.encode(), hashlib.sha256).digest()


def prefix_of(key: str) -> str:
    """The part of a key shown in listings and accepted by ``revoke-key``."""
    return key[:PREFIX_LENGTH]


def read_authorization(header: str | None) -> str | None:
    """The key an ``Authorization`` header carries (``Bearer KEY``, or Basic with user
    ``api`` as W&B's client sends it), or None when it carries none that could be one."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        key = value
    elif scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, _, key = decoded.partition(":")
        if user != "api":
            return None
    else:
        return None
    if not key or len(key) > _MAX_KEY_LENGTH or not key.isprintable():
        return None
    return key
