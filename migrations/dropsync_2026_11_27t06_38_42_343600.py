from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-27T06:38:42:343600"
VERSION = "1.38.0"
DESCRIPTION = "composite_keys"

# Piccolo has no composite unique columns: these indexes are the per-user keys (SKU, external
# order id, event id), and the event log's resume path. The same SQL runs on SQLite and PostgreSQL.
STATEMENTS = (
    "CREATE UNIQUE INDEX IF NOT EXISTS products_user_sku ON products (user_id, sku)",
    "CREATE UNIQUE INDEX IF NOT EXISTS orders_user_external_id ON orders (user_id, external_id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS events_user_seq ON events (user_id, seq)",
    "CREATE INDEX IF NOT EXISTS products_user_seller ON products (user_id, seller_id)",
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="dropsync", description=DESCRIPTION)

    async def create_indexes():
        engine = engine_finder()
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    async def drop_indexes():
        engine = engine_finder()
        for name in ("products_user_sku", "orders_user_external_id", "events_user_seq", "products_user_seller"):
            await engine.run_ddl(f"DROP INDEX IF EXISTS {name}")

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
