"""Optimistic concurrency for edits from two devices: an ETag from each resource's version on GET
and on writes, and If-Match on PATCH → 412 (with the current ETag) when the resource moved on."""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.routes import HTTPRoute

from app.config import Settings
from tests.conftest import Account
from tests.support.api import latest_event_id

with warnings.catch_warnings():
    # Importing the app builds it: Litestar warns about the app's inferred dependencies.
    warnings.simplefilter("ignore", DeprecationWarning)
    from app.main import create_app

pytestmark = pytest.mark.anyio

RESOURCES: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    # path: (body to create, a first change, a second change)
    "/products": ({"sku": "E-1", "name": "Mug", "price": "5.00"}, {"stock": 4}, {"name": "Big mug"}),
    "/orders": (
        {"items": [{"sku": "X", "quantity": 1, "unit_price": 1}]},
        {"carrier": "UPS"},
        {"customer": {"name": "Ada"}},
    ),
    "/sellers": ({"name": "Acme"}, {"notes": "fast"}, {"email": "a@acme.example"}),
}


async def create(client: httpx.AsyncClient, account: Account, path: str) -> httpx.Response:
    response = await client.post(path, json=RESOURCES[path][0], headers=account.headers)
    assert response.status_code == 201, response.text
    return response


async def patch(
    client: httpx.AsyncClient, account: Account, url: str, body: dict[str, Any], if_match: str | None = None
) -> httpx.Response:
    headers = {**account.headers, **({"If-Match": if_match} if if_match is not None else {})}
    return await client.patch(url, json=body, headers=headers)


@pytest.mark.parametrize("path", list(RESOURCES))
async def test_get_and_writes_carry_the_etag_of_the_version(
    client: httpx.AsyncClient, alice: Account, path: str
) -> None:
    created = await create(client, alice, path)
    assert created.headers["etag"] == '"v1"'
    url = f"{path}/{created.json()['id']}"
    got = await client.get(url, headers=alice.headers)
    assert got.headers["etag"] == '"v1"'
    patched = await patch(client, alice, url, RESOURCES[path][1])
    assert patched.status_code == 200, patched.text
    assert patched.json()["version"] == 2
    assert patched.headers["etag"] == '"v2"'
    assert (await client.get(url, headers=alice.headers)).headers["etag"] == '"v2"'


@pytest.mark.parametrize("path", list(RESOURCES))
async def test_two_devices_the_stale_edit_is_412_and_changes_nothing(
    client: httpx.AsyncClient, alice: Account, path: str
) -> None:
    url = f"{path}/{(await create(client, alice, path)).json()['id']}"
    phone = (await client.get(url, headers=alice.headers)).headers["etag"]
    laptop = (await client.get(url, headers=alice.headers)).headers["etag"]
    first_change, second_change = RESOURCES[path][1], RESOURCES[path][2]
    assert (await patch(client, alice, url, first_change, if_match=laptop)).status_code == 200
    current = (await client.get(url, headers=alice.headers)).json()
    before = await latest_event_id(client, alice)

    stale = await patch(client, alice, url, second_change, if_match=phone)
    assert stale.status_code == 412, stale.text
    body = stale.json()
    assert body["status_code"] == 412
    assert "changed since you read it" in body["detail"]
    assert stale.headers["etag"] == '"v2"'
    assert (await client.get(url, headers=alice.headers)).json() == current
    assert await latest_event_id(client, alice) == before

    # the phone reloads and applies its change again
    fresh = await patch(client, alice, url, second_change, if_match=stale.headers["etag"])
    assert fresh.status_code == 200, fresh.text
    assert fresh.headers["etag"] == '"v3"'


@pytest.mark.parametrize(
    ("if_match", "status"),
    [
        ("*", 200),
        ('"v1"', 200),
        ('W/"v1"', 200),  # a proxy that compresses may weaken the tag
        ('"v7", "v1"', 200),
        ('"v2"', 412),
        ("v1", 412),  # not a quoted tag
        ('"1"', 412),
        ('"v1" junk', 412),
    ],
)
async def test_if_match_forms(client: httpx.AsyncClient, alice: Account, if_match: str, status: int) -> None:
    url = f"/products/{(await create(client, alice, '/products')).json()['id']}"
    response = await patch(client, alice, url, {"stock": 9}, if_match=if_match)
    assert response.status_code == status, response.text


@pytest.mark.parametrize("path", list(RESOURCES))
async def test_an_if_match_too_long_is_400_naming_it_and_changes_nothing(
    client: httpx.AsyncClient, alice: Account, path: str
) -> None:
    url = f"{path}/{(await create(client, alice, path)).json()['id']}"
    before = (await client.get(url, headers=alice.headers)).json()
    events = await latest_event_id(client, alice)
    at_limit = await patch(client, alice, url, RESOURCES[path][1], if_match="x" * 1000)
    assert at_limit.status_code == 412, at_limit.text  # not one of our tags, but a header we read
    too_long = await patch(client, alice, url, RESOURCES[path][1], if_match="x" * 1001)
    assert too_long.status_code == 400, too_long.text
    assert too_long.json()["extra"] == [
        {"message": "If-Match may have at most 1000 bytes", "key": "If-Match", "source": "header"}
    ]
    assert (await client.get(url, headers=alice.headers)).json() == before
    assert await latest_event_id(client, alice) == events


async def test_several_if_match_headers_count_as_one_list(client: httpx.AsyncClient, alice: Account) -> None:
    url = f"/products/{(await create(client, alice, '/products')).json()['id']}"
    headers = [*alice.headers.items(), ("If-Match", '"v9"'), ("If-Match", '"v1"')]
    assert (await client.patch(url, json={"stock": 3}, headers=headers)).status_code == 200
    stale = [*alice.headers.items(), ("If-Match", '"v9"'), ("If-Match", '"v1"')]  # now at v2
    assert (await client.patch(url, json={"stock": 4}, headers=stale)).status_code == 412
    long = [*alice.headers.items(), ("If-Match", "x" * 600), ("If-Match", "y" * 600)]
    assert (await client.patch(url, json={"stock": 4}, headers=long)).status_code == 400


async def test_without_if_match_the_last_write_wins(client: httpx.AsyncClient, alice: Account) -> None:
    url = f"/products/{(await create(client, alice, '/products')).json()['id']}"
    assert (await patch(client, alice, url, {"stock": 1})).status_code == 200
    assert (await patch(client, alice, url, {"stock": 2})).status_code == 200
    assert (await client.get(url, headers=alice.headers)).json()["stock"] == 2


async def test_a_stale_if_match_is_checked_before_anything_else(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    url = f"/products/{(await create(client, alice, '/products')).json()['id']}"
    # a PATCH that would change nothing still answers 412 when the tag is stale
    assert (await patch(client, alice, url, {"sku": "E-1"}, if_match='"v9"')).status_code == 412
    # another user's product is still a 404, whatever the tag
    assert (await patch(client, bob, url, {"stock": 1}, if_match='"v1"')).status_code == 404


async def test_bulk_changes_and_store_sync_move_the_etag(client: httpx.AsyncClient, alice: Account) -> None:
    product = (await create(client, alice, "/products")).json()
    url = f"/products/{product['id']}"
    body = {"items": [{"product_id": product["id"], "stock": 40}]}
    assert (await client.post("/products/bulk/stock-update", json=body, headers=alice.headers)).status_code == 200
    assert (await client.get(url, headers=alice.headers)).headers["etag"] == '"v2"'
    synced = await client.post(f"{url}/sync", headers=alice.headers)
    assert synced.headers["etag"] == '"v3"'
    assert (await patch(client, alice, url, {"stock": 1}, if_match='"v2"')).status_code == 412


async def test_order_workflows_take_if_match(client: httpx.AsyncClient, alice: Account) -> None:
    await client.post("/products", json={"sku": "W", "name": "W", "price": 1, "stock": 5}, headers=alice.headers)
    order = await client.post("/orders", json={"items": [{"sku": "W", "quantity": 1}]}, headers=alice.headers)
    url = f"/orders/{order.json()['id']}"
    await patch(client, alice, url, {"carrier": "UPS"})
    stale = await client.post(f"{url}/process", headers={**alice.headers, "If-Match": '"v1"'})
    assert stale.status_code == 412, stale.text
    processed = await client.post(f"{url}/process", headers={**alice.headers, "If-Match": '"v2"'})
    assert processed.status_code == 200, processed.text
    assert processed.headers["etag"] == '"v3"'
    shipment = {"carrier": "UPS", "tracking_number": "1Z"}
    stale = await client.post(f"{url}/shipment", json=shipment, headers={**alice.headers, "If-Match": '"v2"'})
    assert stale.status_code == 412, stale.text
    assert (await client.get(url, headers=alice.headers)).json()["status"] == "processing"


def test_the_document_names_if_match_on_exactly_the_handlers_that_read_it(tmp_path: Path) -> None:
    """``If-Match`` is read from the raw headers (``if_match_versions``), so Litestar cannot see
    it: ``app.openapi.CONDITIONAL_WRITES`` documents it, and must name the same operations."""
    settings = Settings(database_url=f"sqlite:///{tmp_path}/etag.db", rate_limit=False, log_level="warning")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        app = create_app(settings)
    reading = set()
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for method, (handler, _) in route.route_handler_map.items():
                if "if_match_versions(" in inspect.getsource(handler.fn):
                    reading.add((method.lower(), route.path_format))
    documented = {
        (method, path)
        for path, item in app.openapi_schema.to_schema()["paths"].items()
        for method, operation in item.items()
        if any(parameter["name"] == "If-Match" for parameter in operation.get("parameters", []))
    }
    assert len(reading) == 5
    assert documented == reading
