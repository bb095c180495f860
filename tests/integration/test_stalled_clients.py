"""Clients we give up on (issue 11, row 6): when a client stops reading, the server ends its
stream *and resets its socket*, so that the socket's buffers are given back at once and a
shutdown is not held up by it, whatever uvicorn's flags.

Observed from the kernel: the server's end of a connection we gave up on must leave the
ESTABLISHED state (``/proc/net/tcp``) within moments, rather than stay open, holding what is
buffered for a peer that reads nothing, until the peer or the kernel gives up.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import anyio
import httpx
import pytest

from tests.conftest import new_user
from tests.support.servers import ServerProcess, sqlite_database
from tests.support.streams import (
    TRANSPORTS,
    RawStreamClient,
    connected,
    open_sse,
    poll_until,
    write_notifications,
)

pytestmark = pytest.mark.anyio

BIG = "x" * 2000
SEND_TIMEOUT_S = 2.0
ESTABLISHED = "01"


def tcp_state(server_port: int, client_port: int) -> str | None:
    """The kernel's state of the server's end of the loopback connection to ``client_port``."""
    wanted_local, wanted_remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted_local and fields[2] == wanted_remote:
            return fields[3]
    return None


def client_port(client: RawStreamClient) -> int:
    assert client._socket is not None
    return int(client._socket.getsockname()[1])


async def test_a_client_we_give_up_on_has_its_socket_reset() -> None:
    with sqlite_database() as url:
        env = {
            "DROPSYNC_DATABASE_URL": url,
            "DROPSYNC_CONNECTION_QUEUE_SIZE": "64",
            "DROPSYNC_SEND_TIMEOUT_S": str(SEND_TIMEOUT_S),
        }
        server = ServerProcess(env=env).start()
        stalled: list[RawStreamClient] = []
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
                user = await new_user(http, "stalled")
                stalled = [RawStreamClient(transport, server.url, user.token) for transport in TRANSPORTS]
                ids = {(await client.open()).data["connection_id"] for client in stalled}
                ports = [client_port(client) for client in stalled]
                assert all(tcp_state(server.port, port) == ESTABLISHED for port in ports)
                await write_notifications(server.url, user.headers, 1500, writers=4, message=BIG)
                with anyio.fail_after(SEND_TIMEOUT_S + 15):
                    while True:  # the server gives up on them (queue full, then a send that times out)
                        stats = (await http.get("/ws/stats", headers=user.headers)).json()
                        if not ids & {c["connection_id"] for c in stats["connections"]}:
                            break
                        await anyio.sleep(0.1)
                await poll_until(lambda: all(tcp_state(server.port, port) != ESTABLISHED for port in ports), 3)
        finally:
            for client in stalled:
                client.close()
            server.stop()
    log = server.output()
    for trouble in ("Traceback", "without completing", "ERROR"):
        assert trouble not in log, log[-3000:]


async def test_plain_uvicorn_exits_promptly_on_sigterm_with_clients_that_read_nothing() -> None:
    """Without ``--timeout-graceful-shutdown`` uvicorn waits for every connection to close: a
    client that reads nothing held it up 40 s and more. The healthy stream still gets its farewell."""
    with sqlite_database() as url:
        server = ServerProcess(env={"DROPSYNC_DATABASE_URL": url}, serve_flags=()).start()
        stalled: list[RawStreamClient] = []
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
                user = await new_user(http, "stuck")
            stalled = [RawStreamClient(transport, server.url, user.token) for transport in TRANSPORTS]
            for client in stalled:
                await client.open()
            async with open_sse(server.url, user.token) as healthy:
                await connected(healthy)
                # Enough big events to fill the stalled sockets' buffers (several MB each).
                await write_notifications(server.url, user.headers, 2500, writers=4, message=BIG)
                await healthy.events_until(2500, within=30)
                started = time.monotonic()
                exit_code = await anyio.to_thread.run_sync(server.stop)
                elapsed = time.monotonic() - started
                farewell = (await healthy.rest(within=5))[-1]
        finally:
            for client in stalled:
                client.close()
            server.stop()
    assert (farewell.type, farewell.data["code"]) == ("error", "server_restart")
    assert exit_code in {0, -signal.SIGTERM}, exit_code
    assert elapsed < 8.0, elapsed  # the hub resets what is still open 3 s after the signal
