"""Small readers of API answers shared by the integration tests."""

from __future__ import annotations

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
