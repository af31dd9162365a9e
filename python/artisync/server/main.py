"""One ``artisync server`` process: open the registry, serve the app, stop cleanly.

The lifecycle is uvicorn's: start (open the database, migrating it under its advisory
lock; listen), run until SIGTERM or SIGINT, then stop accepting connections, give the
requests in flight up to ``shutdown_deadline`` seconds, and close the pool. Signal
handlers are installed and removed here and nowhere else.
"""

from __future__ import annotations

import asyncio
import signal
import ssl
from pathlib import Path

from aiohttp import web

from artisync.config import default_home
from artisync.errors import InvalidInputError
from artisync.logs import get_logger
from artisync.server.access.bootstrap import bootstrap_admin
from artisync.server.access.directory import Directory
from artisync.server.access.gate import Gate
from artisync.server.access.secret import load_secret, make_secret
from artisync.server.app import create_app
from artisync.server.blob_index import BlobIndex
from artisync.server.content import ContentCheck
from artisync.server.settings import ServerSettings, parse_listen
from artisync.store import open_store
from artisync.store.grants_for import grants_for

__all__ = ["serve", "tls_context"]

log = get_logger("artisync.server")

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server TLS context from a PEM certificate chain and its key, or
    :class:`InvalidInputError` naming the file that would not load."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise InvalidInputError(
            f"cannot load the TLS certificate {cert} with key {key}: {exc}; give a PEM "
            "certificate chain (--tls-cert) and the private key that matches it (--tls-key)"
        ) from None
    return context


async def serve(settings: ServerSettings) -> None:
    """Serve the registry in ``settings.db`` on ``settings.listen`` until a stop signal.

    Raises :class:`~artisync.errors.RegistryError` when the database cannot be opened
    (unreachable, or newer than this artisync), before anything listens.
    """
    # Imported here: psycopg is the server extra's; `artisync --help` must not need it.
    from artisync.registry.postgres import PostgresRegistry

    host, port = parse_listen(settings.listen)
    context = None
    if settings.tls_cert is not None and settings.tls_key is not None:
        context = tls_context(settings.tls_cert, settings.tls_key)
    registry = await asyncio.to_thread(
        PostgresRegistry,
        settings.db,
        max_size=settings.db_pool_size,
        timeout=settings.db_timeout,
        reconnect_timeout=settings.db_timeout,
    )
    store = None
    gate = None
    index = None
    try:
        gate = await asyncio.to_thread(_open_access, settings)
        content = None
        if settings.store:
            store = open_store(
                settings.store,
                default_home(),
                multipart_threshold=settings.multipart_threshold,
                part_size=settings.part_size,
            )
            if grants_for(store) is not None:
                # A bucket: nodes reach it through this server's grants, each blob
                # proven by its caller (server/content.py).
                index = await asyncio.to_thread(
                    BlobIndex, settings.db, store.url, timeout=settings.db_timeout
                )
            content = ContentCheck(store, index)
        app = create_app(
            registry,
            gate,
            max_body_bytes=settings.max_body_bytes,
            workers=settings.db_pool_size,
            commit_batch=settings.commit_batch,
            content=content,
        )
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=settings.shutdown_deadline,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, ssl_context=context)
            try:
                await site.start()
            except OSError as exc:
                raise InvalidInputError(
                    f"cannot listen on {settings.listen}: {exc.strerror or exc}; is another "
                    "server using that port? choose another with --listen HOST:PORT"
                ) from None
            scheme = "https" if context else "http"
            log.info("serving", url=f"{scheme}://{settings.listen}", database=registry.where)
            await _until_stopped()
            log.info("stopping", deadline=settings.shutdown_deadline)
        finally:
            # Stops listening, waits for requests in flight, then the app's cleanup
            # (its worker threads).
            await runner.cleanup()
    finally:
        if store is not None:
            await store.close()
        if index is not None:
            index.close()
        if gate is not None:
            gate.close()
        registry.close()
        log.info("stopped")


def _open_access(settings: ServerSettings) -> Gate:
    """The secret (made at first start), the first admin (made when there is no user),
    and the gate every request's key is checked at."""
    assert settings.secret_file is not None, "ServerSettings.load sets it"
    if make_secret(settings.secret_file):
        log.info("server_secret_made", path=str(settings.secret_file))
    secret = load_secret(settings.secret_file)
    directory = Directory(settings.db, secret)
    key_file = settings.secret_file.with_name("bootstrap-admin.key")
    bootstrap_admin(directory, key_file, settings.bootstrap_key)
    return Gate(directory, secret, timeout=settings.db_timeout)


async def _until_stopped() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in _STOP_SIGNALS:
            loop.remove_signal_handler(signum)
