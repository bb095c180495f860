"""Sellers (suppliers): CRUD, each change recorded as its event in the same transaction."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from domain import events
from domain.services.common import Row, changed_fields, check_version, owned_row, page
from domain.services.product_writes import PRODUCT_SELECT, write_products
from domain.tables import Seller
from domain.uow import UnitOfWork
from domain.values import iso, now_ms

SELLER_FIELDS = ("name", "email", "feed_url", "feed_format", "notes")


def seller_json(row: Row) -> Row:
    return {
        "id": row["id"],
        "name": row["name"],
        "email": row["email"],
        "feed_url": row["feed_url"],
        "feed_format": row["feed_format"],
        "notes": row["notes"],
        "version": row["version"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


class SellerService:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    async def find(self, user_id: int, *, limit: int, offset: int) -> Row:
        return await page(Seller, "user_id = ?", [user_id], limit, offset, seller_json)

    async def get(self, user_id: int, seller_id: int) -> Row:
        return seller_json(await owned_row(Seller, "seller", user_id, seller_id))

    async def create(self, user_id: int, fields: dict[str, Any]) -> Row:
        now = now_ms()
        async with self.uow.write(user_id) as change:
            rows = await Seller.insert(Seller(user_id=user_id, created_at=now, updated_at=now, **fields)).returning(
                Seller.id
            )
            seller = seller_json(await owned_row(Seller, "seller", user_id, rows[0]["id"]))
            change.record(events.SELLER_ADDED, seller)
        return seller

    async def update(
        self, user_id: int, seller_id: int, fields: dict[str, Any], *, if_version: Collection[int] | None = None
    ) -> Row:
        """Change the fields sent; with ``if_version``, only if the seller is still at one of those versions."""
        async with self.uow.write(user_id) as change:
            row = await owned_row(Seller, "seller", user_id, seller_id)
            check_version("seller", row, if_version)
            diff = changed_fields(row, fields)
            if not diff:
                return seller_json(row)
            await Seller.update({**diff, "version": row["version"] + 1, "updated_at": now_ms()}).where(
                Seller.id == seller_id
            )
            seller = seller_json(await owned_row(Seller, "seller", user_id, seller_id))
            change.record(events.SELLER_UPDATED, seller)
        return seller

    async def delete(self, user_id: int, seller_id: int) -> None:
        """Delete the seller; its products stay, unlinked (``seller_id`` null, each a ``product_updated``)."""
        async with self.uow.write(user_id) as change:
            row = await owned_row(Seller, "seller", user_id, seller_id)
            linked = await self.uow.db.fetch(
                f"{PRODUCT_SELECT} WHERE user_id = ? AND seller_id = ? ORDER BY id", user_id, seller_id
            )
            change.record(events.SELLER_DELETED, {"id": seller_id, "name": row["name"]})
            await write_products(self.uow.db, change, [(product, {"seller_id": None}) for product in linked])
            await Seller.delete().where(Seller.id == seller_id)
