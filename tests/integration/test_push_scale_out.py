"""Push with two server processes on one PostgreSQL and one Redis: both dispatchers work, and each
notification is delivered once (the cursors and the queue are claimed with SKIP LOCKED)."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterator

import anyio
import httpx
import pytest

from tests.conftest import new_user, require_postgres
from tests.integration.test_scale_out import require_machine_redis
from tests.support.fake_push import FakeExpo, FakeWebPushService
from tests.support.push import eventually, push_env, subscribe_browser, vapid_key
from tests.support.servers import REDIS_URL, ServerProcess, postgres_database

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.redis]

NOTIFICATIONS = 40
USERS = 3


@pytest.fixture
def postgres_url() -> Iterator[str]:
    require_postgres()
    with postgres_database() as url:
        yield url


async def test_two_processes_deliver_each_notification_once(postgres_url: str) -> None:
    await require_machine_redis()
    with FakeWebPushService().running() as web_push, FakeExpo().running() as expo:
        env = {
            "DROPSYNC_DATABASE_URL": postgres_url,
            "DROPSYNC_BROKER_URL": REDIS_URL,
            "DROPSYNC_BROKER_NAMESPACE": f"test-push-{secrets.token_hex(4)}",
            **push_env(expo),
        }
        servers = [ServerProcess(env=env).start(), ServerProcess(env=env).start()]
        try:
            clients = [httpx.AsyncClient(base_url=server.url, timeout=10) for server in servers]
            owners = [await new_user(clients[0], f"twice{number}") for number in range(USERS)]
            keys = {await vapid_key(client, owners[0]) for client in clients}
            assert len(keys) == 1  # both processes sign with the one key stored first
            names = {}
            for owner in owners:
                names[owner.id] = (await subscribe_browser(clients[1], owner, web_push))[0]

            async def write(owner_index: int) -> None:
                owner = owners[owner_index]
                for number in range(NOTIFICATIONS):
                    client = clients[number % 2]  # writes land on both processes
                    response = await client.post(
                        "/notifications", json={"title": f"u{owner.id}-n{number}"}, headers=owner.headers
                    )
                    assert response.status_code == 201, response.text

            async with anyio.create_task_group() as group:
                for index in range(USERS):
                    group.start_soon(write, index)
            total = USERS * NOTIFICATIONS
            await eventually(lambda: len(web_push.delivered()) >= total, within=30, what=f"{total} pushes")
            await anyio.sleep(1.5)  # several polls of both dispatchers: a duplicate would show now
            counts = Counter((push.subscription, push.message["title"]) for push in web_push.delivered())
            expected = {
                (names[owner.id], f"u{owner.id}-n{number}") for owner in owners for number in range(NOTIFICATIONS)
            }
            assert set(counts) == expected
            assert [key for key, count in counts.items() if count > 1] == []
            assert not web_push.rejected, web_push.rejected
            sent = [await _sent(client) for client in clients]
            assert sum(sent) == total, sent
            assert min(sent) > 0, sent  # both dispatchers took part
        finally:
            for client in clients:
                await client.aclose()
            for server in servers:
                server.stop()


async def _sent(client: httpx.AsyncClient) -> float:
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith('dropsync_push_sent_total{service="webpush"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
