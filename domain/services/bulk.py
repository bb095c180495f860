"""Bulk product changes: prices, stock, deletion — up to :data:`MAX_ITEMS` products per request.

Guarantees:
- Atomic: every item is checked before anything is written; one bad item (unknown, repeated, a
  price that would overflow) fails the whole request naming it, and nothing changes and nothing
  is recorded. The writes and their events are one transaction.
- Events per product in request order, each product's in the documented order
  (``product_updated``, ``product_stock_changed``/``product_price_changed``, then an alert);
  a stock update is wrapped in ``stock_sync_started`` … ``stock_sync_completed``.
- Fast: plain SQL reads all the products (a query per 500), the product-mutation step
  (:mod:`domain.services.product_writes`) writes them in batches (``executemany``) on the
  transaction's connection, and yields to the event loop between chunks of 500 products.
- Short on the lock: a price or stock update is worked out (products read, new rows and events
  encoded) from the last commit *before* its write begins; inside the write it only checks that
  none of its products moved meanwhile (one query per 500 versions) and stores. If one did, it is
  worked out again inside the write, so the outcome is always that of a write of the products as
  they are when it commits. (On SQLite the write lock is every user's: a 1,000-item update held
  it about twice as long when it worked inside.)
"""

from __future__ import annotations

import secrets
from typing import Any

from domain import events
from domain.db import Database
from domain.errors import InvalidField, InvalidFields, ItemsNotFound
from domain.services.common import Row, Values, duplicates
from domain.services.orders import update_orders_losing_products
from domain.services.product_writes import UpdatePlan, plan_updates, product_json, products_where, write_planned
from domain.tables import Product
from domain.uow import UnitOfWork
from domain.values import MAX_CENTS, changed_price, parse_money

MAX_ITEMS = 1000
PRICE_MODES = ("set", "percent", "delta")


def new_job_id() -> str:
    return secrets.token_hex(8)


async def products_by_id(db: Database, user_id: int, ids: list[int], field: str = "product_ids") -> dict[int, Row]:
    """The user's products with these ids (a query per 500); :class:`ItemsNotFound` names each missing one."""
    found = {row["id"]: row for row in await products_where(db, user_id, "id", ids)}
    missing: list[tuple[str, object]] = [
        (f"{field}.{index}", product_id) for index, product_id in enumerate(ids) if product_id not in found
    ]
    if missing:
        raise ItemsNotFound("product", missing)
    return found


class BulkService:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    async def update_prices(self, user_id: int, product_ids: list[int], mode: str, value: object) -> Row:
        """Set, shift (``delta``) or scale (``percent``) the price of each product; never below 0."""
        if mode not in PRICE_MODES:
            raise InvalidField("mode", f"must be one of {', '.join(PRICE_MODES)}")
        amount = parse_money(value, "value", allow_negative=mode != "set")
        errors = duplicates(product_ids, "product_ids")
        if errors:
            raise InvalidFields(errors)

        found: dict[int, Row] = {}  # the products as the plan read them

        async def plan() -> UpdatePlan:
            nonlocal found
            found = await products_by_id(self.uow.db, user_id, product_ids)
            prices = [changed_price(found[product_id]["price_cents"], mode, amount) for product_id in product_ids]
            too_large = [
                InvalidField(f"product_ids.{index}", "the new price would be a trillion or more")
                for index, price in enumerate(prices)
                if price >= MAX_CENTS
            ]
            if too_large:
                raise InvalidFields(too_large)
            writes: list[tuple[Row, Values]] = [
                (found[product_id], {"price_cents": price})
                for product_id, price in zip(product_ids, prices, strict=True)
                if price != found[product_id]["price_cents"]
            ]
            return await plan_updates(self.uow.db, user_id, writes)

        planned = await plan()
        async with self.uow.write(user_id) as change:
            rows = await write_planned(self.uow.db, change, planned, plan_again=plan)
        written = {row["id"]: row for row in rows}
        items = [product_json(written.get(product_id, found[product_id])) for product_id in product_ids]
        return {"total": len(product_ids), "changed": len(written), "items": items}

    async def update_stock(self, user_id: int, items: list[dict[str, Any]]) -> Row:
        """Set the stock of each product (named by ``product_id`` or ``sku``)."""
        errors = [
            InvalidField(f"items.{index}", "needs exactly one of product_id and sku")
            for index, item in enumerate(items)
            if (item.get("product_id") is None) == (item.get("sku") is None)
        ]
        if errors:
            raise InvalidFields(errors)
        job_id = new_job_id()

        targets: list[int] = []  # the product each item names, as the plan resolved it
        found: dict[int, Row] = {}  # the products as the plan read them

        async def plan() -> UpdatePlan:
            nonlocal targets, found
            targets, found = await _resolve(self.uow.db, user_id, items)
            repeated = duplicates(targets, "items")
            if repeated:
                raise InvalidFields(repeated)
            writes: list[tuple[Row, Values]] = [
                (found[product_id], {"stock": item["stock"]})
                for product_id, item in zip(targets, items, strict=True)
                if item["stock"] != found[product_id]["stock"]
            ]
            return await plan_updates(self.uow.db, user_id, writes)

        planned = await plan()
        async with self.uow.write(user_id) as change:
            change.record(events.STOCK_SYNC_STARTED, {"job_id": job_id, "total": len(items)})
            rows = await write_planned(self.uow.db, change, planned, plan_again=plan)
            written = {row["id"]: row for row in rows}
            counts = {"total": len(items), "changed": len(written), "unchanged": len(items) - len(written)}
            change.record(events.STOCK_SYNC_COMPLETED, {"job_id": job_id, **counts})
        results = [product_json(written.get(product_id, found[product_id])) for product_id in targets]
        return {"job_id": job_id, **counts, "items": results}

    async def delete(self, user_id: int, product_ids: list[int]) -> Row:
        errors = duplicates(product_ids, "product_ids")
        if errors:
            raise InvalidFields(errors)
        async with self.uow.write(user_id) as change:
            found = await products_by_id(self.uow.db, user_id, product_ids)
            await update_orders_losing_products(change, user_id, product_ids)
            await Product.delete().where((Product.user_id == user_id) & Product.id.is_in(product_ids))
            for product_id in product_ids:
                change.record(events.PRODUCT_DELETED, {"id": product_id, "sku": found[product_id]["sku"]})
        return {"deleted": len(product_ids), "items": [{"id": pid, "sku": found[pid]["sku"]} for pid in product_ids]}


async def _resolve(db: Database, user_id: int, items: list[dict[str, Any]]) -> tuple[list[int], dict[int, Row]]:
    """The product id each item names (by ``product_id`` or ``sku``) and the products (a query per 500)."""
    ids = [item["product_id"] for item in items if item.get("product_id") is not None]
    skus = [item["sku"] for item in items if item.get("sku") is not None]
    rows = await products_where(db, user_id, "id", ids) if ids else []
    if skus:
        rows += await products_where(db, user_id, "sku", skus)
    by_id = {row["id"]: row for row in rows}
    sku_to_id = {row["sku"]: row["id"] for row in rows}
    targets: list[int] = []
    missing: list[tuple[str, object]] = []
    for index, item in enumerate(items):
        if item.get("product_id") is not None:
            target = item["product_id"] if item["product_id"] in by_id else None
            if target is None:
                missing.append((f"items.{index}.product_id", item["product_id"]))
        else:
            target = sku_to_id.get(item["sku"])
            if target is None:
                missing.append((f"items.{index}.sku", repr(item["sku"])))
        targets.append(target or 0)
    if missing:
        raise ItemsNotFound("product", missing)
    return targets, by_id
