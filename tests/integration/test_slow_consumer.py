"""Slow consumers never hold anyone back: while 5,000 big events go out to one user, two clients
that stop reading are closed by the server, a healthy client gets every event without delay, and
the closed ones catch up losslessly when they resume.

Deterministic by construction: the server's per-connection queue is small (64 events), the events
are big (~2 kB) and the stopped clients are raw sockets with a 4 kB receive buffer, so the kernel
buffers hold at most :func:`absorbable_events` of them; past that the connection's queue must
overflow.

Two ways to stop reading:
- *stalled*: never reads again. The server's pending send times out (``send_timeout_s``) and the
  connection is dropped; nothing more can reach the client, not even a close frame.
- *late*: stops reading until its queue has certainly overflowed, then reads again (a phone back
  from a tunnel). The pending send goes through, and the stream ends the documented way: SSE with
  an ``error`` event ``slow_consumer``, WebSocket with close code 1013.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from tests.conftest import new_user
from tests.support.servers import ServerProcess, sqlite_database
from tests.support.streams import (
    TRANSPORTS,
    Message,
    RawStreamClient,
    connected,
    ids,
    open_sse,
    open_stream,
    open_ws,
    write_notifications,
)

pytestmark = pytest.mark.anyio

EVENTS = 5000
QUEUE_SIZE = 64
SEND_TIMEOUT_S = 8.0
BIG = "x" * 2000
EVENT_BYTES = len(BIG) + 100  # the envelope around it, at least


def absorbable_events() -> int:
    """How many events the kernel and uvicorn can buffer for a client that reads nothing: the
    largest TCP send buffer, uvicorn's write buffer (64 kB high-water mark plus one batch of a
    full queue) and the client's receive buffer (4 kB, doubled by the kernel)."""
    try:
        send_buffer_max = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, IndexError, ValueError):
        send_buffer_max = 4 * 1024 * 1024
    return (send_buffer_max + 64 * 1024 + 8 * 1024) // EVENT_BYTES + QUEUE_SIZE


@pytest.fixture(scope="module")
def small_queue_server() -> Iterator[ServerProcess]:
    with sqlite_database() as url:
        env = {
            "DROPSYNC_DATABASE_URL": url,
            "DROPSYNC_CONNECTION_QUEUE_SIZE": str(QUEUE_SIZE),
            "DROPSYNC_SEND_TIMEOUT_S": str(SEND_TIMEOUT_S),
        }
        process = ServerProcess(env=env).start()
        yield process
        process.stop()


def gapless_from_one(messages: list[Message]) -> int:
    """Check that the recorded events are 1, 2, … n, nothing missing or repeated; returns n."""
    received = ids(messages)
    assert received == list(range(1, len(received) + 1)), received[:5]
    return len(received)


async def test_stopped_clients_are_closed_without_holding_back_a_healthy_one(
    small_queue_server: ServerProcess,
) -> None:
    # Past this many events the stopped clients' queues have certainly overflowed.
    overflowed_by = absorbable_events() + QUEUE_SIZE + 100
    assert overflowed_by < EVENTS - 500, f"this machine buffers too much for {EVENTS} events"
    url = small_queue_server.url
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        user = await new_user(http, "fanout")
        stalled = {transport: RawStreamClient(transport, url, user.token) for transport in TRANSPORTS}
        late = {transport: RawStreamClient(transport, url, user.token) for transport in TRANSPORTS}
        raw_clients = [*stalled.values(), *late.values()]
        try:
            stalled_ids = {(await client.open()).data["connection_id"] for client in stalled.values()}
            late_ids = {(await client.open()).data["connection_id"] for client in late.values()}
            async with open_sse(url, user.token) as healthy_sse, open_ws(url, user.token) as healthy_ws:
                healthy = (healthy_sse, healthy_ws)
                healthy_ids = {(await connected(stream)).data["connection_id"] for stream in healthy}

                async def late_clients_read_again() -> None:
                    await healthy_sse.wait_until(lambda: len(healthy_sse.messages) > overflowed_by, within=60)
                    async with anyio.create_task_group() as readers:
                        for client in late.values():
                            readers.start_soon(client.drain, 30)

                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(late_clients_read_again)
                    writes = await write_notifications(url, user.headers, EVENTS, writers=6, message=BIG)

                # The healthy clients got everything, in order, on time.
                for stream in healthy:
                    received = await stream.events_until(EVENTS, within=30)
                    assert ids(received) == list(range(1, EVENTS + 1)), stream.transport
                    assert [m.type for m in stream.messages if m.id is None] == ["connected"]
                    assert not stream.ended
                    assert received[-1].received_at - writes.last_answer < 1.0, stream.transport
                    lags = writes.lags(received)
                    # A publish that waited on a stopped client would show here as a send timeout.
                    assert statistics.median(lags) < 0.25, (stream.transport, statistics.median(lags))
                    assert max(lags) < 2.0, (stream.transport, max(lags))

                # The late clients were told, the documented way, once they read again.
                for transport, client in late.items():
                    assert client.eof
                    last = gapless_from_one(client.messages)
                    assert last < EVENTS, f"the late {transport} client was never cut off"
                    if transport == "sse":
                        assert client.complete, "the SSE body should end properly"
                        assert client.messages[-1].type == "error"
                        assert client.messages[-1].data["code"] == "slow_consumer"
                    else:
                        assert client.close_code == 1013

                # The server gives up on the stalled ones within its send timeout, and only on them.
                with anyio.fail_after(SEND_TIMEOUT_S + 10):
                    while True:
                        stats = (await http.get("/ws/stats", headers=user.headers)).json()
                        open_now = {c["connection_id"] for c in stats["connections"]}
                        assert healthy_ids <= open_now
                        assert not open_now & late_ids
                        if not open_now & stalled_ids:
                            break
                        await anyio.sleep(0.05)

            for transport, client in stalled.items():
                await client.drain(within=20)
                assert client.eof
                last = gapless_from_one(client.messages)
                assert last < EVENTS, f"the stalled {transport} client was never cut off"
                # A peer that reads nothing cannot be told why; a close frame may still be waiting
                # in the server's buffer when it reads again, and then it says "try again later".
                assert client.close_code in {None, 1013}

            # Each catches up from its last id: everything after it, in order, once.
            for client in raw_clients:
                last = ids(client.messages)[-1]
                params = {"last_event_id": last}
                async with open_stream(client.transport, url, user.token, params=params) as resumed:
                    assert (await connected(resumed)).data["last_event_id"] == last
                    caught_up = await resumed.take(EVENTS - last, within=30)
                    assert ids(caught_up) == list(range(last + 1, EVENTS + 1)), client.transport
                    assert all(m.type == "system_notification" for m in caught_up)
        finally:
            for client in raw_clients:
                client.close()
        log = small_queue_server.output()
        assert "Traceback" not in log, log[-3000:]
