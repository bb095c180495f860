"""The two renderings of a product (from a dict row, and from a tuple of ``RENDERED_COLUMNS`` as
the list page reads it) give the same answer: a column out of order would move a value to another
field (every value here is distinct, so any swap shows)."""

from __future__ import annotations

from domain.services.product_writes import RENDERED_COLUMNS, product_json, product_json_of_tuple

ROW = {
    "id": 7,
    "user_id": 3,
    "seller_id": 11,
    "sku": "SKU-1",
    "name": "Mug",
    "description": "enamel",
    "cost_price_cents": 420,
    "price_cents": 1299,
    "currency": "EUR",
    "stock": 40,
    "low_stock_threshold": 6,
    "stock_state": "ok",
    "status": "active",
    "shopify_id": "gid-9",
    "synced_at": 1_700_000_000_001,
    "version": 5,
    "created_at": 1_700_000_000_002,
    "updated_at": 1_700_000_000_003,
}


def test_a_tuple_of_the_rendered_columns_renders_as_the_dict_row_does() -> None:
    as_tuple = tuple(ROW[column.strip()] for column in RENDERED_COLUMNS.split(","))
    assert product_json_of_tuple(as_tuple) == product_json(ROW)
    assert product_json(ROW) == {
        "id": 7,
        "seller_id": 11,
        "sku": "SKU-1",
        "name": "Mug",
        "description": "enamel",
        "cost_price": "4.20",
        "price": "12.99",
        "currency": "EUR",
        "stock": 40,
        "low_stock_threshold": 6,
        "status": "active",
        "shopify_id": "gid-9",
        "synced_at": "2023-11-14T22:13:20.001Z",
        "version": 5,
        "created_at": "2023-11-14T22:13:20.002Z",
        "updated_at": "2023-11-14T22:13:20.003Z",
    }
