"""Deleting a product that orders name: in the same change, each such order gets a new version and
``updated_at`` and an ``order_updated`` event (the order as GET renders it, the item's
``product_id`` now null), after the ``product_deleted`` events, orders by id."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Account
from tests.support.api import latest_event_id

pytestmark = pytest.mark.anyio


async def product(client: httpx.AsyncClient, account: Account, sku: str) -> int:
    response = await client.post("/products", json={"sku": sku, "name": sku, "price": "1.00"}, headers=account.headers)
    assert response.status_code == 201, response.text
    product_id: int = response.json()["id"]
    return product_id


async def order(client: httpx.AsyncClient, account: Account, *product_ids: int) -> dict[str, Any]:
    items = [{"product_id": product_id, "quantity": 1} for product_id in product_ids]
    response = await client.post("/orders", json={"items": items}, headers=account.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def events_after(client: httpx.AsyncClient, account: Account, after: int) -> list[dict[str, Any]]:
    response = await client.get("/events/history", params={"after": after, "limit": 100}, headers=account.headers)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


async def current(client: httpx.AsyncClient, account: Account, order_id: int) -> dict[str, Any]:
    response = await client.get(f"/orders/{order_id}", headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert response.headers["etag"] == f'"v{body["version"]}"'
    return body


async def test_deleting_a_product_updates_the_orders_that_name_it(client: httpx.AsyncClient, alice: Account) -> None:
    mug, cup, lid = [await product(client, alice, sku) for sku in ("MUG", "CUP", "LID")]
    both = await order(client, alice, mug, cup)
    other = await order(client, alice, lid)
    mug_again = await order(client, alice, mug)
    before = await latest_event_id(client, alice)

    assert (await client.delete(f"/products/{mug}", headers=alice.headers)).status_code == 204

    events = await events_after(client, alice, before)
    assert [(event["type"], event["data"].get("id")) for event in events] == [
        ("product_deleted", mug),
        ("order_updated", both["id"]),
        ("order_updated", mug_again["id"]),
    ]
    assert [event["id"] for event in events] == [before + 1, before + 2, before + 3]
    for event, first in zip(events[1:], (both, mug_again), strict=True):
        now = await current(client, alice, first["id"])
        assert event["data"] == now  # the order as GET renders it
        assert now["version"] == first["version"] + 1
        assert now["updated_at"] > first["updated_at"]
        assert [item["product_id"] for item in now["items"]] == [None if pid == mug else pid for pid in (
            [mug, cup] if first["id"] == both["id"] else [mug]
        )]  # fmt: skip
        assert [item["sku"] for item in now["items"]] == [item["sku"] for item in first["items"]]
    assert await current(client, alice, other["id"]) == other  # untouched


async def test_a_bulk_deletion_updates_each_order_once(client: httpx.AsyncClient, alice: Account) -> None:
    a, b, c, d = [await product(client, alice, sku) for sku in ("A", "B", "C", "D")]
    first = await order(client, alice, b)
    untouched = await order(client, alice, d)
    second = await order(client, alice, c, b)
    third = await order(client, alice, a)
    before = await latest_event_id(client, alice)

    response = await client.post("/products/bulk/delete", json={"product_ids": [c, a, b]}, headers=alice.headers)
    assert response.status_code == 200, response.text

    events = await events_after(client, alice, before)
    assert [(event["type"], event["data"]["id"]) for event in events] == [
        ("product_deleted", c),
        ("product_deleted", a),
        ("product_deleted", b),
        ("order_updated", first["id"]),
        ("order_updated", second["id"]),
        ("order_updated", third["id"]),
    ]
    for event, was in zip(events[3:], (first, second, third), strict=True):
        now = await current(client, alice, was["id"])
        assert event["data"] == now
        assert now["version"] == was["version"] + 1
        assert all(item["product_id"] is None for item in now["items"])
    assert await current(client, alice, untouched["id"]) == untouched


async def test_a_product_no_order_names_records_only_its_deletion(client: httpx.AsyncClient, alice: Account) -> None:
    lone = await product(client, alice, "LONE")
    kept = await order(client, alice, await product(client, alice, "KEPT"))
    before = await latest_event_id(client, alice)
    assert (await client.delete(f"/products/{lone}", headers=alice.headers)).status_code == 204
    assert [event["type"] for event in await events_after(client, alice, before)] == ["product_deleted"]
    assert await current(client, alice, kept["id"]) == kept


async def test_another_users_orders_are_not_touched(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    mine = await product(client, alice, "SHARED-SKU")
    theirs = await order(client, bob, await product(client, bob, "SHARED-SKU"))
    bob_before = await latest_event_id(client, bob)
    assert (await client.delete(f"/products/{mine}", headers=alice.headers)).status_code == 204
    assert await latest_event_id(client, bob) == bob_before
    assert await current(client, bob, theirs["id"]) == theirs
