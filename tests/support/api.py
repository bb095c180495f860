"""Small readers of API answers shared by the integration tests."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Account


async def latest_event_id(client: httpx.AsyncClient, account: Account) -> int:
    """The id of the caller's last recorded event (0 when none)."""
    response = await client.get("/events/history", params={"limit": 1}, headers=account.headers)
    assert response.status_code == 200, response.text
    latest: int = response.json()["latest_id"]
    return latest


def bad_fields(response: httpx.Response) -> list[str]:
    """The keys a Litestar-shaped 400 names, in order (and the shape is checked on the way)."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["status_code"] == 400
    assert isinstance(body["detail"], str)
    for item in body["extra"]:
        assert set(item) == {"message", "key", "source"}
        assert item["source"] == "body"
    return [item["key"] for item in body["extra"]]


ORDER_EVENTS = ("order_created", "order_updated")


async def orders_listed_as_read(client: httpx.AsyncClient, account: Account, page: int = 7) -> list[dict[str, Any]]:
    """Every order of ``account`` as ``GET /orders`` lists it (page by page), after checking that
    each page holds, byte for byte, the orders as ``GET /orders/{id}`` answers them, and that each
    is the data of its latest ``order_created`` or ``order_updated`` event: the list shows stored
    renderings, which every write must keep."""
    pages: list[httpx.Response] = []
    listed: list[dict[str, Any]] = []
    while True:
        response = await client.get("/orders", params={"limit": page, "offset": len(listed)}, headers=account.headers)
        assert response.status_code == 200, response.text
        pages.append(response)
        listed += response.json()["items"]
        if len(listed) >= response.json()["total"]:
            break
    assert [order["id"] for order in listed] == sorted({order["id"] for order in listed})
    latest: dict[int, dict[str, Any]] = {}
    after = 0
    while True:
        history = await client.get("/events/history", params={"after": after, "limit": 1000}, headers=account.headers)
        assert history.status_code == 200, history.text
        events = history.json()["events"]
        latest |= {event["data"]["id"]: event["data"] for event in events if event["type"] in ORDER_EVENTS}
        if len(events) < 1000:
            break
        after = events[-1]["id"]
    read: dict[int, bytes] = {}
    for order in listed:
        response = await client.get(f"/orders/{order['id']}", headers=account.headers)
        assert response.status_code == 200, response.text
        assert response.json() == latest[order["id"]]
        read[order["id"]] = response.content
    offset = 0
    for response in pages:
        body = response.json()
        orders = b",".join(read[order["id"]] for order in body["items"])
        assert response.content == b'{"items":[%b],"total":%d,"limit":%d,"offset":%d}' % (
            orders,
            body["total"],
            page,
            offset,
        )
        offset += len(body["items"])
    return listed
