"""The Shopify connector against a fake Shopify on loopback that checks every request the way the
GraphQL Admin API would: product sync (single and bulk, per-item results), order fetch without
duplicates, fulfillments on shipment, rate limits, errors — and the access token never logged."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

from tests.conftest import BACKENDS, Account, new_user, server_with
from tests.support.api import latest_event_id
from tests.support.fakes import API_VERSION, FakeShopify, Shop
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.anyio

Event = dict[str, Any]
SHOPIFY_TIMEOUT_S = 3.0


@pytest.fixture(scope="module")
def shopify() -> Iterator[FakeShopify]:
    with FakeShopify().running() as fake:
        yield fake


@pytest.fixture(scope="module", params=BACKENDS)
def store_server(request: pytest.FixtureRequest, shopify: FakeShopify) -> Iterator[ServerProcess]:
    """A server whose Shopify connector talks to the fake."""
    settings = {
        "DROPSYNC_SHOPIFY_BASE_URL": shopify.url,
        "DROPSYNC_SHOPIFY_API_VERSION": API_VERSION,
        "DROPSYNC_SHOPIFY_TIMEOUT_S": str(SHOPIFY_TIMEOUT_S),
    }
    with server_with(request.param, settings) as process:
        yield process
        output = process.output()
    # Whatever happened in this module, no shop's access token reached the server's log,
    # and every request was one the real API would have accepted as well-formed.
    for token in shopify.shops:
        assert token not in output
    assert shopify.bad_requests == []


@pytest.fixture
async def http(store_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=store_server.url, timeout=20) as client:
        yield client


@pytest.fixture
async def owner(http: httpx.AsyncClient) -> Account:
    return await new_user(http, "owner")


@pytest.fixture
async def shop(http: httpx.AsyncClient, owner: Account, shopify: FakeShopify) -> Shop:
    """A fresh shop of the fake, connected in the owner's settings."""
    shop = shopify.new_shop()
    store = {"shopify_domain": shop.domain, "shopify_access_token": shop.token}
    response = await http.patch("/settings", json={"store": store}, headers=owner.headers)
    assert response.status_code == 200, response.text
    assert response.json()["store"]["connected"] is True
    assert shop.token not in response.text
    return shop


async def create_product(http: httpx.AsyncClient, account: Account, sku: str, **fields: Any) -> dict[str, Any]:
    body = {"sku": sku, "name": f"Product {sku}", "price": "12.99", "stock": 10, **fields}
    response = await http.post("/products", json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    product: dict[str, Any] = response.json()
    return product


async def get(http: httpx.AsyncClient, account: Account, path: str) -> dict[str, Any]:
    response = await http.get(path, headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def events_after(http: httpx.AsyncClient, account: Account, after: int) -> list[Event]:
    events: list[Event] = (await get(http, account, f"/events/history?after={after}&limit=1000"))["events"]
    return events


async def post(
    http: httpx.AsyncClient, account: Account, path: str, body: Any = None
) -> tuple[httpx.Response, list[Event]]:
    before = await latest_event_id(http, account)
    response = await http.post(path, json=body, headers=account.headers)
    return response, await events_after(http, account, before)


def types(events: list[Event]) -> list[str]:
    return [event["type"] for event in events]


# --- pushing products ------------------------------------------------------------------------------------


async def test_sync_sends_product_set_and_records_product_synced(
    http: httpx.AsyncClient, owner: Account, shop: Shop, shopify: FakeShopify
) -> None:
    product = await create_product(http, owner, "MUG-1", cost_price="4.20", status="draft", description="Blue")
    response, events = await post(http, owner, f"/products/{product['id']}/sync")
    assert response.status_code == 200, response.text
    synced = response.json()
    assert synced["shopify_id"].startswith("gid://shopify/Product/")
    assert synced == await get(http, owner, f"/products/{product['id']}")
    assert response.headers["etag"] == f'"v{synced["version"]}"'
    assert [(event["type"], event["data"]) for event in events] == [
        (
            "product_synced",
            {"product_id": product["id"], "shopify_id": synced["shopify_id"], "synced_at": synced["synced_at"]},
        )
    ]
    sent = shop.products[synced["shopify_id"]]
    assert sent["title"] == "Product MUG-1"
    assert sent["descriptionHtml"] == "Blue"
    assert sent["status"] == "DRAFT"
    assert sent["variants"][0]["sku"] == "MUG-1"
    assert sent["variants"][0]["price"] == "12.99"
    assert sent["variants"][0]["inventoryItem"] == {"cost": "4.20"}
    assert "id" not in sent
    # a second push updates the same Shopify product
    await http.patch(f"/products/{product['id']}", json={"price": "14.00"}, headers=owner.headers)
    response, _ = await post(http, owner, f"/products/{product['id']}/sync")
    assert response.json()["shopify_id"] == synced["shopify_id"]
    assert shop.requests[-1]["variables"]["input"]["id"] == synced["shopify_id"]
    assert shop.products[synced["shopify_id"]]["variants"][0]["price"] == "14.00"
    assert shop.operations() == ["productSet", "productSet"]
    assert shopify.bad_requests == []


async def test_bulk_sync_reports_each_item_when_the_store_refuses_one(
    http: httpx.AsyncClient, owner: Account, shop: Shop
) -> None:
    products = [await create_product(http, owner, sku) for sku in ("B-1", "B-2", "B-3")]
    shop.reject_skus.add("B-2")
    ids = [product["id"] for product in products]
    response, events = await post(http, owner, "/products/bulk/sync-shopify", {"product_ids": ids})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["total"], body["synced"], body["failed"]) == (3, 2, 1)
    assert [item["ok"] for item in body["items"]] == [True, False, True]
    assert "SKU B-2 is blocked" in body["items"][1]["error"]
    assert [event["data"]["product_id"] for event in events] == [ids[0], ids[2]]
    assert types(events) == ["product_synced", "product_synced"]
    assert (await get(http, owner, f"/products/{ids[1]}"))["shopify_id"] is None
    assert (await get(http, owner, f"/products/{ids[2]}"))["shopify_id"] == body["items"][2]["shopify_id"]


async def test_a_refused_single_sync_is_502_and_changes_nothing(
    http: httpx.AsyncClient, owner: Account, shop: Shop
) -> None:
    product = await create_product(http, owner, "NOPE")
    shop.reject_skus.add("NOPE")
    response, events = await post(http, owner, f"/products/{product['id']}/sync")
    assert response.status_code == 502, response.text
    assert "SKU NOPE is blocked" in response.json()["detail"]
    assert events == []
    assert await get(http, owner, f"/products/{product['id']}") == product


@pytest.mark.parametrize("limit", ["throttle_next", "rate_limit_next", "fail_next"])
async def test_rate_limits_and_passing_errors_are_retried(
    http: httpx.AsyncClient, owner: Account, shop: Shop, limit: str
) -> None:
    product = await create_product(http, owner, "RETRY")
    setattr(shop, limit, 2)
    response, events = await post(http, owner, f"/products/{product['id']}/sync")
    assert response.status_code == 200, response.text
    assert shop.operations() == ["productSet"] * 3
    assert types(events) == ["product_synced"]


@pytest.mark.parametrize("limit", ["throttle_next", "rate_limit_next"])
async def test_a_store_that_keeps_limiting_is_502(
    http: httpx.AsyncClient, owner: Account, shop: Shop, limit: str
) -> None:
    product = await create_product(http, owner, "LIMITED")
    setattr(shop, limit, 100)
    response, events = await post(http, owner, f"/products/{product['id']}/sync")
    assert response.status_code == 502, response.text
    assert "attempts" in response.json()["detail"]
    assert len(shop.requests) == 4  # bounded
    assert events == []
    response, events = await post(http, owner, "/products/bulk/sync-shopify", {"product_ids": [product["id"]]})
    assert response.status_code == 502, response.text
    assert events == []


async def test_a_wrong_token_is_502_and_never_shown(
    http: httpx.AsyncClient, owner: Account, shopify: FakeShopify, store_server: ServerProcess
) -> None:
    wrong = "shpat_wrong_0123456789abcdef"
    store = {"shopify_domain": "wrong-shop.myshopify.com", "shopify_access_token": wrong}
    assert (await http.patch("/settings", json={"store": store}, headers=owner.headers)).status_code == 200
    product = await create_product(http, owner, "TOKEN")
    response, events = await post(http, owner, f"/products/{product['id']}/sync")
    assert response.status_code == 502, response.text
    assert "access token" in response.json()["detail"]
    assert wrong not in response.text
    assert events == []
    assert wrong not in store_server.output()


async def test_a_store_slower_than_the_timeout_is_504(http: httpx.AsyncClient, owner: Account, shop: Shop) -> None:
    product = await create_product(http, owner, "SLOW")
    shop.hold = threading.Event()
    try:
        with anyio.fail_after(SHOPIFY_TIMEOUT_S + 5):
            response, events = await post(http, owner, f"/products/{product['id']}/sync")
    finally:
        shop.hold.set()
    assert response.status_code == 504, response.text
    assert events == []


async def test_no_transaction_is_held_while_the_store_is_called(
    http: httpx.AsyncClient, owner: Account, shop: Shop
) -> None:
    pushed = await create_product(http, owner, "PUSHED")
    other = await create_product(http, owner, "OTHER")
    shop.hold = threading.Event()
    shop.arrived.clear()
    results: dict[str, httpx.Response] = {}

    async def sync() -> None:
        results["sync"] = await http.post(f"/products/{pushed['id']}/sync", headers=owner.headers)

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(sync)
            assert await anyio.to_thread.run_sync(shop.arrived.wait, 5.0)
            # the push is waiting in the store: the same user's writes go on meanwhile
            with anyio.fail_after(1.0):
                patched = await http.patch(f"/products/{other['id']}", json={"stock": 3}, headers=owner.headers)
            assert patched.status_code == 200, patched.text
            shop.hold.set()
    finally:
        shop.hold.set()
    assert results["sync"].status_code == 200, results["sync"].text


# --- fetching orders ------------------------------------------------------------------------------------


async def test_fetch_creates_each_new_order_once(http: httpx.AsyncClient, owner: Account, shop: Shop) -> None:
    mug = await create_product(http, owner, "MUG")
    shop.add_order(("MUG", 2, "12.50"), ("NOT-MINE", 1, "3.00"), email="ada@example.com", name="Ada Lovelace")
    shop.add_order(("MUG", 1, "12.50"))
    response, events = await post(http, owner, "/orders/fetch")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["fetched"], body["created"]) == (2, 2)
    assert types(events) == ["order_created", "order_created"]
    first = body["items"][0]
    assert first == await get(http, owner, f"/orders/{first['id']}")
    assert events[0]["data"] == first
    assert first["external_id"] == "1001"
    assert first["customer"] == {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "address": "1 Main St, Springfield, OR, 97477, United States",
    }
    assert first["items"] == [
        {"product_id": mug["id"], "sku": "MUG", "quantity": 2, "unit_price": "12.50"},
        {"product_id": None, "sku": "NOT-MINE", "quantity": 1, "unit_price": "3.00"},
    ]
    assert (first["total"], first["currency"], first["status"]) == ("28.00", "USD", "pending")
    request = shop.requests[0]
    assert request["operation"] == "openOrders"
    assert request["variables"]["query"] == "status:open"

    response, events = await post(http, owner, "/orders/fetch")
    assert (response.json()["fetched"], response.json()["created"], events) == (2, 0, [])
    shop.add_order(("MUG", 5, "12.50"))
    response, events = await post(http, owner, "/orders/fetch")
    assert (response.json()["created"], types(events)) == (1, ["order_created"])
    assert events[0]["data"]["external_id"] == "1003"
    assert (await get(http, owner, "/orders"))["total"] == 3


async def test_fetch_reads_every_page(http: httpx.AsyncClient, owner: Account, shop: Shop) -> None:
    for _ in range(60):
        shop.add_order(("ANY", 1, "1.00"))
    response, events = await post(http, owner, "/orders/fetch")
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 60
    assert len(events) == 60
    assert [request["variables"]["after"] for request in shop.requests] == [None, "50"]


async def test_fetch_from_an_unreachable_store_is_502(http: httpx.AsyncClient, owner: Account, shop: Shop) -> None:
    shop.add_order(("ANY", 1, "1.00"))
    shop.fail_next = 100
    response, events = await post(http, owner, "/orders/fetch")
    assert response.status_code == 502, response.text
    assert events == []
    assert (await get(http, owner, "/orders"))["total"] == 0


# --- shipping a store order -------------------------------------------------------------------------------


async def fetched_and_processed(http: httpx.AsyncClient, owner: Account, shop: Shop) -> dict[str, Any]:
    await create_product(http, owner, "SHIP-ME", stock=10)
    shop.add_order(("SHIP-ME", 2, "12.99"))
    order = (await post(http, owner, "/orders/fetch"))[0].json()["items"][0]
    response = await http.post(f"/orders/{order['id']}/process", headers=owner.headers)
    assert response.status_code == 200, response.text
    processed: dict[str, Any] = response.json()
    return processed


async def test_shipment_creates_a_fulfillment_with_tracking(
    http: httpx.AsyncClient, owner: Account, shop: Shop
) -> None:
    order = await fetched_and_processed(http, owner, shop)
    shipment = {"carrier": "UPS", "tracking_number": "1Z999"}
    response, events = await post(http, owner, f"/orders/{order['id']}/shipment", shipment)
    assert response.status_code == 200, response.text
    shipped = response.json()
    assert (shipped["status"], shipped["carrier"], shipped["tracking_number"]) == ("shipped", "UPS", "1Z999")
    assert types(events) == ["order_updated", "order_status_changed"]
    assert events[1]["data"] == {"order_id": order["id"], "old": "processing", "new": "shipped"}
    assert shop.orders[0].fulfillment_status == "CLOSED"
    assert shop.orders[0].tracking == [{"company": "UPS", "number": "1Z999"}]
    assert shop.operations()[-2:] == ["fulfillmentOrders", "fulfillmentCreate"]
    # a shipped order leaves the store's open orders; fetching again brings nothing new
    assert (await post(http, owner, "/orders/fetch"))[0].json()["fetched"] == 0


async def test_a_shipment_the_store_refuses_is_502_and_changes_nothing(
    http: httpx.AsyncClient, owner: Account, shop: Shop
) -> None:
    order = await fetched_and_processed(http, owner, shop)
    shop.orders[0].fulfillment_status = "CLOSED"  # fulfilled in the Shopify admin meanwhile
    response, events = await post(
        http, owner, f"/orders/{order['id']}/shipment", {"carrier": "UPS", "tracking_number": "1Z"}
    )
    assert response.status_code == 502, response.text
    assert "nothing left to fulfil" in response.json()["detail"]
    assert events == []
    assert await get(http, owner, f"/orders/{order['id']}") == order
