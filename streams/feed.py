"""The events one connection sends, lossless: replay from the log, then live, no gap, no duplicate.

How (the same on SSE and WebSocket):

1. Subscribe to the broker *first*, so nothing published from now on can be missed.
2. Replay from the event log every event after the client's last id, page by page.
3. Drain the live queue, skipping ids already sent (the seam between 2 and 3). An id further
   ahead than the next expected one means the broker lost or reordered something: the gap is
   filled from the log before anything else is sent.
4. When the queue may have missed events without a later one showing the gap (the broker
   reconnected, or the queue overflowed during the replay and was dropped), the subscription
   asks for a catch-up and the feed reads the log after its cursor.

The feed keeps ``cursor``: the highest id of the user that this connection has dealt with (sent,
or filtered out by ``types``). It is what the client resumes from.
"""

from __future__ import annotations

import asyncio
import difflib
import time
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from typing import Protocol

import msgspec

from streams.broker import Broker, Event, Subscription, SubscriptionClosed
from streams.endings import Ending

REPLAY_PAGE = 500
LIVE_PAGE = 20
"""A live burst bigger than this (a big write's) goes to the transport in pieces, yielding between."""
CONNECTION_TYPES = frozenset({"connected", "error", "resync_required"})


@dataclass(frozen=True, slots=True)
class LogBounds:
    """The kept part of a user's log: ``oldest_id`` (None when nothing is kept) and ``latest_id`` (0: none yet)."""

    oldest_id: int | None
    latest_id: int


class EventLogReader(Protocol):
    """Read access to the durable log; the domain's event log provides it."""

    async def read_after(self, user_id: int, after_id: int, limit: int) -> list[Event]:
        """Up to ``limit`` events of ``user_id`` with ids above ``after_id``, in id order."""
        ...

    async def bounds(self, user_id: int) -> LogBounds:
        """The oldest kept and the latest recorded id of ``user_id``."""
        ...


class BadStreamRequest(ValueError):
    """A stream's query parameters are malformed; the message names the parameter."""


@dataclass(frozen=True, slots=True)
class StreamRequest:
    """What a client asks of a stream: where to resume, and which types it wants (None: all)."""

    last_event_id: int | None
    types: frozenset[str] | None

    @classmethod
    def parse(
        cls, last_event_id: str | None, types: str | None, known_types: Collection[str] | None = None
    ) -> StreamRequest:
        """Check and decode the query; ``known_types`` (when given) are the event types a client may
        ask for besides the connection messages: any other name is refused, so that a typo is an
        error rather than a stream that never delivers."""
        resume: int | None = None
        if last_event_id is not None and last_event_id.strip() != "":
            try:
                resume = int(last_event_id)
            except ValueError:
                raise BadStreamRequest(f"last_event_id must be a whole number, got {last_event_id!r}") from None
            if not 0 <= resume < 2**63:
                raise BadStreamRequest("last_event_id must be between 0 and 2**63-1")
        wanted: frozenset[str] | None = None
        if types is not None:
            wanted = frozenset(name.strip() for name in types.split(",") if name.strip())
            if not wanted or any(len(name) > 40 for name in wanted):
                raise BadStreamRequest("types must be a comma-separated list of event types")
            if known_types is not None:
                _refuse_unknown(wanted, frozenset(known_types) | CONNECTION_TYPES)
        return cls(last_event_id=resume, types=wanted)


def _refuse_unknown(wanted: frozenset[str], known: frozenset[str]) -> None:
    unknown = sorted(wanted - known)
    if not unknown:
        return
    close = difflib.get_close_matches(unknown[0], known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    names = ", ".join(repr(name) for name in unknown)
    plural = "s" if len(unknown) > 1 else ""
    raise BadStreamRequest(f"types: unknown event type{plural} {names}{hint}")


_encoder = msgspec.json.Encoder()


def connection_message(message_type: str, data: dict[str, object]) -> bytes:
    """A connection event's envelope (not recorded, so no ``id``)."""
    return _encoder.encode({"type": message_type, "data": data, "timestamp": time.time_ns() // 1_000_000})


class EventFeed:
    """One connection's event source. Open with :meth:`open`, then iterate :meth:`batches`."""

    def __init__(
        self, broker: Broker, log: EventLogReader, user_id: int, request: StreamRequest, queue_size: int
    ) -> None:
        self.broker = broker
        self.log = log
        self.user_id = user_id
        self.request = request
        self.queue_size = queue_size
        self.cursor = 0
        self.subscription: Subscription | None = None
        self.end_reason: Ending | None = None

    async def open(self) -> bytes | None:
        """Subscribe, then fix the starting point.

        Returns the ``resync_required`` message when the client's resume point can no longer be
        served losslessly (older than the retention, or ahead of the log), else None.
        """
        self.subscription = self.broker.subscribe(self.user_id, self.queue_size)
        # Until the replay is done, live events that pile up are in the log anyway: an overflow
        # (a burst while the first page is read, or while `connected` is sent) drops the queue and
        # asks for a catch-up instead of closing a connection that has not started.
        self.subscription.overflow_to_log = True
        if self.end_reason is not None:
            self.subscription.close(self.end_reason)  # ended before it began (a shutdown)
        bounds = await self.log.bounds(self.user_id)
        last_id = self.request.last_event_id
        if last_id is None:
            self.cursor = bounds.latest_id  # a new client starts from now
            return None
        pruned = bounds.oldest_id is not None and last_id < bounds.oldest_id - 1
        nothing_kept_but_missed = bounds.oldest_id is None and last_id < bounds.latest_id
        if pruned or nothing_kept_but_missed or last_id > bounds.latest_id:
            self.cursor = bounds.latest_id
            return connection_message(
                "resync_required",
                {
                    "last_event_id": last_id,
                    "oldest_id": bounds.oldest_id,
                    "latest_id": bounds.latest_id,
                    "message": "reload your data, then go on from latest_id",
                },
            )
        self.cursor = last_id
        return None

    def end(self, reason: Ending) -> None:
        """End the feed with ``reason``: :meth:`batches` raises :class:`~streams.broker.SubscriptionClosed`
        at its next step, even if :meth:`open` has not run yet."""
        self.end_reason = reason
        if self.subscription is not None:
            self.subscription.close(reason)

    def close(self) -> None:
        if self.subscription is not None:
            self.broker.unsubscribe(self.subscription)
            self.subscription.close()

    async def batches(self) -> AsyncIterator[list[Event]]:
        """The replay, then live batches, each in id order and filtered by ``types``; an empty
        batch asks the transport for a keep-alive (see ``Subscription.request_heartbeat``).

        Ends by raising :class:`~streams.broker.SubscriptionClosed` (slow consumer, shutdown), also
        between two pages of the replay.
        """
        subscription = self.subscription
        if subscription is None:
            raise RuntimeError("EventFeed.open() must be called before batches()")
        while True:  # replay (overflows meanwhile go to the log: see open())
            if subscription.closed_reason is not None:
                raise SubscriptionClosed(subscription.closed_reason)
            page = await self._read_page(REPLAY_PAGE)
            if page:
                yield self._wanted(page)
            if len(page) < REPLAY_PAGE:
                break
        subscription.overflow_to_log = False
        while True:  # live
            live = await subscription.next_batch()
            out = await self._continue(live, subscription.take_catch_up())
            if not live and not out:
                yield []  # a heartbeat request: the transport sends a keep-alive
                continue
            # A big write's burst goes out a page at a time, yielding to the event loop between
            # pages: one connection's 20,000 frames must not hold everyone else's.
            wanted = self._wanted(out)
            for start in range(0, len(wanted), LIVE_PAGE):
                if start:
                    await asyncio.sleep(0)
                yield wanted[start : start + LIVE_PAGE]

    async def _continue(self, live: list[Event], catch_up: bool) -> list[Event]:
        """The events that continue the cursor: the log's first if a catch-up was asked for, then
        the live ones, skipping ids sent already and filling any gap from the log."""
        out: list[Event] = []
        if catch_up:
            out.extend(await self._read_log_to_end())
        for event in live:
            if event.id <= self.cursor:
                continue  # sent already, by the replay or a gap fill
            if event.id > self.cursor + 1:
                out.extend(await self._fill_gap(until=event.id))
            if event.id == self.cursor + 1:
                out.append(event)
                self.cursor = event.id
        return out

    async def _read_page(self, limit: int) -> list[Event]:
        """The next events after the cursor from the log, which must continue it without a hole:
        a hole means the retention pruned them meanwhile, and the stream ends
        (``RECONNECT``) so that the client reconnects and is told ``resync_required``, rather than
        skip them."""
        page = await self.log.read_after(self.user_id, self.cursor, limit)
        if page:
            if page[0].id != self.cursor + 1:
                raise SubscriptionClosed(Ending.RECONNECT)
            self.cursor = page[-1].id
        return page

    async def _read_log_to_end(self) -> list[Event]:
        """Every logged event after the cursor (the queue may have missed some)."""
        events: list[Event] = []
        while True:
            page = await self._read_page(REPLAY_PAGE)
            events.extend(page)
            if len(page) < REPLAY_PAGE:
                return events

    async def _fill_gap(self, until: int) -> list[Event]:
        """Read the ids between the cursor and ``until`` (exclusive) from the log."""
        filled: list[Event] = []
        while self.cursor < until - 1:
            page = await self._read_page(min(REPLAY_PAGE, until - 1 - self.cursor))
            if not page:  # committed before ``until`` was published, so only pruning removes them
                raise SubscriptionClosed(Ending.RECONNECT)
            filled.extend(page)
        return filled

    def _wanted(self, events: list[Event]) -> list[Event]:
        types = self.request.types
        return events if types is None else [event for event in events if event.type in types]
