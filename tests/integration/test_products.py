"""/products: CRUD, money as decimal strings, SKUs unique per user, filters, isolation, placeholders."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Account
from tests.support.api import bad_fields, latest_event_id

pytestmark = pytest.mark.anyio

PRODUCT_KEYS = {
    "id",
    "seller_id",
    "sku",
    "name",
    "description",
    "cost_price",
    "price",
    "currency",
    "stock",
    "low_stock_threshold",
    "status",
    "shopify_id",
    "synced_at",
    "version",
    "created_at",
    "updated_at",
}


async def create_product(client: httpx.AsyncClient, account: Account, sku: str, **fields: Any) -> dict[str, Any]:
    body = {"sku": sku, "name": f"Product {sku}", "price": "10.00", **fields}
    response = await client.post("/products", json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    product: dict[str, Any] = response.json()
    return product


async def get_product(client: httpx.AsyncClient, account: Account, product_id: int) -> dict[str, Any]:
    response = await client.get(f"/products/{product_id}", headers=account.headers)
    assert response.status_code == 200, response.text
    product: dict[str, Any] = response.json()
    return product


async def list_skus(client: httpx.AsyncClient, account: Account, **params: Any) -> list[str]:
    response = await client.get("/products", params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["total"] == len(page["items"])  # the tests' lists fit in one page
    return [item["sku"] for item in page["items"]]


async def test_create_returns_the_product(client: httpx.AsyncClient, alice: Account) -> None:
    seller = (await client.post("/sellers", json={"name": "Acme"}, headers=alice.headers)).json()
    body = {
        "sku": "ACME-MUG",
        "name": "Enamel mug",
        "description": "Blue",
        "price": "12.99",
        "cost_price": "4.20",
        "currency": "EUR",
        "stock": 40,
        "low_stock_threshold": 8,
        "status": "draft",
        "seller_id": seller["id"],
    }
    response = await client.post("/products", json=body, headers=alice.headers)
    assert response.status_code == 201, response.text
    product = response.json()
    assert set(product) == PRODUCT_KEYS
    assert {key: product[key] for key in body} == body
    assert product["shopify_id"] is None
    assert product["synced_at"] is None
    assert product["version"] == 1
    assert await get_product(client, alice, product["id"]) == product


async def test_create_defaults(client: httpx.AsyncClient, alice: Account) -> None:
    product = await create_product(client, alice, "BARE")
    assert product["description"] == ""
    assert product["cost_price"] is None
    assert product["currency"] == "USD"
    assert product["stock"] == 0
    assert product["low_stock_threshold"] is None
    assert product["status"] == "active"
    assert product["seller_id"] is None


@pytest.mark.parametrize(
    ("price", "shown"),
    [
        ("99.99", "99.99"),
        (99.99, "99.99"),
        (100, "100.00"),
        ("100", "100.00"),
        ("0.5", "0.50"),
        (0, "0.00"),
        ("7.10", "7.10"),
    ],
)
async def test_money_in_as_string_or_number_out_as_string(
    client: httpx.AsyncClient, alice: Account, price: object, shown: str
) -> None:
    product = await create_product(client, alice, "M-1", price=price, cost_price=price)
    assert product["price"] == shown
    assert product["cost_price"] == shown
    patched = await client.patch(f"/products/{product['id']}", json={"price": price}, headers=alice.headers)
    assert patched.json()["price"] == shown


@pytest.mark.parametrize(
    "price", ["99.999", 99.999, "-1", -0.01, "abc", "1e3", "NaN", True, None, "1" + "0" * 13, 10**30]
)
async def test_a_bad_price_is_400_naming_it(client: httpx.AsyncClient, alice: Account, price: object) -> None:
    response = await client.post("/products", json={"sku": "P", "name": "n", "price": price}, headers=alice.headers)
    assert bad_fields(response) == ["price"]
    assert await list_skus(client, alice) == []


async def test_every_bad_amount_is_named(client: httpx.AsyncClient, alice: Account) -> None:
    # Regression: only the first bad amount was named.
    body = {"sku": "P", "name": "n", "price": "99.999", "cost_price": "1.001"}
    response = await client.post("/products", json=body, headers=alice.headers)
    assert bad_fields(response) == ["price", "cost_price"]


async def test_bad_amounts_are_named_beside_type_errors(client: httpx.AsyncClient, alice: Account) -> None:
    # Regression: a bad amount was hidden while another field had a type error.
    body = {"sku": "", "name": "n", "price": "99.999", "stock": -1, "status": "sold", "colour": "red"}
    response = await client.post("/products", json=body, headers=alice.headers)
    assert bad_fields(response) == ["sku", "price", "stock", "status", "colour"]


async def test_patch_names_every_bad_field(client: httpx.AsyncClient, alice: Account) -> None:
    product = await create_product(client, alice, "P-1")
    body = {"price": "1.234", "cost_price": "x", "stock": -5, "currency": "euro", "status": None}
    response = await client.patch(f"/products/{product['id']}", json=body, headers=alice.headers)
    assert sorted(bad_fields(response)) == ["cost_price", "currency", "price", "status", "stock"]
    assert await get_product(client, alice, product["id"]) == product


async def test_duplicate_sku_is_409_per_user(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    first = await create_product(client, alice, "DUP")
    before = await latest_event_id(client, alice)
    again = await client.post("/products", json={"sku": "DUP", "name": "x", "price": 1}, headers=alice.headers)
    assert again.status_code == 409, again.text
    assert await list_skus(client, alice) == ["DUP"]
    assert await latest_event_id(client, alice) == before
    # another user has their own SKUs
    bobs = await create_product(client, bob, "DUP")
    assert bobs["id"] != first["id"]


async def test_patch_to_a_taken_sku_is_409_and_changes_nothing(client: httpx.AsyncClient, alice: Account) -> None:
    await create_product(client, alice, "A")
    second = await create_product(client, alice, "B")
    before = await latest_event_id(client, alice)
    response = await client.patch(f"/products/{second['id']}", json={"sku": "A", "stock": 9}, headers=alice.headers)
    assert response.status_code == 409, response.text
    assert await get_product(client, alice, second["id"]) == second
    assert await latest_event_id(client, alice) == before


async def test_a_deleted_products_sku_can_be_reused(client: httpx.AsyncClient, alice: Account) -> None:
    product = await create_product(client, alice, "REUSE")
    assert (await client.delete(f"/products/{product['id']}", headers=alice.headers)).status_code == 204
    assert (await create_product(client, alice, "REUSE"))["sku"] == "REUSE"


async def test_patch_changes_only_what_is_sent(client: httpx.AsyncClient, alice: Account) -> None:
    product = await create_product(client, alice, "P-1", description="keep", stock=3)
    response = await client.patch(
        f"/products/{product['id']}", json={"name": "Renamed", "cost_price": None, "stock": 4}, headers=alice.headers
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["name"] == "Renamed"
    assert patched["stock"] == 4
    assert patched["description"] == "keep"
    assert patched["version"] == 2
    assert await get_product(client, alice, product["id"]) == patched


async def test_patch_with_nothing_new_keeps_the_version(client: httpx.AsyncClient, alice: Account) -> None:
    product = await create_product(client, alice, "P-1", price="5.00")
    response = await client.patch(f"/products/{product['id']}", json={"price": 5, "sku": "P-1"}, headers=alice.headers)
    assert response.json() == product


async def test_delete(client: httpx.AsyncClient, alice: Account) -> None:
    product = await create_product(client, alice, "GONE")
    assert (await client.delete(f"/products/{product['id']}", headers=alice.headers)).status_code == 204
    assert (await client.get(f"/products/{product['id']}", headers=alice.headers)).status_code == 404
    assert (await client.delete(f"/products/{product['id']}", headers=alice.headers)).status_code == 404
    assert await list_skus(client, alice) == []


async def test_list_pages(client: httpx.AsyncClient, alice: Account) -> None:
    created = [await create_product(client, alice, f"SKU-{index}") for index in range(4)]
    page = (await client.get("/products", params={"limit": 3, "offset": 1}, headers=alice.headers)).json()
    assert page == {"items": created[1:4], "total": 4, "limit": 3, "offset": 1}
    for limit in (0, 501):
        response = await client.get("/products", params={"limit": limit}, headers=alice.headers)
        assert response.status_code == 400, response.text


async def test_filter_by_seller_and_status(client: httpx.AsyncClient, alice: Account) -> None:
    acme = (await client.post("/sellers", json={"name": "Acme"}, headers=alice.headers)).json()["id"]
    globex = (await client.post("/sellers", json={"name": "Globex"}, headers=alice.headers)).json()["id"]
    await create_product(client, alice, "A-1", seller_id=acme)
    await create_product(client, alice, "A-2", seller_id=acme, status="draft")
    await create_product(client, alice, "G-1", seller_id=globex, status="archived")
    await create_product(client, alice, "NONE")
    assert await list_skus(client, alice, seller_id=acme) == ["A-1", "A-2"]
    assert await list_skus(client, alice, seller_id=globex) == ["G-1"]
    assert await list_skus(client, alice, status="draft") == ["A-2"]
    assert await list_skus(client, alice, status="active") == ["A-1", "NONE"]
    assert await list_skus(client, alice, seller_id=acme, status="active") == ["A-1"]
    response = await client.get("/products", params={"status": "sold"}, headers=alice.headers)
    assert response.status_code == 400


async def test_filter_by_text_in_name_or_sku(client: httpx.AsyncClient, alice: Account) -> None:
    await create_product(client, alice, "MUG-1", name="Enamel Mug")
    await create_product(client, alice, "LAMP-1", name="Solar lamp")
    await create_product(client, alice, "TENT-1", name="Tent for two")
    await create_product(client, alice, "CAFE-1", name="Éclair café")
    assert await list_skus(client, alice, q="mug") == ["MUG-1"]
    assert await list_skus(client, alice, q="LAMP") == ["LAMP-1"]
    assert await list_skus(client, alice, q="-1") == ["MUG-1", "LAMP-1", "TENT-1", "CAFE-1"]
    assert await list_skus(client, alice, q="café") == ["CAFE-1"]
    assert await list_skus(client, alice, q="Éclair") == ["CAFE-1"]
    assert await list_skus(client, alice, q="nothing") == []


async def test_text_filter_treats_wildcards_as_text(client: httpx.AsyncClient, alice: Account) -> None:
    # Regression: "%" and "_" were LIKE wildcards, so q="_" matched every product.
    await create_product(client, alice, "A_1", name="Underscore")
    await create_product(client, alice, "AB1", name="Fifty")
    await create_product(client, alice, "C-1", name="100% cotton")
    assert await list_skus(client, alice, q="A_1") == ["A_1"]
    assert await list_skus(client, alice, q="_") == ["A_1"]
    assert await list_skus(client, alice, q="%") == ["C-1"]
    assert await list_skus(client, alice, q="0%") == ["C-1"]
    assert await list_skus(client, alice, q="\\") == []


async def test_filter_low_stock(client: httpx.AsyncClient, alice: Account) -> None:
    # the user's threshold is 5 by default; a product's own threshold wins
    await create_product(client, alice, "EMPTY", stock=0)
    await create_product(client, alice, "AT-5", stock=5)
    await create_product(client, alice, "SIX", stock=6)
    await create_product(client, alice, "OWN-LOW", stock=8, low_stock_threshold=10)
    await create_product(client, alice, "OWN-OK", stock=2, low_stock_threshold=1)
    assert await list_skus(client, alice, low_stock="true") == ["EMPTY", "AT-5", "OWN-LOW"]
    assert await list_skus(client, alice, low_stock="false") == ["SIX", "OWN-OK"]
    settings = await client.patch("/settings", json={"low_stock_threshold": 6}, headers=alice.headers)
    assert settings.status_code == 200, settings.text
    assert await list_skus(client, alice, low_stock="true") == ["EMPTY", "AT-5", "SIX", "OWN-LOW"]


async def test_filters_never_show_another_users_products(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    await create_product(client, alice, "ALICE-1", stock=0)
    await create_product(client, bob, "BOB-1", stock=0)
    assert await list_skus(client, bob) == ["BOB-1"]
    assert await list_skus(client, bob, q="ALICE") == []
    assert await list_skus(client, bob, low_stock="true") == ["BOB-1"]


async def test_another_users_product_is_404_and_untouched(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    secret = await create_product(client, alice, "ALICE-SECRET", name="Alice's secret product")
    path = f"/products/{secret['id']}"
    before = await latest_event_id(client, alice)
    for method, body in [("GET", None), ("PATCH", {"stock": 0}), ("DELETE", None), ("POST", None)]:
        url = f"{path}/sync" if method == "POST" else path
        response = await client.request(method, url, json=body, headers=bob.headers)
        assert response.status_code == 404, (method, response.text)
        assert "ALICE-SECRET" not in response.text
        assert "secret product" not in response.text
    assert await get_product(client, alice, secret["id"]) == secret
    assert await latest_event_id(client, alice) == before


async def test_unknown_id_is_404(client: httpx.AsyncClient, alice: Account) -> None:
    for method, body in [("GET", None), ("PATCH", {"stock": 1}), ("DELETE", None)]:
        response = await client.request(method, "/products/987654", json=body, headers=alice.headers)
        assert response.status_code == 404, (method, response.text)


async def test_another_users_seller_cannot_be_linked(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    alices_seller = (await client.post("/sellers", json={"name": "Alice Supplier"}, headers=alice.headers)).json()
    body = {"sku": "B-1", "name": "n", "price": 1, "seller_id": alices_seller["id"]}
    response = await client.post("/products", json=body, headers=bob.headers)
    assert response.status_code == 404, response.text
    assert "Alice Supplier" not in response.text
    assert await list_skus(client, bob) == []
    product = await create_product(client, bob, "B-2")
    linked = await client.patch(
        f"/products/{product['id']}", json={"seller_id": alices_seller["id"]}, headers=bob.headers
    )
    assert linked.status_code == 404, linked.text
    assert await get_product(client, bob, product["id"]) == product


async def test_a_body_over_one_mebibyte_is_413(client: httpx.AsyncClient, alice: Account) -> None:
    body = {"sku": "BIG", "name": "n", "price": 1, "description": "d" * (1024 * 1024)}
    response = await client.post("/products", json=body, headers=alice.headers)
    assert response.status_code == 413, response.text
    assert await list_skus(client, alice) == []


async def test_a_body_just_under_the_limit_is_accepted(client: httpx.AsyncClient, alice: Account) -> None:
    description = "d" * 10_000  # the field's own limit
    product = await create_product(client, alice, "LONG", description=description)
    assert product["description"] == description


async def test_every_page_states_the_same_total(client: httpx.AsyncClient, alice: Account) -> None:
    """The last page knows its total without counting; a page past the end counts: all agree."""
    for index in range(5):
        created = await client.post(
            "/products", json={"sku": f"PAGE-{index}", "name": "p", "price": "1.00"}, headers=alice.headers
        )
        assert created.status_code == 201, created.text
    for offset in range(7):
        page = (await client.get(f"/products?limit=2&offset={offset}", headers=alice.headers)).json()
        assert page["total"] == 5, (offset, page)
        assert len(page["items"]) == max(0, min(2, 5 - offset))
