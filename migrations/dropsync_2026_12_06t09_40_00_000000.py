"""``order_items (product_id)``: deleting a product finds the orders that name it (the
``order_updated`` of ``domain.services.orders.update_orders_losing_products``, and the foreign key's
``ON DELETE SET NULL``) through this index instead of reading every order item of every user.
Built ``CONCURRENTLY`` on PostgreSQL (an invalid index left by a cut-short build is built again)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-06T09:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "order_items_product_id"
INDEX = "order_items_product_id"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="dropsync", description=DESCRIPTION, wrap_in_transaction=False
    )

    async def create_index():
        engine = engine_finder()
        if engine.engine_type == "sqlite":
            await engine.run_ddl(f"CREATE INDEX IF NOT EXISTS {INDEX} ON order_items (product_id)")
            return
        invalid = await engine.run_ddl(
            f"SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('{INDEX}') AND NOT indisvalid"
        )
        if invalid:
            await engine.run_ddl(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")
        await engine.run_ddl(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON order_items (product_id)")

    async def drop_index():
        await engine_finder().run_ddl(f"DROP INDEX IF EXISTS {INDEX}")

    manager.add_raw(create_index)
    manager.add_raw_backwards(drop_index)
    return manager
