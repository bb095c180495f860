"""Event types and the one encoding of an event envelope.

The envelope ``{"id", "type", "data", "timestamp", "user_id"}`` is encoded once, when it is
recorded; the log stores those bytes and every transport sends them as they are.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

PRODUCT_ADDED: Final = "product_added"
PRODUCT_UPDATED: Final = "product_updated"
PRODUCT_DELETED: Final = "product_deleted"
PRODUCT_STOCK_CHANGED: Final = "product_stock_changed"
PRODUCT_PRICE_CHANGED: Final = "product_price_changed"
PRODUCT_SYNCED: Final = "product_synced"
SELLER_ADDED: Final = "seller_added"
SELLER_UPDATED: Final = "seller_updated"
SELLER_DELETED: Final = "seller_deleted"
SELLER_PRODUCTS_FETCHED: Final = "seller_products_fetched"
ORDER_CREATED: Final = "order_created"
ORDER_UPDATED: Final = "order_updated"
ORDER_STATUS_CHANGED: Final = "order_status_changed"
ORDER_PROCESSED: Final = "order_processed"
STOCK_SYNC_STARTED: Final = "stock_sync_started"
STOCK_SYNC_COMPLETED: Final = "stock_sync_completed"
STOCK_LOW: Final = "stock_low"
STOCK_OUT: Final = "stock_out"
SETTINGS_UPDATED: Final = "settings_updated"
SYSTEM_NOTIFICATION: Final = "system_notification"

RECORDED_TYPES: Final = frozenset(
    {
        PRODUCT_ADDED,
        PRODUCT_UPDATED,
        PRODUCT_DELETED,
        PRODUCT_STOCK_CHANGED,
        PRODUCT_PRICE_CHANGED,
        PRODUCT_SYNCED,
        SELLER_ADDED,
        SELLER_UPDATED,
        SELLER_DELETED,
        SELLER_PRODUCTS_FETCHED,
        ORDER_CREATED,
        ORDER_UPDATED,
        ORDER_STATUS_CHANGED,
        ORDER_PROCESSED,
        STOCK_SYNC_STARTED,
        STOCK_SYNC_COMPLETED,
        STOCK_LOW,
        STOCK_OUT,
        SETTINGS_UPDATED,
        SYSTEM_NOTIFICATION,
    }
)

_encoder = msgspec.json.Encoder()


def encode_envelope(*, event_id: int, event_type: str, data: dict[str, Any], timestamp: int, user_id: int) -> bytes:
    """The envelope's JSON bytes, keys in the documented order."""
    return _encoder.encode(
        {"id": event_id, "type": event_type, "data": data, "timestamp": timestamp, "user_id": user_id}
    )


def encode_data(data: dict[str, Any]) -> bytes:
    """An event's ``data``, encoded as :func:`encode_envelope` would encode it inside the envelope."""
    return _encoder.encode(data)


def envelope_from_data(*, event_id: int, event_type: str, data: bytes, timestamp: int, user_id: int) -> bytes:
    """The very bytes of :func:`encode_envelope` around ``data`` encoded by :func:`encode_data`
    (a write records its events' data as bytes: no object graph to keep until the commit)."""
    return b'{"id":%d,"type":%b,"data":%b,"timestamp":%d,"user_id":%d}' % (
        event_id,
        _encoder.encode(event_type),
        data,
        timestamp,
        user_id,
    )
