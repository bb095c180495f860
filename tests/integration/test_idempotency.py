"""Idempotency-Key on writes: a retry returns the first answer without a second change or event;
the same key with another request is 422; a duplicate while the first is in flight is 409.
This is what lets a phone replay its offline queue safely."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

from tests.conftest import BACKENDS, Account, new_user, server_with
from tests.support.api import latest_event_id
from tests.support.fakes import FeedServer
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.anyio


def key() -> str:
    return f"key-{secrets.token_hex(8)}"


async def send(
    client: httpx.AsyncClient, account: Account, method: str, path: str, body: Any = None, idempotency_key: str = ""
) -> httpx.Response:
    headers = {**account.headers, **({"Idempotency-Key": idempotency_key} if idempotency_key else {})}
    return await client.request(method, path, json=body, headers=headers)


def replayed(response: httpx.Response) -> bool:
    return bool(response.headers.get("idempotency-replayed") == "true")


async def test_a_retried_create_returns_the_first_answer_once(client: httpx.AsyncClient, alice: Account) -> None:
    retry_key = key()
    body = {"sku": "IDEM-1", "name": "Mug", "price": "5.00"}
    first = await send(client, alice, "POST", "/products", body, retry_key)
    assert first.status_code == 201, first.text
    assert not replayed(first)
    after_first = await latest_event_id(client, alice)
    for _ in range(3):
        again = await send(client, alice, "POST", "/products", body, retry_key)
        assert again.status_code == 201, again.text
        assert replayed(again)
        assert again.content == first.content
        assert again.headers["etag"] == first.headers["etag"]
        assert again.headers["content-type"] == first.headers["content-type"]
    assert await latest_event_id(client, alice) == after_first
    assert (await client.get("/products", headers=alice.headers)).json()["total"] == 1
    # without a key the same body is a new request (and the SKU is taken)
    assert (await send(client, alice, "POST", "/products", body)).status_code == 409


async def test_the_same_key_with_another_request_is_422(client: httpx.AsyncClient, alice: Account) -> None:
    retry_key = key()
    assert (await send(client, alice, "POST", "/sellers", {"name": "First"}, retry_key)).status_code == 201
    before = await latest_event_id(client, alice)
    for method, path, body in [
        ("POST", "/sellers", {"name": "Second"}),
        ("POST", "/notifications", {"title": "First"}),
        ("PUT", "/settings", {"name": "First"}),
    ]:
        response = await send(client, alice, method, path, body, retry_key)
        assert response.status_code == 422, response.text
        assert response.json()["status_code"] == 422
        assert "different request" in response.json()["detail"]
    assert await latest_event_id(client, alice) == before
    assert [seller["name"] for seller in (await client.get("/sellers", headers=alice.headers)).json()["items"]] == [
        "First"
    ]


async def test_keys_belong_to_one_user(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    shared_key = key()
    for account in (alice, bob):
        response = await send(client, account, "POST", "/sellers", {"name": "Mine"}, shared_key)
        assert response.status_code == 201, response.text
        assert not replayed(response)
    assert (await client.get("/sellers", headers=bob.headers)).json()["total"] == 1


async def test_patch_delete_and_bulk_are_applied_once(client: httpx.AsyncClient, alice: Account) -> None:
    product = (await send(client, alice, "POST", "/products", {"sku": "P", "name": "P", "price": 1})).json()
    url = f"/products/{product['id']}"
    patch_key, bulk_key, delete_key = key(), key(), key()
    for _ in range(2):
        response = await send(client, alice, "PATCH", url, {"stock": 7}, patch_key)
        assert (response.status_code, response.json()["version"]) == (200, 2)
    items = {"items": [{"product_id": product["id"], "stock": 9}]}
    before = await latest_event_id(client, alice)
    first = await send(client, alice, "POST", "/products/bulk/stock-update", items, bulk_key)
    again = await send(client, alice, "POST", "/products/bulk/stock-update", items, bulk_key)
    assert again.json()["job_id"] == first.json()["job_id"]
    assert await latest_event_id(client, alice) == before + 4  # started, updated, stock changed, completed: once
    for _ in range(2):
        response = await send(client, alice, "DELETE", url, None, delete_key)
        assert response.status_code == 204, response.text
    assert await latest_event_id(client, alice) == before + 5


async def test_the_first_answer_is_kept_even_when_it_is_an_error(client: httpx.AsyncClient, alice: Account) -> None:
    taken = (await send(client, alice, "POST", "/products", {"sku": "TAKEN", "name": "n", "price": 1})).json()
    retry_key = key()
    body = {"sku": "TAKEN", "name": "again", "price": 2}
    assert (await send(client, alice, "POST", "/products", body, retry_key)).status_code == 409
    await send(client, alice, "DELETE", f"/products/{taken['id']}")
    retried = await send(client, alice, "POST", "/products", body, retry_key)
    assert (retried.status_code, replayed(retried)) == (409, True)
    assert (await client.get("/products", headers=alice.headers)).json()["total"] == 0


async def test_an_offline_queue_replays_safely(client: httpx.AsyncClient, alice: Account) -> None:
    queue: list[tuple[str, str, Any, str]] = [
        ("POST", "/sellers", {"name": "Offline supplier"}, key()),
        ("POST", "/products", {"sku": "OFF-1", "name": "n", "price": 3, "stock": 10}, key()),
        ("POST", "/notifications", {"title": "synced"}, key()),
    ]
    answers = [await send(client, alice, method, path, body, k) for method, path, body, k in queue]
    latest = await latest_event_id(client, alice)
    # the connection dropped before the phone saw the answers: it replays the whole queue
    replays = [await send(client, alice, method, path, body, k) for method, path, body, k in queue]
    assert [(r.status_code, r.content) for r in replays] == [(a.status_code, a.content) for a in answers]
    assert all(replayed(response) for response in replays)
    assert await latest_event_id(client, alice) == latest


@pytest.mark.parametrize("bad_key", [b"", b"x" * 256, b"white space", "caf\u00e9".encode("latin-1")])
async def test_a_malformed_key_is_400(client: httpx.AsyncClient, alice: Account, bad_key: bytes) -> None:
    headers = [(b"authorization", alice.headers["Authorization"].encode()), (b"idempotency-key", bad_key)]
    response = await client.post("/sellers", content=json.dumps({"name": "n"}).encode(), headers=headers)
    assert response.status_code == 400, response.text
    assert "Idempotency-Key" in response.json()["detail"]
    assert (await client.get("/sellers", headers=alice.headers)).json()["total"] == 0


async def test_without_a_valid_token_the_route_answers_401(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}):
        response = await client.post("/sellers", json={"name": "n"}, headers={**headers, "Idempotency-Key": key()})
        assert response.status_code == 401, response.text


async def test_reads_ignore_the_key(client: httpx.AsyncClient, alice: Account) -> None:
    read_key = key()
    first = await client.get("/sellers", headers={**alice.headers, "Idempotency-Key": read_key})
    await send(client, alice, "POST", "/sellers", {"name": "New"})
    second = await client.get("/sellers", headers={**alice.headers, "Idempotency-Key": read_key})
    assert (first.json()["total"], second.json()["total"]) == (0, 1)


# --- in flight, and answers not kept -------------------------------------------------------------------


@pytest.fixture(scope="module")
def feeds() -> Iterator[FeedServer]:
    with FeedServer().running() as server:
        yield server


@pytest.fixture(scope="module", params=BACKENDS)
def slow_server(request: pytest.FixtureRequest, feeds: FeedServer) -> Iterator[ServerProcess]:
    """A server that fetches feeds from loopback: a held feed makes a request that stays in flight."""
    settings = {
        "DROPSYNC_FEED_ALLOW_PRIVATE_HOSTS": "true",
        "DROPSYNC_FEED_TIMEOUT_S": "10",
    }
    with server_with(request.param, settings) as process:
        yield process


@pytest.fixture
async def slow(slow_server: ServerProcess) -> AsyncIterator[tuple[httpx.AsyncClient, Account]]:
    async with httpx.AsyncClient(base_url=slow_server.url, timeout=20) as http:
        yield http, await new_user(http, "erin")


async def test_a_duplicate_while_the_first_is_in_flight_is_409(
    slow: tuple[httpx.AsyncClient, Account], feeds: FeedServer
) -> None:
    http, account = slow
    url = feeds.serve_json(f"/{account.username}/held.json", [{"sku": "H-1", "name": "Held", "price": 1}])
    feeds.routes[f"/{account.username}/held.json"].hold = True
    seller = (await send(http, account, "POST", "/sellers", {"name": "S", "feed_url": url})).json()
    path, retry_key = f"/sellers/{seller['id']}/fetch-products", key()
    feeds.hold_next()
    results: dict[str, httpx.Response] = {}

    async def first() -> None:
        results["first"] = await send(http, account, "POST", path, None, retry_key)

    try:
        with anyio.fail_after(15):
            async with anyio.create_task_group() as group:
                group.start_soon(first)
                assert await anyio.to_thread.run_sync(feeds.arrived.wait, 10.0)
                duplicate = await send(http, account, "POST", path, None, retry_key)
                assert duplicate.status_code == 409, duplicate.text
                assert duplicate.headers["retry-after"] == "1"
                assert "in progress" in duplicate.json()["detail"]
                feeds.release()
    finally:
        feeds.release()
    assert results["first"].status_code == 200, results["first"].text
    latest = await latest_event_id(http, account)
    retried = await send(http, account, "POST", path, None, retry_key)
    assert (retried.status_code, retried.content, replayed(retried)) == (200, results["first"].content, True)
    assert await latest_event_id(http, account) == latest
    assert feeds.hits(f"/{account.username}/held.json") == 1


async def test_a_failed_upstream_answer_is_not_kept(slow: tuple[httpx.AsyncClient, Account], feeds: FeedServer) -> None:
    http, account = slow
    feed_path = f"/{account.username}/flaky.json"
    url = feeds.serve(feed_path, "down", content_type="text/plain", status=503)
    seller = (await send(http, account, "POST", "/sellers", {"name": "S", "feed_url": url})).json()
    path, retry_key = f"/sellers/{seller['id']}/fetch-products", key()
    assert (await send(http, account, "POST", path, None, retry_key)).status_code == 502
    feeds.serve_json(feed_path, [{"sku": "F-1", "name": "Back", "price": 1}])
    retried = await send(http, account, "POST", path, None, retry_key)
    assert (retried.status_code, replayed(retried)) == (200, False)
    assert retried.json()["added"] == 1
