"""Small pure conversions shared by the services: money, times, stock states."""

from __future__ import annotations

import functools
import math
import re
import time
from datetime import date, timedelta
from decimal import Decimal

from domain.errors import InvalidField

MAX_CENTS = 10**14  # a trillion in any currency is a typo
_MAX_AMOUNT = Decimal(MAX_CENTS) / 100
_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


RENDER_CACHE = 16384
"""Rendered values remembered by :func:`iso` and :func:`money` (a few MB at most): lists and
events render the same rows' times and prices again and again, and a whole bulk write shares
one ``updated_at``."""


@functools.lru_cache(maxsize=RENDER_CACHE)
def iso(ms: int | None) -> str | None:
    """Epoch milliseconds as ISO 8601 UTC with millisecond precision, e.g. ``2026-11-27T06:34:36.306Z``."""
    if ms is None:
        return None
    seconds, millis = divmod(ms, 1000)  # integers all the way: exact at any date
    days, second_of_day = divmod(seconds, 86400)
    hours, rest = divmod(second_of_day, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{_utc_date(days)}T{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}Z"


@functools.lru_cache(maxsize=4096)
def _utc_date(days: int) -> str:
    """The UTC date ``days`` after 1970-01-01 (thousands of times come from few days)."""
    return (_EPOCH + timedelta(days=days)).isoformat()


_EPOCH = date(1970, 1, 1)


def parse_money(value: object, field: str, *, allow_negative: bool = False) -> int:
    """A decimal string or number (``"99.99"``, ``99.99``, ``100``) as integer cents.

    A string must be a plain decimal (``-?digits[.digits]``, surrounding spaces allowed): no
    exponent, no digit separators, no non-ASCII digits. Rejects NaN, infinities, more than two
    decimal places, amounts of a trillion or more, and negatives unless allowed. Every rejection
    is an :class:`InvalidField` naming ``field``; nothing else is raised.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise InvalidField(field, "must be a decimal string or a number")
    if isinstance(value, str):
        text = value.strip()
        if not _PLAIN_DECIMAL.fullmatch(text):
            raise InvalidField(field, 'must be a decimal amount such as "99.99"')
        amount = Decimal(text)
    elif isinstance(value, float):
        # repr() is the shortest text that reads back as the same float: 0.1 -> "0.1".
        amount = Decimal(repr(value)) if math.isfinite(value) else Decimal("NaN")
    else:
        amount = Decimal(value)
    sign, digits, exponent = amount.as_tuple()
    if not isinstance(exponent, int):  # "n", "N" or "F": NaN or an infinity
        raise InvalidField(field, "must be a finite amount")
    # Decimal comparisons and as_tuple() are exact; arithmetic would round to 28 digits.
    if amount.copy_abs() >= _MAX_AMOUNT:
        raise InvalidField(field, "is too large")
    extra_places = -2 - exponent
    if extra_places > 0:
        if any(digits[-extra_places:]):
            raise InvalidField(field, "must have at most two decimal places")
        digits, exponent = digits[:-extra_places], -2  # "1.000" is 1.00
    magnitude: int = int("".join(map(str, digits)) or "0")
    shift = exponent + 2
    cents: int = magnitude * 10**shift if shift >= 0 else magnitude // 10**-shift
    if sign:
        cents = -cents
    if cents < 0 and not allow_negative:
        raise InvalidField(field, "must not be negative")
    return cents


@functools.lru_cache(maxsize=RENDER_CACHE)
def money(cents: int | None) -> str | None:
    """Integer cents as a decimal string with two places: ``1999`` -> ``"19.99"``."""
    if cents is None:
        return None
    if cents >= 0:
        return f"{cents // 100}.{cents % 100:02d}"
    return f"-{-cents // 100}.{-cents % 100:02d}"


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


def changed_price(cents: int, mode: str, value: int) -> int:
    """A price after a bulk change, in cents, never below 0.

    ``set``: ``value`` is the new price in cents; ``delta``: cents to add (may be negative);
    ``percent``: hundredths of a percent to add (``-1050`` is -10.5 %), rounded half up to a cent.
    """
    if mode == "set":
        new = value
    elif mode == "delta":
        new = cents + value
    elif mode == "percent":
        scaled = cents * (10_000 + value)
        new = (scaled + 5_000) // 10_000  # half up (scaled >= 0 whenever the result is kept)
    else:
        raise ValueError(f"unknown price change mode {mode!r}")
    return max(new, 0)
