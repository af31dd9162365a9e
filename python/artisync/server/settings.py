"""``artisync server``'s settings: one dataclass, built in one place.

Sources, each overriding the one before, as for the daemon's ``Config``: defaults, the
``[server]`` table of a TOML file (``--config``, ``ARTISYNC_SERVER_CONFIG``, else
``$ARTISYNC_HOME/config.toml`` when it exists), ``ARTISYNC_SERVER_*`` environment
variables, then the command's flags. The server keeps no state of its own, so these are
the whole of what one process needs; several processes with the same settings serve one
database side by side.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Final

from artisync.config import default_home
from artisync.errors import InvalidInputError
from artisync.store.part_sizes import (
    DEFAULT_PART_SIZE,
    DEFAULT_THRESHOLD,
    part_size_problem,
    threshold_problem,
)

__all__ = ["DEFAULT_LISTEN", "ServerSettings", "parse_listen"]

DEFAULT_LISTEN: Final = "127.0.0.1:8080"
"""Where the server listens unless told: loopback only, so nothing is exposed by
accident; a deployment names its interface (``--listen 0.0.0.0:8080``)."""

_ENV_PREFIX: Final = "ARTISYNC_SERVER_"
_CONFIG_VARIABLE: Final = "ARTISYNC_SERVER_CONFIG"
_TABLE: Final = "server"
_PATHS: Final = frozenset({"tls_cert", "tls_key", "secret_file"})


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """What one ``artisync server`` process is told."""

    # The registry database: a postgresql:// URL or a libpq connection string.
    db: str = ""
    # HOST:PORT to listen on ([::1]:8080 for IPv6).
    listen: str = DEFAULT_LISTEN
    # TLS: a PEM certificate chain and its private key (both, or neither).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Largest request body taken, in bytes: a NewVersion is a few KiB; the bound keeps
    # a hostile or broken client from making the server buffer gigabytes (413).
    max_body_bytes: int = 4 << 20
    # Database connections this process holds at most; also the number of registry
    # calls it runs at once (each call holds one connection for its transaction).
    db_pool_size: int = 10
    # Seconds a request waits for a free database connection before it is answered
    # 503: a client learns quickly that the database is unreachable.
    db_timeout: int = 5
    # Commits one transaction takes at most (group commit: the commits that arrive while
    # one batch is in the database go in the next); 1 commits each alone.
    commit_batch: int = 64
    # Seconds SIGTERM gives requests in flight before the process exits anyway.
    shutdown_deadline: int = 20
    # The team's store (s3://…, gs://…, or a file:/// path): when set, a commit is
    # taken only once its manifest and every blob it lists are there ("": no check).
    store: str = ""
    # Uploads to that store, when it is a bucket: blobs of at least multipart_threshold
    # bytes go up in parts of part_size bytes (S3; every node cuts a blob alike, as the
    # server says in GET /api/v1/store). Rules: store/part_sizes.py.
    multipart_threshold: int = DEFAULT_THRESHOLD
    part_size: int = DEFAULT_PART_SIZE
    # The secret API keys are hashed under (HMAC-SHA256): a file every server process
    # and the admin commands read; made (0600) at first start when missing. Default:
    # server-secret in ARTISYNC_HOME.
    secret_file: Path | None = None
    # The first admin's API key, for a deployment that sets it from its own secrets
    # (at least 32 characters); empty: one is made and written to bootstrap-admin.key
    # beside the secret. Used only when the database has no user yet.
    bootstrap_key: str = ""

    @classmethod
    def load(
        cls, config_file: Path | None = None, *, home: Path | None = None, **flags: Any
    ) -> ServerSettings:
        """Defaults, then the config file's ``[server]`` table, then the environment,
        then ``flags`` (None values ignored, so argparse results pass as they are).

        The config file is ``config_file``, else ``$ARTISYNC_SERVER_CONFIG``, else
        ``config.toml`` in ``home`` (default: the ``ARTISYNC_HOME`` a node would use)
        if it exists.

        Raises :class:`InvalidInputError` naming the setting, its source and what would
        do, for a value a setting does not take or a database that is not given.
        """
        settings = cls()
        path = (
            config_file or _env_path(_CONFIG_VARIABLE) or (home or default_home()) / "config.toml"
        )
        explicit = config_file is not None or _CONFIG_VARIABLE in os.environ
        if explicit or path.exists():
            settings = settings._with(_table(path), f"{path} [{_TABLE}]")
        from_env = {
            f.name: os.environ[_variable(f.name)]
            for f in fields(cls)
            if _variable(f.name) in os.environ
        }
        settings = settings._with(from_env, "the environment", from_env=True)
        settings = settings._with({k: v for k, v in flags.items() if v is not None}, "the flags")
        if settings.secret_file is None:
            settings = replace(settings, secret_file=(home or default_home()) / "server-secret")
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse settings that cannot work together, saying what to give instead."""
        if not self.db:
            raise InvalidInputError(
                "no registry database given: pass --db postgresql://user@host/dbname, set "
                f"{_variable('db')}, or db = '...' in the [{_TABLE}] table of config.toml"
            )
        parse_listen(self.listen)
        for name, problem in (
            ("multipart_threshold", threshold_problem(self.multipart_threshold)),
            ("part_size", part_size_problem(self.part_size)),
        ):
            if problem is not None:
                raise InvalidInputError(f"{name} = {getattr(self, name)}: {problem}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise InvalidInputError(
                "TLS needs both a certificate and its key: give --tls-cert and --tls-key "
                "together (or neither, for plain HTTP behind a TLS proxy)"
            )

    def _with(
        self, values: dict[str, Any], source: str, *, from_env: bool = False
    ) -> ServerSettings:
        known = {f.name: f for f in fields(self)}
        changes: dict[str, Any] = {}
        for key, value in values.items():
            if key not in known:
                raise InvalidInputError(
                    f"{source}: unknown setting {key!r}; known: {', '.join(known)}"
                )
            name = _variable(key) if from_env else key
            default = known[key].default
            if key in _PATHS:  # set empty: no TLS
                changes[key] = Path(str(value)).expanduser() if value != "" else None
            elif isinstance(default, int):
                changes[key] = _positive(value, f"{source}: {name}={value!r}", name, default)
            else:
                changes[key] = str(value)
        return replace(self, **changes)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6addr]:PORT`` for IPv6) as a host and a port, or
    :class:`InvalidInputError` saying what the listen address should look like."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInputError(
            f"listen address {text!r} is not HOST:PORT; write e.g. {DEFAULT_LISTEN}, "
            "0.0.0.0:8080 for every interface, or [::1]:8080"
        )
    return host, int(port)


def _variable(field: str) -> str:
    return _ENV_PREFIX + field.upper()


def _env_path(variable: str) -> Path | None:
    value = os.environ.get(variable)
    return Path(value).expanduser() if value else None


def _table(path: Path) -> dict[str, Any]:
    try:
        document = tomllib.loads(path.read_text())
    except OSError as exc:
        raise InvalidInputError(f"cannot read the server's config file {path}: {exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{path}: not valid TOML: {exc}") from None
    table = document.get(_TABLE, {})
    if not isinstance(table, dict):
        raise InvalidInputError(f"{path}: {_TABLE} must be a table ([{_TABLE}]), not a value")
    return table


def _positive(value: Any, where: str, name: str, default: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if isinstance(value, bool) or number < 1:
        raise InvalidInputError(f"{where} is not a whole number >= 1; write e.g. {name}={default}")
    return number
