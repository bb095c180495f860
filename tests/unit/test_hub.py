"""streams.hub: the registry of open connections, what /ws/stats shows, and shutdown."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from streams.broker import MemoryBroker, SubscriptionClosed
from streams.endings import Ending
from streams.feed import StreamRequest
from streams.hub import Connection, Hub, StreamSettings
from tests.support.event_log import FakeLog
from tests.support.streams import poll_until

pytestmark = pytest.mark.anyio

FROM_NOW = StreamRequest(last_event_id=None, types=None)


async def authenticate(token: str | None) -> int:
    if token is None:
        raise PermissionError("missing access token")
    return int(token)


def make_hub() -> tuple[Hub, MemoryBroker]:
    broker = MemoryBroker()
    return Hub(broker, FakeLog(), authenticate, StreamSettings()), broker


async def ends_with(connection: Connection) -> Ending:
    """The reason the connection's feed ended (it must end within a second)."""
    with anyio.fail_after(1), pytest.raises(SubscriptionClosed) as closed:
        async for _ in connection.feed.batches():
            pass
    return closed.value.reason


async def test_stats_show_my_connections_and_only_numbers_about_others() -> None:
    hub, _ = make_hub()
    mine = [hub.open(1, "sse", FROM_NOW), hub.open(1, "ws", FROM_NOW)]
    hub.open(2, "ws", FROM_NOW)
    hub.open(3, "ws", FROM_NOW)
    for connection in mine:
        await connection.feed.open()
    mine[1].last_event_id = 12
    stats = await hub.stats(1)
    assert [c["connection_id"] for c in stats["connections"]] == [c.id for c in mine]
    assert [c["transport"] for c in stats["connections"]] == ["sse", "ws"]
    assert [c["last_event_id"] for c in stats["connections"]] == [None, 12]
    assert stats["totals"] == {"connections": 4, "by_transport": {"sse": 1, "ws": 3}, "users_online": 3}
    assert (await hub.stats(4))["connections"] == []


async def test_connection_ids_are_unique() -> None:
    hub, _ = make_hub()
    ids = {hub.open(1, "sse", FROM_NOW).id for _ in range(100)}
    assert len(ids) == 100


async def test_close_forgets_the_connection_and_unsubscribes() -> None:
    hub, broker = make_hub()
    connection = hub.open(1, "ws", FROM_NOW)
    await connection.feed.open()
    hub.close(connection)
    hub.close(connection)
    assert hub.connections == {}
    assert broker.local.subscription_count == 0


async def test_shutdown_ends_every_open_feed() -> None:
    hub, _ = make_hub()
    connections = [hub.open(user, "sse", FROM_NOW) for user in (1, 2)]
    for connection in connections:
        await connection.feed.open()
    hub.shutdown()
    hub.shutdown()  # idempotent
    assert hub.shutting_down.is_set()
    for connection in connections:
        assert await ends_with(connection) is Ending.SERVER_RESTART


async def test_a_connection_opened_before_shutdown_but_subscribed_after_ends_too() -> None:
    """The SSE body subscribes when the response starts, after the handler registered the
    connection: a SIGTERM in between must not leave that stream open forever."""
    hub, _ = make_hub()
    connection = hub.open(1, "sse", FROM_NOW)
    hub.shutdown()
    await connection.feed.open()
    assert await ends_with(connection) is Ending.SERVER_RESTART


async def test_a_connection_opened_after_shutdown_ends_at_once() -> None:
    hub, _ = make_hub()
    hub.shutdown()
    connection = hub.open(1, "ws", FROM_NOW)
    await connection.feed.open()
    assert await ends_with(connection) is Ending.SERVER_RESTART


class FakeSocket:
    """A transport that records being reset."""

    def __init__(self) -> None:
        self.aborted = 0

    def abort(self) -> None:
        self.aborted += 1

    def is_closing(self) -> bool:
        return self.aborted > 0

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default  # no socket under it: nothing to cork


async def test_giving_up_on_a_connection_resets_its_socket_and_ends_its_feed() -> None:
    hub, _ = make_hub()
    socket = FakeSocket()
    connection = hub.open(1, "sse", FROM_NOW, socket=socket)
    await connection.feed.open()
    hub.give_up(connection)
    hub.give_up(connection)  # idempotent
    assert socket.aborted == 1
    assert connection.stalled
    assert await ends_with(connection) is Ending.SLOW_CONSUMER


async def test_the_sweep_gives_up_on_a_send_that_takes_longer_than_the_timeout() -> None:
    hub, _ = make_hub()
    slow, quick = FakeSocket(), FakeSocket()
    stuck = hub.open(1, "ws", FROM_NOW, socket=slow)
    fine = hub.open(1, "ws", FROM_NOW, socket=quick)
    stuck.sending_since = 100.0
    fine.sending_since = 105.0
    hub._sweep(now=110.5, timeout=10.0, ping_after=15.0)
    assert (slow.aborted, quick.aborted) == (1, 0)


async def test_a_quiet_sse_stream_is_asked_for_a_ping_before_its_heartbeat_is_up() -> None:
    # The sweep runs every heartbeat / 4: asking only once a stream had been quiet for the whole
    # heartbeat let it wait up to a period more (0.8 s + 0.2 s here); it asks a period ahead.
    heartbeat = 0.8
    hub = Hub(MemoryBroker(), FakeLog(), authenticate, StreamSettings(heartbeat_s=heartbeat))
    connection = hub.open(1, "sse", FROM_NOW, socket=FakeSocket())
    await connection.feed.open()
    subscription = connection.feed.subscription
    assert subscription is not None
    async with anyio.create_task_group() as sweeping:
        connection.last_sent_at = time.monotonic()
        sweeping.start_soon(hub.watch_sends_forever)
        await poll_until(lambda: subscription.heartbeat_requested, within=5, every=0.005)
        quiet_for = time.monotonic() - connection.last_sent_at
        sweeping.cancel_scope.cancel()
    assert 0.5 <= quiet_for < heartbeat, quiet_for


async def test_streams_still_open_after_the_shutdown_grace_are_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("streams.hub.SHUTDOWN_GRACE_S", 0.05)
    hub, _ = make_hub()
    socket = FakeSocket()
    connection = hub.open(1, "sse", FROM_NOW, socket=socket)
    left = hub.open(1, "sse", FROM_NOW, socket=FakeSocket())
    hub.close(left)  # said goodbye in time
    hub.shutdown()
    assert socket.aborted == 0
    await poll_until(lambda: socket.aborted > 0, within=1, every=0.01)
    assert connection.stalled


class UnflushedSocket(FakeSocket):
    """A socket whose peer takes nothing: bytes stay in the server's buffer."""

    def get_write_buffer_size(self) -> int:
        return 0 if self.aborted else 4096


async def test_a_closed_connection_whose_peer_takes_nothing_is_reset_after_the_send_timeout() -> None:
    broker = MemoryBroker()
    hub = Hub(broker, FakeLog(), authenticate, StreamSettings(send_timeout_s=0.05))
    stuck, fine = UnflushedSocket(), FakeSocket()
    for socket in (stuck, fine):
        hub.close(hub.open(1, "ws", FROM_NOW, socket=socket))
    assert stuck.aborted == 0  # not at once: a healthy peer takes a farewell in moments
    await poll_until(lambda: stuck.aborted > 0, within=1, every=0.01)
    assert fine.aborted == 0
