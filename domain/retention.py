"""Pruning the event log: an event is kept while it is younger than ``days`` OR among the last
``min_events`` of its user, whichever keeps more (SPEC §5: 7 days or 10,000 per user).

A client resuming from before the oldest kept id gets ``resync_required`` (see
``streams.feed``), so pruning never makes a stream silently skip events.
"""

from __future__ import annotations

import asyncio
import logging

from domain.db import Database
from domain.tables import EventRecord
from domain.values import now_ms

logger = logging.getLogger("dropsync.retention")

DAY_MS = 24 * 3600 * 1000
PRUNE_BATCH = 5000
# One batch: the events older than the cutoff (found through the index events_created_at) that are
# not among the user's last ``min_events``. Parameters: cutoff, min_events, batch size.
PRUNE_SQL = (
    "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE created_at < {} "
    "AND seq <= (SELECT last_event_id FROM users WHERE users.id = events.user_id) - {} "
    "LIMIT {}) RETURNING id"
)


async def prune_events(db: Database, *, days: int, min_events: int, now: int | None = None) -> int:
    """Delete the events past the retention, ``PRUNE_BATCH`` at a time (each batch a short write
    transaction, so writers and streams go on in between); returns how many went."""
    cutoff = (now_ms() if now is None else now) - days * DAY_MS
    removed = 0
    while True:
        async with db.write():
            rows = await EventRecord.raw(PRUNE_SQL, cutoff, min_events, PRUNE_BATCH)
        removed += len(rows)
        if len(rows) < PRUNE_BATCH:
            return removed
        await asyncio.sleep(0)


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
