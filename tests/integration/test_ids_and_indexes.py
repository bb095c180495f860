"""Ids are never reused (SQLite AUTOINCREMENT, PostgreSQL serials), the migration that brings
AUTOINCREMENT to an existing SQLite database keeps every row, id, index and foreign key, and the
retention job's deletion goes by the events' primary key (no index on ``created_at``)."""

from __future__ import annotations

import contextlib
import importlib
import io
from typing import Any

import httpx
import pytest
from piccolo.apps.migrations.commands.forwards import run_forwards
from piccolo.engine.sqlite import SQLiteEngine

from domain.db import Database
from domain.retention import PRUNE_BATCH, PRUNE_SQL, first_id_recorded_at_or_after, prune_events
from tests.conftest import Account, insert, started

pytestmark = pytest.mark.anyio

MIGRATION = importlib.import_module("migrations.dropsync_2026_12_06t09_10_00_000000")
BEFORE_IT = "2026-12-06T05:39:01:356095"  # the migration before it
Row = dict[str, Any]
# Columns that later migrations add (their own tests check them).
ADDED_LATER: dict[str, tuple[str, ...]] = {"orders": ("rendered", "rendered_version")}


# --- through the API ---------------------------------------------------------------------------------


async def created_id(client: httpx.AsyncClient, account: Account, path: str, body: dict[str, Any]) -> int:
    response = await client.post(path, json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    new_id: int = response.json()["id"]
    return new_id


@pytest.mark.parametrize(
    ("path", "bodies"),
    [
        ("/products", [{"sku": f"ID-{n}", "name": "n", "price": 1} for n in range(3)]),
        ("/sellers", [{"name": f"Seller {n}"} for n in range(3)]),
    ],
)
async def test_a_deleted_highest_id_is_not_given_again(
    client: httpx.AsyncClient, alice: Account, path: str, bodies: list[dict[str, Any]]
) -> None:
    first = await created_id(client, alice, path, bodies[0])
    highest = await created_id(client, alice, path, bodies[1])
    assert highest > first
    assert (await client.delete(f"{path}/{highest}", headers=alice.headers)).status_code == 204
    again = await created_id(client, alice, path, bodies[2])
    assert again > highest
    assert (await client.get(f"{path}/{highest}", headers=alice.headers)).status_code == 404


async def test_every_table_clients_hold_ids_of_never_reuses_them(database: Database) -> None:
    if database.is_postgres:
        rows = await database.fetch(
            "SELECT table_name, column_default FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND column_name = 'id'"
        )
        defaults = {row["table_name"]: row["column_default"] for row in rows}
        for table in MIGRATION.AUTOINCREMENT_TABLES:
            assert str(defaults[table]).startswith("nextval("), (table, defaults[table])  # a sequence
        return
    for table in MIGRATION.AUTOINCREMENT_TABLES:
        row = await database.fetch_one("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", table)
        assert row is not None
        assert '"id" INTEGER PRIMARY KEY AUTOINCREMENT' in row["sql"], row["sql"]


# --- upgrading an existing database -------------------------------------------------------------------


async def migrate_up_to(migration_id: str) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        result = await run_forwards(app_name="dropsync", migration_id=migration_id)
    assert result.success, result.message


TABLES = (
    "users",
    "tokens",
    "settings",
    "sellers",
    "products",
    "orders",
    "order_items",
    "events",
    "store_orders",
    "push_subscriptions",
    "push_deliveries",
)


async def seed(db: Database) -> dict[str, int]:
    """One of everything, with gaps in the ids (rows deleted before the upgrade)."""
    ids: dict[str, int] = {}
    for name in ("ann", "gone", "bea"):
        ids[name] = await insert(db, "users", username=f"{name}-upgrade", password_hash="x", last_event_id=2)
    await db.fetch("DELETE FROM users WHERE id = ?", ids.pop("gone"))
    ann = ids["ann"]
    await insert(db, "tokens", user_id=ann, token_hash="t" * 64, created_at=1, expires_at=2)
    await insert(db, "settings", user_id=ann, updated_at=1)
    ids["seller"] = await insert(db, "sellers", user_id=ann, name="S", created_at=1, updated_at=1)
    ids["mug"] = await insert(db, "products", user_id=ann, seller_id=ids["seller"], sku="MUG", name="Mug")
    ids["cup"] = await insert(db, "products", user_id=ann, sku="CUP", name="Cup")
    ids["bea_product"] = await insert(db, "products", user_id=ids["bea"], sku="MUG", name="Bea's mug")
    ids["order"] = await insert(db, "orders", user_id=ann, external_id="o-1", total_cents=300)
    ids["mug_item"] = await insert(db, "order_items", order_id=ids["order"], product_id=ids["mug"], sku="MUG")
    ids["cup_item"] = await insert(db, "order_items", order_id=ids["order"], product_id=ids["cup"], sku="CUP")
    for seq in (1, 2):
        await insert(db, "events", user_id=ann, seq=seq, type="product_added", payload="{}", created_at=seq)
    ids["store_order"] = await insert(db, "store_orders", user_id=ann, external_id="s-1")
    ids["device"] = await insert(db, "push_subscriptions", user_id=ann, kind="expo", endpoint="e", dedupe_key="d")
    await insert(db, "push_deliveries", subscription_id=ids["device"], event_id=1, message="{}")
    return ids


async def snapshot(
    db: Database, leave_out: dict[str, tuple[str, ...]] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Every row of :data:`TABLES`, but the columns ``leave_out`` names by table."""
    rows = {table: await db.fetch(f"SELECT * FROM {table} ORDER BY id") for table in TABLES}  # noqa: S608
    for table, columns in (leave_out or {}).items():
        rows[table] = [{key: value for key, value in row.items() if key not in columns} for row in rows[table]]
    return rows


async def schema(db: Database) -> dict[str, Any]:
    """The indexes and foreign keys of every table."""
    if db.is_postgres:
        indexes = await db.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY indexname"
        )
        keys = await db.fetch(
            "SELECT conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint"
            " WHERE contype = 'f' ORDER BY conname"
        )
        return {"indexes": indexes, "foreign_keys": keys}
    indexes = await db.fetch("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name")
    per_table = {table: await db.fetch(f"PRAGMA foreign_key_list({table})") for table in TABLES}
    return {"indexes": indexes, "foreign_keys": per_table}


async def test_the_upgrade_keeps_rows_ids_indexes_and_foreign_keys(fresh_url: str) -> None:
    async with started(fresh_url) as db:
        await migrate_up_to(BEFORE_IT)
        ids = await seed(db)
        rows, shape = await snapshot(db), await schema(db)

        await db.migrate()  # the new migration, and every later one

        assert await snapshot(db, leave_out=ADDED_LATER) == rows
        after = await schema(db)
        assert after["foreign_keys"] == shape["foreign_keys"]
        new_indexes = [index for index in after["indexes"] if index not in shape["indexes"]]
        added = sorted(index.get("name", index.get("indexname")) for index in new_indexes)
        assert added == ["order_items_product_id"]  # events_created_at came and went (18:00:00)
        assert [index for index in shape["indexes"] if index not in after["indexes"]] == []
        if not db.is_postgres:
            assert await db.fetch("PRAGMA foreign_key_check") == []
            assert (await db.fetch("PRAGMA integrity_check")) == [{"integrity_check": "ok"}]

        # the foreign keys still act: a deleted product leaves its order item, a deleted user goes whole
        await db.fetch("DELETE FROM products WHERE id = ?", ids["mug"])
        items = await db.fetch("SELECT id, product_id FROM order_items ORDER BY id")
        assert items == [{"id": ids["mug_item"], "product_id": None}, {"id": ids["cup_item"], "product_id": ids["cup"]}]
        await db.fetch("DELETE FROM users WHERE id = ?", ids["bea"])
        assert await db.fetch("SELECT id FROM products WHERE id = ?", ids["bea_product"]) == []
        with pytest.raises(Exception, match=r"(?i)foreign key"):
            await insert(db, "order_items", order_id=ids["order"] + 1000, sku="NO-ORDER")

        # and from now on a deleted highest id is never given again
        for table, values in (
            ("products", {"user_id": ids["ann"], "name": "n"}),
            ("orders", {"user_id": ids["ann"]}),
            ("order_items", {"order_id": ids["order"], "sku": "X"}),
            ("sellers", {"user_id": ids["ann"], "name": "n"}),
            ("store_orders", {"user_id": ids["ann"]}),
        ):
            unique = {"sku": f"NEW-{table}"} if table == "products" else {}
            unique |= {"external_id": f"new-{table}"} if table in ("orders", "store_orders") else {}
            highest = await insert(db, table, **values, **unique)
            await db.fetch(f"DELETE FROM {table} WHERE id = ?", highest)  # noqa: S608
            assert await insert(db, table, **values, **unique) > highest, table


async def test_the_upgrade_runs_once_even_if_asked_twice(fresh_url: str) -> None:
    if fresh_url.startswith("postgres"):
        pytest.skip("nothing is rebuilt on PostgreSQL")
    async with started(fresh_url) as db:
        await db.migrate()
        rows = await snapshot(db)
        assert isinstance(db.engine, SQLiteEngine)
        assert MIGRATION.rebuild_with_autoincrement(db.engine.connection_kwargs["database"]) == []
        assert await snapshot(db) == rows


# --- the retention job: by the primary key, no index of its own -------------------------------------


async def test_pruning_goes_by_the_primary_key_and_deletes_only_the_old(fresh_url: str) -> None:
    # A database of its own: the log's ids must follow its times (as recorded events' do), and a
    # shared database holds other tests' events with today's times.
    async with started(fresh_url) as database:
        await database.migrate()
        await check_pruning(database)


async def check_pruning(database: Database) -> None:
    user = await insert(database, "users", username=f"old-{PRUNE_BATCH}", password_hash="x")
    recent, old = 10**13, 1000
    # 20 old events, then recent ones, among them 5 with an old time (a clock that stepped back):
    # the first 20 go, and nothing recent goes, wherever the search lands.
    await database.fetch(
        "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 20005)"
        " INSERT INTO events (user_id, seq, type, payload, created_at)"
        " SELECT CAST(? AS INTEGER), n, 'system_notification', '{}',"
        " CASE WHEN n <= 20 OR n BETWEEN 10001 AND 10005 THEN CAST(? AS BIGINT) ELSE CAST(? AS BIGINT) END FROM g",
        user,
        old,
        recent,
    )
    await database.fetch("UPDATE users SET last_event_id = 20005 WHERE id = ?", user)
    try:
        await database.engine.run_ddl("ANALYZE events")
        explain = "EXPLAIN " if database.is_postgres else "EXPLAIN QUERY PLAN "
        plan = await database.fetch(explain + PRUNE_SQL, 1, 1 + PRUNE_BATCH, old + 1, 0)
        text = "\n".join(str(value) for row in plan for value in row.values())
        assert ("events_pkey" if database.is_postgres else "INTEGER PRIMARY KEY (rowid>? AND rowid<?)") in text, text
        indexes = await database.fetch(
            "SELECT indexname AS name FROM pg_indexes WHERE tablename = 'events'"
            if database.is_postgres
            else "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'"
        )
        assert "events_created_at" not in {row["name"] for row in indexes}
        # the search stops at the first recent id after the last old one it met, not at the log's end
        first_recent = {
            row["seq"]: row["id"]
            for row in await database.fetch("SELECT seq, id FROM events WHERE user_id = ? AND seq IN (21, 10006)", user)
        }
        span = await database.fetch_one("SELECT MIN(id) AS low, MAX(id) AS high FROM events")
        assert span is not None
        found = await first_id_recorded_at_or_after(database, old + 1, span["low"], span["high"] + 1)
        assert found in first_recent.values(), (found, first_recent)
        assert await prune_events(database, days=1, min_events=0, now=old + 1 + 24 * 3600 * 1000) >= 20
        left = await database.fetch_one(
            "SELECT MIN(seq) AS oldest, SUM(CASE WHEN created_at = ? THEN 1 ELSE 0 END) AS recent"
            " FROM events WHERE user_id = ?",
            recent,
            user,
        )
        assert left == {"oldest": 21, "recent": 19980}
    finally:
        await database.fetch("DELETE FROM users WHERE id = ?", user)


async def test_the_orders_naming_a_product_are_found_through_an_index(database: Database) -> None:
    """What a product deletion looks up (update_orders_losing_products, and the foreign key's SET NULL)."""
    query = "SELECT DISTINCT order_id FROM order_items WHERE product_id IN (?, ?)"
    if database.is_postgres:
        async with database.write():  # one connection: the setting holds for the EXPLAIN
            await database.fetch("SET LOCAL enable_seqscan = off")  # a near-empty table: show the index can serve
            plan = await database.fetch("EXPLAIN " + query, 1, 2)
    else:
        plan = await database.fetch("EXPLAIN QUERY PLAN " + query, 1, 2)
    text = "\n".join(str(value) for row in plan for value in row.values())
    assert "order_items_product_id" in text, text
