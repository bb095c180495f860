"""``Idempotency-Key`` on writes: a retry gets the first answer, without a second change or event.

For POST/PUT/PATCH/DELETE with an ``Idempotency-Key`` header (1 to 255 visible ASCII characters)
and a valid bearer token:

- the first request runs; its answer (status, headers, body) is kept for 24 hours per user and key;
- the same key with the same request (method, path, query and body) gets that answer again, with
  ``Idempotency-Replayed: true``, and nothing runs;
- the same key with a different request is 422; while the first is still running, 409 (retry later).

Crash safety (see :mod:`domain.services.idempotency`): the key is written by the unit of work in
the same transaction as the change, and the answer is stored right after the route. Nothing is
written before the route runs, so a process killed before the commit leaves nothing behind and the
retry runs at once; once the change is committed, the key is too, so no retry ever applies it
twice. If the process dies between the commit and storing the answer, a retry gets 409 with
``Retry-After`` for up to 10 seconds, then 409 ``Idempotency-Replayed: true`` "applied, but its
answer was lost" (no ``Retry-After``): the change is in the resources and the event log.

A duplicate of a request this process is running is 409 at once; one running in another process
may run its route too (e.g. fetch the same feed), but only one of the two commits: the other is
rolled back and answers 409.

Answers of 5xx (and 429) given without a committed change are not kept: the retry runs again.
A body over ``max_body_bytes`` is 413 and a client that leaves before its body ends gets nothing
run; neither keeps the key.
Requests without the header, without a valid token (they get their 401 from the route) and to
``/auth/*`` pass through untouched.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

import msgspec
from litestar.enums import ScopeType
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.types import ASGIApp, HTTPRequestEvent, Message, Receive, ReceiveMessage, Scope, Send

from app.bodies import ClientGone, read_body
from domain.errors import Unauthorized
from domain.services import Services
from domain.services.idempotency import (
    CURRENT_KEY,
    Claim,
    IdempotencyStore,
    KeyInUse,
    Outcome,
    StoredResponse,
    crash_here,
)

logger = logging.getLogger("dropsync.idempotency")

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HEADER = b"idempotency-key"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
# Not replayed: they describe the first exchange, not the answer.
_DROPPED_HEADERS = frozenset({"content-length", "date", "server", "set-cookie", "transfer-encoding", "connection"})
_NOT_KEPT = frozenset({429})
LOST_DETAIL = (
    "the request with this Idempotency-Key was applied, but the server stopped before it kept the answer: "
    "do not send it again; read the resource (its events are in the event log)"
)


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
        try:
            body = await read_body(receive, self.max_body_bytes)
        except RequestEntityTooLarge:
            await _json(send, 413, f"request body over {self.max_body_bytes} bytes")
            return
        except ClientGone:
            return  # nobody to answer, and nothing ran
        fingerprint = _fingerprint(scope, body)
        claim = await services.idempotency.lookup(user_id, key, fingerprint)
        if claim.outcome is Outcome.NEW and (user_id, key) not in services.idempotency.running:
            await self._run_first(scope, receive, send, body, services, KeyInUse(user_id, key, fingerprint))
        else:
            await _answer_without_running(send, claim)

    async def _run_first(
        self, scope: Scope, receive: Receive, send: Send, body: bytes, services: Services, in_use: KeyInUse
    ) -> None:
        store = services.idempotency
        status = 0
        response_headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []
        kept = False
        body_sent = False

        async def replay_receive() -> ReceiveMessage:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                first: HTTPRequestEvent = {"type": "http.request", "body": body, "more_body": False}
                return first
            return await receive()

        async def keep(complete: bool) -> None:
            nonlocal kept
            if kept:
                return
            kept = True
            try:
                await _keep_answer(store, in_use, complete, StoredResponse(status, response_headers, b"".join(chunks)))
            except Exception:
                logger.exception("could not store the answer for an Idempotency-Key of user %s", in_use.user_id)

        async def capture_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers.extend(
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in message.get("headers", [])
                    if name.decode("latin-1").lower() not in _DROPPED_HEADERS
                )
                if in_use.taken:  # another request with this key committed first: ours rolled back
                    message = {**message, "headers": [*message.get("headers", []), (b"retry-after", b"1")]}
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    # Kept before the client has it all: its retry finds the answer, not a 409.
                    await keep(complete=True)
            await send(message)

        running = (in_use.user_id, in_use.key)
        store.running.add(running)
        token = CURRENT_KEY.set(in_use)
        try:
            await self.app(scope, replay_receive, capture_send)
        finally:
            in_use.open = False
            CURRENT_KEY.reset(token)
            try:
                await keep(complete=False)  # no full answer (an error, a client gone): see _keep_answer
            finally:
                store.running.discard(running)


async def _keep_answer(store: IdempotencyStore, in_use: KeyInUse, complete: bool, response: StoredResponse) -> None:
    keepable = complete and response.status_code < 500 and response.status_code not in _NOT_KEPT
    if in_use.taken:
        return  # the row is the other request's
    if in_use.recorded:
        crash_here("after-commit")
        # The row went in with the change: fill in the answer, or say it is lost (never run again).
        stored = await (
            store.complete(in_use.user_id, in_use.key, response)
            if keepable
            else store.mark_lost(in_use.user_id, in_use.key)
        )
        if stored:
            return
        # no row: the change's transaction rolled back after the key went in (nothing was applied)
    if keepable:
        await store.keep(in_use.user_id, in_use.key, in_use.fingerprint, response)


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
    elif claim.outcome is Outcome.LOST:
        await _json(send, 409, LOST_DETAIL, replayed=True)
    else:
        await _json(send, 409, "a request with this Idempotency-Key is still in progress: retry later", retry=True)


async def _replay(send: Send, response: StoredResponse) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in response.headers]
    headers.append((b"content-length", str(len(response.body)).encode()))
    headers.append((b"idempotency-replayed", b"true"))
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.body, "more_body": False})


async def _json(send: Send, status: int, detail: str, *, retry: bool = False, replayed: bool = False) -> None:
    body = msgspec.json.encode({"status_code": status, "detail": detail})
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if retry:
        headers.append((b"retry-after", b"1"))
    if replayed:
        headers.append((b"idempotency-replayed", b"true"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


__all__: list[Any] = ["IdempotencyMiddleware"]
