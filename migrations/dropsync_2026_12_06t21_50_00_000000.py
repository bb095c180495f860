"""``orders.rendered`` and ``orders.rendered_version``: each order as the API renders it, and the
version it renders, stored by every write that changes it (``domain.services.orders.record_orders``);
``GET /orders`` lists these. Filled for the orders already there by the next migration (a
migration's raw steps run before its new columns); until then, and for an order an older release
changes, the version differs and the list renders the order afresh."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Integer, Text
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-06T21:50:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "orders_rendered"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="dropsync", description=DESCRIPTION)

    manager.add_column(
        table_class_name="Order",
        tablename="orders",
        column_name="rendered",
        db_column_name="rendered",
        column_class_name="Text",
        column_class=Text,
        params={
            "default": "",
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="Order",
        tablename="orders",
        column_name="rendered_version",
        db_column_name="rendered_version",
        column_class_name="Integer",
        column_class=Integer,
        params={
            "default": 0,
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    return manager
