"""The event log loses its index on ``created_at``: the retention job (``domain.retention``) finds
old events through the primary key instead (ids grow in the order events are recorded). The index
cost every write a page of its COMMIT (a stock PATCH's COMMIT on SQLite: ~51 µs with it, ~40 µs
without) and a 1,000-item bulk update 2,002 index inserts under the write lock. Dropped
``CONCURRENTLY`` on PostgreSQL (writers of a big log go on meanwhile); backwards builds it again."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-06T18:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "events_without_created_at_index"
INDEX = "events_created_at"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="dropsync", description=DESCRIPTION, wrap_in_transaction=False
    )

    async def drop_index():
        engine = engine_finder()
        if engine.engine_type == "sqlite":
            await engine.run_ddl(f"DROP INDEX IF EXISTS {INDEX}")
        else:
            await engine.run_ddl(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")

    async def create_index():
        await engine_finder().run_ddl(f"CREATE INDEX IF NOT EXISTS {INDEX} ON events (created_at)")

    manager.add_raw(drop_index)
    manager.add_raw_backwards(create_index)
    return manager
