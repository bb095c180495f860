"""An in-memory event log for unit tests of :mod:`streams`: the :class:`~streams.feed.EventLogReader`
interface over a list (integration tests use the real server and database)."""

from __future__ import annotations

from streams.broker import Event
from streams.feed import LogBounds

USER = 7


def make_event(event_id: int, event_type: str = "product_updated", user_id: int = USER) -> Event:
    payload = b'{"id":%d,"type":"%s","data":{},"timestamp":0,"user_id":%d}' % (event_id, event_type.encode(), user_id)
    return Event(user_id=user_id, id=event_id, type=event_type, payload=payload)


class FakeLog:
    """The log reader interface over a list; ``latest`` is the last id ever given (kept or not)."""

    def __init__(self) -> None:
        self.events: dict[int, list[Event]] = {}
        self.latest: dict[int, int] = {}
        self.reads: list[tuple[int, int]] = []

    def record(self, count: int, event_type: str = "product_updated", user_id: int = USER) -> list[Event]:
        start = self.latest.get(user_id, 0)
        new = [make_event(start + n, event_type, user_id) for n in range(1, count + 1)]
        self.events.setdefault(user_id, []).extend(new)
        self.latest[user_id] = start + count
        return new

    def prune(self, up_to: int, user_id: int = USER) -> None:
        self.events[user_id] = [e for e in self.events.get(user_id, []) if e.id > up_to]

    async def read_after(self, user_id: int, after_id: int, limit: int) -> list[Event]:
        self.reads.append((after_id, limit))
        return [e for e in self.events.get(user_id, []) if e.id > after_id][:limit]

    async def bounds(self, user_id: int) -> LogBounds:
        kept = self.events.get(user_id, [])
        return LogBounds(oldest_id=kept[0].id if kept else None, latest_id=self.latest.get(user_id, 0))
