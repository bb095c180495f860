"""Pushing products to the store: ``POST /products/{id}/sync`` and ``/products/bulk/sync-shopify``.

The store is called over the network with no transaction open; then one short write records
``product_synced`` (and stores ``shopify_id``/``synced_at``) for each product the store took.
A product deleted or changed meanwhile still records what the store now holds.
"""

from __future__ import annotations

from domain import events
from domain.errors import InvalidFields, NotFound
from domain.services.bulk import products_by_id
from domain.services.common import Row, Values, duplicates, owned_row
from domain.services.product_writes import product_json, products_where, write_products
from domain.store import Stores
from domain.store.base import ProductPush, StoreRejected, StoreUnavailable
from domain.tables import Product
from domain.uow import UnitOfWork
from domain.values import iso, now_ms


def to_push(row: Row) -> ProductPush:
    return ProductPush(
        product_id=row["id"],
        sku=row["sku"],
        title=row["name"],
        description=row["description"],
        price_cents=row["price_cents"],
        cost_cents=row["cost_price_cents"],
        currency=row["currency"],
        status=row["status"],
        store_id=row["shopify_id"],
    )


class StoreSyncService:
    def __init__(self, uow: UnitOfWork, stores: Stores) -> None:
        self.uow = uow
        self.stores = stores

    async def sync_one(self, user_id: int, product_id: int) -> Row:
        """Push one product; the store's refusal or absence is an error (502) and changes nothing."""
        row = await owned_row(Product, "product", user_id, product_id)
        async with self.stores.open(user_id) as store:
            store_id = await store.push_product(to_push(row))
        synced = await self._record(user_id, {product_id: store_id})
        if product_id not in synced:
            raise NotFound("product", product_id)  # deleted while the store was being called
        return synced[product_id]

    async def sync_many(self, user_id: int, product_ids: list[int]) -> Row:
        """Push each product; per-item results, since the store may refuse one and take another.

        Unknown or repeated ids fail the request before anything is sent. When the store becomes
        unreachable the remaining products are reported as not sent; if none got through at
        all, the request fails (502).
        """
        errors = duplicates(product_ids, "product_ids")
        if errors:
            raise InvalidFields(errors)
        found = await products_by_id(self.uow.db, user_id, product_ids)
        taken: dict[int, str] = {}
        failures: dict[int, str] = {}
        async with self.stores.open(user_id) as store:
            for index, product_id in enumerate(product_ids):
                try:
                    taken[product_id] = await store.push_product(to_push(found[product_id]))
                except StoreRejected as exc:
                    failures[product_id] = str(exc)
                except StoreUnavailable as exc:
                    if not taken:
                        raise
                    for rest in product_ids[index:]:
                        failures[rest] = f"not sent: {exc}"
                    break
        synced = await self._record(user_id, taken)
        items = []
        for product_id in product_ids:
            sku = found[product_id]["sku"]
            if product_id in synced:
                product = synced[product_id]
                items.append(
                    {
                        "product_id": product_id,
                        "sku": sku,
                        "ok": True,
                        "shopify_id": product["shopify_id"],
                        "synced_at": product["synced_at"],
                    }
                )
            else:
                error = failures.get(product_id, "deleted while it was being sent")
                items.append({"product_id": product_id, "sku": sku, "ok": False, "error": error})
        return {
            "total": len(product_ids),
            "synced": len(synced),
            "failed": len(product_ids) - len(synced),
            "items": items,
        }

    async def _record(self, user_id: int, taken: dict[int, str]) -> dict[int, Row]:
        """Store the store ids and record ``product_synced`` for each product still there."""
        if not taken:
            return {}
        now = now_ms()
        db = self.uow.db
        async with self.uow.write(user_id) as change:
            current = {row["id"]: row for row in await products_where(db, user_id, "id", taken)}
            writes: list[tuple[Row | None, Values]] = [
                (current[product_id], {"shopify_id": store_id, "synced_at": now})
                for product_id, store_id in taken.items()
                if product_id in current
            ]
            # A sync is not a change of the product's data: its version moves, its updated_at stays.
            written = await write_products(db, change, writes, now=now, touch=False)
            for row in written:
                change.record(
                    events.PRODUCT_SYNCED,
                    {"product_id": row["id"], "shopify_id": row["shopify_id"], "synced_at": iso(now)},
                )
        return {row["id"]: product_json(row) for row in written}
