"""A database that stops answering: requests get 503 + ``Retry-After``, the log gets two lines.

Guarantees:
- :func:`is_database_unavailable` is true for a connection to the database refused, reset, lost
  or shut down by the server (asyncpg's errors, or an ``OSError``/``TimeoutError`` raised inside
  the driver), and for SQLite's "database is locked" after its busy timeout; never for a query
  that the database answered with an error (those are bugs or client errors).
- :func:`outage_noticed` logs one WARNING when an outage starts and starts one probe
  (``SELECT 1`` every :data:`PROBE_EVERY_S`), which logs one INFO line when the database answers
  again: one pair of lines per outage, however many requests failed in between.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sqlite3
import time
from types import TracebackType
from typing import Any

import asyncpg

logger = logging.getLogger("dropsync.outage")

RETRY_AFTER_S = 5
PROBE_EVERY_S = 1.0

_UNAVAILABLE = (
    asyncpg.exceptions.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.exceptions.OperatorInterventionError,  # 57P01 admin shutdown, 57P02 crash, 57P03 cannot connect now
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.ConnectionDoesNotExistError,  # the connection was closed in the middle of an operation
    # "cannot switch to state 15; another operation is in progress": a connection the lost server
    # left half-way through an operation
    asyncpg.exceptions.InternalClientError,
)
_DRIVERS = ("asyncpg", "piccolo.engine", "aiosqlite", "sqlite3", "domain.sqlite", "domain.db")


def is_database_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, _UNAVAILABLE):
        return True
    if isinstance(exc, asyncpg.exceptions.InterfaceError):
        return "pool is closing" in str(exc) or "connection is closed" in str(exc)
    if isinstance(exc, sqlite3.OperationalError):
        return "database is locked" in str(exc)
    if isinstance(exc, OSError | TimeoutError):
        return _raised_in_driver(exc.__traceback__)
    return False


def _raised_in_driver(traceback: TracebackType | None) -> bool:
    while traceback is not None:
        if traceback.tb_frame.f_globals.get("__name__", "").startswith(_DRIVERS):
            return True
        traceback = traceback.tb_next
    return False


class _Outage:
    def __init__(self) -> None:
        self.since: float | None = None
        self.probe: asyncio.Task[None] | None = None


def outage_noticed(state: Any, exc: BaseException) -> None:
    """Record that a request met an unavailable database (``state`` is the app's, with ``db``)."""
    outage: _Outage = state.setdefault("outage", _Outage())
    if outage.since is not None:
        return
    outage.since = time.monotonic()
    logger.warning(
        "the database is not answering (%s: %s); answering 503 until it is back",
        type(exc).__name__,
        " ".join(str(exc).split())[:200],
    )
    # A context of its own: the failed request's (Piccolo's current transaction, on the lost
    # connection) would otherwise be copied into the probe, which would never see the database back.
    outage.probe = asyncio.get_running_loop().create_task(_until_back(state.db, outage), context=contextvars.Context())


async def _until_back(db: Any, outage: _Outage) -> None:
    while True:
        await asyncio.sleep(PROBE_EVERY_S)
        try:
            await asyncio.wait_for(db.ping(), timeout=PROBE_EVERY_S * 5)
        except Exception as exc:  # noqa: BLE001 - still down: the next probe tells
            logger.debug("the database is still not answering (%s)", type(exc).__name__)
            continue
        since = outage.since or time.monotonic()
        logger.info("the database answers again (after %.1fs)", time.monotonic() - since)
        outage.since = None
        outage.probe = None
        return
