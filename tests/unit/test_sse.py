"""streams.sse without a server: the framing rules every popular client parses, and the
connection's registration, whatever ends the response."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from streams.broker import MemoryBroker
from streams.endings import Ending
from streams.feed import StreamRequest
from streams.hub import Hub, StreamSettings
from streams.sse import PING, SseStream, farewell, sse_message
from tests.support.event_log import FakeLog

pytestmark = pytest.mark.anyio


async def authenticate(token: str | None) -> int:
    return 1


def test_retry_and_id_go_in_the_block_of_the_connected_event() -> None:
    block = sse_message("connected", {"last_event_id": 4}, sse_id=4, retry_ms=3000)
    assert block.startswith(b"retry: 3000\nid: 4\nevent: connected\ndata: {")
    assert block.endswith(b"\n\n")
    assert block.count(b"\n\n") == 1


def test_the_heartbeat_is_a_comment_line_that_ends_no_block() -> None:
    assert PING == b": ping\n"


def test_an_error_envelope_is_named_stream_error_on_sse() -> None:
    block = farewell(Ending.SERVER_RESTART)
    assert block.startswith(b"event: stream_error\ndata: {")
    assert b'"type":"error"' in block
    assert b'"code":"server_restart"' in block


async def test_an_sse_connection_is_released_when_the_response_cannot_start() -> None:
    """Regression: the connection was registered by the handler and released by the body, so a
    response whose start failed (the client gone, a middleware raising) stayed in the hub."""
    hub = Hub(MemoryBroker(), FakeLog(), authenticate, StreamSettings())
    app = SseStream(hub, 1, StreamRequest(last_event_id=None, types=None), None)

    async def receive() -> Any:
        await anyio.sleep_forever()

    async def send(message: Any) -> None:
        raise OSError("the client is gone")

    with pytest.raises(ExceptionGroup) as raised:
        await app({"type": "http"}, receive, send)  # type: ignore[arg-type]  # the app reads nothing of it
    assert raised.group_contains(OSError, match="the client is gone")
    assert hub.connections == {}
    assert hub.broker.local.subscription_count == 0  # type: ignore[attr-defined]
