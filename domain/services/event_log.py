"""Reading the durable event log: history pages and the replay that resume is built on."""

from __future__ import annotations

from domain.db import fetch
from domain.tables import EventRecord
from streams.broker import Event
from streams.feed import LogBounds


class EventLog:
    async def read_after(self, user_id: int, after_id: int, limit: int) -> list[Event]:
        """Up to ``limit`` events of ``user_id`` with ids above ``after_id``, in id order."""
        rows = await fetch(
            EventRecord._meta.db,
            "SELECT seq, type, payload FROM events WHERE user_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            user_id,
            after_id,
            limit,
        )
        return [
            Event(user_id=user_id, id=row["seq"], type=row["type"], payload=row["payload"].encode()) for row in rows
        ]

    async def bounds(self, user_id: int) -> LogBounds:
        rows = await fetch(
            EventRecord._meta.db,
            "SELECT last_event_id, (SELECT min(seq) FROM events WHERE user_id = ?) AS oldest FROM users WHERE id = ?",
            user_id,
            user_id,
        )
        latest, oldest = (int(rows[0]["last_event_id"]), rows[0]["oldest"]) if rows else (0, None)
        return LogBounds(oldest_id=None if oldest is None else int(oldest), latest_id=latest)
