"""artisync's configuration: one dataclass, built in one place.

Sources, each overriding the one before: defaults (everything under ``ARTISYNC_HOME``),
``$ARTISYNC_HOME/config.toml``, environment variables, then command-line flags. The SDK
and the daemon both call :meth:`Config.load`, so they agree on where the spool and the
socket are.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from artisync.errors import InvalidInputError
from artisync.names import validate_entity
from artisync.store.part_sizes import (
    DEFAULT_PART_SIZE,
    DEFAULT_THRESHOLD,
    part_size_problem,
    threshold_problem,
)

__all__ = ["Config", "default_home"]

# Environment variables and the fields they set.
_ENV = {
    "ARTISYNC_SPOOL": "spool",
    "ARTISYNC_STORE": "store",
    "ARTISYNC_SOCKET": "socket",
    "ARTISYNC_REGISTRY": "registry",
    "ARTISYNC_CACHE_DIR": "cache_dir",
    "ARTISYNC_CACHE_MAX_BYTES": "cache_max_bytes",
    "ARTISYNC_UPLOAD_CONCURRENCY": "upload_concurrency",
    "ARTISYNC_REFERENCE_DEADLINE": "reference_deadline",
    "ARTISYNC_CHUNK_ENTRIES": "chunk_entries",
    "ARTISYNC_MULTIPART_THRESHOLD": "multipart_threshold",
    "ARTISYNC_PART_SIZE": "part_size",
    "ARTISYNC_AUTOSTART": "autostart",
    "ARTISYNC_REGISTRY_CA_FILE": "registry_ca_file",
    "ARTISYNC_STORE_SHARED": "store_shared",
    # W&B's variable first, so that ARTISYNC_ENTITY wins when both are set.
    "WANDB_ENTITY": "default_entity",
    "ARTISYNC_ENTITY": "default_entity",
}
_VARIABLE = {field: var for var, field in _ENV.items()}


def _at_least_one(value: int) -> str | None:
    return None if value >= 1 else "it must be at least 1"


# What an integer setting must also be, beyond a whole number; the rest need >= 1.
_RULES: dict[str, Callable[[int], str | None]] = {
    "multipart_threshold": threshold_problem,
    "part_size": part_size_problem,
}

# Path settings whose default is None (decided where they are used).
_OPTIONAL_PATHS = frozenset({"cache_dir", "registry_ca_file"})

# What a registry setting may name besides a SQLite file: the shared server.
_SERVER_SCHEMES = frozenset({"http", "https"})


def default_home() -> Path:
    """``$ARTISYNC_HOME``, else ``$XDG_DATA_HOME/artisync`` (``~/.local/share/artisync``)."""
    if home := os.environ.get("ARTISYNC_HOME"):
        return Path(home)
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(data) / "artisync"


@dataclass(frozen=True, slots=True)
class Config:
    """Where everything lives and how hard the daemon works."""

    home: Path
    spool: Path
    store: str
    socket: Path
    # The embedded SQLite file, or the URL of an `artisync server` every node shares
    # (https://host:port): see registry_server.
    registry: Path | str
    # Submissions whose hash/upload stages run at once (commits are always one at a time).
    pipeline_concurrency: int = 4
    # Seconds between the daemon's garbage collections, and how old an unreferenced
    # blob must be before one removes it (an upload may be about to refer to it).
    gc_interval: int = 3600
    gc_grace: int = 3600
    # Seconds between the daemon's looks for versions whose TTL has passed.
    expire_interval: int = 60
    # Seconds SIGTERM waits for in-flight submissions before checkpointing them (they
    # resume at the next start); below the unit's TimeoutStopSec.
    shutdown_deadline: int = 20
    # Requests in flight to a remote (S3, GCS) store, across all submissions.
    upload_concurrency: int = 16
    # The download cache of blobs from remote stores: its size bound.
    cache_max_bytes: int = 10 << 30
    # Where that cache is (None: the home's owner uses HOME/cache, anyone else a cache
    # of their own, $XDG_CACHE_HOME/artisync: see download/cache.py, cache_directory).
    cache_dir: Path | None = None
    # Seconds a reference (s3://, gs://, http(s)://) may stay unreachable, retried with
    # backoff, before its version is rejected: what a user named must not wait forever.
    reference_deadline: int = 900
    # HOST:PORT where the daemon also serves GET /metrics over TCP ("": socket only).
    metrics_addr: str = ""
    # The socket's defences against callers that hold connections without working them
    # (daemon/connection_guard.py). Seconds a connection has to send a whole request
    # line and headers, from connecting or from its last answer: our clients send theirs
    # in one write, so only a stalled or hostile caller needs more.
    header_timeout: int = 10
    # Seconds a request has to send its body once its headers are in; ours are a few
    # hundred bytes of JSON.
    body_timeout: int = 30
    # Connections one user (the peer's uid) may hold open: a training script holds one
    # at a time, a node's dozens of scripts and `artisync status` a few dozen.
    connections_per_user: int = 64
    # Connections in all, whoever holds them; capped further at half the daemon's
    # descriptor limit, so its own files (hashing, the store, the registry) still open.
    max_connections: int = 1024
    # Items per chunk of a version: each chunk is hashed, stored and reduced to compact
    # entries before the next is made, so the daemon's memory stays bounded whatever
    # the number of files. A typical version (10,000 files) is one chunk and keeps
    # every overlap; tests make versions of many chunks with a small value.
    chunk_entries: int = 32768
    # Uploads to a remote store: blobs of at least multipart_threshold bytes go up in
    # parts of part_size bytes (S3 multipart, GCS resumable; rules in
    # store/part_sizes.py).
    multipart_threshold: int = DEFAULT_THRESHOLD
    part_size: int = DEFAULT_PART_SIZE
    # Whether a client that finds no daemon answering starts one (artisync/launch.py).
    autostart: bool = True
    # The CA bundle that signed a registry server's certificate (None: the system's).
    registry_ca_file: Path | None = None
    # A file:// store every node mounts at the same path, declared so: with a server
    # registry, a store only this node reaches is refused (other nodes could not read).
    store_shared: bool = False
    # The entity (team or user) of a run or path that names none. None: with a server,
    # the caller's own (their user name, as W&B's default entity); embedded, `local`.
    default_entity: str | None = None

    @property
    def store_set(self) -> bool:
        """Whether a store was chosen: anything but the home's default directory, or
        that directory declared shared. A node with a registry server and no store set
        writes the server's bucket through its grants (daemon/store_choice.py)."""
        return self.store_shared or self.store != str(self.home / "store")

    @property
    def registry_server(self) -> str | None:
        """The registry server's URL, or None when the registry is the embedded file."""
        return self.registry if isinstance(self.registry, str) else None

    @classmethod
    def defaults(cls, home: Path) -> Config:
        """Everything under ``home``: the embedded defaults."""
        return cls(
            home=home,
            spool=home / "spool",
            store=str(home / "store"),
            socket=home / "daemon.sock",
            registry=home / "registry.db",
        )

    @classmethod
    def load(cls, home: Path | str | None = None, **flags: Any) -> Config:
        """Defaults, then ``config.toml``, then the environment, then ``flags``.

        ``flags`` with a value of ``None`` are ignored, so argparse results pass as is.
        Raises :class:`InvalidInputError` for a value a setting does not accept, naming
        the setting, the value, where it came from and what would do.
        """
        root = Path(home) if home is not None else default_home()
        config = cls.defaults(root)
        toml_path = root / "config.toml"
        if toml_path.exists():
            try:
                from_file = tomllib.loads(toml_path.read_text())
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
                raise InvalidInputError(f"{toml_path}: not valid TOML: {e}") from None
            # The [server] table is `artisync server`'s (server/settings.py), not a node's.
            from_file.pop("server", None)
            config = config._with(from_file, str(toml_path))
        from_env = {field: os.environ[var] for var, field in _ENV.items() if var in os.environ}
        config = config._with(from_env, "the environment", from_env=True)
        return config._with({k: v for k, v in flags.items() if v is not None}, "the flags")

    def _with(self, values: dict[str, Any], source: str, *, from_env: bool = False) -> Config:
        known = {f.name: f for f in fields(self) if f.name != "home"}
        changes: dict[str, Any] = {}
        for key, value in values.items():
            if key not in known:
                raise InvalidInputError(
                    f"{source}: unknown setting {key!r}; known: {', '.join(known)}"
                )
            current = getattr(self, key)
            if key == "registry":
                name = _VARIABLE[key] if from_env else key
                changes[key] = _registry_location(value, f"{source}: {name}={value!r}")
            elif key == "default_entity":
                name = _VARIABLE[key] if from_env else key
                changes[key] = _entity(value, f"{source}: {name}={value!r}")
            elif key in _OPTIONAL_PATHS and value == "":
                changes[key] = None  # set empty: back to the default
            elif isinstance(current, Path) or key in _OPTIONAL_PATHS:
                changes[key] = Path(value).expanduser()
            elif isinstance(current, bool):  # before int: a bool is an int
                name = _VARIABLE[key] if from_env else key
                changes[key] = _boolean(value, f"{source}: {name}={value!r}")
            elif isinstance(current, int):
                # Named as the source spells it: the variable, or the config.toml key.
                name = _VARIABLE[key] if from_env else key
                example = (
                    f"{name}={known[key].default}" if from_env else f"{key} = {known[key].default}"
                )
                changes[key] = _integer(key, value, f"{source}: {name}={value!r}", example)
            else:
                changes[key] = str(value)
        return replace(self, **changes)


def _registry_location(value: Any, where: str) -> Path | str:
    """A registry setting as a path (the embedded SQLite file) or a server URL."""
    text = str(value).strip()
    if "://" not in text:
        return Path(text).expanduser()
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme in _SERVER_SCHEMES and parts.netloc:
        return text.rstrip("/")
    if scheme == "file" and parts.path:
        return Path(unquote(parts.path))
    if scheme in {"postgresql", "postgres"}:
        raise InvalidInputError(
            f"{where}: nodes reach a shared registry through `artisync server`, not its "
            'database: write registry = "https://HOST:PORT" (the postgresql:// address is '
            "the server's --db)"
        )
    raise InvalidInputError(
        f'{where}: not a registry; give a SQLite file path or the server\'s "https://HOST:PORT"'
    )


def _entity(value: Any, where: str) -> str | None:
    """A default entity (empty: none), checked as entity names are."""
    text = str(value).strip()
    if not text:
        return None
    try:
        return validate_entity(text)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc}") from None


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _boolean(value: Any, where: str) -> bool:
    """``value`` (a TOML boolean, or the text of a variable) as a bool, else an error."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise InvalidInputError(f"{where} is not a yes or no; write 1 or 0 (true or false)")


def _integer(key: str, value: Any, where: str, example: str) -> int:
    """``value`` as a whole number that setting ``key`` accepts, else an error that
    starts with ``where`` (source, name and value) and says what would do."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{where} is not a whole number; write e.g. {example}") from None
    if problem := _RULES.get(key, _at_least_one)(number):
        raise InvalidInputError(f"{where}: {problem}")
    return number
