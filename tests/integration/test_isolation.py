"""A user's events reach every one of that user's connections, and no one else's; ``/ws/stats``
shows the caller's own connections and numbers only."""

from __future__ import annotations

import contextlib
import random
import time
from typing import Any

import anyio
import httpx
import pytest

from tests.conftest import Account, new_user
from tests.support.servers import ServerProcess
from tests.support.streams import (
    TRANSPORTS,
    Message,
    StreamReader,
    connected,
    ids,
    notify,
    open_sse,
    open_stream,
    open_ws,
)

pytestmark = pytest.mark.anyio

EVENTS_PER_USER = 40


async def write_mixed(http: httpx.AsyncClient, user: Account, count: int, seed: int) -> None:
    """``count`` events of a few kinds, in a random rhythm (one event per request)."""
    chooser = random.Random(seed)
    for number in range(count):
        if chooser.random() < 0.5:
            await notify(http, user.headers, title=f"{user.username}-{number}")
        else:
            created = await http.post("/sellers", json={"name": f"{user.username}-{number}"}, headers=user.headers)
            assert created.status_code == 201, created.text
        if chooser.random() < 0.3:
            await anyio.sleep(0.001)


async def test_two_users_two_devices_both_transports(server: ServerProcess, client: httpx.AsyncClient) -> None:
    alice, bob = await new_user(client, "alice"), await new_user(client, "bob")
    async with contextlib.AsyncExitStack() as stack:
        devices: list[tuple[Account, StreamReader]] = []
        for user in (alice, bob):
            for transport in TRANSPORTS:
                for _ in range(2):
                    stream = await stack.enter_async_context(open_stream(transport, server.url, user.token))
                    await connected(stream)
                    devices.append((user, stream))
        async with anyio.create_task_group() as writers:
            writers.start_soon(write_mixed, client, alice, EVENTS_PER_USER, 1)
            writers.start_soon(write_mixed, client, bob, EVENTS_PER_USER, 2)
        # A last event each: anything of the other user's that leaked would have come before it.
        await notify(client, alice.headers, title="last")
        await notify(client, bob.headers, title="last")
        for user, stream in devices:
            received = await stream.events_until(EVENTS_PER_USER + 1)
            assert ids(received) == list(range(1, EVENTS_PER_USER + 2)), (user.username, stream.transport)
            assert {message.envelope["user_id"] for message in received} == {user.id}
            names = [m.data.get("title") or m.data.get("name") for m in received[:-1]]
            assert all(str(name).startswith(f"{user.username}-") for name in names), names
            assert [m.type for m in stream.messages if m.id is None] == ["connected"]
        # Every device of a user got the same bytes.
        for user in (alice, bob):
            texts = {tuple(m.text for m in stream.messages[1:]) for owner, stream in devices if owner is user}
            assert len(texts) == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_types_filters_recorded_events_only(
    server: ServerProcess, client: httpx.AsyncClient, alice: Account, transport: str
) -> None:
    params = {"types": "seller_added,seller_deleted"}
    async with open_stream(transport, server.url, alice.token, params=params) as stream:
        await connected(stream)  # connection events always come
        await notify(client, alice.headers)  # 1: filtered out
        created = await client.post("/sellers", json={"name": "Acme"}, headers=alice.headers)  # 2
        assert created.status_code == 201
        await notify(client, alice.headers)  # 3: filtered out
        deleted = await client.delete(f"/sellers/{created.json()['id']}", headers=alice.headers)  # 4
        assert deleted.status_code in {200, 204}
        await notify(client, alice.headers)  # 5: filtered out
        updated = await client.post("/sellers", json={"name": "Other"}, headers=alice.headers)  # 6
        assert updated.status_code == 201
        received = await stream.take(3)
        assert [(m.id, m.type) for m in received] == [(2, "seller_added"), (4, "seller_deleted"), (6, "seller_added")]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_types_filter_applies_to_the_replay_too(
    server: ServerProcess, client: httpx.AsyncClient, alice: Account, transport: str
) -> None:
    for _ in range(3):
        await notify(client, alice.headers)
        assert (await client.post("/sellers", json={"name": "A"}, headers=alice.headers)).status_code == 201
    params: dict[str, str | int] = {"types": "seller_added", "last_event_id": 0}
    async with open_stream(transport, server.url, alice.token, params=params) as stream:
        await connected(stream)
        assert [(m.id, m.type) for m in await stream.take(3)] == [(i, "seller_added") for i in (2, 4, 6)]


async def stats(http: httpx.AsyncClient, user: Account) -> dict[str, Any]:
    response = await http.get("/ws/stats", headers=user.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


async def test_stats_show_my_connections_and_totals_only(server: ServerProcess, client: httpx.AsyncClient) -> None:
    alice, bob = await new_user(client, "alice"), await new_user(client, "bob")
    async with (
        open_sse(server.url, alice.token) as a_sse,
        open_ws(server.url, alice.token) as a_ws1,
        open_ws(server.url, alice.token) as a_ws2,
        open_sse(server.url, bob.token) as b_sse,
    ):
        mine: list[Message] = [await connected(s) for s in (a_sse, a_ws1, a_ws2)]
        theirs = await connected(b_sse)
        body = await stats(client, alice)
        assert set(body) == {"connections", "totals"}
        connections = body["connections"]
        assert isinstance(connections, list)
        assert sorted((c["connection_id"], c["transport"]) for c in connections) == sorted(
            (m.data["connection_id"], m.data["transport"]) for m in mine
        )
        for entry in connections:
            assert set(entry) == {"connection_id", "transport", "connected_at", "last_event_id", "queued"}
            assert time.strptime(entry["connected_at"], "%Y-%m-%dT%H:%M:%SZ")
        totals = body["totals"]
        assert isinstance(totals, dict)
        assert set(totals) == {"connections", "by_transport", "users_online"}
        assert totals["by_transport"]["sse"] >= 2
        assert totals["by_transport"]["ws"] >= 2
        assert totals["connections"] == sum(totals["by_transport"].values()) >= 4
        assert totals["users_online"] >= 2
        text = (await client.get("/ws/stats", headers=alice.headers)).text
        assert theirs.data["connection_id"] not in text
        assert bob.username not in text
        assert bob.token not in text

        # The last id sent shows up once the event went out on each connection.
        await notify(client, alice.headers)
        for stream in (a_sse, a_ws1, a_ws2):
            assert (await stream.next()).id == 1
        deadline = time.monotonic() + 5
        while {c["last_event_id"] for c in (await stats(client, alice))["connections"]} != {1}:
            assert time.monotonic() < deadline
            await anyio.sleep(0.02)

        bob_view = await stats(client, bob)
        assert [c["connection_id"] for c in bob_view["connections"]] == [theirs.data["connection_id"]]


async def test_stats_need_a_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/ws/stats")).status_code == 401
    assert (await client.get("/ws/stats", headers={"Authorization": "Bearer nope"})).status_code == 401
