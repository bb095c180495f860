"""Real HTTP servers on loopback that stand in for the outside world: a seller's feed server and a
fake Shopify that checks each request the way the GraphQL Admin API would.

Both run ``http.server.ThreadingHTTPServer`` in a daemon thread on ``127.0.0.1:<free port>``.
Every wait inside a handler is bounded (``HOLD_LIMIT_S``) so a test that forgets to release a
held request cannot hang the suite.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOLD_LIMIT_S = 15.0


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextmanager
def _serving(handler: type[BaseHTTPRequestHandler], owner: Any) -> Iterator[str]:
    server = _QuietServer(("127.0.0.1", 0), handler)
    server.owner = owner  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- the feed server ---------------------------------------------------------------------------------


@dataclass
class FeedRoute:
    body: bytes = b""
    content_type: str = "application/json"
    status: int = 200
    chunked: bool = False  # no Content-Length: the size is only known by reading
    redirect_to: str | None = None
    hold: bool = False  # wait for FeedServer.release() before answering


class FeedServer:
    """Serves whatever the test puts at a path; records which paths were asked for."""

    def __init__(self) -> None:
        self.routes: dict[str, FeedRoute] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.arrived = threading.Event()  # a held request has arrived
        self.released = threading.Event()
        self.url = ""

    @contextmanager
    def running(self) -> Iterator[FeedServer]:
        with _serving(_FeedHandler, self) as url:
            self.url = url
            yield self
        self.released.set()

    def serve(self, path: str, body: bytes | str, content_type: str = "application/json", **options: Any) -> str:
        """Serve ``body`` at ``path``; returns the full URL."""
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = FeedRoute(body=data, content_type=content_type, **options)
        return self.url + path

    def serve_json(self, path: str, rows: Any) -> str:
        return self.serve(path, json.dumps(rows))

    def hits(self, path: str) -> int:
        return sum(1 for requested, _ in self.requests if requested == path)

    def hold_next(self) -> None:
        self.arrived.clear()
        self.released.clear()

    def release(self) -> None:
        self.released.set()


class _FeedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        feeds: FeedServer = self.server.owner  # type: ignore[attr-defined]
        feeds.requests.append((self.path, {name.lower(): value for name, value in self.headers.items()}))
        route = feeds.routes.get(self.path)
        if route is None:
            self._answer(404, b'{"error": "no such feed"}', "application/json")
            return
        if route.hold:
            feeds.arrived.set()
            feeds.released.wait(HOLD_LIMIT_S)
        if route.redirect_to is not None:
            self.send_response(302)
            self.send_header("Location", route.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if route.chunked:
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(route.body), 16_384):
                chunk = route.body[start : start + 16_384]
                try:
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                except OSError:
                    return  # the client stopped reading: that is the point of the size cap
            self.wfile.write(b"0\r\n\r\n")
            return
        self._answer(route.status, route.body, route.content_type)

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            return


# --- the fake Shopify -------------------------------------------------------------------------------------

API_VERSION = "2025-04"
GRAPHQL_PATH = f"/admin/api/{API_VERSION}/graphql.json"
_OPERATION = re.compile(r"^\s*(query|mutation)\s+(\w+)\s*[({]")
STATUSES = {"ACTIVE", "DRAFT", "ARCHIVED"}


@dataclass
class ShopOrder:
    """An order in a fake shop; ``fulfillment_status`` of its one fulfillment order."""

    number: int
    email: str
    name: str
    lines: list[tuple[str, int, str]]  # sku, quantity, unit price
    total: str
    currency: str = "USD"
    fulfillment_status: str = "OPEN"
    tracking: list[dict[str, Any]] = field(default_factory=list)

    @property
    def gid(self) -> str:
        return f"gid://shopify/Order/{self.number}"

    @property
    def fulfillment_order_gid(self) -> str:
        return f"gid://shopify/FulfillmentOrder/{self.number}"

    def node(self) -> dict[str, Any]:
        return {
            "id": self.gid,
            "name": f"#{self.number}",
            "email": self.email,
            "currencyCode": self.currency,
            "totalPriceSet": {"shopMoney": {"amount": self.total, "currencyCode": self.currency}},
            "customer": {"displayName": self.name},
            "shippingAddress": {
                "name": self.name,
                "address1": "1 Main St",
                "address2": None,
                "city": "Springfield",
                "province": "OR",
                "zip": "97477",
                "country": "United States",
            },
            "lineItems": {
                "nodes": [
                    {
                        "sku": sku,
                        "name": f"Item {sku}",
                        "quantity": quantity,
                        "originalUnitPriceSet": {"shopMoney": {"amount": price}},
                    }
                    for sku, quantity, price in self.lines
                ]
            },
        }


@dataclass
class Shop:
    """One shop of the fake, reached with its own access token."""

    token: str
    domain: str
    products: dict[str, dict[str, Any]] = field(default_factory=dict)  # gid -> the last input
    orders: list[ShopOrder] = field(default_factory=list)
    reject_skus: set[str] = field(default_factory=set)
    throttle_next: int = 0  # GraphQL THROTTLED answers to give before answering
    rate_limit_next: int = 0  # HTTP 429 answers to give before answering
    fail_next: int = 0  # HTTP 500 answers to give before answering
    requests: list[dict[str, Any]] = field(default_factory=list)  # every request: operation and variables
    hold: threading.Event | None = None  # if set, productSet waits for it (bounded)
    arrived: threading.Event = field(default_factory=threading.Event)

    def add_order(
        self, *lines: tuple[str, int, str], email: str = "buyer@example.com", name: str = "Ada Buyer"
    ) -> ShopOrder:
        number = 1000 + len(self.orders) + 1
        total = sum((Decimal(price) * quantity for _, quantity, price in lines), Decimal("0"))
        order = ShopOrder(number=number, email=email, name=name, lines=list(lines), total=f"{total:.2f}")
        self.orders.append(order)
        return order

    def operations(self) -> list[str]:
        return [request["operation"] for request in self.requests]


@dataclass(frozen=True)
class Request:
    shop: Shop
    kind: str  # query | mutation
    operation: str  # the operation's name
    root: str  # the root field it asks for
    variables: dict[str, Any]


def _injected_failure(shop: Shop) -> tuple[int, dict[str, str], Any] | None:
    """The failure the test asked for, if any is left (call with the lock held)."""
    if shop.rate_limit_next > 0:
        shop.rate_limit_next -= 1
        return 429, {"Retry-After": "0.05"}, {"errors": "Exceeded 2 calls per second for api client."}
    if shop.fail_next > 0:
        shop.fail_next -= 1
        return 500, {}, {"errors": "Internal Server Error"}
    if shop.throttle_next > 0:
        shop.throttle_next -= 1
        return 200, {}, _throttled()
    return None


class FakeShopify:
    """The GraphQL Admin API as far as dropsync uses it, with the checks the real one makes."""

    def __init__(self) -> None:
        self.shops: dict[str, Shop] = {}
        self.bad_requests: list[str] = []  # requests the real API would refuse as malformed
        self.url = ""
        self._lock = threading.Lock()

    @contextmanager
    def running(self) -> Iterator[FakeShopify]:
        with _serving(_ShopifyHandler, self) as url:
            self.url = url
            yield self

    def new_shop(self) -> Shop:
        token = f"shpat_{secrets.token_hex(16)}"
        shop = Shop(token=token, domain=f"shop-{secrets.token_hex(4)}.myshopify.com")
        self.shops[token] = shop
        return shop

    # Each handler returns (status, headers, body as JSON-able).

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], Any]:
        checked = self._check(path, headers, raw)
        if not isinstance(checked, Request):
            return checked
        shop = checked.shop
        with self._lock:
            shop.requests.append({"operation": checked.operation, "variables": checked.variables})
            injected = _injected_failure(shop)
        if injected is not None:
            return injected
        handler = {
            ("mutation", "productSet"): self._product_set,
            ("query", "orders"): self._orders,
            ("query", "order"): self._fulfillment_orders,
            ("mutation", "fulfillmentCreate"): self._fulfillment_create,
        }.get((checked.kind, checked.root))
        if handler is None:
            return self._bad(400, f"unexpected operation {checked.operation}")
        return handler(shop, checked.variables)

    def _check(self, path: str, headers: dict[str, str], raw: bytes) -> Request | tuple[int, dict[str, str], Any]:
        """What the real API checks before running anything: path, token, content type, document."""
        if path != GRAPHQL_PATH:
            return self._bad(404, f"unknown path {path}")
        shop = self.shops.get(headers.get("x-shopify-access-token", ""))
        if shop is None:
            return 401, {}, {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
        if not headers.get("content-type", "").startswith("application/json"):
            return self._bad(415, "Content-Type must be application/json")
        try:
            body = json.loads(raw)
        except ValueError:
            return self._bad(400, "body is not JSON")
        query, variables = body.get("query"), body.get("variables")
        match = _OPERATION.match(query) if isinstance(query, str) else None
        if match is None or not isinstance(variables, dict) or not isinstance(query, str):
            return self._bad(400, "a GraphQL document with a named operation and variables is required")
        root = re.match(r"\s*(\w+)\s*\(", query[query.index("{") + 1 :])
        return Request(shop, match.group(1), match.group(2), root.group(1) if root else "", variables)

    def _bad(self, status: int, why: str) -> tuple[int, dict[str, str], Any]:
        self.bad_requests.append(why)
        return status, {}, {"errors": [{"message": why}]}

    def _product_set(self, shop: Shop, variables: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        product = variables.get("input")
        problems = _product_input_problems(product, variables.get("synchronous"))
        if problems:
            return self._bad(200, "; ".join(problems))
        assert isinstance(product, dict)
        if shop.hold is not None:
            shop.arrived.set()
            shop.hold.wait(HOLD_LIMIT_S)
        sku = product["variants"][0]["sku"]
        if sku in shop.reject_skus:
            errors = [
                {"field": ["input", "variants", "0", "sku"], "message": f"SKU {sku} is blocked", "code": "INVALID"}
            ]
            return 200, {}, {"data": {"productSet": {"product": None, "userErrors": errors}}}
        gid = product.get("id")
        if gid is not None and gid not in shop.products:
            errors = [{"field": ["input", "id"], "message": "Product does not exist", "code": "PRODUCT_DOES_NOT_EXIST"}]
            return 200, {}, {"data": {"productSet": {"product": None, "userErrors": errors}}}
        gid = gid or f"gid://shopify/Product/{8_000_000_000 + len(shop.products) + 1}"
        shop.products[gid] = product
        return 200, {}, {"data": {"productSet": {"product": {"id": gid}, "userErrors": []}}, "extensions": _cost()}

    def _orders(self, shop: Shop, variables: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        first, after = variables.get("first"), variables.get("after")
        if not isinstance(first, int) or not 1 <= first <= 250:
            return self._bad(200, "first must be between 1 and 250")
        if variables.get("query") != "status:open":
            return self._bad(200, "expected the status:open filter")
        start = int(after) if isinstance(after, str) else 0
        open_orders = [order for order in shop.orders if order.fulfillment_status != "CLOSED"]
        page = open_orders[start : start + first]
        end = start + len(page)
        connection = {
            "nodes": [order.node() for order in page],
            "pageInfo": {"hasNextPage": end < len(open_orders), "endCursor": str(end) if page else None},
        }
        return 200, {}, {"data": {"orders": connection}, "extensions": _cost()}

    def _find_order(self, shop: Shop, gid: Any) -> ShopOrder | None:
        return next((order for order in shop.orders if order.gid == gid), None)

    def _fulfillment_orders(self, shop: Shop, variables: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        order = self._find_order(shop, variables.get("id"))
        if order is None:
            return 200, {}, {"data": {"order": None}}
        nodes = [{"id": order.fulfillment_order_gid, "status": order.fulfillment_status}]
        return 200, {}, {"data": {"order": {"id": order.gid, "fulfillmentOrders": {"nodes": nodes}}}}

    def _fulfillment_create(self, shop: Shop, variables: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        fulfillment = variables.get("fulfillment")
        if not isinstance(fulfillment, dict) or not isinstance(fulfillment.get("lineItemsByFulfillmentOrder"), list):
            return self._bad(200, "fulfillment.lineItemsByFulfillmentOrder is required")
        tracking = fulfillment.get("trackingInfo") or {}
        if not isinstance(tracking.get("company"), str) or not isinstance(tracking.get("number"), str):
            return self._bad(200, "trackingInfo needs company and number")
        for entry in fulfillment["lineItemsByFulfillmentOrder"]:
            fulfillment_order_id = entry.get("fulfillmentOrderId") if isinstance(entry, dict) else None
            order = next((o for o in shop.orders if o.fulfillment_order_gid == fulfillment_order_id), None)
            if order is None or order.fulfillment_status == "CLOSED":
                errors = [{"field": ["fulfillment"], "message": "Fulfillment order is not open"}]
                return 200, {}, {"data": {"fulfillmentCreate": {"fulfillment": None, "userErrors": errors}}}
            order.fulfillment_status = "CLOSED"
            order.tracking.append(tracking)
        gid = f"gid://shopify/Fulfillment/{secrets.randbelow(10**9)}"
        payload = {"fulfillment": {"id": gid, "status": "SUCCESS"}, "userErrors": []}
        return 200, {}, {"data": {"fulfillmentCreate": payload}, "extensions": _cost()}


def _product_input_problems(product: Any, synchronous: Any) -> list[str]:
    if synchronous is not True:
        return ["synchronous must be true to get the product back"]
    if not isinstance(product, dict):
        return ["input is required"]
    problems = []
    if not isinstance(product.get("title"), str) or not product["title"]:
        problems.append("input.title is required")
    if product.get("status") not in STATUSES:
        problems.append(f"input.status must be one of {sorted(STATUSES)}")
    options = product.get("productOptions")
    if not isinstance(options, list) or not options:
        problems.append("input.productOptions is required with variants")
    variants = product.get("variants")
    if not isinstance(variants, list) or len(variants) != 1:
        return [*problems, "exactly one variant expected"]
    variant = variants[0]
    if not isinstance(variant.get("optionValues"), list) or not variant["optionValues"]:
        problems.append("variants.0.optionValues is required")
    if not isinstance(variant.get("sku"), str) or not variant["sku"]:
        problems.append("variants.0.sku is required")
    for key, value in [("price", variant.get("price")), ("cost", (variant.get("inventoryItem") or {}).get("cost"))]:
        if value is None and key == "cost":
            continue
        try:
            if not isinstance(value, str) or Decimal(value) < 0:
                raise InvalidOperation
        except InvalidOperation:
            problems.append(f"variants.0.{key} must be a Money string")
    return problems


def _cost() -> dict[str, Any]:
    return {
        "cost": {
            "requestedQueryCost": 10,
            "actualQueryCost": 10,
            "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1990, "restoreRate": 100.0},
        }
    }


def _throttled() -> dict[str, Any]:
    return {
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
        "extensions": {
            "cost": {
                "requestedQueryCost": 10,
                "actualQueryCost": None,
                "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 5, "restoreRate": 100.0},
            }
        },
    }


class _ShopifyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        fake: FakeShopify = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        status, extra, body = fake.handle(self.path, headers, raw)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra.items():
            self.send_header(name, value)
        try:
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            return  # the client gave up waiting (a timeout test)

    def do_GET(self) -> None:
        self.send_response(405)
        self.send_header("Content-Length", "0")
        self.end_headers()
