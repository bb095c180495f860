"""Helpers every resource service shares: pages, owned-row look-ups, change detection."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

from piccolo.table import Table

from domain.db import fetch, fetch_rows
from domain.errors import InvalidField, NotFound, PreconditionFailed
from domain.tables import UserSettings

Row = dict[str, Any]
Values = dict[Any, Any]  # column name -> new value, the shape Piccolo's update() takes


async def page(
    table: type[Table],
    where: str,
    args: Sequence[Any],
    limit: int,
    offset: int,
    render: Callable[[Row], Row] | None,
    columns: str = "*",
) -> Row:
    """``{"items", "total", "limit", "offset"}`` for one page of ``table``'s rows matching ``where``
    (plain SQL with ``?`` placeholders for ``args``), in id order; ``columns``: those ``render`` reads.
    Without ``render`` the items are the rows as tuples of ``columns`` (for the caller to render)."""
    name = table._meta.tablename
    db = table._meta.db
    listing = f"SELECT {columns} FROM {name} WHERE {where} ORDER BY id LIMIT ? OFFSET ?"  # noqa: S608 - ours; values bound
    rows: Sequence[Any] = await (fetch if render else fetch_rows)(db, listing, *args, limit, offset)
    if len(rows) < limit and (rows or not offset):
        total = offset + len(rows)  # the last page: the total is known without counting
    else:
        counted = await fetch_rows(db, f"SELECT count(*) FROM {name} WHERE {where}", *args)  # noqa: S608
        total = counted[0][0]
    items = [render(row) for row in rows] if render else list(rows)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


async def owned_row(table: type[Table], kind: str, user_id: int, object_id: int) -> Row:
    """The row ``object_id`` of ``table`` if it belongs to ``user_id``; else :class:`NotFound`."""
    rows = await fetch(table._meta.db, _OWNED_ROW[table._meta.tablename], object_id, user_id)
    if not rows:
        raise NotFound(kind, object_id)
    return rows[0]


class _OwnedRowStatements(dict[str, str]):
    def __missing__(self, tablename: str) -> str:
        self[tablename] = statement = f"SELECT * FROM {tablename} WHERE id = ? AND user_id = ?"  # noqa: S608 - our own table names
        return statement


_OWNED_ROW = _OwnedRowStatements()


def changed_fields(row: Row, values: Row) -> Values:
    """The subset of ``values`` that differ from ``row``."""
    return {key: value for key, value in values.items() if row.get(key) != value}


DEFAULT_THRESHOLD = 5
"""The low-stock threshold of a user without settings (what their products without one follow)."""


async def user_threshold(user_id: int) -> int:
    """The user's ``low_stock_threshold`` setting (in the open transaction, if there is one)."""
    rows = await fetch(UserSettings._meta.db, "SELECT low_stock_threshold FROM settings WHERE user_id = ?", user_id)
    return int(rows[0]["low_stock_threshold"]) if rows else DEFAULT_THRESHOLD


def check_version(kind: str, row: Row, expected: Collection[int] | None) -> None:
    """Raise :class:`PreconditionFailed` unless the row's version is one of ``expected`` (None: any)."""
    if expected is not None and row["version"] not in expected:
        raise PreconditionFailed(kind, row["id"], row["version"])


def duplicates(values: list[Any], field: str) -> list[InvalidField]:
    """An error for each value already seen earlier in ``values`` (``field.<index>``)."""
    first: dict[Any, int] = {}
    errors = []
    for index, value in enumerate(values):
        if value in first:
            errors.append(InvalidField(f"{field}.{index}", f"repeats {field}.{first[value]}"))
        else:
            first[value] = index
    return errors
