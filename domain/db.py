"""The database: one engine per process, write transactions, migrations.

Guarantees:
- :meth:`Database.write` opens a transaction that serializes writers: ``BEGIN IMMEDIATE`` on
  SQLite (one writer at a time, no "database is locked" half-way through), and on PostgreSQL the
  caller locks the user's row first (see :mod:`domain.uow`).
- :meth:`Database.migrate` applies pending migrations once, even when several processes start
  together on PostgreSQL (an advisory lock).
- :meth:`Database.fetch`, :meth:`Database.fetch_one` and :meth:`Database.execute_many` run plain
  SQL for the hot paths (written with ``?`` placeholders, turned into ``$n`` for PostgreSQL once
  per statement), inside the caller's open transaction when there is one. Piccolo builds the
  rest; on the hot paths building its query objects cost more than running the statement.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import os
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, cast
from urllib.parse import urlsplit

import asyncpg
from piccolo.apps.migrations.commands.forwards import run_forwards
from piccolo.apps.migrations.tables import Migration
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType
from piccolo.table import Table

from domain.sqlite import PooledSQLiteEngine
from domain.tables import ALL_TABLES

# Piccolo finds its configuration (the engine and the app registry) through this module.
os.environ.setdefault("PICCOLO_CONF", "domain.piccolo_conf")

_MIGRATION_LOCK_KEY = 0x64726F70  # "drop": the advisory lock that serializes start-up migrations
SQLITE_LOCK_RETRY_S = 30.0
POSTGRES_CONNECT_TIMEOUT_S = 5.0
POOL_CLOSE_TIMEOUT_S = 5.0


def engine_for_url(url: str, *, sqlite_synchronous: str = "normal", postgres_timeout_s: float = 30.0) -> Engine[Any]:
    """Build (not connect) the Piccolo engine for a ``sqlite:///path`` or ``postgresql://`` URL.

    On PostgreSQL a statement that gets no answer within ``postgres_timeout_s`` (a frozen or
    unreachable server) fails with :class:`TimeoutError` instead of holding its request forever.
    """
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        path = url.removeprefix("sqlite://").removeprefix("/")
        return PooledSQLiteEngine(path, timeout=SQLITE_LOCK_RETRY_S, synchronous=sqlite_synchronous)
    if scheme in {"postgresql", "postgres"}:
        timeouts = {"timeout": POSTGRES_CONNECT_TIMEOUT_S, "command_timeout": postgres_timeout_s}
        return PostgresEngine(config={"dsn": url, **timeouts})
    raise ValueError(f"unsupported database URL scheme {scheme!r}")


_PLACEHOLDER = re.compile(r"\?")


@functools.lru_cache(maxsize=256)
def postgres_placeholders(sql: str) -> str:
    """``?`` placeholders to PostgreSQL's ``$1, $2 …`` (our statements hold no literal ``?``)."""
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


async def fetch(engine: Engine[Any], sql: str, *args: Any) -> list[dict[str, Any]]:
    """The rows of ``sql`` (``?`` placeholders) as dicts, run by ``engine`` (a table's
    ``_meta.db``, or :attr:`Database.engine`) in its open transaction if there is one."""
    if isinstance(engine, PooledSQLiteEngine):
        transaction = engine.current_transaction.get()
        if transaction is not None:
            return cast(list[dict[str, Any]], transaction.connection.fetch(sql, args))
        return await engine._run_in_new_connection(sql, list(args))
    return [dict(record) for record in await _postgres_records(engine, sql, args)]


async def fetch_rows(engine: Engine[Any], sql: str, *args: Any) -> Sequence[Sequence[Any]]:
    """As :func:`fetch` for a read, the rows as tuples in the statement's column order: for reads
    that render many rows, where a dict per row would cost as much as the query."""
    if isinstance(engine, PooledSQLiteEngine):
        return await engine.read_rows(sql, args)
    return await _postgres_records(engine, sql, args)  # asyncpg records index by position


async def _postgres_records(engine: Engine[Any], sql: str, args: Sequence[Any]) -> list[asyncpg.Record]:
    if not isinstance(engine, PostgresEngine):
        raise TypeError(f"plain SQL needs the SQLite or PostgreSQL engine, not {type(engine).__name__}")
    statement = postgres_placeholders(sql)
    open_transaction = engine.current_transaction.get()
    if open_transaction is not None:
        return cast(list[asyncpg.Record], await open_transaction.connection.fetch(statement, *args))
    if engine.pool is None:
        raise RuntimeError("the database has not started")
    async with engine.pool.acquire() as connection:
        return cast(list[asyncpg.Record], await connection.fetch(statement, *args))


async def execute_many(engine: Engine[Any], sql: str, rows: Iterable[Sequence[Any]]) -> None:
    """Run ``sql`` (``?`` placeholders) once per parameter row, as one batch, inside ``engine``'s
    open transaction (required)."""
    transaction = engine.current_transaction.get()
    if transaction is None:
        raise RuntimeError("execute_many runs inside a write transaction")
    if isinstance(engine, PooledSQLiteEngine):
        transaction.connection.raw.executemany(sql, rows)
    else:
        await transaction.connection.executemany(postgres_placeholders(sql), rows)


def is_unique_violation(exc: BaseException) -> bool:
    """True for a unique-key clash on either database (sqlite3 or asyncpg)."""
    name = type(exc).__name__
    return name == "UniqueViolationError" or (name == "IntegrityError" and "UNIQUE" in str(exc))


class Database:
    """Owns the engine's lifecycle: :meth:`start` binds the tables to it, :meth:`stop` releases it."""

    def __init__(
        self, url: str, pool_size: int = 10, *, sqlite_synchronous: str = "normal", postgres_timeout_s: float = 30.0
    ) -> None:
        self.url = url
        self.engine = engine_for_url(url, sqlite_synchronous=sqlite_synchronous, postgres_timeout_s=postgres_timeout_s)
        self.pool_size = pool_size

    @property
    def is_postgres(self) -> bool:
        return isinstance(self.engine, PostgresEngine)

    def bind(self) -> None:
        """Point every table, and Piccolo's migration machinery, at this engine."""
        from domain import piccolo_conf  # noqa: PLC0415 - it imports this module

        piccolo_conf.DB = self.engine
        tables: tuple[type[Table], ...] = (*ALL_TABLES, Migration)
        for table in tables:
            table._meta.db = self.engine

    async def start(self) -> None:
        self.bind()
        if isinstance(self.engine, PostgresEngine):
            await self.engine.start_connection_pool(min_size=1, max_size=self.pool_size)

    async def stop(self) -> None:
        """Release the engine; on PostgreSQL within ``POOL_CLOSE_TIMEOUT_S`` (a connection a lost
        server left in use would hold a graceful close forever): then the pool is terminated."""
        if isinstance(self.engine, PostgresEngine) and self.engine.pool is not None:
            pool = self.engine.pool
            try:
                await asyncio.wait_for(self.engine.close_connection_pool(), POOL_CLOSE_TIMEOUT_S)
            except TimeoutError:
                pool.terminate()
        elif isinstance(self.engine, PooledSQLiteEngine):
            await self.engine.close()

    async def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        await self.engine.run_ddl("SELECT 1")

    def write(self) -> AbstractAsyncContextManager[Any]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite)."""
        if isinstance(self.engine, SQLiteEngine):
            return cast(AbstractAsyncContextManager[Any], self.engine.transaction(TransactionType.immediate))
        return cast(AbstractAsyncContextManager[Any], self.engine.transaction())

    async def migrate(self) -> None:
        """Apply pending migrations; quiet unless something goes wrong."""
        self.bind()
        async with self._migration_lock():
            output = io.StringIO()
            with contextlib.redirect_stdout(output):
                result = await run_forwards(app_name="all")
            if not result.success:
                raise RuntimeError(f"migrations failed: {result.message}\n{output.getvalue()}")

    @contextlib.asynccontextmanager
    async def _migration_lock(self) -> AsyncIterator[None]:
        if not isinstance(self.engine, PostgresEngine):
            yield  # BEGIN IMMEDIATE already serializes SQLite writers
            return
        connection = await asyncpg.connect(self.url)
        try:
            await connection.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_KEY)
            yield
        finally:
            await connection.close()

    # ------------------------------------------------------------------ plain SQL for hot paths

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """The rows of ``sql`` (``?`` placeholders) as dicts, in the open transaction if any."""
        return await fetch(self.engine, sql, *args)

    async def fetch_one(self, sql: str, *args: Any) -> dict[str, Any] | None:
        """The first row of ``sql``, or None."""
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def execute_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run ``sql`` once per parameter row, inside the caller's open transaction (required)."""
        await execute_many(self.engine, sql, rows)
