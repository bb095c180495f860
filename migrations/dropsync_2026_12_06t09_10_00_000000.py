"""Ids are never reused, and the event log's pruning has an index.

1. SQLite hands a deleted row's id to the next row when it was the highest (``INTEGER PRIMARY KEY``
   reuses max(rowid) + 1): a client holding the id of a deleted product would then see another
   product under it. ``AUTOINCREMENT`` never reuses an id, so every table whose ids clients hold
   is rebuilt with it (SQLite cannot alter a primary key): the documented 12-step rebuild — foreign
   keys off, new table, copy the rows with their ids, drop, rename, the same indexes again, check
   the foreign keys — in one transaction. Already rebuilt tables are skipped, so the step is safe
   to run twice (processes starting together). PostgreSQL's serials never reuse a value: nothing
   to do there.
2. ``events (created_at)``: the retention job (``domain.retention``) deletes by age (built
   ``CONCURRENTLY`` on PostgreSQL).
"""

import re
import sqlite3

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-06T09:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "ids_never_reused_and_events_created_at"

# The tables whose ids leave the server (resources, order items, the local store's order ids in
# orders.store_order_id). Not the event log (clients see the per-user seq), whose inserts are hot.
AUTOINCREMENT_TABLES = (
    "users",
    "sellers",
    "products",
    "orders",
    "order_items",
    "store_orders",
    "push_subscriptions",
)
SQLITE_LOCK_WAIT_S = 30.0
_ID_COLUMN = re.compile(r'"id" INTEGER PRIMARY KEY NOT NULL')
_CREATE = re.compile(r'^CREATE TABLE (IF NOT EXISTS )?"?(\w+)"?', re.IGNORECASE)


def rebuild_with_autoincrement(path: str, tables: tuple[str, ...] = AUTOINCREMENT_TABLES) -> list[str]:
    """Rebuild ``tables`` of the SQLite database at ``path`` with AUTOINCREMENT ids, keeping their
    rows, ids, indexes and foreign keys; returns the tables rebuilt (those not rebuilt already)."""
    connection = sqlite3.connect(path, timeout=SQLITE_LOCK_WAIT_S, isolation_level=None)
    try:
        # Off, or dropping a table would cascade its deletion into the tables that reference it.
        connection.execute("PRAGMA foreign_keys = OFF")
        connection.execute("BEGIN IMMEDIATE")
        try:
            rebuilt = [table for table in tables if _rebuild(connection, table)]
            problems = connection.execute("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise RuntimeError(f"foreign keys broken by the rebuild: {problems[:5]}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return rebuilt
    finally:
        connection.execute("PRAGMA foreign_keys = ON")
        connection.close()


def _rebuild(connection: sqlite3.Connection, table: str) -> bool:
    row = connection.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
    if row is None:
        raise RuntimeError(f"table {table} not found")
    sql: str = row[0]
    if "AUTOINCREMENT" in sql.upper():
        return False
    if len(_ID_COLUMN.findall(sql)) != 1 or not _CREATE.match(sql):
        raise RuntimeError(f"unexpected definition of {table}: {sql}")
    staging = f"{table}__autoincrement"
    definition = _ID_COLUMN.sub('"id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL', sql)
    definition = _CREATE.sub(f'CREATE TABLE "{staging}"', definition, count=1)
    indexes = connection.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", (table,)
    ).fetchall()
    connection.execute(definition)
    connection.execute(f'INSERT INTO "{staging}" SELECT * FROM "{table}"')  # noqa: S608 - our table names
    connection.execute(f'DROP TABLE "{table}"')
    connection.execute(f'ALTER TABLE "{staging}" RENAME TO "{table}"')
    for (index_sql,) in indexes:
        connection.execute(index_sql)
    return True


async def forwards():
    # No transaction around it: SQLite's foreign keys can only be switched off outside one (the
    # rebuild opens its own); the index statement is one statement.
    manager = MigrationManager(
        migration_id=ID, app_name="dropsync", description=DESCRIPTION, wrap_in_transaction=False
    )

    async def ids_and_index():
        engine = engine_finder()
        if engine.engine_type == "sqlite":
            rebuild_with_autoincrement(engine.connection_kwargs["database"])
            await engine.run_ddl("CREATE INDEX IF NOT EXISTS events_created_at ON events (created_at)")
            return
        # PostgreSQL: built without blocking the writers of a big event log (processes of the
        # previous release may be serving); a build cut short leaves an invalid index: build again.
        invalid = await engine.run_ddl(
            "SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('events_created_at') AND NOT indisvalid"
        )
        if invalid:
            await engine.run_ddl("DROP INDEX CONCURRENTLY IF EXISTS events_created_at")
        await engine.run_ddl("CREATE INDEX CONCURRENTLY IF NOT EXISTS events_created_at ON events (created_at)")

    async def drop_index():
        await engine_finder().run_ddl("DROP INDEX IF EXISTS events_created_at")

    manager.add_raw(ids_and_index)
    manager.add_raw_backwards(drop_index)
    return manager
