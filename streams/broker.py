"""The broker: moves encoded events from the process that recorded them to every connection of
their user. It moves bytes, never ORM objects, and it may lose them (a restart, a Redis blip): the
event log in the database is the truth, and a connection that sees a gap in its ids fills it from
there.

Guarantees of every backend:
- ``publish`` never waits on a subscriber: each subscription has a bounded queue filled with
  a non-blocking append; a subscription that still holds ``maxsize`` events when a publish
  arrives is closed (:attr:`~streams.endings.Ending.SLOW_CONSUMER`) and its connection resumes
  from its last id. One publish
  is queued whole, so a burst bigger than the queue (a bulk write) does not close a subscriber
  that keeps up.
- Events of one user reach a subscription in the order they were published.
- A subscription only ever sees the events of the user it was opened for.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import msgspec

from streams.endings import Ending

if TYPE_CHECKING:
    from streams.metrics import Metrics

logger = logging.getLogger("dropsync.broker")


class Event(msgspec.Struct, kw_only=True, gc=False, eq=False, repr_omit_defaults=True):
    """One recorded event on its way: ``payload`` is the JSON envelope, encoded once.

    The transport frames are derived from it at most once per event and shared by every
    connection in the process: ``sse_frame`` (``id:``/``event:``/``data:``) and ``text``
    (the WebSocket text frame).

    It holds only numbers, text and bytes, so it is invisible to the garbage collector
    (``gc=False``): a write of 20,000 events does not make the collector's full passes, which
    stop the event loop, walk 20,000 more objects.
    """

    user_id: int
    id: int
    type: str
    payload: bytes
    # time.time() of the commit, for the delivery-lag metric (None for events read from the log)
    committed_at: float | None = None
    _sse_frame: bytes | None = None
    _text: str | None = None

    @property
    def sse_frame(self) -> bytes:
        if self._sse_frame is None:
            self._sse_frame = b"id: %d\nevent: %s\ndata: %s\n\n" % (self.id, self.type.encode(), self.payload)
        return self._sse_frame

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self.payload.decode()
        return self._text

    def __repr__(self) -> str:
        return f"Event(user_id={self.user_id}, id={self.id}, type={self.type!r})"


class SubscriptionClosed(Exception):
    """The subscription ended; ``reason`` says why (e.g. ``SLOW_CONSUMER``, ``SERVER_RESTART``)."""

    def __init__(self, reason: Ending) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(eq=False, slots=True)
class Subscription:
    """A bounded, in-order queue of one connection's events. Owned by the broker that made it."""

    user_id: int
    maxsize: int
    _items: list[Event] = field(default_factory=list)  # a list: lighter than a deque when idle
    _waiter: asyncio.Future[None] | None = None  # the consumer's, while it waits
    closed_reason: Ending | None = None
    # Set when the queue may miss events (a broker reconnect, or an overflow while the consumer
    # reads the log anyway): the consumer must read the log after its cursor before going on.
    catch_up_requested: bool = False
    # While the consumer replays from the log, an overflow drops the queue and asks for a
    # catch-up instead of closing the subscription: the log has every dropped event.
    overflow_to_log: bool = False
    # Set by the hub when the connection has been quiet for a heartbeat: the consumer wakes with
    # an empty batch and sends a keep-alive (an SSE ``: ping``).
    heartbeat_requested: bool = False

    def push(self, event: Event) -> None:
        """Queue one event; see :meth:`push_many`."""
        self.push_many((event,))

    def push_many(self, events: Sequence[Event]) -> None:
        """Queue the events of one publish without waiting, in order; close the subscription
        instead if ``maxsize`` events or more are still waiting (the consumer fell behind).

        The events of one publish go in whole: the queue holds at most ``maxsize`` events plus
        one publish, and a consumer that keeps up is never closed by the size of a burst.
        """
        if self.closed_reason is not None or not events:
            return
        if len(self._items) >= self.maxsize:
            if self.overflow_to_log:
                self._items.clear()
                self.request_catch_up()
                return
            logger.warning("closing a slow consumer of user %s: %s events queued", self.user_id, len(self._items))
            self.close(Ending.SLOW_CONSUMER)
            return
        self._items.extend(events)
        self._wake()

    def request_catch_up(self) -> None:
        """Tell the consumer to read the log after its cursor: events may have bypassed the queue."""
        if self.closed_reason is None:
            self.catch_up_requested = True
            self._wake()

    def _wake(self) -> None:
        # A bare future rather than an asyncio.Event: this runs once per event per connection.
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def request_heartbeat(self) -> None:
        """Wake the consumer with an empty batch, so that it can send a keep-alive."""
        if self.closed_reason is None:
            self.heartbeat_requested = True
            self._wake()

    def take_catch_up(self) -> bool:
        """True once after :meth:`request_catch_up` (the consumer then reads the log)."""
        requested, self.catch_up_requested = self.catch_up_requested, False
        return requested

    def close(self, reason: Ending = Ending.CLOSED) -> None:
        """End the subscription: the consumer's next :meth:`next_batch` raises at once."""
        if self.closed_reason is None:
            self.closed_reason = reason
            self._items.clear()
            self._wake()

    async def next_batch(self) -> list[Event]:
        """Wait for events and return every one queued, oldest first; empty after a wake-up by
        :meth:`request_heartbeat` or :meth:`request_catch_up` with nothing queued.

        Raises :class:`SubscriptionClosed` once the subscription is closed.
        """
        self.heartbeat_requested = False
        while not self._items and not self.catch_up_requested and not self.heartbeat_requested:
            if self.closed_reason is not None:
                raise SubscriptionClosed(self.closed_reason)
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self.closed_reason is not None:
            raise SubscriptionClosed(self.closed_reason)
        batch, self._items = self._items, []
        return batch

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True, slots=True)
class Presence:
    """Who is connected: open connections by transport, and the ids of the users they belong to."""

    by_transport: dict[str, int]
    user_ids: frozenset[int]

    @classmethod
    def merge(cls, parts: Iterable[Presence]) -> Presence:
        by_transport: dict[str, int] = {}
        user_ids: set[int] = set()
        for part in parts:
            for transport, count in part.by_transport.items():
                by_transport[transport] = by_transport.get(transport, 0) + count
            user_ids |= part.user_ids
        return cls(by_transport, frozenset(user_ids))


class Broker(Protocol):
    """What the domain publishes to and the transports subscribe to."""

    async def start(self) -> None:
        """Connect; called once at start-up before any publish or subscribe."""

    async def stop(self) -> None:
        """Close every subscription (reason ``SERVER_RESTART``) and disconnect."""

    async def publish(self, events: Sequence[Event]) -> None:
        """Hand committed events to every subscription of their user, in order, without waiting on any."""

    def subscribe(self, user_id: int, maxsize: int) -> Subscription:
        """Open a subscription that receives every event of ``user_id`` published from now on."""

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget ``subscription``; idempotent."""

    async def ping(self) -> None:
        """Raise if the broker cannot carry events right now."""

    async def presence(self, local: Presence) -> Presence:
        """Share this process's presence and return that of every process the broker connects."""


def group_by_user(events: Iterable[Event]) -> dict[int, list[Event]]:
    """The events of one publish, per user, in order."""
    by_user: dict[int, list[Event]] = {}
    for event in events:
        by_user.setdefault(event.user_id, []).append(event)
    return by_user


class LocalFanout:
    """The in-process part of every backend: user id -> the subscriptions open in this process."""

    def __init__(self) -> None:
        self._by_user: defaultdict[int, set[Subscription]] = defaultdict(set)

    def subscribe(self, user_id: int, maxsize: int) -> Subscription:
        subscription = Subscription(user_id=user_id, maxsize=maxsize)
        self._by_user[user_id].add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._by_user.get(subscription.user_id)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._by_user[subscription.user_id]

    def deliver(self, events: Iterable[Event]) -> None:
        """Queue ``events`` (one publish) on every subscription of their users, as one burst per user."""
        for user_id, burst in group_by_user(events).items():
            # A copy: a push may close a subscription, and unsubscribe may run before we finish.
            for subscription in tuple(self._by_user.get(user_id, ())):
                subscription.push_many(burst)

    def request_catch_up(self, user_id: int | None = None) -> None:
        """The subscriptions of ``user_id`` (all, if None) read their user's log before going on
        (after a broker outage)."""
        groups = self._by_user.values() if user_id is None else [self._by_user.get(user_id, set())]
        for subscribers in tuple(groups):
            for subscription in tuple(subscribers):
                subscription.request_catch_up()

    def close_all(self, reason: Ending) -> None:
        for subscribers in tuple(self._by_user.values()):
            for subscription in tuple(subscribers):
                subscription.close(reason)
        self._by_user.clear()

    @property
    def subscription_count(self) -> int:
        return sum(len(subscribers) for subscribers in self._by_user.values())


class MemoryBroker:
    """The single-process backend (``memory://``): publishing is a direct in-process fan-out."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        self.local = LocalFanout()
        self.metrics = metrics

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self.local.close_all(Ending.SERVER_RESTART)

    async def publish(self, events: Sequence[Event]) -> None:
        self.local.deliver(events)
        if self.metrics is not None:
            self.metrics.published.inc(len(events))

    def subscribe(self, user_id: int, maxsize: int) -> Subscription:
        return self.local.subscribe(user_id, maxsize)

    def unsubscribe(self, subscription: Subscription) -> None:
        self.local.unsubscribe(subscription)

    async def ping(self) -> None:
        return None

    async def presence(self, local: Presence) -> Presence:
        return local  # one process: it is the whole picture


def broker_for_url(url: str, namespace: str = "dropsync", metrics: Metrics | None = None) -> Broker:
    """``memory://`` (one process) or ``redis://host:port/db`` (several processes or hosts).

    ``namespace`` prefixes every Redis key and channel: deployments sharing a Redis need their own.
    """
    if url.startswith("memory://"):
        return MemoryBroker(metrics)
    if url.startswith(("redis://", "rediss://")):
        from streams.redis_broker import RedisBroker  # noqa: PLC0415 - redis is imported only when used

        return RedisBroker(url, namespace, metrics)
    raise ValueError(f"broker_url {url!r}: use memory:// or redis://host:port/db")
