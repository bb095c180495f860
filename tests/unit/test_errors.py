"""app/errors.py ``struct_errors``: every bad, missing or unknown field of a body, each under its key."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from app.errors import struct_errors
from app.schemas import (
    Credentials,
    NotificationIn,
    OrderCreate,
    OrderPatch,
    ProductCreate,
    ProductPatch,
    Registration,
    SellerCreate,
    SellerPatch,
    SettingsIn,
)


def keys(struct: type[msgspec.Struct], raw: dict[str, Any]) -> list[str]:
    errors = struct_errors(struct, raw)
    assert all(error["source"] == "body" and error["message"] for error in errors), errors
    return [error["key"] for error in errors]


def message_for(struct: type[msgspec.Struct], raw: dict[str, Any], key: str) -> str:
    return next(error["message"] for error in struct_errors(struct, raw) if error["key"] == key)


GOOD_BODIES: list[tuple[type[msgspec.Struct], dict[str, Any]]] = [
    (Registration, {"username": "alice_1", "password": "long enough"}),
    (Credentials, {"username": "a", "password": "b"}),
    (SellerCreate, {"name": "Acme", "email": "a@b.co", "feed_url": "https://x.example/f", "feed_format": "csv"}),
    (SellerPatch, {"email": None}),
    (ProductCreate, {"sku": "A-1", "name": "Mug", "price": "12.50", "cost_price": 4, "stock": "7"}),
    (ProductPatch, {"price": 99.99, "seller_id": None, "low_stock_threshold": None}),
    (OrderCreate, {"items": [{"quantity": 1, "sku": "A-1", "unit_price": "1.00"}], "total": 1}),
    (OrderPatch, {"status": "processing", "customer": {"name": "Ann"}}),
    (SettingsIn, {"low_stock_threshold": 0, "store": {"shopify_domain": "shop.myshopify.com"}}),
    (NotificationIn, {"title": "Hello", "level": "warning"}),
]


@pytest.mark.parametrize(("struct", "raw"), GOOD_BODIES)
def test_a_good_body_has_no_errors(struct: type[msgspec.Struct], raw: dict[str, Any]) -> None:
    assert struct_errors(struct, raw) == []
    msgspec.convert(raw, struct, strict=False)  # and Litestar would accept it too


def test_missing_required_fields_are_each_named() -> None:
    assert keys(ProductCreate, {}) == ["sku", "name", "price"]
    assert message_for(ProductCreate, {}, "sku") == "Object missing required field"
    assert keys(Registration, {"username": "alice"}) == ["password"]
    assert keys(OrderCreate, {}) == ["items"]


def test_unknown_fields_are_each_named() -> None:
    raw = {"name": "Acme", "colour": "red", "Name": "x"}
    assert keys(SellerCreate, raw) == ["colour", "Name"]
    assert message_for(SellerCreate, raw, "colour") == "Object contains unknown field"


def test_every_bad_field_is_named_not_only_the_first() -> None:
    raw = {"sku": " padded ", "name": "", "price": "1.00", "currency": "usd", "stock": -1, "status": "gone"}
    assert keys(ProductCreate, raw) == ["sku", "name", "currency", "stock", "status"]
    assert "regex" in message_for(ProductCreate, raw, "currency")
    assert ">= 0" in message_for(ProductCreate, raw, "stock")


def test_bad_missing_and_unknown_together() -> None:
    raw = {"sku": "A-1", "stock": "many", "extra": 1}
    assert keys(ProductCreate, raw) == ["name", "price", "stock", "extra"]


@pytest.mark.parametrize("bad", ["99.999", "abc", "1e3", "-1", True, None, [1]])
def test_a_bad_amount_is_named(bad: object) -> None:
    assert keys(ProductCreate, {"sku": "A-1", "name": "Mug", "price": bad}) == ["price"]


def test_amounts_are_named_beside_type_errors() -> None:
    # Regression: a bad amount was only reported once every type error was fixed.
    raw = {"sku": "A-1", "name": "Mug", "price": "99.999", "cost_price": "cheap", "stock": -1}
    assert keys(ProductCreate, raw) == ["price", "cost_price", "stock"]
    assert "two decimal places" in message_for(ProductCreate, raw, "price")


def test_a_null_optional_amount_is_fine() -> None:
    assert keys(ProductPatch, {"cost_price": None}) == []
    assert keys(ProductPatch, {"price": None}) == ["price"]  # the price itself cannot be cleared


def test_nested_list_items_are_named_by_index() -> None:
    raw = {"items": [{"quantity": 0}, {"quantity": 2, "sku": "B"}, {"quantity": -3, "unit_price": "0.001"}]}
    assert keys(OrderCreate, raw) == ["items.0.quantity", "items.2.quantity", "items.2.unit_price"]
    assert ">= 1" in message_for(OrderCreate, raw, "items.0.quantity")


def test_nested_unknown_and_missing_fields() -> None:
    raw = {"items": [{"sku": "A", "colour": "red"}], "customer": {"nmae": "Ann"}}
    assert keys(OrderCreate, raw) == ["items.0.quantity", "items.0.colour", "customer.nmae"]


def test_nested_object_fields_are_each_named() -> None:
    raw = {"items": [{"quantity": 1, "sku": "A"}], "customer": {"name": 5, "email": "not-an-email"}}
    assert keys(OrderCreate, raw) == ["customer.name", "customer.email"]
    patch = {"customer": {"email": "x"}, "status": "lost"}
    assert keys(OrderPatch, patch) == ["customer.email", "status"]
    settings = {"store": {"shopify_domain": "example.com", "token": "x"}, "currency": 1}
    assert keys(SettingsIn, settings) == ["currency", "store.shopify_domain", "store.token"]


def test_a_wrong_container_is_one_error_at_its_key() -> None:
    assert keys(OrderCreate, {"items": []}) == ["items"]
    assert keys(OrderCreate, {"items": "A-1"}) == ["items"]
    assert keys(OrderCreate, {"items": [5]}) == ["items.0"]
    assert keys(OrderCreate, {"items": [{"quantity": 1}], "customer": "Ann"}) == ["customer"]


def test_too_many_items_is_named() -> None:
    raw = {"items": [{"quantity": 1, "sku": "A"}] * 501}
    assert keys(OrderCreate, raw) == ["items"]
    assert "length <= 500" in message_for(OrderCreate, raw, "items")
