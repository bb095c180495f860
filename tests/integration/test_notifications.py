"""/notifications: a system_notification event for the caller only."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Account

pytestmark = pytest.mark.anyio


async def recorded(client: httpx.AsyncClient, account: Account) -> list[dict[str, Any]]:
    response = await client.get("/events/history", params={"limit": 1000}, headers=account.headers)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


async def test_a_notification_is_recorded_as_a_system_notification(client: httpx.AsyncClient, alice: Account) -> None:
    body = {"level": "warning", "title": "Stock sync late", "message": "The supplier feed is 2 hours old."}
    response = await client.post("/notifications", json=body, headers=alice.headers)
    assert response.status_code == 201, response.text
    assert response.json() == body
    [event] = await recorded(client, alice)
    assert event["id"] == 1
    assert event["type"] == "system_notification"
    assert event["data"] == body
    assert event["user_id"] == alice.id


async def test_level_and_message_have_defaults(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.post("/notifications", json={"title": "Hello"}, headers=alice.headers)
    assert response.status_code == 201, response.text
    assert response.json() == {"level": "info", "title": "Hello", "message": ""}


@pytest.mark.parametrize("level", ["info", "success", "warning", "error"])
async def test_every_level(client: httpx.AsyncClient, alice: Account, level: str) -> None:
    response = await client.post("/notifications", json={"title": "t", "level": level}, headers=alice.headers)
    assert response.status_code == 201, response.text
    assert (await recorded(client, alice))[0]["data"]["level"] == level


async def test_bad_fields_are_each_named_and_nothing_is_recorded(client: httpx.AsyncClient, alice: Account) -> None:
    body = {"title": "", "level": "panic", "message": "m" * 2001, "colour": "red"}
    response = await client.post("/notifications", json=body, headers=alice.headers)
    assert response.status_code == 400, response.text
    assert [item["key"] for item in response.json()["extra"]] == ["title", "message", "level", "colour"]
    missing = await client.post("/notifications", json={}, headers=alice.headers)
    assert [item["key"] for item in missing.json()["extra"]] == ["title"]
    assert await recorded(client, alice) == []


async def test_only_the_sender_gets_it(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    await client.post("/notifications", json={"title": "For Alice only"}, headers=alice.headers)
    assert await recorded(client, bob) == []
    bobs_history = await client.get("/events/history", headers=bob.headers)
    assert "For Alice only" not in bobs_history.text
    assert bobs_history.json()["latest_id"] == 0


async def test_text_is_stored_as_sent(client: httpx.AsyncClient, alice: Account) -> None:
    body = {"title": 'Ünïcödé ✓ "quotes" <b>html</b>', "message": "line 1\nline 2\t\\ back", "level": "info"}
    await client.post("/notifications", json=body, headers=alice.headers)
    assert (await recorded(client, alice))[0]["data"] == body
