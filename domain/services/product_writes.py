"""The product-mutation step: the one place that writes products and records what moved.

Every path that changes products — ``PATCH /products/{id}``, bulk price and stock updates, feed
imports (updates and inserts), order processing, store sync and a seller's deletion — hands its
products (the rows as read, inside the open write of their user) and their column diffs to
:func:`write_products`, which:

- sets ``version`` (+1), ``updated_at`` (unless ``touch=False``: a store sync) and ``stock_state``
  (against the product's own threshold, else the user's default);
- records the events in the documented order (``product_added`` for an insert; else
  ``product_updated`` with ``changed``, stock and price events, then an alert — see
  :func:`~domain.services.products.record_product_change`), product after product in the order given;
- writes with plain SQL in the open transaction: one multi-row ``INSERT … RETURNING`` per chunk of
  new products, one ``executemany`` per chunk of updates sharing the same columns.

Big writes yield: every :data:`CHUNK` products the step awaits ``asyncio.sleep(0)``, so requests,
frames and heartbeats of everyone else move meanwhile. The transaction stays one transaction (the
user's writers wait for it: SQLite's writer lock, PostgreSQL's row lock on the user), so the write
stays atomic and the event ids gapless.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from domain import events
from domain.db import Database
from domain.errors import NotFound
from domain.services.common import Row, Values
from domain.services.products import product_json, record_product_change
from domain.uow import Change
from domain.values import now_ms, stock_state

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
DEFAULT_THRESHOLD = 5  # a user without settings (as domain.services.common.user_threshold)


async def pause() -> None:
    """Let the event loop run everyone else's ready work (the open transaction stays open)."""
    await asyncio.sleep(0)


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
    selected = ", ".join(f"p.{_checked_name(name)}" for name in columns)
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


async def default_threshold(db: Database, user_id: int) -> int:
    """The user's ``low_stock_threshold`` setting (what products without their own follow)."""
    row = await db.fetch_one("SELECT low_stock_threshold FROM settings WHERE user_id = ?", user_id)
    return int(row["low_stock_threshold"]) if row is not None else DEFAULT_THRESHOLD


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
    if threshold is None and any(_follows_user(before, diff) for before, diff in writes):
        threshold = await default_threshold(db, change.user_id)
    default = threshold if threshold is not None else DEFAULT_THRESHOLD
    created = await _insert_new(db, change.user_id, [diff for before, diff in writes if before is None], default, now)
    plan = await _plan(change, writes, default, now, touch, created)
    await _run_updates(db, plan.statements)
    return plan.written


@dataclass(slots=True)
class UpdatePlan:
    """Updates of a user's products worked out from rows read before the user's write began (see
    :func:`plan_updates`): the rows as they will be, their statements and their events."""

    user_id: int
    versions: dict[int, int]  # product id -> the version the plan was worked out from
    threshold: int | None  # the user's default threshold the plan used, None if no product needed it
    statements: dict[tuple[str, ...], list[tuple[Any, ...]]]
    written: list[Row]
    events: list[tuple[str, bytes]]


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
    threshold = None
    if any(_follows_user(before, diff) for before, diff in writes):
        threshold = await default_threshold(db, user_id)
    default = threshold if threshold is not None else DEFAULT_THRESHOLD
    recorded = Change(user_id)
    plan = await _plan(recorded, writes, default, now_ms() if now is None else now, True, {})
    plan.threshold = threshold
    plan.events = recorded.pending
    return plan


async def apply_plan(db: Database, change: Change, plan: UpdatePlan) -> list[Row] | None:
    """Inside ``uow.write(plan.user_id)``: if every product of ``plan`` is still at the version it
    was worked out from (and the user's default threshold unchanged), run its statements and record
    its events in ``change``; the rows as written. None if anything moved meanwhile: nothing was
    done, and the caller works the write out again inside its write."""
    if change.user_id != plan.user_id:
        raise ValueError(f"a write of user {change.user_id} cannot apply a plan of user {plan.user_id}")
    if plan.threshold is not None and await default_threshold(db, plan.user_id) != plan.threshold:
        return None
    current = await products_where(db, plan.user_id, "id", plan.versions, columns=("id", "version"))
    if len(current) != len(plan.versions) or any(plan.versions[row["id"]] != row["version"] for row in current):
        return None
    await _run_updates(db, plan.statements)
    change.pending += plan.events
    return plan.written


async def _plan(
    change: Change,
    writes: Sequence[tuple[Row | None, Values]],
    default: int,
    now: int,
    touch: bool,
    created: dict[str, Row],
) -> UpdatePlan:
    """The rows as written, the UPDATE statements (grouped by the columns they set) and the events
    (recorded in ``change``) of ``writes``; new products are already in ``created``, by SKU."""
    statements: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
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
    return UpdatePlan(change.user_id, versions, None, statements, written, [])


async def _run_updates(db: Database, statements: dict[tuple[str, ...], list[tuple[Any, ...]]]) -> None:
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
    if column not in _COLUMN_SET or column == "id":
        raise ValueError(f"products have no writable column {column!r}")
    return column


def _checked_name(column: str) -> str:
    if column not in _COLUMN_SET:
        raise ValueError(f"products have no column {column!r}")
    return column


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
            values += (row[_checked(column)] for column in _INSERTED)
        marks = "(" + ", ".join("?" * len(_INSERTED)) + ")"
        sql = (
            f"INSERT INTO products ({', '.join(_INSERTED)}) VALUES {', '.join([marks] * len(chunk))}"  # noqa: S608
            f" RETURNING {', '.join(PRODUCT_COLUMNS)}"
        )
        for row in await db.fetch(sql, *values):
            created[row["sku"]] = row
    return created
