"""Callers' API keys sealed for the node's daemon, so that no key is in the spool in clear.

On a shared node one daemon commits every user's submissions, each with that user's own
key (DESIGN.md, "Many nodes"). The key travels in the submission, since the spool is how
a client reaches a daemon that is down, and submission files are readable by the
daemon's group. So the client seals the key to the daemon's public key, and only the
daemon, which alone may read the private half, opens it:

- The daemon's key pair is X25519: ``HOME/caller-keys.key`` (the 32 raw bytes of the
  private key, 0600, the daemon's own), made at its first start under a temporary name
  and linked into place, so processes starting together agree on one; and
  ``HOME/caller-keys.pub`` (0644, the public key in base64), written again from the
  private key at every start, so it can never name another key for long.
- Sealing is ECIES: an ephemeral X25519 key agreed with the daemon's, HKDF-SHA256 to an
  AES-256-GCM key, a random nonce. The text is ``1.`` then the URL-safe base64 of the
  ephemeral public key, the nonce and the ciphertext with its tag.
- The associated data names the submission id, the uid of the user who sealed it and the
  server the key is for. So a sealed key copied into another submission, into a file of
  another user's (group members can read each other's submission files), or read by a
  daemon that commits to another server, does not open.
"""

from __future__ import annotations

import base64
import binascii
import os
import pwd
import secrets
import stat
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from artisync import atomic_files
from artisync.errors import SealedKeyError

__all__ = [
    "PRIVATE_NAME",
    "PUBLIC_NAME",
    "KeyOpener",
    "ensure_key_pair",
    "load_opener",
    "read_public_key",
    "seal",
]

PRIVATE_NAME: Final = "caller-keys.key"
"""The daemon's private key, in its home."""
PUBLIC_NAME: Final = "caller-keys.pub"
"""The daemon's public key, in its home: what clients seal with."""

_KEY_BYTES: Final = 32
_NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16
_PREFIX: Final = "1."
_INFO: Final = b"artisync sealed api key v1"
# Far above any API key sealed (an artisync key is 47 characters); bounds what is decoded.
_MAX_SEALED: Final = 4096


def _context(submission_id: str, uid: int, server: str) -> bytes:
    """The associated data: what a sealed key is bound to."""
    return "\n".join((_INFO.decode(), submission_id, str(uid), server.rstrip("/"))).encode()


def _cipher(shared: bytes, ephemeral: bytes, recipient: bytes) -> AESGCM:
    key = HKDF(SHA256(), length=32, salt=None, info=_INFO + ephemeral + recipient).derive(shared)
    return AESGCM(key)


def seal(
    public: X25519PublicKey, api_key: str, *, submission_id: str, uid: int, server: str
) -> str:
    """``api_key`` sealed to the daemon's ``public`` key, for one submission of the user
    ``uid`` to ``server``."""
    ephemeral = X25519PrivateKey.generate()
    mine = ephemeral.public_key().public_bytes_raw()
    cipher = _cipher(ephemeral.exchange(public), mine, public.public_bytes_raw())
    nonce = secrets.token_bytes(_NONCE_BYTES)
    box = cipher.encrypt(nonce, api_key.encode(), _context(submission_id, uid, server))
    return _PREFIX + base64.urlsafe_b64encode(mine + nonce + box).decode()


class KeyOpener:
    """The daemon's half: opens the keys clients sealed to its public key."""

    def __init__(self, private: X25519PrivateKey) -> None:
        self._private = private
        self._public = private.public_key().public_bytes_raw()

    def public_text(self) -> str:
        """The public key as ``caller-keys.pub`` holds it."""
        return base64.b64encode(self._public).decode() + "\n"

    def open(self, sealed: str, *, submission_id: str, uid: int, server: str) -> str:
        """The API key in ``sealed``; :class:`SealedKeyError` when it was not sealed to
        this daemon's key for this submission, user and server (or is not a sealed key)."""
        raw = b""
        if sealed.startswith(_PREFIX) and len(sealed) <= _MAX_SEALED:
            try:
                raw = base64.urlsafe_b64decode(sealed[len(_PREFIX) :].encode())
            except (binascii.Error, ValueError):
                raw = b""
        if len(raw) <= _KEY_BYTES + _NONCE_BYTES + _TAG_BYTES:
            raise SealedKeyError("the sealed API key is not one artisync seals (version 1)")
        ephemeral, nonce = raw[:_KEY_BYTES], raw[_KEY_BYTES : _KEY_BYTES + _NONCE_BYTES]
        try:
            shared = self._private.exchange(X25519PublicKey.from_public_bytes(ephemeral))
            cipher = _cipher(shared, ephemeral, self._public)
            clear = cipher.decrypt(
                nonce, raw[_KEY_BYTES + _NONCE_BYTES :], _context(submission_id, uid, server)
            )
            return clear.decode()
        except (InvalidTag, ValueError):  # ValueError: a low-order point, or not UTF-8
            raise SealedKeyError(
                "the sealed API key does not open with this daemon's key: it was sealed "
                "for another daemon key (the daemon's key file was made again since), or "
                "for another submission, user or server"
            ) from None


def ensure_key_pair(home: Path) -> tuple[KeyOpener, bool]:
    """The daemon's key pair in ``home``, made if there is none; True when this call
    made it. The public file is written again whenever it is missing or differs."""
    made = atomic_files.create_once(
        home / PRIVATE_NAME, X25519PrivateKey.generate().private_bytes_raw()
    )
    opener = load_opener(home)
    _write_public(home / PUBLIC_NAME, opener.public_text())
    return opener, made


def _write_public(path: Path, text: str) -> None:
    try:
        if path.read_text() == text and not path.is_symlink():
            return
    except (OSError, UnicodeDecodeError):
        pass
    atomic_files.replace(path, text.encode(), 0o644)


def load_opener(home: Path) -> KeyOpener:
    """The daemon's private key in ``home``, refused (:class:`SealedKeyError` naming the
    file and what to do) unless it is a regular file of the daemon's user that no one
    else may read."""
    path = home / PRIVATE_NAME
    redo = (
        "remove it and start the daemon again, which makes a new pair (submissions "
        "sealed for the old key are then rejected: log them again)"
    )
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        raise SealedKeyError(f"cannot read the daemon's key {path}: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        data = f.read(_KEY_BYTES + 1)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
        raise SealedKeyError(
            f"the daemon's key {path} is not a regular file of the daemon's user "
            f"({_user(os.geteuid())}): {redo}"
        )
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SealedKeyError(
            f"the daemon's key {path} may be read by others (mode "
            f"{stat.S_IMODE(info.st_mode):o}): whoever read it can open every caller's API "
            f"key in the spool; {redo}, and revoke keys that were sealed with it"
        )
    if len(data) != _KEY_BYTES:
        raise SealedKeyError(f"the daemon's key {path} is not a key artisync made: {redo}")
    return KeyOpener(X25519PrivateKey.from_private_bytes(data))


def read_public_key(home: Path) -> X25519PublicKey | None:
    """The public key of the daemon of ``home``, or None when no daemon has made one.

    :class:`SealedKeyError` when the file is not the home owner's (so not the daemon's:
    sealing with it would give the key to whoever wrote it) or not a key.
    """
    path = home / PUBLIC_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise SealedKeyError(f"cannot read the daemon's public key {path}: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        data = f.read(1024)
    owner = os.stat(home).st_uid
    if not stat.S_ISREG(info.st_mode) or info.st_uid != owner:
        raise SealedKeyError(
            f"{path} is not a file of the home's owner ({_user(owner)}), so not the "
            "daemon's: your API key is not sealed with it. Ask the node's administrator "
            "to remove it and restart the daemon"
        )
    try:
        return X25519PublicKey.from_public_bytes(base64.b64decode(data.strip(), validate=True))
    except (binascii.Error, ValueError):
        raise SealedKeyError(
            f"{path} does not hold a public key; restarting the daemon writes it again"
        ) from None


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"
