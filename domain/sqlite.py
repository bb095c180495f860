"""SQLite with long-lived connections: Piccolo's engine opens a new connection (and thread) for
every query; this one keeps a few.

- Reads run on a small pool of connections (WAL lets them go on while a write commits).
- ``synchronous`` is NORMAL by default (WAL: a committed change and its events survive a crash
  of the process; a power loss may take the last commits) or FULL (``sqlite_synchronous``).
- Every write — a transaction, or a lone INSERT/UPDATE/DELETE — runs on the one writer
  connection, one at a time under an asyncio lock: in-process writers queue in order instead of
  spinning in SQLite's busy handler. Other processes on the same file still meet
  ``busy_timeout`` and ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import aiosqlite
from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType, dict_factory

READ_POOL_SIZE = 4


class PooledSQLiteEngine(SQLiteEngine):
    def __init__(self, path: str, *, timeout: float = 30.0, synchronous: str = "normal") -> None:
        super().__init__(path=path, timeout=timeout)
        if synchronous not in {"normal", "full"}:
            raise ValueError(f"synchronous must be normal or full, not {synchronous!r}")
        self.synchronous = synchronous
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._reader_count = 0
        self._writer: aiosqlite.Connection | None = None
        self.write_lock = asyncio.Lock()

    async def _connect(self) -> aiosqlite.Connection:
        connection = await aiosqlite.connect(**self.connection_kwargs)
        connection.row_factory = dict_factory  # type: ignore[assignment]
        await connection.execute("PRAGMA foreign_keys = 1")
        await connection.execute("PRAGMA journal_mode = WAL")
        await connection.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
        return connection

    async def writer(self) -> aiosqlite.Connection:
        """The writer connection; hold :attr:`write_lock` while using it."""
        if self._writer is None:
            self._writer = await self._connect()
        return self._writer

    async def _borrow_reader(self) -> aiosqlite.Connection:
        if self._readers.empty() and self._reader_count < READ_POOL_SIZE:
            self._reader_count += 1
            try:
                return await self._connect()
            except BaseException:
                self._reader_count -= 1
                raise
        return await self._readers.get()

    async def close(self) -> None:
        """Close every connection (at shutdown)."""
        if self._writer is not None:
            await self._writer.close()
            self._writer = None
        while not self._readers.empty():
            await self._readers.get_nowait().close()
        self._reader_count = 0

    async def _run_in_new_connection(
        self, query: str, args: list[Any] | None = None, query_type: str = "generic", table: Any = None
    ) -> list[dict[str, Any]]:
        if query_type == "select":
            connection = await self._borrow_reader()
            try:
                return await _fetch(connection, query, args)
            finally:
                self._readers.put_nowait(connection)
        async with self.write_lock:
            return await _fetch(await self.writer(), query, args)

    async def _run_in_existing_connection(
        self, connection: Any, query: str, args: list[Any] | None = None, query_type: str = "generic", table: Any = None
    ) -> list[dict[str, Any]]:
        return await _fetch(connection, query, args)  # foreign_keys is set once per connection

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
            self.connection = await self.engine.writer()
            await self.begin()  # type: ignore[no-untyped-call]
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
                if not self._rolled_back:
                    await self.rollback()  # type: ignore[no-untyped-call]
            elif not self._committed and not self._rolled_back:
                await self.commit()  # type: ignore[no-untyped-call]
        except sqlite3.Error:
            # A failed COMMIT leaves the transaction open: roll it back so the connection is usable.
            if self.connection.in_transaction:
                await self.connection.execute("ROLLBACK")
            raise
        finally:
            self.engine.current_transaction.reset(self.context)
            self.engine.write_lock.release()
        return exception is None


async def _fetch(connection: aiosqlite.Connection, query: str, args: list[Any] | None) -> list[dict[str, Any]]:
    async with connection.execute(query, args or []) as cursor:
        return list(await cursor.fetchall())  # type: ignore[arg-type]
