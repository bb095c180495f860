"""The durable event log: what each change records, in which order, with which ids, and who can read it."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import httpx
import pytest

from tests.conftest import Account

pytestmark = pytest.mark.anyio

Event = dict[str, Any]


async def history(client: httpx.AsyncClient, account: Account, **params: int) -> dict[str, Any]:
    response = await client.get("/events/history", params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def all_events(client: httpx.AsyncClient, account: Account) -> list[Event]:
    """Every recorded event of ``account``, read page by page."""
    events: list[Event] = []
    while True:
        page = await history(client, account, after=events[-1]["id"] if events else 0, limit=1000)
        if not page["events"]:
            return events
        events.extend(page["events"])


async def change(
    client: httpx.AsyncClient, account: Account, method: str, path: str, body: Any = None
) -> tuple[httpx.Response, list[Event]]:
    """Make one request; return its response and the events it recorded."""
    before = (await history(client, account, limit=1))["latest_id"]
    response = await client.request(method, path, json=body, headers=account.headers)
    recorded = (await history(client, account, after=before, limit=1000))["events"]
    return response, recorded


async def resource(client: httpx.AsyncClient, account: Account, path: str) -> dict[str, Any]:
    response = await client.get(path, headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def types(events: list[Event]) -> list[str]:
    return [event["type"] for event in events]


def without_changed(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key != "changed"}


async def new_product(client: httpx.AsyncClient, account: Account, sku: str, **fields: Any) -> dict[str, Any]:
    body = {"sku": sku, "name": sku, "price": "10.00", **fields}
    response = await client.post("/products", json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    product: dict[str, Any] = response.json()
    return product


# --- the envelope ---------------------------------------------------------------------------------


async def test_envelope_shape(client: httpx.AsyncClient, alice: Account) -> None:
    started = time.time_ns() // 1_000_000
    await client.post("/notifications", json={"title": "hi"}, headers=alice.headers)
    finished = time.time_ns() // 1_000_000
    [event] = (await history(client, alice))["events"]
    assert list(event) == ["id", "type", "data", "timestamp", "user_id"]
    assert event["id"] == 1
    assert event["user_id"] == alice.id
    assert isinstance(event["timestamp"], int)
    assert started - 1000 <= event["timestamp"] <= finished + 1000  # epoch milliseconds, same machine


# --- what each change records ---------------------------------------------------------------------


async def test_seller_events(client: httpx.AsyncClient, alice: Account) -> None:
    response, recorded = await change(client, alice, "POST", "/sellers", {"name": "Acme"})
    seller_id = response.json()["id"]
    assert types(recorded) == ["seller_added"]
    assert recorded[0]["data"] == await resource(client, alice, f"/sellers/{seller_id}")

    _, recorded = await change(client, alice, "PATCH", f"/sellers/{seller_id}", {"notes": "fast"})
    assert types(recorded) == ["seller_updated"]
    assert recorded[0]["data"] == await resource(client, alice, f"/sellers/{seller_id}")

    response, recorded = await change(client, alice, "DELETE", f"/sellers/{seller_id}")
    assert response.status_code == 204
    assert types(recorded) == ["seller_deleted"]
    assert recorded[0]["data"]["id"] == seller_id


async def test_seller_deletion_unlinks_products_by_id_whatever_the_row_order(
    client: httpx.AsyncClient, alice: Account
) -> None:
    seller_id = (await client.post("/sellers", json={"name": "Acme"}, headers=alice.headers)).json()["id"]
    first = await new_product(client, alice, "A", seller_id=seller_id)
    second = await new_product(client, alice, "B", seller_id=seller_id)
    await new_product(client, alice, "UNLINKED")
    # A new SKU (an indexed column: no HOT update) moves A's row behind B's in PostgreSQL's heap and
    # indexes, so an unordered read returns B first: the events must still follow the product ids.
    patched = await client.patch(f"/products/{first['id']}", json={"sku": "A2"}, headers=alice.headers)
    assert patched.status_code == 200, patched.text
    _, recorded = await change(client, alice, "DELETE", f"/sellers/{seller_id}")
    assert types(recorded) == ["seller_deleted", "product_updated", "product_updated"]
    for event, product in zip(recorded[1:], (first, second), strict=True):
        assert event["data"]["changed"] == ["seller_id"]
        assert without_changed(event["data"]) == await resource(client, alice, f"/products/{product['id']}")


async def test_product_events(client: httpx.AsyncClient, alice: Account) -> None:
    response, recorded = await change(
        client, alice, "POST", "/products", {"sku": "P", "name": "Mug", "price": 10, "stock": 50}
    )
    path = f"/products/{response.json()['id']}"
    assert types(recorded) == ["product_added"]
    assert recorded[0]["data"] == await resource(client, alice, path)

    _, recorded = await change(client, alice, "PATCH", path, {"name": "Big mug", "description": "blue"})
    assert types(recorded) == ["product_updated"]
    assert sorted(recorded[0]["data"]["changed"]) == ["description", "name"]
    assert without_changed(recorded[0]["data"]) == await resource(client, alice, path)

    _, recorded = await change(client, alice, "DELETE", path)
    assert types(recorded) == ["product_deleted"]
    assert recorded[0]["data"] == {"id": response.json()["id"], "sku": "P"}


async def test_stock_and_price_events_follow_the_resource_event(client: httpx.AsyncClient, alice: Account) -> None:
    product = await new_product(client, alice, "P", price="10.00", stock=50)
    path = f"/products/{product['id']}"
    _, recorded = await change(client, alice, "PATCH", path, {"price": "12.50", "stock": 40})
    assert types(recorded) == ["product_updated", "product_stock_changed", "product_price_changed"]
    assert sorted(recorded[0]["data"]["changed"]) == ["price", "stock"]
    assert without_changed(recorded[0]["data"]) == await resource(client, alice, path)
    assert recorded[1]["data"] == {"product_id": product["id"], "sku": "P", "old": 50, "new": 40}
    assert recorded[2]["data"] == {"product_id": product["id"], "sku": "P", "old": "10.00", "new": "12.50"}

    _, recorded = await change(client, alice, "PATCH", path, {"price": 9})
    assert types(recorded) == ["product_updated", "product_price_changed"]
    assert recorded[1]["data"]["new"] == "9.00"


async def test_an_alert_comes_last(client: httpx.AsyncClient, alice: Account) -> None:
    product = await new_product(client, alice, "P", price="10.00", stock=50)
    _, recorded = await change(client, alice, "PATCH", f"/products/{product['id']}", {"price": "8.00", "stock": 0})
    assert types(recorded) == ["product_updated", "product_stock_changed", "product_price_changed", "stock_out"]
    assert recorded[3]["data"] == {"product_id": product["id"], "sku": "P", "stock": 0, "threshold": 5}


async def test_stock_alerts_fire_once_per_crossing(client: httpx.AsyncClient, alice: Account) -> None:
    product = await new_product(client, alice, "P", stock=10)
    path = f"/products/{product['id']}"
    walk = [(4, ["stock_low"]), (3, []), (0, ["stock_out"]), (0, None), (20, []), (2, ["stock_low"]), (1, [])]
    for stock, alerts in walk:
        response, recorded = await change(client, alice, "PATCH", path, {"stock": stock})
        assert response.status_code == 200, response.text
        if alerts is None:  # no change at all
            assert recorded == [], stock
            continue
        assert types(recorded) == ["product_updated", "product_stock_changed", *alerts], stock
        for alert in recorded[2:]:
            assert alert["data"] == {"product_id": product["id"], "sku": "P", "stock": stock, "threshold": 5}


async def test_alerts_use_the_products_own_threshold(client: httpx.AsyncClient, alice: Account) -> None:
    product = await new_product(client, alice, "P", stock=30, low_stock_threshold=20)
    _, recorded = await change(client, alice, "PATCH", f"/products/{product['id']}", {"stock": 15})
    assert types(recorded)[-1] == "stock_low"
    assert recorded[-1]["data"]["threshold"] == 20


async def test_alerts_use_the_users_threshold(client: httpx.AsyncClient, alice: Account) -> None:
    await client.patch("/settings", json={"low_stock_threshold": 12}, headers=alice.headers)
    product = await new_product(client, alice, "P", stock=30)
    _, recorded = await change(client, alice, "PATCH", f"/products/{product['id']}", {"stock": 12})
    assert types(recorded)[-1] == "stock_low"
    assert recorded[-1]["data"]["threshold"] == 12


async def test_alerts_follow_a_change_of_the_users_threshold(client: httpx.AsyncClient, alice: Account) -> None:
    # Regression: products kept the stock state of the old threshold, so a crossing of the new one was missed.
    product = await new_product(client, alice, "P", stock=4)  # low against the default threshold of 5
    own = await new_product(client, alice, "OWN", stock=4, low_stock_threshold=5)
    await client.patch("/settings", json={"low_stock_threshold": 2}, headers=alice.headers)
    _, recorded = await change(client, alice, "PATCH", f"/products/{product['id']}", {"stock": 1})
    assert types(recorded) == ["product_updated", "product_stock_changed", "stock_low"]
    assert recorded[-1]["data"]["threshold"] == 2
    _, recorded = await change(client, alice, "PATCH", f"/products/{own['id']}", {"stock": 3})
    assert types(recorded) == ["product_updated", "product_stock_changed"]  # its own threshold did not move
    # and a threshold raised above the stock: the product is low already, a further drop is no crossing
    ok = await new_product(client, alice, "OK", stock=8)
    await client.patch("/settings", json={"low_stock_threshold": 10}, headers=alice.headers)
    _, recorded = await change(client, alice, "PATCH", f"/products/{ok['id']}", {"stock": 7})
    assert types(recorded) == ["product_updated", "product_stock_changed"]


async def test_order_events(client: httpx.AsyncClient, alice: Account) -> None:
    body = {"external_id": "o-1", "items": [{"sku": "X", "quantity": 2, "unit_price": "3.00"}]}
    response, recorded = await change(client, alice, "POST", "/orders", body)
    path = f"/orders/{response.json()['id']}"
    assert types(recorded) == ["order_created"]
    assert recorded[0]["data"] == await resource(client, alice, path)

    _, recorded = await change(client, alice, "PATCH", path, {"carrier": "UPS"})
    assert types(recorded) == ["order_updated"]
    assert recorded[0]["data"] == await resource(client, alice, path)

    _, recorded = await change(client, alice, "PATCH", path, {"status": "processing", "tracking_number": "1Z"})
    assert types(recorded) == ["order_updated", "order_status_changed"]
    assert recorded[0]["data"] == await resource(client, alice, path)
    order_id = response.json()["id"]
    assert recorded[1]["data"] == {"order_id": order_id, "old": "pending", "new": "processing"}


async def test_settings_and_notification_events(client: httpx.AsyncClient, alice: Account) -> None:
    _, recorded = await change(client, alice, "PATCH", "/settings", {"currency": "EUR"})
    assert types(recorded) == ["settings_updated"]
    assert recorded[0]["data"] == await resource(client, alice, "/settings")
    _, recorded = await change(client, alice, "POST", "/notifications", {"title": "t", "message": "m"})
    assert types(recorded) == ["system_notification"]
    assert recorded[0]["data"] == {"level": "info", "title": "t", "message": "m"}


# --- failures record nothing ----------------------------------------------------------------------


async def test_failed_requests_record_nothing_and_change_nothing(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    product = await new_product(client, alice, "TAKEN", stock=10)
    other = await new_product(client, alice, "OTHER", stock=10)
    order = (
        await client.post(
            "/orders",
            json={"external_id": "o-1", "items": [{"sku": "X", "quantity": 1, "unit_price": 1}]},
            headers=alice.headers,
        )
    ).json()
    bobs = await new_product(client, bob, "BOBS")
    failures = [
        ("POST", "/products", {"sku": "NEW", "name": "n", "price": "1.001"}, 400),
        ("POST", "/products", {"sku": "TAKEN", "name": "n", "price": 1}, 409),
        ("PATCH", f"/products/{other['id']}", {"sku": "TAKEN", "stock": 0}, 409),
        ("PATCH", f"/products/{other['id']}", {"stock": 0, "price": "x"}, 400),
        ("PATCH", f"/products/{bobs['id']}", {"stock": 0}, 404),
        ("DELETE", f"/products/{bobs['id']}", None, 404),
        ("POST", "/products", {"sku": "NEW", "name": "n", "price": 1, "seller_id": 999_999}, 404),
        ("POST", "/orders", {"external_id": "o-1", "items": [{"sku": "Y", "quantity": 1, "unit_price": 1}]}, 409),
        ("POST", "/orders", {"items": [{"product_id": bobs["id"], "quantity": 1}]}, 404),
        ("PATCH", f"/orders/{order['id']}", {"status": "delivered", "carrier": "UPS"}, 409),
        ("PATCH", "/settings", {"low_stock_threshold": 1, "currency": "euro"}, 400),
        ("POST", "/sellers", {"name": "x", "notes": "n" * (1024 * 1024)}, 413),
        ("POST", "/notifications", {"title": ""}, 400),
    ]
    before = await all_events(client, alice)
    snapshot = [await resource(client, alice, path) for path in ("/products", "/orders", "/settings", "/sellers")]
    for method, path, body, status in failures:
        response, recorded = await change(client, alice, method, path, body)
        assert response.status_code == status, (method, path, response.text)
        assert recorded == [], (method, path)
    assert await all_events(client, alice) == before
    assert [
        await resource(client, alice, path) for path in ("/products", "/orders", "/settings", "/sellers")
    ] == snapshot
    assert (await resource(client, alice, f"/products/{product['id']}"))["stock"] == 10


# --- ids ------------------------------------------------------------------------------------------


async def test_ids_are_one_to_n_per_user_without_gaps(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    for round_number in range(3):
        await client.post("/notifications", json={"title": f"a{round_number}"}, headers=alice.headers)
        await client.post("/sellers", json={"name": f"b{round_number}"}, headers=bob.headers)
        product = await new_product(client, alice, f"P{round_number}", stock=10)
        await client.patch(f"/products/{product['id']}", json={"stock": 0, "price": 1}, headers=alice.headers)
    alices = await all_events(client, alice)
    bobs = await all_events(client, bob)
    # per round: notification, product_added, then updated + stock + price + stock_out
    assert [event["id"] for event in alices] == list(range(1, 3 * 6 + 1))
    assert [event["id"] for event in bobs] == [1, 2, 3]
    assert {event["user_id"] for event in alices} == {alice.id}
    assert {event["user_id"] for event in bobs} == {bob.id}


async def test_a_new_user_has_an_empty_log(client: httpx.AsyncClient, alice: Account) -> None:
    assert await history(client, alice) == {"events": [], "latest_id": 0, "oldest_id": None}


async def test_history_pages(client: httpx.AsyncClient, alice: Account) -> None:
    for index in range(5):
        await client.post("/notifications", json={"title": f"n{index}"}, headers=alice.headers)
    everything = await history(client, alice)
    assert [event["id"] for event in everything["events"]] == [1, 2, 3, 4, 5]
    assert (everything["latest_id"], everything["oldest_id"]) == (5, 1)
    pages = [await history(client, alice, after=after, limit=2) for after in (0, 2, 4, 5, 99)]
    assert [[event["id"] for event in page["events"]] for page in pages] == [[1, 2], [3, 4], [5], [], []]
    assert all((page["latest_id"], page["oldest_id"]) == (5, 1) for page in pages)
    assert [event["data"]["title"] for event in pages[1]["events"]] == ["n2", "n3"]


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"after": -1}, {"after": "x"}])
async def test_history_bounds(client: httpx.AsyncClient, alice: Account, params: dict[str, Any]) -> None:
    response = await client.get("/events/history", params=params, headers=alice.headers)
    assert response.status_code == 400, response.text


async def test_another_user_never_sees_your_events(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    await client.post("/sellers", json={"name": "Alice Secret Seller"}, headers=alice.headers)
    await client.post("/notifications", json={"title": "Alice Secret Note"}, headers=alice.headers)
    for params in ({}, {"after": 0}, {"after": 1, "limit": 1000}):
        response = await client.get("/events/history", params=params, headers=bob.headers)
        assert response.json() == {"events": [], "latest_id": 0, "oldest_id": None}
        assert "Alice Secret" not in response.text
    await client.post("/notifications", json={"title": "Bob's"}, headers=bob.headers)
    assert [event["data"]["title"] for event in await all_events(client, bob)] == ["Bob's"]


# --- concurrent writers of one user ---------------------------------------------------------------


async def run_writers(writers: int, write: Callable[[int], Coroutine[Any, Any, None]], deadline_s: float = 100) -> None:
    """Run ``write(writer)`` for each writer at once; fail if they are not all done within the deadline."""
    with anyio.fail_after(deadline_s):
        async with anyio.create_task_group() as group:
            for writer in range(writers):
                group.start_soon(write, writer)


async def check_concurrent_notifications(
    client: httpx.AsyncClient, account: Account, writers: int, per_writer: int
) -> None:
    async def write(writer: int) -> None:
        for sequence in range(per_writer):
            body = {"title": f"w{writer}", "message": str(sequence)}
            response = await client.post("/notifications", json=body, headers=account.headers)
            assert response.status_code == 201, response.text

    await run_writers(writers, write)
    events = await all_events(client, account)
    assert [event["id"] for event in events] == list(range(1, writers * per_writer + 1))
    assert Counter(event["data"]["title"] for event in events) == {
        f"w{writer}": per_writer for writer in range(writers)
    }
    for writer in range(writers):  # each writer's own changes keep their order
        sequence = [int(event["data"]["message"]) for event in events if event["data"]["title"] == f"w{writer}"]
        assert sequence == list(range(per_writer))
    assert (await history(client, account, limit=1))["latest_id"] == writers * per_writer


async def check_concurrent_product_changes(
    client: httpx.AsyncClient, account: Account, writers: int, per_writer: int
) -> None:
    """Each change records 2 or 3 events; they must get consecutive ids, never interleaved with another's."""
    products = [await new_product(client, account, f"W{writer}", stock=10) for writer in range(writers)]
    start = (await history(client, account, limit=1))["latest_id"]

    async def write(writer: int) -> None:
        for sequence in range(per_writer):
            stock = 3 if sequence % 2 == 0 else 10  # every other change crosses the threshold of 5
            path = f"/products/{products[writer]['id']}"
            response = await client.patch(path, json={"stock": stock}, headers=account.headers)
            assert response.status_code == 200, response.text

    await run_writers(writers, write)
    events = [event for event in await all_events(client, account) if event["id"] > start]
    expected_count = writers * (per_writer * 2 + (per_writer + 1) // 2)
    assert [event["id"] for event in events] == list(range(start + 1, start + expected_count + 1))
    position = 0
    while position < len(events):
        updated, stock_changed = events[position], events[position + 1]
        assert (updated["type"], stock_changed["type"]) == ("product_updated", "product_stock_changed")
        assert stock_changed["data"]["product_id"] == updated["data"]["id"]
        position += 2
        if stock_changed["data"]["new"] == 3:
            assert events[position]["type"] == "stock_low"
            assert events[position]["data"]["product_id"] == updated["data"]["id"]
            position += 1
    for product in products:
        assert (await resource(client, account, f"/products/{product['id']}"))["version"] == 1 + per_writer


async def test_concurrent_writers_on_postgres(client: httpx.AsyncClient, alice: Account, database_url: str) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("the large concurrency run is for PostgreSQL; SQLite runs the small one")
    await check_concurrent_notifications(client, alice, writers=8, per_writer=200)
    await check_concurrent_product_changes(client, alice, writers=8, per_writer=50)


async def test_concurrent_writers_on_sqlite(client: httpx.AsyncClient, alice: Account, database_url: str) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("the small concurrency run is for SQLite; PostgreSQL runs the large one")
    await check_concurrent_notifications(client, alice, writers=4, per_writer=50)
    await check_concurrent_product_changes(client, alice, writers=4, per_writer=20)


async def test_concurrent_writers_of_different_users_keep_separate_sequences(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    accounts = [alice, bob]

    async def write(writer: int) -> None:
        account = accounts[writer % 2]
        for sequence in range(20):
            body = {"title": f"w{writer}", "message": str(sequence)}
            assert (await client.post("/notifications", json=body, headers=account.headers)).status_code == 201

    await run_writers(4, write)
    for account in accounts:
        assert [event["id"] for event in await all_events(client, account)] == list(range(1, 41))
