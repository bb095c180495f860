"""The server starts on each database, and a change is recorded as an event."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Account

pytestmark = pytest.mark.anyio


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.json() == {"status": "ok"}


async def test_a_new_seller_is_recorded_as_event_one(client: httpx.AsyncClient, alice: Account) -> None:
    created = await client.post("/sellers", json={"name": "Acme"}, headers=alice.headers)
    assert created.status_code == 201, created.text
    history = (await client.get("/events/history", headers=alice.headers)).json()
    assert [(event["id"], event["type"]) for event in history["events"]] == [(1, "seller_added")]
    assert history["events"][0]["data"] == created.json()
    assert history["latest_id"] == 1
