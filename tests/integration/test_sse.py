"""``GET /events`` on a real server: headers, framing, heartbeats, tokens and bad requests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Account, new_user
from tests.support.servers import ServerProcess, sqlite_database
from tests.support.streams import SseStream, connected, notify, open_sse, open_ws

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def heartbeat_server() -> Iterator[ServerProcess]:
    """A server that pings every half second, with uvicorn's access log on."""
    with sqlite_database() as url:
        env = {"DROPSYNC_DATABASE_URL": url, "DROPSYNC_HEARTBEAT_S": "0.5"}
        process = ServerProcess(env=env, extra_args=("--access-log",)).start()
        yield process
        process.stop()


async def test_the_stream_has_the_event_stream_headers(server: ServerProcess, alice: Account) -> None:
    async with open_sse(server.url, alice.token) as stream:
        await connected(stream)
        headers = stream.response.headers
        assert stream.response.status_code == 200
        assert headers["content-type"].split(";")[0] == "text/event-stream"
        assert headers["cache-control"] == "no-cache"
        assert headers["x-accel-buffering"] == "no"


async def test_the_stream_opens_with_retry_in_the_connected_block(server: ServerProcess, alice: Account) -> None:
    async with open_sse(server.url, alice.token) as stream:
        first = await connected(stream)
        # One block: `retry:` alone would be a block without data, an empty message to some clients.
        assert bytes(stream.raw).startswith(b"retry: 3000\nid: 0\nevent: connected\ndata: ")
        assert stream.parser.retry == 3000
        assert stream.parser.retry_before_first_event
        assert first.sse_id == "0"  # the starting point, where a reconnecting EventSource resumes from
        assert set(first.envelope) == {"type", "data", "timestamp"}
        data = first.data
        assert set(data) == {"connection_id", "transport", "heartbeat_s", "last_event_id"}
        assert isinstance(data["connection_id"], str)
        assert data["connection_id"]
        assert data["transport"] == "sse"
        assert data["heartbeat_s"] == 15
        assert data["last_event_id"] == 0


async def test_each_connection_gets_its_own_id(server: ServerProcess, alice: Account) -> None:
    async with open_sse(server.url, alice.token) as one, open_sse(server.url, alice.token) as two:
        first, second = await connected(one), await connected(two)
        assert first.data["connection_id"] != second.data["connection_id"]


async def test_an_event_is_id_event_and_data_lines(
    server: ServerProcess, client: httpx.AsyncClient, alice: Account
) -> None:
    async with open_sse(server.url, alice.token) as stream:
        await connected(stream)
        # Line breaks and non-ASCII in the data must not break the frame.
        await notify(client, alice.headers, title="Ünïcode ✓", message="line one\nline two\r\nthree\rfour")
        event = await stream.next()
        history = await client.get("/events/history", headers=alice.headers)
        stored = history.content.split(b'"events":[', 1)[1].rsplit(b'],"latest_id"', 1)[0]
        frame = b"id: 1\nevent: system_notification\ndata: " + stored + b"\n\n"
        assert frame in bytes(stream.raw)
        assert event.sse_id == "1"
        assert event.type == "system_notification"
        assert event.envelope["id"] == 1
        assert event.envelope["user_id"] == alice.id
        assert isinstance(event.envelope["timestamp"], int)
        assert event.data["message"] == "line one\nline two\r\nthree\rfour"
        assert event.data["title"] == "Ünïcode ✓"


async def test_sse_data_and_ws_frames_are_the_same_bytes(
    server: ServerProcess, client: httpx.AsyncClient, alice: Account
) -> None:
    async with open_sse(server.url, alice.token) as sse, open_ws(server.url, alice.token) as ws:
        await connected(sse)
        await connected(ws)
        await notify(client, alice.headers, title="one", message="\u2028 and \u00e9")
        created = await client.post("/sellers", json={"name": "Acme"}, headers=alice.headers)
        assert created.status_code == 201, created.text
        by_sse = await sse.events_until(2)
        by_ws = await ws.events_until(2)
        assert [m.text for m in by_sse] == [m.text for m in by_ws]
        assert [m.type for m in by_sse] == ["system_notification", "seller_added"]
        assert by_sse[1].data == created.json()


async def test_a_ping_comment_comes_every_heartbeat(heartbeat_server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=heartbeat_server.url, timeout=10) as http:
        user = await new_user(http, "pinged")
    async with open_sse(heartbeat_server.url, user.token) as stream:
        first = await connected(stream)
        assert first.data["heartbeat_s"] == 0.5
        await stream.wait_until(lambda: len(stream.comments) >= 3, within=5)
        assert {comment.text for comment in stream.comments} == {"ping"}
        # A comment line with no blank line after it: fetch-event-source and httpx-sse would hand
        # a blank-line-terminated block without data to the application as an empty message.
        raw = bytes(stream.raw)
        assert b"\n\n: ping\n: ping\n" in raw
        assert b": ping\n\n" not in raw
        gaps = [b.received_at - a.received_at for a, b in zip(stream.comments, stream.comments[1:], strict=False)]
        assert all(0.3 < gap < 1.5 for gap in gaps), gaps
        assert len(stream.messages) == 1  # comments dispatch nothing


def open_with_token(url: str, how: str, token: str) -> contextlib.AbstractAsyncContextManager[SseStream]:
    if how == "header":
        return open_sse(url, headers={"Authorization": f"Bearer {token}"})
    if how == "cookie":
        return open_sse(url, cookies={"access_token": token})
    if how == "query":
        return open_sse(url, params={"access_token": token})
    if how == "scheme":
        return open_sse(url, headers={"Authorization": f"Basic {token}"})
    return open_sse(url)


@pytest.mark.parametrize("how", ["header", "cookie", "query"])
async def test_the_token_may_come_from_header_cookie_or_query(server: ServerProcess, alice: Account, how: str) -> None:
    async with open_with_token(server.url, how, alice.token) as stream:
        assert stream.response.status_code == 200
        await connected(stream)


@pytest.mark.parametrize("how", ["none", "header", "cookie", "query", "scheme"])
async def test_a_bad_or_missing_token_is_401_json(server: ServerProcess, how: str) -> None:
    async with open_with_token(server.url, how, "not-a-token") as stream:
        assert stream.response.status_code == 401
        assert stream.response.headers["www-authenticate"] == "Bearer"
        assert (await stream.error_body())["detail"]


async def test_a_token_in_the_url_wins_over_a_stale_cookie(server: ServerProcess, alice: Account) -> None:
    opened = open_sse(server.url, params={"access_token": alice.token}, cookies={"access_token": "stale"})
    async with opened as stream:
        assert stream.response.status_code == 200
        await connected(stream)


async def test_a_good_header_wins_over_a_bad_query_token(server: ServerProcess, alice: Account) -> None:
    async with open_sse(server.url, alice.token, params={"access_token": "not-a-token"}) as stream:
        assert stream.response.status_code == 200
        await connected(stream)


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "9223372036854775808", "0x10"])
@pytest.mark.parametrize("where", ["query", "header"])
async def test_a_bad_last_event_id_is_400_json(server: ServerProcess, alice: Account, value: str, where: str) -> None:
    if where == "query":
        opened = open_sse(server.url, alice.token, params={"last_event_id": value})
    else:
        opened = open_sse(server.url, alice.token, headers={"Last-Event-ID": value})
    async with opened as stream:
        assert stream.response.status_code == 400
        assert "last_event_id" in (await stream.error_body())["detail"]


@pytest.mark.parametrize("types", ["", ",", " , ", "a" * 41, "order_create", "stock_low,nope"])
async def test_a_bad_types_list_is_400_json(server: ServerProcess, alice: Account, types: str) -> None:
    async with open_sse(server.url, alice.token, params={"types": types}) as stream:
        assert stream.response.status_code == 400
        assert "types" in (await stream.error_body())["detail"]


async def test_an_unknown_type_is_named_in_the_400(server: ServerProcess, alice: Account) -> None:
    async with open_sse(server.url, alice.token, params={"types": "order_create,stock_low"}) as stream:
        assert stream.response.status_code == 400
        detail = (await stream.error_body())["detail"]
        assert "'order_create'" in detail
        assert "did you mean 'order_created'?" in detail


async def test_every_block_carries_data(server: ServerProcess, client: httpx.AsyncClient, alice: Account) -> None:
    """What fetch-event-source and httpx-sse dispatch: every blank-line-terminated block."""
    async with open_sse(server.url, alice.token, params={"last_event_id": 0}) as stream:
        await connected(stream)
        await notify(client, alice.headers)
        await stream.events_until(1)
    blocks = [block for block in bytes(stream.raw).split(b"\n\n") if block.strip()]
    assert blocks
    for block in blocks:
        lines = [line for line in block.split(b"\n") if not line.startswith(b":")]
        assert any(line.startswith(b"data: ") for line in lines), block


async def test_the_last_event_id_header_wins_over_the_query(
    server: ServerProcess, client: httpx.AsyncClient, alice: Account
) -> None:
    for number in range(5):
        await notify(client, alice.headers, title=f"n{number}")
    opened = open_sse(server.url, alice.token, params={"last_event_id": 1}, headers={"Last-Event-ID": "3"})
    async with opened as stream:
        first = await connected(stream)
        assert first.data["last_event_id"] == 3
        assert [m.id for m in await stream.take(2)] == [4, 5]


async def test_a_blank_last_event_id_means_from_now(
    server: ServerProcess, client: httpx.AsyncClient, alice: Account
) -> None:
    await notify(client, alice.headers)
    async with open_sse(server.url, alice.token, params={"last_event_id": ""}) as stream:
        first = await connected(stream)
        assert first.data["last_event_id"] == 1
        await notify(client, alice.headers)
        assert (await stream.next()).id == 2


async def test_a_token_is_not_valid_after_it_is_revoked(server: ServerProcess, client: httpx.AsyncClient) -> None:
    user = await new_user(client, "revoked")
    revoked = await client.delete("/auth/token", headers=user.headers)
    assert revoked.status_code in {200, 204}, revoked.text
    async with open_sse(server.url, user.token) as stream:
        assert stream.response.status_code == 401


async def test_a_token_in_the_url_never_reaches_the_log(heartbeat_server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=heartbeat_server.url, timeout=10) as http:
        user = await new_user(http, "logged")
    bad = "not-a-real-token-0123456789"
    async with open_sse(heartbeat_server.url, params={"access_token": user.token}) as stream:
        await connected(stream)
    async with open_ws(heartbeat_server.url, user.token) as ws:
        await connected(ws)
    async with open_sse(heartbeat_server.url, params={"access_token": bad}) as stream:
        assert stream.response.status_code == 401
    async with open_ws(heartbeat_server.url, bad) as ws:
        assert await ws.wait_closed() == 4401
    async with httpx.AsyncClient(base_url=heartbeat_server.url, timeout=10) as http:
        assert (await http.get("/ws/stats", params={"access_token": user.token})).status_code == 200
    log = heartbeat_server.output()
    assert "access_token=[redacted]" in log  # the access log is on: the lines are there
    assert user.token not in log
    assert bad not in log
