"""Why the server ends or refuses a stream, and what each transport says about it: one table.

Every ending is an ``error`` envelope ``{"type": "error", "data": {"code", "message"}}`` sent
before the stream ends (when the client can still take it):

- on SSE its event name is :data:`SSE_ERROR_EVENT` (``stream_error``), never ``error``, which is
  the name of EventSource's own connection-error event (``es.onerror`` would fire with it);
- on a WebSocket the frame is followed by a close with the row's code and reason (a close always
  carries a reason).

The codes are part of the API (docs/realtime.md lists them); :class:`Ending` values are the codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

SSE_ERROR_EVENT = "stream_error"
"""The SSE event name of an ``error`` envelope."""

WS_REASON_MAX_BYTES = 123
"""The longest close reason a WebSocket close frame can carry (RFC 6455 §5.5)."""


class Ending(StrEnum):
    """Why a stream ends (or is refused); the value is the ``code`` of the ``error`` envelope."""

    SERVER_RESTART = "server_restart"
    SLOW_CONSUMER = "slow_consumer"
    RECONNECT = "reconnect"
    UNAUTHORIZED = "unauthorized"
    BAD_REQUEST = "bad_request"
    CLOSED = "closed"  # the client left, or the stream was released: nobody to tell

    @property
    def ws_close_code(self) -> int:
        return _TABLE[self].ws_close_code

    @property
    def ws_close_reason(self) -> str:
        return _TABLE[self].ws_close_reason

    @property
    def message(self) -> str:
        return _TABLE[self].message

    @property
    def resumable(self) -> bool:
        """True when reconnecting with the last id loses nothing (retrying otherwise cannot help)."""
        return _TABLE[self].ws_close_code < 4000


@dataclass(frozen=True, slots=True)
class _Row:
    ws_close_code: int
    ws_close_reason: str
    message: str


_TABLE: dict[Ending, _Row] = {
    Ending.SERVER_RESTART: _Row(1012, "service restart", "the server is restarting: reconnect and resume"),
    Ending.SLOW_CONSUMER: _Row(1013, "try again later", "this connection fell too far behind: reconnect and resume"),
    Ending.RECONNECT: _Row(
        1013,
        "try again later",
        "older events were pruned while this stream caught up: reconnect with your last id",
    ),
    Ending.UNAUTHORIZED: _Row(4401, "unauthorized", "your token was revoked or has expired: sign in again"),
    Ending.BAD_REQUEST: _Row(4400, "bad request", "bad query parameters"),
    Ending.CLOSED: _Row(1000, "closed", "the stream was closed"),
}


def close_reason(text: str) -> str:
    """``text`` cut to what a WebSocket close frame can carry (whole UTF-8 characters)."""
    encoded = text.encode()
    if len(encoded) <= WS_REASON_MAX_BYTES:
        return text
    return encoded[: WS_REASON_MAX_BYTES - 3].decode(errors="ignore") + "..."
