"""Graceful shutdown with open streams: on SIGTERM every stream ends cleanly (SSE with a last
``error`` envelope ``server_restart`` under the event name ``stream_error``, WebSocket with the same
``error`` frame and close 1012) and the process exits in seconds, not after uvicorn's
graceful-shutdown timeout; a stream opened meanwhile gets ``200`` and the farewell, not an HTTP
error; clients that read nothing cannot hold the exit up, whatever uvicorn's flags."""

from __future__ import annotations

import contextlib
import signal
import time
import warnings
from collections.abc import Iterator

import anyio
import httpx
import msgspec
import pytest

from tests.conftest import new_user
from tests.support.servers import InProcessServer, ServerProcess, sqlite_database
from tests.support.streams import (
    TRANSPORTS,
    RawStreamClient,
    SseStream,
    WsStream,
    connected,
    ids,
    notify,
    open_sse,
    open_ws,
    write_notifications,
)

pytestmark = pytest.mark.anyio

STREAMS_PER_KIND = 8
GRACEFUL_TIMEOUT_S = 5  # ServerProcess runs uvicorn with --timeout-graceful-shutdown 5


async def test_sigterm_ends_every_open_stream_and_the_server_exits_promptly() -> None:
    with sqlite_database() as url:
        server = ServerProcess(env={"DROPSYNC_DATABASE_URL": url}).start()
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
                users = [await new_user(http, "shutdown") for _ in range(2)]
                async with contextlib.AsyncExitStack() as stack:
                    sse: list[SseStream] = []
                    ws: list[WsStream] = []
                    for number in range(STREAMS_PER_KIND):
                        user = users[number % 2]
                        # One of each filters by type: connection events must come through anyway.
                        params = {"types": "seller_added"} if number == 0 else None
                        sse.append(await stack.enter_async_context(open_sse(server.url, user.token, params=params)))
                        ws.append(await stack.enter_async_context(open_ws(server.url, user.token, params=params)))
                    for stream in (*sse, *ws):
                        await connected(stream)
                    for user in users:
                        await notify(http, user.headers)
                    for stream in (*sse[1:], *ws[1:]):
                        assert ids([await stream.next()]) == [1]

                    started = time.monotonic()
                    exit_code = await anyio.to_thread.run_sync(server.stop)
                    elapsed = time.monotonic() - started

                    for stream in sse:
                        rest = await stream.rest()
                        assert [m.type for m in rest] == ["error"], [m.text for m in rest]
                        assert rest[0].data["code"] == "server_restart"
                        assert rest[0].data["message"]
                        assert stream.failure is None, "the SSE body should end properly"
                    for stream in ws:
                        assert await stream.wait_closed() == 1012
                        assert stream.close_reason == "service restart"
                        farewells = [m for m in stream.messages[1:] if m.id is None]
                        assert [(m.type, m.data["code"]) for m in farewells] == [("error", "server_restart")]
                        assert farewells[0].data["message"]
        finally:
            server.stop()
    assert elapsed < 3.0, f"shutdown took {elapsed:.1f}s with streams open"
    assert exit_code in {0, -signal.SIGTERM}, exit_code  # uvicorn re-raises the signal it handled
    log = server.output()
    for trouble in ("Traceback", "without completing", "timeout graceful shutdown exceeded", "ERROR"):
        assert trouble not in log, log[-3000:]
    assert f"shutting down {2 * STREAMS_PER_KIND} open streams" in log


async def test_sigterm_with_no_stream_open_exits_at_once() -> None:
    with sqlite_database() as url:
        server = ServerProcess(env={"DROPSYNC_DATABASE_URL": url}).start()
        started = time.monotonic()
        exit_code = await anyio.to_thread.run_sync(server.stop)
        assert time.monotonic() - started < 2.0
        assert exit_code in {0, -signal.SIGTERM}


async def test_a_stalled_client_cannot_hold_up_shutdown_past_the_graceful_timeout() -> None:
    """A client that reads nothing cannot be told goodbye, and uvicorn waits for its unflushed
    socket: the process still exits once ``--timeout-graceful-shutdown`` runs out, and the healthy
    streams get their farewell at once, not after it."""
    with sqlite_database() as url:
        server = ServerProcess(env={"DROPSYNC_DATABASE_URL": url}).start()
        stalled: list[RawStreamClient] = []
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
                user = await new_user(http, "stuck")
            stalled = [RawStreamClient(transport, server.url, user.token) for transport in TRANSPORTS]
            for client in stalled:
                await client.open()
            async with open_sse(server.url, user.token) as healthy:
                await connected(healthy)
                # Enough big events to fill the stalled sockets' buffers (~4 MB each).
                await write_notifications(server.url, user.headers, 2500, writers=4, message="x" * 2000)
                await healthy.events_until(2500, within=30)
                started = time.monotonic()

                async def stop() -> None:
                    await anyio.to_thread.run_sync(server.stop)

                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(stop)
                    farewell = (await healthy.rest(within=5))[-1]
                    told_after = time.monotonic() - started
                elapsed = time.monotonic() - started
        finally:
            server.stop()
            for client in stalled:
                client.close()
    assert (farewell.type, farewell.data["code"]) == ("error", "server_restart")
    assert told_after < 2.0, told_after
    assert elapsed < GRACEFUL_TIMEOUT_S + 3, elapsed


@pytest.fixture
def in_process_server() -> Iterator[InProcessServer]:
    with warnings.catch_warnings():
        # Importing the app builds it: Litestar warns about the app's inferred dependencies.
        warnings.simplefilter("ignore", DeprecationWarning)
        from app.config import load_settings  # noqa: PLC0415
        from app.main import create_app  # noqa: PLC0415

        settings = load_settings(environ={}, demo=False, rate_limit=False, sse_retry_ms=700)
    with sqlite_database() as url:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            app = create_app(msgspec.structs.replace(settings, database_url=url))
        server = InProcessServer(app).start()
        try:
            yield server
        finally:
            server.stop()


async def test_a_stream_opened_during_shutdown_gets_200_and_the_farewell(in_process_server: InProcessServer) -> None:
    """EventSource gives up for good on any status but 200 (a 503 here used to stop browsers for
    good): a stream that arrives while the server shuts down is told to come back, in SSE."""
    server = in_process_server
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        user = await new_user(http, "late")
        hub = server.app.state.hub
        server.call(hub.shutdown)  # uvicorn itself keeps serving: the window a SIGTERM opens
        async with open_sse(server.url, user.token, headers={"Last-Event-ID": "0"}) as stream:
            assert stream.response.status_code == 200
            assert stream.response.headers["content-type"].startswith("text/event-stream")
            rest = await stream.rest(within=5)
            assert stream.failure is None, "the body should end properly"
        assert [(m.type, m.data["code"]) for m in rest] == [("error", "server_restart")]
        assert bytes(stream.raw).startswith(b"retry: 700\nevent: stream_error\ndata: ")
        assert stream.parser.last_event_id is None  # no id: the client resumes from its own last id
        async with open_ws(server.url, user.token) as ws:
            assert await ws.wait_closed() == 1012
            assert ws.close_reason == "service restart"
            assert [(m.type, m.data.get("code")) for m in ws.messages] == [
                ("connected", None),
                ("error", "server_restart"),
            ]
