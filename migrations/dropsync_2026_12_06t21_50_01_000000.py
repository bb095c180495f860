"""Fills ``orders.rendered`` and ``orders.rendered_version`` for the orders already there.

A copy of the API's rendering of an order as it is at this migration (``order_json`` in
``domain.services.orders``), so that the migration runs the same on any later release. A chunk of
:data:`CHUNK` orders per transaction, not one for the table: processes of the older release keep
writing during a rolling upgrade, and a chunk holds their locks for milliseconds only. An order
an older process changes meanwhile has a new version, so ``AND version = ?`` leaves it alone (its
stored rendering stays of an older version, and ``GET /orders`` renders it afresh). A later
change to the shape of an order adds a migration like this one, with its own copy.
"""

from datetime import date, timedelta

import msgspec
from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.sqlite import TransactionType

from domain.db import execute_many, fetch_rows

ID = "2026-12-06T21:50:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "orders_rendered_filled"
CHUNK = 500

_ORDERS_AFTER = (
    "SELECT id, external_id, customer_name, customer_email, customer_address, total_cents, currency, status,"
    " carrier, tracking_number, version, created_at, updated_at FROM orders WHERE id > ? ORDER BY id LIMIT ?"
)
_ITEMS_OF = "SELECT order_id, product_id, sku, quantity, unit_price_cents FROM order_items WHERE order_id IN ({})"
_STORE = "UPDATE orders SET rendered = ?, rendered_version = ? WHERE id = ? AND version = ?"
_EPOCH = date(1970, 1, 1)


def _money(cents):
    if cents is None:
        return None
    sign, cents = ("-", -cents) if cents < 0 else ("", cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def _iso(ms):
    if ms is None:
        return None
    seconds, millis = divmod(ms, 1000)
    days, second_of_day = divmod(seconds, 86400)
    hours, rest = divmod(second_of_day, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{(_EPOCH + timedelta(days=days)).isoformat()}T{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}Z"


def _rendered(row, items):
    (order_id, external_id, name, email, address, total_cents, currency, status, carrier, tracking_number,
     version, created_at, updated_at) = row  # fmt: skip
    order = {
        "id": order_id,
        "external_id": external_id,
        "customer": {"name": name, "email": email, "address": address},
        "items": [
            {"product_id": product_id, "sku": sku, "quantity": quantity, "unit_price": _money(unit_price_cents)}
            for _, product_id, sku, quantity, unit_price_cents in items
        ],
        "total": _money(total_cents),
        "currency": currency,
        "status": status,
        "carrier": carrier,
        "tracking_number": tracking_number,
        "version": version,
        "created_at": _iso(created_at),
        "updated_at": _iso(updated_at),
    }
    return msgspec.json.encode(order).decode()


def _transaction(engine):
    if engine.engine_type == "sqlite":
        return engine.transaction(transaction_type=TransactionType.immediate)
    return engine.transaction()


async def fill_renderings():
    """Store the rendering of every order, chunk by chunk; how many were stored."""
    engine = engine_finder()
    last_id, stored = 0, 0
    while True:
        async with _transaction(engine):
            rows = await fetch_rows(engine, _ORDERS_AFTER, last_id, CHUNK)
            if not rows:
                return stored
            marks = ", ".join("?" * len(rows))
            # by position then id, as the API lists an order's items
            items = await fetch_rows(engine, _ITEMS_OF.format(marks) + " ORDER BY position, id", *(r[0] for r in rows))
            by_order = {row[0]: [] for row in rows}
            for item in items:
                by_order[item[0]].append(item)
            # (rendering, version, id, version): rows hold the id first and the version eleventh
            renderings = [(_rendered(row, by_order[row[0]]), row[10], row[0], row[10]) for row in rows]
            await execute_many(engine, _STORE, renderings)
            last_id, stored = rows[-1][0], stored + len(rows)


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="dropsync", description=DESCRIPTION, wrap_in_transaction=False
    )
    manager.add_raw(fill_renderings)
    return manager
