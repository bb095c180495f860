"""``/settings``, ``/notifications`` and ``/events/history``: the user's own configuration and log."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Response, get, patch, post, put
from litestar.params import Parameter
from litestar.status_codes import HTTP_201_CREATED

from app.schemas import NotificationIn, SettingsIn
from domain.services import Services
from domain.services.users import Principal


class SettingsController(Controller):
    path = "/settings"
    tags = ["settings"]

    @get("/")
    async def get_settings(self, principal: Principal, services: Services) -> dict[str, Any]:
        return await services.settings.get(principal.user_id)

    @patch("/", summary="Change the fields sent; the others stay")
    async def patch_settings(self, data: SettingsIn, principal: Principal, services: Services) -> dict[str, Any]:
        return await services.settings.update(principal.user_id, data.fields())

    @put("/", summary="Replace the settings; fields left out return to their defaults")
    async def put_settings(self, data: SettingsIn, principal: Principal, services: Services) -> dict[str, Any]:
        return await services.settings.update(principal.user_id, data.fields(), replace=True)


class NotificationController(Controller):
    path = "/notifications"
    tags = ["notifications"]

    @post("/", status_code=HTTP_201_CREATED, summary="Send a system_notification to all of your devices")
    async def notify(self, data: NotificationIn, principal: Principal, services: Services) -> dict[str, Any]:
        return await services.notifications.send(
            principal.user_id, level=data.level, title=data.title, message=data.message
        )


class EventHistoryController(Controller):
    path = "/events/history"
    tags = ["events"]

    @get("/", summary="Recorded events after an id, oldest first")
    async def history(
        self,
        principal: Principal,
        services: Services,
        after: Annotated[int, Parameter(ge=0, le=2**62, description="return events with a greater id")] = 0,
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
    ) -> Response[bytes]:
        events = await services.event_log.read_after(principal.user_id, after, limit)
        bounds = await services.event_log.bounds(principal.user_id)
        # The stored envelopes are already JSON: splice them in rather than decode and re-encode.
        oldest = "null" if bounds.oldest_id is None else str(bounds.oldest_id)
        body = b'{"events":[%s],"latest_id":%d,"oldest_id":%s}' % (
            b",".join(event.payload for event in events),
            bounds.latest_id,
            oldest.encode(),
        )
        return Response(content=body, media_type="application/json")
