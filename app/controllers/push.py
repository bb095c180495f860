"""``/push``: the caller's push subscriptions (browsers and phones), the server's VAPID key and a
test send; ``/sw.js``: the dashboard's service worker, served at the root so its scope is ``/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Controller, MediaType, Response, delete, get, post
from litestar.exceptions import ServiceUnavailableException
from litestar.response import File
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from app.controllers.params import DEFAULT_LIMIT, Limit, ObjectId, Offset
from app.schemas import PushSubscriptionIn
from domain.services import Services
from domain.services.users import Principal

SERVICE_WORKER = Path(__file__).resolve().parent.parent / "static" / "sw.js"
NOT_CONFIGURED = "Web Push is not configured on this server: set DROPSYNC_VAPID_SUBJECT (mailto: or https:) and restart"


class PushController(Controller):
    path = "/push"
    tags = ["push"]

    @get("/vapid-public-key", summary="The server's VAPID public key, for PushManager.subscribe()")
    async def get_vapid_public_key(self, principal: Principal, services: Services) -> dict[str, Any]:
        if not services.push.webpush_enabled:
            raise ServiceUnavailableException(detail=NOT_CONFIGURED)
        return {"public_key": services.push.public_key}

    @post(
        "/subscriptions",
        status_code=HTTP_201_CREATED,
        summary="Add a device: a browser PushSubscription, or an Expo push token (200 if already there)",
    )
    async def create_push_subscription(
        self, data: PushSubscriptionIn, principal: Principal, services: Services
    ) -> Response[dict[str, Any]]:
        if data.kind == "webpush" and not services.push.webpush_enabled:
            raise ServiceUnavailableException(detail=NOT_CONFIGURED)
        subscription, created = await services.push.subscriptions.create(principal.user_id, data.fields())
        return Response(subscription, status_code=HTTP_201_CREATED if created else HTTP_200_OK)

    @get("/subscriptions", summary="Your devices, each with its last success and last error")
    async def list_push_subscriptions(
        self, principal: Principal, services: Services, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
    ) -> dict[str, Any]:
        return await services.push.subscriptions.find(principal.user_id, limit=limit, offset=offset)

    @delete("/subscriptions/{subscription_id:int}", summary="Remove a device")
    async def delete_push_subscription(
        self, subscription_id: ObjectId, principal: Principal, services: Services
    ) -> None:
        await services.push.subscriptions.delete(principal.user_id, subscription_id)

    @post("/test", status_code=HTTP_200_OK, summary="Send a test notification to each of your devices now")
    async def send_test_push(self, principal: Principal, services: Services) -> dict[str, Any]:
        return {"results": await services.push.send_test(principal.user_id)}


@get("/sw.js", include_in_schema=False, media_type=MediaType.TEXT, cache_control=None)
async def service_worker() -> File:
    """The service worker that shows push notifications; at the root, so that it controls ``/``."""
    return File(
        SERVICE_WORKER,
        content_disposition_type="inline",
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
    )
