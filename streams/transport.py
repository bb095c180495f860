"""The one place that reaches under ASGI into the server: the socket of the current connection.

Why: when we give up on a client (it stopped reading), closing its stream politely is not enough.
uvicorn then closes the socket with ``transport.close()``, which first flushes what is buffered
for a peer that reads nothing: the socket stays open, holding its buffers, until the peer or the
kernel gives up (minutes), and a shutdown waits for it. ``transport.abort()`` drops the buffers and
resets the connection at once.

ASGI has no way to reach the transport. uvicorn runs each request (HTTP) or connection
(WebSocket) in a task whose coroutine is a method of an object holding ``transport``:
``RequestResponseCycle.run_asgi`` for HTTP (httptools and h11), ``WebSocketProtocol.run_asgi``
for every WebSocket implementation. :func:`current_transport` reads it from there, and returns
None under any other server (streams then end without the abort: a stalled peer's socket stays
until the server closes it). ``tests/unit/test_transport.py`` pins this to the uvicorn versions
the project allows (``pyproject.toml``).
"""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable


@runtime_checkable
class Abortable(Protocol):
    """What we need of a transport: drop its buffers and reset the connection now."""

    def abort(self) -> None: ...

    def is_closing(self) -> bool: ...

    def get_write_buffer_size(self) -> int: ...


def current_transport() -> Abortable | None:
    """The transport of the connection whose ASGI task is running, or None if it cannot be found.

    Call it from the server's own task for the request (the handler or the ASGI app it returns),
    not from a task of ours.
    """
    task = asyncio.current_task()
    if task is None:
        return None
    frame = getattr(task.get_coro(), "cr_frame", None)
    if frame is None:
        return None
    owner = frame.f_locals.get("self")
    transport = getattr(owner, "transport", None)
    return transport if isinstance(transport, Abortable) else None


def abort(transport: Abortable | None) -> None:
    """Reset the connection at once, dropping whatever is buffered for it (idempotent)."""
    if transport is not None:
        transport.abort()


def abort_if_unflushed(transport: Abortable) -> None:
    """Reset the connection if the server still holds bytes the peer has not taken (a peer that
    reads nothing would keep a politely closed socket open with them)."""
    if transport.get_write_buffer_size() > 0:
        transport.abort()
