"""The local store connector: the "store" is two tables of this database.

``store_products`` holds what was pushed (one row per SKU); ``store_orders`` holds orders placed
in the store and waiting for ``POST /orders/fetch`` (the demo seeds a few, :meth:`place_order`
adds one). It is the default connector and needs no network; each call is one short statement
outside any transaction of the caller.
"""

from __future__ import annotations

from dataclasses import asdict

import msgspec

from domain.store.base import ProductPush, StoreOrder, StoreOrderItem, StoreRejected
from domain.tables import StoreOrder as StoreOrderRow
from domain.tables import StoreProduct
from domain.values import now_ms

LOCAL_PREFIX = "local-"


def is_local_id(store_id: str | None) -> bool:
    return bool(store_id and store_id.startswith(LOCAL_PREFIX))


class LocalStore:
    name = "local"

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id

    async def push_product(self, product: ProductPush) -> str:
        now = now_ms()
        rows = await StoreProduct.raw(
            "INSERT INTO store_products (user_id, sku, title, price_cents, status, updated_at)"
            " VALUES ({}, {}, {}, {}, {}, {})"
            " ON CONFLICT (user_id, sku) DO UPDATE SET title = excluded.title,"
            " price_cents = excluded.price_cents, status = excluded.status, updated_at = excluded.updated_at"
            " RETURNING id",
            self.user_id,
            product.sku,
            product.title,
            product.price_cents,
            product.status,
            now,
        )
        return f"{LOCAL_PREFIX}product-{rows[0]['id']}"

    async def fetch_orders(self) -> list[StoreOrder]:
        rows = (
            await StoreOrderRow.select()
            .where((StoreOrderRow.user_id == self.user_id) & StoreOrderRow.fulfilled_at.is_null())
            .order_by(StoreOrderRow.id)
        )
        orders = []
        for row in rows:
            data = msgspec.json.decode(row["payload"])
            orders.append(
                StoreOrder(
                    store_order_id=f"{LOCAL_PREFIX}order-{row['id']}",
                    external_id=row["external_id"],
                    customer_name=data.get("customer_name", ""),
                    customer_email=data.get("customer_email"),
                    customer_address=data.get("customer_address", ""),
                    items=[StoreOrderItem(**item) for item in data.get("items", [])],
                    total_cents=data.get("total_cents", 0),
                    currency=data.get("currency", "USD"),
                )
            )
        return orders

    async def create_fulfillment(self, store_order_id: str, *, carrier: str, tracking_number: str) -> str:
        row_id = _row_id(store_order_id)
        rows = await StoreOrderRow.raw(
            "UPDATE store_orders SET carrier = {}, tracking_number = {}, fulfilled_at = {}"
            " WHERE id = {} AND user_id = {} AND fulfilled_at IS NULL RETURNING id",
            carrier,
            tracking_number,
            now_ms(),
            row_id,
            self.user_id,
        )
        if not rows:
            raise StoreRejected(f"the store has no open order {store_order_id}")
        return f"{LOCAL_PREFIX}fulfillment-{row_id}"

    async def place_order(self, order: StoreOrder) -> str:
        """Put an order in the local store, as a customer would (the demo's sample orders)."""
        payload = asdict(order)
        del payload["store_order_id"], payload["external_id"]
        rows = await StoreOrderRow.insert(
            StoreOrderRow(
                user_id=self.user_id,
                external_id=order.external_id,
                payload=msgspec.json.encode(payload).decode(),
                created_at=now_ms(),
            )
        ).returning(StoreOrderRow.id)
        return f"{LOCAL_PREFIX}order-{rows[0]['id']}"


def _row_id(store_order_id: str) -> int:
    try:
        return int(store_order_id.removeprefix(f"{LOCAL_PREFIX}order-"))
    except ValueError:
        raise StoreRejected(f"{store_order_id!r} is not an order of the local store") from None
