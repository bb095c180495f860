"""What became of one push: the senders' common answer, and the back-off between retries."""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass
from typing import Literal

Status = Literal["sent", "gone", "retry", "failed"]
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 300.0
MAX_RETRY_AFTER_S = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """``sent``: the service took it. ``gone``: the device unsubscribed (404/410,
    ``DeviceNotRegistered``): delete the subscription. ``retry``: try again later (429, 5xx, a
    timeout), after ``retry_after_s`` when the service said so. ``failed``: it will not work
    (refused payload, bad credentials): count it and drop it.

    ``detail`` is short and safe to log and to show its owner (no keys, no tokens).
    """

    status: Status
    detail: str
    retry_after_s: float | None = None

    @property
    def status_code(self) -> int | None:
        """The HTTP status in ``detail`` ("HTTP 410 ..."), if there was one."""
        if self.detail.startswith("HTTP "):
            number = self.detail[5:8]
            return int(number) if number.isdigit() else None
        return None


def for_status(status_code: int, retry_after: str | None, what: str = "") -> Outcome:
    """The outcome of a push service's HTTP answer, by RFC 8030's rules."""
    detail = f"HTTP {status_code}{f' {what}' if what else ''}"
    if 200 <= status_code < 300:
        return Outcome("sent", detail)
    if status_code in {404, 410}:
        return Outcome("gone", detail)
    if status_code == 429 or status_code >= 500:
        return Outcome("retry", detail, parse_retry_after(retry_after))
    return Outcome("failed", detail)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from ``Retry-After`` (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def backoff_s(attempts: int, retry_after_s: float | None) -> float:
    """The wait before attempt ``attempts + 1``: exponential with jitter, never shorter than the
    service's ``Retry-After``."""
    exponential = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** max(attempts - 1, 0))
    jittered = exponential * random.uniform(0.8, 1.2)  # noqa: S311 - spreading retries, not secrecy
    return float(max(jittered, retry_after_s or 0.0))
