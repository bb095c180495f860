from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-27T07:13:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "store_and_idempotency_keys"

# Per-user keys of the tables added by the previous migration (raw SQL runs before table
# operations inside one migration, hence a migration of its own). The same SQL on SQLite and PostgreSQL.
STATEMENTS = (
    "CREATE UNIQUE INDEX IF NOT EXISTS store_products_user_sku ON store_products (user_id, sku)",
    "CREATE UNIQUE INDEX IF NOT EXISTS store_orders_user_external_id ON store_orders (user_id, external_id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS idempotency_keys_user_key ON idempotency_keys (user_id, key)",
    "CREATE INDEX IF NOT EXISTS idempotency_keys_created_at ON idempotency_keys (created_at)",
)
NAMES = (
    "store_products_user_sku",
    "store_orders_user_external_id",
    "idempotency_keys_user_key",
    "idempotency_keys_created_at",
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="dropsync", description=DESCRIPTION)

    async def create_indexes():
        engine = engine_finder()
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    async def drop_indexes():
        engine = engine_finder()
        for name in NAMES:
            await engine.run_ddl(f"DROP INDEX IF EXISTS {name}")

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
