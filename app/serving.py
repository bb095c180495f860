"""How dropsync is served: uvicorn with its httptools protocol, guarded against hostile clients.

uvicorn 0.54's httptools protocol (its fastest, and the default) has no limit on the size of a
request's head and no deadline for reading it or the body: ten clients sending 50 MB of
unterminated headers cost the server 470 MB, and a client sending a byte every few seconds keeps
its connection forever. :class:`GuardedHttpToolsProtocol` adds, per connection:

- **a head-size limit**: a request line and headers over ``http_max_head_bytes`` are refused
  with 431 and the connection closed (counted as the bytes arrive, before httptools buffers them);
- **a head deadline**: a connection must deliver a whole request head within
  ``http_head_timeout_s`` of its first byte (or of being opened): else 408 and close;
- **a body deadline**: the body must arrive within ``http_body_timeout_s`` of the head (not
  counted while the server itself has paused reading or not yet asked for the body);
- idle connections between requests are closed after ``http_keep_alive_s`` (uvicorn's own
  keep-alive timeout, set by :func:`uvicorn_options`).

The connection cap is uvicorn's ``limit_concurrency`` (``max_connections``: 503 beyond it).
WebSocket connections are handed to uvicorn's WebSocket protocol once upgraded (frames are
bounded by ``ws_max_size``).

This module is the one place that reaches into uvicorn's private protocol class; the versions it
was written against are pinned by ``tests/unit/test_serving.py``. Use it with
``python -m app serve`` (which sets everything) or ``uvicorn ... --http app.serving:GuardedHttpToolsProtocol``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import Settings, load_settings

WS_MAX_FRAME_BYTES = 64 * 1024  # clients send only {"type": "ping"}: 64 KiB is plenty
_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


@dataclass(frozen=True, slots=True)
class HttpLimits:
    max_head_bytes: int
    head_timeout_s: float
    body_timeout_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpLimits:
        return cls(
            max_head_bytes=settings.http_max_head_bytes,
            head_timeout_s=settings.http_head_timeout_s,
            body_timeout_s=settings.http_body_timeout_s,
        )


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a head-size limit and read deadlines (see the module)."""

    limits: ClassVar[HttpLimits | None] = None  # read from the settings at the first connection

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if GuardedHttpToolsProtocol.limits is None:
            GuardedHttpToolsProtocol.limits = HttpLimits.from_settings(load_settings())
        self.guard = GuardedHttpToolsProtocol.limits
        self.head_bytes = 0
        self.reading_head = True  # between requests, or inside a request's head
        self.upgraded = False
        self.deadline: asyncio.TimerHandle | None = None

    # --- the deadline -----------------------------------------------------------------------------

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self.deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _expired(self) -> None:
        self.deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if not self.reading_head and (self.flow.read_paused or (cycle is not None and cycle.waiting_for_100_continue)):
            self._arm(self.guard.body_timeout_s)  # we are the ones not reading: not the client's fault
            return
        if self.reading_head and self.head_bytes == 0:
            self.transport.close()  # opened and never used: nothing to answer
            return
        if cycle is not None and cycle.response_started and not cycle.response_complete:
            self.transport.close()
            return
        self._refuse(408)

    def _refuse(self, status: int) -> None:
        """Answer ``status`` with no body and close (the request was never handed to the app)."""
        self._disarm()
        reason = _REASONS[status]
        self.transport.write(b"HTTP/1.1 %d %s\r\ncontent-length: 0\r\nconnection: close\r\n\r\n" % (status, reason))
        self.transport.close()

    # --- uvicorn's protocol, observed -------------------------------------------------------------
    # A request that arrives whole in one read (the usual case) arms no timer at all: the clock
    # starts only when a read ends inside a head or a body. That keeps the guard's cost per
    # request to a few attribute checks.

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.guard.head_timeout_s)  # a connection that never sends a byte

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.reading_head:
            self.head_bytes += len(data)
        super().data_received(data)
        if self.upgraded or self.transport.is_closing():
            return
        if self.reading_head:
            if self.head_bytes > self.guard.max_head_bytes:
                self._refuse(431)
            elif self.head_bytes and self.deadline is None:
                self._arm(self.guard.head_timeout_s)  # a head that is not complete yet
        elif self.deadline is None:
            self._arm(self.guard.body_timeout_s)  # a body that is not complete yet

    def on_headers_complete(self) -> None:
        self.reading_head = False
        self.head_bytes = 0
        if self.deadline is not None:
            self._disarm()
        super().on_headers_complete()
        # A WebSocket handshake: uvicorn's WebSocket protocol takes the connection over.
        self.upgraded = self.parser.should_upgrade() and self._should_upgrade()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self.deadline is not None:
            self._disarm()
        self.reading_head = True


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.run`` that serve dropsync safely (``python -m app serve``)."""
    return {
        "http": GuardedHttpToolsProtocol,
        "limit_concurrency": settings.max_connections,
        "timeout_keep_alive": settings.http_keep_alive_s,
        "ws_max_size": WS_MAX_FRAME_BYTES,
        "ws_per_message_deflate": False,
        "timeout_graceful_shutdown": 5,
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
    }
