"""The Redis backend (``redis://host:port/db``): fan-out between processes and hosts.

- The events of one commit are published as ONE message to their user's channel
  ``<namespace>:user:<id>`` (ids are integers: no two users can share a channel, whatever the
  case; deployments that share a Redis need distinct namespaces: ``broker_namespace``),
  so a burst reaches every process's subscriptions whole, as it does in-process.
- Each process holds ONE pattern subscription (``<namespace>:user:*``) on one connection and
  multiplexes it to its local subscriptions: no Redis connection per client.
- Events recorded by this process go to its own subscriptions directly (no round trip), and to
  Redis for the others through a bounded outbox that one background task drains in order:
  :meth:`RedisBroker.publish` never waits on Redis, so a slow or frozen Redis never holds a
  committed write's HTTP response. The copy that comes back is recognised by its origin and
  skipped.
- Redis may go away. What could not be published (Redis down or too slow, or the outbox full) is
  remembered per user, and those users are announced to the other processes once Redis is back,
  so that their streams catch up from the database (the events are in the log).
- The reader notices a Redis that vanished without closing the connection (a dead host, a frozen
  process): it pings every ``PING_EVERY_S`` and reconnects when nothing came back for
  ``SILENCE_LIMIT_S``. After every reconnect each local subscription reads its user's log after
  its cursor (see :meth:`streams.broker.Subscription.request_catch_up`).
- Presence for ``/ws/stats`` totals: one hash, a field per process, refreshed every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import struct
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import msgspec
import redis.asyncio as redis
from redis.exceptions import RedisError

from streams.broker import Event, LocalFanout, Presence, Subscription, group_by_user
from streams.endings import Ending
from streams.metrics import Metrics
from streams.tasks import cancel_and_wait

logger = logging.getLogger("dropsync.broker.redis")

PRESENCE_TTL_S = 15  # a process that stops refreshing (every few seconds) drops out of the totals
BACKOFF_FLOOR_S = 0.1
BACKOFF_CEILING_S = 5.0
ANNOUNCE_EVERY_S = 0.5
CONNECT_TIMEOUT_S = 5.0  # connecting and subscribing (a frozen Redis accepts TCP and then says nothing)
PING_EVERY_S = 2.0  # the reader pings when it has heard nothing for this long...
SILENCE_LIMIT_S = 6.0  # ...and takes Redis for gone after this long without a word
PUBLISH_TIMEOUT_S = 5.0
OUTBOX_MAX = 10_000  # messages (one per user per commit) waiting for Redis; past it, announce instead
_HEADER = struct.Struct("!qdH")  # event id, committed_at, length of the type; then the type and payload length
_LENGTH = struct.Struct("!I")


def encode_message(origin: bytes, events: Sequence[Event]) -> bytes:
    """``<origin>\\n`` then, per event, its id, commit time, type and payload (the envelope, byte for byte)."""
    parts = [origin, b"\n"]
    for event in events:
        kind = event.type.encode()
        parts += [_HEADER.pack(event.id, event.committed_at or 0.0, len(kind)), kind]
        parts += [_LENGTH.pack(len(event.payload)), event.payload]
    return b"".join(parts)


def decode_message(user_id: int, data: bytes) -> tuple[bytes, list[Event]]:
    origin, _, body = data.partition(b"\n")
    events: list[Event] = []
    offset = 0
    while offset < len(body):
        event_id, committed_at, kind_length = _HEADER.unpack_from(body, offset)
        offset += _HEADER.size
        kind = body[offset : offset + kind_length].decode()
        offset += kind_length
        (payload_length,) = _LENGTH.unpack_from(body, offset)
        offset += _LENGTH.size
        payload = body[offset : offset + payload_length]
        offset += payload_length
        events.append(
            Event(user_id=user_id, id=event_id, type=kind, payload=payload, committed_at=committed_at or None)
        )
    return origin, events


class RedisBroker:
    def __init__(self, url: str, namespace: str = "dropsync", metrics: Metrics | None = None) -> None:
        self.url = url
        self.metrics = metrics
        self.channel_prefix = f"{namespace}:user:".encode()
        self.presence_key = f"{namespace}:presence".encode()
        self.local = LocalFanout()
        self.origin = f"{os.getpid():x}.{secrets.token_hex(4)}".encode()
        self.client: redis.Redis | None = None
        self.connected = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._unannounced: set[int] = set()  # users whose last events did not reach Redis
        self._outbox: deque[tuple[int, bytes]] = deque()  # (user id, message), in publish order
        self._outbox_filled = asyncio.Event()
        self._publish_failing = False
        self._drained = asyncio.Event()  # set while nothing waits in the outbox or in flight
        self._drained.set()

    async def start(self) -> None:
        self.client = redis.Redis.from_url(
            self.url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=PUBLISH_TIMEOUT_S
        )
        self._tasks = [
            asyncio.create_task(self._read_forever(), name="dropsync-redis-reader"),
            asyncio.create_task(self._announce_forever(), name="dropsync-redis-announcer"),
            asyncio.create_task(self._publish_forever(), name="dropsync-redis-publisher"),
        ]
        # Wait (bounded) for the subscription, so that this process sees what others publish.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), timeout=5)
        if not self.connected.is_set():
            logger.warning("Redis at %s is not answering yet; streams will catch up from the database", self.url)

    async def stop(self) -> None:
        """Close the subscriptions, hand what is still in the outbox to Redis (briefly), disconnect."""
        self.local.close_all(Ending.SERVER_RESTART)
        if self.connected.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), timeout=1.0)
        await cancel_and_wait(self._tasks)
        if self.client is not None:
            await self.client.aclose()

    async def publish(self, events: Sequence[Event]) -> None:
        """Deliver here at once, and queue one message per user for the other processes; never
        waits on Redis. If Redis cannot take them, the users are remembered and announced once it
        is back, so that the other processes' streams of those users catch up from the database
        (no later event is needed to reveal the gap)."""
        self.local.deliver(events)
        if self.metrics is not None:
            self.metrics.published.inc(len(events))
        if self.client is None:
            raise RuntimeError("RedisBroker.start() was not called")
        for user_id, burst in group_by_user(events).items():
            if not self.connected.is_set() or len(self._outbox) >= OUTBOX_MAX:
                self._unannounced.add(user_id)  # Redis is down or behind: announce when it is back
            else:
                self._outbox.append((user_id, encode_message(self.origin, burst)))
        if self._outbox:
            self._drained.clear()
            self._outbox_filled.set()

    async def _publish_forever(self) -> None:
        """Drain the outbox in order, a pipeline of everything waiting at a time."""
        assert self.client is not None
        while True:
            await self._outbox_filled.wait()
            self._outbox_filled.clear()
            batch = list(self._outbox)
            self._outbox.clear()
            if not batch:
                continue
            try:
                async with asyncio.timeout(PUBLISH_TIMEOUT_S), self.client.pipeline(transaction=False) as pipe:
                    for user_id, message in batch:
                        pipe.publish(self._channel(user_id), message)
                    await pipe.execute()
            except (RedisError, OSError) as exc:  # OSError covers TimeoutError
                self._unannounced.update(user_id for user_id, _ in batch)
                if not self._publish_failing:
                    self._publish_failing = True
                    logger.warning("publishing to Redis failed (%s): other processes catch up from the database", exc)
            else:
                if self._publish_failing:
                    self._publish_failing = False
                    logger.info("publishing to Redis works again")
            finally:
                if not self._outbox:
                    self._drained.set()

    def _channel(self, user_id: int) -> bytes:
        return self.channel_prefix + str(user_id).encode()

    async def _announce_forever(self) -> None:
        """Tell the other processes to catch up the users whose events could not be published."""
        while True:
            await asyncio.sleep(ANNOUNCE_EVERY_S)
            if not self._unannounced or not self.connected.is_set() or self.client is None:
                continue
            users, self._unannounced = self._unannounced, set()
            try:
                async with self.client.pipeline(transaction=False) as pipe:
                    for user_id in users:
                        pipe.publish(self._channel(user_id), encode_message(self.origin, ()))
                    await pipe.execute()
            except (RedisError, OSError):
                self._unannounced |= users  # still down: next round

    def subscribe(self, user_id: int, maxsize: int) -> Subscription:
        return self.local.subscribe(user_id, maxsize)

    def unsubscribe(self, subscription: Subscription) -> None:
        self.local.unsubscribe(subscription)

    async def ping(self) -> None:
        if self.client is None:
            raise RuntimeError("RedisBroker.start() was not called")
        if not self.connected.is_set():
            raise ConnectionError("the Redis subscription is down")
        await self.client.ping()

    async def presence(self, local: Presence) -> Presence:
        """Write this process's presence (it expires unless refreshed) and merge every live one."""
        if self.client is None:
            raise RuntimeError("RedisBroker.start() was not called")
        now = time.time()
        mine = {"at": now, "by_transport": local.by_transport, "user_ids": sorted(local.user_ids)}
        # One hash, a field per process: one round trip, whatever else lives in this Redis.
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hset(self.presence_key, self.origin, msgspec.json.encode(mine))
            pipe.hgetall(self.presence_key)
            _, everyone = await pipe.execute()
        parts, stale = [local], []
        for origin, value in everyone.items():
            decoded = msgspec.json.decode(value)
            if now - decoded["at"] > PRESENCE_TTL_S:
                stale.append(origin)  # a process that stopped refreshing: gone
            elif origin != self.origin:
                parts.append(Presence(decoded["by_transport"], frozenset(decoded["user_ids"])))
        if stale:
            await self.client.hdel(self.presence_key, *stale)
        return Presence.merge(parts)

    def _receive(self, channel: bytes, data: bytes) -> None:
        try:
            user_id = int(channel[len(self.channel_prefix) :])
            origin, events = decode_message(user_id, data)
        except (ValueError, struct.error, UnicodeDecodeError):
            logger.exception("ignoring a malformed message on %r", channel)
            return
        if origin == self.origin:
            return
        if events:
            self.local.deliver(events)
        else:  # an announcement: that user's events could not be published; read them from the log
            self.local.request_catch_up(user_id)

    async def _read_forever(self) -> None:
        attempt = 0
        while True:
            connection = redis.Redis.from_url(
                self.url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=CONNECT_TIMEOUT_S
            )
            pubsub = connection.pubsub()
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    await self._subscribe(pubsub)
                if attempt:
                    logger.info("Redis is back: local streams catch up from the database")
                self.connected.set()
                self.local.request_catch_up()  # whatever was published while we were not listening
                attempt = 0
                await self._listen(pubsub)
            except Exception as exc:  # noqa: BLE001 - whatever broke the subscription, reconnect
                self.connected.clear()
                attempt += 1
                delay = min(BACKOFF_CEILING_S, BACKOFF_FLOOR_S * 2**attempt)
                if attempt == 1:
                    logger.warning("lost the Redis subscription (%s); reconnecting", exc or type(exc).__name__)
                await asyncio.sleep(delay)
            finally:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(1.0):
                        await pubsub.aclose()  # type: ignore[no-untyped-call]
                        await connection.aclose()

    async def _subscribe(self, pubsub: Any) -> None:
        """Subscribe and wait for Redis to confirm it (a frozen Redis takes the command and never
        answers: the caller's timeout then applies)."""
        await pubsub.psubscribe(self.channel_prefix + b"*")
        while True:
            message = await pubsub.get_message(timeout=CONNECT_TIMEOUT_S)
            if message is not None and message["type"] == "psubscribe":
                return

    async def _listen(self, pubsub: Any) -> None:
        """Deliver what Redis sends until it falls silent: ``pubsub.listen()`` would wait forever
        on a host that vanished without closing the connection, so the reader pings after
        ``PING_EVERY_S`` without a word and gives up after ``SILENCE_LIMIT_S``."""
        heard = pinged = time.monotonic()
        while True:
            message = await pubsub.get_message(timeout=min(1.0, PING_EVERY_S))
            now = time.monotonic()
            if message is not None:
                heard = now
                if message["type"] == "pmessage":
                    self._receive(message["channel"], message["data"])
                continue
            if now - heard > SILENCE_LIMIT_S:
                raise ConnectionError(f"Redis said nothing for {SILENCE_LIMIT_S:.0f}s")
            if now - max(heard, pinged) >= PING_EVERY_S:
                await pubsub.ping()  # the answer comes as a "pong" message
                pinged = now
