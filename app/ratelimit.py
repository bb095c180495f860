"""Rate limits on auth and write routes: token buckets per client, 429 with ``Retry-After``.

- ``POST /auth/register`` and ``POST /auth/token``: per client address, ``auth_per_minute``
  (bursts up to the same number) — slows password guessing.
- Every other POST/PUT/PATCH/DELETE: per access token (per address without one),
  ``writes_per_second`` with bursts of twice that.

Per process and in memory: with several processes each enforces its own share. Switched off
with ``DROPSYNC_RATE_LIMIT=false`` (benchmarks).
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
AUTH_PATHS = frozenset({"/auth/register", "/auth/token"})
MAX_TRACKED_CLIENTS = 50_000


@dataclass
class TokenBucket:
    """``capacity`` requests at once, refilled at ``rate`` per second, per key."""

    rate: float
    capacity: float
    _state: dict[str, tuple[float, float]] = field(default_factory=dict)

    def take(self, key: str, now: float | None = None) -> float:
        """Spend one token for ``key``: 0.0 if allowed, else the seconds until one is free."""
        now = time.monotonic() if now is None else now
        tokens, stamp = self._state.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - stamp) * self.rate)
        if tokens < 1:
            self._state[key] = (tokens, now)
            return (1 - tokens) / self.rate
        if len(self._state) >= MAX_TRACKED_CLIENTS and key not in self._state:
            self._forget_idle(now)
        self._state[key] = (tokens - 1, now)
        return 0.0

    def _forget_idle(self, now: float) -> None:
        # Buckets that have refilled completely carry no information: drop them.
        full_after = self.capacity / self.rate
        for key in [key for key, (_, stamp) in self._state.items() if now - stamp >= full_after]:
            del self._state[key]


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, auth_per_minute: int, writes_per_second: int) -> None:
        self.app = app
        self.auth = TokenBucket(rate=auth_per_minute / 60, capacity=auth_per_minute)
        self.writes = TokenBucket(rate=writes_per_second, capacity=2 * writes_per_second)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope["method"] in WRITE_METHODS:
            wait = self._check(scope)
            if wait > 0:
                await _too_many_requests(send, wait)
                return
        await self.app(scope, receive, send)

    def _check(self, scope: Scope) -> float:
        client = scope.get("client")
        address = client[0] if client else "unknown"
        if scope["path"] in AUTH_PATHS:
            return self.auth.take(address)
        for name, value in scope["headers"]:
            if name == b"authorization":
                return self.writes.take("token:" + hashlib.sha256(value).hexdigest()[:32])
        return self.writes.take("address:" + address)


async def _too_many_requests(send: Send, wait: float) -> None:
    retry_after = max(1, math.ceil(wait))
    body = msgspec.json.encode({"status_code": 429, "detail": f"too many requests: retry in {retry_after}s"})
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(retry_after).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
