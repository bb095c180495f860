"""``/orders``: orders, their status, and the workflows: fetch from the store, process, ship."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, patch, post
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from app.controllers.params import DEFAULT_LIMIT, Limit, ObjectId, Offset, if_match_versions, with_etag
from app.schemas import OrderCreate, OrderPatch, OrderStatus, Shipment
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
    async def create_order(
        self, data: OrderCreate, principal: Principal, services: Services
    ) -> Response[dict[str, Any]]:
        return with_etag(await services.orders.create(principal.user_id, data.fields()), HTTP_201_CREATED)

    @get("/{order_id:int}")
    async def get_order(self, order_id: ObjectId, principal: Principal, services: Services) -> Response[dict[str, Any]]:
        return with_etag(await services.orders.get(principal.user_id, order_id))

    @patch("/{order_id:int}", summary="Change the fields sent (If-Match: only if unchanged since read)")
    async def update_order(
        self,
        order_id: ObjectId,
        data: OrderPatch,
        principal: Principal,
        services: Services,
        request: Request[Any, Any, Any],
    ) -> Response[dict[str, Any]]:
        order = await services.orders.update(
            principal.user_id, order_id, data.fields(), if_version=if_match_versions(request)
        )
        return with_etag(order)

    @post("/fetch", status_code=HTTP_200_OK, summary="Pull new orders from the store (no duplicates)")
    async def fetch_orders(self, principal: Principal, services: Services) -> dict[str, Any]:
        return await services.orders.fetch(principal.user_id)

    @post("/{order_id:int}/shipment", status_code=HTTP_200_OK, summary="Mark the order shipped, with its tracking")
    async def ship_order(
        self,
        order_id: ObjectId,
        data: Shipment,
        principal: Principal,
        services: Services,
        request: Request[Any, Any, Any],
    ) -> Response[dict[str, Any]]:
        order = await services.orders.ship(
            principal.user_id,
            order_id,
            carrier=data.carrier,
            tracking_number=data.tracking_number,
            if_version=if_match_versions(request),
        )
        return with_etag(order)

    @post("/{order_id:int}/process", status_code=HTTP_200_OK, summary="Place the order: take its items out of stock")
    async def process_order(
        self, order_id: ObjectId, principal: Principal, services: Services, request: Request[Any, Any, Any]
    ) -> Response[dict[str, Any]]:
        order = await services.orders.process(principal.user_id, order_id, if_version=if_match_versions(request))
        return with_etag(order)
