"""Fills ``orders.rendered`` for every order, in one transaction, with the application's own
renderer (``domain.services.orders.render_stored_orders``). A later change to the shape of an
order adds a migration like this one, which renders every order again."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from domain.services.orders import render_stored_orders

ID = "2026-12-06T21:50:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "orders_rendered_filled"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="dropsync", description=DESCRIPTION)
    manager.add_raw(render_stored_orders)
    return manager
