"""``artisync gc`` from the client side: ask the home's daemon to collect garbage, or,
when none runs, collect here with the daemon's own code (:mod:`artisync.daemon.gc`)."""

from __future__ import annotations

import asyncio

from artisync.config import Config
from artisync.daemon.gc import DEFAULT_GRACE_SECONDS, GcReport, check_grace_seconds, collect
from artisync.daemon.store_choice import open_node_store
from artisync.home_lock import locked_home
from artisync.registry import open_registry
from artisync.sdk.client import DaemonClient
from artisync.spool import Spool
from artisync.store import open_store

__all__ = ["collect_garbage"]


def collect_garbage(
    config: Config, *, dry_run: bool = False, grace_seconds: float | None = None
) -> GcReport:
    """``artisync gc``: ask the home's daemon to collect; without one, collect here
    (holding the home's lock, so no daemon starts meanwhile)."""
    grace = check_grace_seconds(DEFAULT_GRACE_SECONDS if grace_seconds is None else grace_seconds)
    answer = DaemonClient(config).collect_garbage(dry_run=dry_run, grace_seconds=grace)
    if answer is not None:
        return GcReport(**answer)

    async def here() -> GcReport:
        # A store set is collected with this machine's credentials (the server host's
        # home names the team's bucket); with none set, the daemon's own store, and a
        # node writing its server's bucket through grants is told where that bucket's
        # garbage is collected (store/granted.py).
        if config.store_set:
            store = open_store(
                config.store, config.home, upload_concurrency=config.upload_concurrency
            )
        else:
            store = await open_node_store(config)
        registry = open_registry(config.registry, ca_file=config.registry_ca_file)
        try:
            return await collect(
                store, registry, Spool(config.spool), grace_seconds=grace, dry_run=dry_run
            )
        finally:
            registry.close()
            await store.close()

    with locked_home(config.home):
        return asyncio.run(here())
