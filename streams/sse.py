"""``GET /events``: the user's events as Server-Sent Events (browsers' EventSource, ``curl -N``).

The stream: ``retry: <ms>`` and the ``connected`` event (its ``id:`` line is the starting point,
so a browser that reconnects before the first event resumes from there); ``resync_required`` when
the resume point is gone; the replay; then live events, each ``id:``/``event:``/``data:``; a
``: ping`` comment after ``heartbeat_s`` without anything else. It ends after an ``error`` event
when the server shuts down (``server_restart``) or the client fell too far behind
(``slow_consumer``); EventSource then reconnects with ``Last-Event-ID`` and loses nothing. A client
that takes nothing for ``send_timeout_s`` is cut off without a farewell (there is no room left to
send one).

The response is a small ASGI app of ours rather than sse-starlette's ``EventSourceResponse``:
that one runs four tasks per connection and a cancel scope per send, which the benchmark measured
at a third of the server's CPU per delivered frame. Here a connection is two tasks (the writer, and
a listener for the client's disconnect); heartbeats and the send timeout come from the hub's one
sweep over all connections.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from litestar import MediaType, Request, Response, get
from litestar.status_codes import HTTP_400_BAD_REQUEST, HTTP_401_UNAUTHORIZED, HTTP_503_SERVICE_UNAVAILABLE
from litestar.types import ASGIApp, HTTPResponseBodyEvent, HTTPResponseStartEvent, Receive, Scope, Send

from streams.broker import SubscriptionClosed
from streams.feed import BadStreamRequest, StreamRequest, connection_message
from streams.hub import Connection, Hub
from streams.tokens import stream_token

logger = logging.getLogger("dropsync.sse")

FAREWELL = {
    "shutdown": ("server_restart", "the server is restarting: reconnect and resume"),
    "slow_consumer": ("slow_consumer", "this connection fell too far behind: reconnect and resume"),
    "unauthorized": ("unauthorized", "your token was revoked or has expired: sign in again"),
    "log_pruned": ("reconnect", "older events were pruned while this stream caught up: reconnect with your last id"),
}
PING = b": ping\n\n"
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx: do not buffer the stream
    (b"connection", b"keep-alive"),
]


def sse_message(message_type: str, data: dict[str, object], sse_id: int | None = None) -> bytes:
    """A connection event's frame; ``sse_id`` sets the id an EventSource resumes from (none in the envelope)."""
    frame = b"event: %s\ndata: %s\n\n" % (message_type.encode(), connection_message(message_type, data))
    return frame if sse_id is None else b"id: %d\n" % sse_id + frame


async def sse_body(hub: Hub, connection: Connection) -> AsyncGenerator[bytes, None]:
    """The chunks of one SSE response, in order; its ``finally`` always releases the connection."""
    feed = connection.feed
    try:
        resync = await feed.open()
        connected = sse_message(
            "connected",
            {
                "connection_id": connection.id,
                "transport": "sse",
                "heartbeat_s": hub.settings.heartbeat_s,
                "last_event_id": feed.cursor,
            },
            # An EventSource that reconnects before its first event resumes from where it started
            # (after resync_required: from latest_id), not from "now", which would skip events.
            sse_id=feed.cursor,
        )
        yield b"retry: %d\n\n" % hub.settings.sse_retry_ms + connected
        if resync is not None:
            yield b"event: resync_required\ndata: %s\n\n" % resync
        async for batch in feed.batches():
            if batch:
                yield b"".join(event.sse_frame for event in batch)
                hub.sent(connection, batch)
            else:
                yield PING  # quiet for a heartbeat (or a replay page whose events were all filtered out)
    except SubscriptionClosed as closed:
        if closed.reason == "slow_consumer":
            hub.fell_behind(connection)
        code, message = FAREWELL.get(closed.reason, ("closed", "the stream was closed"))
        yield sse_message("error", {"code": code, "message": message})
    finally:
        hub.close(connection)


class SseStream:
    """The ASGI response of one SSE connection: a writer, and a listener that ends it when the
    client disconnects (uvicorn drops writes to a closed connection silently, so the writer alone
    would never notice)."""

    def __init__(self, hub: Hub, connection: Connection) -> None:
        self.hub = hub
        self.connection = connection
        self._writer: asyncio.Task[Any] | None = None
        self._cancelled = False  # we cancel the writer at most once, and only while it writes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start: HTTPResponseStartEvent = {"type": "http.response.start", "status": 200, "headers": HEADERS}
        await send(start)
        body = sse_body(self.hub, self.connection)
        finished = False
        # Plain asyncio rather than an anyio task group: this is per connection, and memory per
        # idle connection is one of the figures we hold ourselves to.
        writer = self._writer = asyncio.current_task()
        assert writer is not None
        self.connection.abort = self._cancel_writer  # the hub's send watchdog
        listener = asyncio.create_task(self._until_disconnect(receive))
        try:
            await self._write(body, send)
            finished = True
        except asyncio.CancelledError:
            if not self._cancelled:
                raise  # the server is cancelling us: let it
            writer.uncancel()
        finally:
            self._writer = None  # from here on, nothing of ours cancels this task
            self.connection.abort = None
            listener.cancel()
            await body.aclose()  # releases the connection, whatever ended the stream
        if self.connection.stalled:
            self.hub.fell_behind(self.connection)
            timeout = self.hub.settings.send_timeout_s
            logger.info("closing connection %s: a send took over %ss", self.connection.id, timeout)
        elif finished:
            end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(end)

    async def _write(self, body: AsyncIterator[bytes], send: Send) -> None:
        connection = self.connection
        async for chunk in body:
            connection.sending_since = time.monotonic()
            message: HTTPResponseBodyEvent = {"type": "http.response.body", "body": chunk, "more_body": True}
            await send(message)
            connection.sending_since = None
            connection.last_sent_at = time.monotonic()

    def _cancel_writer(self) -> None:
        if self._writer is not None and not self._cancelled:
            self._cancelled = True
            self._writer.cancel()

    async def _until_disconnect(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self._cancel_writer()


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
        "Resume: Last-Event-ID header or ?last_event_id=. Filter: ?types=a,b."
    ),
)
async def sse_events(request: Request[Any, Any, Any]) -> ASGIApp:
    hub: Hub = request.app.state.hub
    try:
        user_id = await hub.authenticate(stream_token(request))
    except PermissionError as exc:
        return json_error(request, HTTP_401_UNAUTHORIZED, str(exc), {"WWW-Authenticate": "Bearer"})
    try:
        # EventSource sends the header on reconnect, while the URL keeps the first query value.
        stream_request = StreamRequest.parse(
            request.headers.get("last-event-id") or request.query_params.get("last_event_id"),
            request.query_params.get("types"),
        )
    except BadStreamRequest as exc:
        return json_error(request, HTTP_400_BAD_REQUEST, str(exc))
    if hub.shutting_down.is_set():
        return json_error(request, HTTP_503_SERVICE_UNAVAILABLE, "the server is restarting", {"Retry-After": "1"})
    return SseStream(hub, hub.open(user_id, "sse", stream_request, credential=stream_token(request)))
