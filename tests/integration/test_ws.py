"""``GET /ws`` on a real server: the opening, ping/pong, bad frames, bad tokens and bad requests."""

from __future__ import annotations

import time

import anyio
import httpx
import pytest

from tests.conftest import Account, new_user
from tests.support.servers import ServerProcess
from tests.support.streams import RawStreamClient, connected, notify, open_ws, write_notifications

pytestmark = pytest.mark.anyio


async def test_the_first_message_is_connected(server: ServerProcess, alice: Account) -> None:
    async with open_ws(server.url, alice.token) as stream:
        first = await connected(stream)
        assert set(first.envelope) == {"type", "data", "timestamp"}
        assert set(first.data) == {"connection_id", "transport", "heartbeat_s", "last_event_id"}
        assert first.data["transport"] == "ws"
        assert first.data["heartbeat_s"] == 15
        assert first.data["last_event_id"] == 0
        assert isinstance(first.data["connection_id"], str)


async def test_an_event_is_one_text_frame_with_the_envelope(
    server: ServerProcess, client: httpx.AsyncClient, alice: Account
) -> None:
    async with open_ws(server.url, alice.token) as stream:
        await connected(stream)
        await notify(client, alice.headers, title="hello", message="a\nb")
        event = await stream.next()
        assert set(event.envelope) == {"id", "type", "data", "timestamp", "user_id"}
        assert (event.id, event.type, event.envelope["user_id"]) == (1, "system_notification", alice.id)
        assert event.data == {"level": "info", "title": "hello", "message": "a\nb"}


async def test_ping_gets_a_pong_with_a_timestamp(server: ServerProcess, alice: Account) -> None:
    async with open_ws(server.url, alice.token) as stream:
        await connected(stream)
        before = time.time() * 1000
        await stream.send('{"type": "ping"}')
        pong = await stream.next()
        assert pong.type == "pong"
        assert set(pong.envelope) == {"type", "timestamp"}
        assert before - 5000 < pong.envelope["timestamp"] < time.time() * 1000 + 5000


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "{",
        "",
        '{"type": "subscribe"}',
        '{"kind": "ping"}',
        '["ping"]',
        '"ping"',
        "null",
        b'{"type": "ping"}',  # a binary frame
    ],
)
async def test_a_bad_frame_gets_an_error_and_the_connection_stays_open(
    server: ServerProcess, alice: Account, frame: str | bytes
) -> None:
    async with open_ws(server.url, alice.token) as stream:
        await connected(stream)
        await stream.send(frame)
        error = await stream.next()
        assert error.type == "error", error.text
        assert error.data["code"] == "bad_message"
        assert error.data["message"]
        await stream.send('{"type": "ping"}')
        assert (await stream.next()).type == "pong"
        assert not stream.ended


async def test_events_and_pongs_interleave_on_one_socket(
    server: ServerProcess, client: httpx.AsyncClient, alice: Account
) -> None:
    async with open_ws(server.url, alice.token) as stream:
        await connected(stream)
        for number in range(20):
            await stream.send('{"type": "ping"}')
            await notify(client, alice.headers, title=f"n{number}")
        await stream.wait_until(lambda: len(stream.messages) >= 41)
        kinds = [message.type for message in stream.messages[1:]]
        assert kinds.count("pong") == 20
        assert [message.id for message in stream.messages if message.id is not None] == list(range(1, 21))


@pytest.mark.parametrize("token", [None, "", "not-a-token"])
async def test_a_bad_or_missing_token_closes_with_4401(server: ServerProcess, token: str | None) -> None:
    async with open_ws(server.url, token) as stream:
        assert await stream.wait_closed() == 4401
        assert [message.type for message in stream.messages] == ["error"]
        assert stream.messages[0].data["code"] == "unauthorized"


async def test_a_bad_bearer_header_closes_with_4401(server: ServerProcess) -> None:
    async with open_ws(server.url, headers={"Authorization": "Bearer not-a-token"}) as stream:
        assert await stream.wait_closed() == 4401
        assert stream.close_reason  # a close always says why


async def test_the_token_may_come_from_a_header_or_a_cookie(server: ServerProcess, alice: Account) -> None:
    async with open_ws(server.url, headers={"Authorization": f"Bearer {alice.token}"}) as stream:
        await connected(stream)
    async with open_ws(server.url, headers={"Cookie": f"access_token={alice.token}"}) as stream:
        await connected(stream)


async def test_a_token_in_the_url_wins_over_a_stale_cookie(server: ServerProcess, alice: Account) -> None:
    async with open_ws(server.url, alice.token, headers={"Cookie": "access_token=stale"}) as stream:
        await connected(stream)


async def test_the_cookie_does_not_count_for_a_page_of_another_site(server: ServerProcess, alice: Account) -> None:
    # Cross-site WebSocket hijacking: a browser attaches the cookie to a socket any site opens.
    cookie = {"Cookie": f"access_token={alice.token}"}
    evil = {**cookie, "Origin": "https://evil.example"}
    async with open_ws(server.url, headers=evil) as stream:
        assert await stream.wait_closed() == 4401
    same = {**cookie, "Origin": server.url}
    async with open_ws(server.url, headers=same) as stream:
        await connected(stream)


@pytest.mark.parametrize(
    "params", [{"last_event_id": "abc"}, {"last_event_id": "-1"}, {"last_event_id": "1e3"}, {"types": ","}]
)
async def test_bad_query_parameters_close_with_4400(
    server: ServerProcess, alice: Account, params: dict[str, str]
) -> None:
    async with open_ws(server.url, alice.token, params=params) as stream:
        assert await stream.wait_closed() == 4400
        assert [message.type for message in stream.messages] == ["error"]
        assert stream.messages[0].data["code"] == "bad_request"
        assert next(iter(params)) in stream.messages[0].data["message"]
        assert stream.close_reason == stream.messages[0].data["message"]


async def test_an_unknown_type_closes_with_4400_naming_it(server: ServerProcess, alice: Account) -> None:
    async with open_ws(server.url, alice.token, params={"types": "order_create,stock_low"}) as stream:
        assert await stream.wait_closed() == 4400
        assert [message.type for message in stream.messages] == ["error"]
        assert "'order_create'" in stream.messages[0].data["message"]
        assert stream.close_reason is not None
        assert "'order_create'" in stream.close_reason
        assert "did you mean 'order_created'?" in stream.close_reason


async def test_a_revoked_token_closes_with_4401(server: ServerProcess, client: httpx.AsyncClient) -> None:
    user = await new_user(client, "revoked")
    assert (await client.delete("/auth/token", headers=user.headers)).status_code in {200, 204}
    async with open_ws(server.url, user.token) as stream:
        assert await stream.wait_closed() == 4401


async def test_a_client_that_closes_is_forgotten(
    server: ServerProcess, client: httpx.AsyncClient, alice: Account
) -> None:
    async with open_ws(server.url, alice.token) as stream:
        await connected(stream)
    deadline = time.monotonic() + 5
    while True:
        stats = (await client.get("/ws/stats", headers=alice.headers)).json()
        if not stats["connections"]:
            break
        assert time.monotonic() < deadline, stats
        await anyio.sleep(0.05)


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_a_client_that_vanishes_mid_send_leaves_no_traceback(
    server: ServerProcess, client: httpx.AsyncClient, alice: Account, transport: str
) -> None:
    before = server.output().count("Traceback")
    vanishing = RawStreamClient(transport, server.url, alice.token, receive_buffer=4096)
    await vanishing.open()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(write_notifications, server.url, alice.headers, 100)
        if transport == "ws":
            await vanishing.send_text_frames(['{"type": "ping"}'] * 500)  # pongs to send when it vanishes
        vanishing.reset()
    with anyio.fail_after(5):
        while True:
            if not (await client.get("/ws/stats", headers=alice.headers)).json()["connections"]:
                break  # the server noticed
            await anyio.sleep(0.02)
    assert server.output().count("Traceback") == before, server.output()[-3000:]
