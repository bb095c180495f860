"""Each user's push subscriptions: browsers (Web Push) and phones (Expo push tokens).

- Owner-scoped like every resource: another user's subscription is a 404.
- The same endpoint or token again answers the existing subscription (no duplicates).
- Checked before anything is stored: a Web Push ``endpoint`` must pass the SSRF guard
  (:mod:`domain.push.endpoints`), ``keys.p256dh`` must be a P-256 public key and ``keys.auth``
  16 bytes (what browsers make); an Expo token must look like ``ExponentPushToken[…]``. Each
  problem is reported under its field's name.
- Creating a user's first subscription starts their push cursor at their latest event: what
  happened before is not pushed.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from domain.db import Database, is_unique_violation
from domain.errors import Conflict, InvalidField, InvalidFields, NotFound
from domain.push.endpoints import EndpointRefused, resolve
from domain.push.keys import b64url_decode
from domain.tables import PushCursor, PushSubscription
from domain.values import iso, now_ms

MAX_SUBSCRIPTIONS = 50
EXPO_TOKEN = re.compile(r"^Expo(nent)?PushToken\[[A-Za-z0-9_-]{1,200}\]$")
KINDS = ("webpush", "expo")
Row = dict[str, Any]


def subscription_json(row: Row) -> Row:
    """A subscription as the API shows it to its owner (never its keys)."""
    address = "endpoint" if row["kind"] == "webpush" else "token"
    return {
        "id": row["id"],
        "kind": row["kind"],
        address: row["endpoint"],
        "created_at": iso(row["created_at"]),
        "last_success_at": iso(row["last_success_at"]) if row["last_success_at"] is not None else None,
        "last_error": row["last_error"],
        "last_error_at": iso(row["last_error_at"]) if row["last_error_at"] is not None else None,
    }


def dedupe_key(user_id: int, endpoint: str) -> str:
    return hashlib.sha256(f"{user_id}\n{endpoint}".encode()).hexdigest()


class SubscriptionService:
    def __init__(self, db: Database, *, allow_loopback: bool) -> None:
        self.db = db
        self.allow_loopback = allow_loopback

    async def create(self, user_id: int, fields: dict[str, Any]) -> tuple[Row, bool]:
        """The subscription for ``fields`` and whether it is new (else it already existed)."""
        kind = fields.get("kind") or "webpush"
        if kind == "webpush":
            values = await self._web_push_values(fields)
        else:
            values = _expo_values(fields)
        key = dedupe_key(user_id, values["endpoint"])
        existing = await PushSubscription.select().where(PushSubscription.dedupe_key == key).first()
        if existing is not None:
            if existing["p256dh"] != values.get("p256dh") or existing["auth"] != values.get("auth"):
                # The browser made new keys for the same endpoint: encrypt for the new ones.
                await PushSubscription.update({"p256dh": values["p256dh"], "auth": values["auth"]}).where(
                    PushSubscription.id == existing["id"]
                )
            return subscription_json(existing), False
        try:
            async with self.db.write():
                count = await PushSubscription.count().where(PushSubscription.user_id == user_id)
                if count >= MAX_SUBSCRIPTIONS:
                    raise Conflict(f"at most {MAX_SUBSCRIPTIONS} push subscriptions per user: delete one first")
                await PushSubscription.insert(
                    PushSubscription(user_id=user_id, kind=kind, dedupe_key=key, created_at=now_ms(), **values)
                )
                # The user's first device: push what happens from now on, not their history.
                await PushCursor.raw(
                    "INSERT INTO push_cursors (user_id, last_event_id) SELECT id, last_event_id FROM users"
                    " WHERE id = {} ON CONFLICT (user_id) DO NOTHING",
                    user_id,
                )
        except Exception as exc:
            if not is_unique_violation(exc):  # else the same device subscribed twice at once
                raise
        row = await PushSubscription.select().where(PushSubscription.dedupe_key == key).first()
        if row is None:  # deleted in between: vanishingly rare, and a retry makes it again
            raise Conflict("the subscription was deleted while it was being created: try again")
        return subscription_json(row), True

    async def find(self, user_id: int, *, limit: int, offset: int) -> Row:
        rows = (
            await PushSubscription.select()
            .where(PushSubscription.user_id == user_id)
            .order_by(PushSubscription.id)
            .limit(limit)
            .offset(offset)
        )
        total = await PushSubscription.count().where(PushSubscription.user_id == user_id)
        return {"items": [subscription_json(row) for row in rows], "total": total, "limit": limit, "offset": offset}

    async def delete(self, user_id: int, subscription_id: int) -> None:
        deleted = (
            await PushSubscription.delete()
            .where((PushSubscription.id == subscription_id) & (PushSubscription.user_id == user_id))
            .returning(PushSubscription.id)
        )
        if not deleted:
            raise NotFound("push subscription", subscription_id)

    async def rows_of(self, user_id: int) -> list[Row]:
        rows: list[Row] = (
            await PushSubscription.select().where(PushSubscription.user_id == user_id).order_by(PushSubscription.id)
        )
        return rows

    async def _web_push_values(self, fields: dict[str, Any]) -> dict[str, Any]:
        errors: list[InvalidField] = []
        endpoint = fields.get("endpoint")
        keys = fields.get("keys") or {}
        if fields.get("token") is not None:
            errors.append(InvalidField("token", "is for kind expo; a Web Push subscription has endpoint and keys"))
        if not endpoint:
            errors.append(InvalidField("endpoint", "is required for a Web Push subscription"))
        if not fields.get("keys"):
            errors.append(InvalidField("keys", "is required for a Web Push subscription (p256dh and auth)"))
        else:
            errors.extend(_key_errors(keys))
        if endpoint and not errors:
            try:
                await resolve(endpoint, allow_loopback=self.allow_loopback)
            except EndpointRefused as exc:
                errors.append(InvalidField("endpoint", str(exc)))
        if errors:
            raise InvalidFields(errors)
        return {"endpoint": endpoint, "p256dh": keys["p256dh"], "auth": keys["auth"]}


def _key_errors(keys: dict[str, Any]) -> list[InvalidField]:
    errors: list[InvalidField] = []
    p256dh, auth = keys.get("p256dh"), keys.get("auth")
    if not p256dh:
        errors.append(InvalidField("keys.p256dh", "is required"))
    else:
        point = _decoded(p256dh)
        if point is None or len(point) != 65 or point[0] != 4 or not _on_curve(point):
            errors.append(InvalidField("keys.p256dh", "must be an uncompressed P-256 public key (65 bytes, base64url)"))
    if not auth:
        errors.append(InvalidField("keys.auth", "is required"))
    else:
        secret = _decoded(auth)
        if secret is None or len(secret) != 16:
            errors.append(InvalidField("keys.auth", "must be 16 bytes, base64url"))
    return errors


def _decoded(text: str) -> bytes | None:
    try:
        return b64url_decode(text)
    except (binascii.Error, ValueError):
        return None


def _on_curve(point: bytes) -> bool:
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        return False
    return True


def _expo_values(fields: dict[str, Any]) -> dict[str, Any]:
    errors: list[InvalidField] = []
    token = fields.get("token")
    for name in ("endpoint", "keys"):
        if fields.get(name) is not None:
            errors.append(InvalidField(name, "is for Web Push; an Expo subscription has only a token"))
    if not token:
        errors.append(InvalidField("token", "is required for an Expo subscription"))
    elif not EXPO_TOKEN.fullmatch(token):
        errors.append(
            InvalidField("token", "must be an Expo push token such as ExponentPushToken[xxxxxxxxxxxxxxxxxxxxxx]")
        )
    if errors:
        raise InvalidFields(errors)
    return {"endpoint": token, "p256dh": None, "auth": None}
