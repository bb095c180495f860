"""The Redis backend (``redis://host:port/db``): fan-out between processes and hosts.

- The events of one commit are published as ONE message to their user's channel
  ``<namespace>:user:<id>`` (ids are integers: no two users can share a channel, whatever the
  case; deployments that share a Redis need distinct namespaces: ``broker_namespace``),
  so a burst reaches every process's subscriptions whole, as it does in-process.
- Each process holds ONE pattern subscription (``<namespace>:user:*``) on one connection and
  multiplexes it to its local subscriptions: no Redis connection per client.
- Events recorded by this process go to its own subscriptions directly (no round trip), and to
  Redis for the others; the copy that comes back is recognised by its origin and skipped.
- Redis may go away. Publishing then fails (logged by the caller; the events are in the database),
  and the reader reconnects with back-off. Whatever was published meanwhile is not lost: after
  every reconnect each local subscription is asked to catch up, i.e. to read its user's log
  after its cursor (see :meth:`streams.broker.Subscription.request_catch_up`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import struct
from collections.abc import Sequence

import msgspec
import redis.asyncio as redis
from redis.exceptions import RedisError

from streams.broker import Event, LocalFanout, Presence, Subscription
from streams.metrics import Metrics

logger = logging.getLogger("dropsync.broker.redis")

PRESENCE_TTL_S = 15  # a process that stops refreshing (every few seconds) drops out of the totals
BACKOFF_FLOOR_S = 0.1
BACKOFF_CEILING_S = 5.0
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
        self.presence_prefix = f"{namespace}:presence:".encode()
        self.local = LocalFanout()
        self.origin = f"{os.getpid():x}.{secrets.token_hex(4)}".encode()
        self.client: redis.Redis | None = None
        self.connected = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.client = redis.Redis.from_url(self.url, socket_connect_timeout=5, socket_timeout=5)
        self._reader = asyncio.create_task(self._read_forever(), name="dropsync-redis-reader")
        # Wait (bounded) for the subscription, so that this process sees what others publish.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), timeout=5)
        if not self.connected.is_set():
            logger.warning("Redis at %s is not answering yet; streams will catch up from the database", self.url)

    async def stop(self) -> None:
        self.local.close_all("shutdown")
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self.client is not None:
            await self.client.aclose()

    async def publish(self, events: Sequence[Event]) -> None:
        self.local.deliver(events)
        if self.metrics is not None:
            self.metrics.published.inc(len(events))
        if self.client is None:
            raise RuntimeError("RedisBroker.start() was not called")
        by_user: dict[int, list[Event]] = {}
        for event in events:
            by_user.setdefault(event.user_id, []).append(event)
        async with self.client.pipeline(transaction=False) as pipe:
            for user_id, burst in by_user.items():
                pipe.publish(self.channel_prefix + str(user_id).encode(), encode_message(self.origin, burst))
            await pipe.execute()

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
        mine = msgspec.json.encode({"by_transport": local.by_transport, "user_ids": sorted(local.user_ids)})
        own_key = self.presence_prefix + self.origin
        await self.client.set(own_key, mine, ex=PRESENCE_TTL_S)
        keys = [key async for key in self.client.scan_iter(match=self.presence_prefix + b"*", count=500)]
        parts = [local]
        for key, value in zip(keys, await self.client.mget(keys) if keys else [], strict=True):
            if value is not None and key != own_key:
                decoded = msgspec.json.decode(value)
                parts.append(Presence(decoded["by_transport"], frozenset(decoded["user_ids"])))
        return Presence.merge(parts)

    async def _read_forever(self) -> None:
        attempt = 0
        while True:
            connection = redis.Redis.from_url(self.url, socket_connect_timeout=5)
            pubsub = connection.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(self.channel_prefix + b"*")
                if attempt:
                    logger.info("Redis is back: local streams catch up from the database")
                self.connected.set()
                self.local.request_catch_up()  # whatever was published while we were not listening
                attempt = 0
                async for message in pubsub.listen():
                    if message["type"] != "pmessage":
                        continue
                    user_id = int(message["channel"][len(self.channel_prefix) :])
                    origin, events = decode_message(user_id, message["data"])
                    if origin != self.origin:
                        self.local.deliver(events)
            except (RedisError, OSError) as exc:
                self.connected.clear()
                attempt += 1
                delay = min(BACKOFF_CEILING_S, BACKOFF_FLOOR_S * 2**attempt)
                logger.warning("lost the Redis subscription (%s); reconnecting in %.1fs", exc, delay)
                await asyncio.sleep(delay)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                    await connection.aclose()
