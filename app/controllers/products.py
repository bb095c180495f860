"""``/products``: the catalogue, bulk changes and pushing products to the store."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from app.controllers.params import (
    DEFAULT_LIMIT,
    Limit,
    ObjectId,
    Offset,
    OptionalObjectId,
    if_match_versions,
    with_etag,
)
from app.schemas import (
    NO_NUL,
    BulkPriceUpdate,
    BulkProductIds,
    BulkStockUpdate,
    ProductCreate,
    ProductPatch,
    ProductStatus,
)
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
        seller_id: OptionalObjectId = None,
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
    async def create_product(
        self, data: ProductCreate, principal: Principal, services: Services
    ) -> Response[dict[str, Any]]:
        return with_etag(await services.products.create(principal.user_id, data.fields()), HTTP_201_CREATED)

    @get("/{product_id:int}")
    async def get_product(
        self, product_id: ObjectId, principal: Principal, services: Services
    ) -> Response[dict[str, Any]]:
        return with_etag(await services.products.get(principal.user_id, product_id))

    @patch("/{product_id:int}", summary="Change the fields sent (If-Match: only if unchanged since read)")
    async def update_product(
        self,
        product_id: ObjectId,
        data: ProductPatch,
        principal: Principal,
        services: Services,
        request: Request[Any, Any, Any],
    ) -> Response[dict[str, Any]]:
        product = await services.products.update(
            principal.user_id, product_id, data.fields(), if_version=if_match_versions(request)
        )
        return with_etag(product)

    @delete("/{product_id:int}")
    async def delete_product(self, product_id: ObjectId, principal: Principal, services: Services) -> None:
        await services.products.delete(principal.user_id, product_id)

    @post("/{product_id:int}/sync", status_code=HTTP_200_OK, summary="Push the product to the store")
    async def sync_product(
        self, product_id: ObjectId, principal: Principal, services: Services
    ) -> Response[dict[str, Any]]:
        return with_etag(await services.store_sync.sync_one(principal.user_id, product_id))

    @post("/bulk/price-update", status_code=HTTP_200_OK, summary="Set, shift or scale many prices at once")
    async def bulk_price_update(
        self, data: BulkPriceUpdate, principal: Principal, services: Services
    ) -> dict[str, Any]:
        return await services.bulk.update_prices(principal.user_id, data.product_ids, data.mode, data.value)

    @post("/bulk/stock-update", status_code=HTTP_200_OK, summary="Set the stock of many products at once")
    async def bulk_stock_update(
        self, data: BulkStockUpdate, principal: Principal, services: Services
    ) -> dict[str, Any]:
        return await services.bulk.update_stock(principal.user_id, [item.fields() for item in data.items])

    @post("/bulk/delete", status_code=HTTP_200_OK, summary="Delete many products at once")
    async def bulk_delete(self, data: BulkProductIds, principal: Principal, services: Services) -> dict[str, Any]:
        return await services.bulk.delete(principal.user_id, data.product_ids)

    @post("/bulk/sync-shopify", status_code=HTTP_200_OK, summary="Push many products to the store; per-item results")
    async def bulk_sync(self, data: BulkProductIds, principal: Principal, services: Services) -> dict[str, Any]:
        return await services.store_sync.sync_many(principal.user_id, data.product_ids)
