"""POST /sellers/{id}/fetch-products: a seller's feed (JSON or CSV) over HTTP from a real feed
server on loopback; create or update by SKU, every row checked first, limits that say what went
wrong, and nothing changed by an import that fails."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest

from tests.conftest import BACKENDS, Account, new_user, server_with
from tests.support.api import latest_event_id
from tests.support.fakes import FeedServer
from tests.support.servers import ServerProcess, free_port

pytestmark = pytest.mark.anyio

Event = dict[str, Any]
MAX_BYTES = 64 * 1024
TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def feeds() -> Iterator[FeedServer]:
    with FeedServer().running() as server:
        yield server


@pytest.fixture(scope="module", params=BACKENDS)
def feed_server(request: pytest.FixtureRequest, feeds: FeedServer) -> Iterator[ServerProcess]:
    """A server that may fetch feeds from loopback, with small limits to test them."""
    limits = {
        "DROPSYNC_FEED_ALLOW_PRIVATE_HOSTS": "true",
        "DROPSYNC_FEED_MAX_BYTES": str(MAX_BYTES),
        "DROPSYNC_FEED_TIMEOUT_S": str(TIMEOUT_S),
        "DROPSYNC_FEED_MAX_ROWS": "50",
    }
    with server_with(request.param, limits) as process:
        yield process


@pytest.fixture
async def http(feed_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=feed_server.url, timeout=10) as client:
        yield client


@pytest.fixture
async def carol(http: httpx.AsyncClient) -> Account:
    return await new_user(http, "carol")


async def seller_with_feed(http: httpx.AsyncClient, account: Account, url: str, **fields: Any) -> dict[str, Any]:
    response = await http.post("/sellers", json={"name": "Acme", "feed_url": url, **fields}, headers=account.headers)
    assert response.status_code == 201, response.text
    seller: dict[str, Any] = response.json()
    return seller


async def fetch(http: httpx.AsyncClient, account: Account, seller_id: int) -> tuple[httpx.Response, list[Event]]:
    before = await latest_event_id(http, account)
    response = await http.post(f"/sellers/{seller_id}/fetch-products", headers=account.headers)
    page = await http.get("/events/history", params={"after": before, "limit": 1000}, headers=account.headers)
    return response, page.json()["events"]


async def products(http: httpx.AsyncClient, account: Account) -> dict[str, dict[str, Any]]:
    page = (await http.get("/products", params={"limit": 500}, headers=account.headers)).json()
    return {item["sku"]: item for item in page["items"]}


def types(events: list[Event]) -> list[str]:
    return [event["type"] for event in events]


def unprocessable(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    body: dict[str, Any] = response.json()
    assert body["status_code"] == 422
    assert body["detail"]
    return body


# --- imports that work ------------------------------------------------------------------------------------


async def test_json_feed_creates_then_updates_by_sku(
    http: httpx.AsyncClient, carol: Account, feeds: FeedServer
) -> None:
    rows: list[dict[str, Any]] = [
        {"sku": "ACME-MUG", "name": "Mug", "price": "12.99", "cost_price": 4.2, "stock": 40, "description": "Blue"},
        {"sku": "ACME-LAMP", "name": "Lamp", "cost_price": "10.00", "stock": "12"},  # price from the 30 % markup
    ]
    url = feeds.serve_json(f"/{carol.username}/feed.json", rows)
    seller = await seller_with_feed(http, carol, url)
    response, events = await fetch(http, carol, seller["id"])
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["total"], result["added"], result["updated"], result["unchanged"]) == (2, 2, 0, 0)
    assert types(events) == [
        "stock_sync_started",
        "product_added",
        "product_added",
        "seller_products_fetched",
        "stock_sync_completed",
    ]
    job = result["job_id"]
    assert events[0]["data"] == {"job_id": job, "seller_id": seller["id"], "total": 2}
    assert events[3]["data"] == {"seller_id": seller["id"], "added": 2, "updated": 0, "total": 2}
    assert events[4]["data"] == {
        "job_id": job,
        "seller_id": seller["id"],
        "total": 2,
        "added": 2,
        "updated": 0,
        "unchanged": 0,
    }
    stored = await products(http, carol)
    mug, lamp = stored["ACME-MUG"], stored["ACME-LAMP"]
    assert (mug["name"], mug["price"], mug["cost_price"], mug["stock"], mug["description"]) == (
        "Mug",
        "12.99",
        "4.20",
        40,
        "Blue",
    )
    assert (lamp["price"], lamp["cost_price"], lamp["stock"], lamp["seller_id"]) == ("13.00", "10.00", 12, seller["id"])
    assert events[1]["data"] == mug

    # the supplier changes the mug's stock and the lamp's price; an unchanged row records nothing
    rows[0]["stock"] = 3
    rows[1] = {"sku": "ACME-LAMP", "price": "15.00"}
    rows.append({"sku": "ACME-TENT", "name": "Tent", "price": 89})
    feeds.serve_json(f"/{carol.username}/feed.json", rows)
    response, events = await fetch(http, carol, seller["id"])
    assert response.status_code == 200, response.text
    assert (response.json()["added"], response.json()["updated"]) == (1, 2)
    assert types(events) == [
        "stock_sync_started",
        "product_updated",
        "product_stock_changed",
        "stock_low",
        "product_updated",
        "product_price_changed",
        "product_added",
        "seller_products_fetched",
        "stock_sync_completed",
    ]
    assert events[1]["data"]["changed"] == ["stock"]
    assert events[2]["data"] == {"product_id": mug["id"], "sku": "ACME-MUG", "old": 40, "new": 3}
    assert events[5]["data"] == {"product_id": lamp["id"], "sku": "ACME-LAMP", "old": "13.00", "new": "15.00"}
    stored = await products(http, carol)
    assert stored["ACME-LAMP"]["name"] == "Lamp"  # only the columns given change
    assert stored["ACME-MUG"]["version"] == 2

    response, events = await fetch(http, carol, seller["id"])
    assert (response.json()["unchanged"], types(events)) == (
        3,
        ["stock_sync_started", "seller_products_fetched", "stock_sync_completed"],
    )


async def test_csv_feed_with_a_header_row(http: httpx.AsyncClient, carol: Account, feeds: FeedServer) -> None:
    text = (
        "\ufeffSKU,Name,Price,Cost_Price,Stock,Currency,Colour\r\n"
        "CSV-1,Solar lamp,24.90,7.50,12,EUR,green\r\n"
        '"CSV-2","Tent, two person",89.00,,3,,\r\n'
        "\r\n"
    )
    url = feeds.serve(f"/{carol.username}/feed.csv", text, content_type="text/csv; charset=utf-8")
    seller = await seller_with_feed(http, carol, url, feed_format="csv")
    response, _ = await fetch(http, carol, seller["id"])
    assert response.status_code == 200, response.text
    assert response.json()["added"] == 2
    stored = await products(http, carol)
    assert (stored["CSV-1"]["name"], stored["CSV-1"]["price"], stored["CSV-1"]["currency"]) == (
        "Solar lamp",
        "24.90",
        "EUR",
    )
    assert (stored["CSV-2"]["name"], stored["CSV-2"]["cost_price"], stored["CSV-2"]["stock"]) == (
        "Tent, two person",
        None,
        3,
    )
    assert stored["CSV-2"]["currency"] == "USD"  # the user's currency setting


async def test_the_format_is_sniffed_and_products_key_accepted(
    http: httpx.AsyncClient, carol: Account, feeds: FeedServer
) -> None:
    body = json.dumps({"products": [{"sku": "S-1", "name": "One", "price": 1}]})
    url = feeds.serve(f"/{carol.username}/export", body, content_type="application/octet-stream")
    seller = await seller_with_feed(http, carol, url)
    response, _ = await fetch(http, carol, seller["id"])
    assert response.status_code == 200, response.text
    assert list(await products(http, carol)) == ["S-1"]


async def test_a_redirect_is_followed(http: httpx.AsyncClient, carol: Account, feeds: FeedServer) -> None:
    target = feeds.serve_json(f"/{carol.username}/new.json", [{"sku": "R-1", "name": "R", "price": 1}])
    url = feeds.serve(f"/{carol.username}/old.json", "", redirect_to=target)
    seller = await seller_with_feed(http, carol, url)
    response, _ = await fetch(http, carol, seller["id"])
    assert response.status_code == 200, response.text
    assert feeds.hits(f"/{carol.username}/new.json") == 1


async def test_a_host_name_is_resolved_and_each_address_tried(
    http: httpx.AsyncClient, carol: Account, feeds: FeedServer
) -> None:
    # "localhost" may resolve to ::1 first while the feed server listens on 127.0.0.1 only
    path = f"/{carol.username}/named.json"
    feeds.serve_json(path, [{"sku": "L-1", "name": "L", "price": 1}])
    seller = await seller_with_feed(http, carol, feeds.url.replace("127.0.0.1", "localhost") + path)
    response, _ = await fetch(http, carol, seller["id"])
    assert response.status_code == 200, response.text
    host = next(headers["host"] for requested, headers in feeds.requests if requested == path)
    assert host == feeds.url.replace("http://127.0.0.1", "localhost")


# --- imports that fail change nothing ---------------------------------------------------------------------


async def check_nothing_changed(
    http: httpx.AsyncClient, account: Account, events: list[Event], before: dict[str, dict[str, Any]]
) -> None:
    assert events == []
    assert await products(http, account) == before


async def test_bad_rows_are_422_naming_each_and_nothing_changes(
    http: httpx.AsyncClient, carol: Account, feeds: FeedServer
) -> None:
    path = f"/{carol.username}/feed.json"
    seller = await seller_with_feed(http, carol, feeds.serve_json(path, [{"sku": "OK-1", "name": "Fine", "price": 5}]))
    assert (await fetch(http, carol, seller["id"]))[0].status_code == 200
    before = await products(http, carol)
    rows: list[Any] = [
        {"sku": "OK-1", "name": "Changed", "price": 6},
        {"sku": "BAD-1", "name": "x", "price": "9.999"},
        {"name": "no sku", "price": 1},
        {"sku": "BAD-2", "name": "x", "price": 1, "stock": -3, "currency": "euro"},
        "not an object",
        {"sku": "OK-1", "name": "again", "price": 1},
        {"sku": "NEW-NO-PRICE", "name": "x"},
    ]
    feeds.serve_json(path, rows)
    response, events = await fetch(http, carol, seller["id"])
    body = unprocessable(response)
    assert [(item["key"], item["source"]) for item in body["extra"]] == [
        ("rows.1.price", "feed"),
        ("rows.2.sku", "feed"),
        ("rows.3.stock", "feed"),
        ("rows.3.currency", "feed"),
        ("rows.4", "feed"),
        ("rows.5.sku", "feed"),
    ]
    assert all(item["message"] for item in body["extra"])
    await check_nothing_changed(http, carol, events, before)
    # rules that need the database are checked too, before anything is written
    feeds.serve_json(
        path, [{"sku": "OK-1", "price": 7}, {"sku": "NEW-NO-PRICE", "name": "x"}, {"sku": "NEW-NO-NAME", "price": 1}]
    )
    response, events = await fetch(http, carol, seller["id"])
    assert [item["key"] for item in unprocessable(response)["extra"]] == ["rows.1.price", "rows.2.name"]
    await check_nothing_changed(http, carol, events, before)


async def test_a_sku_of_another_sellers_product_is_refused(
    http: httpx.AsyncClient, carol: Account, feeds: FeedServer
) -> None:
    first = await seller_with_feed(
        http, carol, feeds.serve_json(f"/{carol.username}/a.json", [{"sku": "X", "name": "X", "price": 1}])
    )
    assert (await fetch(http, carol, first["id"]))[0].status_code == 200
    before = await products(http, carol)
    second = await seller_with_feed(
        http, carol, feeds.serve_json(f"/{carol.username}/b.json", [{"sku": "X", "price": 2}])
    )
    response, events = await fetch(http, carol, second["id"])
    assert [item["key"] for item in unprocessable(response)["extra"]] == ["rows.0.sku"]
    await check_nothing_changed(http, carol, events, before)


@pytest.mark.parametrize(
    ("body", "content_type", "detail"),
    [
        ("{not json", "application/json", "not valid JSON"),
        ('{"sku": "A"}', "application/json", "array"),
        ("[]", "application/json", "no products"),
        ("name,price\nA,1\n", "text/csv", "sku"),
        ("", "text/csv", "header"),
        (b"sku,name,price\nA,\xff\xfe,1\n", "text/csv", "UTF-8"),
        ("sku,name,price\nA,B\n", "text/csv", None),  # a short line is a bad row
        (json.dumps([{"sku": f"S{i}", "name": "n", "price": 1} for i in range(51)]), "application/json", "limit"),
    ],
)
async def test_unreadable_feeds_are_422(
    http: httpx.AsyncClient, carol: Account, feeds: FeedServer, body: str | bytes, content_type: str, detail: str | None
) -> None:
    url = feeds.serve(f"/{carol.username}/bad", body, content_type=content_type)
    seller = await seller_with_feed(http, carol, url)
    response, events = await fetch(http, carol, seller["id"])
    answer = unprocessable(response)
    if detail is None:
        assert [item["key"] for item in answer["extra"]] == ["rows.0"]
    else:
        assert detail in answer["detail"]
    assert events == []
    assert await products(http, carol) == {}


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_feed_over_the_size_limit_is_422(
    http: httpx.AsyncClient, carol: Account, feeds: FeedServer, chunked: bool
) -> None:
    rows = [{"sku": f"BIG-{index}", "name": "x" * 200, "price": 1} for index in range(400)]
    url = feeds.serve(f"/{carol.username}/big.json", json.dumps(rows), chunked=chunked)
    seller = await seller_with_feed(http, carol, url)
    response, events = await fetch(http, carol, seller["id"])
    assert str(MAX_BYTES) in unprocessable(response)["detail"]
    assert events == []
    assert await products(http, carol) == {}


async def test_a_feed_slower_than_the_timeout_is_504(
    http: httpx.AsyncClient, carol: Account, feeds: FeedServer
) -> None:
    url = feeds.serve(f"/{carol.username}/slow.json", "[]", hold=True)
    seller = await seller_with_feed(http, carol, url)
    feeds.hold_next()
    try:
        with anyio.fail_after(TIMEOUT_S + 5):
            response, events = await fetch(http, carol, seller["id"])
    finally:
        feeds.release()
    assert response.status_code == 504, response.text
    assert response.json()["status_code"] == 504
    assert feeds.arrived.is_set()
    assert events == []


@pytest.mark.parametrize("status", [404, 500])
async def test_a_feed_answering_an_error_is_502(
    http: httpx.AsyncClient, carol: Account, feeds: FeedServer, status: int
) -> None:
    url = feeds.serve(f"/{carol.username}/err.json", "oops", content_type="text/plain", status=status)
    seller = await seller_with_feed(http, carol, url)
    response, events = await fetch(http, carol, seller["id"])
    assert response.status_code == 502, response.text
    assert str(status) in response.json()["detail"]
    assert events == []


async def test_an_unreachable_feed_is_502(http: httpx.AsyncClient, carol: Account) -> None:
    seller = await seller_with_feed(http, carol, f"http://127.0.0.1:{free_port()}/feed.json")
    response, events = await fetch(http, carol, seller["id"])
    assert response.status_code == 502, response.text
    assert events == []


async def test_a_seller_without_a_feed_url_is_422(http: httpx.AsyncClient, carol: Account) -> None:
    response = await http.post("/sellers", json={"name": "No feed"}, headers=carol.headers)
    response, events = await fetch(http, carol, response.json()["id"])
    assert "feed_url" in unprocessable(response)["detail"]
    assert events == []


async def test_another_users_seller_is_404_and_its_feed_is_not_fetched(
    http: httpx.AsyncClient, carol: Account, feeds: FeedServer
) -> None:
    path = f"/{carol.username}/private.json"
    seller = await seller_with_feed(http, carol, feeds.serve_json(path, [{"sku": "P", "name": "P", "price": 1}]))
    dave = await new_user(http, "dave")
    response = await http.post(f"/sellers/{seller['id']}/fetch-products", headers=dave.headers)
    assert response.status_code == 404, response.text
    assert feeds.hits(path) == 0


# --- the default server refuses feeds on non-public addresses ---------------------------------------------


async def test_loopback_feeds_are_refused_by_default(
    client: httpx.AsyncClient, alice: Account, feeds: FeedServer
) -> None:
    path = f"/{alice.username}/ssrf.json"
    for url in (
        feeds.serve_json(path, [{"sku": "S", "name": "S", "price": 1}]),
        feeds.url.replace("127.0.0.1", "localhost") + path,
    ):
        seller = await seller_with_feed(client, alice, url)
        response = await client.post(f"/sellers/{seller['id']}/fetch-products", headers=alice.headers)
        assert "not a public address" in unprocessable(response)["detail"]
    assert feeds.hits(path) == 0
    assert (await client.get("/products", headers=alice.headers)).json()["total"] == 0
