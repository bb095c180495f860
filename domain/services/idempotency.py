"""Idempotency keys: the first answer to a write sent with an ``Idempotency-Key``, kept 24 hours.

A phone replaying its offline queue sends each write again with the same key; the server
answers with what it answered the first time, without a second change or event.

- :meth:`IdempotencyStore.claim` either claims the key for a new request (one row per user and
  key; the unique index makes two concurrent claims of one key resolve to one winner), or says
  what to do instead: replay the stored answer, refuse a different request under the same key,
  or refuse while the first request is still in flight.
- The caller then :meth:`complete`\\ s the claim with the answer, or :meth:`release`\\ s it when
  there is nothing worth keeping (a 5xx: the retry should run again).
- A claim left in flight longer than ``in_flight_ttl_ms`` (a crash) can be taken over; rows
  older than ``ttl_ms`` are treated as absent and pruned now and then.
"""

from __future__ import annotations

import base64
import enum
import time
from dataclasses import dataclass

import msgspec

from domain.tables import IdempotencyKey
from domain.values import now_ms

DAY_MS = 24 * 3600 * 1000
PRUNE_EVERY_S = 3600.0


class Outcome(enum.Enum):
    NEW = "new"  # the key is ours: run the request, then complete() or release()
    REPLAY = "replay"  # the stored response answers this request
    MISMATCH = "mismatch"  # the key was used for a different request
    IN_FLIGHT = "in_flight"  # the first request with this key has not finished


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True, slots=True)
class Claim:
    outcome: Outcome
    response: StoredResponse | None = None


class IdempotencyStore:
    def __init__(self, *, ttl_ms: int = DAY_MS, in_flight_ttl_ms: int = 10 * 60 * 1000) -> None:
        self.ttl_ms = ttl_ms
        self.in_flight_ttl_ms = in_flight_ttl_ms
        self._pruned_at = 0.0

    async def claim(self, user_id: int, key: str, fingerprint: str) -> Claim:
        await self._prune_now_and_then()
        for _ in range(3):
            now = now_ms()
            rows = await IdempotencyKey.raw(
                'INSERT INTO idempotency_keys (user_id, "key", fingerprint, status_code, response_headers,'
                " response_body, created_at) VALUES ({}, {}, {}, 0, '[]', '', {})"
                ' ON CONFLICT (user_id, "key") DO NOTHING RETURNING id',
                user_id,
                key,
                fingerprint,
                now,
            )
            if rows:
                return Claim(Outcome.NEW)
            row = (
                await IdempotencyKey.select()
                .where((IdempotencyKey.user_id == user_id) & (IdempotencyKey.key == key))
                .first()
            )
            if row is None:
                continue  # released in between: try to claim again
            in_flight = row["status_code"] == 0
            expired = row["created_at"] < now - self.ttl_ms
            abandoned = in_flight and row["created_at"] < now - self.in_flight_ttl_ms
            if expired or abandoned:
                await IdempotencyKey.delete().where(
                    (IdempotencyKey.id == row["id"]) & (IdempotencyKey.created_at == row["created_at"])
                )
                continue
            if row["fingerprint"] != fingerprint:
                return Claim(Outcome.MISMATCH)
            if in_flight:
                return Claim(Outcome.IN_FLIGHT)
            headers = [(str(name), str(value)) for name, value in msgspec.json.decode(row["response_headers"])]
            body = base64.b64decode(row["response_body"])
            return Claim(Outcome.REPLAY, StoredResponse(row["status_code"], headers, body))
        return Claim(Outcome.IN_FLIGHT)

    async def complete(self, user_id: int, key: str, response: StoredResponse) -> None:
        await IdempotencyKey.update(
            {
                IdempotencyKey.status_code: response.status_code,
                IdempotencyKey.response_headers: msgspec.json.encode(response.headers).decode(),
                IdempotencyKey.response_body: base64.b64encode(response.body).decode(),
            }
        ).where((IdempotencyKey.user_id == user_id) & (IdempotencyKey.key == key))

    async def release(self, user_id: int, key: str) -> None:
        await IdempotencyKey.delete().where(
            (IdempotencyKey.user_id == user_id) & (IdempotencyKey.key == key) & (IdempotencyKey.status_code == 0)
        )

    async def prune(self, now: int | None = None) -> int:
        """Delete the keys past the time to live; returns how many went."""
        cutoff = (now_ms() if now is None else now) - self.ttl_ms
        rows = await IdempotencyKey.raw("DELETE FROM idempotency_keys WHERE created_at < {} RETURNING id", cutoff)
        return len(rows)

    async def _prune_now_and_then(self) -> None:
        if time.monotonic() - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = time.monotonic()
            await self.prune()
