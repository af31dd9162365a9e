"""Which store a node writes to: its own, or its registry server's bucket through grants.

With the embedded registry, the node's ``store`` setting, as ever. With a registry
server (``registry = "https://…"``):

- **no store set** (the home's default directory, not declared shared), or the store
  set to the very bucket the server serves: when the server hands out presigned
  transfers (``GET /api/v1/store``), the node writes that bucket through them
  (:class:`~artisync.store.granted.GrantedStore`), with no bucket credentials. The
  server refuses a blob the caller has not uploaded through its grants, so a node with
  credentials of its own goes through them too;
- **a bucket** (another one, or the server serves none): opened with the node's
  credentials, as before;
- **a directory** of this node (not ``store_shared``): refused, since other nodes could
  not read its versions; so is no store set when the server serves no bucket.

The server's answer is remembered in the home (``server-store.json``), so a daemon that
restarts while the server is down writes where it wrote before; with no answer at all,
the daemon waits for one (its clients spool meanwhile).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Final

from artisync import atomic_files
from artisync.config import Config
from artisync.errors import InvalidInputError, RegistryUnavailableError
from artisync.logs import get_logger
from artisync.store import Store, open_store
from artisync.store.open import on_this_node, open_granted
from artisync.store.served import ServedStore, ask_server, server_transport

__all__ = ["REMEMBERED", "check_store_reaches_every_node", "open_node_store"]

log = get_logger("artisync.daemon")

REMEMBERED: Final = "server-store.json"
"""The file in the home that keeps the server's last answer."""

_FIRST_WAIT: Final = 1.0
_LONGEST_WAIT: Final = 30.0


async def open_node_store(config: Config) -> Store:
    """The store this node's daemon writes to (module docstring); raises
    :class:`InvalidInputError` for a store other nodes could not read."""
    server = config.registry_server
    if server is not None and (not config.store_set or not on_this_node(config.store)):
        served = await _served(config, server)
        if served.presigned and (not config.store_set or served.serves(config.store)):
            log.info("store_through_grants", server=server, store=served.url)
            return open_granted(
                served,
                config.home,
                ca_file=_ca(config),
                upload_concurrency=config.upload_concurrency,
                part_size=config.part_size,
            )
    check_store_reaches_every_node(config)
    return open_store(
        config.store,
        config.home,
        upload_concurrency=config.upload_concurrency,
        multipart_threshold=config.multipart_threshold,
        part_size=config.part_size,
    )


def check_store_reaches_every_node(config: Config) -> None:
    """With a registry server, refuse a store other nodes cannot read: a version the
    server lists must be readable wherever the server is (the server's own bucket is
    taken before this, where it serves one through grants)."""
    server = config.registry_server
    if server is None or config.store_shared or not on_this_node(config.store):
        return
    if not config.store_set:
        raise InvalidInputError(
            f"the registry is the server {server}, which every node reads, but it serves "
            "no bucket through grants (start it with --store s3://BUCKET/PREFIX or "
            "gs://…: nodes then need no bucket credentials), and this node sets no store "
            f"of its own, so its versions would go to {config.store}, a directory of this "
            "node: other nodes could not read its versions. Start the server with the "
            'team\'s bucket, or set store = "s3://BUCKET/PREFIX" (or "gs://…") here, or a '
            "filesystem every node mounts at the same path, declared with store_shared = true"
        )
    raise InvalidInputError(
        f"the registry is the server {server}, which every node reads, but the store "
        f"{config.store} is a directory of this node: other nodes could not read its "
        "versions. Leave store unset to write the server's bucket through its grants (no "
        'bucket credentials needed), use a bucket (store = "s3://BUCKET/PREFIX" or '
        '"gs://…"), or a filesystem every node mounts at the same path, declared with '
        "store_shared = true"
    )


async def _served(config: Config, server: str) -> ServedStore:
    """What ``server`` serves: asked now, else remembered, else waited for."""
    transport = server_transport(server, _ca(config))
    wait = _FIRST_WAIT
    try:
        while True:
            try:
                served = await asyncio.to_thread(ask_server, transport)
            except RegistryUnavailableError as e:
                remembered = await asyncio.to_thread(_remembered, config.home, server)
                if remembered is not None:
                    log.warning("server_unreachable", error=str(e), then="using its last answer")
                    return remembered
                log.warning("server_unreachable", error=str(e), then="waiting", delay=wait)
                await asyncio.sleep(wait)
                wait = min(wait * 2, _LONGEST_WAIT)
                continue
            await asyncio.to_thread(_remember, config.home, served)
            return served
    finally:
        transport.close()


def _remembered(home: Path, server: str) -> ServedStore | None:
    """The server's last answer kept in ``home``, if it is this server's."""
    try:
        kept = json.loads((home / REMEMBERED).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(kept, dict) or kept.get("server") != server:
        return None
    try:
        return ServedStore.from_json(server, kept)
    except InvalidInputError:
        return None


def _remember(home: Path, served: ServedStore) -> None:
    """Keep the server's answer in ``home`` (atomic; a failure only costs the memory)."""
    path = home / REMEMBERED
    try:
        atomic_files.replace(path, json.dumps(served.to_json()).encode(), 0o644)
    except OSError as e:
        log.warning("server_answer_not_kept", path=path, error=str(e))


def _ca(config: Config) -> str | None:
    return None if config.registry_ca_file is None else str(config.registry_ca_file)
