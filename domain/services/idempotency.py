"""Idempotency keys: the first answer to a write sent with an ``Idempotency-Key``, kept 24 hours.

A phone replaying its offline queue sends each write again with the same key; the server
answers with what it answered the first time, without a second change or event.

How a key is kept (one row per user and key, ``(user_id, key)`` unique):

- Nothing is written before the request runs. :meth:`IdempotencyStore.lookup` reads the row: a
  kept answer is replayed, a different request under the key is refused, and a request of this
  process still running with the key (:attr:`IdempotencyStore.running`) is refused for now.
- The row is inserted by :meth:`IdempotencyStore.before_commit`, a hook of the unit of work, in
  the SAME transaction as the change (``status_code`` 0: applied, answer not kept yet). So a crash
  before the commit leaves nothing (the retry runs at once), and once the change is committed the
  key is too: a retry can never apply it a second time. Two requests with one key that both get
  that far (two processes) meet on the unique key: the second one's transaction inserts nothing and
  rolls back with :class:`~domain.errors.Conflict` (409, retry later).
- Right after the route, :meth:`complete` stores the answer in the row. If the process dies in
  between, the row stays at 0: a retry gets 409 "in progress" for ``answer_wait_ms`` (the first
  request may still be finishing in another process), then :attr:`Outcome.LOST` — "applied, its
  answer was not kept" — and never a second run. :meth:`mark_lost` says so at once when the route
  failed after its change was committed.
- An answer given without a change (a 4xx, or a route that writes outside the unit of work) is
  stored by :meth:`keep` after the route; 5xx and 429 answers without a change are not kept.
- Rows older than ``ttl_ms`` are treated as absent and pruned now and then.
"""

from __future__ import annotations

import base64
import contextvars
import enum
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

import msgspec

from domain.errors import Conflict
from domain.tables import IdempotencyKey
from domain.uow import Change
from domain.values import now_ms

DAY_MS = 24 * 3600 * 1000
PRUNE_EVERY_S = 3600.0
ANSWER_WAIT_MS = 10_000
PENDING = 0  # status_code of a row whose change is committed and whose answer is not stored yet
LOST = -1  # status_code of a row whose change is committed and whose answer will never be stored

# Test-only: ``DROPSYNC_TEST_CRASH_AT=<point>`` makes the process SIGKILL itself at that point of
# a write with an Idempotency-Key, for the crash tests (tests/integration/test_idempotency_crash.py).
# Points: "before-commit" (the key and the change written, not committed), "after-commit" (committed,
# the answer not stored). Unset in production: the check is one dictionary look-up per keyed write.
CRASH_ENV = "DROPSYNC_TEST_CRASH_AT"


def crash_here(point: str) -> None:
    if os.environ.get(CRASH_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


class Outcome(enum.Enum):
    NEW = "new"  # no answer kept: run the request, with its KeyInUse in CURRENT_KEY
    REPLAY = "replay"  # the stored response answers this request
    MISMATCH = "mismatch"  # the key was used for a different request
    IN_FLIGHT = "in_flight"  # the first request with this key has not finished
    LOST = "lost"  # the first request was applied, its answer was not kept: never run it again


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True, slots=True)
class Claim:
    outcome: Outcome
    response: StoredResponse | None = None


@dataclass(slots=True)
class KeyInUse:
    """The key of the request running in this context; the unit of work records it with the change."""

    user_id: int
    key: str
    fingerprint: str
    open: bool = True  # False once the route has answered: a later write is not this request's
    recorded: bool = False  # a transaction of this request inserted the row (committed unless it failed)
    taken: bool = False  # another request with this key committed first: this one was rolled back


CURRENT_KEY: contextvars.ContextVar[KeyInUse | None] = contextvars.ContextVar("idempotency_key", default=None)


class IdempotencyStore:
    def __init__(self, *, ttl_ms: int = DAY_MS, answer_wait_ms: int = ANSWER_WAIT_MS) -> None:
        self.ttl_ms = ttl_ms
        self.answer_wait_ms = answer_wait_ms
        # (user_id, key) of the requests this process is running: a duplicate is 409 at once.
        self.running: set[tuple[int, str]] = set()
        self._pruned_at = 0.0

    async def lookup(self, user_id: int, key: str, fingerprint: str) -> Claim:
        """What to do with a request under ``key``: nothing is written but an expired row's removal."""
        await self._prune_now_and_then()
        if (user_id, key) in self.running:
            return Claim(Outcome.IN_FLIGHT)
        row = (
            await IdempotencyKey.select()
            .where((IdempotencyKey.user_id == user_id) & (IdempotencyKey.key == key))
            .first()
        )
        if row is None:
            return Claim(Outcome.NEW)
        now = now_ms()
        if row["created_at"] < now - self.ttl_ms:
            await IdempotencyKey.delete().where(
                (IdempotencyKey.id == row["id"]) & (IdempotencyKey.created_at == row["created_at"])
            )
            return Claim(Outcome.NEW)
        return self._decide(row, fingerprint, now)

    def _decide(self, row: dict[str, Any], fingerprint: str, now: int) -> Claim:
        if row["fingerprint"] != fingerprint:
            return Claim(Outcome.MISMATCH)
        if row["status_code"] == PENDING and row["created_at"] >= now - self.answer_wait_ms:
            return Claim(Outcome.IN_FLIGHT)
        if row["status_code"] in (PENDING, LOST):
            return Claim(Outcome.LOST)
        headers = [(str(name), str(value)) for name, value in msgspec.json.decode(row["response_headers"])]
        body = base64.b64decode(row["response_body"])
        return Claim(Outcome.REPLAY, StoredResponse(row["status_code"], headers, body))

    async def before_commit(self, change: Change) -> None:
        """The unit of work's hook: insert the running request's key in the change's transaction.

        Raises :class:`Conflict` (rolling the change back) when another request with the key got
        there first.
        """
        in_use = CURRENT_KEY.get()
        if in_use is None or not in_use.open or in_use.recorded or in_use.user_id != change.user_id:
            return
        rows = await IdempotencyKey.raw(
            'INSERT INTO idempotency_keys (user_id, "key", fingerprint, status_code, response_headers,'
            " response_body, created_at) VALUES ({}, {}, {}, {}, '[]', '', {})"
            ' ON CONFLICT (user_id, "key") DO NOTHING RETURNING id',
            in_use.user_id,
            in_use.key,
            in_use.fingerprint,
            PENDING,
            now_ms(),
        )
        if not rows:
            in_use.taken = True
            raise Conflict("a request with this Idempotency-Key is still in progress: retry later")
        in_use.recorded = True
        crash_here("before-commit")

    async def complete(self, user_id: int, key: str, response: StoredResponse) -> bool:
        """Store the answer of a request whose change committed; False if its row is not there
        (its transaction rolled back after all)."""
        rows = await IdempotencyKey.raw(
            "UPDATE idempotency_keys SET status_code = {}, response_headers = {}, response_body = {}"
            ' WHERE user_id = {} AND "key" = {} AND status_code = {} RETURNING id',
            response.status_code,
            msgspec.json.encode(response.headers).decode(),
            base64.b64encode(response.body).decode(),
            user_id,
            key,
            PENDING,
        )
        return bool(rows)

    async def mark_lost(self, user_id: int, key: str) -> bool:
        """The change committed but its answer cannot be kept (the route failed after it)."""
        rows = await IdempotencyKey.raw(
            'UPDATE idempotency_keys SET status_code = {} WHERE user_id = {} AND "key" = {} AND status_code = {}'
            " RETURNING id",
            LOST,
            user_id,
            key,
            PENDING,
        )
        return bool(rows)

    async def keep(self, user_id: int, key: str, fingerprint: str, response: StoredResponse) -> None:
        """Store the answer of a request that changed nothing through the unit of work."""
        await IdempotencyKey.raw(
            'INSERT INTO idempotency_keys (user_id, "key", fingerprint, status_code, response_headers,'
            " response_body, created_at) VALUES ({}, {}, {}, {}, {}, {}, {})"
            ' ON CONFLICT (user_id, "key") DO NOTHING',
            user_id,
            key,
            fingerprint,
            response.status_code,
            msgspec.json.encode(response.headers).decode(),
            base64.b64encode(response.body).decode(),
            now_ms(),
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
