"""The Redis backend (``redis://host:port/db``): fan-out between processes and hosts.

- The events of one commit are published as ONE message to their user's channel
  ``<namespace>:user:<id>`` (ids are integers: no two users can share a channel, whatever the
  case; deployments that share a Redis need distinct namespaces: ``broker_namespace``),
  so a burst reaches every process's subscriptions whole, as it does in-process.
- Each process holds ONE pattern subscription (``<namespace>:user:*``) on one connection and
  multiplexes it to its local subscriptions: no Redis connection per client.
- Events recorded by this process go to its own subscriptions directly (no round trip), and to
  Redis for the others; the copy that comes back is recognised by its origin and skipped.
- Redis may go away. Publishing then fails (logged by the caller; the events are in the
  database) and the users concerned are announced to the other processes once Redis is back;
  the reader reconnects with back-off, and after every reconnect each local subscription reads
  its user's log after its cursor (see :meth:`streams.broker.Subscription.request_catch_up`).
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
from collections.abc import Sequence

import msgspec
import redis.asyncio as redis
from redis.exceptions import RedisError

from streams.broker import Event, LocalFanout, Presence, Subscription, group_by_user
from streams.metrics import Metrics

logger = logging.getLogger("dropsync.broker.redis")

PRESENCE_TTL_S = 15  # a process that stops refreshing (every few seconds) drops out of the totals
BACKOFF_FLOOR_S = 0.1
BACKOFF_CEILING_S = 5.0
ANNOUNCE_EVERY_S = 0.5
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
        self._reader: asyncio.Task[None] | None = None
        self._announcer: asyncio.Task[None] | None = None
        self._unannounced: set[int] = set()  # users whose last events did not reach Redis

    async def start(self) -> None:
        self.client = redis.Redis.from_url(self.url, socket_connect_timeout=5, socket_timeout=5)
        self._reader = asyncio.create_task(self._read_forever(), name="dropsync-redis-reader")
        self._announcer = asyncio.create_task(self._announce_forever(), name="dropsync-redis-announcer")
        # Wait (bounded) for the subscription, so that this process sees what others publish.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), timeout=5)
        if not self.connected.is_set():
            logger.warning("Redis at %s is not answering yet; streams will catch up from the database", self.url)

    async def stop(self) -> None:
        self.local.close_all("shutdown")
        for task in (self._reader, self._announcer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.client is not None:
            await self.client.aclose()

    async def publish(self, events: Sequence[Event]) -> None:
        """Deliver here, then to the other processes through Redis. If Redis cannot take them, the
        users are remembered and announced once it is back, so that the other processes' streams
        of those users catch up from the database (no later event is needed to reveal the gap)."""
        self.local.deliver(events)
        if self.metrics is not None:
            self.metrics.published.inc(len(events))
        if self.client is None:
            raise RuntimeError("RedisBroker.start() was not called")
        bursts = group_by_user(events)
        if not self.connected.is_set():
            self._unannounced.update(bursts)  # do not make the writer wait on a dead connection
            return
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for user_id, burst in bursts.items():
                    pipe.publish(self._channel(user_id), encode_message(self.origin, burst))
                await pipe.execute()
        except (RedisError, OSError):
            self._unannounced.update(bursts)
            raise

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
            # Keepalive and health checks notice a Redis host that vanished without closing.
            connection = redis.Redis.from_url(
                self.url, socket_connect_timeout=5, socket_keepalive=True, health_check_interval=10
            )
            pubsub = connection.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(self.channel_prefix + b"*")
                if attempt:
                    logger.info("Redis is back: local streams catch up from the database")
                self.connected.set()
                self.local.request_catch_up()  # whatever was published while we were not listening
                attempt = 0
                async for message in pubsub.listen():
                    if message["type"] == "pmessage":
                        self._receive(message["channel"], message["data"])
            except Exception as exc:  # noqa: BLE001 - whatever broke the subscription, reconnect
                self.connected.clear()
                attempt += 1
                delay = min(BACKOFF_CEILING_S, BACKOFF_FLOOR_S * 2**attempt)
                logger.warning("lost the Redis subscription (%s); reconnecting in %.1fs", exc, delay)
                await asyncio.sleep(delay)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                    await connection.aclose()
