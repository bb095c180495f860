"""Request bodies. Types and bounds live here so that Litestar rejects bad input with a 400 that
names the field before any service runs; rules that need the database live in the services.

Every string is bounded and refuses NUL (PostgreSQL cannot store it); every id fits PostgreSQL's
``integer``.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from domain.errors import InvalidField
from domain.services.feeds import check_feed_url

NO_NUL = r"^[^\x00]*$"
Id = Annotated[int, Meta(ge=1, le=2_147_483_647)]
Count = Annotated[int, Meta(ge=0, le=1_000_000_000)]
Quantity = Annotated[int, Meta(ge=1, le=1_000_000)]
Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=NO_NUL)]
LongName = Annotated[str, Meta(min_length=1, max_length=300, pattern=NO_NUL)]
Text = Annotated[str, Meta(max_length=10_000, pattern=NO_NUL)]
Email = Annotated[str, Meta(max_length=320, pattern=r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$")]
HttpUrl = Annotated[str, Meta(max_length=2000, pattern=r"^https?://[^\s\x00]+$", extra={"http_url": True})]
Sku = Annotated[str, Meta(min_length=1, max_length=100, pattern=r"^[^\s\x00]([^\x00]*[^\s\x00])?$")]
ExternalId = Annotated[str, Meta(min_length=1, max_length=100, pattern=r"^[^\s\x00]([^\x00]*[^\s\x00])?$")]
Currency = Annotated[str, Meta(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. USD")]
Short = Annotated[str, Meta(max_length=100, pattern=NO_NUL)]
Money = Annotated[str | int | float, Meta(description='a decimal amount with at most two places, e.g. "99.99"')]
ProductStatus = Literal["active", "draft", "archived"]
OrderStatus = Literal["pending", "processing", "shipped", "delivered", "cancelled"]


class Body(Struct, forbid_unknown_fields=True, kw_only=True):
    """A request body: unknown fields are an error (a typo must not be ignored silently)."""

    def fields(self) -> dict[str, object]:
        """The fields the client sent (``UNSET`` ones left out), nested structs as dicts."""
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]


class Registration(Body):
    username: Annotated[
        str,
        Meta(
            pattern=r"^[^\s\x00]{3,64}$",
            description="3-64 letters, digits, _ . - once NFKC-normalised and case-folded (Admin is admin)",
        ),
    ]
    password: Annotated[
        str,
        Meta(
            min_length=8,
            max_length=256,
            pattern=NO_NUL,
            description="at least 8 characters that are not spaces; not a common password; not the username",
        ),
    ]


class Credentials(Body):
    username: Annotated[str, Meta(min_length=1, max_length=64, pattern=NO_NUL)]
    password: Annotated[str, Meta(min_length=1, max_length=256, pattern=NO_NUL)]


def url_problem(value: object) -> str | None:
    """Why ``value`` is not a usable http(s) URL (a bad port, a bracketed IPv4 host...), or None."""
    if not isinstance(value, str):
        return None
    try:
        check_feed_url(value)
    except InvalidField as error:
        return error.message
    return None


class _FeedUrl:
    feed_url: str | UnsetType | None

    def __post_init__(self) -> None:
        problem = url_problem(self.feed_url)
        if problem is not None:
            raise ValueError(f"feed_url {problem}")


class SellerCreate(_FeedUrl, Body):
    name: Name
    email: Email | None = None
    feed_url: HttpUrl | None = None
    feed_format: Literal["json", "csv"] | None = None
    notes: Text | None = None


class SellerPatch(_FeedUrl, Body):
    name: Name | UnsetType = UNSET
    email: Email | UnsetType | None = UNSET
    feed_url: HttpUrl | UnsetType | None = UNSET
    feed_format: Literal["json", "csv"] | UnsetType | None = UNSET
    notes: Text | UnsetType | None = UNSET


class ProductCreate(Body):
    sku: Sku
    name: LongName
    price: Money
    seller_id: Id | None = None
    description: Text = ""
    cost_price: Money | None = None
    currency: Currency = "USD"
    stock: Count = 0
    low_stock_threshold: Count | None = None
    status: ProductStatus = "active"


class ProductPatch(Body):
    sku: Sku | UnsetType = UNSET
    name: LongName | UnsetType = UNSET
    price: Money | UnsetType = UNSET
    seller_id: Id | UnsetType | None = UNSET
    description: Text | UnsetType = UNSET
    cost_price: Money | UnsetType | None = UNSET
    currency: Currency | UnsetType = UNSET
    stock: Count | UnsetType = UNSET
    low_stock_threshold: Count | UnsetType | None = UNSET
    status: ProductStatus | UnsetType = UNSET


class Customer(Body):
    name: Annotated[str, Meta(max_length=200, pattern=NO_NUL)] = ""
    email: Email | None = None
    address: Annotated[str, Meta(max_length=1000, pattern=NO_NUL)] = ""


class CustomerPatch(Body):
    name: Annotated[str, Meta(max_length=200, pattern=NO_NUL)] | UnsetType = UNSET
    email: Email | UnsetType | None = UNSET
    address: Annotated[str, Meta(max_length=1000, pattern=NO_NUL)] | UnsetType = UNSET


class OrderItemIn(Body):
    quantity: Quantity
    product_id: Id | None = None
    sku: Sku | None = None
    unit_price: Money | None = None


class OrderCreate(Body):
    items: Annotated[list[OrderItemIn], Meta(min_length=1, max_length=500)]
    external_id: ExternalId | None = None
    customer: Customer | None = None
    total: Money | None = None
    currency: Currency = "USD"


class OrderPatch(Body):
    customer: CustomerPatch | UnsetType = UNSET
    status: OrderStatus | UnsetType = UNSET
    carrier: Short | UnsetType | None = UNSET
    tracking_number: Short | UnsetType | None = UNSET


class StoreIn(Body):
    shopify_domain: Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")] | UnsetType | None = UNSET
    shopify_access_token: Annotated[str, Meta(min_length=1, max_length=500, pattern=NO_NUL)] | UnsetType | None = UNSET


PushType = Literal["order_created", "stock_low", "stock_out", "system_notification"]


class SettingsIn(Body):
    low_stock_threshold: Count | UnsetType = UNSET
    default_markup_percent: Money | UnsetType = UNSET
    currency: Currency | UnsetType = UNSET
    store: StoreIn | UnsetType = UNSET
    push_types: (
        Annotated[list[PushType], Meta(max_length=4, description="event types sent as push notifications")] | UnsetType
    ) = UNSET


class NotificationIn(Body):
    title: Name
    message: Annotated[str, Meta(max_length=2000, pattern=NO_NUL)] = ""
    level: Literal["info", "success", "warning", "error"] = "info"


# --- bulk, store and order workflows -------------------------------------------------------------

MAX_BULK_ITEMS = 1000
ProductIds = Annotated[list[Id], Meta(min_length=1, max_length=MAX_BULK_ITEMS, description="1 to 1000 product ids")]
SignedAmount = Annotated[
    str | int | float,
    Meta(description='set: the new price; delta: an amount to add (may be negative); percent: e.g. "-10" or "12.5"'),
]


class BulkPriceUpdate(Body):
    product_ids: ProductIds
    mode: Literal["set", "percent", "delta"]
    value: SignedAmount


class StockItem(Body, kw_only=True):
    product_id: Id | None = None
    sku: Sku | None = None
    stock: Count


class BulkStockUpdate(Body):
    items: Annotated[list[StockItem], Meta(min_length=1, max_length=MAX_BULK_ITEMS)]


class BulkProductIds(Body):
    product_ids: ProductIds


class Shipment(Body):
    carrier: Annotated[str, Meta(min_length=1, max_length=100, pattern=NO_NUL)]
    tracking_number: Annotated[str, Meta(min_length=1, max_length=100, pattern=NO_NUL)]


# --- push notifications ------------------------------------------------------------------------

Base64Url = r"^[A-Za-z0-9_-]+={0,2}$"


class PushKeysIn(Body):
    p256dh: Annotated[str, Meta(min_length=1, max_length=100, pattern=Base64Url, description="base64url P-256 key")]
    auth: Annotated[str, Meta(min_length=1, max_length=40, pattern=Base64Url, description="base64url, 16 bytes")]


class PushSubscriptionIn(Body):
    """A browser's ``PushSubscription.toJSON()`` (``endpoint``, ``keys``, ``expirationTime``), or
    ``{"kind": "expo", "token": "ExponentPushToken[...]"}``."""

    kind: Literal["webpush", "expo"] = "webpush"
    endpoint: Annotated[str, Meta(min_length=1, max_length=2048, pattern=NO_NUL)] | None = None
    keys: PushKeysIn | None = None
    expirationTime: Annotated[float, Meta(ge=0)] | None = None  # noqa: N815 - the browser's own name
    token: Annotated[str, Meta(min_length=1, max_length=256, pattern=NO_NUL)] | None = None
