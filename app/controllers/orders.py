"""``/orders``: orders and their status.

Fetch, shipment and processing arrive with the workflows issue; until then they answer 501.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, patch, post
from litestar.status_codes import HTTP_201_CREATED, HTTP_501_NOT_IMPLEMENTED

from app.controllers.params import DEFAULT_LIMIT, Limit, ObjectId, Offset
from app.controllers.sellers import not_implemented
from app.schemas import OrderCreate, OrderPatch, OrderStatus
from domain.services import Services
from domain.services.users import Principal


class OrderController(Controller):
    path = "/orders"
    tags = ["orders"]

    @get("/")
    async def list_orders(
        self,
        principal: Principal,
        services: Services,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
        status: OrderStatus | None = None,
    ) -> dict[str, Any]:
        return await services.orders.find(principal.user_id, limit=limit, offset=offset, status=status)

    @post("/", status_code=HTTP_201_CREATED)
    async def create_order(self, data: OrderCreate, principal: Principal, services: Services) -> dict[str, Any]:
        return await services.orders.create(principal.user_id, data.fields())

    @get("/{order_id:int}")
    async def get_order(self, order_id: ObjectId, principal: Principal, services: Services) -> dict[str, Any]:
        return await services.orders.get(principal.user_id, order_id)

    @patch("/{order_id:int}")
    async def update_order(
        self, order_id: ObjectId, data: OrderPatch, principal: Principal, services: Services
    ) -> dict[str, Any]:
        return await services.orders.update(principal.user_id, order_id, data.fields())

    @post("/fetch", status_code=HTTP_501_NOT_IMPLEMENTED)
    async def fetch_orders(self, principal: Principal) -> dict[str, Any]:
        return not_implemented("fetching orders from the store")

    @post(["/{order_id:int}/shipment", "/{order_id:int}/process"], status_code=HTTP_501_NOT_IMPLEMENTED)
    async def order_workflow(self, order_id: ObjectId, principal: Principal, services: Services) -> dict[str, Any]:
        await services.orders.get(principal.user_id, order_id)
        return not_implemented("order shipment and processing")
