"""Piccolo tables. Every row but ``users`` belongs to one user (``user_id``).

Storage choices that keep SQLite and PostgreSQL identical:
money is integer cents (rendered as decimal strings), times are epoch milliseconds
(rendered as ISO 8601 UTC in resources), event envelopes are stored as their encoded JSON text
so that a replay sends the very bytes the live stream sent.

The schema is made by the migrations (``migrations/``), not from these classes alone: they add
the composite indexes, ``order_items (product_id)`` for a product's deletion (the retention job
needs no index: it goes by the events' primary key), and on SQLite rebuild the tables whose ids
clients hold (users, sellers, products, orders, order_items, store_orders, push_subscriptions)
with ``AUTOINCREMENT``, so a deleted row's id is never given again (PostgreSQL's serials never
reuse one).
"""

from __future__ import annotations

from piccolo.columns import BigInt, ForeignKey, Integer, OnDelete, Serial, Text, Varchar
from piccolo.table import Table


class User(Table, tablename="users"):
    id: Serial  # Piccolo adds the primary key; declared for type checkers
    username = Varchar(length=64, unique=True)
    password_hash = Varchar(length=255)
    # The user's event counter: the id of the last event recorded. Updated in the same
    # transaction as the events, which also serializes one user's writers on PostgreSQL.
    last_event_id = BigInt(default=0)
    created_at = BigInt(default=0)


class AccessToken(Table, tablename="tokens"):
    id: Serial  # Piccolo adds the primary key; declared for type checkers
    user_id = ForeignKey(User, on_delete=OnDelete.cascade, index=True)
    token_hash = Varchar(length=64, unique=True)
    created_at = BigInt(default=0)
    expires_at = BigInt(default=0)


class UserSettings(Table, tablename="settings"):
    id: Serial  # Piccolo adds the primary key; declared for type checkers
    user_id = ForeignKey(User, on_delete=OnDelete.cascade, unique=True)
    low_stock_threshold = Integer(default=5)
    default_markup_hundredths = BigInt(default=3000)
    currency = Varchar(length=3, default="USD")
    shopify_domain = Varchar(length=255, null=True, default=None)
    shopify_access_token = Text(null=True, default=None)
    updated_at = BigInt(default=0)
    # The event types sent as push notifications, comma-separated (see domain.push.messages).
    push_types = Text(default="order_created,stock_low,stock_out,system_notification")


class Seller(Table, tablename="sellers"):
    id: Serial  # Piccolo adds the primary key; declared for type checkers
    user_id = ForeignKey(User, on_delete=OnDelete.cascade, index=True)
    name = Varchar(length=200)
    email = Varchar(length=320, null=True, default=None)
    feed_url = Text(null=True, default=None)
    feed_format = Varchar(length=8, null=True, default=None)
    notes = Text(null=True, default=None)
    version = Integer(default=1)
    created_at = BigInt(default=0)
    updated_at = BigInt(default=0)


class Product(Table, tablename="products"):
    id: Serial  # Piccolo adds the primary key; declared for type checkers
    user_id = ForeignKey(User, on_delete=OnDelete.cascade, index=True)
    seller_id = ForeignKey(Seller, on_delete=OnDelete.set_null, null=True, default=None)
    sku = Varchar(length=100)
    name = Varchar(length=300)
    description = Text(default="")
    cost_price_cents = BigInt(null=True, default=None)
    price_cents = BigInt(default=0)
    currency = Varchar(length=3, default="USD")
    stock = Integer(default=0)
    low_stock_threshold = Integer(null=True, default=None)
    # ok | low | out: where the stock stood at the last change, so alerts fire once per crossing.
    stock_state = Varchar(length=4, default="ok")
    status = Varchar(length=16, default="active")
    shopify_id = Varchar(length=64, null=True, default=None)
    synced_at = BigInt(null=True, default=None)
    version = Integer(default=1)
    created_at = BigInt(default=0)
    updated_at = BigInt(default=0)


class Order(Table, tablename="orders"):
    id: Serial  # Piccolo adds the primary key; declared for type checkers
    user_id = ForeignKey(User, on_delete=OnDelete.cascade, index=True)
    external_id = Varchar(length=100)
    customer_name = Varchar(length=200, default="")
    customer_email = Varchar(length=320, null=True, default=None)
    customer_address = Text(default="")
    total_cents = BigInt(default=0)
    currency = Varchar(length=3, default="USD")
    status = Varchar(length=16, default="pending")
    carrier = Varchar(length=100, null=True, default=None)
    tracking_number = Varchar(length=100, null=True, default=None)
    version = Integer(default=1)
    created_at = BigInt(default=0)
    updated_at = BigInt(default=0)
    # The store's own id of an order fetched from it (a fulfillment is created there on shipment);
    # null for an order entered here.
    store_order_id = Varchar(length=255, null=True, default=None)
    # When POST /orders/{id}/process took its items out of stock (once per order).
    processed_at = BigInt(null=True, default=None)
    # The order as the API renders it (JSON), and the version it renders, stored by every write
    # that changes the order or its items, in that write's transaction: GET /orders lists these
    # (domain.services.orders).
    rendered = Text(default="")
    rendered_version = Integer(default=0)


class OrderItem(Table, tablename="order_items"):
    id: Serial  # Piccolo adds the primary key; declared for type checkers
    order_id = ForeignKey(Order, on_delete=OnDelete.cascade, index=True)
    product_id = ForeignKey(Product, on_delete=OnDelete.set_null, null=True, default=None)
    sku = Varchar(length=100)
    quantity = Integer(default=1)
    unit_price_cents = BigInt(default=0)
    position = Integer(default=0)


class EventRecord(Table, tablename="events"):
    """The durable event log: (user_id, id) is unique; ``id`` is the user's own sequence."""

    id: Serial  # Piccolo adds the primary key; declared for type checkers
    user_id = ForeignKey(User, on_delete=OnDelete.cascade)
    seq = BigInt()
    type = Varchar(length=40)
    payload = Text()
    created_at = BigInt(default=0)


class StoreProduct(Table, tablename="store_products"):
    """The local store connector's catalogue: what was pushed to the "store", one row per SKU."""

    id: Serial  # Piccolo adds the primary key; declared for type checkers
    user_id = ForeignKey(User, on_delete=OnDelete.cascade, index=True)
    sku = Varchar(length=100)
    title = Varchar(length=300)
    price_cents = BigInt(default=0)
    status = Varchar(length=16, default="active")
    updated_at = BigInt(default=0)


class StoreOrder(Table, tablename="store_orders"):
    """The local store connector's orders: placed in the "store", waiting for POST /orders/fetch."""

    id: Serial  # Piccolo adds the primary key; declared for type checkers
    user_id = ForeignKey(User, on_delete=OnDelete.cascade, index=True)
    external_id = Varchar(length=100)
    # The order as the store hands it over: customer, items, total, currency (JSON text).
    payload = Text(default="{}")
    created_at = BigInt(default=0)
    carrier = Varchar(length=100, null=True, default=None)
    tracking_number = Varchar(length=100, null=True, default=None)
    fulfilled_at = BigInt(null=True, default=None)


class IdempotencyKey(Table, tablename="idempotency_keys"):
    """The first response to a write sent with an ``Idempotency-Key``; (user_id, key) is unique."""

    id: Serial  # Piccolo adds the primary key; declared for type checkers
    user_id = ForeignKey(User, on_delete=OnDelete.cascade)
    key = Varchar(length=255)
    # sha256 of method, path, query and body: the same key with another request is refused.
    fingerprint = Varchar(length=64)
    # 0 while the first request is in flight, then its HTTP status.
    status_code = Integer(default=0)
    response_headers = Text(default="[]")
    response_body = Text(default="")  # base64
    created_at = BigInt(default=0)


class PushSubscription(Table, tablename="push_subscriptions"):
    """A device that receives the user's push notifications: a browser's Web Push subscription
    (``endpoint`` is its push service URL, with the keys it encrypts for) or an Expo push token."""

    id: Serial  # Piccolo adds the primary key; declared for type checkers
    user_id = ForeignKey(User, on_delete=OnDelete.cascade, index=True)
    kind = Varchar(length=8)  # webpush | expo
    endpoint = Text()  # the Web Push endpoint URL, or the Expo push token
    p256dh = Varchar(length=100, null=True, default=None)
    auth = Varchar(length=40, null=True, default=None)
    created_at = BigInt(default=0)
    last_success_at = BigInt(null=True, default=None)
    last_error = Text(null=True, default=None)
    last_error_at = BigInt(null=True, default=None)
    # sha256 of (user_id, endpoint): one row per device and user. A composite unique key would do,
    # but Piccolo cannot add one on SQLite.
    dedupe_key = Varchar(length=64, unique=True)


class PushCursor(Table, tablename="push_cursors"):
    """How far the push dispatcher has read a user's event log (ids up to ``last_event_id`` are queued)."""

    id: Serial  # Piccolo adds the primary key; declared for type checkers
    user_id = ForeignKey(User, on_delete=OnDelete.cascade, unique=True)
    last_event_id = BigInt(default=0)


class PushDelivery(Table, tablename="push_deliveries"):
    """One notification waiting for one subscription: deleted once the push service took it, the
    subscription went away, or it was given up on."""

    id: Serial  # Piccolo adds the primary key; declared for type checkers
    subscription_id = ForeignKey(PushSubscription, on_delete=OnDelete.cascade, index=True)
    event_id = BigInt(default=0)  # the user's event it announces
    message = Text()  # the rendered notification (JSON), see domain.push.messages
    created_at = BigInt(default=0)
    expires_at = BigInt(default=0)  # past its TTL it is dropped, not sent
    next_attempt_at = BigInt(default=0, index=True)  # due from then (back-off after a failure)
    claimed_until = BigInt(null=True, default=None)  # a process is sending it; another may take over after
    attempts = Integer(default=0)


class ServerKey(Table, tablename="server_keys"):
    """Keys the server generates for itself once and shares between its processes (the VAPID key)."""

    id: Serial  # Piccolo adds the primary key; declared for type checkers
    name = Varchar(length=64, unique=True)
    value = Text()
    created_at = BigInt(default=0)


ALL_TABLES: tuple[type[Table], ...] = (
    User,
    AccessToken,
    UserSettings,
    Seller,
    Product,
    Order,
    OrderItem,
    EventRecord,
    StoreProduct,
    StoreOrder,
    IdempotencyKey,
    PushSubscription,
    PushCursor,
    PushDelivery,
    ServerKey,
)
