"""``/sellers``: the user's suppliers."""

from __future__ import annotations

from typing import Any

from litestar import Controller, delete, get, patch, post
from litestar.status_codes import HTTP_201_CREATED, HTTP_501_NOT_IMPLEMENTED

from app.controllers.params import DEFAULT_LIMIT, Limit, ObjectId, Offset
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
    async def create_seller(self, data: SellerCreate, principal: Principal, services: Services) -> dict[str, Any]:
        return await services.sellers.create(principal.user_id, data.fields())

    @get("/{seller_id:int}")
    async def get_seller(self, seller_id: ObjectId, principal: Principal, services: Services) -> dict[str, Any]:
        return await services.sellers.get(principal.user_id, seller_id)

    @patch("/{seller_id:int}")
    async def update_seller(
        self, seller_id: ObjectId, data: SellerPatch, principal: Principal, services: Services
    ) -> dict[str, Any]:
        return await services.sellers.update(principal.user_id, seller_id, data.fields())

    @delete("/{seller_id:int}")
    async def delete_seller(self, seller_id: ObjectId, principal: Principal, services: Services) -> None:
        await services.sellers.delete(principal.user_id, seller_id)

    @post("/{seller_id:int}/fetch-products", status_code=HTTP_501_NOT_IMPLEMENTED)
    async def fetch_products(self, seller_id: ObjectId, principal: Principal, services: Services) -> dict[str, Any]:
        await services.sellers.get(principal.user_id, seller_id)
        return not_implemented("seller feed import")


def not_implemented(what: str) -> dict[str, Any]:
    return {"status_code": HTTP_501_NOT_IMPLEMENTED, "detail": f"{what} is not available in this version yet"}
