"""Pruning the event log: an event is kept while it is younger than ``days`` OR among the last
``min_events`` of its user, whichever keeps more (SPEC §5: 7 days or 10,000 per user).

A client resuming from before the oldest kept id gets ``resync_required`` (see
``streams.feed``), so pruning never makes a stream silently skip events.
"""

from __future__ import annotations

import asyncio
import logging

from domain.db import Database
from domain.values import now_ms

logger = logging.getLogger("dropsync.retention")

DAY_MS = 24 * 3600 * 1000
PRUNE_BATCH = 5000
"""Event ids per delete (each its own short write transaction, so writers and streams go on in between)."""

_ID_SPAN = "SELECT MIN(id) AS low, MAX(id) AS high FROM events"
_OLDEST_AT_OR_AFTER = "SELECT id, created_at FROM events WHERE id >= ? ORDER BY id LIMIT 1"
# One window of ids: the events in it older than the cutoff that are not among their user's last
# ``min_events``. Parameters: first id, end id (excluded), cutoff, min_events.
PRUNE_SQL = (
    "DELETE FROM events WHERE id >= ? AND id < ? AND created_at < ?"
    " AND seq <= (SELECT last_event_id FROM users WHERE users.id = events.user_id) - ? RETURNING id"
)


async def prune_events(db: Database, *, days: int, min_events: int, now: int | None = None) -> int:
    """Delete the events past the retention, :data:`PRUNE_BATCH` ids at a time; returns how many went.

    The log's primary key finds them, not an index on ``created_at`` (which cost every write a page
    of its COMMIT: a stock PATCH's COMMIT took ~51 µs with it, ~40 µs without): events are stored
    in id order as they are recorded, so the old ones are those below the first id recorded at or
    after the cutoff, found by a binary search over ids. A window deletes only what is both below
    that id and older than the cutoff, so a clock that stepped back never costs a recent event (at
    worst an old one waits for the next run).
    """
    cutoff = (now_ms() if now is None else now) - days * DAY_MS
    span = await db.fetch_one(_ID_SPAN)
    if span is None or span["low"] is None:
        return 0
    start = int(span["low"])
    end = await first_id_recorded_at_or_after(db, cutoff, start, int(span["high"]) + 1)
    removed = 0
    while start < end:
        async with db.write():
            removed += len(await db.fetch(PRUNE_SQL, start, start + PRUNE_BATCH, cutoff, min_events))
        following = await db.fetch_one(_OLDEST_AT_OR_AFTER, start + PRUNE_BATCH)
        if following is None:
            break
        start = int(following["id"])
        await asyncio.sleep(0)
    return removed


async def first_id_recorded_at_or_after(db: Database, cutoff: int, low: int, high: int) -> int:
    """The id from which events were recorded at or after ``cutoff``, between the log's first id
    ``low`` and one past its last, ``high`` (returned if none was): a binary search, one
    primary-key look-up a step."""
    while low < high:
        middle = (low + high) // 2
        row = await db.fetch_one(_OLDEST_AT_OR_AFTER, middle)
        if row is None or int(row["created_at"]) >= cutoff:
            high = middle
        else:
            low = int(row["id"]) + 1
    return low


async def prune_forever(db: Database, *, days: int, min_events: int, every_s: float = 3600.0) -> None:
    """Prune now and then every ``every_s`` seconds; errors are logged, never fatal."""
    while True:
        try:
            removed = await prune_events(db, days=days, min_events=min_events)
            if removed:
                logger.info("pruned %d events past the retention", removed)
        except Exception:
            logger.exception("pruning the event log failed; trying again in %ss", every_s)
        await asyncio.sleep(every_s)
