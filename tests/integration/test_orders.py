"""/orders: creation with items, external ids unique per user, the status machine, isolation, placeholders."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Account
from tests.support.api import bad_fields

pytestmark = pytest.mark.anyio

ORDER_KEYS = {
    "id",
    "external_id",
    "customer",
    "items",
    "total",
    "currency",
    "status",
    "carrier",
    "tracking_number",
    "version",
    "created_at",
    "updated_at",
}
LEGAL_PATHS = [
    ["processing", "shipped", "delivered"],
    ["cancelled"],
    ["processing", "cancelled"],
]
ILLEGAL_MOVES = [
    ([], "shipped"),
    ([], "delivered"),
    (["processing"], "pending"),
    (["processing"], "delivered"),
    (["processing", "shipped"], "pending"),
    (["processing", "shipped"], "processing"),
    (["processing", "shipped"], "cancelled"),
    (["processing", "shipped", "delivered"], "pending"),
    (["processing", "shipped", "delivered"], "cancelled"),
    (["cancelled"], "pending"),
    (["cancelled"], "processing"),
]


async def create_order(client: httpx.AsyncClient, account: Account, **fields: Any) -> dict[str, Any]:
    body = {"items": [{"sku": "X-1", "quantity": 1, "unit_price": "5.00"}], **fields}
    response = await client.post("/orders", json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    return order


async def create_product(client: httpx.AsyncClient, account: Account, sku: str, price: str) -> dict[str, Any]:
    body = {"sku": sku, "name": sku, "price": price, "stock": 10}
    response = await client.post("/products", json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    product: dict[str, Any] = response.json()
    return product


async def get_order(client: httpx.AsyncClient, account: Account, order_id: int) -> dict[str, Any]:
    response = await client.get(f"/orders/{order_id}", headers=account.headers)
    assert response.status_code == 200, response.text
    order: dict[str, Any] = response.json()
    return order


async def set_status(client: httpx.AsyncClient, account: Account, order_id: int, status: str) -> httpx.Response:
    return await client.patch(f"/orders/{order_id}", json={"status": status}, headers=account.headers)


async def event_types(client: httpx.AsyncClient, account: Account) -> list[str]:
    response = await client.get("/events/history", params={"limit": 1000}, headers=account.headers)
    return [event["type"] for event in response.json()["events"]]


async def test_create_with_products_by_id_and_sku(client: httpx.AsyncClient, alice: Account) -> None:
    mug = await create_product(client, alice, "MUG", "12.99")
    lamp = await create_product(client, alice, "LAMP", "24.90")
    body = {
        "external_id": "shop-1001",
        "customer": {"name": "Ann Buyer", "email": "ann@example.com", "address": "1 Main St, Springfield"},
        "items": [
            {"product_id": mug["id"], "quantity": 2},
            {"sku": "LAMP", "quantity": 1},
            {"sku": "GIFT-WRAP", "quantity": 1, "unit_price": 1.5},
        ],
        "currency": "EUR",
    }
    response = await client.post("/orders", json=body, headers=alice.headers)
    assert response.status_code == 201, response.text
    order = response.json()
    assert set(order) == ORDER_KEYS
    assert order["external_id"] == "shop-1001"
    assert order["customer"] == body["customer"]
    assert order["items"] == [
        {"product_id": mug["id"], "sku": "MUG", "quantity": 2, "unit_price": "12.99"},
        {"product_id": lamp["id"], "sku": "LAMP", "quantity": 1, "unit_price": "24.90"},
        {"product_id": None, "sku": "GIFT-WRAP", "quantity": 1, "unit_price": "1.50"},
    ]
    assert order["total"] == "52.38"
    assert order["currency"] == "EUR"
    assert order["status"] == "pending"
    assert order["carrier"] is None
    assert order["tracking_number"] is None
    assert order["version"] == 1
    assert await get_order(client, alice, order["id"]) == order


async def test_create_defaults(client: httpx.AsyncClient, alice: Account) -> None:
    order = await create_order(client, alice)
    assert order["external_id"]  # a local id is made up
    assert order["customer"] == {"name": "", "email": None, "address": ""}
    assert order["currency"] == "USD"
    assert order["total"] == "5.00"


@pytest.mark.parametrize(("total", "shown"), [("99.99", "99.99"), (99.99, "99.99"), (100, "100.00"), ("0", "0.00")])
async def test_a_given_total_is_kept(client: httpx.AsyncClient, alice: Account, total: object, shown: str) -> None:
    assert (await create_order(client, alice, total=total))["total"] == shown


async def test_bad_money_is_400_naming_each_field(client: httpx.AsyncClient, alice: Account) -> None:
    body = {
        "total": "99.999",
        "items": [
            {"sku": "A", "quantity": 1, "unit_price": "1.001"},
            {"sku": "B", "quantity": 1, "unit_price": "2.00"},
            {"sku": "C", "quantity": 1, "unit_price": -1},
        ],
    }
    response = await client.post("/orders", json=body, headers=alice.headers)
    assert sorted(bad_fields(response)) == ["items.0.unit_price", "items.2.unit_price", "total"]
    assert (await client.get("/orders", headers=alice.headers)).json()["total"] == 0


async def test_items_adding_up_to_a_trillion_are_400_not_500(client: httpx.AsyncClient, alice: Account) -> None:
    # Regression: the computed total overflowed the database's integer (a 500).
    item = {"sku": "GOLD", "quantity": 1_000_000, "unit_price": "999999999999.99"}
    response = await client.post("/orders", json={"items": [item, item]}, headers=alice.headers)
    assert bad_fields(response) == ["items"]
    small = {"sku": "GOLD", "quantity": 1000, "unit_price": "1000000000.00"}  # exactly a trillion
    assert bad_fields(await client.post("/orders", json={"items": [small]}, headers=alice.headers)) == ["items"]
    assert (await client.get("/orders", headers=alice.headers)).json()["total"] == 0
    # with a total given, the items' sum is not stored and does not matter
    kept = await create_order(client, alice, items=[item], total="100.00")
    assert kept["total"] == "100.00"


async def test_items_need_a_product_or_a_price(client: httpx.AsyncClient, alice: Account) -> None:
    body = {
        "items": [{"quantity": 1}, {"sku": "UNKNOWN", "quantity": 1}, {"sku": "OK", "quantity": 1, "unit_price": 1}]
    }
    response = await client.post("/orders", json=body, headers=alice.headers)
    assert bad_fields(response) == ["items.0", "items.1.unit_price"]


async def test_type_errors_in_items_are_named_by_index(client: httpx.AsyncClient, alice: Account) -> None:
    body = {
        "items": [{"sku": "A", "quantity": 0}, {"sku": "B", "quantity": 1}, {"sku": "C", "quantity": "two"}],
        "customer": {"email": "nope"},
        "currency": "usd",
    }
    response = await client.post("/orders", json=body, headers=alice.headers)
    assert bad_fields(response) == ["items.0.quantity", "items.2.quantity", "customer.email", "currency"]


@pytest.mark.parametrize("items", [[], None, "X-1", [{"sku": "A", "quantity": 1, "colour": "red"}]])
async def test_bad_items_are_400(client: httpx.AsyncClient, alice: Account, items: object) -> None:
    response = await client.post("/orders", json={"items": items}, headers=alice.headers)
    assert bad_fields(response)[0].startswith("items")


async def test_duplicate_external_id_is_409_per_user(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    await create_order(client, alice, external_id="shop-1")
    types_before = await event_types(client, alice)
    again = await client.post(
        "/orders",
        json={"external_id": "shop-1", "items": [{"sku": "Y", "quantity": 1, "unit_price": 1}]},
        headers=alice.headers,
    )
    assert again.status_code == 409, again.text
    assert (await client.get("/orders", headers=alice.headers)).json()["total"] == 1
    assert await event_types(client, alice) == types_before
    assert (await create_order(client, bob, external_id="shop-1"))["external_id"] == "shop-1"


async def test_another_users_product_cannot_be_ordered(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    secret = await create_product(client, alice, "ALICE-ONLY", "7.77")
    body = {"items": [{"product_id": secret["id"], "quantity": 1}]}
    response = await client.post("/orders", json=body, headers=bob.headers)
    assert response.status_code == 404, response.text
    assert "ALICE-ONLY" not in response.text
    assert (await client.get("/orders", headers=bob.headers)).json()["total"] == 0
    # by SKU it is just an unknown SKU to bob: a price is needed, and alice's is not used
    by_sku = await create_order(client, bob, items=[{"sku": "ALICE-ONLY", "quantity": 1, "unit_price": 1}])
    assert by_sku["items"][0]["product_id"] is None
    assert by_sku["items"][0]["unit_price"] == "1.00"


async def test_list_pages_and_status_filter(client: httpx.AsyncClient, alice: Account) -> None:
    orders = [await create_order(client, alice, external_id=f"o-{index}") for index in range(3)]
    assert (await set_status(client, alice, orders[1]["id"], "processing")).status_code == 200
    page = (await client.get("/orders", params={"limit": 2}, headers=alice.headers)).json()
    assert [order["id"] for order in page["items"]] == [orders[0]["id"], orders[1]["id"]]
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 0)
    assert page["items"][0] == orders[0]
    processing = (await client.get("/orders", params={"status": "processing"}, headers=alice.headers)).json()
    assert [order["external_id"] for order in processing["items"]] == ["o-1"]
    assert processing["total"] == 1
    for params in ({"limit": 0}, {"limit": 501}, {"status": "lost"}):
        assert (await client.get("/orders", params=params, headers=alice.headers)).status_code == 400


@pytest.mark.parametrize("path", LEGAL_PATHS, ids="->".join)
async def test_legal_status_moves(client: httpx.AsyncClient, alice: Account, path: list[str]) -> None:
    order = await create_order(client, alice)
    previous = "pending"
    for version, status in enumerate(path, start=2):
        response = await set_status(client, alice, order["id"], status)
        assert response.status_code == 200, (previous, status, response.text)
        assert response.json()["status"] == status
        assert response.json()["version"] == version
        previous = status
    assert (await get_order(client, alice, order["id"]))["status"] == path[-1]


def move_name(path: list[str], target: str) -> str:
    return f"{['pending', *path][-1]}->{target}"


@pytest.mark.parametrize(("path", "target"), ILLEGAL_MOVES, ids=[move_name(*move) for move in ILLEGAL_MOVES])
async def test_illegal_status_moves_are_409_and_change_nothing(
    client: httpx.AsyncClient, alice: Account, path: list[str], target: str
) -> None:
    order = await create_order(client, alice)
    for status in path:
        assert (await set_status(client, alice, order["id"], status)).status_code == 200
    before = await get_order(client, alice, order["id"])
    types_before = await event_types(client, alice)
    response = await client.patch(
        f"/orders/{order['id']}",
        json={"status": target, "carrier": "UPS", "tracking_number": "1Z"},
        headers=alice.headers,
    )
    assert response.status_code == 409, response.text
    assert await get_order(client, alice, order["id"]) == before
    assert await event_types(client, alice) == types_before


async def test_staying_in_the_same_status_is_a_no_op(client: httpx.AsyncClient, alice: Account) -> None:
    order = await create_order(client, alice)
    types_before = await event_types(client, alice)
    response = await set_status(client, alice, order["id"], "pending")
    assert response.status_code == 200
    assert response.json() == order
    assert await event_types(client, alice) == types_before


async def test_patch_customer_and_shipping_fields(client: httpx.AsyncClient, alice: Account) -> None:
    order = await create_order(client, alice, customer={"name": "Ann", "email": "ann@example.com", "address": "Old"})
    body = {"customer": {"address": "New address"}, "carrier": "DHL", "tracking_number": "JD0001"}
    response = await client.patch(f"/orders/{order['id']}", json=body, headers=alice.headers)
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["customer"] == {"name": "Ann", "email": "ann@example.com", "address": "New address"}
    assert (patched["carrier"], patched["tracking_number"], patched["version"]) == ("DHL", "JD0001", 2)
    assert await get_order(client, alice, order["id"]) == patched


async def test_patch_names_every_bad_field(client: httpx.AsyncClient, alice: Account) -> None:
    order = await create_order(client, alice)
    body = {"status": "lost", "customer": {"email": "x", "phone": "1"}, "carrier": "c" * 101, "items": []}
    response = await client.patch(f"/orders/{order['id']}", json=body, headers=alice.headers)
    assert sorted(bad_fields(response)) == ["carrier", "customer.email", "customer.phone", "items", "status"]
    assert await get_order(client, alice, order["id"]) == order


async def test_another_users_order_is_404_and_untouched(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    secret = await create_order(client, alice, external_id="ALICE-ORDER", customer={"name": "Alice Customer"})
    path = f"/orders/{secret['id']}"
    for method, url, body in [
        ("GET", path, None),
        ("PATCH", path, {"status": "cancelled"}),
        ("POST", f"{path}/shipment", {"carrier": "UPS", "tracking_number": "1"}),
        ("POST", f"{path}/process", None),
    ]:
        response = await client.request(method, url, json=body, headers=bob.headers)
        assert response.status_code == 404, (method, url, response.text)
        assert "ALICE-ORDER" not in response.text
        assert "Alice Customer" not in response.text
    assert await get_order(client, alice, secret["id"]) == secret
    assert (await client.get("/orders", headers=bob.headers)).json()["total"] == 0


async def test_unknown_order_is_404(client: httpx.AsyncClient, alice: Account) -> None:
    assert (await client.get("/orders/987654", headers=alice.headers)).status_code == 404
    assert (await set_status(client, alice, 987654, "processing")).status_code == 404


async def test_a_body_over_one_mebibyte_is_413(client: httpx.AsyncClient, alice: Account) -> None:
    body = {"items": [{"sku": "A", "quantity": 1, "unit_price": 1}], "customer": {"address": "a" * (1024 * 1024)}}
    response = await client.post("/orders", json=body, headers=alice.headers)
    assert response.status_code == 413, response.text
