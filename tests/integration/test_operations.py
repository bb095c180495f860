"""Operations: /health, /ready, /metrics, rate limits (429 + Retry-After), JSON logs without tokens,
and the retention pruning that makes an old resume point a ``resync_required``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import anyio
import httpx
import pytest

from domain.db import Database
from domain.retention import DAY_MS, prune_events
from domain.services.event_log import EventLog
from domain.services.users import UserService
from domain.uow import UnitOfWork
from streams.broker import MemoryBroker
from streams.feed import EventFeed, StreamRequest
from tests.conftest import Account, new_user, server_with
from tests.support.servers import ServerProcess
from tests.support.streams import connected, notify, open_sse, open_ws

pytestmark = pytest.mark.anyio


async def test_health_and_ready(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "broker": "ok"}


async def test_metrics_count_connections_deliveries_and_requests(
    server: ServerProcess, client: httpx.AsyncClient, alice: Account
) -> None:
    def sample(text: str, name: str) -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))

    before = (await client.get("/metrics")).text
    async with open_sse(server.url, alice.token) as stream:
        await connected(stream)
        during = (await client.get("/metrics")).text
        assert sample(during, 'dropsync_connections{transport="sse"}') >= 1
        await notify(client, alice.headers)
        await stream.events_until(1)
    after = (await client.get("/metrics")).text
    assert after.startswith("# HELP")
    delivered = 'dropsync_events_delivered_total{transport="sse"}'
    assert sample(after, delivered) >= sample(before, delivered) + 1
    assert sample(after, "dropsync_events_published_total") >= sample(before, "dropsync_events_published_total") + 1
    assert sample(after, 'dropsync_delivery_lag_seconds_count{transport="sse"}') >= 1
    assert 'route="/notifications",status="201"' in after


@pytest.fixture(scope="module")
def limited_server() -> Iterator[ServerProcess]:
    settings = {
        "DROPSYNC_RATE_LIMIT": "true",
        "DROPSYNC_RATE_LIMIT_AUTH_PER_MINUTE": "6",
        "DROPSYNC_RATE_LIMIT_WRITES_PER_SECOND": "2",
        "DROPSYNC_LOG_FORMAT": "json",
    }
    with server_with("sqlite", settings) as process:
        yield process


def from_address(server: ServerProcess, address: str) -> httpx.AsyncClient:
    """A client calling from its own loopback address, so that each test has its own sign-in bucket."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=server.url, timeout=10, transport=transport)


@pytest.fixture
async def limited(limited_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with from_address(limited_server, "127.0.0.2") as http:
        yield http


async def test_sign_in_attempts_are_limited_with_retry_after(limited: httpx.AsyncClient) -> None:
    statuses: list[int] = []
    refused = None
    for _ in range(10):  # 6 a minute per address
        answer = await limited.post("/auth/token", json={"username": "nobody", "password": "wrong-password"})
        statuses.append(answer.status_code)
        if answer.status_code == 429:
            refused = answer
            break
    assert refused is not None, statuses
    assert set(statuses[:-1]) <= {401}, statuses
    assert len(statuses) == 7, statuses
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["status_code"] == 429
    assert (await limited.get("/health")).status_code == 200  # reads are not limited


async def test_writes_are_limited_per_token_and_nothing_is_written_when_refused(
    limited_server: ServerProcess,
) -> None:
    async with from_address(limited_server, "127.0.0.3") as http:
        headers = (await new_user(http, "limited")).headers
        statuses = [
            (await http.post("/notifications", json={"title": "t"}, headers=headers)).status_code for _ in range(8)
        ]
        assert statuses[:4] == [201] * 4  # a burst of twice the rate
        assert 429 in statuses[4:]
        history = (await http.get("/events/history", headers=headers)).json()
        assert history["latest_id"] == statuses.count(201)


async def test_json_logs_never_carry_a_token(limited_server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=limited_server.url, timeout=10) as http:
        response = await http.get("/ws/stats", params={"access_token": "secret-token-in-the-url"})
        assert response.status_code == 401
    output = limited_server.output()
    assert "secret-token-in-the-url" not in output
    lines = [line for line in output.splitlines() if line.startswith("{")]
    assert lines, output
    for line in lines:
        record = json.loads(line)
        assert {"time", "level", "logger", "message"} <= record.keys()


async def test_pruning_keeps_the_larger_of_days_and_count_and_old_resumes_get_resync(database: Database) -> None:
    user = await UserService(database, allow_signup=True, token_ttl_s=60).create_user(f"old-{id(database)}", "x")
    uow = UnitOfWork(database, MemoryBroker())
    for number in range(30):
        async with uow.write(user["id"]) as change:
            change.record("system_notification", {"n": number})
    log = EventLog()

    assert await prune_events(database, days=7, min_events=10) == 0, "recent events are kept, however many"
    newest = (await log.read_after(user["id"], 29, 1))[0]
    eight_days_later = int(json.loads(newest.payload)["timestamp"]) + 8 * DAY_MS
    removed = await prune_events(database, days=7, min_events=10, now=eight_days_later)
    assert removed >= 20
    bounds = await log.bounds(user["id"])
    assert (bounds.oldest_id, bounds.latest_id) == (21, 30), "the last 10 are kept, however old"

    broker = MemoryBroker()
    stale = EventFeed(broker, log, user["id"], StreamRequest.parse("5", None), queue_size=10)
    resync = await stale.open()
    assert resync is not None
    assert json.loads(resync)["data"]["latest_id"] == 30
    fresh = EventFeed(broker, log, user["id"], StreamRequest.parse("20", None), queue_size=10)
    assert await fresh.open() is None
    with anyio.fail_after(5):
        replay = await anext(fresh.batches())
    assert [event.id for event in replay] == list(range(21, 31))


@pytest.fixture(scope="module")
def quick_token_checks() -> Iterator[ServerProcess]:
    with server_with("sqlite", {"DROPSYNC_TOKEN_CHECK_S": "0.2"}) as process:
        yield process


async def test_streams_end_when_their_token_is_revoked(quick_token_checks: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=quick_token_checks.url, timeout=10) as http:
        user = await new_user(http, "revoked")
        other = await new_user(http, "kept")
        async with (
            open_sse(quick_token_checks.url, user.token) as sse,
            open_ws(quick_token_checks.url, user.token) as ws,
            open_sse(quick_token_checks.url, other.token) as bystander,
        ):
            for stream in (sse, ws, bystander):
                await connected(stream)
            assert (await http.delete("/auth/token", headers=user.headers)).status_code == 204
            farewell = await sse.next_of("error", within=5)
            assert farewell.data["code"] == "unauthorized"
            await sse.rest(within=5)  # and the SSE body ends
            assert await ws.wait_closed(within=5) == 4401
            # Like a refusal at connect: an error frame says why, and the close carries a reason.
            assert [(m.type, m.data["code"]) for m in ws.messages[1:]] == [("error", "unauthorized")]
            assert ws.close_reason
            assert f"event: stream_error\ndata: {farewell.text}".encode() in bytes(sse.raw)
            await notify(http, other.headers)
            assert [m.id for m in await bystander.events_until(1)] == [1]  # other tokens go on
