"""Orders: creation with items, edits, and the status machine.

``pending → processing → shipped → delivered``; ``pending`` or ``processing`` may become
``cancelled``. Any other move is a :class:`Conflict` and changes nothing.

Every write that changes an order or its items records the order, as ``GET /orders/{id}`` renders
it, with :func:`record_orders`: in its ``order_created`` or ``order_updated`` event and in the
order's ``rendered`` column, with the version it renders, in the same transaction. ``GET /orders``
lists the stored renderings: a page reads one value per order instead of the ~20 values of an
order and its items, and costs a third of what rendering them did. An order whose stored rendering is
not of its current version (changed by an older release during a rolling upgrade, which bumps the
version but knows no renderings) is rendered afresh instead. So a listed order is always the
order ``GET /orders/{id}`` reads.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import msgspec

from domain import events
from domain.db import execute_many, fetch, fetch_rows, is_unique_violation
from domain.errors import Conflict, InvalidField, InvalidFields, NotFound
from domain.services.common import Row, Values, check_version, owned_row, page
from domain.services.product_writes import CHUNK, write_products
from domain.store import Stores
from domain.store.base import StoreOrder
from domain.tables import Order, OrderItem, Product
from domain.uow import Change, UnitOfWork
from domain.values import MAX_CENTS, iso, money, now_ms, parse_money

ORDER_STATUSES = ("pending", "processing", "shipped", "delivered", "cancelled")
ALLOWED_MOVES: dict[str, frozenset[str]] = {
    "pending": frozenset({"processing", "cancelled"}),
    "processing": frozenset({"shipped", "cancelled"}),
    "shipped": frozenset({"delivered"}),
    "delivered": frozenset(),
    "cancelled": frozenset(),
}


def check_move(old: str, new: str) -> None:
    """Raise :class:`Conflict` unless ``old → new`` is allowed (staying put is allowed)."""
    if new != old and new not in ALLOWED_MOVES[old]:
        allowed = ", ".join(sorted(ALLOWED_MOVES[old])) or "none"
        raise Conflict(f"an order cannot move from {old} to {new} (allowed from {old}: {allowed})")


def order_json(row: Sequence[Any], items: Iterable[Sequence[Any]]) -> Row:
    """An order as the API renders it, from its row as :data:`ORDER_SELECT` reads it and its
    items' rows as :data:`ITEM_SELECT` reads them (in order). Rows are positional (tuples, or
    asyncpg records): a list renders many, and a dict per row would cost as much as the query.

    Changing this shape? The orders' stored renderings keep the old one: add a migration that
    renders every order again, as ``migrations/dropsync_2026_12_06t21_50_01_000000.py`` does."""
    (order_id, external_id, name, email, address, total_cents, currency, status, carrier, tracking_number,
     version, created_at, updated_at) = row  # fmt: skip
    return {
        "id": order_id,
        "external_id": external_id,
        "customer": {"name": name, "email": email, "address": address},
        "items": [
            {"product_id": product_id, "sku": sku, "quantity": quantity, "unit_price": money(unit_price_cents)}
            for _, product_id, sku, quantity, unit_price_cents in items
        ],
        "total": money(total_cents),
        "currency": currency,
        "status": status,
        "carrier": carrier,
        "tracking_number": tracking_number,
        "version": version,
        "created_at": iso(created_at),
        "updated_at": iso(updated_at),
    }


# What order_json reads, in its order.
_ORDER_COLUMNS = (
    "id, external_id, customer_name, customer_email, customer_address, total_cents, currency, status,"
    " carrier, tracking_number, version, created_at, updated_at"
)
ORDER_SELECT = f"SELECT {_ORDER_COLUMNS} FROM orders"  # noqa: S608 - constants
ITEM_SELECT = "SELECT order_id, product_id, sku, quantity, unit_price_cents FROM order_items"
_ITEMS_OF_ORDER = f"{ITEM_SELECT} WHERE order_id = ? ORDER BY position, id"


async def load_order(user_id: int, order_id: int) -> Row:
    """``GET /orders/{id}``'s order of ``user_id``; :class:`NotFound` if there is none."""
    db = Order._meta.db
    rows = await fetch_rows(db, f"{ORDER_SELECT} WHERE id = ? AND user_id = ?", order_id, user_id)
    if not rows:
        raise NotFound("order", order_id)
    return order_json(rows[0], await fetch_rows(db, _ITEMS_OF_ORDER, order_id))


async def orders_json(order_ids: Sequence[int]) -> list[Row]:
    """The orders with these ids (of one user, already checked), rendered, by id; a query per 500."""
    db = Order._meta.db
    rendered: list[Row] = []
    for start in range(0, len(order_ids), CHUNK):
        chunk = order_ids[start : start + CHUNK]
        marks = ", ".join("?" * len(chunk))
        rows = await fetch_rows(db, f"{ORDER_SELECT} WHERE id IN ({marks}) ORDER BY id", *chunk)
        items = await fetch_rows(db, f"{ITEM_SELECT} WHERE order_id IN ({marks}) ORDER BY position, id", *chunk)
        rendered += _render_with_items(rows, items)
    return rendered


async def record_orders(change: Change, event_type: str, orders: Sequence[Row]) -> None:
    """Record each order (as :func:`load_order` renders it) in an ``event_type`` event of ``change``
    and store the same JSON, encoded once, as its ``rendered`` column, in the change's transaction
    (one batched statement): what ``GET /orders`` lists. Every write that changes an order or its
    items calls this."""
    stored = [(change.record(event_type, order).decode(), order["version"], order["id"]) for order in orders]
    await execute_many(Order._meta.db, _STORE_RENDERED, stored)


_STORE_RENDERED = "UPDATE orders SET rendered = ?, rendered_version = ? WHERE id = ?"
# What a list reads of each order: its id, and its stored rendering if that is of its version.
_LISTED = "id, CASE WHEN rendered_version = version THEN rendered END"


def _render_with_items(rows: Sequence[Sequence[Any]], items: Iterable[Sequence[Any]]) -> list[Row]:
    items_by_order: dict[int, list[Sequence[Any]]] = {row[0]: [] for row in rows}
    for item in items:
        items_by_order[item[0]].append(item)
    return [order_json(row, items_by_order[row[0]]) for row in rows]


_INSERT_ORDER = (
    "INSERT INTO orders (user_id, external_id, customer_name, customer_email, customer_address, total_cents,"
    " currency, status, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 1, ?, ?)"
    " RETURNING id"
)
_ITEM_FIELDS = "order_id, product_id, sku, quantity, unit_price_cents, position"
_INSERT_ITEM = f"INSERT INTO order_items ({_ITEM_FIELDS}) VALUES (?, ?, ?, ?, ?, ?)"  # noqa: S608 - constants
_PRODUCT_BY_SKU = "SELECT * FROM products WHERE user_id = ? AND sku = ? LIMIT 1"


async def update_orders_losing_products(change: Change, user_id: int, product_ids: Collection[int]) -> None:
    """Call inside the write that deletes these products of ``user_id``, BEFORE deleting them.

    The deletion turns the ``product_id`` of their order items into null; each order with such an
    item then gets ``version`` + 1, a new ``updated_at`` and an ``order_updated`` event (the order
    as ``GET /orders/{id}`` renders it), recorded after every other event of the change — so after
    the ``product_deleted`` events — orders by id.
    """
    if not product_ids:
        return
    rows = await (
        OrderItem.select(OrderItem.order_id)
        .where(OrderItem.product_id.is_in(list(set(product_ids))) & (OrderItem.order_id._.user_id == user_id))
        .distinct()
    )
    order_ids = sorted({row["order_id"] for row in rows})
    if not order_ids:
        return

    async def update_orders() -> None:
        await Order.update({Order.version: Order.version + 1, Order.updated_at: now_ms()}).where(
            Order.id.is_in(order_ids)
        )
        await record_orders(change, events.ORDER_UPDATED, await orders_json(order_ids))

    change.before_commit.append(update_orders)


class OrderService:
    def __init__(self, uow: UnitOfWork, stores: Stores) -> None:
        self.uow = uow
        self.stores = stores

    async def find(self, user_id: int, *, limit: int, offset: int, status: str | None = None) -> Row:
        """A page of the user's orders; its ``items`` are the stored renderings, as one JSON array
        (:class:`msgspec.Raw`: encoded into the response as they are)."""
        where = "user_id = ?"
        args: list[Any] = [user_id]
        if status is not None:
            where += " AND status = ?"
            args.append(status)
        listed = await page(Order, where, args, limit, offset, None, _LISTED)
        rows: Sequence[Sequence[Any]] = listed["items"]
        stale = [order_id for order_id, rendered in rows if rendered is None]
        fresh = {order["id"]: events.encode_data(order).decode() for order in await orders_json(stale)}
        texts = [fresh[order_id] if rendered is None else rendered for order_id, rendered in rows]
        listed["items"] = msgspec.Raw(f"[{','.join(texts)}]".encode())
        return listed

    async def get(self, user_id: int, order_id: int) -> Row:
        return await load_order(user_id, order_id)

    async def create(self, user_id: int, fields: dict[str, Any]) -> Row:
        external_id = fields.get("external_id") or f"local-{secrets.token_hex(6)}"
        errors: list[InvalidField] = []
        total = _amount(fields.get("total"), "total", errors)
        unit_prices = [
            _amount(item.get("unit_price"), f"items.{index}.unit_price", errors)
            for index, item in enumerate(fields["items"])
        ]
        try:
            async with self.uow.write(user_id) as change:
                items = await self._resolve_items(user_id, fields["items"], unit_prices, errors)
                if errors:
                    raise InvalidFields(errors)
                computed = sum(item["quantity"] * item["unit_price_cents"] for item in items)
                if total is None and computed >= MAX_CENTS:
                    raise InvalidField("items", "add up to a total of a trillion or more")
                customer = fields.get("customer") or {}
                now = now_ms()
                inserted = await self.uow.db.fetch_one(
                    _INSERT_ORDER,
                    user_id,
                    external_id,
                    customer.get("name") or "",
                    customer.get("email"),
                    customer.get("address") or "",
                    computed if total is None else total,
                    fields.get("currency") or "USD",
                    now,
                    now,
                )
                assert inserted is not None  # INSERT … RETURNING gives the row
                order_id = inserted["id"]
                await self.uow.db.execute_many(
                    _INSERT_ITEM,
                    [
                        (
                            order_id,
                            item["product_id"],
                            item["sku"],
                            item["quantity"],
                            item["unit_price_cents"],
                            position,
                        )
                        for position, item in enumerate(items)
                    ],
                )
                created = await load_order(user_id, order_id)
                await record_orders(change, events.ORDER_CREATED, [created])
        except Exception as exc:
            if is_unique_violation(exc):
                raise Conflict(f"external_id {external_id!r} is already used by another order") from None
            raise
        return created

    async def update(
        self, user_id: int, order_id: int, fields: dict[str, Any], *, if_version: Collection[int] | None = None
    ) -> Row:
        """Change the fields sent; with ``if_version``, only if the order is still at one of those versions."""
        async with self.uow.write(user_id) as change:
            row = await owned_row(Order, "order", user_id, order_id)
            check_version("order", row, if_version)
            values: dict[str, Any] = {}
            customer = fields.get("customer") or {}
            for key in ("name", "email", "address"):
                if key in customer:
                    values[f"customer_{key}"] = customer[key] if key == "email" else (customer[key] or "")
            for key in ("carrier", "tracking_number", "status"):
                if key in fields:
                    values[key] = fields[key]
            if "status" in values:
                check_move(row["status"], values["status"])
            diff: Values = {key: value for key, value in values.items() if row[key] != value}
            if not diff:
                return await load_order(user_id, order_id)
            await Order.update({**diff, "version": row["version"] + 1, "updated_at": now_ms()}).where(
                Order.id == order_id
            )
            updated = await load_order(user_id, order_id)
            await record_orders(change, events.ORDER_UPDATED, [updated])
            if "status" in diff:
                change.record(
                    events.ORDER_STATUS_CHANGED,
                    {"order_id": order_id, "old": row["status"], "new": diff["status"]},
                )
        return updated

    async def fetch(self, user_id: int) -> Row:
        """Pull the store's open orders; each one not seen before (by ``external_id``) becomes an
        order with an ``order_created`` event. Fetching again creates no duplicates."""
        async with self.stores.open(user_id) as store:
            incoming = await store.fetch_orders()
        created: list[Row] = []
        async with self.uow.write(user_id) as change:
            ids = list({order.external_id for order in incoming})
            known = set()
            if ids:
                rows = await Order.select(Order.external_id).where(
                    (Order.user_id == user_id) & Order.external_id.is_in(ids)
                )
                known = {row["external_id"] for row in rows}
            skus = list({item.sku for order in incoming for item in order.items})
            products = {}
            if skus:
                products = {
                    row["sku"]: row["id"]
                    for row in await Product.select(Product.id, Product.sku).where(
                        (Product.user_id == user_id) & Product.sku.is_in(skus)
                    )
                }
            for order in incoming:
                if order.external_id in known:
                    continue
                known.add(order.external_id)
                order_id = await _insert_store_order(user_id, order, products)
                created.append(await load_order(user_id, order_id))
            await record_orders(change, events.ORDER_CREATED, created)
        return {"fetched": len(incoming), "created": len(created), "items": created}

    async def ship(
        self,
        user_id: int,
        order_id: int,
        *,
        carrier: str,
        tracking_number: str,
        if_version: Collection[int] | None = None,
    ) -> Row:
        """Mark the order shipped with its tracking; an order from the store gets a fulfillment
        there first (outside the transaction). A refusal by the store changes nothing here."""
        row = await owned_row(Order, "order", user_id, order_id)
        check_version("order", row, if_version)
        check_move(row["status"], "shipped")
        if row["status"] == "shipped":
            raise Conflict(f"order {order_id} is already shipped")
        if row["store_order_id"]:
            async with self.stores.open(user_id, store_id=row["store_order_id"]) as store:
                await store.create_fulfillment(row["store_order_id"], carrier=carrier, tracking_number=tracking_number)
        async with self.uow.write(user_id) as change:
            row = await owned_row(Order, "order", user_id, order_id)
            check_move(row["status"], "shipped")
            if row["status"] == "shipped":
                raise Conflict(f"order {order_id} is already shipped")
            await Order.update(
                {
                    "status": "shipped",
                    "carrier": carrier,
                    "tracking_number": tracking_number,
                    "version": row["version"] + 1,
                    "updated_at": now_ms(),
                }
            ).where(Order.id == order_id)
            shipped = await load_order(user_id, order_id)
            await record_orders(change, events.ORDER_UPDATED, [shipped])
            change.record(events.ORDER_STATUS_CHANGED, {"order_id": order_id, "old": row["status"], "new": "shipped"})
        return shipped

    async def process(self, user_id: int, order_id: int, *, if_version: Collection[int] | None = None) -> Row:
        """Place the order: take its items out of stock, all or nothing, and move it to ``processing``.

        409 when the order cannot move to processing, was processed already, has an item that is
        not one of the user's products, or when stock is short for any item (naming each).
        Events: ``order_updated``, ``order_status_changed`` (if it moved), then per product
        ``product_updated``, ``product_stock_changed`` and an alert, then ``order_processed``.
        """
        async with self.uow.write(user_id) as change:
            row = await owned_row(Order, "order", user_id, order_id)
            check_version("order", row, if_version)
            if row["processed_at"] is not None:
                raise Conflict(f"order {order_id} was already processed")
            check_move(row["status"], "processing")
            items = await OrderItem.select().where(OrderItem.order_id == order_id).order_by(OrderItem.position)
            needed, products = await _stock_needed(user_id, items)
            short = [
                f"{products[pid]['sku']} has {products[pid]['stock']}, needs {quantity}"
                for pid, quantity in needed.items()
                if products[pid]["stock"] < quantity
            ]
            if short:
                raise Conflict(f"not enough stock for order {order_id}: {'; '.join(short)}")
            now = now_ms()
            await Order.update(
                {"status": "processing", "processed_at": now, "version": row["version"] + 1, "updated_at": now}
            ).where(Order.id == order_id)
            processed = await load_order(user_id, order_id)
            await record_orders(change, events.ORDER_UPDATED, [processed])
            if row["status"] != "processing":
                change.record(
                    events.ORDER_STATUS_CHANGED, {"order_id": order_id, "old": row["status"], "new": "processing"}
                )
            taken: list[tuple[Row | None, Values]] = [
                (products[product_id], {"stock": products[product_id]["stock"] - quantity})
                for product_id, quantity in needed.items()
            ]
            await write_products(self.uow.db, change, taken, now=now)
            change.record(events.ORDER_PROCESSED, processed)
        return processed

    @staticmethod
    async def _resolve_items(
        user_id: int, items: list[dict[str, Any]], unit_prices: list[int | None], errors: list[InvalidField]
    ) -> list[Row]:
        """Link each item to the user's product (by id or SKU) and fill sku and price from it.

        A rule an item breaks is appended to ``errors``; an unknown ``product_id`` is :class:`NotFound`.
        """
        resolved = []
        for index, (item, given_price) in enumerate(zip(items, unit_prices, strict=True)):
            unit_price = given_price
            product: Row | None = None
            if item.get("product_id") is not None:
                product = await owned_row(Product, "product", user_id, item["product_id"])
            elif item.get("sku"):
                found = await fetch(Product._meta.db, _PRODUCT_BY_SKU, user_id, item["sku"])
                product = found[0] if found else None
            sku = item.get("sku") or (product["sku"] if product else None)
            if not sku:
                errors.append(InvalidField(f"items.{index}", "needs a product_id or a sku"))
            if unit_price is None and item.get("unit_price") is None:
                if product is not None:
                    unit_price = product["price_cents"]
                elif sku:
                    errors.append(
                        InvalidField(
                            f"items.{index}.unit_price",
                            "is required for an item that is not one of your products",
                        )
                    )
            resolved.append(
                {
                    "product_id": product["id"] if product else None,
                    "sku": sku,
                    "quantity": item["quantity"],
                    "unit_price_cents": unit_price,
                }
            )
        return resolved


async def _insert_store_order(user_id: int, order: StoreOrder, products: dict[str, int]) -> int:
    now = now_ms()
    rows = await Order.insert(
        Order(
            user_id=user_id,
            external_id=order.external_id,
            store_order_id=order.store_order_id,
            customer_name=order.customer_name,
            customer_email=order.customer_email,
            customer_address=order.customer_address,
            total_cents=order.total_cents,
            currency=order.currency,
            status="pending",
            created_at=now,
            updated_at=now,
        )
    ).returning(Order.id)
    order_id: int = rows[0]["id"]
    if order.items:
        await OrderItem.insert(
            *(
                OrderItem(
                    order_id=order_id,
                    position=position,
                    product_id=products.get(item.sku),
                    sku=item.sku,
                    quantity=item.quantity,
                    unit_price_cents=item.unit_price_cents,
                )
                for position, item in enumerate(order.items)
            )
        )
    return order_id


async def _stock_needed(user_id: int, items: list[Row]) -> tuple[dict[int, int], dict[int, Row]]:
    """Quantity per product (items of one product added up) and the products, in item order.

    An item whose product is gone is looked up by SKU; one that matches no product is a :class:`Conflict`.
    """
    ids = [item["product_id"] for item in items if item["product_id"] is not None]
    skus = [item["sku"] for item in items if item["product_id"] is None]
    rows: list[Row] = []
    if ids:
        rows += await Product.select().where((Product.user_id == user_id) & Product.id.is_in(ids))
    if skus:
        rows += await Product.select().where((Product.user_id == user_id) & Product.sku.is_in(skus))
    by_id = {row["id"]: row for row in rows}
    by_sku = {row["sku"]: row for row in rows}
    needed: dict[int, int] = {}
    unknown = []
    for index, item in enumerate(items):
        product = by_id.get(item["product_id"]) if item["product_id"] is not None else by_sku.get(item["sku"])
        if product is None:
            unknown.append(f"item {index} ({item['sku']})")
            continue
        needed[product["id"]] = needed.get(product["id"], 0) + item["quantity"]
    if unknown:
        raise Conflict(f"{', '.join(unknown)} is not one of your products, so it cannot be taken out of stock")
    return needed, by_id


def _amount(value: object, field: str, errors: list[InvalidField]) -> int | None:
    """``value`` in cents (None when not given); a bad amount is appended to ``errors``."""
    if value is None:
        return None
    try:
        return parse_money(value, field)
    except InvalidField as error:
        errors.append(error)
        return None
