"""``Idempotency-Key`` on writes: a retry gets the first answer, without a second change or event.

For POST/PUT/PATCH/DELETE with an ``Idempotency-Key`` header (1 to 255 visible ASCII characters)
and a valid bearer token:

- the first request runs; its answer (status, headers, body) is kept for 24 hours per user and key;
- the same key with the same request (method, path, query and body) gets that answer again, with
  ``Idempotency-Replayed: true``, and nothing runs;
- the same key with a different request is 422; while the first is still running, 409 (retry later).

Answers of 5xx (and 429) are not kept: the retry runs again. Requests without the header, without a
valid token (they get their 401 from the route) and to ``/auth/*`` pass through untouched.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPRequestEvent, Message, Receive, ReceiveMessage, Scope, Send

from domain.errors import Unauthorized
from domain.services import Services
from domain.services.idempotency import Claim, Outcome, StoredResponse

logger = logging.getLogger("dropsync.idempotency")

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HEADER = b"idempotency-key"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
# Not replayed: they describe the first exchange, not the answer.
_DROPPED_HEADERS = frozenset({"content-length", "date", "server", "set-cookie", "transfer-encoding", "connection"})
_NOT_KEPT = frozenset({429})


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        raw_key = headers.get(HEADER)
        services: Services | None = scope["litestar_app"].state.get("services")
        if raw_key is None or services is None or not _applies(scope):
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1")
        if not _KEY.fullmatch(key):
            await _json(send, 400, "Idempotency-Key must be 1 to 255 visible ASCII characters")
            return
        user_id = await _user_id(services, headers.get(b"authorization", b""))
        if user_id is None:
            await self.app(scope, receive, send)  # the route answers 401
            return
        body = await _read_body(receive, self.max_body_bytes)
        if body is None:
            await _json(send, 413, f"request body over {self.max_body_bytes} bytes")
            return
        fingerprint = _fingerprint(scope, body)
        claim = await services.idempotency.claim(user_id, key, fingerprint)
        if claim.outcome is Outcome.NEW:
            await self._run_first(scope, receive, send, body, services, user_id, key)
        else:
            await _answer_without_running(send, claim)

    async def _run_first(
        self, scope: Scope, receive: Receive, send: Send, body: bytes, services: Services, user_id: int, key: str
    ) -> None:
        status = 0
        response_headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []
        complete = False
        body_sent = False

        async def replay_receive() -> ReceiveMessage:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                first: HTTPRequestEvent = {"type": "http.request", "body": body, "more_body": False}
                return first
            return await receive()

        async def capture_send(message: Message) -> None:
            nonlocal status, complete
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers.extend(
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in message.get("headers", [])
                    if name.decode("latin-1").lower() not in _DROPPED_HEADERS
                )
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                complete = not message.get("more_body", False)
            await send(message)

        try:
            await self.app(scope, replay_receive, capture_send)
        finally:
            # The answer is kept even if the client went away meanwhile: the change is made.
            try:
                if complete and status < 500 and status not in _NOT_KEPT:
                    await services.idempotency.complete(
                        user_id, key, StoredResponse(status, response_headers, b"".join(chunks))
                    )
                else:
                    await services.idempotency.release(user_id, key)
            except Exception:
                logger.exception("could not store the answer for an Idempotency-Key of user %s", user_id)


def _applies(scope: Scope) -> bool:
    """A write of the API (not sign-up or sign-in, which have no user yet)."""
    return (
        scope["type"] == ScopeType.HTTP and scope["method"] in WRITE_METHODS and not scope["path"].startswith("/auth/")
    )


async def _user_id(services: Services, authorization: bytes) -> int | None:
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    try:
        return (await services.users.authenticate(token.strip())).user_id
    except Unauthorized:
        return None


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None when it is over ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _fingerprint(scope: Scope, body: bytes) -> str:
    digest = hashlib.sha256()
    method = str(scope.get("method", ""))
    for part in (method.encode(), scope["path"].encode(), scope.get("query_string", b""), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


async def _answer_without_running(send: Send, claim: Claim) -> None:
    if claim.outcome is Outcome.MISMATCH:
        await _json(send, 422, "this Idempotency-Key was already used for a different request")
    elif claim.outcome is Outcome.REPLAY and claim.response is not None:
        await _replay(send, claim.response)
    else:
        await _json(send, 409, "a request with this Idempotency-Key is still in progress: retry later", retry=True)


async def _replay(send: Send, response: StoredResponse) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in response.headers]
    headers.append((b"content-length", str(len(response.body)).encode()))
    headers.append((b"idempotency-replayed", b"true"))
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.body, "more_body": False})


async def _json(send: Send, status: int, detail: str, *, retry: bool = False) -> None:
    body = msgspec.json.encode({"status_code": status, "detail": detail})
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if retry:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


__all__: list[Any] = ["IdempotencyMiddleware"]
