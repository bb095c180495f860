"""Products: CRUD with stock and price events, and stock alerts once per threshold crossing."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from domain import events
from domain.db import is_unique_violation
from domain.errors import Conflict, InvalidField, InvalidFields
from domain.services.common import Row, changed_fields, check_version, owned_row, page, user_threshold
from domain.services.orders import update_orders_losing_products
from domain.services.product_writes import (
    MONEY_COLUMNS,
    RENDERED_COLUMNS,
    product_json,
    product_json_of_tuple,
    product_row,
    write_products,
)
from domain.tables import Product, Seller
from domain.uow import Change, UnitOfWork
from domain.values import parse_money


def to_columns(fields: dict[str, Any]) -> dict[str, Any]:
    """API fields to column values, money parsed to cents; :class:`InvalidFields` names every bad amount."""
    columns: dict[str, Any] = {}
    errors: list[InvalidField] = []
    for field, value in fields.items():
        if field in MONEY_COLUMNS:
            try:
                columns[MONEY_COLUMNS[field]] = None if value is None else parse_money(value, field)
            except InvalidField as error:
                errors.append(error)
        else:
            columns[field] = value
    if errors:
        raise InvalidFields(errors)
    return columns


class ProductService:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    async def find(
        self,
        user_id: int,
        *,
        limit: int,
        offset: int,
        seller_id: int | None = None,
        status: str | None = None,
        q: str | None = None,
        low_stock: bool | None = None,
    ) -> Row:
        where = ["user_id = ?"]
        args: list[Any] = [user_id]
        if seller_id is not None:
            where.append("seller_id = ?")
            args.append(seller_id)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if q:
            # "%" and "_" in the text are literal characters, not LIKE wildcards.
            pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append("(LOWER(name) LIKE LOWER(?) ESCAPE '\\' OR LOWER(sku) LIKE LOWER(?) ESCAPE '\\')")
            args += [pattern, pattern]
        if low_stock is not None:
            where.append(f"stock {'<=' if low_stock else '>'} COALESCE(low_stock_threshold, ?)")
            args.append(await user_threshold(user_id))
        listed = await page(Product, " AND ".join(where), args, limit, offset, None, RENDERED_COLUMNS)
        listed["items"] = [product_json_of_tuple(row) for row in listed["items"]]
        return listed

    async def get(self, user_id: int, product_id: int) -> Row:
        return product_json(await owned_row(Product, "product", user_id, product_id))

    async def create(self, user_id: int, fields: dict[str, Any]) -> Row:
        columns = to_columns(fields)
        try:
            async with self.uow.write(user_id) as change:
                await self._check_seller(user_id, columns.get("seller_id"))
                (row,) = await write_products(self.uow.db, change, [(None, columns)])
                created = product_json(row)
        except Exception as exc:
            if is_unique_violation(exc):
                raise Conflict(f"sku {columns.get('sku')!r} is already used by another product") from None
            raise
        return created

    async def update(
        self, user_id: int, product_id: int, fields: dict[str, Any], *, if_version: Collection[int] | None = None
    ) -> Row:
        """Change the fields sent; with ``if_version``, only if the product is still at one of those versions."""
        columns = to_columns(fields)
        try:
            async with self.uow.write(user_id) as change:
                before, threshold = await product_row(self.uow.db, user_id, product_id)
                check_version("product", before, if_version)
                diff = changed_fields(before, columns)
                if not diff:
                    return product_json(before)
                if "seller_id" in diff:
                    await self._check_seller(user_id, diff["seller_id"])
                after = await self.apply(user_id, before, diff, change, threshold=threshold)
        except Exception as exc:
            if is_unique_violation(exc):
                raise Conflict(f"sku {columns.get('sku')!r} is already used by another product") from None
            raise
        return product_json(after)

    async def apply(
        self, user_id: int, before: Row, diff: dict[str, Any], change: Change, *, threshold: int | None = None
    ) -> Row:
        """Write ``diff`` (column values) to the product ``before`` and record its events.

        For use inside an open write of ``user_id``; ``threshold`` is the user's default
        low-stock threshold if known (else it is read when needed). Returns the row as written
        (see :func:`domain.services.product_writes.write_products`).
        """
        if change.user_id != user_id:
            raise ValueError(f"a write of user {change.user_id} cannot change a product of user {user_id}")
        (after,) = await write_products(self.uow.db, change, [(before, diff)], threshold=threshold)
        return after

    async def delete(self, user_id: int, product_id: int) -> None:
        async with self.uow.write(user_id) as change:
            row = await owned_row(Product, "product", user_id, product_id)
            await update_orders_losing_products(change, user_id, [product_id])
            await Product.delete().where(Product.id == product_id)
            change.record(events.PRODUCT_DELETED, {"id": row["id"], "sku": row["sku"]})

    @staticmethod
    async def _check_seller(user_id: int, seller_id: int | None) -> None:
        if seller_id is not None:
            await owned_row(Seller, "seller", user_id, seller_id)
