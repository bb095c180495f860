"""/products/bulk/*: price, stock, delete and store sync for many products — atomic, in one
transaction, with every product's events in order, and fast enough for 1000 items."""

from __future__ import annotations

import time
from typing import Any

import anyio
import httpx
import pytest

from tests.conftest import Account
from tests.support.api import latest_event_id

pytestmark = pytest.mark.anyio

Event = dict[str, Any]


async def create_product(client: httpx.AsyncClient, account: Account, sku: str, **fields: Any) -> dict[str, Any]:
    body = {"sku": sku, "name": f"Product {sku}", "price": "10.00", "stock": 20, **fields}
    response = await client.post("/products", json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    product: dict[str, Any] = response.json()
    return product


async def create_many(client: httpx.AsyncClient, account: Account, count: int, prefix: str) -> list[dict[str, Any]]:
    products: list[dict[str, Any] | None] = [None] * count
    limiter = anyio.Semaphore(16)

    async def one(index: int) -> None:
        async with limiter:
            products[index] = await create_product(client, account, f"{prefix}-{index:04d}")

    async with anyio.create_task_group() as group:
        for index in range(count):
            group.start_soon(one, index)
    return [product for product in products if product is not None]


async def events_after(client: httpx.AsyncClient, account: Account, after: int) -> list[Event]:
    events: list[Event] = []
    while True:
        params = {"after": events[-1]["id"] if events else after, "limit": 1000}
        page = (await client.get("/events/history", params=params, headers=account.headers)).json()
        if not page["events"]:
            return events
        events.extend(page["events"])


async def bulk(
    client: httpx.AsyncClient, account: Account, name: str, body: dict[str, Any]
) -> tuple[httpx.Response, list[Event]]:
    """POST /products/bulk/<name>; the response and the events it recorded."""
    before = await latest_event_id(client, account)
    response = await client.post(f"/products/bulk/{name}", json=body, headers=account.headers)
    return response, await events_after(client, account, before)


async def product(client: httpx.AsyncClient, account: Account, product_id: int) -> dict[str, Any]:
    response = await client.get(f"/products/{product_id}", headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def types(events: list[Event]) -> list[str]:
    return [event["type"] for event in events]


def error_keys(response: httpx.Response, status: int) -> list[str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status_code"] == status
    return [item["key"] for item in body.get("extra", [])]


# --- price -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "value", "prices", "expected"),
    [
        ("set", "12.34", ["10.00", "0.00"], ["12.34", "12.34"]),
        ("set", 0, ["10.00", "3.50"], ["0.00", "0.00"]),
        ("delta", "2.50", ["10.00", "0.99"], ["12.50", "3.49"]),
        ("delta", -5, ["10.00", "3.00"], ["5.00", "0.00"]),  # never below 0
        ("percent", "12.5", ["10.00", "9.99"], ["11.25", "11.24"]),  # 11.23875 rounds up to 11.24
        ("percent", -10, ["10.00", "0.05"], ["9.00", "0.05"]),  # 0.045 rounds half up to 0.05
        ("percent", "-33.33", ["1.00", "0.03"], ["0.67", "0.02"]),
        ("percent", -150, ["10.00", "1.00"], ["0.00", "0.00"]),
    ],
)
async def test_price_update_modes_round_to_cents_and_never_go_below_zero(
    client: httpx.AsyncClient, alice: Account, mode: str, value: object, prices: list[str], expected: list[str]
) -> None:
    products = [await create_product(client, alice, f"P-{index}", price=price) for index, price in enumerate(prices)]
    ids = [item["id"] for item in products]
    response, _ = await bulk(client, alice, "price-update", {"product_ids": ids, "mode": mode, "value": value})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [item["price"] for item in body["items"]] == expected
    assert [(await product(client, alice, pid))["price"] for pid in ids] == expected
    assert body["total"] == 2
    assert body["changed"] == sum(1 for old, new in zip(prices, expected, strict=True) if old != new)


async def test_price_update_records_each_products_events_in_request_order(
    client: httpx.AsyncClient, alice: Account
) -> None:
    first = await create_product(client, alice, "A", price="10.00")
    second = await create_product(client, alice, "B", price="20.00")
    same = await create_product(client, alice, "C", price="5.00")
    body = {"product_ids": [second["id"], same["id"], first["id"]], "mode": "set", "value": "5.00"}
    response, events = await bulk(client, alice, "price-update", body)
    assert response.status_code == 200, response.text
    assert types(events) == ["product_updated", "product_price_changed"] * 2  # C already cost 5.00
    updated_b, price_b, updated_a, price_a = events
    assert updated_b["data"]["id"] == second["id"]
    assert updated_b["data"]["changed"] == ["price"]
    assert price_b["data"] == {"product_id": second["id"], "sku": "B", "old": "20.00", "new": "5.00"}
    assert price_a["data"] == {"product_id": first["id"], "sku": "A", "old": "10.00", "new": "5.00"}
    resource = await product(client, alice, first["id"])
    assert {key: value for key, value in updated_a["data"].items() if key != "changed"} == resource
    assert resource["version"] == 2
    assert (await product(client, alice, same["id"]))["version"] == 1


async def test_one_unknown_product_fails_the_whole_price_update(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    mine = await create_product(client, alice, "MINE", price="10.00")
    bobs = await create_product(client, bob, "BOBS", price="10.00")
    body = {"product_ids": [mine["id"], 987654, bobs["id"]], "mode": "delta", "value": 1}
    response, events = await bulk(client, alice, "price-update", body)
    assert error_keys(response, 404) == ["product_ids.1", "product_ids.2"]
    assert "BOBS" not in response.text
    assert events == []
    assert (await product(client, alice, mine["id"]))["price"] == "10.00"
    assert (await product(client, bob, bobs["id"]))["price"] == "10.00"


@pytest.mark.parametrize(
    ("body", "keys"),
    [
        ({"product_ids": [], "mode": "set", "value": 1}, ["product_ids"]),
        ({"product_ids": [1], "mode": "double", "value": 1}, ["mode"]),
        ({"product_ids": [1], "mode": "set", "value": "-1"}, ["value"]),
        ({"product_ids": [1], "mode": "set", "value": "1.001"}, ["value"]),
        ({"product_ids": [1], "mode": "percent", "value": "abc"}, ["value"]),
        ({"product_ids": [0, "x"], "mode": "set", "value": 1}, ["product_ids.0", "product_ids.1"]),
        ({"product_ids": [1], "mode": "set"}, ["value"]),
        ({"product_ids": [1], "mode": "set", "value": 1, "extra": 1}, ["extra"]),
    ],
)
async def test_bad_price_update_bodies_are_400_naming_the_field(
    client: httpx.AsyncClient, alice: Account, body: dict[str, Any], keys: list[str]
) -> None:
    response, events = await bulk(client, alice, "price-update", body)
    assert error_keys(response, 400) == keys
    assert events == []


async def test_repeated_ids_and_overflowing_prices_are_400_and_change_nothing(
    client: httpx.AsyncClient, alice: Account
) -> None:
    cheap = await create_product(client, alice, "CHEAP", price="1.00")
    dear = await create_product(client, alice, "DEAR", price="900000000000.00")
    response, events = await bulk(
        client, alice, "price-update", {"product_ids": [cheap["id"], cheap["id"]], "mode": "delta", "value": 1}
    )
    assert error_keys(response, 400) == ["product_ids.1"]
    response, events = await bulk(
        client, alice, "price-update", {"product_ids": [cheap["id"], dear["id"]], "mode": "percent", "value": 50}
    )
    assert error_keys(response, 400) == ["product_ids.1"]
    assert events == []
    assert (await product(client, alice, cheap["id"]))["price"] == "1.00"


async def test_more_than_1000_items_is_400(client: httpx.AsyncClient, alice: Account) -> None:
    ids = list(range(1, 1002))
    bodies: list[tuple[str, dict[str, Any]]] = [
        ("price-update", {"product_ids": ids, "mode": "set", "value": 1}),
        ("stock-update", {"items": [{"product_id": pid, "stock": 1} for pid in ids]}),
        ("delete", {"product_ids": ids}),
        ("sync-shopify", {"product_ids": ids}),
    ]
    for name, body in bodies:
        response, _ = await bulk(client, alice, name, body)
        key = "items" if name == "stock-update" else "product_ids"
        assert error_keys(response, 400) == [key], name


# --- stock -------------------------------------------------------------------------------------------------


async def test_stock_update_by_id_and_sku_wrapped_in_sync_events(client: httpx.AsyncClient, alice: Account) -> None:
    first = await create_product(client, alice, "S-1", stock=20)
    second = await create_product(client, alice, "S-2", stock=20)
    unchanged = await create_product(client, alice, "S-3", stock=7)
    items = [{"product_id": first["id"], "stock": 30}, {"sku": "S-2", "stock": 25}, {"sku": "S-3", "stock": 7}]
    response, events = await bulk(client, alice, "stock-update", {"items": items})
    assert response.status_code == 200, response.text
    body = response.json()
    assert types(events) == [
        "stock_sync_started",
        "product_updated",
        "product_stock_changed",
        "product_updated",
        "product_stock_changed",
        "stock_sync_completed",
    ]
    job_id = body["job_id"]
    assert events[0]["data"] == {"job_id": job_id, "total": 3}
    assert events[-1]["data"] == {"job_id": job_id, "total": 3, "changed": 2, "unchanged": 1}
    assert events[2]["data"] == {"product_id": first["id"], "sku": "S-1", "old": 20, "new": 30}
    assert events[4]["data"] == {"product_id": second["id"], "sku": "S-2", "old": 20, "new": 25}
    assert [item["stock"] for item in body["items"]] == [30, 25, 7]
    assert (await product(client, alice, unchanged["id"]))["version"] == 1


async def test_stock_alerts_fire_once_per_crossing(client: httpx.AsyncClient, alice: Account) -> None:
    # the user's threshold is 5; OWN has its own threshold of 10
    low = await create_product(client, alice, "LOW", stock=20)
    out = await create_product(client, alice, "OUT", stock=20)
    own = await create_product(client, alice, "OWN", stock=20, low_stock_threshold=10)
    items = [{"sku": "LOW", "stock": 5}, {"sku": "OUT", "stock": 0}, {"sku": "OWN", "stock": 9}]
    _, events = await bulk(client, alice, "stock-update", {"items": items})
    alerts = [(event["type"], event["data"]) for event in events if event["type"] in {"stock_low", "stock_out"}]
    assert alerts == [
        ("stock_low", {"product_id": low["id"], "sku": "LOW", "stock": 5, "threshold": 5}),
        ("stock_out", {"product_id": out["id"], "sku": "OUT", "stock": 0, "threshold": 5}),
        ("stock_low", {"product_id": own["id"], "sku": "OWN", "stock": 8 + 1, "threshold": 10}),
    ]
    # each alert comes right after its product's stock event
    assert types(events)[1:4] == ["product_updated", "product_stock_changed", "stock_low"]
    # still low, lower, back up: no new low alert; out again only after leaving 0
    items = [{"sku": "LOW", "stock": 3}, {"sku": "OUT", "stock": 2}, {"sku": "OWN", "stock": 50}]
    _, events = await bulk(client, alice, "stock-update", {"items": items})
    assert [event["type"] for event in events if event["type"] in {"stock_low", "stock_out"}] == []
    _, events = await bulk(client, alice, "stock-update", {"items": [{"sku": "OUT", "stock": 0}]})
    assert [event["type"] for event in events if event["type"] in {"stock_low", "stock_out"}] == ["stock_out"]


async def test_one_unknown_item_fails_the_whole_stock_update(client: httpx.AsyncClient, alice: Account) -> None:
    known = await create_product(client, alice, "KNOWN", stock=20)
    items = [{"product_id": known["id"], "stock": 1}, {"sku": "NOPE", "stock": 1}, {"product_id": 987654, "stock": 1}]
    response, events = await bulk(client, alice, "stock-update", {"items": items})
    assert error_keys(response, 404) == ["items.1.sku", "items.2.product_id"]
    assert events == []
    assert (await product(client, alice, known["id"]))["stock"] == 20


@pytest.mark.parametrize(
    ("items", "keys"),
    [
        ([{"stock": 1}], ["items.0"]),
        ([{"product_id": 1, "sku": "X", "stock": 1}], ["items.0"]),
        ([{"sku": "X", "stock": -1}], ["items.0.stock"]),
        ([{"sku": "X"}], ["items.0.stock"]),
        ([{"sku": "X", "stock": 1}, {"sku": "", "stock": "many"}], ["items.1.sku", "items.1.stock"]),
        ([], ["items"]),
    ],
)
async def test_bad_stock_items_are_400_naming_them(
    client: httpx.AsyncClient, alice: Account, items: list[dict[str, Any]], keys: list[str]
) -> None:
    await create_product(client, alice, "X", stock=20)
    response, events = await bulk(client, alice, "stock-update", {"items": items})
    assert error_keys(response, 400) == keys
    assert events == []


async def test_naming_one_product_twice_is_400(client: httpx.AsyncClient, alice: Account) -> None:
    item = await create_product(client, alice, "TWICE", stock=20)
    items = [{"product_id": item["id"], "stock": 1}, {"sku": "TWICE", "stock": 2}]
    response, events = await bulk(client, alice, "stock-update", {"items": items})
    assert error_keys(response, 400) == ["items.1"]
    assert events == []
    assert (await product(client, alice, item["id"]))["stock"] == 20


# --- delete ------------------------------------------------------------------------------------------------


async def test_bulk_delete(client: httpx.AsyncClient, alice: Account) -> None:
    first = await create_product(client, alice, "D-1")
    second = await create_product(client, alice, "D-2")
    kept = await create_product(client, alice, "D-3")
    response, events = await bulk(client, alice, "delete", {"product_ids": [second["id"], first["id"]]})
    assert response.status_code == 200, response.text
    assert response.json()["deleted"] == 2
    assert [(event["type"], event["data"]) for event in events] == [
        ("product_deleted", {"id": second["id"], "sku": "D-2"}),
        ("product_deleted", {"id": first["id"], "sku": "D-1"}),
    ]
    for gone in (first, second):
        assert (await client.get(f"/products/{gone['id']}", headers=alice.headers)).status_code == 404
    assert (await product(client, alice, kept["id"]))["sku"] == "D-3"


async def test_bulk_delete_with_an_unknown_or_foreign_id_deletes_nothing(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    mine = await create_product(client, alice, "MINE")
    bobs = await create_product(client, bob, "BOBS")
    response, events = await bulk(client, alice, "delete", {"product_ids": [mine["id"], bobs["id"]]})
    assert error_keys(response, 404) == ["product_ids.1"]
    assert events == []
    assert (await product(client, alice, mine["id"]))["sku"] == "MINE"
    assert (await product(client, bob, bobs["id"]))["sku"] == "BOBS"
    response, _ = await bulk(client, alice, "delete", {"product_ids": [mine["id"], mine["id"]]})
    assert error_keys(response, 400) == ["product_ids.1"]


# --- store sync (the default local store) -----------------------------------------------------------------


async def test_bulk_sync_pushes_each_product_to_the_local_store(client: httpx.AsyncClient, alice: Account) -> None:
    first = await create_product(client, alice, "Y-1")
    second = await create_product(client, alice, "Y-2")
    response, events = await bulk(client, alice, "sync-shopify", {"product_ids": [first["id"], second["id"]]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["total"], body["synced"], body["failed"]) == (2, 2, 0)
    assert types(events) == ["product_synced", "product_synced"]
    for item, event, original in zip(body["items"], events, (first, second), strict=True):
        assert item["ok"] is True
        assert item["product_id"] == original["id"]
        stored = await product(client, alice, original["id"])
        assert stored["shopify_id"] == item["shopify_id"] is not None
        assert stored["synced_at"] == item["synced_at"] is not None
        assert stored["version"] == original["version"] + 1
        assert event["data"] == {
            "product_id": original["id"],
            "shopify_id": stored["shopify_id"],
            "synced_at": stored["synced_at"],
        }
    # pushing again updates the same store product
    response, events = await bulk(client, alice, "sync-shopify", {"product_ids": [first["id"]]})
    assert response.json()["items"][0]["shopify_id"] == body["items"][0]["shopify_id"]


async def test_bulk_sync_with_an_unknown_id_sends_nothing(client: httpx.AsyncClient, alice: Account) -> None:
    item = await create_product(client, alice, "Z-1")
    response, events = await bulk(client, alice, "sync-shopify", {"product_ids": [item["id"], 987654]})
    assert error_keys(response, 404) == ["product_ids.1"]
    assert events == []
    assert (await product(client, alice, item["id"]))["shopify_id"] is None


async def test_single_sync_records_product_synced(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    item = await create_product(client, alice, "ONE")
    before = await latest_event_id(client, alice)
    response = await client.post(f"/products/{item['id']}/sync", headers=alice.headers)
    assert response.status_code == 200, response.text
    synced = response.json()
    assert synced == await product(client, alice, item["id"])
    assert synced["shopify_id"]
    [event] = await events_after(client, alice, before)
    assert event["type"] == "product_synced"
    assert event["data"] == {
        "product_id": item["id"],
        "shopify_id": synced["shopify_id"],
        "synced_at": synced["synced_at"],
    }
    assert (await client.post(f"/products/{item['id']}/sync", headers=bob.headers)).status_code == 404


# --- 1000 items ------------------------------------------------------------------------------------------


async def test_1000_items_in_one_request_each(client: httpx.AsyncClient, alice: Account) -> None:
    products = await create_many(client, alice, 1000, "K")
    ids = [item["id"] for item in products]
    timings: dict[str, float] = {}

    async def timed(name: str, body: dict[str, Any]) -> httpx.Response:
        started = time.perf_counter()
        response = await client.post(f"/products/bulk/{name}", json=body, headers=alice.headers)
        timings[name] = time.perf_counter() - started
        assert response.status_code == 200, response.text
        return response

    before = await latest_event_id(client, alice)
    await timed("price-update", {"product_ids": ids, "mode": "percent", "value": 10})
    await timed("stock-update", {"items": [{"product_id": pid, "stock": 3} for pid in ids]})
    response = await timed("delete", {"product_ids": ids})
    assert response.json()["deleted"] == 1000
    events = await events_after(client, alice, before)
    # price: 2 events a product; stock: started, 3 a product (updated, stock changed, stock_low), completed; delete: 1
    assert len(events) == 2000 + (2 + 3000) + 1000
    assert [event["id"] for event in events] == list(range(before + 1, before + 1 + len(events)))
    assert (await client.get("/products", headers=alice.headers)).json()["total"] == 0
    # Speed is measured by benchmarks/, not here (a shared CI machine makes timings noisy): this bound
    # only catches a pathological regression, e.g. one statement per event.
    assert max(timings.values()) < 5.0, timings
