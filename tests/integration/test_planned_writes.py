"""Bulk updates worked out before their write begins (domain.services.product_writes.plan_updates):
a plan is applied only if nothing it read has moved since, and the outcome is always that of a
write of the products as they are at its commit — on SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import msgspec
import pytest

from domain.db import Database
from domain.services import Services
from domain.services.event_log import EventLog
from domain.services.product_writes import (
    CHUNK,
    PRODUCT_SELECT,
    apply_plan,
    plan_updates,
    products_where,
    write_products,
)
from domain.uow import Change
from streams.broker import MemoryBroker

pytestmark = pytest.mark.anyio


@pytest.fixture
async def services(database: Database) -> AsyncIterator[Services]:
    broker = MemoryBroker()
    await broker.start()
    yield Services.build(database, broker, allow_signup=True, token_ttl_s=60)
    await broker.stop()


async def new_user_with_products(services: Services, count: int, **fields: Any) -> tuple[int, list[int]]:
    user = await services.users.create_user(f"plan-{secrets.token_hex(4)}", "not-a-real-hash")
    ids = []
    for index in range(count):
        body = {"sku": f"P-{index:04d}", "name": f"p {index}", "price": "5.00", "stock": 50, **fields}
        ids.append((await services.products.create(user["id"], body))["id"])
    return user["id"], ids


async def rows(db: Database, user_id: int, ids: list[int]) -> list[dict[str, Any]]:
    found = {row["id"]: row for row in await products_where(db, user_id, "id", ids)}
    return [found[product_id] for product_id in ids]


async def recorded_events(user_id: int) -> list[dict[str, Any]]:
    envelopes: list[dict[str, Any]] = []
    while page := await EventLog().read_after(user_id, envelopes[-1]["id"] if envelopes else 0, 1000):
        envelopes += [msgspec.json.decode(event.payload) for event in page]
    return envelopes


async def test_a_plan_is_refused_when_one_of_its_products_moved(database: Database, services: Services) -> None:
    user_id, ids = await new_user_with_products(services, 3)
    plan = await plan_updates(database, user_id, [(row, {"stock": 7}) for row in await rows(database, user_id, ids)])
    await services.products.update(user_id, ids[1], {"name": "renamed meanwhile"})
    before = await recorded_events(user_id)
    async with services.products.uow.write(user_id) as change:
        assert await apply_plan(database, change, plan) is None
        assert change.pending == []
    assert [row["stock"] for row in await rows(database, user_id, ids)] == [50, 50, 50]
    assert await recorded_events(user_id) == before


async def test_a_plan_is_refused_when_one_of_its_products_was_deleted(database: Database, services: Services) -> None:
    user_id, ids = await new_user_with_products(services, 2)
    plan = await plan_updates(database, user_id, [(row, {"stock": 7}) for row in await rows(database, user_id, ids)])
    await services.products.delete(user_id, ids[0])
    async with services.products.uow.write(user_id) as change:
        assert await apply_plan(database, change, plan) is None


async def test_a_plan_is_refused_when_the_default_threshold_moved(database: Database, services: Services) -> None:
    user_id, ids = await new_user_with_products(services, 2)  # no threshold of their own: they follow the user's
    plan = await plan_updates(database, user_id, [(row, {"stock": 4}) for row in await rows(database, user_id, ids)])
    await services.settings.update(user_id, {"low_stock_threshold": 3})
    async with services.products.uow.write(user_id) as change:
        assert await apply_plan(database, change, plan) is None


async def test_a_plan_of_another_user_is_refused(database: Database, services: Services) -> None:
    user_id, ids = await new_user_with_products(services, 1)
    other, _ = await new_user_with_products(services, 0)
    plan = await plan_updates(database, user_id, [(row, {"stock": 4}) for row in await rows(database, user_id, ids)])
    with pytest.raises(ValueError, match="cannot apply a plan of user"):
        async with services.products.uow.write(other) as change:
            await apply_plan(database, change, plan)


async def test_an_applied_plan_writes_and_records_what_a_write_inside_would(
    database: Database, services: Services
) -> None:
    planned_user, planned_ids = await new_user_with_products(services, 4, low_stock_threshold=10)
    direct_user, direct_ids = await new_user_with_products(services, 4, low_stock_threshold=10)
    new_stock = [0, 5, 10, 60]  # out, low, low, ok: alerts included
    planned_rows = await rows(database, planned_user, planned_ids)
    plan = await plan_updates(
        database, planned_user, [(row, {"stock": stock}) for row, stock in zip(planned_rows, new_stock, strict=True)]
    )
    async with services.products.uow.write(planned_user) as change:
        applied = await apply_plan(database, change, plan)
    assert applied is not None
    direct_rows = await rows(database, direct_user, direct_ids)
    async with services.products.uow.write(direct_user) as change:
        await write_products(
            database, change, [(row, {"stock": stock}) for row, stock in zip(direct_rows, new_stock, strict=True)]
        )

    def comparable(events: list[dict[str, Any]]) -> list[tuple[str, Any]]:
        # What may differ between the two users: ids, the user, the times.
        skip = {"id", "product_id", "created_at", "updated_at"}
        return [
            (event["type"], {key: value for key, value in event["data"].items() if key not in skip})
            for event in events
            if event["type"] != "product_added"
        ]

    planned_events = await recorded_events(planned_user)
    direct_events = await recorded_events(direct_user)
    assert comparable(planned_events) == comparable(direct_events)
    assert [event["type"] for event in planned_events[4:]] == [
        "product_updated", "product_stock_changed", "stock_out",
        "product_updated", "product_stock_changed", "stock_low",
        "product_updated", "product_stock_changed", "stock_low",
        "product_updated", "product_stock_changed",
    ]  # fmt: skip
    stored = await database.fetch(f"{PRODUCT_SELECT} WHERE user_id = ? ORDER BY id", planned_user)
    assert [(row["stock"], row["stock_state"], row["version"]) for row in stored] == [
        (0, "out", 2), (5, "low", 2), (10, "low", 2), (60, "ok", 2)
    ]  # fmt: skip
    assert [row["stock"] for row in applied] == new_stock


async def test_bulk_updates_racing_single_writes_lose_nothing(services: Services) -> None:
    """Bulk stock and price updates (worked out before their write) race PATCHes of the same
    products: every product's versions in its product_updated events go 2, 3, 4 … with no repeat
    and no gap, and each product ends as its last event says. (More products than a chunk: their
    reads and planning yield to the event loop, so the PATCHes land in between on SQLite too.)"""
    user_id, ids = await new_user_with_products(services, CHUNK + 20)

    async def bulk_stock(round_number: int) -> None:
        items = [{"product_id": product_id, "stock": 100 + round_number} for product_id in ids]
        await services.bulk.update_stock(user_id, items)

    async def bulk_price(round_number: int) -> None:
        await services.bulk.update_prices(user_id, ids, "delta", "0.01")

    async def patches(offset: int) -> None:
        for step in range(30):
            product_id = ids[(offset + step * 7) % len(ids)]
            await services.products.update(user_id, product_id, {"stock": 1000 + offset * 100 + step})
            await anyio.lowlevel.checkpoint()

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tasks:
            for round_number in range(6):
                tasks.start_soon(bulk_stock, round_number)
                tasks.start_soon(bulk_price, round_number)
            for offset in range(4):
                tasks.start_soon(patches, offset)

    updates: dict[int, list[dict[str, Any]]] = {product_id: [] for product_id in ids}
    for event in await recorded_events(user_id):
        if event["type"] == "product_updated":
            updates[event["data"]["id"]].append(event["data"])
    listed = await services.products.find(user_id, limit=len(ids), offset=0)
    final = {row["id"]: row for row in listed["items"]}
    for product_id, history in updates.items():
        assert [data["version"] for data in history] == list(range(2, len(history) + 2)), product_id
        assert {key: history[-1][key] for key in ("stock", "price", "version")} == {
            key: final[product_id][key] for key in ("stock", "price", "version")
        }
    assert all(final[product_id]["price"] == "5.06" for product_id in ids)  # six +0.01 each, none lost


async def test_a_change_holds_the_plan_events_after_its_own(database: Database, services: Services) -> None:
    """apply_plan appends its events to those the change already recorded (the bulk's
    stock_sync_started comes first)."""
    user_id, ids = await new_user_with_products(services, 1)
    plan = await plan_updates(database, user_id, [(row, {"stock": 9}) for row in await rows(database, user_id, ids)])
    change = Change(user_id)
    change.record("system_notification", {"title": "first"})
    async with database.write():
        assert await apply_plan(database, change, plan) is not None
    assert [event_type for event_type, _ in change.pending] == [
        "system_notification", "product_updated", "product_stock_changed"
    ]  # fmt: skip
