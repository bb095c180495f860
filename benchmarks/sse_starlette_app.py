"""Bench only (never served): the app with ``GET /events`` answered by sse-starlette's
``EventSourceResponse`` at its leanest — no ping task (``ping=0``), no send timeout, the same
feed, frames and heartbeats as ours (the hub's sweep asks for a ``: ping`` after a quiet
heartbeat) — so that ``benchmarks/sse_compare.py`` can measure the two responses side by side.

    uvicorn benchmarks.sse_starlette_app:create_app --factory

Needs ``pip install sse-starlette`` (not a dependency of dropsync). Importing sse-starlette
patches uvicorn's signal handling (its ``AppStatus``); that is one reason it is not our default.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar, Request, get
from litestar.status_codes import HTTP_400_BAD_REQUEST, HTTP_401_UNAUTHORIZED
from litestar.types import ASGIApp
from sse_starlette import EventSourceResponse

import app.main
from streams.feed import BadStreamRequest
from streams.hub import Connection, Hub
from streams.sse import Farewell, json_error, sse_body
from streams.tokens import stream_token
from streams.transport import current_transport


async def _chunks(hub: Hub, connection: Connection) -> AsyncIterator[bytes]:
    try:
        async for chunk in sse_body(hub, connection):
            yield chunk
            connection.last_sent_at = time.monotonic()  # for the hub's heartbeat sweep
    finally:
        hub.close(connection)


@get("/events", media_type="text/event-stream", include_in_schema=False)
async def starlette_sse_events(request: Request[Any, Any, Any]) -> ASGIApp:
    hub: Hub = request.app.state.hub
    token = stream_token(request, hub.settings.public_origins)
    try:
        user_id = await hub.authenticate(token)
    except PermissionError as exc:
        return json_error(request, HTTP_401_UNAUTHORIZED, str(exc), {"WWW-Authenticate": "Bearer"})
    try:
        stream_request = hub.stream_request(
            request.headers.get("last-event-id") or request.query_params.get("last_event_id"),
            request.query_params.get("types"),
        )
    except BadStreamRequest as exc:
        return json_error(request, HTTP_400_BAD_REQUEST, str(exc))
    if hub.shutting_down.is_set():
        return Farewell(hub.settings.sse_retry_ms)
    connection = hub.open(user_id, "sse", stream_request, token, socket=current_transport())
    return EventSourceResponse(
        _chunks(hub, connection), ping=0, send_timeout=None, headers={"Cache-Control": "no-cache"}
    )


def create_app() -> Litestar:
    app.main.sse_events = starlette_sse_events  # type: ignore[assignment]
    return app.main.create_app()
