"""The product-mutation step: the one place that writes products and records what moved.

Every path that changes products — ``PATCH /products/{id}``, bulk price and stock updates, feed
imports (updates and inserts), order processing, store sync and a seller's deletion — hands its
products (the rows as read, inside the open write of their user) and their column diffs to
:func:`write_products` (or, for a big update worked out before its write begins,
:func:`plan_updates` then :func:`apply_plan`), which:

- sets ``version`` (+1), ``updated_at`` (unless ``touch=False``: a store sync) and ``stock_state``
  (against the product's own threshold, else the user's default);
- records the events in the documented order (``product_added`` for an insert; else
  ``product_updated`` with ``changed``, stock and price events, then an alert — see
  :func:`record_product_change`; :func:`product_json` renders a product), product after product in
  the order given;
- writes with plain SQL in the open transaction: one multi-row ``INSERT … RETURNING`` per chunk of
  new products, one ``executemany`` per chunk of updates sharing the same columns.

Big writes yield: every :data:`CHUNK` products the step awaits ``asyncio.sleep(0)``, so requests,
frames and heartbeats of everyone else move meanwhile. The transaction stays one transaction (the
user's writers wait for it: SQLite's writer lock, PostgreSQL's row lock on the user), so the write
stays atomic and the event ids gapless.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from domain import events
from domain.db import Database
from domain.errors import NotFound
from domain.services.common import DEFAULT_THRESHOLD, Row, Values, user_threshold
from domain.uow import Change
from domain.values import iso, money, now_ms, stock_alert, stock_state

CHUNK = 500
"""Products per statement and per step between two yields to the event loop (bound values stay
far under both drivers' limit of 32,767 a statement)."""

PRODUCT_COLUMNS = (
    "id",
    "user_id",
    "seller_id",
    "sku",
    "name",
    "description",
    "cost_price_cents",
    "price_cents",
    "currency",
    "stock",
    "low_stock_threshold",
    "stock_state",
    "status",
    "shopify_id",
    "synced_at",
    "version",
    "created_at",
    "updated_at",
)
_COLUMN_SET = frozenset(PRODUCT_COLUMNS)
PRODUCT_SELECT = f"SELECT {', '.join(PRODUCT_COLUMNS)} FROM products"  # noqa: S608 - our own column names
_PRODUCT_AND_THRESHOLD = (
    f"SELECT {', '.join(f'p.{column}' for column in PRODUCT_COLUMNS)}, s.low_stock_threshold AS user_threshold"  # noqa: S608
    " FROM products AS p LEFT JOIN settings AS s ON s.user_id = p.user_id WHERE p.id = ? AND p.user_id = ?"
)
_INSERTED = PRODUCT_COLUMNS[1:]  # all but the id
# A new product's columns when not given (as domain.tables.Product declares them).
_DEFAULTS: dict[str, Any] = {
    "seller_id": None,
    "description": "",
    "cost_price_cents": None,
    "price_cents": 0,
    "currency": "USD",
    "stock": 0,
    "low_stock_threshold": None,
    "status": "active",
    "shopify_id": None,
    "synced_at": None,
    "version": 1,
}


async def pause() -> None:
    """Let the event loop run everyone else's ready work (the open transaction stays open)."""
    await asyncio.sleep(0)


# --------------------------------------------------------------------------------------- rendering


RENDERED_COLUMNS = (
    "id, seller_id, sku, name, description, cost_price_cents, price_cents, currency, stock,"
    " low_stock_threshold, status, shopify_id, synced_at, version, created_at, updated_at"
)
"""The columns :func:`product_json_of_tuple` reads, in its order."""


def product_json(row: Row) -> Row:
    """A product as the API renders it, from its row as a dict."""
    return _rendered(
        row["id"], row["seller_id"], row["sku"], row["name"], row["description"], row["cost_price_cents"],
        row["price_cents"], row["currency"], row["stock"], row["low_stock_threshold"], row["status"],
        row["shopify_id"], row["synced_at"], row["version"], row["created_at"], row["updated_at"],
    )  # fmt: skip


def product_json_of_tuple(row: Sequence[Any]) -> Row:
    """:func:`product_json` of a row of :data:`RENDERED_COLUMNS` as a tuple (or an asyncpg record):
    a list page renders many, and a dict per row would cost as much as the query."""
    return _rendered(*row)


def _rendered(
    product_id: int, seller_id: int | None, sku: str, name: str, description: str, cost_price_cents: int | None,
    price_cents: int, currency: str, stock: int, low_stock_threshold: int | None, status: str,
    shopify_id: str | None, synced_at: int | None, version: int, created_at: int, updated_at: int,
) -> Row:  # fmt: skip
    return {
        "id": product_id,
        "seller_id": seller_id,
        "sku": sku,
        "name": name,
        "description": description,
        "cost_price": money(cost_price_cents),
        "price": money(price_cents),
        "currency": currency,
        "stock": stock,
        "low_stock_threshold": low_stock_threshold,
        "status": status,
        "shopify_id": shopify_id,
        "synced_at": iso(synced_at),
        "version": version,
        "created_at": iso(created_at),
        "updated_at": iso(updated_at),
    }


# API field -> column, where they differ (money is stored as integer cents)
MONEY_COLUMNS = {"price": "price_cents", "cost_price": "cost_price_cents"}
_API_NAME = {column: field for field, column in MONEY_COLUMNS.items()}


def record_product_change(change: Change, before: Row, after: Row, threshold: int) -> None:
    """Record what moved between two versions of a product, in the documented order:
    ``product_updated`` (with ``changed``), then stock and price events, then an alert."""
    changed = [_API_NAME.get(key, key) for key in _TRACKED if before[key] != after[key]]
    if not changed:
        return
    change.record(events.PRODUCT_UPDATED, {**product_json(after), "changed": changed})
    if before["stock"] != after["stock"]:
        change.record(
            events.PRODUCT_STOCK_CHANGED,
            {"product_id": after["id"], "sku": after["sku"], "old": before["stock"], "new": after["stock"]},
        )
    if before["price_cents"] != after["price_cents"]:
        change.record(
            events.PRODUCT_PRICE_CHANGED,
            {
                "product_id": after["id"],
                "sku": after["sku"],
                "old": money(before["price_cents"]),
                "new": money(after["price_cents"]),
            },
        )
    record_stock_alert(change, before["stock_state"], after, threshold)


def record_stock_alert(change: Change, old_state: str, product: Row, threshold: int) -> None:
    alert = stock_alert(old_state, product["stock_state"])
    if alert:
        change.record(
            alert,
            {
                "product_id": product["id"],
                "sku": product["sku"],
                "stock": product["stock"],
                "threshold": threshold,
            },
        )


# The columns product_updated names in ``changed`` (in table order): the product's own data, not
# the bookkeeping the write step or a store sync keeps.
_BOOKKEEPING = frozenset(
    {"id", "user_id", "stock_state", "shopify_id", "synced_at", "version", "created_at", "updated_at"}
)
_TRACKED = tuple(column for column in PRODUCT_COLUMNS if column not in _BOOKKEEPING)


# --------------------------------------------------------------------------------------- reading


async def product_row(db: Database, user_id: int, product_id: int) -> tuple[Row, int]:
    """The product ``product_id`` of ``user_id`` and the user's default threshold, in one query;
    :class:`NotFound` when there is no such product."""
    row = await db.fetch_one(_PRODUCT_AND_THRESHOLD, product_id, user_id)
    if row is None:
        raise NotFound("product", product_id)
    threshold = row.pop("user_threshold")
    return row, int(threshold) if threshold is not None else DEFAULT_THRESHOLD


async def products_where(
    db: Database, user_id: int, column: str, values: Iterable[Any], columns: Sequence[str] = PRODUCT_COLUMNS
) -> list[Row]:
    """The user's products whose ``column`` (``id`` or ``sku``) is one of ``values``, a chunk of
    :data:`CHUNK` per query, yielding between chunks; each row holds ``columns``."""
    if column not in {"id", "sku"}:
        raise ValueError(f"products are looked up by id or sku, not {column!r}")
    selected = ", ".join(f"p.{_checked(name)}" for name in columns)
    wanted = list(dict.fromkeys(values))
    rows: list[Row] = []
    for start in range(0, len(wanted), CHUNK):
        if start:
            await pause()
        chunk = wanted[start : start + CHUNK]
        if db.is_postgres:
            # A join, not ``IN ($2, $3 …)``: PostgreSQL tests a list of parameters against each row
            # one by one, and may read all the user's products for it (500 SKUs x 20,000 rows:
            # 0.6 s a query); joined, each value is one look-up in the (user_id, column) index.
            array = "bigint[]" if column == "id" else "text[]"
            rows += await db.fetch(
                f"SELECT {selected} FROM products AS p JOIN unnest(?::{array}) AS wanted (value)"  # noqa: S608
                f" ON p.{column} = wanted.value WHERE p.user_id = ?",
                chunk,
                user_id,
            )
        else:
            marks = ", ".join("?" * len(chunk))
            rows += await db.fetch(
                f"SELECT {selected} FROM products AS p WHERE p.user_id = ? AND p.{column} IN ({marks})",  # noqa: S608
                user_id,
                *chunk,
            )
    return rows


# --------------------------------------------------------------------------------------- writing


async def write_products(
    db: Database,
    change: Change,
    writes: Sequence[tuple[Row | None, Values]],
    *,
    threshold: int | None = None,
    now: int | None = None,
    touch: bool = True,
) -> list[Row]:
    """Write each ``(before, diff)`` of ``change``'s user and record its events; the rows as written.

    ``before`` is the product as read in this write and ``diff`` its new column values; a
    ``before`` of None inserts a new product (``diff`` holds its columns: ``sku``, ``name`` …).
    ``threshold`` is the user's default low-stock threshold if the caller has it (else it is
    read when a product needs it); ``now`` the time to stamp (one for the whole write);
    ``touch=False`` leaves ``updated_at`` alone. Call inside ``uow.write(change.user_id)``.
    """
    if not writes:
        return []
    _check_columns(writes)
    now = now_ms() if now is None else now
    _, default = await _thresholds(change.user_id, writes, threshold)
    created = await _insert_new(db, change.user_id, [diff for before, diff in writes if before is None], default, now)
    statements, written, _ = await _plan(change, writes, default, now, touch, created)
    await _run_updates(db, statements)
    return written


Statements = dict[tuple[str, ...], list[tuple[Any, ...]]]
"""UPDATE statements by the columns they set: one parameter row (the values, then the id) per product."""


@dataclass(frozen=True, slots=True)
class UpdatePlan:
    """Updates of a user's products worked out from rows read before the user's write began (see
    :func:`plan_updates`): the rows as they will be, their statements and their events."""

    user_id: int
    versions: dict[int, int]  # product id -> the version the plan was worked out from
    threshold: int | None  # the user's default threshold the plan used, None if no product needed it
    statements: Statements
    written: list[Row]
    events: list[tuple[str, bytes]]  # as recorded (encoded), in order


async def plan_updates(
    db: Database, user_id: int, writes: Sequence[tuple[Row, Values]], *, now: int | None = None
) -> UpdatePlan:
    """Work out ``writes`` of existing products (each ``(before, diff)``, ``before`` as read from
    the last commit) as :func:`write_products` would write them, without writing anything.

    For a big write: the work happens before the user's write begins, so the write holds its lock
    (on SQLite, every writer's) only to check and store; :func:`apply_plan` applies it.
    """
    if any(before is None for before, _ in writes):
        raise ValueError("a plan updates existing products only")
    _check_columns(writes)
    threshold, default = await _thresholds(user_id, writes, None)
    recorded = Change(user_id)
    statements, written, versions = await _plan(recorded, writes, default, now_ms() if now is None else now, True, {})
    return UpdatePlan(user_id, versions, threshold, statements, written, recorded.pending)


async def apply_plan(db: Database, change: Change, plan: UpdatePlan) -> list[Row] | None:
    """Inside ``uow.write(plan.user_id)``: if every product of ``plan`` is still at the version it
    was worked out from (and the user's default threshold unchanged), run its statements and record
    its events in ``change``; the rows as written. None if anything moved meanwhile: nothing was
    done, and the caller works the write out again inside its write."""
    if change.user_id != plan.user_id:
        raise ValueError(f"a write of user {change.user_id} cannot apply a plan of user {plan.user_id}")
    if plan.threshold is not None and await user_threshold(plan.user_id) != plan.threshold:
        return None
    current = await products_where(db, plan.user_id, "id", plan.versions, columns=("id", "version"))
    if len(current) != len(plan.versions) or any(plan.versions[row["id"]] != row["version"] for row in current):
        return None
    await _run_updates(db, plan.statements)
    change.pending += plan.events
    return plan.written


async def write_planned(
    db: Database, change: Change, plan: UpdatePlan, *, plan_again: Callable[[], Awaitable[UpdatePlan]]
) -> list[Row]:
    """Inside ``uow.write(plan.user_id)``: :func:`apply_plan`, or if anything moved since the plan
    was worked out, work it out again with ``plan_again`` (inside the write now: nothing can move)
    and apply that; the rows as written."""
    rows = await apply_plan(db, change, plan)
    if rows is None:
        rows = await apply_plan(db, change, await plan_again())
        if rows is None:
            raise RuntimeError("products moved inside their own write")
    return rows


async def _plan(
    change: Change,
    writes: Sequence[tuple[Row | None, Values]],
    default: int,
    now: int,
    touch: bool,
    created: dict[str, Row],
) -> tuple[Statements, list[Row], dict[int, int]]:
    """The UPDATE statements (grouped by the columns they set), the rows as written and the
    versions they were read at, of ``writes``; their events are recorded in ``change``. New
    products are already in ``created``, by SKU."""
    statements: Statements = {}
    written: list[Row] = []
    versions: dict[int, int] = {}
    for index, (before, diff) in enumerate(writes):
        if index and index % CHUNK == 0:
            await pause()
        if before is None:
            row = created[diff["sku"]]
            change.record(events.PRODUCT_ADDED, product_json(row))
            written.append(row)
            continue
        after = {**before, **diff, "version": before["version"] + 1}
        if touch:
            after["updated_at"] = now
        own = after["low_stock_threshold"]
        product_threshold = own if own is not None else default
        after["stock_state"] = stock_state(after["stock"], product_threshold)
        columns = (*(column for column in diff if column not in _STAMPED), *_stamped(touch))
        statements.setdefault(columns, []).append((*(after[column] for column in columns), before["id"]))
        versions[before["id"]] = before["version"]
        record_product_change(change, before, after, product_threshold)
        written.append(after)
    return statements, written, versions


async def _run_updates(db: Database, statements: Statements) -> None:
    for columns, rows in statements.items():
        sql = f"UPDATE products SET {', '.join(f'{_checked(column)} = ?' for column in columns)} WHERE id = ?"  # noqa: S608
        for start in range(0, len(rows), CHUNK):
            if start:
                await pause()
            await db.execute_many(sql, rows[start : start + CHUNK])


def _check_columns(writes: Sequence[tuple[Row | None, Values]]) -> None:
    for _, diff in writes:
        unknown = [column for column in diff if column not in _COLUMN_SET or column == "id"]
        if unknown:
            raise ValueError(f"products have no writable column {unknown[0]!r}")


_STAMPED = frozenset({"stock_state", "version", "updated_at"})


def _stamped(touch: bool) -> tuple[str, ...]:
    return ("stock_state", "version", "updated_at") if touch else ("stock_state", "version")


def _checked(column: str) -> str:
    """``column`` if products have it (a name that goes into SQL text)."""
    if column not in _COLUMN_SET:
        raise ValueError(f"products have no column {column!r}")
    return column


async def _thresholds(
    user_id: int, writes: Sequence[tuple[Row | None, Values]], known: int | None
) -> tuple[int | None, int]:
    """The user's default threshold — ``known``, else read only if a product of ``writes`` follows
    it (None if none does) — and the one to use (:data:`DEFAULT_THRESHOLD` when there is none)."""
    threshold = known
    if threshold is None and any(_follows_user(before, diff) for before, diff in writes):
        threshold = await user_threshold(user_id)
    return threshold, threshold if threshold is not None else DEFAULT_THRESHOLD


def _follows_user(before: Row | None, diff: Values) -> bool:
    """True when the product's stock state goes by the user's threshold (it has none of its own)."""
    if "low_stock_threshold" in diff:
        return diff["low_stock_threshold"] is None
    return before is None or before["low_stock_threshold"] is None


async def _insert_new(db: Database, user_id: int, new: list[Values], threshold: int, now: int) -> dict[str, Row]:
    """Insert the new products, a multi-row statement per chunk; the rows as stored, by SKU."""
    created: dict[str, Row] = {}
    for start in range(0, len(new), CHUNK):
        if start:
            await pause()
        values: list[Any] = []
        chunk = new[start : start + CHUNK]
        for diff in chunk:
            row = {**_DEFAULTS, **diff, "user_id": user_id, "created_at": now, "updated_at": now}
            own = row["low_stock_threshold"]
            row["stock_state"] = stock_state(row["stock"], own if own is not None else threshold)
            values += (row[column] for column in _INSERTED)
        marks = "(" + ", ".join("?" * len(_INSERTED)) + ")"
        sql = (
            f"INSERT INTO products ({', '.join(_INSERTED)}) VALUES {', '.join([marks] * len(chunk))}"  # noqa: S608
            f" RETURNING {', '.join(PRODUCT_COLUMNS)}"
        )
        for row in await db.fetch(sql, *values):
            created[row["sku"]] = row
    return created
