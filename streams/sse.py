"""``GET /events``: the user's events as Server-Sent Events (browsers' EventSource, ``curl -N``).

The stream, in blocks that each end with a blank line and each carry ``data:`` (fetch-event-source
and httpx-sse hand a block without ``data:`` to the application as an empty message):

- ``retry: <ms>`` in the same block as the ``connected`` event, whose ``id:`` line is the starting
  point (a browser that reconnects before the first event resumes from there);
- ``resync_required`` when the resume point is gone; the replay; then live events, each
  ``id:``/``event:``/``data:``;
- after ``heartbeat_s`` without anything else, a ``: ping`` comment line *without* a blank line
  after it: it keeps proxies and idle timers awake and forms no event in any parser;
- when the server ends the stream (restart, slow consumer, revoked token), a last ``error``
  envelope under the SSE event name ``stream_error`` (:mod:`streams.endings`); EventSource then
  reconnects with ``Last-Event-ID`` and loses nothing.

A stream opened while the server shuts down is still a ``200 text/event-stream``: ``retry:`` and
the ``server_restart`` farewell, then the end. EventSource gives up for good on any other status.

A client that takes nothing for ``send_timeout_s`` is cut off without a farewell (there is no room
left to send one): the hub resets its socket.

The response is a small ASGI app of ours rather than sse-starlette's ``EventSourceResponse``
(which runs four tasks per connection and a cancel scope per send): the server's task writes, one
child task of ours listens for the client's disconnect, and heartbeats and the send timeout come
from the hub's one sweep over all connections.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import Any

from litestar import MediaType, Request, Response, get
from litestar.status_codes import HTTP_400_BAD_REQUEST, HTTP_401_UNAUTHORIZED
from litestar.types import ASGIApp, HTTPResponseBodyEvent, HTTPResponseStartEvent, Receive, Scope, Send

from streams.broker import SubscriptionClosed
from streams.endings import SSE_ERROR_EVENT, Ending
from streams.feed import BadStreamRequest, StreamRequest, connection_message
from streams.hub import Connection, Hub
from streams.tokens import stream_token
from streams.transport import current_transport

PING = b": ping\n"
"""A comment line with no blank line after it: nothing to dispatch, in any parser."""
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx: do not buffer the stream
    (b"connection", b"keep-alive"),
]


def sse_message(
    message_type: str, data: dict[str, object], sse_id: int | None = None, retry_ms: int | None = None
) -> bytes:
    """A connection message's block: ``retry:`` and ``id:`` when given (``sse_id`` is where an
    EventSource resumes from; the envelope has no id), the event name, the data."""
    name = SSE_ERROR_EVENT if message_type == "error" else message_type
    block = b"event: %s\ndata: %s\n\n" % (name.encode(), connection_message(message_type, data))
    if sse_id is not None:
        block = b"id: %d\n" % sse_id + block
    if retry_ms is not None:
        block = b"retry: %d\n" % retry_ms + block
    return block


def farewell(ending: Ending, retry_ms: int | None = None) -> bytes:
    """The last block of a stream the server ends."""
    return sse_message("error", {"code": ending.value, "message": ending.message}, retry_ms=retry_ms)


async def sse_body(hub: Hub, connection: Connection) -> AsyncGenerator[bytes, None]:
    """The chunks of one SSE response, in order, ending with a farewell when the server ends it."""
    feed = connection.feed
    try:
        resync = await feed.open()
        connected = {
            "connection_id": connection.id,
            "transport": "sse",
            "heartbeat_s": hub.settings.heartbeat_s,
            "last_event_id": feed.cursor,
        }
        # An EventSource that reconnects before its first event resumes from where it started
        # (after resync_required: from latest_id), not from "now", which would skip events.
        yield sse_message("connected", connected, sse_id=feed.cursor, retry_ms=hub.settings.sse_retry_ms)
        if resync is not None:
            yield b"event: resync_required\ndata: %s\n\n" % resync
        async for batch in feed.batches():
            if batch:
                yield b"".join(event.sse_frame for event in batch)
                hub.sent(connection, batch)
            else:
                yield PING  # quiet for a heartbeat (or a replay page whose events were all filtered out)
    except SubscriptionClosed as closed:
        if closed.reason is Ending.SLOW_CONSUMER and not connection.stalled:
            hub.fell_behind(connection)
        if closed.reason is not Ending.CLOSED:
            yield farewell(closed.reason)


class SseStream:
    """The ASGI response of one SSE connection. The server's task writes; a child task of ours
    listens for the client's disconnect and then ends the feed (uvicorn drops writes to a closed
    connection silently, so the writer alone would never notice). The connection is registered
    with the hub for exactly as long as this app runs, whatever ends it."""

    def __init__(self, hub: Hub, user_id: int, request: StreamRequest, credential: str | None) -> None:
        self.hub = hub
        self.user_id = user_id
        self.request = request
        self.credential = credential

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hub = self.hub
        connection = hub.open(self.user_id, "sse", self.request, self.credential, socket=current_transport())
        try:
            async with asyncio.TaskGroup() as tasks:
                listener = tasks.create_task(_until_disconnect(receive, connection))
                try:
                    await self._respond(connection, send)
                finally:
                    listener.cancel()
        finally:
            hub.close(connection)
        if connection.stalled:
            hub.fell_behind(connection)

    async def _respond(self, connection: Connection, send: Send) -> None:
        start: HTTPResponseStartEvent = {"type": "http.response.start", "status": 200, "headers": HEADERS}
        await send(start)
        body = sse_body(self.hub, connection)
        try:
            async for chunk in body:
                connection.sending_since = time.monotonic()
                message: HTTPResponseBodyEvent = {"type": "http.response.body", "body": chunk, "more_body": True}
                await send(message)
                connection.sending_since = None
                connection.last_sent_at = time.monotonic()
        finally:
            await body.aclose()
        end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": b"", "more_body": False}
        await send(end)


async def _until_disconnect(receive: Receive, connection: Connection) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    connection.feed.end(Ending.CLOSED)  # the writer stops at its next step; its sends return at once now


class Farewell:
    """The whole answer to a stream opened while the server shuts down: ``200``, ``retry:`` and
    the ``server_restart`` farewell (EventSource would give up for good on a 503)."""

    def __init__(self, retry_ms: int) -> None:
        self.body = farewell(Ending.SERVER_RESTART, retry_ms=retry_ms)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start: HTTPResponseStartEvent = {"type": "http.response.start", "status": 200, "headers": HEADERS}
        await send(start)
        body: HTTPResponseBodyEvent = {"type": "http.response.body", "body": self.body, "more_body": False}
        await send(body)


def json_error(
    request: Request[Any, Any, Any], status_code: int, detail: str, headers: dict[str, str] | None = None
) -> ASGIApp:
    """An error in Litestar's JSON shape (the route's own media type is the event stream)."""
    response = Response(
        {"status_code": status_code, "detail": detail},
        status_code=status_code,
        media_type=MediaType.JSON,
        headers=headers,
    )
    return response.to_asgi_response(app=None, request=request)


@get(
    "/events",
    media_type="text/event-stream",
    tags=["streams"],
    summary="Your events as Server-Sent Events",
    description=(
        "Token: Authorization header, access_token cookie or ?access_token=. "
        "Resume: Last-Event-ID header or ?last_event_id=. Filter: ?types=a,b (known event types only). "
        "An `error` envelope comes as the SSE event `stream_error`, just before the server ends the stream."
    ),
)
async def sse_events(request: Request[Any, Any, Any]) -> ASGIApp:
    hub: Hub = request.app.state.hub
    token = stream_token(request, hub.settings.public_origins)
    try:
        user_id = await hub.authenticate(token)
    except PermissionError as exc:
        return json_error(request, HTTP_401_UNAUTHORIZED, str(exc), {"WWW-Authenticate": "Bearer"})
    try:
        # EventSource sends the header on reconnect, while the URL keeps the first query value.
        stream_request = hub.stream_request(
            request.headers.get("last-event-id") or request.query_params.get("last_event_id"),
            request.query_params.get("types"),
        )
    except BadStreamRequest as exc:
        return json_error(request, HTTP_400_BAD_REQUEST, str(exc))
    if hub.shutting_down.is_set():
        return Farewell(hub.settings.sse_retry_ms)
    return SseStream(hub, user_id, stream_request, token)
