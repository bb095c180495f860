"""Helpers of the push tests: the settings that point a server at the fake services, subscribing
over the API, and bounded waits on what the fakes received."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx

from tests.conftest import Account
from tests.support.fake_push import FakeExpo, FakeWebPushService

SUBJECT = "mailto:ops@dropsync.test"
EXPO_ACCESS_TOKEN = "expo-access-token-that-must-never-be-logged"


def push_env(expo: FakeExpo, **extra: str) -> dict[str, str]:
    """``DROPSYNC_*`` settings for a server whose pushes go to the fakes, with quick retries."""
    return {
        "DROPSYNC_VAPID_SUBJECT": SUBJECT,
        "DROPSYNC_EXPO_ACCESS_TOKEN": EXPO_ACCESS_TOKEN,
        "DROPSYNC_PUSH_EXPO_URL": expo.send_url,
        "DROPSYNC_PUSH_ALLOW_LOOPBACK": "true",
        "DROPSYNC_PUSH_POLL_S": "0.2",
        "DROPSYNC_PUSH_TIMEOUT_S": "3",
        "DROPSYNC_PUSH_RETRY_FOR_S": "60",
        **extra,
    }


async def vapid_key(http: httpx.AsyncClient, account: Account) -> str:
    response = await http.get("/push/vapid-public-key", headers=account.headers)
    assert response.status_code == 200, response.text
    key: str = response.json()["public_key"]
    return key


async def subscribe_browser(http: httpx.AsyncClient, account: Account, service: FakeWebPushService) -> tuple[str, int]:
    """A new browser subscription at the fake service: its name there and its id here."""
    service.vapid_key = await vapid_key(http, account)
    name, subscription = service.subscription_json()
    response = await http.post("/push/subscriptions", json=subscription, headers=account.headers)
    assert response.status_code == 201, response.text
    return name, int(response.json()["id"])


async def subscribe_phone(http: httpx.AsyncClient, account: Account, token: str) -> int:
    response = await http.post("/push/subscriptions", json={"kind": "expo", "token": token}, headers=account.headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def eventually(condition: Callable[[], bool], within: float = 10.0, what: str = "") -> None:
    """Wait (bounded) until ``condition()`` holds; fail naming ``what``."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await anyio.sleep(0.02)


async def subscriptions_of(http: httpx.AsyncClient, account: Account) -> list[dict[str, Any]]:
    response = await http.get("/push/subscriptions", headers=account.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def metric(http: httpx.AsyncClient, name: str, service: str) -> float:
    """The value of a push counter of this process (0 when not yet counted)."""
    text = (await http.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith(f'{name}_total{{service="{service}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def wait_for_subscriptions(http: httpx.AsyncClient, account: Account, ids: list[int], within: float = 10) -> None:
    """Poll the subscription list until it is exactly ``ids`` (bounded)."""
    deadline = time.monotonic() + within
    while True:
        listed = [item["id"] for item in await subscriptions_of(http, account)]
        if listed == ids:
            return
        assert time.monotonic() < deadline, f"subscriptions are {listed}, not {ids}"
        await anyio.sleep(0.05)
