"""Resume is lossless: every event after the client's last id, in order, once, then live — after
time away, at the seam with concurrent writes, and across a server restart; ``resync_required``
when the resume point cannot be served."""

from __future__ import annotations

import contextlib
import functools
import random
import sqlite3
from collections.abc import AsyncIterator

import anyio
import asyncpg
import httpx
import pytest

from tests.conftest import Account, new_user, require_postgres
from tests.support.servers import ServerProcess, postgres_database, sqlite_database
from tests.support.streams import (
    TRANSPORTS,
    StreamReader,
    connected,
    ids,
    notify,
    open_sse,
    open_stream,
    open_ws,
    write_notifications,
)

pytestmark = pytest.mark.anyio


def resume(transport: str, url: str, token: str, last_id: int) -> contextlib.AbstractAsyncContextManager[StreamReader]:
    """Reconnect the way each client does: EventSource sends ``Last-Event-ID``, a WebSocket the query."""
    if transport == "sse":
        return open_sse(url, token, headers={"Last-Event-ID": str(last_id)})
    return open_ws(url, token, params={"last_event_id": last_id})


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_fifty_events_while_away(
    server: ServerProcess, client: httpx.AsyncClient, alice: Account, transport: str
) -> None:
    async with open_stream(transport, server.url, alice.token) as stream:
        await connected(stream)
        for _ in range(5):
            await notify(client, alice.headers)
        seen = await stream.events_until(5)
    last_seen = ids(seen)[-1]
    assert last_seen == 5
    for number in range(50):
        await notify(client, alice.headers, title=f"away-{number}")
    async with resume(transport, server.url, alice.token, last_seen) as stream:
        first = await connected(stream)
        assert first.data["last_event_id"] == 5
        replayed = await stream.take(50)
        assert ids(replayed) == list(range(6, 56))
        assert [m.data["title"] for m in replayed] == [f"away-{n}" for n in range(50)]
        await notify(client, alice.headers, title="live")
        live = await stream.next()
        assert (live.id, live.data["title"]) == (56, "live")


async def test_an_eventsource_that_reconnects_before_any_event_misses_nothing(
    server: ServerProcess, client: httpx.AsyncClient, alice: Account
) -> None:
    """A browser's EventSource reconnects by itself, sending the last ``id:`` it saw. A new client
    that drops before its first event must still resume from where it started, not from "now"."""
    await notify(client, alice.headers)
    async with open_sse(server.url, alice.token) as stream:
        assert (await connected(stream)).data["last_event_id"] == 1
        last_id = stream.parser.last_event_id
    await notify(client, alice.headers, title="while away")
    headers = {} if last_id is None else {"Last-Event-ID": last_id}
    async with open_sse(server.url, alice.token, headers=headers) as stream:
        await connected(stream)
        missed = await stream.next()
        assert (missed.id, missed.data["title"]) == (2, "while away")


async def test_an_eventsource_goes_on_from_latest_id_after_resync_required(
    server: ServerProcess, client: httpx.AsyncClient, alice: Account
) -> None:
    for _ in range(3):
        await notify(client, alice.headers)
    async with open_sse(server.url, alice.token, headers={"Last-Event-ID": "999"}) as stream:
        await connected(stream)
        assert (await stream.next()).type == "resync_required"
        last_id = stream.parser.last_event_id
    assert last_id == "3"  # where a reconnecting EventSource goes on from: latest_id


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_resume_from_zero_replays_everything_and_from_latest_nothing(
    server: ServerProcess, client: httpx.AsyncClient, alice: Account, transport: str
) -> None:
    for _ in range(3):
        await notify(client, alice.headers)
    async with resume(transport, server.url, alice.token, 0) as stream:
        assert (await connected(stream)).data["last_event_id"] == 0
        assert ids(await stream.take(3)) == [1, 2, 3]
    async with resume(transport, server.url, alice.token, 3) as stream:
        await connected(stream)
        await notify(client, alice.headers)
        assert ids([await stream.next()]) == [4]  # nothing replayed before the live event


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_resume_point_ahead_of_the_log_gets_resync_required(
    server: ServerProcess, client: httpx.AsyncClient, alice: Account, transport: str
) -> None:
    for _ in range(3):
        await notify(client, alice.headers)
    # The types filter does not hold back connection events.
    params: dict[str, str | int] = {"last_event_id": 999, "types": "seller_added"}
    async with open_stream(transport, server.url, alice.token, params=params) as stream:
        first = await connected(stream)
        assert first.data["last_event_id"] == 3
        resync = await stream.next()
        assert resync.type == "resync_required"
        assert resync.id is None
        assert resync.data["latest_id"] == 3
        assert resync.data["last_event_id"] == 999
        assert resync.data["message"]
        # Then it goes on from latest_id: nothing replayed, the next live event arrives.
        assert (await client.post("/sellers", json={"name": "A"}, headers=alice.headers)).status_code == 201
        assert ids([await stream.next()]) == [4]


async def delete_events(database_url: str, user_id: int, up_to: int) -> None:
    """What retention pruning will do: delete a user's oldest events, straight in the database."""
    if database_url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=30)) as db, db:
            db.execute("DELETE FROM events WHERE user_id = ? AND seq <= ?", (user_id, up_to))
        return
    connection = await asyncpg.connect(database_url, timeout=10)
    try:
        await connection.execute("DELETE FROM events WHERE user_id = $1 AND seq <= $2", user_id, up_to)
    finally:
        await connection.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_resume_point_older_than_the_kept_log_gets_resync_required(
    server: ServerProcess, database_url: str, client: httpx.AsyncClient, alice: Account, transport: str
) -> None:
    for _ in range(10):
        await notify(client, alice.headers)
    await delete_events(database_url, alice.id, up_to=5)
    history = (await client.get("/events/history", headers=alice.headers)).json()
    assert (history["oldest_id"], history["latest_id"]) == (6, 10)

    async with resume(transport, server.url, alice.token, 4) as stream:  # 5 is gone: cannot resume losslessly
        await connected(stream)
        resync = await stream.next()
        assert resync.type == "resync_required"
        assert (resync.data["oldest_id"], resync.data["latest_id"], resync.data["last_event_id"]) == (6, 10, 4)
        await notify(client, alice.headers)
        assert ids([await stream.next()]) == [11]

    async with resume(transport, server.url, alice.token, 5) as stream:  # 6 onwards is all kept
        await connected(stream)
        assert ids(await stream.take(6)) == list(range(6, 12))

    await delete_events(database_url, alice.id, up_to=11)  # nothing kept at all
    async with resume(transport, server.url, alice.token, 8) as stream:
        await connected(stream)
        resync = await stream.next()
        assert resync.type == "resync_required"
        assert (resync.data["oldest_id"], resync.data["latest_id"]) == (None, 11)


WRITES_AT_THE_SEAM = 300


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_resume_at_the_seam_under_concurrent_writes(
    server: ServerProcess, client: httpx.AsyncClient, transport: str
) -> None:
    """Clients connect (fresh, or resuming a little behind) while four writers are busy: each gets
    a gapless run from its starting point to the last event, whatever the replay/live overlap."""
    user = await new_user(client, "seam")
    chooser = random.Random(7)
    starts: list[tuple[int, StreamReader]] = []
    async with contextlib.AsyncExitStack() as stack:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(
                functools.partial(write_notifications, writers=4), server.url, user.headers, WRITES_AT_THE_SEAM
            )
            for threshold in range(20, WRITES_AT_THE_SEAM - 40, 30):
                latest = await wait_for_latest(client, user, threshold)
                if chooser.random() < 0.3:
                    stream = await stack.enter_async_context(open_stream(transport, server.url, user.token))
                    start = (await connected(stream)).data["last_event_id"]
                else:
                    start = max(0, latest - chooser.randint(0, 25))
                    stream = await stack.enter_async_context(resume(transport, server.url, user.token, start))
                    assert (await connected(stream)).data["last_event_id"] == start
                starts.append((start, stream))
        assert len(starts) >= 8
        for start, stream in starts:
            received = await stream.events_until(WRITES_AT_THE_SEAM, within=20)
            assert ids(received) == list(range(start + 1, WRITES_AT_THE_SEAM + 1)), start


async def wait_for_latest(http: httpx.AsyncClient, user: Account, at_least: int) -> int:
    with anyio.fail_after(20):
        while True:
            latest = int((await http.get("/events/history?limit=1", headers=user.headers)).json()["latest_id"])
            if latest >= at_least:
                return latest
            await anyio.sleep(0.005)


@contextlib.asynccontextmanager
async def database(kind: str) -> AsyncIterator[str]:
    """A fresh database of ``kind``; made and dropped in a worker thread (the helpers run their own loop)."""
    if kind == "postgres":
        await anyio.to_thread.run_sync(require_postgres)
    manager = postgres_database() if kind == "postgres" else sqlite_database()
    url = await anyio.to_thread.run_sync(manager.__enter__)
    try:
        yield url
    finally:
        await anyio.to_thread.run_sync(manager.__exit__, None, None, None)


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_resume_across_a_restart(kind: str) -> None:
    """50 events written while the clients are away, then the server restarts on the same database:
    both transports resume from their last id and get all 50, in order, once, then live events."""
    async with database(kind) as url:
        env = {"DROPSYNC_DATABASE_URL": url}
        first = ServerProcess(env=env).start()
        try:
            async with httpx.AsyncClient(base_url=first.url, timeout=10) as http:
                user = await new_user(http, "restart")
                async with open_sse(first.url, user.token) as sse, open_ws(first.url, user.token) as ws:
                    await connected(sse)
                    await connected(ws)
                    for _ in range(3):
                        await notify(http, user.headers)
                    last_seen = {"sse": ids(await sse.events_until(3))[-1], "ws": ids(await ws.events_until(3))[-1]}
                await write_notifications(first.url, user.headers, 50, writers=2)
        finally:
            await anyio.to_thread.run_sync(first.stop)
        second = ServerProcess(env=env).start()
        try:
            async with (
                httpx.AsyncClient(base_url=second.url, timeout=10) as http,
                resume("sse", second.url, user.token, last_seen["sse"]) as sse,
                resume("ws", second.url, user.token, last_seen["ws"]) as ws,
            ):
                for stream in (sse, ws):
                    await connected(stream)
                    assert ids(await stream.take(50)) == list(range(4, 54)), stream.transport
                await notify(http, user.headers, title="live")
                for stream in (sse, ws):
                    live = await stream.next()
                    assert (live.id, live.data["title"]) == (54, "live")
        finally:
            await anyio.to_thread.run_sync(second.stop)
