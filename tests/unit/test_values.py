"""domain/values.py: money parsing and rendering, ISO times, stock states and their alerts."""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal

import pytest

from domain.errors import InvalidField
from domain.values import MAX_CENTS, iso, money, parse_money, stock_alert, stock_state


@pytest.mark.parametrize(
    ("value", "cents"),
    [
        ("99.99", 9999),
        ("0", 0),
        ("0.5", 50),
        ("100", 10000),
        ("100.00", 10000),
        ("99.990", 9999),  # trailing zeros are not extra places
        (" 12.30 ", 1230),
        (99.99, 9999),
        (0.1, 10),
        (19.9, 1990),
        (100, 10000),
        (0, 0),
        (100.0, 10000),
        (Decimal("1.25"), 125),
        ("999999999999.99", MAX_CENTS - 1),
        ("1." + "0" * 5000, 100),  # long trailing zeros: no int-conversion limit hit
        ("0" * 5000 + "7", 700),
    ],
)
def test_parse_money_accepts_decimal_strings_and_numbers(value: object, cents: int) -> None:
    assert parse_money(value, "price") == cents


@pytest.mark.parametrize(
    "value",
    ["99.999", "0.001", 99.999, 0.1 + 0.2, "1.0000000000000000000000000000001", "0." + "0" * 40 + "1"],
)
def test_parse_money_rejects_more_than_two_places(value: object) -> None:
    with pytest.raises(InvalidField, match="two decimal places") as caught:
        parse_money(value, "price")
    assert caught.value.field == "price"


@pytest.mark.parametrize("value", ["-1", "-0.01", -5, -0.5])
def test_parse_money_rejects_negatives_unless_allowed(value: object) -> None:
    with pytest.raises(InvalidField, match="negative"):
        parse_money(value, "price")
    assert parse_money(value, "delta", allow_negative=True) < 0


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), "NaN", "nan", "Infinity", "-inf", "sNaN"])
def test_parse_money_rejects_nan_and_infinities(value: object) -> None:
    with pytest.raises(InvalidField) as caught:
        parse_money(value, "price")
    assert caught.value.field == "price"


@pytest.mark.parametrize("value", [True, False, None, [1], {"amount": 1}, b"1"])
def test_parse_money_rejects_bools_and_other_types(value: object) -> None:
    with pytest.raises(InvalidField, match="decimal string or a number"):
        parse_money(value, "price")


@pytest.mark.parametrize(
    "value",
    ["", "  ", "abc", "12,50", "1_000", "1e2", "0x10", "$5", "5 USD", "١٢", "1.2.3", "--1", "1e30"],
)
def test_parse_money_rejects_strings_that_are_not_plain_decimals(value: str) -> None:
    with pytest.raises(InvalidField) as caught:
        parse_money(value, "cost_price")
    assert caught.value.field == "cost_price"


@pytest.mark.parametrize(
    "value",
    [
        "1000000000000",  # MAX_CENTS / 100: a trillion is a typo
        10**12,
        10**30,
        -(10**30),
        "9" * 40,
        "9" * 5000,
        1e20,
        1e300,
        "1" + "0" * 30 + ".5",
    ],
)
def test_parse_money_rejects_huge_amounts_as_a_field_error(value: object) -> None:
    # Regression: these raised decimal.InvalidOperation (a 500) instead of naming the field.
    with pytest.raises(InvalidField, match="too large"):
        parse_money(value, "total", allow_negative=True)


@pytest.mark.parametrize(
    ("cents", "text"),
    [(0, "0.00"), (1, "0.01"), (99, "0.99"), (1999, "19.99"), (10000, "100.00"), (-5, "-0.05"), (-1234, "-12.34")],
)
def test_money_renders_two_places(cents: int, text: str) -> None:
    assert money(cents) == text
    assert parse_money(text, "price", allow_negative=True) == cents


def test_money_of_none_is_none() -> None:
    assert money(None) is None


def test_iso_renders_utc_milliseconds() -> None:
    assert iso(0) == "1970-01-01T00:00:00.000Z"
    assert iso(1734393600000) == "2024-12-17T00:00:00.000Z"
    assert iso(1734393600001) == "2024-12-17T00:00:00.001Z"
    assert iso(None) is None


def test_iso_round_trips_every_millisecond_of_a_second() -> None:
    base = 1795761749000
    for ms in range(base, base + 1000):
        text = iso(ms)
        assert text is not None
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        assert round(parsed.timestamp() * 1000) == ms, text


@pytest.mark.parametrize(
    ("stock", "threshold", "state"),
    [
        (0, 5, "out"),
        (1, 5, "low"),
        (5, 5, "low"),
        (6, 5, "ok"),
        (0, 0, "out"),
        (1, 0, "ok"),
        (100, 5, "ok"),
    ],
)
def test_stock_state(stock: int, threshold: int, state: str) -> None:
    assert stock_state(stock, threshold) == state


@pytest.mark.parametrize(
    ("old", "new", "alert"),
    [
        ("ok", "low", "stock_low"),
        ("ok", "out", "stock_out"),
        ("low", "out", "stock_out"),
        ("low", "low", None),
        ("out", "out", None),
        ("out", "ok", None),
        ("out", "low", None),
        ("low", "ok", None),
        ("ok", "ok", None),
    ],
)
def test_stock_alert_fires_once_per_crossing(old: str, new: str, alert: str | None) -> None:
    assert stock_alert(old, new) == alert


def test_stock_alerts_over_a_sequence_of_levels() -> None:
    """The SPEC's walk: 10 -> 4 low, 4 -> 3 nothing, 3 -> 0 out, 0 -> 0 nothing, 0 -> 20 nothing, 20 -> 2 low."""
    levels = [10, 4, 3, 0, 0, 20, 2]
    states = [stock_state(level, 5) for level in levels]
    alerts = [stock_alert(old, new) for old, new in itertools.pairwise(states)]
    assert alerts == ["stock_low", None, "stock_out", None, None, "stock_low"]
