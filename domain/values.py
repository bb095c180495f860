"""Small pure conversions shared by the services: money, times, stock states."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from domain.errors import InvalidField

MAX_CENTS = 10**14  # a trillion in any currency is a typo


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def iso(ms: int | None) -> str | None:
    """Epoch milliseconds as ISO 8601 UTC with millisecond precision, e.g. ``2026-11-27T06:34:36.306Z``."""
    if ms is None:
        return None
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_money(value: object, field: str, *, allow_negative: bool = False) -> int:
    """A decimal string or number (``"99.99"``, ``99.99``, ``100``) as integer cents.

    Rejects NaN, infinities, more than two decimal places, and negatives unless allowed.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise InvalidField(field, "must be a decimal string or a number")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidField(field, f"{value!r} is not a decimal amount") from None
    if not amount.is_finite():
        raise InvalidField(field, "must be a finite amount")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2 and amount != amount.quantize(Decimal("0.01")):
        raise InvalidField(field, "must have at most two decimal places")
    cents = int(amount.quantize(Decimal("0.01")) * 100)
    if cents < 0 and not allow_negative:
        raise InvalidField(field, "must not be negative")
    if abs(cents) >= MAX_CENTS:
        raise InvalidField(field, "is too large")
    return cents


def money(cents: int | None) -> str | None:
    """Integer cents as a decimal string with two places: ``1999`` -> ``"19.99"``."""
    if cents is None:
        return None
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(cents), 100)
    return f"{sign}{whole}.{fraction:02d}"


def stock_state(stock: int, threshold: int) -> str:
    """``out`` at 0, ``low`` at or below the threshold, else ``ok``."""
    if stock <= 0:
        return "out"
    if stock <= threshold:
        return "low"
    return "ok"


def stock_alert(old_state: str, new_state: str) -> str | None:
    """The alert a move between states fires, once per crossing: ``stock_low`` or ``stock_out``."""
    if new_state == "out" and old_state != "out":
        return "stock_out"
    if new_state == "low" and old_state == "ok":
        return "stock_low"
    return None
