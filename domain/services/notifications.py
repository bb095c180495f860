"""System notifications: a message sent to every device of the caller, recorded like any event."""

from __future__ import annotations

from domain import events
from domain.services.common import Row
from domain.uow import UnitOfWork


class NotificationService:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    async def send(self, user_id: int, *, level: str, title: str, message: str) -> Row:
        data = {"level": level, "title": title, "message": message}
        async with self.uow.write(user_id) as change:
            change.record(events.SYSTEM_NOTIFICATION, data)
        return data
