"""A TCP proxy on 127.0.0.1 that loses answers: it forwards each HTTP request to the
server, reads the server's whole answer, and for the requests it is told to, closes the
client's connection instead of passing the answer on. The client then cannot know
whether its request took effect: what a lost answer on a real network looks like.

One request per client connection (it answers with ``Connection: close``), which every
HTTP/1.1 client handles by opening a new connection for the next request.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from servers import free_port

__all__ = ["lossy_proxy"]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    # Our own connection to the server ends with this request.
    head = head.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
    return head + body


@contextmanager
def lossy_proxy(
    target_port: int, lose: Callable[[bytes], bool]
) -> Iterator[tuple[str, list[bytes]]]:
    """Serve on a free port, forwarding to ``127.0.0.1:target_port``; ``lose(request)``
    decides whether the answer to ``request`` is lost. Yields the proxy's URL and the
    list of request lines whose answers were lost."""
    port = free_port()
    lost: list[bytes] = []
    loop = asyncio.new_event_loop()
    started = threading.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await _read_request(reader)
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
            up_writer.write(request)
            await up_writer.drain()
            answer = await up_reader.read()  # the server closes after one answer
            up_writer.close()
            if lose(request):
                lost.append(request.split(b"\r\n", 1)[0])
            else:
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    stop: asyncio.Event | None = None

    async def serve() -> None:
        nonlocal stop
        stop = asyncio.Event()
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        started.set()
        async with server:
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield f"http://127.0.0.1:{port}", lost
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
