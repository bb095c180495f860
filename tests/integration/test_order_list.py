"""``GET /orders`` lists the orders' stored renderings (``orders.rendered``): after every kind of
write that changes an order or its items, each listed order is the order ``GET /orders/{id}``
reads and the data of its latest event; a filter and pages list the same. Filling the renderings of
orders already there (the migration) renders each as the API does."""

from __future__ import annotations

import contextlib
import importlib
import io
from typing import Any

import httpx
import msgspec
import pytest
from piccolo.apps.migrations.commands.forwards import run_forwards

from domain.db import Database
from domain.events import encode_data
from domain.services.orders import load_order
from tests.conftest import Account, insert, started
from tests.support.api import orders_listed_as_read

pytestmark = pytest.mark.anyio

FILLING = importlib.import_module("migrations.dropsync_2026_12_06t21_50_01_000000")
BEFORE_THE_COLUMN = "2026-12-06T18:00:00:000000"
AWKWARD = 'Zoë "Q" \\ </script> \u2028 \t\n 😀'  # quotes, a backslash, a line separator, an emoji


async def call(client: httpx.AsyncClient, account: Account, method: str, path: str, body: Any = None) -> Any:
    response = await client.request(method, path, json=body, headers=account.headers)
    assert response.status_code < 300, (method, path, response.status_code, response.text)
    return response.json() if response.content else None


async def stored_renderings_are_current(client: httpx.AsyncClient, database: Database, account: Account) -> None:
    """Each order of ``account`` has its rendering stored, of its version, as GET answers it."""
    rows = await database.fetch(
        "SELECT id, version, rendered_version, rendered FROM orders WHERE user_id = ? ORDER BY id", account.id
    )
    assert rows
    for row in rows:
        assert row["rendered_version"] == row["version"], row
        assert row["rendered"].encode() == (await client.get(f"/orders/{row['id']}", headers=account.headers)).content


async def test_every_write_to_an_order_leaves_the_list_as_get_reads_it(
    client: httpx.AsyncClient, alice: Account, bob: Account, database: Database
) -> None:
    products = [
        await call(client, alice, "POST", "/products", {"sku": f"L-{n}", "name": f"p{n}", "price": "2.50", "stock": 50})
        for n in range(4)
    ]
    ids = [product["id"] for product in products]
    by_id = await call(client, alice, "POST", "/orders", {"items": [{"product_id": ids[0], "quantity": 2}]})
    awkward = await call(
        client,
        alice,
        "POST",
        "/orders",
        {
            "items": [
                {"sku": "L-1", "quantity": 1, "unit_price": "0.05"},
                {"sku": "NOT-MINE", "quantity": 3, "unit_price": "999999.99"},
                {"product_id": ids[2], "quantity": 1},
            ],
            "customer": {"name": AWKWARD, "email": "z@example.com", "address": AWKWARD},
            "currency": "EUR",
            "external_id": "ext-" + AWKWARD.replace(" ", "_").strip(),
        },
    )
    plain = await call(client, alice, "POST", "/orders", {"items": [{"product_id": ids[3], "quantity": 1}]})
    await call(client, bob, "POST", "/orders", {"items": [{"sku": "BOBS", "quantity": 1, "unit_price": "1.00"}]})
    listed = await orders_listed_as_read(client, alice, page=2)
    await stored_renderings_are_current(client, database, alice)
    assert [order["id"] for order in listed] == [by_id["id"], awkward["id"], plain["id"]]
    assert listed[1]["customer"]["name"] == AWKWARD

    await call(client, alice, "PATCH", f"/orders/{by_id['id']}", {"customer": {"email": None}, "carrier": "DHL"})
    await call(client, alice, "PATCH", f"/orders/{plain['id']}", {"status": "cancelled"})
    await call(client, alice, "POST", f"/orders/{by_id['id']}/process")
    await call(client, alice, "POST", f"/orders/{by_id['id']}/shipment", {"carrier": "UPS", "tracking_number": "1Z"})
    await call(client, alice, "PATCH", f"/orders/{awkward['id']}", {"status": "processing"})
    await orders_listed_as_read(client, alice)
    await stored_renderings_are_current(client, database, alice)

    # deleting a product nulls it in the orders that name it: one alone, then two in bulk
    await call(client, alice, "DELETE", f"/products/{ids[0]}")
    await call(client, alice, "POST", "/products/bulk/delete", {"product_ids": [ids[1], ids[2]]})
    # a product's own change (its SKU, its price) leaves the orders as they were
    await call(client, alice, "PATCH", f"/products/{ids[3]}", {"sku": "RENAMED", "price": "9.00"})
    listed = await orders_listed_as_read(client, alice)
    await stored_renderings_are_current(client, database, alice)
    assert [item["product_id"] for item in listed[1]["items"]] == [None, None, None]
    assert listed[0]["items"][0]["product_id"] is None
    assert listed[2]["items"][0] | {"sku": "L-3", "unit_price": "2.50"} == listed[2]["items"][0]

    filtered = (await client.get("/orders?status=shipped", headers=alice.headers)).json()
    assert (filtered["items"], filtered["total"]) == ([listed[0]], 1)
    empty = (await client.get("/orders?status=delivered", headers=alice.headers)).json()
    assert (empty["items"], empty["total"]) == ([], 0)
    assert [order["items"][0]["sku"] for order in await orders_listed_as_read(client, bob)] == ["BOBS"]


async def test_an_order_an_older_release_wrote_is_listed_as_get_reads_it(
    client: httpx.AsyncClient, alice: Account, database: Database
) -> None:
    # During a rolling upgrade an older release, which knows no renderings, writes beside this one.
    edited = await call(client, alice, "POST", "/orders", {"items": [{"sku": "E", "quantity": 1, "unit_price": "1"}]})
    kept = await call(client, alice, "POST", "/orders", {"items": [{"sku": "K", "quantity": 1, "unit_price": "2"}]})
    await database.fetch(
        "UPDATE orders SET customer_name = ?, version = version + 1 WHERE id = ?", "Edited by the old", edited["id"]
    )
    added = await insert(database, "orders", user_id=alice.id, external_id="from-the-old", total_cents=300)
    await insert(database, "order_items", order_id=added, sku="OLD", quantity=3, unit_price_cents=100)

    response = await client.get("/orders", headers=alice.headers)
    assert response.status_code == 200, response.text
    listed = response.json()["items"]
    assert [order["id"] for order in listed] == [edited["id"], kept["id"], added]
    for order in listed:
        assert order == await call(client, alice, "GET", f"/orders/{order['id']}")
    assert (listed[0]["customer"]["name"], listed[0]["version"]) == ("Edited by the old", 2)
    assert listed[1] == kept
    assert listed[2]["items"] == [{"product_id": None, "sku": "OLD", "quantity": 3, "unit_price": "1.00"}]


# --- filling the renderings of the orders already there -----------------------------------------------------


async def test_the_migration_fills_the_renderings_of_the_orders_already_there(fresh_url: str) -> None:
    async with started(fresh_url) as db:
        with contextlib.redirect_stdout(io.StringIO()):
            assert (await run_forwards(app_name="dropsync", migration_id=BEFORE_THE_COLUMN)).success
        ann = await insert(db, "users", username="ann-renderings", password_hash="x")
        bea = await insert(db, "users", username="bea-renderings", password_hash="x")
        mug = await insert(db, "products", user_id=ann, sku="MUG", name="Mug")
        order = await insert(
            db, "orders", user_id=ann, external_id="o-1", customer_name=AWKWARD, customer_email="a@b.example",
            total_cents=305, currency="EUR", status="shipped", carrier="DHL", tracking_number="T1", version=4,
            created_at=1_700_000_000_123, updated_at=1_700_000_000_999,
        )  # fmt: skip
        item = {"order_id": order, "quantity": 2, "unit_price_cents": 150, "position": 0}
        await insert(db, "order_items", **item, product_id=mug, sku="MUG")
        await insert(db, "order_items", **item | {"quantity": 1, "unit_price_cents": 5, "position": 1}, sku="GONE")
        others = [await insert(db, "orders", user_id=bea, external_id=f"b-{n}") for n in range(3)]

        await db.migrate()

        rows = await db.fetch("SELECT id, user_id, rendered FROM orders ORDER BY id")
        assert [row["id"] for row in rows] == [order, *others]
        assert rows[0]["rendered"] == msgspec.json.encode({
            "id": order,
            "external_id": "o-1",
            "customer": {"name": AWKWARD, "email": "a@b.example", "address": ""},
            "items": [
                {"product_id": mug, "sku": "MUG", "quantity": 2, "unit_price": "1.50"},
                {"product_id": None, "sku": "GONE", "quantity": 1, "unit_price": "0.05"},
            ],
            "total": "3.05",
            "currency": "EUR",
            "status": "shipped",
            "carrier": "DHL",
            "tracking_number": "T1",
            "version": 4,
            "created_at": "2023-11-14T22:13:20.123Z",
            "updated_at": "2023-11-14T22:13:20.999Z",
        }).decode()  # fmt: skip
        for row in rows:  # as the API renders them now
            assert row["rendered"].encode() == encode_data(await load_order(row["user_id"], row["id"]))
        versions = await db.fetch("SELECT version, rendered_version FROM orders ORDER BY id")
        assert [(row["version"], row["rendered_version"]) for row in versions] == [(4, 4), (1, 1), (1, 1), (1, 1)]
        assert await FILLING.fill_renderings() == 4  # again: the same renderings
        assert await db.fetch("SELECT id, user_id, rendered FROM orders ORDER BY id") == rows
