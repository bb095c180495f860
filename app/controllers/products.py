"""``/products``: the catalogue. Bulk routes and store sync arrive with the workflows issue (501)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, delete, get, patch, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_501_NOT_IMPLEMENTED

from app.controllers.params import DEFAULT_LIMIT, Limit, ObjectId, Offset
from app.controllers.sellers import not_implemented
from app.schemas import NO_NUL, ProductCreate, ProductPatch, ProductStatus
from domain.services import Services
from domain.services.users import Principal


class ProductController(Controller):
    path = "/products"
    tags = ["products"]

    @get("/")
    async def list_products(
        self,
        principal: Principal,
        services: Services,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
        seller_id: ObjectId | None = None,
        status: ProductStatus | None = None,
        q: Annotated[str | None, Parameter(max_length=200, pattern=NO_NUL, description="in name or SKU")] = None,
        low_stock: bool | None = None,
    ) -> dict[str, Any]:
        return await services.products.find(
            principal.user_id,
            limit=limit,
            offset=offset,
            seller_id=seller_id,
            status=status,
            q=q,
            low_stock=low_stock,
        )

    @post("/", status_code=HTTP_201_CREATED)
    async def create_product(self, data: ProductCreate, principal: Principal, services: Services) -> dict[str, Any]:
        return await services.products.create(principal.user_id, data.fields())

    @get("/{product_id:int}")
    async def get_product(self, product_id: ObjectId, principal: Principal, services: Services) -> dict[str, Any]:
        return await services.products.get(principal.user_id, product_id)

    @patch("/{product_id:int}")
    async def update_product(
        self, product_id: ObjectId, data: ProductPatch, principal: Principal, services: Services
    ) -> dict[str, Any]:
        return await services.products.update(principal.user_id, product_id, data.fields())

    @delete("/{product_id:int}")
    async def delete_product(self, product_id: ObjectId, principal: Principal, services: Services) -> None:
        await services.products.delete(principal.user_id, product_id)

    @post("/{product_id:int}/sync", status_code=HTTP_501_NOT_IMPLEMENTED)
    async def sync_product(self, product_id: ObjectId, principal: Principal, services: Services) -> dict[str, Any]:
        await services.products.get(principal.user_id, product_id)
        return not_implemented("store sync")

    @post(
        ["/bulk/price-update", "/bulk/stock-update", "/bulk/delete", "/bulk/sync-shopify"],
        status_code=HTTP_501_NOT_IMPLEMENTED,
    )
    async def bulk(self, principal: Principal) -> dict[str, Any]:
        return not_implemented("bulk operations")
