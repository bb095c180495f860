"""``GET /ws``: the user's events over a WebSocket (mobile apps), one JSON envelope per text frame.

Order on the wire: ``connected``; ``resync_required`` when the resume point is gone; the replay;
live events. Client → server: ``{"type": "ping"}`` → ``{"type": "pong", "timestamp"}``; any
other frame gets an ``error`` event and the connection stays open.

Close codes: 4401 bad or missing token (after accept, so the code reaches the client), or a token
revoked or expired while the stream was open; 4400 bad query parameters; 1013 the client fell too
far behind; 1012 the server is restarting. The last two resume losslessly with ``?last_event_id=``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from typing import Any

import anyio
import msgspec
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.types import WebSocketSendEvent

from streams.broker import SubscriptionClosed
from streams.feed import BadStreamRequest, StreamRequest, connection_message
from streams.hub import Connection, Hub
from streams.tokens import stream_token

logger = logging.getLogger("dropsync.ws")

CLOSE_BAD_TOKEN = 4401
CLOSE_BAD_REQUEST = 4400
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_SERVICE_RESTART = 1012
_CLOSE_FOR = {
    "shutdown": CLOSE_SERVICE_RESTART,
    "slow_consumer": CLOSE_TRY_AGAIN_LATER,
    "log_pruned": CLOSE_TRY_AGAIN_LATER,  # the client reconnects and is told resync_required
    "unauthorized": CLOSE_BAD_TOKEN,  # revoked or expired while open
}

_decoder = msgspec.json.Decoder()


class Sender:
    """Serializes sends on one socket (the writer and pong replies) and marks them for the hub's
    send watchdog, which aborts the connection when one takes longer than the send timeout."""

    def __init__(self, socket: WebSocket[Any, Any, Any], connection: Connection) -> None:
        self.socket = socket
        self.connection = connection
        self.lock = asyncio.Lock()  # asyncio's own: anyio's costs a task look-up per use

    async def send(self, text: str) -> None:
        await self.send_all((text,))

    async def send_all(self, texts: Iterable[str]) -> None:
        """Send text frames in order (a whole batch under one lock acquisition)."""
        async with self.lock:
            self.connection.sending_since = time.monotonic()
            try:
                for text in texts:
                    message: WebSocketSendEvent = {"type": "websocket.send", "bytes": None, "text": text}
                    await self.socket.send(message)
                    # Progress, not the batch, is what the send timeout measures.
                    self.connection.sending_since = time.monotonic()
            finally:
                self.connection.sending_since = None
                self.connection.last_sent_at = time.monotonic()


def _error(code: str, message: str) -> str:
    return connection_message("error", {"code": code, "message": message}).decode()


async def _reader(socket: WebSocket[Any, Any, Any], sender: Sender) -> None:
    """Answer pings and complain about anything else until the client goes away."""
    while True:
        message = await socket.receive()  # raises WebSocketDisconnect
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(detail="client closed", code=message.get("code", 1000))
        raw = message.get("text")
        if not isinstance(raw, str):
            await sender.send(_error("bad_message", 'send JSON text frames, e.g. {"type": "ping"}'))
            continue
        try:
            decoded = _decoder.decode(raw)
        except (msgspec.DecodeError, RecursionError):  # RecursionError: nested too deeply to decode
            await sender.send(_error("bad_message", "the frame is not valid JSON"))
            continue
        if isinstance(decoded, dict) and decoded.get("type") == "ping":
            pong = msgspec.json.encode({"type": "pong", "timestamp": time.time_ns() // 1_000_000})
            await sender.send(pong.decode())
        else:
            await sender.send(_error("bad_message", 'unknown message: the only message is {"type": "ping"}'))


async def _writer(hub: Hub, connection: Connection, sender: Sender) -> None:
    async for batch in connection.feed.batches():
        if batch:
            await sender.send_all(event.text for event in batch)
            hub.sent(connection, batch)


async def _refuse(socket: WebSocket[Any, Any, Any], close_code: int, code: str, message: str) -> None:
    """Say why in an ``error`` event, then close with ``close_code`` (unless the client left already)."""
    with contextlib.suppress(OSError, WebSocketDisconnect, RuntimeError):
        await socket.send_data(_error(code, message), mode="text")
        await socket.close(code=close_code, reason=code.replace("_", " "))


async def _serve(hub: Hub, socket: WebSocket[Any, Any, Any], connection: Connection, sender: Sender) -> None:
    resync = await connection.feed.open()
    connected = {
        "connection_id": connection.id,
        "transport": "ws",
        "heartbeat_s": hub.settings.heartbeat_s,
        "last_event_id": connection.feed.cursor,
    }
    await sender.send(connection_message("connected", connected).decode())
    if resync is not None:
        await sender.send(resync.decode())
    # asyncio's own task group: per connection, and lighter than anyio's (memory per connection).
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(_writer(hub, connection, sender))
        await _reader(socket, sender)  # until the client leaves; the writer's end cancels it


@websocket("/ws", tags=["streams"])
async def ws_events(socket: WebSocket[Any, Any, Any]) -> None:
    hub: Hub = socket.app.state.hub
    await socket.accept()
    try:
        user_id = await hub.authenticate(stream_token(socket))
    except PermissionError as exc:
        await _refuse(socket, CLOSE_BAD_TOKEN, "unauthorized", str(exc))
        return
    try:
        request = StreamRequest.parse(socket.query_params.get("last_event_id"), socket.query_params.get("types"))
    except BadStreamRequest as exc:
        await _refuse(socket, CLOSE_BAD_REQUEST, "bad_request", str(exc))
        return
    connection = hub.open(user_id, "ws", request, credential=stream_token(socket))
    sender = Sender(socket, connection)
    close_code: int | None = 1000
    handler = asyncio.current_task()
    assert handler is not None
    connection.abort = handler.cancel  # the hub's send watchdog ends a stalled connection
    try:
        try:
            await _serve(hub, socket, connection, sender)
        except asyncio.CancelledError:
            if not connection.stalled:
                raise  # the server is cancelling us: let it
            handler.uncancel()
            raise TimeoutError from None
    except* SubscriptionClosed as group:
        reason = group.exceptions[0].reason if isinstance(group.exceptions[0], SubscriptionClosed) else "closed"
        close_code = _CLOSE_FOR.get(reason, 1000)
        if reason == "slow_consumer":
            hub.fell_behind(connection)
    except* WebSocketDisconnect:
        close_code = None  # the client is gone
    except* TimeoutError:
        logger.info("closing connection %s: a send took over %ss", connection.id, hub.settings.send_timeout_s)
        hub.fell_behind(connection)
        close_code = CLOSE_TRY_AGAIN_LATER
    except* OSError:
        close_code = None  # the client vanished while we were sending (uvicorn's ClientDisconnected)
    finally:
        connection.abort = None
        hub.close(connection)
    if close_code is not None:
        reason = {CLOSE_SERVICE_RESTART: "service restart", CLOSE_TRY_AGAIN_LATER: "try again later"}.get(
            close_code, ""
        )
        try:
            with anyio.fail_after(hub.settings.send_timeout_s):
                await socket.close(code=close_code, reason=reason)
        except (OSError, WebSocketDisconnect, RuntimeError):  # OSError covers TimeoutError
            pass  # the peer is gone or stuck: nothing left to tell it
