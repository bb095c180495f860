"""Example requests and answers for the OpenAPI document, keyed by operation id.

They are real values a user would send or get (money as decimal strings, ``"USD"``, SKUs that
look like SKUs), taken from the demo data. ``tests/integration/test_openapi.py`` checks that every
request example is valid against its own schema and that every operation with a body has one.
"""

from __future__ import annotations

from typing import Any

TIME = "2026-12-02T09:30:00.000Z"
LATER = "2026-12-02T09:31:12.000Z"

SELLER: dict[str, Any] = {
    "id": 1,
    "name": "Acme Supplies",
    "email": "orders@acme.example",
    "feed_url": "https://acme.example/feed.csv",
    "feed_format": "csv",
    "notes": "Ships in 2 days",
    "version": 1,
    "created_at": TIME,
    "updated_at": TIME,
}
PRODUCT: dict[str, Any] = {
    "id": 1,
    "seller_id": 1,
    "sku": "ACME-MUG",
    "name": "Enamel camping mug",
    "description": "350 ml, white with a blue rim",
    "cost_price": "4.20",
    "price": "12.99",
    "currency": "USD",
    "stock": 40,
    "low_stock_threshold": None,
    "status": "active",
    "shopify_id": None,
    "synced_at": None,
    "version": 1,
    "created_at": TIME,
    "updated_at": TIME,
}
ORDER: dict[str, Any] = {
    "id": 1,
    "external_id": "1001",
    "customer": {"name": "Ada Lovelace", "email": "ada@example.com", "address": "12 St James's Sq, London"},
    "items": [
        {"product_id": 1, "sku": "ACME-MUG", "quantity": 2, "unit_price": "12.99"},
        {"product_id": 4, "sku": "GLX-CABLE", "quantity": 1, "unit_price": "9.99"},
    ],
    "total": "35.97",
    "currency": "USD",
    "status": "pending",
    "carrier": None,
    "tracking_number": None,
    "version": 1,
    "created_at": TIME,
    "updated_at": TIME,
}
SETTINGS: dict[str, Any] = {
    "low_stock_threshold": 5,
    "default_markup_percent": "30.00",
    "currency": "USD",
    "store": {"shopify_domain": None, "connected": False},
    "push_types": ["order_created", "stock_low", "stock_out", "system_notification"],
    "updated_at": TIME,
}
WEB_PUSH_ENDPOINT = (
    "https://fcm.googleapis.com/fcm/send/dpH5lCsTSSM:APA91bHqjZxM0VImWWqDRN7U0a3AycjUf4O-byuxb_wJsKRaKvV_iKw"
)
PUSH_SUBSCRIPTION: dict[str, Any] = {
    "id": 1,
    "kind": "webpush",
    "endpoint": WEB_PUSH_ENDPOINT,
    "created_at": TIME,
    "last_success_at": LATER,
    "last_error": None,
    "last_error_at": None,
}
PHONE_SUBSCRIPTION: dict[str, Any] = {
    "id": 2,
    "kind": "expo",
    "token": "ExponentPushToken[xxxxxxxxxxxxxxxxxxxxxx]",
    "created_at": TIME,
    "last_success_at": None,
    "last_error": "HTTP 429 from Expo",
    "last_error_at": LATER,
}
EVENT: dict[str, Any] = {
    "id": 42,
    "type": "product_stock_changed",
    "data": {"product_id": 1, "sku": "ACME-MUG", "old": 40, "new": 3},
    "timestamp": 1796204952000,
    "user_id": 1,
}


def page(item: dict[str, Any], total: int) -> dict[str, Any]:
    return {"items": [item], "total": total, "limit": 50, "offset": 0}


def with_changes(resource: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**resource, **changes, "version": resource["version"] + 1, "updated_at": LATER}


REQUESTS: dict[str, dict[str, Any]] = {
    "register": {"a new account": {"username": "alice", "password": "correct-horse-battery"}},
    "createToken": {"the demo account": {"username": "demo", "password": "demo-password"}},
    "createSeller": {
        "a supplier with a CSV feed": {
            "name": "Acme Supplies",
            "email": "orders@acme.example",
            "feed_url": "https://acme.example/feed.csv",
            "feed_format": "csv",
            "notes": "Ships in 2 days",
        }
    },
    "updateSeller": {
        "a new feed": {"feed_url": "https://acme.example/products.json", "feed_format": "json"},
        "notes": {"notes": "Closed on Fridays"},
    },
    "createProduct": {
        "a product": {
            "sku": "ACME-MUG",
            "name": "Enamel camping mug",
            "description": "350 ml, white with a blue rim",
            "price": "12.99",
            "cost_price": "4.20",
            "currency": "USD",
            "stock": 40,
            "status": "active",
        }
    },
    "updateProduct": {
        "stock": {"stock": 3},
        "price": {"price": "9.99"},
        "draft": {"status": "draft", "low_stock_threshold": 10},
    },
    "bulkUpdatePrices": {
        "10 % up": {"product_ids": [1, 2, 3], "mode": "percent", "value": "10"},
        "a fixed price": {"product_ids": [1, 2], "mode": "set", "value": "19.99"},
        "2.50 off": {"product_ids": [3], "mode": "delta", "value": "-2.50"},
    },
    "bulkUpdateStock": {
        "by id and by SKU": {"items": [{"product_id": 1, "stock": 25}, {"sku": "GLX-CABLE", "stock": 0}]},
    },
    "bulkDeleteProducts": {"two products": {"product_ids": [4, 5]}},
    "bulkSyncProducts": {"two products": {"product_ids": [1, 2]}},
    "createOrder": {
        "by product id and by SKU": {
            "external_id": "1001",
            "customer": {"name": "Ada Lovelace", "email": "ada@example.com", "address": "12 St James's Sq, London"},
            "items": [{"product_id": 1, "quantity": 2}, {"sku": "GLX-CABLE", "quantity": 1, "unit_price": "9.99"}],
            "currency": "USD",
        }
    },
    "updateOrder": {
        "cancel": {"status": "cancelled"},
        "a new address": {"customer": {"address": "10 Downing St, London"}},
    },
    "shipOrder": {"UPS": {"carrier": "UPS", "tracking_number": "1Z999AA10123456784"}},
    "updateSettings": {
        "threshold": {"low_stock_threshold": 3},
        "connect Shopify": {
            "store": {"shopify_domain": "acme-store.myshopify.com", "shopify_access_token": "shpat_0123456789abcdef"}
        },
        "push only orders and sell-outs": {"push_types": ["order_created", "stock_out"]},
    },
    "replaceSettings": {
        "all of them": {"low_stock_threshold": 5, "default_markup_percent": "30", "currency": "USD"},
    },
    "sendNotification": {"lunch": {"level": "info", "title": "Lunch", "message": "Back in 5 minutes"}},
    "createPushSubscription": {
        "a browser (PushSubscription.toJSON())": {
            "endpoint": WEB_PUSH_ENDPOINT,
            "expirationTime": None,
            "keys": {
                "p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
                "auth": "BTBZMqHH6r4Tts7J_aSIgg",
            },
        },
        "a phone (Expo)": {"kind": "expo", "token": "ExponentPushToken[xxxxxxxxxxxxxxxxxxxxxx]"},
    },
}
"""Request bodies: operation id -> {example name: body}."""

RESPONSES: dict[str, Any] = {
    "register": {"id": 2, "username": "alice"},
    "createToken": {
        "access_token": "B0pFJtfh5HUMS_OaAY-XTGdw3Q6NlNItj-w6sVFEzMk",
        "token_type": "bearer",
        "expires_in": 2592000,
    },
    "getMe": {"id": 1, "username": "demo", "created_at": TIME},
    "listSellers": page(SELLER, 2),
    "createSeller": SELLER,
    "getSeller": SELLER,
    "updateSeller": with_changes(SELLER, notes="Closed on Fridays"),
    "fetchSellerProducts": {
        "job_id": "5ab45e1c4f683b48",
        "seller_id": 1,
        "total": 15,
        "added": 3,
        "updated": 10,
        "unchanged": 2,
    },
    "listProducts": page(PRODUCT, 5),
    "createProduct": PRODUCT,
    "getProduct": PRODUCT,
    "updateProduct": with_changes(PRODUCT, stock=3),
    "syncProduct": with_changes(PRODUCT, shopify_id="gid://shopify/Product/1", synced_at=LATER),
    "bulkUpdatePrices": {"total": 1, "changed": 1, "items": [with_changes(PRODUCT, price="14.29")]},
    "bulkUpdateStock": {
        "job_id": "5ab45e1c4f683b48",
        "total": 1,
        "changed": 1,
        "unchanged": 0,
        "items": [with_changes(PRODUCT, stock=25)],
    },
    "bulkDeleteProducts": {"deleted": 2, "items": [{"id": 4, "sku": "GLX-CABLE"}, {"id": 5, "sku": "GLX-HUB"}]},
    "bulkSyncProducts": {
        "total": 2,
        "synced": 1,
        "failed": 1,
        "items": [
            {
                "product_id": 1,
                "sku": "ACME-MUG",
                "ok": True,
                "shopify_id": "gid://shopify/Product/1",
                "synced_at": LATER,
            },
            {"product_id": 2, "sku": "ACME-LAMP", "ok": False, "error": "the store refused it: Title can't be blank"},
        ],
    },
    "listOrders": page(ORDER, 2),
    "createOrder": ORDER,
    "getOrder": ORDER,
    "updateOrder": with_changes(ORDER, status="cancelled"),
    "fetchOrders": {"fetched": 1, "created": 1, "items": [{**ORDER, "id": 3, "external_id": "1003"}]},
    "processOrder": with_changes(ORDER, status="processing"),
    "shipOrder": {
        **with_changes(ORDER, carrier="UPS", tracking_number="1Z999AA10123456784"),
        "status": "shipped",
        "version": 3,
    },
    "getSettings": SETTINGS,
    "updateSettings": {**SETTINGS, "low_stock_threshold": 3, "updated_at": LATER},
    "replaceSettings": {**SETTINGS, "updated_at": LATER},
    "sendNotification": {"level": "info", "title": "Lunch", "message": "Back in 5 minutes"},
    "listEvents": {"events": [EVENT], "latest_id": 42, "oldest_id": 1},
    "getConnectionStats": {
        "connections": [
            {
                "connection_id": "c1f0",
                "transport": "ws",
                "connected_at": "2026-12-02T09:30:00Z",
                "last_event_id": 42,
                "queued": 0,
            }
        ],
        "totals": {"connections": 3, "by_transport": {"sse": 1, "ws": 2}, "users_online": 2},
    },
    "getVapidPublicKey": {
        "public_key": "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
    },
    "createPushSubscription": {**PUSH_SUBSCRIPTION, "last_success_at": None},
    "listPushSubscriptions": {"items": [PUSH_SUBSCRIPTION, PHONE_SUBSCRIPTION], "total": 2, "limit": 50, "offset": 0},
    "sendTestPush": {
        "results": [
            {"id": 1, "kind": "webpush", "outcome": "sent", "status_code": 201, "detail": "HTTP 201"},
            {"id": 2, "kind": "expo", "outcome": "removed", "status_code": None, "detail": "Expo: DeviceNotRegistered"},
        ]
    },
    "getHealth": {"status": "ok"},
    "getReadiness": {"status": "ready", "database": "ok", "broker": "ok"},
}
"""Successful answers: operation id -> body."""

EVENT_STREAM = (
    "retry: 3000\nid: 41\nevent: connected\n"
    'data: {"type":"connected","data":{"connection_id":"c1f0","transport":"sse","heartbeat_s":15.0,'
    '"last_event_id":41},"timestamp":1796204950000}\n\n'
    'id: 42\nevent: product_stock_changed\ndata: {"id":42,"type":"product_stock_changed",'
    '"data":{"product_id":1,"sku":"ACME-MUG","old":40,"new":3},"timestamp":1796204952000,"user_id":1}\n\n'
    ": ping\n"
)
"""What ``GET /events`` sends: ``retry:`` in the ``connected`` block, events, and ``: ping`` comment
lines (no blank line after them: every block that ends with one carries ``data:``)."""
