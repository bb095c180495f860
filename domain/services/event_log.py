"""Reading the durable event log: history pages and the replay that resume is built on."""

from __future__ import annotations

from domain.tables import EventRecord, User
from streams.broker import Event
from streams.feed import LogBounds


class EventLog:
    async def read_after(self, user_id: int, after_id: int, limit: int) -> list[Event]:
        """Up to ``limit`` events of ``user_id`` with ids above ``after_id``, in id order."""
        rows = (
            await EventRecord.select(EventRecord.seq, EventRecord.type, EventRecord.payload)
            .where((EventRecord.user_id == user_id) & (EventRecord.seq > after_id))
            .order_by(EventRecord.seq)
            .limit(limit)
        )
        return [
            Event(user_id=user_id, id=row["seq"], type=row["type"], payload=row["payload"].encode()) for row in rows
        ]

    async def bounds(self, user_id: int) -> LogBounds:
        latest = await User.select(User.last_event_id).where(User.id == user_id).first()
        oldest = (
            await EventRecord.select(EventRecord.seq)
            .where(EventRecord.user_id == user_id)
            .order_by(EventRecord.seq)
            .first()
        )
        return LogBounds(
            oldest_id=oldest["seq"] if oldest else None,
            latest_id=int(latest["last_event_id"]) if latest else 0,
        )
