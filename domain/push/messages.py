"""What a push notification says: an event turned into a short message people can read.

- ``order_created`` → "New order #1004" / "42.96 USD · Katherine Johnson" (high urgency);
- ``stock_low`` → "Low stock: ACME-LAMP (4 left)"; ``stock_out`` → "Out of stock: GLX-HUB"
  (normal urgency; the two alerts of one SKU share a collapse key, so the newer replaces the older);
- ``system_notification`` → its own title and message.

Every notification carries the event's id and type, a URL into the dashboard (``/#order-12``,
``/#product-7``) and a collapse key (``tag``): a notification repeated after a crash replaces
the first on the device instead of stacking. Its JSON stays under :data:`MAX_PAYLOAD_BYTES`
(push services take 4 KiB, encryption and Expo's envelope included): long texts are cut.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

import msgspec

from domain import events

PUSHABLE_TYPES: Final = (events.ORDER_CREATED, events.STOCK_LOW, events.STOCK_OUT, events.SYSTEM_NOTIFICATION)
DEFAULT_PUSH_TYPES: Final = PUSHABLE_TYPES
TEST_TYPE: Final = "push_test"

MAX_PAYLOAD_BYTES: Final = 3072
MAX_TITLE_BYTES: Final = 240
MAX_BODY_BYTES: Final = 1200

Urgency = Literal["high", "normal"]


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    """One notification, as stored in the delivery queue and sent (JSON) to the device."""

    title: str
    body: str
    url: str
    tag: str
    type: str
    event_id: int
    urgency: Urgency = "normal"

    @property
    def topic(self) -> str:
        """The collapse key as push services take it: Web Push ``Topic`` allows at most 32
        characters of the URL-safe base64 alphabet, APNs' collapse id 64 bytes; a hash of the tag fits both."""
        digest = hashlib.sha256(self.tag.encode()).digest()
        return base64.urlsafe_b64encode(digest).decode()[:32]

    def payload(self) -> bytes:
        """What the device receives (the service worker's ``event.data.json()``)."""
        return encode({"title": self.title, "body": self.body, "url": self.url, "tag": self.tag,
                       "type": self.type, "event_id": self.event_id})  # fmt: skip


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Notification)


def encode(value: Any) -> bytes:
    return _encoder.encode(value)


def decode_notification(stored: str | bytes) -> Notification:
    return _decoder.decode(stored)


def encode_push_types(types: Iterable[str]) -> str:
    """The settings column: the chosen types, each once, in the canonical order."""
    chosen = set(types)
    unknown = chosen - set(PUSHABLE_TYPES)
    if unknown:
        raise ValueError(f"not a pushable event type: {sorted(unknown)[0]!r}")
    return ",".join(kind for kind in PUSHABLE_TYPES if kind in chosen)


def decode_push_types(stored: str) -> list[str]:
    return [kind for kind in stored.split(",") if kind in PUSHABLE_TYPES]


def notification_for(event_type: str, event_id: int, data: Mapping[str, Any]) -> Notification | None:
    """The notification an event gives, or None for a type that is not pushed."""
    if event_type == events.ORDER_CREATED:
        number = data.get("external_id") or data.get("id")
        customer = (data.get("customer") or {}).get("name")
        amount = f"{data.get('total')} {data.get('currency')}"
        return _fitted(
            title=f"New order #{number}",
            body=" · ".join(part for part in (amount, customer) if part),
            url=f"/#order-{data.get('id')}",
            tag=f"order:{data.get('id')}",
            type=event_type,
            event_id=event_id,
            urgency="high",
        )
    if event_type in {events.STOCK_LOW, events.STOCK_OUT}:
        sku, stock, threshold = data.get("sku"), data.get("stock"), data.get("threshold")
        low = event_type == events.STOCK_LOW
        return _fitted(
            title=f"Low stock: {sku} ({stock} left)" if low else f"Out of stock: {sku}",
            body=f"At or below the threshold of {threshold}." if low else "None left to sell.",
            url=f"/#product-{data.get('product_id')}",
            tag=f"stock:{sku}",
            type=event_type,
            event_id=event_id,
        )
    if event_type == events.SYSTEM_NOTIFICATION:
        return _fitted(
            title=str(data.get("title") or "dropsync"),
            body=str(data.get("message") or ""),
            url="/",
            tag=f"event:{event_id}",
            type=event_type,
            event_id=event_id,
        )
    return None


def test_notification(sent_at_ms: int) -> Notification:
    """What ``POST /push/test`` sends."""
    return Notification(
        title="dropsync: test notification",
        body="Push notifications reach this device.",
        url="/",
        tag=f"test:{sent_at_ms}",
        type=TEST_TYPE,
        event_id=0,
    )


def _fitted(**fields: Any) -> Notification:
    """The notification with its title and body cut (at a character boundary, with "…") until its
    payload fits :data:`MAX_PAYLOAD_BYTES`."""
    title = _cut(fields.pop("title"), MAX_TITLE_BYTES)
    body = _cut(fields.pop("body"), MAX_BODY_BYTES)
    notification = Notification(title=title, body=body, **fields)
    while len(notification.payload()) > MAX_PAYLOAD_BYTES and notification.body:
        body = _cut(body, len(body.encode()) // 2) if len(body) > 1 else ""
        notification = Notification(title=title, body=body, **fields)
    return notification


def _cut(text: str, max_bytes: int) -> str:
    if len(text.encode()) <= max_bytes:
        return text
    kept = text.encode()[: max_bytes - 3].decode(errors="ignore")
    return kept + "…"
