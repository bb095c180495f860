"""domain.uow against a real database: one commit with more events than one SQL statement can
carry (both drivers cap a statement at 32,767 bound values) still records them all, in order."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from domain.db import Database
from domain.services.event_log import EventLog
from domain.services.users import UserService
from domain.uow import UnitOfWork
from streams.broker import Event, MemoryBroker
from tests.conftest import migrated
from tests.support.servers import sqlite_database

pytestmark = pytest.mark.anyio


async def test_seven_thousand_events_in_one_commit(database: Database) -> None:
    users = UserService(database, allow_signup=True, token_ttl_s=60)
    user = await users.create_user(f"bulk-{id(database)}", "not-a-real-hash")
    broker = MemoryBroker()
    await broker.start()
    subscription = broker.subscribe(user["id"], maxsize=10)
    async with UnitOfWork(database, broker).write(user["id"]) as change:
        for number in range(7000):
            change.record("system_notification", {"n": number})
    with anyio.fail_after(5):
        published: list[Event] = await subscription.next_batch()
    assert [event.id for event in published] == list(range(1, 7001))
    log = EventLog()
    stored: list[int] = []
    while len(stored) < 7000:
        page = await log.read_after(user["id"], stored[-1] if stored else 0, 1000)
        assert page, f"the log stops after {len(stored)} events"
        stored += [event.id for event in page]
    assert stored == list(range(1, 7001))
    assert (await log.bounds(user["id"])).latest_id == 7000
    await broker.stop()


@pytest.fixture
async def sqlite_only() -> AsyncIterator[Database]:
    with sqlite_database() as url:
        async with migrated(url) as db:
            yield db


async def test_sqlite_reads_do_not_wait_for_an_open_write(sqlite_only: Database) -> None:
    # Regression: Piccolo labels every query "generic", so reads once queued behind the write lock.
    database = sqlite_only
    users = UserService(database, allow_signup=True, token_ttl_s=60)
    user = await users.create_user(f"reader-{id(database)}", "not-a-real-hash")
    holding = anyio.Event()
    release = anyio.Event()

    async def hold_a_write() -> None:
        async with database.write():
            holding.set()
            await release.wait()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(hold_a_write)
        await holding.wait()
        with anyio.fail_after(2):
            bounds = await EventLog().bounds(user["id"])  # a read while the write is open
        release.set()
    assert bounds.latest_id == 0
