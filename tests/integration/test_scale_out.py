"""Scale-out: several server processes on one PostgreSQL and one Redis.

An event recorded by any process reaches the user's connections on every process, in order,
with no gap and no duplicate — also when Redis restarts mid-stream (the gap is filled from the
database) — and ``/ws/stats`` totals count every process.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import redis.asyncio as redis

from tests.conftest import Account, new_user, require_postgres
from tests.support.servers import IN_CI, REDIS_URL, ServerProcess, free_port, postgres_database
from tests.support.streams import StreamReader, connected, ids, open_sse, open_ws

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.redis]

WRITES = 500


def require_redis_server() -> str:
    """The redis-server binary (to run a Redis this test may restart); skip or, in CI, fail."""
    binary = shutil.which("redis-server")
    if binary is None:
        reason = "redis-server is not installed"
        if IN_CI:
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    return binary


async def require_machine_redis() -> None:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        reason = f"Redis not reachable at {REDIS_URL} ({type(exc).__name__})"
        if IN_CI:
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    finally:
        await client.aclose()


def has_event(stream: StreamReader, event_id: int) -> bool:
    return event_id in ids(stream.messages)


class RedisProcess:
    """A Redis of the test's own on a loopback port, which the test can stop and start again."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="dropsync-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, cwd=self.folder, stdout=subprocess.DEVNULL)

    async def wait_ready(self, within: float = 10) -> None:
        with anyio.fail_after(within):
            while True:
                client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
                try:
                    await client.ping()
                    return
                except Exception:  # noqa: BLE001 - not up yet
                    await anyio.sleep(0.05)
                finally:
                    await client.aclose()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    require_postgres()
    with postgres_database() as url:
        yield url


@contextlib.contextmanager
def two_servers(database_url: str, broker_url: str) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    env = {
        "DROPSYNC_DATABASE_URL": database_url,
        "DROPSYNC_BROKER_URL": broker_url,
        # The machine's Redis may carry other runs' channels: this pair gets a namespace of its own.
        "DROPSYNC_BROKER_NAMESPACE": f"test-{secrets.token_hex(4)}",
    }
    first = ServerProcess(env=env).start()
    try:
        second = ServerProcess(env=env).start()
        try:
            yield first, second
        finally:
            second.stop()
    finally:
        first.stop()


@contextlib.asynccontextmanager
async def four_devices(servers: tuple[ServerProcess, ServerProcess], token: str) -> AsyncIterator[list[StreamReader]]:
    """An SSE and a WebSocket connection on each server, all connected."""
    async with contextlib.AsyncExitStack() as stack:
        streams: list[StreamReader] = []
        for server in servers:
            streams.append(await stack.enter_async_context(open_sse(server.url, token)))
            streams.append(await stack.enter_async_context(open_ws(server.url, token)))
        for stream in streams:
            await connected(stream)
        yield streams


async def stats_once_settled(
    server: ServerProcess, user: Account, expected: dict[str, int], within: float = 10
) -> dict[str, Any]:
    """``/ws/stats`` once its totals show ``expected`` (processes share their numbers within ~1 s)."""
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        with anyio.fail_after(within):
            while True:
                stats: dict[str, Any] = (await http.get("/ws/stats", headers=user.headers)).json()
                if stats["totals"]["by_transport"] == expected:
                    return stats
                await anyio.sleep(0.1)


async def write_spread(servers: tuple[ServerProcess, ServerProcess], user: Account, count: int, first: int = 0) -> None:
    """``count`` notifications, alternating between the servers, from 4 concurrent writers."""
    numbers = iter(range(first, first + count))

    async def writer(http: list[httpx.AsyncClient]) -> None:
        for number in numbers:
            response = await http[number % 2].post("/notifications", json={"title": f"n{number}"}, headers=user.headers)
            assert response.status_code == 201, response.text

    async with (
        httpx.AsyncClient(base_url=servers[0].url, timeout=30) as one,
        httpx.AsyncClient(base_url=servers[1].url, timeout=30) as two,
        anyio.create_task_group() as writers,
    ):
        for _ in range(4):
            writers.start_soon(writer, [one, two])


async def test_writes_on_either_process_reach_every_connection_in_order(postgres_url: str) -> None:
    await require_machine_redis()
    with two_servers(postgres_url, REDIS_URL) as servers:
        async with httpx.AsyncClient(base_url=servers[0].url, timeout=30) as http:
            alice = await new_user(http, "alice")
            bob = await new_user(http, "bob")
        async with four_devices(servers, alice.token) as devices, four_devices(servers, bob.token) as bobs:
            stats = await stats_once_settled(servers[1], alice, {"sse": 4, "ws": 4})
            assert stats["totals"]["users_online"] == 2
            assert len(stats["connections"]) == 2  # alice's two on this process, not bob's

            await write_spread(servers, alice, WRITES)
            for device in devices:
                assert ids(await device.events_until(WRITES, within=30)) == list(range(1, WRITES + 1))
            await write_spread(servers, bob, 3)
            for device in bobs:
                assert ids(await device.events_until(3)) == [1, 2, 3]  # bob sees only his own
            for device in devices:
                assert not [m for m in device.messages if m.type == "system_notification" and m.id and m.id > WRITES]


async def test_nothing_is_lost_when_redis_restarts_mid_stream(postgres_url: str) -> None:
    own_redis = RedisProcess(require_redis_server())
    own_redis.start()
    try:
        await own_redis.wait_ready()
        with two_servers(postgres_url, own_redis.url) as servers:
            async with httpx.AsyncClient(base_url=servers[0].url, timeout=30) as http:
                alice = await new_user(http, "carol")
            async with four_devices(servers, alice.token) as devices:
                half = WRITES // 2
                await write_spread(servers, alice, half)
                for device in devices:
                    await device.events_until(half, within=30)
                own_redis.stop()
                # Written while Redis is down: each device gets its own server's half at once; the
                # other half must come from the database once the broker is back — with no later
                # event to reveal the gap, only the catch-up after the reconnect can bring it.
                await write_spread(servers, alice, half, first=half)
                own_redis.start()
                await own_redis.wait_ready()
                everything = list(range(1, WRITES + 1))
                for device in devices:
                    await device.wait_until(functools.partial(has_event, device, WRITES), within=60)
                    got = ids(device.messages)
                    assert got == everything, f"missing {sorted(set(everything) - set(got))}, got {len(got)}"
                # After the restart the processes talk through Redis again: a new event arrives live.
                async with httpx.AsyncClient(base_url=servers[0].url, timeout=10) as http:
                    response = await http.post("/notifications", json={"title": "after"}, headers=alice.headers)
                    assert response.status_code == 201
                for device in devices:
                    assert ids(await device.events_until(WRITES + 1, within=15))[-1] == WRITES + 1
    finally:
        own_redis.remove()
