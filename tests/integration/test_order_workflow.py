"""Order workflows: fetch from the (local) store without duplicates, process (stock out, all or
nothing), shipment, and the status machine — each refusal a 409 that changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Account, require_postgres
from tests.support.api import orders_listed_as_read
from tests.support.servers import ServerProcess, postgres_database, sqlite_database

pytestmark = pytest.mark.anyio

Event = dict[str, Any]


async def create_product(client: httpx.AsyncClient, account: Account, sku: str, stock: int) -> dict[str, Any]:
    body = {"sku": sku, "name": sku, "price": "10.00", "stock": stock}
    response = await client.post("/products", json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    product: dict[str, Any] = response.json()
    return product


async def create_order(client: httpx.AsyncClient, account: Account, items: list[dict[str, Any]]) -> dict[str, Any]:
    response = await client.post("/orders", json={"items": items}, headers=account.headers)
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    return order


async def get(client: httpx.AsyncClient, account: Account, path: str) -> dict[str, Any]:
    response = await client.get(path, headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def post(
    client: httpx.AsyncClient, account: Account, path: str, body: Any = None
) -> tuple[httpx.Response, list[Event]]:
    """POST; the response and the events it recorded."""
    before = (await get(client, account, "/events/history?limit=1"))["latest_id"]
    response = await client.post(path, json=body, headers=account.headers)
    events: list[Event] = (await get(client, account, f"/events/history?after={before}&limit=1000"))["events"]
    return response, events


def types(events: list[Event]) -> list[str]:
    return [event["type"] for event in events]


def conflict(response: httpx.Response) -> str:
    assert response.status_code == 409, response.text
    detail: str = response.json()["detail"]
    return detail


async def set_status(client: httpx.AsyncClient, account: Account, order_id: int, status: str) -> httpx.Response:
    return await client.patch(f"/orders/{order_id}", json={"status": status}, headers=account.headers)


# --- process ----------------------------------------------------------------------------------------------


async def test_process_takes_the_items_out_of_stock(client: httpx.AsyncClient, alice: Account) -> None:
    mug = await create_product(client, alice, "MUG", stock=10)
    lamp = await create_product(client, alice, "LAMP", stock=6)
    order = await create_order(
        client,
        alice,
        [{"product_id": mug["id"], "quantity": 3}, {"sku": "LAMP", "quantity": 2}, {"sku": "MUG", "quantity": 1}],
    )
    response, events = await post(client, alice, f"/orders/{order['id']}/process")
    assert response.status_code == 200, response.text
    processed = response.json()
    assert processed["status"] == "processing"
    assert processed == await get(client, alice, f"/orders/{order['id']}")
    assert (await get(client, alice, f"/products/{mug['id']}"))["stock"] == 6
    assert (await get(client, alice, f"/products/{lamp['id']}"))["stock"] == 4
    assert types(events) == [
        "order_updated",
        "order_status_changed",
        "product_updated",
        "product_stock_changed",
        "product_updated",
        "product_stock_changed",
        "stock_low",
        "order_processed",
    ]
    assert events[0]["data"] == processed
    assert events[1]["data"] == {"order_id": order["id"], "old": "pending", "new": "processing"}
    assert events[3]["data"] == {"product_id": mug["id"], "sku": "MUG", "old": 10, "new": 6}
    assert events[5]["data"] == {"product_id": lamp["id"], "sku": "LAMP", "old": 6, "new": 4}
    assert events[6]["data"] == {"product_id": lamp["id"], "sku": "LAMP", "stock": 4, "threshold": 5}
    assert events[7]["data"] == processed

    response, events = await post(client, alice, f"/orders/{order['id']}/process")
    assert "already processed" in conflict(response)
    assert events == []
    assert (await get(client, alice, f"/products/{mug['id']}"))["stock"] == 6


async def test_short_stock_is_409_naming_it_and_nothing_changes(client: httpx.AsyncClient, alice: Account) -> None:
    plenty = await create_product(client, alice, "PLENTY", stock=50)
    short = await create_product(client, alice, "SHORT", stock=2)
    order = await create_order(client, alice, [{"sku": "PLENTY", "quantity": 5}, {"sku": "SHORT", "quantity": 3}])
    response, events = await post(client, alice, f"/orders/{order['id']}/process")
    detail = conflict(response)
    assert "SHORT has 2, needs 3" in detail
    assert "PLENTY" not in detail
    assert events == []
    assert (await get(client, alice, f"/products/{plenty['id']}"))["stock"] == 50
    assert (await get(client, alice, f"/products/{short['id']}"))["stock"] == 2
    assert await get(client, alice, f"/orders/{order['id']}") == order


async def test_an_item_that_is_no_product_is_409(client: httpx.AsyncClient, alice: Account) -> None:
    known = await create_product(client, alice, "KNOWN", stock=5)
    order = await create_order(
        client, alice, [{"sku": "KNOWN", "quantity": 1}, {"sku": "GHOST", "quantity": 1, "unit_price": "2.00"}]
    )
    response, events = await post(client, alice, f"/orders/{order['id']}/process")
    assert "GHOST" in conflict(response)
    assert events == []
    assert (await get(client, alice, f"/products/{known['id']}"))["stock"] == 5


@pytest.mark.parametrize("path", [["cancelled"], ["processing", "shipped"], ["processing", "shipped", "delivered"]])
async def test_only_a_pending_or_unprocessed_processing_order_can_be_processed(
    client: httpx.AsyncClient, alice: Account, path: list[str]
) -> None:
    product = await create_product(client, alice, "P", stock=5)
    order = await create_order(client, alice, [{"sku": "P", "quantity": 1}])
    for status in path:
        assert (await set_status(client, alice, order["id"], status)).status_code == 200
    response, events = await post(client, alice, f"/orders/{order['id']}/process")
    assert f"from {path[-1]} to processing" in conflict(response)
    assert events == []
    assert (await get(client, alice, f"/products/{product['id']}"))["stock"] == 5


async def test_an_order_moved_to_processing_by_hand_can_still_be_processed(
    client: httpx.AsyncClient, alice: Account
) -> None:
    product = await create_product(client, alice, "P", stock=5)
    order = await create_order(client, alice, [{"sku": "P", "quantity": 2}])
    assert (await set_status(client, alice, order["id"], "processing")).status_code == 200
    response, events = await post(client, alice, f"/orders/{order['id']}/process")
    assert response.status_code == 200, response.text
    assert types(events) == ["order_updated", "product_updated", "product_stock_changed", "order_processed"]
    assert (await get(client, alice, f"/products/{product['id']}"))["stock"] == 3


# --- shipment ---------------------------------------------------------------------------------------------


async def test_shipment_marks_a_processing_order_shipped(client: httpx.AsyncClient, alice: Account) -> None:
    await create_product(client, alice, "P", stock=5)
    order = await create_order(client, alice, [{"sku": "P", "quantity": 1}])
    shipment = {"carrier": "DHL", "tracking_number": "JD0001"}
    response, events = await post(client, alice, f"/orders/{order['id']}/shipment", shipment)
    assert "from pending to shipped" in conflict(response)
    assert events == []
    assert (await post(client, alice, f"/orders/{order['id']}/process"))[0].status_code == 200

    response, events = await post(client, alice, f"/orders/{order['id']}/shipment", shipment)
    assert response.status_code == 200, response.text
    shipped = response.json()
    assert (shipped["status"], shipped["carrier"], shipped["tracking_number"]) == ("shipped", "DHL", "JD0001")
    assert shipped == await get(client, alice, f"/orders/{order['id']}")
    assert types(events) == ["order_updated", "order_status_changed"]
    assert events[0]["data"] == shipped
    assert events[1]["data"] == {"order_id": order["id"], "old": "processing", "new": "shipped"}

    response, events = await post(client, alice, f"/orders/{order['id']}/shipment", shipment)
    assert "already shipped" in conflict(response)
    assert events == []
    assert (await set_status(client, alice, order["id"], "delivered")).status_code == 200
    response, _ = await post(client, alice, f"/orders/{order['id']}/shipment", shipment)
    assert "from delivered to shipped" in conflict(response)


@pytest.mark.parametrize(
    ("body", "keys"),
    [
        ({}, ["carrier", "tracking_number"]),
        ({"carrier": "", "tracking_number": "1"}, ["carrier"]),
        ({"carrier": "UPS", "tracking_number": "1" * 101}, ["tracking_number"]),
        ({"carrier": "UPS", "tracking_number": "1", "eta": "soon"}, ["eta"]),
    ],
)
async def test_bad_shipment_bodies_are_400(
    client: httpx.AsyncClient, alice: Account, body: dict[str, Any], keys: list[str]
) -> None:
    order = await create_order(client, alice, [{"sku": "X", "quantity": 1, "unit_price": 1}])
    response, events = await post(client, alice, f"/orders/{order['id']}/shipment", body)
    assert response.status_code == 400, response.text
    assert [item["key"] for item in response.json()["extra"]] == keys
    assert events == []


async def test_another_users_order_is_404_for_every_workflow(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    await create_product(client, alice, "P", stock=5)
    order = await create_order(client, alice, [{"sku": "P", "quantity": 1}])
    for path, body in [
        (f"/orders/{order['id']}/process", None),
        (f"/orders/{order['id']}/shipment", {"carrier": "UPS", "tracking_number": "1"}),
        ("/orders/987654/process", None),
    ]:
        response, events = await post(client, bob, path, body)
        assert response.status_code == 404, response.text
        assert events == []
    assert await get(client, alice, f"/orders/{order['id']}") == order


async def test_an_illegal_patch_move_is_409_and_changes_nothing(client: httpx.AsyncClient, alice: Account) -> None:
    order = await create_order(client, alice, [{"sku": "X", "quantity": 1, "unit_price": 1}])
    before = (await get(client, alice, "/events/history?limit=1"))["latest_id"]
    response = await client.patch(
        f"/orders/{order['id']}", json={"status": "delivered", "carrier": "UPS"}, headers=alice.headers
    )
    assert "from pending to delivered" in conflict(response)
    assert await get(client, alice, f"/orders/{order['id']}") == order
    assert (await get(client, alice, "/events/history?limit=1"))["latest_id"] == before


# --- fetching from the local store (the demo's) ------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def demo_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """A server on an empty database with the demo: two orders wait in its local store."""
    if request.param == "postgres":
        require_postgres()
    database = postgres_database() if request.param == "postgres" else sqlite_database()
    with database as url:
        process = ServerProcess(env={"DROPSYNC_DATABASE_URL": url, "DROPSYNC_DEMO": "true"}).start()
        yield process
        process.stop()


@pytest.fixture
async def demo(demo_server: ServerProcess) -> AsyncIterator[tuple[httpx.AsyncClient, Account]]:
    async with httpx.AsyncClient(base_url=demo_server.url, timeout=10) as http:
        issued = await http.post("/auth/token", json={"username": "demo", "password": "demo-password"})
        assert issued.status_code == 200, issued.text
        me = (await http.get("/auth/me", headers={"Authorization": f"Bearer {issued.json()['access_token']}"})).json()
        yield http, Account(me["id"], "demo", "demo-password", issued.json()["access_token"])


async def test_fetch_from_the_local_store_then_process_and_ship(demo: tuple[httpx.AsyncClient, Account]) -> None:
    http, account = demo
    orders_before = (await get(http, account, "/orders"))["total"]
    response, events = await post(http, account, "/orders/fetch")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["fetched"], body["created"]) == (2, 2)
    assert types(events) == ["order_created", "order_created"]
    assert [order["external_id"] for order in body["items"]] == ["1003", "1004"]
    lamp_order = body["items"][0]
    assert events[0]["data"] == lamp_order == await get(http, account, f"/orders/{lamp_order['id']}")
    assert lamp_order["items"][0]["sku"] == "ACME-LAMP"
    assert lamp_order["items"][0]["product_id"] is not None
    assert lamp_order["customer"]["name"] == "Alan Turing"

    response, events = await post(http, account, "/orders/fetch")
    assert (response.json()["fetched"], response.json()["created"], events) == (2, 0, [])
    assert (await get(http, account, "/orders"))["total"] == orders_before + 2

    # shipping a store order fulfils it in the store: it is no longer among the store's open orders
    assert (await post(http, account, f"/orders/{lamp_order['id']}/process"))[0].status_code == 200
    shipment = {"carrier": "Royal Mail", "tracking_number": "RM1"}
    assert (await post(http, account, f"/orders/{lamp_order['id']}/shipment", shipment))[0].status_code == 200
    response, events = await post(http, account, "/orders/fetch")
    assert (response.json()["fetched"], response.json()["created"], events) == (1, 0, [])
    await orders_listed_as_read(http, account)  # the demo's orders, the fetched ones, the shipped one
