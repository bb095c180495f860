"""Push notifications for the app: subscriptions, the VAPID key, test sends and the dispatcher.

Lifecycle: :meth:`PushService.start` (after the database) loads or creates the VAPID key and opens
the HTTP client; :meth:`PushService.run_forever` is the dispatcher (a background job);
:meth:`PushService.stop` closes the client. :meth:`PushService.wake` is handed to the unit of
work, which calls it after each commit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import anyio
import httpx
from prometheus_client import CollectorRegistry

from domain.db import Database
from domain.push.dispatcher import Claimed, Dispatcher
from domain.push.expo import ExpoSender
from domain.push.keys import VapidKey, load_vapid_key
from domain.push.messages import test_notification
from domain.push.metrics import PushMetrics
from domain.push.outcome import Outcome
from domain.push.settings import PushSettings
from domain.push.subscriptions import SubscriptionService
from domain.push.webpush import WebPushSender
from domain.values import now_ms
from streams.broker import Event

MAX_CONNECTIONS = 100
Row = dict[str, Any]


class PushNotStarted(RuntimeError):
    """The push service is used before :meth:`PushService.start` (the app's lifespan) ran."""


class PushService:
    def __init__(self, db: Database, settings: PushSettings, registry: CollectorRegistry | None = None) -> None:
        self.db = db
        self.settings = settings
        self.metrics = PushMetrics(registry)
        self.subscriptions = SubscriptionService(db, allow_loopback=settings.allow_loopback)
        self.key: VapidKey | None = None
        self._client: httpx.AsyncClient | None = None
        self._dispatcher: Dispatcher | None = None
        # Set by the app before start(): true for an error meaning the database is unavailable,
        # which the app then reports (once per outage) instead of the dispatcher's own log line.
        self.database_unavailable: Callable[[BaseException], bool] = lambda exc: False

    @property
    def webpush_enabled(self) -> bool:
        """Web Push needs a VAPID subject (``DROPSYNC_VAPID_SUBJECT``); Expo push works without."""
        return bool(self.settings.vapid_subject)

    @property
    def dispatcher(self) -> Dispatcher:
        if self._dispatcher is None:
            raise PushNotStarted("push is not started: did the app's lifespan call PushService.start()?")
        return self._dispatcher

    async def start(self) -> None:
        self.key = await load_vapid_key(self.settings.vapid_private_key)
        self._client = httpx.AsyncClient(
            timeout=self.settings.timeout_s,
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=20),
        )
        webpush = (
            WebPushSender(
                self.key,
                self.settings.vapid_subject,
                self._client,
                timeout_s=self.settings.timeout_s,
                allow_loopback=self.settings.allow_loopback,
            )
            if self.webpush_enabled
            else None
        )
        expo = ExpoSender(
            self._client,
            url=self.settings.expo_url,
            access_token=self.settings.expo_access_token,
            timeout_s=self.settings.timeout_s,
        )
        self._dispatcher = Dispatcher(
            self.db, self.settings, self.metrics, webpush=webpush, expo=expo, outage=self.database_unavailable
        )

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def wake(self, events: Sequence[Event]) -> None:
        """After a commit: let the dispatcher look for new work (never blocks)."""
        if self._dispatcher is not None:
            self._dispatcher.wake(events)

    async def run_forever(self) -> None:
        await self.dispatcher.run_forever()

    @property
    def public_key(self) -> str:
        if self.key is None:
            raise PushNotStarted("push is not started: did the app's lifespan call PushService.start()?")
        return self.key.public_key

    async def send_test(self, user_id: int) -> list[Row]:
        """Send a test notification to each of the user's subscriptions now (no queue, no retry);
        each one's outcome is recorded like a queued push's (a gone device is removed)."""
        dispatcher = self.dispatcher
        notification = test_notification(now_ms())
        now = now_ms()
        claimed = [
            Claimed(
                id=0,
                subscription_id=row["id"],
                kind=row["kind"],
                endpoint=row["endpoint"],
                p256dh=row["p256dh"],
                auth=row["auth"],
                notification=notification,
                created_at=now,
                expires_at=now + self.settings.ttl_s * 1000,
                attempts=1,
            )
            for row in await self.subscriptions.rows_of(user_id)
        ]
        outcomes: dict[int, Outcome] = {}

        async def web_push(item: Claimed) -> None:
            outcomes[item.subscription_id] = await dispatcher.send_one_webpush(item)

        async def expo(batch: list[Claimed]) -> None:
            for item, outcome in zip(batch, await dispatcher.send_expo_batch(batch), strict=True):
                outcomes[item.subscription_id] = outcome

        expo_items = [item for item in claimed if item.kind == "expo"]
        async with anyio.create_task_group() as group:
            for item in claimed:
                if item.kind == "webpush":
                    group.start_soon(web_push, item)
            for start in range(0, len(expo_items), 100):
                group.start_soon(expo, expo_items[start : start + 100])
        results: list[Row] = []
        for item in claimed:
            outcome = outcomes[item.subscription_id]
            # A test is not retried: "retry" is reported as it is, and recorded as an error.
            await dispatcher.record(item, outcome if outcome.status != "retry" else _not_retried(outcome))
            results.append(_result(item, outcome))
        return results


def _not_retried(outcome: Outcome) -> Outcome:
    return Outcome("failed", outcome.detail)


def _result(item: Claimed, outcome: Outcome) -> dict[str, Any]:
    labels = {"sent": "sent", "gone": "removed", "retry": "failed", "failed": "failed"}
    return {
        "id": item.subscription_id,
        "kind": item.kind,
        "outcome": labels[outcome.status],
        "status_code": outcome.status_code,
        "detail": outcome.detail,
    }
