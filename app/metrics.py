"""``GET /metrics`` (Prometheus text format) and the middleware that times HTTP requests."""

from __future__ import annotations

import time

from litestar import Response, get
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST

from streams.metrics import Metrics


@get("/metrics", tags=["operations"], summary="Prometheus metrics of this process", include_in_schema=True)
async def metrics_endpoint(state: State) -> Response[bytes]:
    metrics: Metrics = state.metrics
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


class RequestTimer:
    """Observes each HTTP request's latency by method, route template and status.

    Registered on the request/response routes only (the streams do not pass through it).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            route = scope.get("path_template") or "unmatched"
            metrics: Metrics = scope["litestar_app"].state.metrics  # the app's own (see app.main)
            metrics.requests.labels(scope["method"], route, str(status)).observe(time.perf_counter() - started)
