"""Orders: creation with items, edits, and the status machine.

``pending → processing → shipped → delivered``; ``pending`` or ``processing`` may become
``cancelled``. Any other move is a :class:`Conflict` and changes nothing.
"""

from __future__ import annotations

import secrets
from typing import Any

from domain import events
from domain.db import is_unique_violation
from domain.errors import Conflict, InvalidField, InvalidFields
from domain.services.common import Row, Values, owned_row
from domain.tables import Order, OrderItem, Product
from domain.uow import UnitOfWork
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


def order_json(row: Row, items: list[Row]) -> Row:
    return {
        "id": row["id"],
        "external_id": row["external_id"],
        "customer": {
            "name": row["customer_name"],
            "email": row["customer_email"],
            "address": row["customer_address"],
        },
        "items": [
            {
                "product_id": item["product_id"],
                "sku": item["sku"],
                "quantity": item["quantity"],
                "unit_price": money(item["unit_price_cents"]),
            }
            for item in items
        ],
        "total": money(row["total_cents"]),
        "currency": row["currency"],
        "status": row["status"],
        "carrier": row["carrier"],
        "tracking_number": row["tracking_number"],
        "version": row["version"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


async def load_order(user_id: int, order_id: int) -> Row:
    row = await owned_row(Order, "order", user_id, order_id)
    items = await OrderItem.select().where(OrderItem.order_id == order_id).order_by(OrderItem.position)
    return order_json(row, items)


class OrderService:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    async def find(self, user_id: int, *, limit: int, offset: int, status: str | None = None) -> Row:
        where: Any = Order.user_id == user_id
        if status is not None:
            where &= Order.status == status
        rows = await Order.select().where(where).order_by(Order.id).limit(limit).offset(offset)
        ids = [row["id"] for row in rows]
        items_by_order: dict[int, list[Row]] = {order_id: [] for order_id in ids}
        if ids:
            for item in await OrderItem.select().where(OrderItem.order_id.is_in(ids)).order_by(OrderItem.position):
                items_by_order[item["order_id"]].append(item)
        total = await Order.count().where(where)
        items = [order_json(row, items_by_order[row["id"]]) for row in rows]
        return {"items": items, "total": total, "limit": limit, "offset": offset}

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
                order = Order(
                    user_id=user_id,
                    external_id=external_id,
                    customer_name=customer.get("name") or "",
                    customer_email=customer.get("email"),
                    customer_address=customer.get("address") or "",
                    total_cents=computed if total is None else total,
                    currency=fields.get("currency") or "USD",
                    status="pending",
                    created_at=now,
                    updated_at=now,
                )
                rows = await Order.insert(order).returning(Order.id)
                order_id = rows[0]["id"]
                await OrderItem.insert(
                    *(OrderItem(order_id=order_id, position=position, **item) for position, item in enumerate(items))
                )
                created = await load_order(user_id, order_id)
                change.record(events.ORDER_CREATED, created)
        except Exception as exc:
            if is_unique_violation(exc):
                raise Conflict(f"external_id {external_id!r} is already used by another order") from None
            raise
        return created

    async def update(self, user_id: int, order_id: int, fields: dict[str, Any]) -> Row:
        async with self.uow.write(user_id) as change:
            row = await owned_row(Order, "order", user_id, order_id)
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
            change.record(events.ORDER_UPDATED, updated)
            if "status" in diff:
                change.record(
                    events.ORDER_STATUS_CHANGED,
                    {"order_id": order_id, "old": row["status"], "new": diff["status"]},
                )
        return updated

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
                product = (
                    await Product.select().where((Product.user_id == user_id) & (Product.sku == item["sku"])).first()
                )
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


def _amount(value: object, field: str, errors: list[InvalidField]) -> int | None:
    """``value`` in cents (None when not given); a bad amount is appended to ``errors``."""
    if value is None:
        return None
    try:
        return parse_money(value, field)
    except InvalidField as error:
        errors.append(error)
        return None
