"""The stream side of a process: its settings, its open connections, and shutdown.

The hub is what the SSE and WebSocket endpoints share. It owns the registry of open connections
(for ``/ws/stats``) and ends them all on shutdown: uvicorn waits forever for open streams on
SIGTERM, and Litestar's shutdown hooks run only after they are gone, so the hub listens for the
signal itself (:meth:`Hub.watch_signals`) and ends every feed, which ends each stream cleanly
(WebSocket close 1012, SSE after a last event). A stream still open ``SHUTDOWN_GRACE_S`` later
belongs to a client that reads nothing: its socket is reset, so that shutdown is bounded whatever
uvicorn's flags.

Giving up on a client (:meth:`Hub.give_up`) always resets its socket (see :mod:`streams.transport`):
a socket closed politely stays open, with its buffers, for as long as the peer reads nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import anyio

from streams.broker import Broker, Event, Presence
from streams.endings import Ending
from streams.feed import EventFeed, EventLogReader, StreamRequest
from streams.metrics import TRANSPORTS, Metrics
from streams.transport import Abortable, abort, abort_if_unflushed

logger = logging.getLogger("dropsync.streams")

PRESENCE_TIMEOUT_S = 1.0
PRESENCE_EVERY_S = 5.0
PRESENCE_DEBOUNCE_S = 0.5
SHUTDOWN_GRACE_S = 3.0
"""After a shutdown begins, how long streams have to say goodbye before their sockets are reset."""
GOODBYE_S = 1.0
"""After a signal, how long uvicorn's own shutdown waits for the streams' goodbyes (see watch_signals)."""

TokenCheck = Callable[[Collection[str]], Awaitable[set[str]]]
"""Which of the given tokens are still valid."""

Authenticate = Callable[[str | None], Awaitable[int]]
"""Turns a token (or None) into a user id; raises :class:`PermissionError` when it cannot."""


@dataclass(frozen=True, slots=True)
class StreamSettings:
    heartbeat_s: float = 15.0
    queue_size: int = 2000
    send_timeout_s: float = 10.0
    sse_retry_ms: int = 3000
    token_check_s: float = 30.0
    # The site's own origins (https://shop.example.com): the access_token cookie counts only for
    # pages of these. Empty: the origin must match the host the request was addressed to.
    public_origins: tuple[str, ...] = ()


@dataclass(eq=False, slots=True)
class Connection:
    """One open stream, as ``/ws/stats`` shows it, and what the send watchdog needs."""

    id: str
    user_id: int
    transport: str
    feed: EventFeed
    connected_at: float = field(default_factory=time.time)
    last_event_id: int | None = None
    # Send timeout, enforced by one watchdog for all connections (Hub.watch_sends_forever) instead
    # of a timer per send: a transport sets ``sending_since`` around each send; the watchdog gives
    # up on a send that takes too long (Hub.give_up: ``stalled``, the feed ended, the socket reset).
    sending_since: float | None = None
    stalled: bool = False
    # The server's transport (socket) under this connection (None if the server does not expose it).
    socket: Abortable | None = None
    # When the transport last finished a send (time.monotonic()): an SSE connection quiet for a
    # heartbeat is asked for a ``: ping`` by the same sweep.
    last_sent_at: float = field(default_factory=time.monotonic)
    # The token the stream was opened with: checked again every ``token_check_s`` (revoked or
    # expired: the stream ends with ``unauthorized``).
    credential: str | None = None

    def stats(self) -> dict[str, Any]:
        subscription = self.feed.subscription
        return {
            "connection_id": self.id,
            "transport": self.transport,
            "connected_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.connected_at)),
            "last_event_id": self.last_event_id,
            "queued": len(subscription) if subscription is not None else 0,
        }


class Hub:
    """Open connections of this process, their shared dependencies, and their shutdown."""

    def __init__(
        self,
        broker: Broker,
        log: EventLogReader,
        authenticate: Authenticate,
        settings: StreamSettings,
        metrics: Metrics | None = None,
        check_tokens: TokenCheck | None = None,
        event_types: Collection[str] | None = None,
    ) -> None:
        self.broker = broker
        self.event_types = frozenset(event_types) if event_types is not None else None
        self.check_tokens = check_tokens
        self.metrics = metrics or Metrics()
        self.log = log
        self.authenticate = authenticate
        self.settings = settings
        self.connections: dict[str, Connection] = {}
        self.shutting_down = asyncio.Event()
        self._ids = itertools.count(1)
        self._prefix = f"{int(time.time()):x}"
        self._restore_signals: dict[int, Any] = {}
        self._handovers: set[asyncio.Task[None]] = set()
        self._emptied = asyncio.Event()  # set whenever the last connection closes
        self._presence_changed = asyncio.Event()

    def stream_request(self, last_event_id: str | None, types: str | None) -> StreamRequest:
        """A stream's query, checked (raises :class:`~streams.feed.BadStreamRequest` naming the
        problem, e.g. an unknown event type in ``types``)."""
        return StreamRequest.parse(last_event_id, types, self.event_types)

    def open(
        self,
        user_id: int,
        transport: str,
        request: StreamRequest,
        credential: str | None = None,
        socket: Abortable | None = None,
    ) -> Connection:
        feed = EventFeed(self.broker, self.log, user_id, request, self.settings.queue_size)
        connection = Connection(
            id=f"{self._prefix}-{next(self._ids)}",
            user_id=user_id,
            transport=transport,
            feed=feed,
            credential=credential,
            socket=socket,
        )
        self.connections[connection.id] = connection
        self._emptied.clear()
        self.metrics.connections[transport].inc()
        self._presence_changed.set()
        if self.shutting_down.is_set():
            feed.end(Ending.SERVER_RESTART)  # too late: it ends as soon as it starts
        return connection

    def close(self, connection: Connection) -> None:
        """Forget a connection whose stream has ended. If the server still holds bytes for it
        (the farewell, a close frame) that the peer has not taken within the send timeout (or a
        second, during a shutdown), its socket is reset rather than left open to flush them."""
        connection.feed.close()
        if self.connections.pop(connection.id, None) is not None:
            self.metrics.connections[connection.transport].dec()
            self._presence_changed.set()
            if not self.connections:
                self._emptied.set()
            socket = connection.socket
            if socket is not None and not connection.stalled and socket.get_write_buffer_size() > 0:
                linger = 1.0 if self.shutting_down.is_set() else self.settings.send_timeout_s
                asyncio.get_running_loop().call_later(linger, abort_if_unflushed, socket)

    def sent(self, connection: Connection, batch: list[Event]) -> None:
        """Note a batch written to ``connection``: its last id, the count and the delivery lag."""
        connection.last_event_id = batch[-1].id
        self.metrics.delivered[connection.transport].inc(len(batch))
        committed_at = batch[0].committed_at  # the oldest of the batch: the worst lag in it
        if committed_at is not None:
            self.metrics.lag[connection.transport].observe(max(0.0, time.time() - committed_at))

    def give_up(self, connection: Connection) -> None:
        """Stop serving a client that takes nothing: end its feed and reset its socket, which
        unblocks a pending send and gives the socket's buffers back now (idempotent)."""
        if connection.stalled:
            return
        connection.stalled = True
        connection.feed.end(Ending.SLOW_CONSUMER)
        abort(connection.socket)

    def fell_behind(self, connection: Connection) -> None:
        """Note a connection closed for falling too far behind (queue full or send timeout)."""
        self.metrics.slow_consumer_closes[connection.transport].inc()

    def local_presence(self) -> Presence:
        by_transport = dict.fromkeys(TRANSPORTS, 0)
        for connection in self.connections.values():
            by_transport[connection.transport] = by_transport.get(connection.transport, 0) + 1
        return Presence(by_transport, frozenset(connection.user_id for connection in self.connections.values()))

    async def stats(self, user_id: int) -> dict[str, Any]:
        """The caller's own connections here, and totals over every process the broker connects
        (this process alone if the broker cannot answer in time)."""
        local = self.local_presence()
        try:
            with anyio.fail_after(PRESENCE_TIMEOUT_S):
                everywhere = await self.broker.presence(local)
        except Exception:
            logger.warning("connection totals of other processes are unavailable", exc_info=True)
            everywhere = local
        mine = [connection.stats() for connection in self.connections.values() if connection.user_id == user_id]
        return {
            "connections": mine,
            "totals": {
                "connections": sum(everywhere.by_transport.values()),
                "by_transport": everywhere.by_transport,
                "users_online": len(everywhere.user_ids),
            },
        }

    async def share_presence_forever(self) -> None:
        """Keep this process's numbers in the totals other processes report: within
        ``PRESENCE_DEBOUNCE_S`` of a change, and every ``PRESENCE_EVERY_S`` anyway (a no-op with
        the memory broker)."""
        while True:
            with anyio.move_on_after(PRESENCE_EVERY_S):
                await self._presence_changed.wait()
            self._presence_changed.clear()
            try:
                await self.broker.presence(self.local_presence())
            except Exception:
                logger.debug("sharing presence failed", exc_info=True)
            await anyio.sleep(PRESENCE_DEBOUNCE_S)

    async def watch_sends_forever(self) -> None:
        """One sweep over all connections, a few times per timeout and heartbeat, instead of a
        timer per send or per connection:

        - give up on every connection whose current send has taken longer than ``send_timeout_s``
          (a client that stopped reading): :meth:`give_up`;
        - ask every SSE connection that would be quiet for ``heartbeat_s`` before the next sweep
          for a ``: ping`` now: so no SSE stream is silent longer than ``heartbeat_s`` (plus what
          holds the event loop), where asking once quiet for ``heartbeat_s`` let a stream wait up
          to a sweep period more.
        """
        timeout, heartbeat = self.settings.send_timeout_s, self.settings.heartbeat_s
        period = min(1.0, timeout / 4, heartbeat / 4)
        while True:
            await anyio.sleep(period)
            try:
                self._sweep(time.monotonic(), timeout, heartbeat - period)
            except Exception:
                logger.exception("the connection sweep failed; it runs again shortly")

    def _sweep(self, now: float, timeout: float, ping_after: float) -> None:
        for connection in tuple(self.connections.values()):
            started = connection.sending_since
            if started is not None:
                if now - started > timeout and not connection.stalled:
                    logger.info("giving up on connection %s: a send took over %ss", connection.id, timeout)
                    self.give_up(connection)
            elif connection.transport == "sse" and now - connection.last_sent_at >= ping_after:
                subscription = connection.feed.subscription
                if subscription is not None:
                    subscription.request_heartbeat()

    async def check_tokens_forever(self) -> None:
        """Every ``token_check_s``, end the streams whose token was revoked or has expired: one
        query for all open streams, not one per stream."""
        if self.check_tokens is None:
            return
        while True:
            await anyio.sleep(self.settings.token_check_s)
            open_tokens = {c.credential for c in self.connections.values() if c.credential is not None}
            if not open_tokens:
                continue
            try:
                valid = await self.check_tokens(open_tokens)
            except Exception:
                logger.exception("checking the tokens of open streams failed; trying again later")
                continue
            for connection in tuple(self.connections.values()):
                if connection.credential is not None and connection.credential not in valid:
                    connection.feed.end(Ending.UNAUTHORIZED)

    def shutdown(self) -> None:
        """End every stream (its feed ends with ``SERVER_RESTART``), including those whose feed
        has not subscribed yet and those opened from now on; reset the sockets of those still
        open ``SHUTDOWN_GRACE_S`` later (clients that read nothing cannot hold up the exit)."""
        if self.shutting_down.is_set():
            return
        logger.info("shutting down %d open streams", len(self.connections))
        self.shutting_down.set()
        for connection in tuple(self.connections.values()):
            connection.feed.end(Ending.SERVER_RESTART)
        asyncio.get_running_loop().call_later(SHUTDOWN_GRACE_S, self._reset_stragglers)

    def _reset_stragglers(self) -> None:
        for connection in tuple(self.connections.values()):
            logger.info("resetting connection %s: it took no farewell within %ss", connection.id, SHUTDOWN_GRACE_S)
            self.give_up(connection)

    def watch_signals(self) -> None:
        """Chain SIGTERM/SIGINT so streams end as soon as the server is asked to stop.

        The previous handler (uvicorn's) runs once the streams have said goodbye, or after
        ``GOODBYE_S`` at most: uvicorn's own shutdown closes every WebSocket with a bare 1012 and
        no reason, and must not overtake our ``error`` frame and close. Meanwhile uvicorn still
        accepts connections, and new streams get the ``server_restart`` farewell at once. Only
        possible in the main thread; a server run in a thread (tests) calls :meth:`shutdown` itself.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)

            def handler(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
                loop.call_soon_threadsafe(self._shut_down_then, previous, signum, frame)

            self._restore_signals[sig] = previous
            signal.signal(sig, handler)

    def _shut_down_then(self, previous: Any, signum: int, frame: FrameType | None) -> None:
        self.shutdown()
        if callable(previous):
            task = asyncio.get_running_loop().create_task(self._hand_over(previous, signum, frame))
            self._handovers.add(task)
            task.add_done_callback(self._handovers.discard)

    async def _hand_over(
        self, previous: Callable[[int, FrameType | None], object], signum: int, frame: FrameType | None
    ) -> None:
        """Pass the signal on once every stream has gone (or after ``GOODBYE_S``)."""
        if self.connections:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._emptied.wait(), GOODBYE_S)
        previous(signum, frame)

    def restore_signals(self) -> None:
        for sig, previous in self._restore_signals.items():
            signal.signal(sig, previous)
        self._restore_signals.clear()
