"""Rate limits on auth and write routes: token buckets per client, 429 with ``Retry-After``.

- ``POST /auth/register`` and ``POST /auth/token``: per client address, ``auth_per_minute``
  (bursts up to the same number) — slows password guessing.
- Every other POST/PUT/PATCH/DELETE: per client address, ``ADDRESS_FACTOR`` times
  ``writes_per_second``; then per access token (per address without one), ``writes_per_second``;
  bursts of twice the rate. The address comes first so that made-up bearer strings (each a new
  key) cannot get around the limit.

The client address is the ASGI ``client``: behind a reverse proxy, uvicorn replaces it with the
one in ``X-Forwarded-For`` when the proxy's address is in ``forwarded_allow_ips`` (set by
``python -m app serve``; ``--forwarded-allow-ips`` for plain uvicorn), so clients are told apart.

Memory is bounded: each limiter remembers at most ``MAX_TRACKED_CLIENTS`` keys and forgets the
least recently seen first (O(1) per request); a forgotten key starts again with a full bucket.
Per process and in memory: with several processes each enforces its own share. Switched off
with ``DROPSYNC_RATE_LIMIT=false`` (benchmarks).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
AUTH_PATHS = frozenset({"/auth/register", "/auth/token"})
MAX_TRACKED_CLIENTS = 20_000
ADDRESS_FACTOR = 4


@dataclass
class TokenBucket:
    """``capacity`` requests at once, refilled at ``rate`` per second, per key; at most
    ``max_keys`` keys remembered (the least recently seen is forgotten first)."""

    rate: float
    capacity: float
    max_keys: int = MAX_TRACKED_CLIENTS
    _state: OrderedDict[str, tuple[float, float]] = field(default_factory=OrderedDict)

    def take(self, key: str, now: float | None = None) -> float:
        """Spend one token for ``key``: 0.0 if allowed, else the seconds until one is free."""
        now = time.monotonic() if now is None else now
        state = self._state
        known = state.get(key)
        if known is None:
            tokens = self.capacity
            if len(state) >= self.max_keys:
                state.popitem(last=False)
        else:
            tokens = min(self.capacity, known[0] + (now - known[1]) * self.rate)
            state.move_to_end(key)
        if tokens < 1:
            state[key] = (tokens, now)
            return (1 - tokens) / self.rate
        state[key] = (tokens - 1, now)
        return 0.0

    def __len__(self) -> int:
        return len(self._state)


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, auth_per_minute: int, writes_per_second: int) -> None:
        self.app = app
        self.auth = TokenBucket(rate=auth_per_minute / 60, capacity=auth_per_minute)
        per_address = ADDRESS_FACTOR * writes_per_second
        self.addresses = TokenBucket(rate=per_address, capacity=2 * per_address)
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
        wait = self.addresses.take(address)
        if wait > 0:
            return wait
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
