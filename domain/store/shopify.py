"""The Shopify connector: the GraphQL Admin API over HTTPS.

``POST https://{shop}/admin/api/{version}/graphql.json`` with ``X-Shopify-Access-Token``.

- Products: ``productSet`` (synchronous), one default variant carrying SKU, price and cost.
- Orders: ``orders(query: "status:open")``, paged 50 at a time (at most ``MAX_ORDER_PAGES``).
- Fulfillments: the order's open ``fulfillmentOrders``, then ``fulfillmentCreate`` with tracking.

Rate limits: an HTTP 429 waits ``Retry-After``; a ``THROTTLED`` GraphQL error waits until the
bucket holds the query's cost again (``extensions.cost.throttleStatus``). Each wait is capped at
``max_wait_s`` and a request is tried at most ``max_attempts`` times, then the store counts as
unavailable. A 5xx is retried the same way. 401/403, a transport error, a timeout or an
unreadable answer is :class:`StoreUnavailable`; ``userErrors`` of a mutation are
:class:`StoreRejected`. The access token is only ever put in the request header: no message,
exception or log line carries it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import anyio
import httpx
import msgspec

from domain.errors import InvalidField
from domain.store.base import ProductPush, StoreOrder, StoreOrderItem, StoreRejected, StoreTimeout, StoreUnavailable
from domain.values import money, parse_money

logger = logging.getLogger("dropsync.store.shopify")

MAX_ORDER_PAGES = 20
ORDERS_PAGE_SIZE = 50
LINE_ITEMS_PER_ORDER = 100

PRODUCT_SET = """
mutation productSet($input: ProductSetInput!, $synchronous: Boolean!) {
  productSet(synchronous: $synchronous, input: $input) {
    product { id }
    userErrors { field message code }
  }
}
""".strip()

OPEN_ORDERS = (
    """
query openOrders($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query, sortKey: CREATED_AT) {
    nodes {
      id
      name
      email
      currencyCode
      totalPriceSet { shopMoney { amount currencyCode } }
      customer { displayName }
      shippingAddress { name address1 address2 city province zip country }
      lineItems(first: %d) { nodes { sku name quantity originalUnitPriceSet { shopMoney { amount } } } }
    }
    pageInfo { hasNextPage endCursor }
  }
}
""".strip()
    % LINE_ITEMS_PER_ORDER
)

FULFILLMENT_ORDERS = """
query fulfillmentOrders($id: ID!) {
  order(id: $id) {
    id
    fulfillmentOrders(first: 20) { nodes { id status } }
  }
}
""".strip()

FULFILLMENT_CREATE = """
mutation fulfillmentCreate($fulfillment: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $fulfillment) {
    fulfillment { id status }
    userErrors { field message }
  }
}
""".strip()

FULFILLABLE = frozenset({"OPEN", "IN_PROGRESS"})
_SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")


@dataclass(frozen=True, slots=True)
class ShopifySettings:
    """Process-wide settings of the Shopify client (the shop and token are each user's)."""

    api_version: str = "2025-04"
    base_url: str | None = None  # e.g. "http://127.0.0.1:8123" for a fake; None = https://{shop}
    timeout_s: float = 10.0
    max_attempts: int = 4
    max_wait_s: float = 10.0


class ShopifyStore:
    name = "shopify"

    def __init__(self, *, shop_domain: str, access_token: str, settings: ShopifySettings) -> None:
        if not _SHOP_DOMAIN.fullmatch(shop_domain):
            raise StoreUnavailable(f"{shop_domain!r} is not a *.myshopify.com shop domain")
        base = settings.base_url.rstrip("/") if settings.base_url else f"https://{shop_domain}"
        self.endpoint = f"{base}/admin/api/{settings.api_version}/graphql.json"
        self.shop_domain = shop_domain
        self.settings = settings
        self._client = httpx.AsyncClient(
            timeout=settings.timeout_s,
            follow_redirects=False,
            headers={"X-Shopify-Access-Token": access_token, "Accept": "application/json"},
        )

    def __repr__(self) -> str:  # never the token
        return f"ShopifyStore({self.shop_domain!r})"

    async def __aenter__(self) -> ShopifyStore:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._client.aclose()

    # --- the three operations ------------------------------------------------------------------

    async def push_product(self, product: ProductPush) -> str:
        variant: dict[str, Any] = {
            "optionValues": [{"optionName": "Title", "name": "Default Title"}],
            "sku": product.sku,
            "price": money(product.price_cents),
        }
        if product.cost_cents is not None:
            variant["inventoryItem"] = {"cost": money(product.cost_cents)}
        product_input: dict[str, Any] = {
            "title": product.title,
            "descriptionHtml": product.description,
            "status": product.status.upper(),
            "productOptions": [{"name": "Title", "values": [{"name": "Default Title"}]}],
            "variants": [variant],
        }
        if product.store_id and product.store_id.startswith("gid://shopify/Product/"):
            product_input["id"] = product.store_id
        data = await self._graphql(PRODUCT_SET, {"input": product_input, "synchronous": True})
        payload = _field(data, "productSet")
        _raise_user_errors(payload, f"product {product.sku!r}")
        store_id = (payload.get("product") or {}).get("id")
        if not isinstance(store_id, str):
            raise StoreUnavailable("Shopify accepted the product but returned no id")
        return store_id

    async def fetch_orders(self) -> list[StoreOrder]:
        orders: list[StoreOrder] = []
        after: str | None = None
        for _ in range(MAX_ORDER_PAGES):
            variables = {"first": ORDERS_PAGE_SIZE, "after": after, "query": "status:open"}
            connection = _field(await self._graphql(OPEN_ORDERS, variables), "orders")
            for node in connection.get("nodes") or []:
                orders.append(_order(node))
            page = connection.get("pageInfo") or {}
            if not page.get("hasNextPage"):
                break
            after = page.get("endCursor")
        return orders

    async def create_fulfillment(self, store_order_id: str, *, carrier: str, tracking_number: str) -> str:
        order = _field(await self._graphql(FULFILLMENT_ORDERS, {"id": store_order_id}), "order")
        if not order:
            raise StoreRejected(f"Shopify has no order {store_order_id}")
        open_ids = [
            node["id"]
            for node in (order.get("fulfillmentOrders") or {}).get("nodes") or []
            if node.get("status") in FULFILLABLE
        ]
        if not open_ids:
            raise StoreRejected(f"Shopify order {store_order_id} has nothing left to fulfil")
        fulfillment = {
            "lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fid} for fid in open_ids],
            "trackingInfo": {"company": carrier, "number": tracking_number},
            "notifyCustomer": False,
        }
        payload = _field(await self._graphql(FULFILLMENT_CREATE, {"fulfillment": fulfillment}), "fulfillmentCreate")
        _raise_user_errors(payload, f"the fulfillment of {store_order_id}")
        fulfillment_id = (payload.get("fulfillment") or {}).get("id")
        if not isinstance(fulfillment_id, str):
            raise StoreUnavailable("Shopify accepted the fulfillment but returned no id")
        return fulfillment_id

    # --- one GraphQL request, with retries on rate limits ---------------------------------------

    async def _graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        body = msgspec.json.encode({"query": query, "variables": variables})
        for attempt in range(1, self.settings.max_attempts + 1):
            last = attempt == self.settings.max_attempts
            response = await self._post(body)
            if response.status_code in {401, 403}:
                raise StoreUnavailable(
                    f"Shopify refused the access token for {self.shop_domain} (HTTP {response.status_code}):"
                    " check the store settings"
                )
            if response.status_code == 429 or response.status_code >= 500:
                if last:
                    break
                wait = _retry_after(response) if response.status_code == 429 else 0.5 * attempt
                await self._wait(wait, f"HTTP {response.status_code}")
                continue
            if response.status_code != 200:
                raise StoreUnavailable(f"Shopify answered HTTP {response.status_code}")
            try:
                answer = msgspec.json.decode(response.content)
            except msgspec.DecodeError:
                raise StoreUnavailable("Shopify answered with something that is not JSON") from None
            if not isinstance(answer, dict):
                raise StoreUnavailable("Shopify answered with an unexpected JSON document")
            errors = answer.get("errors")
            if errors:
                if _throttled(errors):
                    if last:
                        break
                    await self._wait(_throttle_wait(answer), "THROTTLED")
                    continue
                raise StoreUnavailable(f"Shopify answered with an error: {_messages(errors)}")
            data = answer.get("data")
            if not isinstance(data, dict):
                raise StoreUnavailable("Shopify answered without data")
            return data
        raise StoreUnavailable(f"Shopify kept rate-limiting or failing after {self.settings.max_attempts} attempts")

    async def _post(self, body: bytes) -> httpx.Response:
        try:
            return await self._client.post(self.endpoint, content=body, headers={"Content-Type": "application/json"})
        except httpx.TimeoutException:
            raise StoreTimeout(f"Shopify did not answer within {self.settings.timeout_s:g}s") from None
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"Shopify could not be reached ({type(exc).__name__})") from None

    async def _wait(self, seconds: float, why: str) -> None:
        wait = min(max(seconds, 0.0), self.settings.max_wait_s)
        logger.info("Shopify %s for %s: waiting %.2fs before trying again", why, self.shop_domain, wait)
        await anyio.sleep(wait)


def _field(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise StoreUnavailable(f"Shopify answered with an unexpected {name!r}")
    return value


def _raise_user_errors(payload: dict[str, Any], what: str) -> None:
    errors = payload.get("userErrors") or []
    if errors:
        raise StoreRejected(f"Shopify refused {what}: {_messages(errors)}")


def _messages(errors: Any) -> str:
    if not isinstance(errors, list):
        return str(errors)[:300]
    parts = []
    for error in errors[:5]:
        if isinstance(error, dict):
            field = error.get("field")
            prefix = f"{'.'.join(map(str, field))}: " if isinstance(field, list) and field else ""
            parts.append(f"{prefix}{error.get('message', error)}")
        else:
            parts.append(str(error))
    return "; ".join(parts)[:500]


def _throttled(errors: Any) -> bool:
    return isinstance(errors, list) and any(
        isinstance(error, dict) and (error.get("extensions") or {}).get("code") == "THROTTLED" for error in errors
    )


def _throttle_wait(answer: dict[str, Any]) -> float:
    """Seconds until the bucket holds the requested cost again (1 s when Shopify does not say)."""
    cost = (answer.get("extensions") or {}).get("cost") or {}
    status = cost.get("throttleStatus") or {}
    try:
        needed = float(cost.get("requestedQueryCost", 0)) - float(status.get("currentlyAvailable", 0))
        rate = float(status.get("restoreRate", 0))
    except (TypeError, ValueError):
        return 1.0
    if rate <= 0:
        return 1.0
    return max(needed, 0.0) / rate


def _retry_after(response: httpx.Response) -> float:
    try:
        return float(response.headers.get("Retry-After", "1"))
    except ValueError:
        return 1.0


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _cents(value: Any, what: str) -> int:
    try:
        return parse_money(str(value), what)
    except InvalidField:
        raise StoreUnavailable(f"Shopify sent an amount we cannot read for {what}: {value!r}") from None


def _order(node: dict[str, Any]) -> StoreOrder:
    """A Shopify order as ours; strings cut to our column sizes."""
    store_id = node.get("id")
    name = node.get("name")
    if not isinstance(store_id, str) or not isinstance(name, str):
        raise StoreUnavailable("Shopify sent an order without id or name")
    address = node.get("shippingAddress") or {}
    customer = node.get("customer") or {}
    lines = [
        str(address[key]) for key in ("address1", "address2", "city", "province", "zip", "country") if address.get(key)
    ]
    items = []
    for line in (node.get("lineItems") or {}).get("nodes") or []:
        price = ((line.get("originalUnitPriceSet") or {}).get("shopMoney") or {}).get("amount", "0")
        quantity = line.get("quantity")
        if not isinstance(quantity, int) or quantity < 1:
            continue
        items.append(
            StoreOrderItem(
                sku=_text(line.get("sku") or line.get("name") or "item", 100),
                quantity=quantity,
                unit_price_cents=_cents(price, f"a line of {name}"),
            )
        )
    total = ((node.get("totalPriceSet") or {}).get("shopMoney") or {}).get("amount", "0")
    return StoreOrder(
        store_order_id=store_id[:255],
        external_id=name.removeprefix("#")[:100],
        customer_name=_text(address.get("name") or customer.get("displayName"), 200),
        customer_email=_text(node.get("email"), 320) or None,
        customer_address=", ".join(lines)[:1000],
        items=items,
        total_cents=_cents(total, f"the total of {name}"),
        currency=_text(node.get("currencyCode"), 3) or "USD",
    )
