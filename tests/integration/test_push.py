"""Push notifications over HTTP, end to end, against fake Web Push and Expo services on loopback.

A real server (SQLite, and PostgreSQL) sends to :class:`FakeWebPushService`, which checks the VAPID
signature and headers and decrypts each payload with the subscription's private key made here;
:class:`FakeExpo` checks Expo's request shape and answers tickets.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

from tests.conftest import BACKENDS, Account, new_user, server_with
from tests.support.api import bad_fields, latest_event_id
from tests.support.fake_push import BrowserKeys, FakeExpo, FakeWebPushService
from tests.support.push import (
    EXPO_ACCESS_TOKEN,
    SUBJECT,
    eventually,
    metric,
    push_env,
    subscribe_browser,
    subscribe_phone,
    subscriptions_of,
    wait_for_subscriptions,
)
from tests.support.servers import REPO, ServerProcess

pytestmark = pytest.mark.anyio

ARTIFACTS = REPO / "test-artifacts"
QUIET_S = 1.0
"""How long "nothing more arrives" is watched for (five dispatcher polls)."""


@pytest.fixture(scope="module")
def web_push() -> Iterator[FakeWebPushService]:
    with FakeWebPushService().running() as service:
        yield service


@pytest.fixture(scope="module")
def expo() -> Iterator[FakeExpo]:
    with FakeExpo(access_token=EXPO_ACCESS_TOKEN).running() as service:
        yield service


@pytest.fixture(scope="module", params=BACKENDS)
def push_server(request: pytest.FixtureRequest, expo: FakeExpo) -> Iterator[ServerProcess]:
    with server_with(request.param, push_env(expo)) as server:
        yield server


@pytest.fixture(autouse=True)
def _normal_services(web_push: FakeWebPushService, expo: FakeExpo) -> Iterator[None]:
    web_push.mode, web_push.modes, web_push.retry_after = "201", {}, "1"
    expo.status = 200
    yield
    assert not web_push.rejected, web_push.rejected  # every request passed the service's checks
    assert not expo.rejected, expo.rejected


@pytest.fixture
async def http(push_server: ServerProcess) -> Any:
    async with httpx.AsyncClient(base_url=push_server.url, timeout=10) as client:
        yield client


@pytest.fixture
async def owner(http: httpx.AsyncClient) -> Account:
    return await new_user(http, "pusher")


def expo_token() -> str:
    return "ExponentPushToken[" + base64.urlsafe_b64encode(__import__("os").urandom(16)).decode().rstrip("=") + "]"


async def wait_for_success(http: httpx.AsyncClient, account: Account, within: float = 10) -> None:
    """Until every subscription of ``account`` has a last success (bounded)."""
    with anyio.fail_after(within, reason="a subscription has no last success"):
        while True:
            if all(item["last_success_at"] for item in await subscriptions_of(http, account)):
                return
            await anyio.sleep(0.05)


async def order_1004(http: httpx.AsyncClient, account: Account) -> dict[str, Any]:
    created = await http.post(
        "/orders",
        json={
            "external_id": "1004",
            "customer": {"name": "Katherine Johnson"},
            "items": [{"sku": "ACME-LAMP", "quantity": 4, "unit_price": "10.74"}],
        },
        headers=account.headers,
    )
    assert created.status_code == 201, created.text
    order: dict[str, Any] = created.json()
    return order


async def test_subscriptions_belong_to_their_owner(
    http: httpx.AsyncClient, owner: Account, web_push: FakeWebPushService
) -> None:
    key = (await http.get("/push/vapid-public-key", headers=owner.headers)).json()["public_key"]
    raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    assert len(raw) == 65
    assert raw[0] == 4  # an uncompressed P-256 point, as PushManager.subscribe() takes it
    _, subscription = web_push.subscription_json()
    first = await http.post("/push/subscriptions", json=subscription, headers=owner.headers)
    again = await http.post("/push/subscriptions", json=subscription, headers=owner.headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert first.json()["endpoint"] == subscription["endpoint"]
    assert "keys" not in first.json()  # the browser's keys are never shown again
    token = expo_token()
    phone = await http.post("/push/subscriptions", json={"kind": "expo", "token": token}, headers=owner.headers)
    assert phone.status_code == 201, phone.text
    assert phone.json()["token"] == token
    listed = await subscriptions_of(http, owner)
    assert [item["id"] for item in listed] == [first.json()["id"], phone.json()["id"]]
    assert listed[0]["last_success_at"] is None
    assert listed[0]["last_error"] is None

    intruder = await new_user(http, "intruder")
    assert await subscriptions_of(http, intruder) == []
    stolen = await http.delete(f"/push/subscriptions/{first.json()['id']}", headers=intruder.headers)
    assert stolen.status_code == 404
    assert (await http.delete(f"/push/subscriptions/{first.json()['id']}", headers=owner.headers)).status_code == 204
    assert [item["id"] for item in await subscriptions_of(http, owner)] == [phone.json()["id"]]
    assert (await http.get("/push/subscriptions")).status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"endpoint": "ftp://127.0.0.1/push/x"}, "endpoint"),
        ({"endpoint": "https://10.0.0.7/push/x"}, "endpoint"),
        ({"endpoint": "https://169.254.169.254/latest/meta-data"}, "endpoint"),
        ({"endpoint": "http://192.168.1.20:8080/push"}, "endpoint"),
        ({"endpoint": "https://[fd00::1]/push"}, "endpoint"),
        ({"endpoint": "https://127.0.0.1:1:80/push"}, "endpoint"),
        ({"endpoint": "https://user:pw@push.example.com/x"}, "endpoint"),
        ({"endpoint": "https://127.0.0.1/" + "x" * 3000}, "endpoint"),
        ({"keys": None}, "keys"),
        ({"keys": {"p256dh": "A" * 300, "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}, "keys.p256dh"),
        ({"keys": {"p256dh": "BA" + "A" * 85, "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}, "keys.p256dh"),
        ({"keys": {"p256dh": "not base64!", "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}, "keys.p256dh"),
        ({"keys": {"auth": "AAAAAAAAAAAAAAAAAAAAAA"}}, "keys.p256dh"),
        ({"auth_size": 8}, "keys.auth"),
        ({"auth_size": 400}, "keys.auth"),
        ({"kind": "fcm"}, "kind"),
        ({"colour": "blue"}, "colour"),
        ({"token": "ExponentPushToken[abc]"}, "token"),
        ({"kind": "expo", "token": "ExpoToken[abc]"}, "token"),
        ({"kind": "expo", "token": "ExponentPushToken[]"}, "token"),
        ({"kind": "expo"}, "token"),
        ({"kind": "expo", "token": "ExponentPushToken[abcdef]", "endpoint": "https://push.example.com/x"}, "endpoint"),
    ],
)
async def test_bad_subscriptions_are_400_naming_the_field_and_store_nothing(
    http: httpx.AsyncClient, owner: Account, web_push: FakeWebPushService, body: dict[str, Any], field: str
) -> None:
    _, subscription = web_push.subscription_json()
    body = dict(body)  # the parameter is shared by both backends' runs
    if "auth_size" in body:
        size = body.pop("auth_size")
        subscription["keys"]["auth"] = base64.urlsafe_b64encode(b"\x01" * size).decode().rstrip("=")
    if body.get("kind") == "expo":
        subscription = {}
    subscription.update(body)
    if subscription.get("keys") is None:
        subscription.pop("keys", None)
    response = await http.post("/push/subscriptions", json=subscription, headers=owner.headers)
    assert field in bad_fields(response), response.text
    assert await subscriptions_of(http, owner) == []


async def test_an_order_sends_exactly_one_push_with_the_right_text(
    http: httpx.AsyncClient, owner: Account, web_push: FakeWebPushService, expo: FakeExpo
) -> None:
    name, subscription_id = await subscribe_browser(http, owner, web_push)
    token = expo_token()
    await subscribe_phone(http, owner, token)
    order = await order_1004(http, owner)
    event_id = await latest_event_id(http, owner)  # order_created is the order's only event here
    await eventually(lambda: len(web_push.delivered(name)) == 1, what="the order's web push")
    await eventually(lambda: any(m["to"] == token for m in expo.messages()), what="the order's Expo push")
    await anyio.sleep(QUIET_S)
    [push] = web_push.delivered(name)
    ARTIFACTS.mkdir(exist_ok=True)  # what the push service decrypted, for people to read
    seen = {"headers": {k: v for k, v in push.headers.items() if k != "authorization"}, "claims": push.claims}
    (ARTIFACTS / "push-decrypted-payload.json").write_text(
        json.dumps({**seen, "plaintext": push.plaintext.decode()}, indent=2, ensure_ascii=False)
    )
    assert push.message == {
        "title": "New order #1004",
        "body": "42.96 USD · Katherine Johnson",
        "url": f"/#order-{order['id']}",
        "tag": f"order:{order['id']}",
        "type": "order_created",
        "event_id": event_id,
    }
    assert push.headers["urgency"] == "high"
    assert 86_000 < int(push.headers["ttl"]) <= 86_400
    assert push.headers["topic"]
    assert push.claims["sub"] == SUBJECT
    [message] = [m for m in expo.messages() if m["to"] == token]
    assert (message["title"], message["body"], message["priority"]) == (
        "New order #1004",
        "42.96 USD · Katherine Johnson",
        "high",
    )
    assert message["data"]["url"] == f"/#order-{order['id']}"
    assert message["collapseId"] == push.headers["topic"]
    await wait_for_success(http, owner)
    [listed, _] = await subscriptions_of(http, owner)
    assert listed["id"] == subscription_id
    assert listed["last_success_at"] is not None
    assert await metric(http, "dropsync_push_sent", "webpush") >= 1


async def test_a_stock_crossing_sends_one_alert_and_the_alerts_of_a_sku_collapse(
    http: httpx.AsyncClient, owner: Account, web_push: FakeWebPushService
) -> None:
    name, _ = await subscribe_browser(http, owner, web_push)
    product = await http.post(
        "/products", json={"sku": "ACME-LAMP", "name": "Lamp", "price": "10", "stock": 10}, headers=owner.headers
    )
    path = f"/products/{product.json()['id']}"
    for stock in (4, 3, 2):  # one crossing of the threshold (5), then still low: one alert
        assert (await http.patch(path, json={"stock": stock}, headers=owner.headers)).status_code == 200
    await eventually(lambda: len(web_push.delivered(name)) == 1, what="the low-stock push")
    await anyio.sleep(QUIET_S)
    [low] = web_push.delivered(name)
    assert low.message["title"] == "Low stock: ACME-LAMP (4 left)"
    assert low.message["url"] == f"/#product-{product.json()['id']}"
    assert low.headers["urgency"] == "normal"
    await http.patch(path, json={"stock": 0}, headers=owner.headers)
    await eventually(lambda: len(web_push.delivered(name)) == 2, what="the out-of-stock push")
    out = web_push.delivered(name)[1]
    assert out.message["title"] == "Out of stock: ACME-LAMP"
    assert out.headers["topic"] == low.headers["topic"]  # the newer alert replaces the older one


async def test_push_types_choose_what_is_pushed(
    http: httpx.AsyncClient, owner: Account, web_push: FakeWebPushService
) -> None:
    name, _ = await subscribe_browser(http, owner, web_push)
    changed = await http.patch("/settings", json={"push_types": ["stock_out"]}, headers=owner.headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["push_types"] == ["stock_out"]
    history = (await http.get("/events/history", headers=owner.headers)).json()["events"]
    assert history[-1]["type"] == "settings_updated"
    assert history[-1]["data"]["push_types"] == ["stock_out"]
    await order_1004(http, owner)
    await http.post("/notifications", json={"title": "not pushed"}, headers=owner.headers)
    product = await http.post(
        "/products", json={"sku": "GLX-HUB", "name": "Hub", "price": "10", "stock": 1}, headers=owner.headers
    )
    await http.patch(f"/products/{product.json()['id']}", json={"stock": 0}, headers=owner.headers)
    await eventually(lambda: len(web_push.delivered(name)) >= 1, what="the out-of-stock push")
    await anyio.sleep(QUIET_S)
    assert [push.message["title"] for push in web_push.delivered(name)] == ["Out of stock: GLX-HUB"]
    bad = await http.patch("/settings", json={"push_types": ["product_added"]}, headers=owner.headers)
    assert bad_fields(bad) == ["push_types.0"]
    assert (await http.get("/settings", headers=owner.headers)).json()["push_types"] == ["stock_out"]


async def test_a_gone_device_is_removed(
    http: httpx.AsyncClient, owner: Account, web_push: FakeWebPushService, expo: FakeExpo
) -> None:
    name, gone_id = await subscribe_browser(http, owner, web_push)
    _, kept_id = await subscribe_browser(http, owner, web_push)
    token = expo_token()
    expo.gone.add(token)
    await subscribe_phone(http, owner, token)
    web_push.modes[name] = "410"
    pruned_before = await metric(http, "dropsync_push_pruned", "webpush")
    await http.post("/notifications", json={"title": "Anyone there?"}, headers=owner.headers)

    await eventually(lambda: any(p.subscription == name for p in web_push.received), what="the 410")
    await eventually(lambda: bool(expo.messages()) and token in {m["to"] for m in expo.messages()}, what="Expo")
    await wait_for_subscriptions(http, owner, [kept_id])
    assert [push.status for push in web_push.received if push.subscription == name] == [410]
    assert gone_id != kept_id
    assert await metric(http, "dropsync_push_pruned", "webpush") == pruned_before + 1
    assert await metric(http, "dropsync_push_pruned", "expo") >= 1


@pytest.mark.parametrize("failure", ["429", "500"])
async def test_a_busy_service_is_retried_after_retry_after(
    http: httpx.AsyncClient, owner: Account, web_push: FakeWebPushService, failure: str
) -> None:
    name, _ = await subscribe_browser(http, owner, web_push)
    web_push.modes[name] = failure
    web_push.retry_after = "2"
    await http.post("/notifications", json={"title": "Try again"}, headers=owner.headers)
    await eventually(lambda: any(p.subscription == name for p in web_push.received), what="the first attempt")
    web_push.modes[name] = "201"
    await eventually(lambda: len(web_push.delivered(name)) == 1, within=15, what="the retried push")
    attempts = [push for push in web_push.received if push.subscription == name]
    assert [push.status for push in attempts] == [int(failure), 201]
    waited = attempts[1].at - attempts[0].at
    if failure == "429":
        assert waited >= 1.95, waited  # Retry-After: 2 honoured
    await wait_for_success(http, owner)  # the server records the answer just after the service gave it
    [listed] = await subscriptions_of(http, owner)
    assert listed["last_error"].startswith(f"HTTP {failure}")
    assert listed["last_success_at"] >= listed["last_error_at"]
    assert await metric(http, "dropsync_push_retried", "webpush") >= 1


async def test_the_test_route_reports_each_device(
    http: httpx.AsyncClient, owner: Account, web_push: FakeWebPushService, expo: FakeExpo
) -> None:
    working, working_id = await subscribe_browser(http, owner, web_push)
    gone, gone_id = await subscribe_browser(http, owner, web_push)
    web_push.modes[gone] = "410"
    phone_id = await subscribe_phone(http, owner, expo_token())
    answer = await http.post("/push/test", headers=owner.headers)
    assert answer.status_code == 200, answer.text
    outcomes = {result["id"]: (result["outcome"], result["status_code"]) for result in answer.json()["results"]}
    assert outcomes == {working_id: ("sent", 201), gone_id: ("removed", 410), phone_id: ("sent", None)}
    [push] = web_push.delivered(working)
    assert push.message["title"] == "dropsync: test notification"
    assert {item["id"] for item in await subscriptions_of(http, owner)} == {working_id, phone_id}
    nobody = await new_user(http, "lonely")
    assert (await http.post("/push/test", headers=nobody.headers)).json() == {"results": []}


async def test_secrets_stay_out_of_the_log(push_server: ServerProcess, http: httpx.AsyncClient, owner: Account) -> None:
    keys = BrowserKeys().keys_json()
    await http.post(
        "/push/subscriptions",
        json={"endpoint": "https://10.1.2.3/push/secret-path", "keys": keys},
        headers=owner.headers,
    )
    log = push_server.output()
    assert EXPO_ACCESS_TOKEN not in log
    assert keys["auth"] not in log
