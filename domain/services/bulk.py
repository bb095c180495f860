"""Bulk product changes: prices, stock, deletion — up to :data:`MAX_ITEMS` products per request.

Guarantees:
- Atomic: every item is checked before anything is written; one bad item (unknown, repeated, a
  price that would overflow) fails the whole request naming it, and nothing changes and nothing
  is recorded. The writes and their events are one transaction.
- Events per product in request order, each product's in the documented order
  (``product_updated``, ``product_stock_changed``/``product_price_changed``, then an alert);
  a stock update is wrapped in ``stock_sync_started`` … ``stock_sync_completed``.
- Fast: one query reads all the products, one statement per changed product writes it (on the
  writer connection that the transaction already holds), and the events go in one insert.
"""

from __future__ import annotations

import secrets
from typing import Any

from domain import events
from domain.errors import InvalidField, InvalidFields, ItemsNotFound
from domain.services.common import Row, duplicates, user_threshold
from domain.services.orders import update_orders_losing_products
from domain.services.products import product_json, record_product_change
from domain.tables import Product
from domain.uow import UnitOfWork
from domain.values import MAX_CENTS, changed_price, now_ms, parse_money, stock_state

MAX_ITEMS = 1000
PRICE_MODES = ("set", "percent", "delta")


def new_job_id() -> str:
    return secrets.token_hex(8)


async def products_by_id(user_id: int, ids: list[int], field: str = "product_ids") -> dict[int, Row]:
    """The user's products with these ids, in one query; :class:`ItemsNotFound` names each missing one."""
    rows = await Product.select().where((Product.user_id == user_id) & Product.id.is_in(list(set(ids)))) if ids else []
    found = {row["id"]: row for row in rows}
    missing: list[tuple[str, object]] = [
        (f"{field}.{index}", product_id) for index, product_id in enumerate(ids) if product_id not in found
    ]
    if missing:
        raise ItemsNotFound("product", missing)
    return found


async def write_products(rows: list[Row], columns: tuple[str, ...]) -> None:
    """Write ``columns`` plus version/updated_at of each row; one statement per row, inside the caller's write."""
    assignments = ", ".join(f"{column} = {{}}" for column in (*columns, "version", "updated_at"))
    sql = f"UPDATE products SET {assignments} WHERE id = {{}}"  # noqa: S608 - column names are ours
    for row in rows:
        await Product.raw(sql, *(row[column] for column in columns), row["version"], row["updated_at"], row["id"])


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
        async with self.uow.write(user_id) as change:
            found = await products_by_id(user_id, product_ids)
            prices = [changed_price(found[product_id]["price_cents"], mode, amount) for product_id in product_ids]
            too_large = [
                InvalidField(f"product_ids.{index}", "the new price would be a trillion or more")
                for index, price in enumerate(prices)
                if price >= MAX_CENTS
            ]
            if too_large:
                raise InvalidFields(too_large)
            threshold = await user_threshold(user_id)
            now = now_ms()
            written: list[Row] = []
            items = []
            for product_id, price in zip(product_ids, prices, strict=True):
                before = found[product_id]
                if price == before["price_cents"]:
                    items.append(product_json(before))
                    continue
                after = {**before, "price_cents": price, "version": before["version"] + 1, "updated_at": now}
                written.append(after)
                items.append(product_json(after))
                record_product_change(change, before, after, _own(before, threshold))
            await write_products(written, ("price_cents",))
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
        async with self.uow.write(user_id) as change:
            targets, found = await _resolve(user_id, items)
            repeated = duplicates(targets, "items")
            if repeated:
                raise InvalidFields(repeated)
            change.record(events.STOCK_SYNC_STARTED, {"job_id": job_id, "total": len(items)})
            threshold = await user_threshold(user_id)
            now = now_ms()
            written: list[Row] = []
            results = []
            for product_id, item in zip(targets, items, strict=True):
                before = found[product_id]
                stock = item["stock"]
                if stock == before["stock"]:
                    results.append(product_json(before))
                    continue
                own = _own(before, threshold)
                after = {
                    **before,
                    "stock": stock,
                    "stock_state": stock_state(stock, own),
                    "version": before["version"] + 1,
                    "updated_at": now,
                }
                found[product_id] = after
                written.append(after)
                results.append(product_json(after))
                record_product_change(change, before, after, own)
            await write_products(written, ("stock", "stock_state"))
            counts = {"total": len(items), "changed": len(written), "unchanged": len(items) - len(written)}
            change.record(events.STOCK_SYNC_COMPLETED, {"job_id": job_id, **counts})
        return {"job_id": job_id, **counts, "items": results}

    async def delete(self, user_id: int, product_ids: list[int]) -> Row:
        errors = duplicates(product_ids, "product_ids")
        if errors:
            raise InvalidFields(errors)
        async with self.uow.write(user_id) as change:
            found = await products_by_id(user_id, product_ids)
            await update_orders_losing_products(change, user_id, product_ids)
            await Product.delete().where((Product.user_id == user_id) & Product.id.is_in(product_ids))
            for product_id in product_ids:
                change.record(events.PRODUCT_DELETED, {"id": product_id, "sku": found[product_id]["sku"]})
        return {"deleted": len(product_ids), "items": [{"id": pid, "sku": found[pid]["sku"]} for pid in product_ids]}


async def _resolve(user_id: int, items: list[dict[str, Any]]) -> tuple[list[int], dict[int, Row]]:
    """The product id each item names (by ``product_id`` or ``sku``) and the products, in one query."""
    ids = [item["product_id"] for item in items if item.get("product_id") is not None]
    skus = [item["sku"] for item in items if item.get("sku") is not None]
    where: Any = None
    if ids:
        where = Product.id.is_in(list(set(ids)))
    if skus:
        by_sku = Product.sku.is_in(list(set(skus)))
        where = by_sku if where is None else (where | by_sku)
    rows = await Product.select().where((Product.user_id == user_id) & where)
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


def _own(row: Row, threshold: int) -> int:
    own = row["low_stock_threshold"]
    return int(own) if own is not None else threshold
