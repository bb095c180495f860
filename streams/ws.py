"""``GET /ws``: the user's events over a WebSocket (mobile apps), one JSON envelope per text frame.

Order on the wire: ``connected``; ``resync_required`` when the resume point is gone; the replay;
live events. Client → server: ``{"type": "ping"}`` → ``{"type": "pong", "timestamp"}``; any
other frame gets an ``error`` event and the connection stays open.

Endings (:mod:`streams.endings`): the server never closes without saying why. An ``error`` frame
(``code``, ``message``) comes first whenever the socket can still take it, then a close whose reason
is never empty: 4401 bad or missing token (after accept, so the code reaches the client), or a
token revoked or expired while the stream was open; 4400 bad query parameters (the reason names
the problem, e.g. an unknown type); 1013 the client fell too far behind; 1012 the server is
restarting. The last two resume losslessly with ``?last_event_id=``. A client that takes nothing
for ``send_timeout_s`` gets no goodbye: the hub resets its socket.

Tasks: the handler (the server's task) reads; the writer is its child in a task group, and a
failure of either ends both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.types import Message

from streams.broker import SubscriptionClosed
from streams.endings import Ending, close_reason
from streams.feed import BadStreamRequest, connection_message
from streams.hub import Connection, Hub
from streams.tokens import stream_token
from streams.transport import corked, current_transport, tcp_socket

logger = logging.getLogger("dropsync.ws")

_decoder = msgspec.json.Decoder()
CORK_FROM = 3
"""Frames in a batch from which it is sent corked (for one or two, corking costs more than it saves)."""


class Sender:
    """Serializes sends on one socket (the writer and pong replies) and marks them for the hub's
    send watchdog, which aborts the connection when one takes longer than the send timeout."""

    def __init__(self, socket: WebSocket[Any, Any, Any], connection: Connection) -> None:
        self.socket = socket
        self.connection = connection
        self.lock = asyncio.Lock()  # asyncio's own: anyio's costs a task look-up per use
        self.tcp = tcp_socket(connection.socket)  # what corked() needs, found once

    async def send(self, text: str) -> None:
        await self.send_all((text,))

    async def send_all(self, texts: Sequence[str]) -> None:
        """Send text frames in order (a whole batch under one lock acquisition); a batch of
        :data:`CORK_FROM` frames or more leaves the kernel together (see :func:`corked`)."""
        with corked(self.tcp) if len(texts) >= CORK_FROM else contextlib.nullcontext():
            await self.send_messages({"type": "websocket.send", "bytes": None, "text": text} for text in texts)

    async def send_messages(self, messages: Iterable[Message]) -> None:
        """Send ASGI messages in order, each under the send timeout."""
        async with self.lock:
            self.connection.sending_since = time.monotonic()
            try:
                for message in messages:
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
            await sender.send_all([event.text for event in batch])
            hub.sent(connection, batch)


async def _goodbye(socket: WebSocket[Any, Any, Any], send: Sender | None, ending: Ending, message: str) -> None:
    """Say why in an ``error`` frame, then close with the ending's code and a reason (the message
    for a refusal, which names the problem). With a ``send``, both go under the send timeout."""
    reason = close_reason(message) if ending in {Ending.BAD_REQUEST, Ending.UNAUTHORIZED} else ending.ws_close_reason
    frames: list[Message] = [
        {"type": "websocket.send", "bytes": None, "text": _error(ending.value, message)},
        {"type": "websocket.close", "code": ending.ws_close_code, "reason": reason},
    ]
    with contextlib.suppress(OSError, WebSocketDisconnect, RuntimeError):  # the client left: nobody to tell
        if send is not None:
            await send.send_messages(frames)
        else:
            for frame in frames:
                await socket.send(frame)


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


async def _serve_until_ending(
    hub: Hub, socket: WebSocket[Any, Any, Any], connection: Connection, sender: Sender
) -> Ending | None:
    """Serve until the stream ends; the ending to tell the client, or None if nobody is left to tell."""
    ending: Ending | None = None
    try:
        await _serve(hub, socket, connection, sender)
    except* SubscriptionClosed as group:
        first = group.exceptions[0]
        ending = first.reason if isinstance(first, SubscriptionClosed) else Ending.CLOSED
    except* (WebSocketDisconnect, OSError):
        pass  # the client left, or vanished while we were sending (uvicorn's ClientDisconnected)
    if connection.stalled or ending is Ending.CLOSED:
        return None  # given up on (its socket is reset), or released: nobody to tell
    return ending


@websocket("/ws", tags=["streams"])
async def ws_events(socket: WebSocket[Any, Any, Any]) -> None:
    hub: Hub = socket.app.state.hub
    await socket.accept()
    token = stream_token(socket, hub.settings.public_origins)
    try:
        user_id = await hub.authenticate(token)
    except PermissionError as exc:
        await _goodbye(socket, None, Ending.UNAUTHORIZED, str(exc))
        return
    try:
        request = hub.stream_request(socket.query_params.get("last_event_id"), socket.query_params.get("types"))
    except BadStreamRequest as exc:
        await _goodbye(socket, None, Ending.BAD_REQUEST, str(exc))
        return
    connection = hub.open(user_id, "ws", request, credential=token, socket=current_transport())
    sender = Sender(socket, connection)
    try:
        ending = await _serve_until_ending(hub, socket, connection, sender)
        if ending is Ending.SLOW_CONSUMER:
            hub.fell_behind(connection)
        if ending is not None:
            await _goodbye(socket, sender, ending, ending.message)  # the send watchdog still guards it
    finally:
        hub.close(connection)
    if connection.stalled:
        hub.fell_behind(connection)
