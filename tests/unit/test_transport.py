"""streams.transport: the one reach under ASGI, pinned to the uvicorn this project allows.

Each test runs a real uvicorn (in this process, on a loopback port) with a tiny ASGI app that
looks up its connection's transport, for every HTTP and WebSocket implementation uvicorn offers
here (the deprecated legacy ``websockets`` one aside). If an upgrade of uvicorn moves the
transport, these fail before any stream leaks a socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
import websockets

from streams.transport import Abortable, current_transport
from tests.support.streams import poll_until

pytestmark = pytest.mark.anyio

HTTP_IMPLEMENTATIONS = ["httptools", "h11"]
WS_IMPLEMENTATIONS = ["auto", "websockets-sansio"]  # "websockets" (legacy) is deprecated; wsproto is not installed


class Probe:
    """An ASGI app that records the transport it finds, then answers (HTTP) or accepts and closes (WS)."""

    def __init__(self) -> None:
        self.found: list[Abortable | None] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
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
async def serving(app: Probe, **config: Any) -> AsyncIterator[int]:
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
