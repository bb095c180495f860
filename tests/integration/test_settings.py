"""/settings: one per user, PATCH merges, PUT replaces, and the store token never comes back out."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Account
from tests.support.api import bad_fields

pytestmark = pytest.mark.anyio

DEFAULTS = {
    "low_stock_threshold": 5,
    "default_markup_percent": "30.00",
    "currency": "USD",
    "store": {"shopify_domain": None, "connected": False},
    "push_types": ["order_created", "stock_low", "stock_out", "system_notification"],
}
TOKEN = "shpat_do-not-leak-0123456789abcdef"


def without_time(settings: dict[str, Any]) -> dict[str, Any]:
    assert settings["updated_at"].endswith("Z")
    return {key: value for key, value in settings.items() if key != "updated_at"}


async def read_settings(client: httpx.AsyncClient, account: Account) -> dict[str, Any]:
    response = await client.get("/settings", headers=account.headers)
    assert response.status_code == 200, response.text
    assert TOKEN not in response.text
    settings: dict[str, Any] = response.json()
    return settings


async def history(client: httpx.AsyncClient, account: Account) -> httpx.Response:
    response = await client.get("/events/history", params={"limit": 1000}, headers=account.headers)
    assert response.status_code == 200, response.text
    return response


async def test_defaults(client: httpx.AsyncClient, alice: Account) -> None:
    assert without_time(await read_settings(client, alice)) == DEFAULTS


async def test_patch_changes_only_what_is_sent(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.patch(
        "/settings", json={"low_stock_threshold": 3, "default_markup_percent": 12.5}, headers=alice.headers
    )
    assert response.status_code == 200, response.text
    expected = {**DEFAULTS, "low_stock_threshold": 3, "default_markup_percent": "12.50"}
    assert without_time(response.json()) == expected
    again = await client.patch("/settings", json={"currency": "EUR"}, headers=alice.headers)
    assert without_time(again.json()) == {**expected, "currency": "EUR"}
    assert await read_settings(client, alice) == again.json()


async def test_put_returns_left_out_fields_to_their_defaults(client: httpx.AsyncClient, alice: Account) -> None:
    await client.patch("/settings", json={"low_stock_threshold": 1, "currency": "GBP"}, headers=alice.headers)
    response = await client.put("/settings", json={"currency": "EUR"}, headers=alice.headers)
    assert response.status_code == 200, response.text
    assert without_time(response.json()) == {**DEFAULTS, "currency": "EUR"}
    assert await read_settings(client, alice) == response.json()


async def test_the_store_connection_is_saved(client: httpx.AsyncClient, alice: Account) -> None:
    # Regression: the store's fields were never written (their names were looked up without "shopify_").
    body = {"store": {"shopify_domain": "acme.myshopify.com", "shopify_access_token": TOKEN}}
    response = await client.patch("/settings", json=body, headers=alice.headers)
    assert response.status_code == 200, response.text
    assert response.json()["store"] == {"shopify_domain": "acme.myshopify.com", "connected": True}
    assert (await read_settings(client, alice))["store"] == response.json()["store"]


async def test_a_domain_without_a_token_is_not_connected(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.patch(
        "/settings", json={"store": {"shopify_domain": "a.myshopify.com"}}, headers=alice.headers
    )
    assert response.json()["store"] == {"shopify_domain": "a.myshopify.com", "connected": False}
    token = await client.patch("/settings", json={"store": {"shopify_access_token": TOKEN}}, headers=alice.headers)
    assert token.json()["store"] == {"shopify_domain": "a.myshopify.com", "connected": True}
    cleared = await client.patch("/settings", json={"store": {"shopify_access_token": None}}, headers=alice.headers)
    assert cleared.json()["store"] == {"shopify_domain": "a.myshopify.com", "connected": False}


async def test_the_access_token_never_comes_back(client: httpx.AsyncClient, alice: Account) -> None:
    store = {"shopify_domain": "acme.myshopify.com", "shopify_access_token": TOKEN}
    answers = [
        await client.patch("/settings", json={"store": store}, headers=alice.headers),
        await client.put("/settings", json={"store": store, "currency": "EUR"}, headers=alice.headers),
        await client.patch("/settings", json={"low_stock_threshold": 9}, headers=alice.headers),
        await client.get("/settings", headers=alice.headers),
    ]
    for response in answers:
        assert response.status_code == 200, response.text
        assert TOKEN not in response.text
        assert "access_token" not in response.text
    recorded = await history(client, alice)
    assert [event["type"] for event in recorded.json()["events"]] == ["settings_updated"] * 3
    assert TOKEN not in recorded.text
    assert "access_token" not in recorded.text


async def test_a_change_of_the_token_alone_is_recorded_without_it(client: httpx.AsyncClient, alice: Account) -> None:
    await client.patch("/settings", json={"store": {"shopify_access_token": "first-token"}}, headers=alice.headers)
    await client.patch("/settings", json={"store": {"shopify_access_token": TOKEN}}, headers=alice.headers)
    recorded = await history(client, alice)
    assert len(recorded.json()["events"]) == 2
    assert TOKEN not in recorded.text
    assert "first-token" not in recorded.text


async def test_each_change_records_settings_updated_with_the_settings(
    client: httpx.AsyncClient, alice: Account
) -> None:
    first = (await client.patch("/settings", json={"low_stock_threshold": 2}, headers=alice.headers)).json()
    second = (await client.put("/settings", json={}, headers=alice.headers)).json()
    events = (await history(client, alice)).json()["events"]
    assert [(event["type"], event["data"]) for event in events] == [
        ("settings_updated", first),
        ("settings_updated", second),
    ]


async def test_no_change_records_nothing(client: httpx.AsyncClient, alice: Account) -> None:
    same = await client.patch("/settings", json={"low_stock_threshold": 5, "currency": "USD"}, headers=alice.headers)
    assert same.status_code == 200
    assert (await client.put("/settings", json={}, headers=alice.headers)).status_code == 200
    assert (await history(client, alice)).json()["events"] == []


async def test_bad_values_are_400_naming_each_field(client: httpx.AsyncClient, alice: Account) -> None:
    body = {
        "low_stock_threshold": -1,
        "default_markup_percent": "12.345",
        "currency": "dollars",
        "store": {"shopify_domain": "evil.example.com", "shopify_access_token": ""},
        "theme": "dark",
    }
    for method in ("PATCH", "PUT"):
        response = await client.request(method, "/settings", json=body, headers=alice.headers)
        assert bad_fields(response) == [
            "low_stock_threshold",
            "default_markup_percent",
            "currency",
            "store.shopify_domain",
            "store.shopify_access_token",
            "theme",
        ]
    assert without_time(await read_settings(client, alice)) == DEFAULTS
    assert (await history(client, alice)).json()["events"] == []


@pytest.mark.parametrize("markup", ["-5", "abc", True, 1e30])
async def test_a_bad_markup_alone_is_named(client: httpx.AsyncClient, alice: Account, markup: object) -> None:
    response = await client.patch("/settings", json={"default_markup_percent": markup}, headers=alice.headers)
    assert bad_fields(response) == ["default_markup_percent"]


async def test_settings_are_per_user(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    body = {"low_stock_threshold": 1, "store": {"shopify_domain": "alice.myshopify.com", "shopify_access_token": TOKEN}}
    assert (await client.patch("/settings", json=body, headers=alice.headers)).status_code == 200
    bobs = await client.get("/settings", headers=bob.headers)
    assert without_time(bobs.json()) == DEFAULTS
    assert "alice" not in bobs.text
    assert (await history(client, bob)).json()["events"] == []
