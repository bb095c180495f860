"""/sellers: CRUD, pages, validation, isolation between users, and the feed-import placeholder."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Account
from tests.support.api import bad_fields, latest_event_id

pytestmark = pytest.mark.anyio

SELLER_KEYS = {"id", "name", "email", "feed_url", "feed_format", "notes", "version", "created_at", "updated_at"}


async def create_seller(client: httpx.AsyncClient, account: Account, **fields: Any) -> dict[str, Any]:
    response = await client.post("/sellers", json={"name": "Acme", **fields}, headers=account.headers)
    assert response.status_code == 201, response.text
    seller: dict[str, Any] = response.json()
    return seller


async def test_create_returns_the_seller(client: httpx.AsyncClient, alice: Account) -> None:
    fields = {
        "name": "Acme Supplies",
        "email": "orders@acme.example",
        "feed_url": "https://acme.example/feed.json",
        "feed_format": "json",
        "notes": "Ships in 2 days",
    }
    response = await client.post("/sellers", json=fields, headers=alice.headers)
    assert response.status_code == 201, response.text
    seller = response.json()
    assert set(seller) == SELLER_KEYS
    assert {key: seller[key] for key in fields} == fields
    assert seller["version"] == 1
    assert seller["created_at"].endswith("Z")
    assert seller["created_at"] == seller["updated_at"]


async def test_only_the_name_is_required(client: httpx.AsyncClient, alice: Account) -> None:
    seller = await create_seller(client, alice, name="Bare")
    assert seller["email"] is None
    assert seller["feed_url"] is None
    assert seller["feed_format"] is None
    assert seller["notes"] is None


async def test_get_returns_what_create_returned(client: httpx.AsyncClient, alice: Account) -> None:
    seller = await create_seller(client, alice, email="a@b.example")
    response = await client.get(f"/sellers/{seller['id']}", headers=alice.headers)
    assert response.status_code == 200
    assert response.json() == seller


async def test_list_is_a_page_in_id_order(client: httpx.AsyncClient, alice: Account) -> None:
    created = [await create_seller(client, alice, name=f"Seller {index}") for index in range(5)]
    everything = (await client.get("/sellers", headers=alice.headers)).json()
    assert everything == {"items": created, "total": 5, "limit": 50, "offset": 0}

    page = (await client.get("/sellers", params={"limit": 2, "offset": 1}, headers=alice.headers)).json()
    assert page == {"items": created[1:3], "total": 5, "limit": 2, "offset": 1}
    last = (await client.get("/sellers", params={"limit": 2, "offset": 4}, headers=alice.headers)).json()
    assert last["items"] == created[4:]
    beyond = (await client.get("/sellers", params={"offset": 99}, headers=alice.headers)).json()
    assert beyond == {"items": [], "total": 5, "limit": 50, "offset": 99}


@pytest.mark.parametrize(
    ("params", "key"),
    [({"limit": 0}, "limit"), ({"limit": 501}, "limit"), ({"offset": -1}, "offset"), ({"limit": "x"}, "limit")],
)
async def test_list_bounds(client: httpx.AsyncClient, alice: Account, params: dict[str, Any], key: str) -> None:
    response = await client.get("/sellers", params=params, headers=alice.headers)
    assert response.status_code == 400, response.text
    assert [(item["key"], item["source"]) for item in response.json()["extra"]] == [(key, "query")]


async def test_list_limit_500_is_allowed(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.get("/sellers", params={"limit": 500}, headers=alice.headers)
    assert response.status_code == 200
    assert response.json()["limit"] == 500


async def test_each_user_lists_only_their_sellers(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    mine = await create_seller(client, alice, name="Alice's")
    await create_seller(client, bob, name="Bob's")
    listed = (await client.get("/sellers", headers=alice.headers)).json()
    assert listed["items"] == [mine]
    assert listed["total"] == 1


async def test_create_names_every_bad_field(client: httpx.AsyncClient, alice: Account) -> None:
    body = {"name": "", "email": "nope", "feed_url": "ftp://x.example/f", "feed_format": "xml", "notes": 5, "x": 1}
    response = await client.post("/sellers", json=body, headers=alice.headers)
    assert bad_fields(response) == ["name", "email", "feed_url", "feed_format", "notes", "x"]
    assert (await client.get("/sellers", headers=alice.headers)).json()["total"] == 0
    assert await latest_event_id(client, alice) == 0


@pytest.mark.parametrize(
    "body",
    [{}, {"name": None}, {"name": "x" * 201}, {"name": "nul\x00"}, {"name": "ok", "feed_url": "javascript:alert(1)"}],
)
async def test_create_rejects(client: httpx.AsyncClient, alice: Account, body: dict[str, Any]) -> None:
    response = await client.post("/sellers", json=body, headers=alice.headers)
    assert response.status_code == 400, response.text


async def test_a_body_that_is_not_utf8_is_400(client: httpx.AsyncClient, alice: Account) -> None:
    # Regression: msgspec raises UnicodeDecodeError for it, which was a 500.
    headers = {**alice.headers, "Content-Type": "application/json"}
    response = await client.post("/sellers", content=b'{"name": "\xff"}', headers=headers)
    assert response.status_code == 400, response.text
    assert (await client.get("/sellers", headers=alice.headers)).json()["total"] == 0


@pytest.mark.parametrize("content", [b"", b"  ", b"null", b"[]", b'"Acme"', b'{"name": "Acme"', b"{'name': 'Acme'}"])
async def test_a_body_that_is_not_a_json_object_is_400(
    client: httpx.AsyncClient, alice: Account, content: bytes
) -> None:
    headers = {**alice.headers, "Content-Type": "application/json"}
    response = await client.post("/sellers", content=content, headers=headers)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["status_code"] == 400
    for item in body.get("extra", []):
        assert item["message"] != "'data'"  # Litestar's own message for a missing body says nothing


async def test_a_body_over_one_mebibyte_is_413(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.post("/sellers", json={"name": "x", "notes": "n" * (1024 * 1024)}, headers=alice.headers)
    assert response.status_code == 413, response.text
    assert (await client.get("/sellers", headers=alice.headers)).json()["total"] == 0


async def test_patch_changes_only_what_is_sent(client: httpx.AsyncClient, alice: Account) -> None:
    seller = await create_seller(client, alice, email="a@b.example", notes="keep")
    response = await client.patch(
        f"/sellers/{seller['id']}", json={"name": "Renamed", "email": None}, headers=alice.headers
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["name"] == "Renamed"
    assert patched["email"] is None
    assert patched["notes"] == "keep"
    assert patched["version"] == 2
    assert patched["updated_at"] >= seller["updated_at"]
    assert (await client.get(f"/sellers/{seller['id']}", headers=alice.headers)).json() == patched


async def test_patch_with_nothing_new_changes_nothing(client: httpx.AsyncClient, alice: Account) -> None:
    seller = await create_seller(client, alice)
    before = await latest_event_id(client, alice)
    response = await client.patch(f"/sellers/{seller['id']}", json={"name": seller["name"]}, headers=alice.headers)
    assert response.json() == seller
    assert await latest_event_id(client, alice) == before


async def test_patch_names_every_bad_field_and_changes_nothing(client: httpx.AsyncClient, alice: Account) -> None:
    seller = await create_seller(client, alice)
    before = await latest_event_id(client, alice)
    body = {"name": None, "feed_format": "yaml", "email": "x@"}
    response = await client.patch(f"/sellers/{seller['id']}", json=body, headers=alice.headers)
    assert bad_fields(response) == ["name", "email", "feed_format"]
    assert (await client.get(f"/sellers/{seller['id']}", headers=alice.headers)).json() == seller
    assert await latest_event_id(client, alice) == before


async def test_delete(client: httpx.AsyncClient, alice: Account) -> None:
    seller = await create_seller(client, alice)
    response = await client.delete(f"/sellers/{seller['id']}", headers=alice.headers)
    assert response.status_code == 204, response.text
    assert (await client.get(f"/sellers/{seller['id']}", headers=alice.headers)).status_code == 404
    assert (await client.delete(f"/sellers/{seller['id']}", headers=alice.headers)).status_code == 404


async def test_delete_keeps_the_products_unlinked(client: httpx.AsyncClient, alice: Account) -> None:
    seller = await create_seller(client, alice)
    product = await client.post(
        "/products",
        json={"sku": "S-1", "name": "Mug", "price": "1.00", "seller_id": seller["id"]},
        headers=alice.headers,
    )
    assert product.status_code == 201, product.text
    assert (await client.delete(f"/sellers/{seller['id']}", headers=alice.headers)).status_code == 204
    kept = (await client.get(f"/products/{product.json()['id']}", headers=alice.headers)).json()
    assert kept["seller_id"] is None
    assert kept["version"] == 2


@pytest.mark.parametrize("seller_id", [999_999, 2_147_483_647])
async def test_unknown_id_is_404(client: httpx.AsyncClient, alice: Account, seller_id: int) -> None:
    for method, body in [("GET", None), ("PATCH", {"name": "x"}), ("DELETE", None)]:
        response = await client.request(method, f"/sellers/{seller_id}", json=body, headers=alice.headers)
        assert response.status_code == 404, (method, response.text)


@pytest.mark.parametrize("seller_id", ["0", "-1", "abc", "2147483648"])
async def test_an_id_that_cannot_exist_is_not_a_500(client: httpx.AsyncClient, alice: Account, seller_id: str) -> None:
    response = await client.get(f"/sellers/{seller_id}", headers=alice.headers)
    assert response.status_code in {400, 404}, response.text


async def test_another_users_seller_is_404_and_untouched(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    secret = await create_seller(client, alice, name="Alice Secret Supplier", email="secret@alice.example")
    path = f"/sellers/{secret['id']}"
    before = await latest_event_id(client, alice)
    for method, body in [("GET", None), ("PATCH", {"name": "Mine now"}), ("DELETE", None)]:
        response = await client.request(method, path, json=body, headers=bob.headers)
        assert response.status_code == 404, (method, response.text)
        assert "Alice Secret" not in response.text
        assert "secret@alice" not in response.text
    assert (await client.get(path, headers=alice.headers)).json() == secret
    assert await latest_event_id(client, alice) == before
    assert await latest_event_id(client, bob) == 0


async def test_fetch_products_of_another_users_seller_is_404(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    seller = await create_seller(client, alice, feed_url="https://acme.example/feed.json", feed_format="json")
    hidden = await client.post(f"/sellers/{seller['id']}/fetch-products", headers=bob.headers)
    assert hidden.status_code == 404, hidden.text
