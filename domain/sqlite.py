"""SQLite for a server: two long-lived connections used from the event loop's own thread.

Piccolo's engine opens a new connection, and a new thread (aiosqlite), for every query. Here:

- Statements run inline on the event loop thread. On a local file in WAL mode one statement
  takes tens of microseconds — less than handing it to a thread and back (aiosqlite), which
  measured at about half of a write's time under the write lock.
- Reads use one connection (WAL lets them see the last commit while a write is open); every
  write — a transaction, or a lone INSERT/UPDATE/DELETE — uses the other, one at a time under
  an asyncio lock, so in-process writers queue in order and never meet SQLite's busy handler.
- Nothing blocks the loop waiting for a lock: ``busy_timeout`` is 0 and a write that finds the
  file locked by another process (``uvicorn --workers`` on SQLite) retries after an asyncio
  sleep, for up to ``timeout`` seconds.
- Values come back as SQLite stores them, without Piccolo's type converters: every column is an
  integer or text (see :mod:`domain.tables`), which sqlite3 returns as ``int`` and ``str``.
- A big transaction (``BIG_COMMIT_ROWS`` rows or more) commits in a worker thread: its COMMIT
  writes every changed page (and may checkpoint the WAL), long enough to stall the loop; its
  writer lock is held until the COMMIT has ended.
- ``synchronous`` is NORMAL by default (WAL: a committed change and its events survive a crash of
  the process; a power loss may take the last commits) or FULL (``sqlite_synchronous``).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType, dict_factory

T = TypeVar("T")
RETRY_FIRST_S = 0.001
RETRY_MAX_S = 0.05
BIG_COMMIT_ROWS = 500
"""A transaction that changed at least this many rows commits in a worker thread (see WriterTransaction)."""


class InlineConnection:
    """A sqlite3 connection with the awaitable ``execute`` Piccolo's transactions call."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.raw = connection

    async def execute(self, sql: str, parameters: Any = ()) -> sqlite3.Cursor:
        return self.raw.execute(sql, parameters)

    def fetch(self, sql: str, parameters: Any) -> list[dict[str, Any]]:
        """The rows as dicts (column names looked up once per statement, not once per row)."""
        cursor = self._run(sql, parameters)
        rows = cursor.fetchall()
        if not rows:
            return []
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in rows]

    def rows(self, sql: str, parameters: Any) -> list[tuple[Any, ...]]:
        """The rows as tuples, in the statement's column order (no dict per row)."""
        return self._run(sql, parameters).fetchall()

    def _run(self, sql: str, parameters: Any) -> sqlite3.Cursor:
        cursor = self.raw.cursor()
        cursor.row_factory = None  # tuples: the callers build what they need from them
        return cursor.execute(sql, parameters or ())

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    async def close(self) -> None:
        self.raw.close()


def _is_read(query: str) -> bool:
    # Piccolo labels most queries "generic": tell reads by their first word.
    return query.lstrip()[:6].upper() == "SELECT"


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


class PooledSQLiteEngine(SQLiteEngine):
    def __init__(self, path: str, *, timeout: float = 30.0, synchronous: str = "normal") -> None:
        super().__init__(path=path)
        if synchronous not in {"normal", "full"}:
            raise ValueError(f"synchronous must be normal or full, not {synchronous!r}")
        self.synchronous = synchronous
        self.lock_timeout = timeout
        self._reader: InlineConnection | None = None
        self._writer: InlineConnection | None = None
        self.write_lock = asyncio.Lock()

    def _connect(self) -> InlineConnection:
        # No type converters (Piccolo asks for them): our columns hold integers and text, which
        # sqlite3 returns as int and str by itself; its converters cost most of a read (int(Decimal)).
        kwargs = {**self.connection_kwargs, "timeout": 0, "detect_types": 0}
        connection = sqlite3.connect(**kwargs, check_same_thread=False)
        connection.row_factory = dict_factory
        connection.execute("PRAGMA foreign_keys = 1")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
        return InlineConnection(connection)

    def reader(self) -> InlineConnection:
        if self._reader is None:
            self._reader = self._connect()
        return self._reader

    def writer(self) -> InlineConnection:
        """The writer connection; hold :attr:`write_lock` while using it."""
        if self._writer is None:
            self._writer = self._connect()
        return self._writer

    async def retry_while_locked(self, step: Callable[[], T]) -> T:
        """Run ``step``; while another process holds the file's write lock, retry (async back-off)."""
        deadline = time.monotonic() + self.lock_timeout
        delay = RETRY_FIRST_S
        while True:
            try:
                return step()
            except sqlite3.OperationalError as exc:
                if not _is_locked(exc) or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(RETRY_MAX_S, delay * 2)

    async def close(self) -> None:
        """Close both connections (at shutdown)."""
        for connection in (self._reader, self._writer):
            if connection is not None:
                await connection.close()
        self._reader = self._writer = None

    async def _run_in_new_connection(
        self, query: str, args: list[Any] | None = None, query_type: str = "generic", table: Any = None
    ) -> list[dict[str, Any]]:
        if _is_read(query):
            reader = self.reader()
            return await self.retry_while_locked(lambda: reader.fetch(query, args))
        async with self.write_lock:
            writer = self.writer()
            return await self.retry_while_locked(lambda: writer.fetch(query, args))

    async def read_rows(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The rows of a read as tuples: in the open transaction if there is one, else on the reader."""
        transaction = self.current_transaction.get()
        if transaction is not None:
            return cast(list[tuple[Any, ...]], transaction.connection.rows(sql, args))
        reader = self.reader()
        return await self.retry_while_locked(lambda: reader.rows(sql, args))

    async def _run_in_existing_connection(
        self, connection: Any, query: str, args: list[Any] | None = None, query_type: str = "generic", table: Any = None
    ) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = connection.fetch(query, args)
        return result

    def transaction(
        self, transaction_type: TransactionType = TransactionType.deferred, allow_nested: bool = True
    ) -> SQLiteTransaction:
        return WriterTransaction(engine=self, transaction_type=transaction_type, allow_nested=allow_nested)


class WriterTransaction(SQLiteTransaction):
    """A transaction on the engine's writer connection, holding its lock from BEGIN to the end."""

    engine: PooledSQLiteEngine

    async def __aenter__(self) -> SQLiteTransaction:
        if self._parent is not None:
            return self._parent
        await self.engine.write_lock.acquire()
        try:
            self.connection = writer = self.engine.writer()
            begin = f"BEGIN {self.transaction_type.value}"
            try:
                writer.raw.execute(begin)
            except sqlite3.OperationalError as exc:
                if not _is_locked(exc):
                    raise
                # Another process holds the file's write lock: wait for it without blocking the loop.
                await self.engine.retry_while_locked(lambda: writer.raw.execute(begin))
            self.changes_at_begin = writer.raw.total_changes
        except BaseException:
            self.engine.write_lock.release()
            raise
        self.context = self.engine.current_transaction.set(self)
        return self

    async def __aexit__(self, exception_type: Any, exception: BaseException | None, traceback: Any) -> bool:
        if self._parent:
            return exception is None
        try:
            if exception is not None:
                # SQLite may have rolled back already (disk full, I/O error): keep the real error.
                if not self._rolled_back and self.connection.in_transaction:
                    await self.rollback()  # type: ignore[no-untyped-call]
            elif not self._committed and not self._rolled_back:
                if self.connection.raw.total_changes - self.changes_at_begin >= BIG_COMMIT_ROWS:
                    await self._commit_in_thread()
                else:
                    await self.commit()  # type: ignore[no-untyped-call]
        except sqlite3.Error:
            # A failed COMMIT leaves the transaction open: roll it back so the connection is usable.
            if self.connection.in_transaction:
                self.connection.raw.execute("ROLLBACK")
            raise
        finally:
            self.engine.current_transaction.reset(self.context)
            self.engine.write_lock.release()
        return exception is None

    async def _commit_in_thread(self) -> None:
        """COMMIT a big transaction (and the WAL checkpoint it may run) in a worker thread: it
        writes every page the transaction changed, tens of milliseconds per thousands of rows
        that would otherwise stall the event loop. The connection stays this transaction's (the
        write lock is held) until the COMMIT has ended, even if the caller is cancelled."""
        raw = self.connection.raw
        done = asyncio.get_running_loop().run_in_executor(None, raw.execute, "COMMIT")
        cancelled = False
        while not done.done():
            try:
                await asyncio.shield(done)
            except asyncio.CancelledError:
                cancelled = True
        done.result()
        self._committed = True
        if cancelled:
            raise asyncio.CancelledError
