"""The store connector: the one small interface through which dropsync reaches the shop front.

Three operations — push a product, fetch new orders, create a fulfillment — with two
implementations: :class:`domain.store.local.LocalStore` (the default: the "store" lives in this
database) and :class:`domain.store.shopify.ShopifyStore` (the Shopify GraphQL Admin API).

Contract for every implementation:
- Each call is one network (or database) round trip or a few; none runs inside a write
  transaction of ours, so a slow store never holds a user's writers back.
- :class:`StoreRejected` means the store answered and refused that one request (it is safe to
  go on with the next product); :class:`StoreUnavailable` means the store could not be reached,
  timed out, or refused our credentials (there is no point in going on).
- Neither error's message contains the access token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from domain.errors import UpstreamError, UpstreamTimeout


class StoreRejected(UpstreamError):
    """The store answered and refused this request (e.g. a validation error of its own)."""


class StoreUnavailable(UpstreamError):
    """The store could not be reached, refused the credentials, or kept rate-limiting us."""


class StoreTimeout(StoreUnavailable, UpstreamTimeout):
    """The store did not answer in time."""


@dataclass(frozen=True, slots=True)
class ProductPush:
    """What the store gets of a product."""

    product_id: int
    sku: str
    title: str
    description: str
    price_cents: int
    cost_cents: int | None
    currency: str
    status: str  # active | draft | archived
    store_id: str | None = None  # the store's id from an earlier push, if any


@dataclass(frozen=True, slots=True)
class StoreOrderItem:
    sku: str
    quantity: int
    unit_price_cents: int


@dataclass(frozen=True, slots=True)
class StoreOrder:
    """An order as a store hands it over; strings already fit our columns."""

    store_order_id: str
    external_id: str
    customer_name: str = ""
    customer_email: str | None = None
    customer_address: str = ""
    items: list[StoreOrderItem] = field(default_factory=list)
    total_cents: int = 0
    currency: str = "USD"


class StoreConnector(Protocol):
    """One shop front. See the module docstring for the guarantees of every method."""

    name: str

    async def push_product(self, product: ProductPush) -> str:
        """Create or update ``product`` in the store; returns the store's id for it."""
        ...

    async def fetch_orders(self) -> list[StoreOrder]:
        """The store's open orders, oldest first (the caller skips those it already has)."""
        ...

    async def create_fulfillment(self, store_order_id: str, *, carrier: str, tracking_number: str) -> str:
        """Mark the store's order shipped with its tracking; returns the fulfillment's id."""
        ...
