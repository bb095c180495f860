"""streams.transport: the one reach under ASGI, pinned to the uvicorn this project allows.

Each test runs a real uvicorn (in this process, on a loopback port) with a tiny ASGI app that
looks up its connection's transport, for every HTTP and WebSocket implementation uvicorn offers
here (the deprecated legacy ``websockets`` one aside). If an upgrade of uvicorn moves the
transport, these fail before any stream leaks a socket. ``corked`` is checked on that transport
and on both event loops' own (asyncio's and uvloop's, which uvicorn picks when installed).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any, cast

import anyio
import httpx
import pytest
import uvicorn
import uvloop
import websockets

from streams.transport import Abortable, corked, current_transport, tcp_socket
from tests.support.streams import poll_until

pytestmark = pytest.mark.anyio

HTTP_IMPLEMENTATIONS = ["httptools", "h11"]
WS_IMPLEMENTATIONS = ["auto", "websockets-sansio"]  # "websockets" (legacy) is deprecated; wsproto is not installed


CORK = getattr(socket, "TCP_CORK", None)
needs_cork = pytest.mark.skipif(CORK is None, reason="TCP_CORK is Linux's: elsewhere corked() does nothing")


async def lifespan(receive: Any, send: Any) -> None:
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})


class Probe:
    """An ASGI app that records the transport it finds, then answers (HTTP) or accepts and closes (WS)."""

    def __init__(self) -> None:
        self.found: list[Abortable | None] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        self.found.append(current_transport())
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
        else:
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 1000, "reason": "bye"})


@contextlib.asynccontextmanager
async def serving(app: Probe | Burst, **config: Any) -> AsyncIterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", **config))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await poll_until(lambda: bool(server.started), within=10, every=0.01)
        yield port
    finally:
        server.should_exit = True
        with anyio.fail_after(10):
            await task
        sock.close()


@pytest.mark.parametrize("http", HTTP_IMPLEMENTATIONS)
async def test_an_http_request_finds_its_transport(http: str) -> None:
    probe = Probe()
    async with serving(probe, http=http) as port, httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/")
    assert response.status_code == 200
    assert len(probe.found) == 1
    assert isinstance(probe.found[0], Abortable)


@pytest.mark.parametrize("ws", WS_IMPLEMENTATIONS)
async def test_a_websocket_finds_its_transport(ws: str) -> None:
    probe = Probe()
    async with serving(probe, ws=ws) as port, websockets.connect(f"ws://127.0.0.1:{port}/", open_timeout=5) as client:
        with contextlib.suppress(websockets.ConnectionClosed):
            await asyncio.wait_for(client.recv(), 5)
    assert len(probe.found) == 1
    assert isinstance(probe.found[0], Abortable)


async def test_outside_a_server_task_there_is_no_transport() -> None:
    assert current_transport() is None

    async def elsewhere() -> Abortable | None:
        return current_transport()

    assert await asyncio.create_task(elsewhere()) is None


class Burst:
    """A WebSocket app that sends :data:`Burst.FRAMES` text frames inside ``corked``, noting the
    socket's ``TCP_CORK`` inside the block and after it, then closes."""

    FRAMES = 300

    def __init__(self) -> None:
        self.cork: dict[str, int] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        await receive()
        await send({"type": "websocket.accept"})
        transport = current_transport()
        assert transport is not None
        sock = tcp_socket(transport)
        with corked(sock):
            self.cork["inside"] = sock.getsockopt(socket.IPPROTO_TCP, CORK)
            for number in range(self.FRAMES):
                await send({"type": "websocket.send", "text": f'{{"n":{number}}}'})
        self.cork["after"] = sock.getsockopt(socket.IPPROTO_TCP, CORK)
        await send({"type": "websocket.close", "code": 1000, "reason": "done"})


@needs_cork
@pytest.mark.parametrize("ws", WS_IMPLEMENTATIONS)
async def test_a_corked_burst_arrives_whole_and_in_order_and_the_socket_is_uncorked_after(ws: str) -> None:
    app = Burst()
    received: list[str | bytes] = []
    async with serving(app, ws=ws) as port, websockets.connect(f"ws://127.0.0.1:{port}/", open_timeout=5) as client:
        with contextlib.suppress(websockets.ConnectionClosedOK):
            while True:
                received.append(await asyncio.wait_for(client.recv(), 5))
    assert received == [f'{{"n":{number}}}' for number in range(Burst.FRAMES)]
    assert app.cork == {"inside": 1, "after": 0}


@needs_cork
@pytest.mark.parametrize("loop_factory", [asyncio.new_event_loop, uvloop.new_event_loop], ids=["asyncio", "uvloop"])
def test_corked_sets_and_clears_tcp_cork_on_either_loop_and_ignores_a_closed_socket(loop_factory: Any) -> None:
    async def check() -> None:
        accepted: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()

        async def on_connect(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await accepted.put(writer)

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _, client = await asyncio.open_connection("127.0.0.1", port)
        writer = await asyncio.wait_for(accepted.get(), 5)
        transport = cast(Abortable, writer.transport)
        sock = tcp_socket(transport)
        with corked(sock):
            assert sock.getsockopt(socket.IPPROTO_TCP, CORK) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, CORK) == 0
        assert tcp_socket(None) is None
        with corked(None):  # no socket (another server): the block just runs
            pass
        transport.abort()
        await asyncio.sleep(0)
        with corked(sock):  # closed meanwhile: nothing to cork, nothing raised
            pass
        client.close()
        server.close()
        await server.wait_closed()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(check())
