"""The push dispatcher: from the durable event log to the push services, at least once.

Two steps, each in short database transactions that never wait on the network:

1. **Queue.** For each user with a push cursor behind their latest event, read the events after
   the cursor, and in ONE transaction insert a delivery per (pushed event, subscription) and move
   the cursor. A crash before the commit leaves the cursor where it was (the events are read
   again); after it, the deliveries are in the database. The event types are the user's
   ``push_types``.
2. **Send.** Claim due deliveries (``claimed_until`` = now + a lease), send them outside any
   transaction, then delete each one sent, or schedule its retry. A process that dies with
   claims leaves them to be taken again when the lease runs out (on SQLite, where there is one
   process, at its next start): a notification may repeat after a crash, none is lost. Their
   collapse keys make a repeat replace the first on the device.

Several processes on PostgreSQL share the work without sending anything twice in normal
operation: cursors and deliveries are locked with ``FOR UPDATE SKIP LOCKED``, so each is taken by
one process. On SQLite there is one process and its writes are serialized anyway.

Writes never wait for push: the unit of work only sets an event that wakes this loop
(:meth:`Dispatcher.wake`); the loop also looks every ``poll_s`` for retries that came due and
for events written by other processes. A wake costs one read when no cursor is behind (a user
without push subscriptions has no cursor), and deliveries are claimed only when some may be due
(something was queued or sent since the last empty claim, or ``poll_s`` passed), and the loop
looks :data:`WAKE_COALESCE_S` after a wake, so one look serves all the writes of that moment: a
busy server's writes do not each cost the dispatcher a query. At most ``concurrency`` sends are in flight, each bounded
by the sender's timeout, so a push service that hangs holds a slot, not the loop. A failing
delivery is retried with exponential back-off (never sooner than ``Retry-After``) until
``retry_for_s`` after it was queued, or its TTL, runs out; then it is counted as failed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from domain.db import Database
from domain.push.expo import BATCH_SIZE, ExpoMessage, ExpoSender
from domain.push.messages import PUSHABLE_TYPES, Notification, decode_notification, decode_push_types, notification_for
from domain.push.metrics import PushMetrics
from domain.push.outcome import Outcome, backoff_s
from domain.push.settings import PushSettings
from domain.push.webpush import WebPushSender, WebPushTarget
from domain.tables import PushCursor, PushDelivery, PushSubscription
from domain.values import now_ms
from streams.broker import Event
from streams.tasks import cancel_and_wait

logger = logging.getLogger("dropsync.push")

USERS_PER_ROUND = 50
EVENTS_PER_USER = 500
EXPO_BATCHES_IN_FLIGHT = 2
QUEUE_ROUNDS = 20
LEASE_MARGIN_S = 5.0
WAKE_COALESCE_S = 0.02
ERROR_LOG_EVERY_S = 60.0
_PUSHABLE = frozenset(PUSHABLE_TYPES)

# The users whose cursor is behind their latest event, with their push types.
_CURSORS_BEHIND = (
    "SELECT c.user_id, c.last_event_id AS seen, u.last_event_id AS latest, s.push_types"
    " FROM push_cursors c JOIN users u ON u.id = c.user_id LEFT JOIN settings s ON s.user_id = c.user_id"
    " WHERE u.last_event_id > c.last_event_id ORDER BY c.id LIMIT {}"
)
_ANY_CURSOR_BEHIND = (
    "SELECT 1 FROM push_cursors c JOIN users u ON u.id = c.user_id WHERE u.last_event_id > c.last_event_id LIMIT 1"
)
# One user's events of the given types in (seen, latest]; {types} becomes one placeholder per type.
_EVENTS_OF_TYPES = (
    "SELECT seq, type, payload, created_at FROM events WHERE user_id = {} AND seq > {} AND seq <= {}"
    " AND type IN ({types}) ORDER BY seq LIMIT {}"
)
# Claim due, unclaimed deliveries of one kind for a lease; {lock} is the row-lock clause (PostgreSQL).
_CLAIM = (
    "UPDATE push_deliveries SET claimed_until = {}, attempts = attempts + 1 WHERE id IN ("
    "SELECT d.id FROM push_deliveries d JOIN push_subscriptions s ON s.id = d.subscription_id"
    " WHERE d.next_attempt_at <= {} AND (d.claimed_until IS NULL OR d.claimed_until < {}) AND s.kind = {}"
    " ORDER BY d.next_attempt_at, d.id LIMIT {}{lock})"
    " RETURNING id, subscription_id, message, created_at, expires_at, attempts"
)
_envelope = msgspec.json.Decoder()


@dataclass(slots=True)
class Claimed:
    """A delivery this process has claimed, with what it needs to send it."""

    id: int
    subscription_id: int
    kind: str
    endpoint: str
    p256dh: str | None
    auth: str | None
    notification: Notification
    created_at: int
    expires_at: int
    attempts: int


class Dispatcher:
    def __init__(
        self,
        db: Database,
        settings: PushSettings,
        metrics: PushMetrics,
        *,
        webpush: WebPushSender | None,
        expo: ExpoSender,
        outage: Callable[[BaseException], bool] = lambda exc: False,
    ) -> None:
        self.db = db
        self.settings = settings
        self.metrics = metrics
        self.webpush = webpush
        self.expo = expo
        # True when the error means the database is unavailable, which the caller reports itself.
        self.outage = outage
        self._wake = asyncio.Event()
        # Whether a claim may find due deliveries (see the module's docstring).
        self._maybe_due = True
        self._webpush_in_flight = 0
        self._expo_in_flight = 0
        self._last_error_log = 0.0

    def wake(self, events: Sequence[Event] = ()) -> None:
        """Look for work now (called after each commit; cheap, never blocks, never raises)."""
        if not events or any(event.type in _PUSHABLE for event in events):
            self._wake.set()

    async def run_forever(self) -> None:
        """Queue and send until cancelled; errors (the database going away...) are logged and retried."""
        if not self.db.is_postgres:
            await self._release_claims()
        # Plain asyncio tasks, cancelled once at shutdown: a cancel that kept firing (anyio's
        # cancel scopes) would interrupt the database driver's own clean-up and leak a connection.
        sends: set[asyncio.Task[None]] = set()
        try:
            while True:
                self._wake.clear()
                try:
                    for _ in range(QUEUE_ROUNDS):  # then send what is queued; the rest next turn
                        if not await self.queue_new_events():
                            break
                        await asyncio.sleep(0)
                    await self._start_sends(sends)
                except Exception as exc:  # noqa: BLE001 - any fault (the database away...) is logged, then retried
                    self._log_error("the push dispatcher failed; trying again", exc)
                await self._sleep_until_woken()
                await asyncio.sleep(WAKE_COALESCE_S)  # one look serves the writes of this moment
        finally:
            await cancel_and_wait(sends)

    async def _sleep_until_woken(self) -> None:
        """Until :meth:`wake` or ``poll_s``. Not ``asyncio.wait_for``: on Python 3.11 it can swallow
        a cancellation that comes as the wait ends, and shutdown would wait on this loop forever."""
        timer = asyncio.get_running_loop().call_later(self.settings.poll_s, self._look_for_due_work)
        try:
            await self._wake.wait()
        finally:
            timer.cancel()

    def _look_for_due_work(self) -> None:
        """Something may have made a delivery due (queued, sent, or ``poll_s`` passed): claim next turn."""
        self._maybe_due = True
        self._wake.set()

    # --- 1. from the event log to the queue --------------------------------------------------------

    async def queue_new_events(self) -> bool:
        """Queue the pushed events after the cursors of up to :data:`USERS_PER_ROUND` users; True
        when there may be more to queue."""
        if not await self.db.fetch(_ANY_CURSOR_BEHIND):
            return False  # a read, not a write transaction: the usual answer for most writes
        lock = " FOR UPDATE OF c SKIP LOCKED" if self.db.is_postgres else ""
        more = False
        async with self.db.write():
            cursors = await PushCursor.raw(
                _CURSORS_BEHIND + lock,
                USERS_PER_ROUND,
            )
            now = now_ms()
            for cursor in cursors:
                more |= await self._queue_user(cursor, now)
            more |= len(cursors) == USERS_PER_ROUND
        return more

    async def _queue_user(self, cursor: dict[str, Any], now: int) -> bool:
        user_id, seen, latest = cursor["user_id"], int(cursor["seen"]), int(cursor["latest"])
        types = [kind for kind in decode_push_types(cursor["push_types"] or "") if kind in _PUSHABLE]
        subscriptions = await PushSubscription.select(PushSubscription.id).where(PushSubscription.user_id == user_id)
        rows: list[dict[str, Any]] = []
        if types and subscriptions:
            rows = await PushCursor.raw(
                _EVENTS_OF_TYPES.replace("{types}", ", ".join("{}" for _ in types)),
                user_id,
                seen,
                latest,
                *types,
                EVENTS_PER_USER,
            )
        upto = int(rows[-1]["seq"]) if len(rows) == EVENTS_PER_USER else latest
        deliveries: list[PushDelivery] = []
        for row in rows:
            notification = notification_for(row["type"], int(row["seq"]), _envelope.decode(row["payload"])["data"])
            if notification is None:
                continue
            message = msgspec.json.encode(notification).decode()
            expires_at = int(row["created_at"]) + self.settings.ttl_s * 1000
            deliveries.extend(
                PushDelivery(
                    subscription_id=subscription["id"],
                    event_id=notification.event_id,
                    message=message,
                    created_at=now,
                    expires_at=expires_at,
                    next_attempt_at=now,
                    attempts=0,
                )
                for subscription in subscriptions
            )
        for start in range(0, len(deliveries), 1000):
            await PushDelivery.insert(*deliveries[start : start + 1000])
        await PushCursor.update({PushCursor.last_event_id: upto}).where(PushCursor.user_id == user_id)
        if deliveries:
            self._look_for_due_work()
        return upto < latest

    # --- 2. from the queue to the services ----------------------------------------------------------

    async def _start_sends(self, sends: set[asyncio.Task[None]]) -> None:
        if not self._maybe_due:
            return
        self._maybe_due = False  # set again by whatever may make a delivery due
        free = self.settings.concurrency - self._webpush_in_flight
        if free > 0:
            for claimed in await self.claim("webpush", free):
                self._webpush_in_flight += 1
                _start(sends, self._send_webpush(claimed))
        if self._expo_in_flight < EXPO_BATCHES_IN_FLIGHT:
            batch = await self.claim("expo", BATCH_SIZE)
            if batch:
                self._expo_in_flight += 1
                _start(sends, self._send_expo(batch))

    async def claim(self, kind: str, limit: int) -> list[Claimed]:
        """Take up to ``limit`` due deliveries of ``kind`` for this process, for one lease."""
        now = now_ms()
        # Longer than a send can take (it is bounded by timeout_s) and the recording after it.
        lease_until = now + int((2 * self.settings.timeout_s + LEASE_MARGIN_S) * 1000)
        lock = " FOR UPDATE OF d SKIP LOCKED" if self.db.is_postgres else ""
        async with self.db.write():
            rows = await PushDelivery.raw(
                _CLAIM.replace("{lock}", lock),
                lease_until,
                now,
                now,
                kind,
                limit,
            )
            if not rows:
                return []
            subscriptions = {
                row["id"]: row
                for row in await PushSubscription.select(
                    PushSubscription.id, PushSubscription.endpoint, PushSubscription.p256dh, PushSubscription.auth
                ).where(PushSubscription.id.is_in([row["subscription_id"] for row in rows]))
            }
        claimed = []
        for row in rows:
            subscription = subscriptions.get(row["subscription_id"])
            if subscription is None:
                continue  # deleted meanwhile: its deliveries went with it
            claimed.append(
                Claimed(
                    id=row["id"],
                    subscription_id=row["subscription_id"],
                    kind=kind,
                    endpoint=subscription["endpoint"],
                    p256dh=subscription["p256dh"],
                    auth=subscription["auth"],
                    notification=decode_notification(row["message"]),
                    created_at=int(row["created_at"]),
                    expires_at=int(row["expires_at"]),
                    attempts=int(row["attempts"]),
                )
            )
        return sorted(claimed, key=lambda item: item.id)

    async def _send_webpush(self, claimed: Claimed) -> None:
        try:
            outcome = await self.send_one_webpush(claimed)
            await self.record(claimed, outcome)
        except Exception as exc:  # noqa: BLE001 - logged; the lease makes the delivery due again
            self._log_error("a web push delivery could not be recorded; it is retried after its lease", exc)
        finally:
            self._webpush_in_flight -= 1
            self._look_for_due_work()

    async def send_one_webpush(self, claimed: Claimed) -> Outcome:
        ttl_s = (claimed.expires_at - now_ms()) // 1000
        if ttl_s <= 0:
            return Outcome("failed", "expired before it could be sent (TTL)")
        if self.webpush is None:
            return Outcome("failed", "Web Push is not configured on this server (DROPSYNC_VAPID_SUBJECT)")
        target = WebPushTarget(endpoint=claimed.endpoint, p256dh=claimed.p256dh or "", auth=claimed.auth or "")
        return await self.webpush.send(target, claimed.notification, ttl_s)

    async def _send_expo(self, batch: list[Claimed]) -> None:
        try:
            outcomes = await self.send_expo_batch(batch)
            for claimed, outcome in zip(batch, outcomes, strict=True):
                await self.record(claimed, outcome)
        except Exception as exc:  # noqa: BLE001 - logged; the lease makes the delivery due again
            self._log_error("an Expo batch could not be recorded; it is retried after its lease", exc)
        finally:
            self._expo_in_flight -= 1
            self._look_for_due_work()

    async def send_expo_batch(self, batch: list[Claimed]) -> list[Outcome]:
        now = now_ms()
        live = [claimed for claimed in batch if claimed.expires_at > now]
        sent = iter(
            await self.expo.send(
                [
                    ExpoMessage(claimed.endpoint, claimed.notification, (claimed.expires_at - now) // 1000)
                    for claimed in live
                ]
            )
        )
        expired = Outcome("failed", "expired before it could be sent (TTL)")
        return [next(sent) if claimed.expires_at > now else expired for claimed in batch]

    async def record(self, claimed: Claimed, outcome: Outcome) -> None:
        """Apply one outcome: delete the delivery (sent, failed), the subscription (gone), or
        schedule the retry (or give up once the retry window or the TTL has passed)."""
        now = now_ms()
        service = claimed.kind
        if outcome.status == "retry":
            wait_ms = int(backoff_s(claimed.attempts, outcome.retry_after_s) * 1000)
            next_at = now + wait_ms
            window_end = min(claimed.created_at + int(self.settings.retry_for_s * 1000), claimed.expires_at)
            if next_at <= window_end:
                self.metrics.retried[service].inc()
                async with self.db.write():
                    await PushDelivery.update(
                        {PushDelivery.next_attempt_at: next_at, PushDelivery.claimed_until: None}
                    ).where(PushDelivery.id == claimed.id)
                    await _note_error(claimed.subscription_id, outcome, now)
                return
            outcome = Outcome("failed", f"gave up after {claimed.attempts} attempts: {outcome.detail}")
        async with self.db.write():
            if outcome.status == "gone":
                await PushSubscription.delete().where(PushSubscription.id == claimed.subscription_id)
            else:
                await PushDelivery.delete().where(PushDelivery.id == claimed.id)
                if outcome.status == "sent":
                    await PushSubscription.update({PushSubscription.last_success_at: now}).where(
                        PushSubscription.id == claimed.subscription_id
                    )
                else:
                    await _note_error(claimed.subscription_id, outcome, now)
        if outcome.status == "sent":
            self.metrics.sent[service].inc()
        elif outcome.status == "gone":
            self.metrics.pruned[service].inc()
            logger.info("%s subscription %s removed: %s", service, claimed.subscription_id, outcome.detail)
        else:
            self.metrics.failed[service].inc()
            logger.warning("%s notification for subscription %s dropped: %s", service, claimed.subscription_id,
                           outcome.detail)  # fmt: skip

    async def _release_claims(self) -> None:
        """SQLite has one process: claims left in the database are those of a process that died."""
        async with self.db.write():
            await PushDelivery.update({PushDelivery.claimed_until: None}).where(
                PushDelivery.claimed_until.is_not_null()
            )

    def _log_error(self, message: str, exc: BaseException) -> None:
        """An unavailable database goes to :attr:`outage` (the app logs one line per outage);
        anything else is logged with its traceback, at most every :data:`ERROR_LOG_EVERY_S`."""
        if self.outage(exc):
            return
        now = time.monotonic()
        if now - self._last_error_log >= ERROR_LOG_EVERY_S:
            self._last_error_log = now
            logger.exception(message)


def _start(sends: set[asyncio.Task[None]], job: Coroutine[Any, Any, None]) -> None:
    task = asyncio.create_task(job)
    sends.add(task)
    task.add_done_callback(sends.discard)


async def _note_error(subscription_id: int, outcome: Outcome, now: int) -> None:
    await PushSubscription.update(
        {PushSubscription.last_error: outcome.detail[:500], PushSubscription.last_error_at: now}
    ).where(PushSubscription.id == subscription_id)
