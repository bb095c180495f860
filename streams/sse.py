"""``GET /events``: the user's events as Server-Sent Events (browsers' EventSource, ``curl -N``).

The stream: ``retry: <ms>`` and the ``connected`` event (its ``id:`` line is the starting point,
so a browser that reconnects before the first event resumes from there); ``resync_required`` when
the resume point is gone; the replay; then live events, each ``id:``/``event:``/``data:``; a
``: ping`` comment every ``heartbeat_s``. It ends after an ``error`` event when the server shuts down
(``server_restart``) or the client fell too far behind (``slow_consumer``); EventSource then
reconnects with ``Last-Event-ID`` and loses nothing. A client that takes nothing for
``send_timeout_s`` is cut off without a farewell (there is no room left to send one).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, cast

import anyio
from litestar import MediaType, Request, Response, get
from litestar.status_codes import HTTP_400_BAD_REQUEST, HTTP_401_UNAUTHORIZED, HTTP_503_SERVICE_UNAVAILABLE
from litestar.types import ASGIApp, Receive, Scope, Send
from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.sse import SendTimeoutError

from streams.broker import SubscriptionClosed
from streams.feed import BadStreamRequest, StreamRequest, connection_message
from streams.hub import Connection, Hub
from streams.tokens import stream_token

logger = logging.getLogger("dropsync.sse")

FAREWELL = {
    "shutdown": ("server_restart", "the server is restarting: reconnect and resume"),
    "slow_consumer": ("slow_consumer", "this connection fell too far behind: reconnect and resume"),
}


def sse_message(message_type: str, data: dict[str, object], sse_id: int | None = None) -> bytes:
    """A connection event's frame; ``sse_id`` sets the id an EventSource resumes from (none in the envelope)."""
    frame = b"event: %s\ndata: %s\n\n" % (message_type.encode(), connection_message(message_type, data))
    return frame if sse_id is None else b"id: %d\n" % sse_id + frame


async def sse_body(hub: Hub, connection: Connection) -> AsyncIterator[bytes]:
    """The body of one SSE response; its ``finally`` always releases the connection."""
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
    except SubscriptionClosed as closed:
        if closed.reason == "slow_consumer":
            hub.fell_behind(connection)
        code, message = FAREWELL.get(closed.reason, ("closed", "the stream was closed"))
        yield sse_message("error", {"code": code, "message": message})
    finally:
        hub.close(connection)


class SseStream:
    """The ``EventSourceResponse`` of one connection, as an ASGI app that ends quietly when the
    client stops taking data: a stalled client is routine (a phone in a tunnel), not a crash."""

    def __init__(self, response: EventSourceResponse, hub: Hub, connection: Connection) -> None:
        self.response = cast(ASGIApp, response)  # a Starlette response is an ASGI app
        self.hub = hub
        self.connection = connection

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.response(scope, receive, send)
        except SendTimeoutError:
            # The body has been closed (its ``finally`` released the connection); the client
            # resumes from its last id.
            self.hub.fell_behind(self.connection)
            timeout = self.hub.settings.send_timeout_s
            logger.info("closing connection %s: a send took over %ss", self.connection.id, timeout)


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
    connection = hub.open(user_id, "sse", stream_request)
    response = EventSourceResponse(
        sse_body(hub, connection),
        headers={"Cache-Control": "no-cache"},
        ping=hub.settings.heartbeat_s,
        ping_message_factory=lambda: ServerSentEvent(comment="ping"),
        send_timeout=hub.settings.send_timeout_s,
        # Our own signal watch ends the body first (see streams.hub); this is the backstop.
        shutdown_event=anyio.Event(),
        shutdown_grace_period=hub.settings.shutdown_grace_s,
    )
    return SseStream(response, hub, connection)
