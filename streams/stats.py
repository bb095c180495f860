"""``GET /ws/stats``: the caller's own open connections on this process, and totals over every
process the broker connects (numbers only: no other user's identity)."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.exceptions import NotAuthorizedException

from streams.hub import Hub
from streams.tokens import stream_token


@get("/ws/stats", tags=["streams"], summary="Your open connections, and connection totals")
async def ws_stats(request: Request[Any, Any, Any]) -> dict[str, Any]:
    hub: Hub = request.app.state.hub
    try:
        user_id = await hub.authenticate(stream_token(request, hub.settings.public_origins))
    except PermissionError as exc:
        raise NotAuthorizedException(detail=str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
    return await hub.stats(user_id)
