"""One write = one transaction holding the change and its events; publish after commit.

Usage (inside a service)::

    async with self.uow.write(user_id) as change:
        ... insert / update rows ...
        change.record("product_added", product_json)
    # committed and published here

Guarantees:
- Every event gets the user's next id: 1, 2, 3 … with no gap and no repeat, in commit order.
  Writers of one user are serialized for the whole transaction (``BEGIN IMMEDIATE`` on SQLite,
  ``SELECT … FOR UPDATE`` on the user's row on PostgreSQL), so a read-modify-write inside it is
  safe and ids follow commit order.
- If the block raises, nothing is written and nothing is published.
- A big write does not hold the event loop: its events are encoded and inserted
  :data:`APPEND_CHUNK` at a time with a yield to the loop in between (the transaction stays open
  and the user's writers keep waiting for it, so atomicity and gapless ids hold), and a big SQLite
  transaction commits in a worker thread (see :mod:`domain.sqlite`).
- Publishing happens only after the commit; a broker failure is logged, never raised: the events
  are in the log, and streams read them from there (a later event reveals the gap; the Redis
  broker also announces the users it could not publish for once it is back).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from domain.db import Database, fetch_rows
from domain.events import RECORDED_TYPES, encode_data, envelope_from_data
from domain.values import now_ms
from streams.broker import Broker, Event

logger = logging.getLogger("dropsync.uow")

APPEND_CHUNK = 500
"""Events encoded and inserted between two yields to the event loop."""
TAKE_IDS = "UPDATE users SET last_event_id = last_event_id + ? WHERE id = ? RETURNING last_event_id"
# On SQLite the two plain statements instead: a RETURNING statement ran ~10 µs there (it sets up
# a temporary table per run), the pair ~2.5 µs; both run under the write lock, so nothing comes between.
BUMP_IDS = "UPDATE users SET last_event_id = last_event_id + ? WHERE id = ?"
LAST_ID = "SELECT last_event_id FROM users WHERE id = ?"
INSERT_EVENT = "INSERT INTO events (user_id, seq, type, payload, created_at) VALUES (?, ?, ?, ?, ?)"


class Change:
    """The events one write records, in the order :meth:`record` was called.

    ``data`` is encoded when it is recorded (a snapshot: changing the dict afterwards changes
    nothing), so that a big write keeps bytes until its commit, not an object graph per event for
    the garbage collector to walk."""

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        self.pending: list[tuple[str, bytes]] = []
        # Steps run inside the transaction once the block is done, before its events are stored
        # (e.g. one that records more events after everything the block recorded).
        self.before_commit: list[Callable[[], Awaitable[None]]] = []

    def record(self, event_type: str, data: dict[str, Any]) -> bytes:
        """Add the event; returns its ``data`` as encoded (for a caller that stores it too)."""
        if event_type not in RECORDED_TYPES:
            raise ValueError(f"unknown event type {event_type!r}")
        encoded = encode_data(data)
        self.pending.append((event_type, encoded))
        return encoded


class UnitOfWork:
    """Opens write transactions for services and publishes what they recorded."""

    def __init__(self, db: Database, broker: Broker) -> None:
        self.db = db
        self.broker = broker
        # Called with each commit's events after they are published (e.g. to wake the push
        # dispatcher); a listener must return at once and never raise.
        self.after_commit: list[Callable[[Sequence[Event]], None]] = []
        # Called with every change inside its transaction, after the change's own steps and before
        # its events are stored (e.g. to keep an Idempotency-Key with the change); raising rolls back.
        self.before_commit: list[Callable[[Change], Awaitable[None]]] = []

    @asynccontextmanager
    async def write(self, user_id: int) -> AsyncIterator[Change]:
        change = Change(user_id)
        async with self.db.write():
            if self.db.is_postgres:
                await self.db.fetch("SELECT id FROM users WHERE id = ? FOR UPDATE", user_id)
            yield change
            for step in change.before_commit:
                await step()
            for hook in self.before_commit:
                await hook(change)
            events = await self._append(change)
        if events:
            committed_at = time.time()
            for event in events:
                event.committed_at = committed_at
            await self._publish(events)

    async def _append(self, change: Change) -> list[Event]:
        """Take the user's next ids and insert the events, :data:`APPEND_CHUNK` at a time (encoded,
        then one ``executemany``), yielding to the event loop between chunks: a big write (a feed
        import records tens of thousands of events) holds its transaction, not the event loop."""
        count = len(change.pending)
        if not count:
            return []
        user_id = change.user_id
        if self.db.is_postgres:
            rows = await fetch_rows(self.db.engine, TAKE_IDS, count, user_id)
        else:
            await self.db.fetch(BUMP_IDS, count, user_id)
            rows = await fetch_rows(self.db.engine, LAST_ID, user_id)
        if not rows:
            raise LookupError(f"user {user_id} does not exist")
        first_id = int(rows[0][0]) - count + 1
        timestamp = now_ms()
        events: list[Event] = []
        for start in range(0, count, APPEND_CHUNK):
            if start:
                await asyncio.sleep(0)
            chunk = [
                Event(
                    user_id=user_id,
                    id=first_id + offset,
                    type=event_type,
                    payload=envelope_from_data(
                        event_id=first_id + offset,
                        event_type=event_type,
                        data=data,
                        timestamp=timestamp,
                        user_id=user_id,
                    ),
                )
                for offset, (event_type, data) in enumerate(change.pending[start : start + APPEND_CHUNK], start)
            ]
            await self.db.execute_many(
                INSERT_EVENT, [(user_id, event.id, event.type, event.payload.decode(), timestamp) for event in chunk]
            )
            events.extend(chunk)
        return events

    async def _publish(self, events: list[Event]) -> None:
        try:
            await self.broker.publish(events)
        except Exception:
            # The events are committed: connections see the gap in ids and read them from the log.
            logger.exception(
                "publishing events %s..%s of user %s failed", events[0].id, events[-1].id, events[0].user_id
            )
        for listener in self.after_commit:
            listener(events)
