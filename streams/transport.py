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
import contextlib
import socket
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

_TCP_CORK: int | None = getattr(socket, "TCP_CORK", None)  # Linux only


@runtime_checkable
class Abortable(Protocol):
    """What we need of a transport: drop its buffers and reset the connection now."""

    def abort(self) -> None: ...

    def is_closing(self) -> bool: ...

    def get_write_buffer_size(self) -> int: ...

    def get_extra_info(self, name: str, default: Any = None) -> Any: ...


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


def tcp_socket(transport: Abortable | None) -> Any:
    """The socket under ``transport`` if :func:`corked` can use it (None without the socket, as
    under another server, or off Linux). Look it up once per connection, not per batch."""
    if transport is None or _TCP_CORK is None:
        return None
    return transport.get_extra_info("socket")


@contextlib.contextmanager
def corked(sock: Any) -> Iterator[None]:
    """Hold what the block writes to ``sock`` (from :func:`tcp_socket`) in the kernel and send it
    together when the block ends (``TCP_CORK``), so that a burst of small frames leaves as full
    packets.

    Why: each WebSocket frame is its own ASGI message and so its own ``send()`` on the socket; on
    an uncorked socket with ``TCP_NODELAY`` each one goes out as a packet at once, which cost more
    server CPU than everything else about the frame (a 2,002-event burst to 10 WebSocket clients:
    about 220 ms of server CPU uncorked, 130-145 ms corked). Nothing is held past the block:
    uncorking sends what the kernel holds. Without a socket, or once it is closed, the block just
    runs.
    """
    if sock is None or not _set_cork(sock, 1):
        yield
        return
    try:
        yield
    finally:
        _set_cork(sock, 0)


def _set_cork(sock: Any, value: int) -> bool:
    try:
        sock.setsockopt(socket.IPPROTO_TCP, _TCP_CORK, value)
    except (OSError, ValueError):  # closed meanwhile (uvloop's socket says so with ValueError)
        return False
    return True
