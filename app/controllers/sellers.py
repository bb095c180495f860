"""``/sellers``: the user's suppliers, and importing a seller's product feed."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from app.controllers.params import DEFAULT_LIMIT, Limit, ObjectId, Offset, if_match_versions, with_etag
from app.schemas import SellerCreate, SellerPatch
from domain.services import Services
from domain.services.users import Principal


class SellerController(Controller):
    path = "/sellers"
    tags = ["sellers"]

    @get("/")
    async def list_sellers(
        self, principal: Principal, services: Services, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
    ) -> dict[str, Any]:
        return await services.sellers.find(principal.user_id, limit=limit, offset=offset)

    @post("/", status_code=HTTP_201_CREATED)
    async def create_seller(
        self, data: SellerCreate, principal: Principal, services: Services
    ) -> Response[dict[str, Any]]:
        return with_etag(await services.sellers.create(principal.user_id, data.fields()), HTTP_201_CREATED)

    @get("/{seller_id:int}")
    async def get_seller(
        self, seller_id: ObjectId, principal: Principal, services: Services
    ) -> Response[dict[str, Any]]:
        return with_etag(await services.sellers.get(principal.user_id, seller_id))

    @patch("/{seller_id:int}", summary="Change the fields sent (If-Match: only if unchanged since read)")
    async def update_seller(
        self,
        seller_id: ObjectId,
        data: SellerPatch,
        principal: Principal,
        services: Services,
        request: Request[Any, Any, Any],
    ) -> Response[dict[str, Any]]:
        seller = await services.sellers.update(
            principal.user_id, seller_id, data.fields(), if_version=if_match_versions(request)
        )
        return with_etag(seller)

    @delete("/{seller_id:int}")
    async def delete_seller(self, seller_id: ObjectId, principal: Principal, services: Services) -> None:
        await services.sellers.delete(principal.user_id, seller_id)

    @post(
        "/{seller_id:int}/fetch-products",
        status_code=HTTP_200_OK,
        summary="Import the seller's feed: create or update products by SKU",
    )
    async def fetch_products(self, seller_id: ObjectId, principal: Principal, services: Services) -> dict[str, Any]:
        return await services.feeds.import_products(principal.user_id, seller_id)
